//! The container process: planned from the spec in the parent ([`ProcessPlan`], pure and
//! unit-tested), applied in the child between fork and exec. Child-side functions return
//! plain messages; they never log (stdio belongs to the container).

pub mod create;
pub mod exec;

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, PosixRlimitType, Process};

use crate::capabilities::{self, CapPlan};
use nix::errno::Errno;

use crate::error::{Error, ExecError, Result};
use crate::seccomp::{self, Compiled};

/// The default PATH when the process env has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything the child needs to become the container process.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub path_env: String,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub caps: Option<CapPlan>,
    pub last_cap: u8,
    pub no_new_privileges: bool,
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub seccomp: Option<Compiled>,
    /// AppArmor profile to exec into (checked to be enforceable at plan time).
    pub apparmor_profile: Option<String>,
}

/// True if the kernel has AppArmor enabled.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn cstr(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidSpec(format!("{what} contains a NUL byte")))
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Plans `p`; `seccomp` is the container's profile (exec'd processes get it too).
pub fn plan(p: &Process, seccomp_profile: Option<&LinuxSeccomp>) -> Result<ProcessPlan> {
    let args = p
        .args()
        .as_ref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::InvalidSpec("process.args is empty".into()))?
        .iter()
        .map(|a| cstr(a, "process.args"))
        .collect::<Result<Vec<_>>>()?;
    let envs = p.env().clone().unwrap_or_default();
    let path_env = envs
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_owned();
    let env = envs
        .iter()
        .map(|e| cstr(e, "process.env"))
        .collect::<Result<Vec<_>>>()?;
    if !p.cwd().is_absolute() {
        return Err(Error::InvalidSpec(format!(
            "process.cwd {} is not absolute",
            p.cwd().display()
        )));
    }
    let mut rlimits = Vec::new();
    for r in p.rlimits().iter().flatten() {
        if r.soft() > r.hard() {
            return Err(Error::InvalidSpec(format!(
                "rlimit {:?}: soft {} is above hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            )));
        }
        rlimits.push((rlimit_resource(r.typ()), r.soft(), r.hard()));
    }
    if let Some(adj) = p.oom_score_adj()
        && !(-1000..=1000).contains(&adj)
    {
        return Err(Error::InvalidSpec(format!(
            "oomScoreAdj {adj} is outside -1000..1000"
        )));
    }
    let apparmor_profile = p.apparmor_profile().clone().filter(|a| !a.is_empty());
    if let Some(a) = &apparmor_profile
        && !apparmor_enabled()
    {
        return Err(Error::InvalidSpec(format!(
            "apparmorProfile {a:?} is set but AppArmor is not enabled on this host"
        )));
    }
    let last_cap = capabilities::last_cap();
    let user = p.user();
    Ok(ProcessPlan {
        args,
        env,
        path_env,
        cwd: p.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        caps: capabilities::plan(p.capabilities().as_ref(), last_cap)?,
        last_cap,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        rlimits,
        oom_score_adj: p.oom_score_adj(),
        terminal: p.terminal().unwrap_or(false),
        console_size: p
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16)),
        seccomp: seccomp_profile.map(seccomp::compile).transpose()?,
        apparmor_profile,
    })
}

type R = std::result::Result<(), String>;

/// Sets the rlimits on the calling process (inherited through exec).
pub fn set_rlimits(plan: &ProcessPlan) -> R {
    for &(res, soft, hard) in &plan.rlimits {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: lim is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(format!("setrlimit {res}: {}", nix::Error::last()));
        }
    }
    Ok(())
}

/// Writes oom_score_adj of the calling process.
pub fn set_oom_score_adj(plan: &ProcessPlan) -> R {
    if let Some(adj) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("oom_score_adj {adj}: {e}"))?;
    }
    Ok(())
}

/// Finds the executable like runc's `exec.LookPath`, with the process's PATH, in the
/// current root: a name with a `/` must be an executable file (else its errno: ENOENT,
/// EACCES, EISDIR); a bare name is the first executable file of that name in `$PATH`
/// (else ENOENT, "executable file not found in $PATH").
pub fn resolve_exe(plan: &ProcessPlan) -> std::result::Result<CString, ExecError> {
    let arg0 = plan.args[0].to_string_lossy().into_owned();
    let fail = |errno, searched_path| ExecError {
        command: arg0.clone(),
        errno,
        searched_path,
    };
    let check = |p: &Path| -> std::result::Result<(), Errno> {
        let m = std::fs::metadata(p)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
        if m.is_dir() {
            return Err(Errno::EISDIR);
        }
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK)
    };
    let abs = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            plan.cwd.join(p)
        }
    };
    if arg0.contains('/') {
        check(&abs(Path::new(&arg0))).map_err(|e| fail(e, false))?;
        return Ok(plan.args[0].clone());
    }
    for dir in plan.path_env.split(':') {
        let d = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(d).join(&arg0);
        if check(&abs(&cand)).is_ok() {
            return CString::new(cand.as_os_str().as_bytes())
                .map_err(|_| fail(Errno::EINVAL, true));
        }
    }
    Err(fail(Errno::ENOENT, true))
}

/// Changes to the process's cwd (inside the container root).
pub fn enter_cwd(plan: &ProcessPlan) -> R {
    nix::unistd::chdir(&plan.cwd).map_err(|e| format!("chdir to cwd {}: {e}", plan.cwd.display()))
}

/// Identity, capabilities, no_new_privs and seccomp; the last step before exec.
pub fn finalize(plan: &ProcessPlan) -> R {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    if let Some(a) = &plan.apparmor_profile {
        let cmd = format!("exec {a}");
        std::fs::write("/proc/self/attr/apparmor/exec", &cmd)
            .or_else(|_| std::fs::write("/proc/self/attr/exec", &cmd))
            .map_err(|e| format!("setting AppArmor profile {a}: {e}"))?;
    }
    if let Some(s) = &plan.seccomp
        && !plan.no_new_privileges
    {
        seccomp::load(s).map_err(|e| format!("loading seccomp: {e}"))?;
    }
    if let Some(c) = &plan.caps {
        capabilities::drop_bounding(c, plan.last_cap)
            .map_err(|e| format!("dropping bounding capabilities: {e}"))?;
    }
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let gids: Vec<Gid> = plan
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    if let Err(e) = setgroups(&gids) {
        // A user ns with setgroups denied: fine when no groups are asked for.
        if !(gids.is_empty() && e == nix::Error::EPERM) {
            return Err(format!("setgroups: {e}"));
        }
    }
    let gid = Gid::from_raw(plan.gid);
    setresgid(gid, gid, gid).map_err(|e| format!("setgid {}: {e}", plan.gid))?;
    let uid = Uid::from_raw(plan.uid);
    setresuid(uid, uid, uid).map_err(|e| format!("setuid {}: {e}", plan.uid))?;
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(c) = &plan.caps {
        capabilities::apply_sets(c).map_err(|e| format!("setting capabilities: {e}"))?;
    }
    if let Some(m) = plan.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    if plan.no_new_privileges {
        // SAFETY: plain prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("no_new_privs: {}", nix::Error::last()));
        }
        if let Some(s) = &plan.seccomp {
            seccomp::load(s).map_err(|e| format!("loading seccomp: {e}"))?;
        }
    }
    Ok(())
}

/// Makes `fds` this process's stdin, stdout and stderr (inheritable). Each source is
/// first duplicated above 2, so a source that is itself one of 0, 1, 2 is not
/// overwritten before its turn; the duplicates are closed again. Only fcntl, dup2 and
/// close: safe between fork and exec.
pub fn install_stdio(fds: [RawFd; 3]) -> R {
    let mut high = [-1; 3];
    for (h, fd) in high.iter_mut().zip(fds) {
        // SAFETY: F_DUPFD_CLOEXEC on an fd number; a bad one fails with EBADF.
        *h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if *h < 0 {
            return Err(format!("duplicating stdio fd {fd}: {}", nix::Error::last()));
        }
    }
    for (target, h) in (0..).zip(high) {
        // SAFETY: dup2 onto a standard fd of this process; it clears close-on-exec there.
        let r = unsafe { libc::dup2(h, target) };
        // SAFETY: `h` is the duplicate made above, owned here.
        unsafe { libc::close(h) };
        if r < 0 {
            return Err(format!(
                "installing stdio fd {target}: {}",
                nix::Error::last()
            ));
        }
    }
    Ok(())
}

/// Closes every fd of this process from 3 up except those in `keep` (sorted here, in
/// place): close_range over the gaps, no allocation, so safe between fork and exec.
pub fn close_fds_except(keep: &mut [RawFd]) -> R {
    keep.sort_unstable();
    let close = |from: libc::c_uint, to: libc::c_uint| {
        // SAFETY: close_range closes descriptors this process owns; none is in use
        // by the caller (the caller listed every fd it still needs in `keep`).
        let r = unsafe { libc::syscall(libc::SYS_close_range, from, to, 0 as libc::c_uint) };
        if r != 0 {
            return Err(format!("close_range: {}", nix::Error::last()));
        }
        Ok(())
    };
    let mut from: libc::c_uint = 3;
    for &k in keep.iter() {
        let Ok(k) = libc::c_uint::try_from(k) else {
            continue;
        };
        if k < from {
            continue; // below 3, or a duplicate
        }
        if k > from {
            close(from, k - 1)?;
        }
        from = k + 1;
    }
    close(from, libc::c_uint::MAX)
}

/// Marks every fd from `3 + preserve` up close-on-exec and clears it on the preserved.
pub fn seal_fds(preserve: i32) -> R {
    for fd in 3..3 + preserve {
        // SAFETY: F_SETFD on a possibly closed fd is harmless (EBADF).
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    // SAFETY: close_range only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            (3 + preserve) as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        return Err(format!("close_range: {}", nix::Error::last()));
    }
    Ok(())
}

/// Default signal dispositions and an empty mask, then execve. Returns only on error.
pub fn exec(exe: &CString, plan: &ProcessPlan) -> ExecError {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    // SAFETY: restoring the default disposition installs no handler code.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    match nix::unistd::execve(exe, &plan.args, &plan.env) {
        Ok(never) => match never {},
        Err(errno) => ExecError {
            command: exe.to_string_lossy().into_owned(),
            errno,
            searched_path: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` in sh with `install_stdio(pick(fds))` applied after fork, where
    /// fds are (its stdin read end, its stdout write end, its stderr write end) of
    /// three pipes set up as the child's 0, 1 and 2 by `Command`; returns what it
    /// wrote to the stdout and stderr pipes.
    fn run_with_stdio(
        script: &'static str,
        pick: fn([RawFd; 3]) -> [RawFd; 3],
    ) -> (String, String) {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: install_stdio only calls fcntl, dup2 and close.
        unsafe {
            cmd.pre_exec(move || install_stdio(pick([0, 1, 2])).map_err(std::io::Error::other));
        }
        let mut child = cmd.spawn().expect("spawn sh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"input\n")
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn only_the_kept_fds_survive() {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        // Inheritable copies (dup clears close-on-exec), as a forked caller has them.
        let dup = || {
            // SAFETY: dup of our own stdin; the new fd is owned by the OwnedFd.
            let fd = unsafe { libc::dup(0) };
            assert!(fd >= 3, "dup");
            // SAFETY: fd was just returned by dup and is owned by nothing else.
            unsafe { OwnedFd::from_raw_fd(fd) }
        };
        let (a, b, c) = (dup(), dup(), dup());
        let (a, b, c) = (a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd());
        let script = format!(
            "[ -e /proc/self/fd/{a} ] && [ ! -e /proc/self/fd/{b} ] && [ -e /proc/self/fd/{c} ]"
        );
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", &script]);
        // SAFETY: close_fds_except sorts a stack array and calls close_range only.
        unsafe {
            cmd.pre_exec(move || close_fds_except(&mut [c, a, a]).map_err(std::io::Error::other));
        }
        let out = cmd.output().expect("run sh");
        assert!(
            out.status.success(),
            "{b} closed, {a} and {c} kept: {out:?}"
        );
    }

    #[test]
    fn stdio_is_installed_as_given() {
        let (out, err) = run_with_stdio("read l; echo \"out $l\"; echo err >&2", |f| f);
        assert_eq!((out.as_str(), err.as_str()), ("out input\n", "err\n"));
        // Sources that are themselves 0, 1, 2, swapped: stdout and stderr trade places.
        let (out, err) = run_with_stdio("read l; echo \"out $l\"; echo err >&2", |[i, o, e]| {
            [i, e, o]
        });
        assert_eq!((out.as_str(), err.as_str()), ("err\n", "out input\n"));
    }

    fn process(json: &str) -> Process {
        serde_json::from_str(json).expect("process json")
    }

    #[test]
    fn plan_of_a_process() {
        let p = plan(
            &process(
                r#"{"args":["sh","-c","true"],"env":["PATH=/bin","A=1"],"cwd":"/tmp",
                "user":{"uid":1000,"gid":100,"additionalGids":[5],"umask":18},
                "rlimits":[{"type":"RLIMIT_NOFILE","soft":100,"hard":200}],
                "noNewPrivileges":true,"oomScoreAdj":100,"terminal":true,"consoleSize":{"height":24,"width":80},
                "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}}"#,
            ),
            None,
        )
        .expect("plan");
        assert_eq!(p.path_env, "/bin");
        assert_eq!(
            (p.uid, p.gid, p.additional_gids.clone()),
            (1000, 100, vec![5])
        );
        assert_eq!(p.rlimits, vec![(libc::RLIMIT_NOFILE, 100, 200)]);
        assert_eq!(p.umask, Some(18));
        assert!(p.no_new_privileges && p.terminal);
        assert_eq!(p.console_size, Some((24, 80)));
        assert_eq!(p.caps.expect("caps").effective, 1 << 5);
    }

    #[test]
    fn invalid_processes() {
        let base = r#""cwd":"/","user":{"uid":0,"gid":0}"#;
        assert!(plan(&process(&format!(r#"{{"args":[],{base}}}"#)), None).is_err());
        assert!(plan(
            &process(&format!(
                r#"{{"args":["x"],{base},"rlimits":[{{"type":"RLIMIT_CORE","soft":5,"hard":1}}]}}"#
            )),
            None
        )
        .is_err());
        assert!(
            plan(
                &process(&format!(r#"{{"args":["x"],{base},"oomScoreAdj":5000}}"#)),
                None
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<Process>(&format!(
                r#"{{"args":["x"],{base},"rlimits":[{{"type":"RLIMIT_BOGUS","soft":1,"hard":1}}]}}"#
            ))
            .is_err()
        );
    }

    #[test]
    fn exe_resolution_uses_path() {
        let p = plan(
            &process(r#"{"args":["sh"],"env":["PATH=/nonexistent:/bin"],"cwd":"/","user":{"uid":0,"gid":0}}"#),
            None,
        )
        .expect("plan");
        assert_eq!(
            resolve_exe(&p).expect("found").to_str().expect("utf8"),
            "/bin/sh"
        );
        let q = plan(
            &process(r#"{"args":["no-such-binary-xyz"],"cwd":"/","user":{"uid":0,"gid":0}}"#),
            None,
        )
        .expect("plan");
        let e = resolve_exe(&q).expect_err("missing");
        assert_eq!(
            (e.command.as_str(), e.errno, e.searched_path),
            ("no-such-binary-xyz", Errno::ENOENT, true)
        );
    }

    #[test]
    fn exe_resolution_errors_are_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "data").expect("write");
        let script = dir.path().join("script");
        std::fs::write(&script, "#!/bin/sh\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let resolve = |arg0: &str, path: &str| {
            let p = plan(
                &process(&format!(
                    r#"{{"args":[{arg0:?}],"env":["PATH={path}"],"cwd":"/","user":{{"uid":0,"gid":0}}}}"#
                )),
                None,
            )
            .expect("plan");
            resolve_exe(&p)
        };
        let d = dir.path().to_str().expect("utf8");
        let err = |arg0: &str, path: &str| {
            let e = resolve(arg0, path).expect_err("must fail");
            (e.errno, e.searched_path, e.kind())
        };
        use crate::ErrorKind::{ExecutableNotFound, NotExecutable};
        // A path: its own errno (as root, access(X_OK) needs some x bit).
        assert_eq!(
            err(&format!("{d}/absent"), "/bin"),
            (Errno::ENOENT, false, ExecutableNotFound)
        );
        assert_eq!(err(d, "/bin"), (Errno::EISDIR, false, NotExecutable));
        assert_eq!(
            err(plain.to_str().expect("utf8"), "/bin"),
            (Errno::EACCES, false, NotExecutable)
        );
        // A bare name: non-executable matches are skipped, like exec.LookPath.
        assert_eq!(err("plain", d), (Errno::ENOENT, true, ExecutableNotFound));
        let found = resolve("script", &format!("/nonexistent:{d}")).expect("found");
        assert_eq!(found.to_str().expect("utf8"), format!("{d}/script"));
    }
}

#[cfg(test)]
mod apparmor_tests {
    use super::*;

    #[test]
    fn apparmor_profile_is_refused_when_not_enforceable() {
        let p: Process = serde_json::from_str(
            r#"{"args":["x"],"cwd":"/","user":{"uid":0,"gid":0},"apparmorProfile":"acme"}"#,
        )
        .expect("json");
        let r = plan(&p, None);
        if apparmor_enabled() {
            assert_eq!(r.expect("plan").apparmor_profile.as_deref(), Some("acme"));
        } else {
            assert!(matches!(r, Err(Error::InvalidSpec(_))), "fail closed");
        }
    }
}
