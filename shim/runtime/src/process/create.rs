//! The child side of `create`.
//!
//! ```text
//! parent (berth-runc create)        intermediate                 init (pid 1 of the new pid ns)
//!   fork ------------------------->  wait GO
//!   GO --------------------------->  join the cgroup (writes 0 to each `tasks`),
//!                                    setns(joined namespaces), unshare(user)
//!   write uid/gid maps <---- USERNS  (if a new user ns)
//!   MAPPED ----------------------->  unshare(other namespaces), time offsets
//!                                    fork ------------------------> (inherits all)
//!   <--------------------- PID(init) exit
//!   reap intermediate
//!   STATE(json) --------------------------------------------------> rootfs prepare, hostname
//!   run prestart + createRuntime <--------------------------------- HOOKS
//!   HOOKS_DONE ---------------------------------------------------> createContainer hooks,
//!                                                                   pivot_root, console,
//!   write state.json, pid file <----------------------------------- READY   rlimits, cwd
//!   exit                                                            accept(start.sock)...
//! ```
//! `start` connects to `start.sock`; init runs startContainer hooks, drops privileges,
//! loads seccomp and execs. The connection is close-on-exec: EOF tells `start` the exec
//! happened; any bytes before EOF are an error ([`ChildError::to_bytes`]).
//! Like runc, init looks the executable up before READY, so a missing or
//! non-executable command fails `create` with [`crate::Error::Exec`]. Once the intermediate exits,
//! init is reparented to the nearest subreaper (the shim) or to pid 1.

use std::os::fd::RawFd;

use nix::sched::{CloneFlags, setns, unshare};
use nix::unistd::{ForkResult, Gid, Uid, fork, setresgid, setresuid};
use oci_spec::runtime::{Hook, LinuxNamespaceType};

use crate::hooks;
use crate::namespaces::{NsPlan, flag};
use crate::process::{self, ProcessPlan};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::{Chan, ChildError, tag};

/// What the intermediate and init processes need (a copy lives in each after fork).
#[derive(Debug)]
pub struct InitCtx {
    pub ns: NsPlan,
    /// Namespace fds to join, user first.
    pub ns_fds: Vec<(LinuxNamespaceType, RawFd)>,
    /// Files the intermediate writes `0` to, to join the container's cgroup
    /// ([`crate::cgroups::CgroupManager::self_join_files`]).
    pub cgroup_join: Vec<std::path::PathBuf>,
    pub start_listener: RawFd,
    pub console: Option<RawFd>,
    pub preserve_fds: i32,
    /// Installed as fds 0, 1, 2 first thing in the intermediate (init inherits them).
    pub stdio: Option<[RawFd; 3]>,
    pub process: ProcessPlan,
    pub rootfs: RootfsPlan,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// (clock name, seconds, nanoseconds) for /proc/self/timens_offsets.
    pub time_offsets: Vec<(String, i64, u32)>,
    pub runtime_hooks: bool,
    pub create_container_hooks: Vec<Hook>,
    pub start_container_hooks: Vec<Hook>,
}

type R = std::result::Result<(), ChildError>;

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Joins and creates namespaces (shared by create and exec).
pub(crate) fn enter_namespaces(
    ns_fds: &[(LinuxNamespaceType, RawFd)],
    new_user: bool,
    unshare_flags: CloneFlags,
    chan: &Chan,
) -> std::result::Result<(), String> {
    let mut in_userns = false;
    for (t, fd) in ns_fds {
        // SAFETY: fd is an open namespace file of the parent, inherited across fork.
        let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
        setns(bfd, flag(*t)).map_err(|e| {
            format!(
                "joining {} namespace: {e}",
                crate::namespaces::proc_name(*t)
            )
        })?;
        if *t == LinuxNamespaceType::User {
            in_userns = true;
        }
    }
    if new_user {
        unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("creating user namespace: {e}"))?;
        chan.send(tag::USERNS, &[])
            .map_err(|e| format!("sync: {e}"))?;
        chan.expect(tag::MAPPED).map_err(|e| e.to_string())?;
        in_userns = true;
    }
    if in_userns {
        let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
        setresgid(g, g, g).map_err(|e| format!("setgid 0 in user namespace: {e}"))?;
        setresuid(u, u, u).map_err(|e| format!("setuid 0 in user namespace: {e}"))?;
    }
    if !unshare_flags.is_empty() {
        unshare(unshare_flags)
            .map_err(|e| format!("creating namespaces {unshare_flags:?}: {e}"))?;
    }
    Ok(())
}

/// The intermediate process. Never returns.
pub fn intermediate(ctx: &InitCtx, chan: &Chan) -> ! {
    let r = (|| -> R {
        chan.expect(tag::GO)?;
        if let Some(fds) = ctx.stdio {
            // An embedding caller (the shim) passes the container's stdio and keeps
            // serving from the process this one was forked from: none of its other
            // descriptors (sockets, its log) may live on in init until it execs.
            process::install_stdio(fds)?;
            let mut keep: Vec<RawFd> = [chan.fd(), ctx.start_listener]
                .into_iter()
                .chain(ctx.console)
                .chain(ctx.ns_fds.iter().map(|(_, fd)| *fd))
                .chain(3..3 + ctx.preserve_fds)
                .collect();
            process::close_fds_except(&mut keep)?;
        }
        // Before any namespace exists, so everything below is charged to the
        // container's cgroup and init (forked below) starts in it.
        for f in &ctx.cgroup_join {
            std::fs::write(f, "0").map_err(|e| format!("joining cgroup {}: {e}", f.display()))?;
        }
        // Until it execs the user's program, init runs the runtime binary: keep
        // `/proc/<pid>/exe` closed to container processes (CVE-2019-5736 class).
        // SAFETY: plain prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        enter_namespaces(&ctx.ns_fds, ctx.ns.new_user, ctx.ns.unshare, chan)?;
        if !ctx.time_offsets.is_empty() {
            let text: String = ctx
                .time_offsets
                .iter()
                .map(|(c, s, n)| format!("{c} {s} {n}\n"))
                .collect();
            std::fs::write("/proc/self/timens_offsets", text)
                .map_err(|e| format!("writing time offsets: {e}"))?;
        }
        // SAFETY: this process is single-threaded (forked from a single-threaded parent).
        match unsafe { fork() }.map_err(|e| format!("fork init: {e}"))? {
            ForkResult::Child => init(ctx, chan),
            ForkResult::Parent { child } => {
                chan.send(tag::PID, &child.as_raw().to_le_bytes())
                    .map_err(|e| format!("sync: {e}"))?;
                exit(0)
            }
        }
    })();
    if let Err(e) = r {
        let _ = chan.send_error(&e);
    }
    exit(1)
}

fn init(ctx: &InitCtx, chan: &Chan) -> ! {
    let mut state = Vec::new();
    let r = (|| -> R {
        state = chan.expect(tag::STATE)?;
        process::set_oom_score_adj(&ctx.process)?;
        rootfs::prepare(&ctx.rootfs)?;
        if let Some(h) = &ctx.hostname {
            nix::unistd::sethostname(h).map_err(|e| format!("sethostname: {e}"))?;
        }
        if let Some(d) = &ctx.domainname {
            // SAFETY: pointer and length describe the domain name bytes.
            if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
                return Err(format!("setdomainname: {}", nix::Error::last()).into());
            }
        }
        if ctx.runtime_hooks {
            chan.send(tag::HOOKS, &[])
                .map_err(|e| format!("sync: {e}"))?;
            chan.expect(tag::HOOKS_DONE)?;
        }
        hooks::run("createContainer", &ctx.create_container_hooks, &state)
            .map_err(|(p, e)| format!("createContainer hook {}: {e}", p.display()))?;
        rootfs::finish(&ctx.rootfs)?;
        if ctx.process.terminal {
            let sock = ctx
                .console
                .ok_or("terminal requested without a console socket")?;
            crate::tty::setup(sock, ctx.process.console_size, true)?;
            let _ = nix::unistd::close(sock);
        }
        process::set_rlimits(&ctx.process)?;
        process::enter_cwd(&ctx.process)?;
        process::resolve_exe(&ctx.process)?;
        process::seal_fds(ctx.preserve_fds)?;
        chan.send(tag::READY, &[])
            .map_err(|e| format!("sync: {e}"))?;
        Ok(())
    })();
    if let Err(e) = r {
        let _ = chan.send_error(&e);
        exit(1);
    }
    // Created: wait for `start`.
    let conn = loop {
        // SAFETY: the listener fd stays open in this process until exec.
        let listener = unsafe { std::os::fd::BorrowedFd::borrow_raw(ctx.start_listener) };
        match nix::sys::socket::accept4(listener, nix::sys::socket::SockFlag::SOCK_CLOEXEC) {
            Ok(c) => {
                let mut b = [0u8; 1];
                if nix::unistd::read(&c, &mut b) == Ok(1) && b[0] == b's' {
                    break c;
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(_) => exit(1),
        }
    };
    let _ = nix::unistd::close(ctx.start_listener);
    let r = (|| -> R {
        hooks::run("startContainer", &ctx.start_container_hooks, &state)
            .map_err(|(p, e)| format!("startContainer hook {}: {e}", p.display()))?;
        let exe = process::resolve_exe(&ctx.process)?;
        process::finalize(&ctx.process)?;
        Err(process::exec(&exe, &ctx.process).into())
    })();
    if let Err(e) = r {
        let _ = nix::unistd::write(&conn, &e.to_bytes());
    }
    exit(1)
}
