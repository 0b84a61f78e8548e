//! Root tests of the real runtime, driven through the `berth-runc` binary (the test
//! harness is multi-threaded, so it never calls the forking library functions itself).
//! Each test builds its own busybox bundle and `--root`, uses unique ids and cleans up
//! through Drop guards. Without root they return early, unless CI=true (then they fail).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_berth-runc");

fn need_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "this test needs root (CI=true)"
    );
    false
}

fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "bt-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Orphaned container processes come back to this process, which reaps them.
fn become_subreaper() {
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// A bundle with a static busybox rootfs; removed on drop.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-rt-bundle")
            .tempdir()
            .expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox");
        let list = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        let mut spec = berth_runtime::default_spec::spec(false);
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(args);
        spec["root"]["readonly"] = json!(false);
        let b = Bundle { dir };
        b.write(&spec);
        b
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn spec(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("config.json")).expect("read"))
            .expect("json")
    }
    fn write(&self, spec: &Value) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(spec).expect("ser"),
        )
        .expect("write config");
    }
    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut s = self.spec();
        f(&mut s);
        self.write(&s);
    }
}

/// A `--root`; force-deletes whatever is left in it on drop.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        Root {
            dir: tempfile::Builder::new()
                .prefix("berth-rt-root")
                .tempdir()
                .expect("tempdir"),
        }
    }
    /// Runs berth-runc with stdout/stderr in files: a created container keeps the
    /// runtime's stdio open, so pipes would only reach EOF when the container exits.
    fn runc(&self, args: &[&str]) -> Output {
        let io = tempfile::tempdir().expect("tempdir");
        let out = std::fs::File::create(io.path().join("out")).expect("out");
        let err = std::fs::File::create(io.path().join("err")).expect("err");
        let status = Command::new(BIN)
            .arg("--root")
            .arg(self.dir.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .expect("run berth-runc");
        Output {
            status,
            stdout: std::fs::read(io.path().join("out")).expect("read out"),
            stderr: std::fs::read(io.path().join("err")).expect("read err"),
        }
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.runc(args);
        assert!(
            o.status.success(),
            "berth-runc {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state json")
    }
    fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.state(id);
            if s["status"] == want {
                return;
            }
            assert!(Instant::now() < deadline, "{id} never became {want}: {s}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.runc(&["delete", "--force", &id]);
            }
        }
        // The runtime keeps the shared parent of relative cgroup paths; the tests remove
        // it once empty (rmdir refuses a parent another test still uses).
        if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.flatten() {
                let _ = std::fs::remove_dir(c.path().join(berth_runtime::cgroups::BERTH_PARENT));
            }
        }
    }
}

/// Every trace of a container id on the host: state dir, cgroup dirs, a mount under
/// the bundle.
fn leftovers(root: &Root, id: &str, bundle: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if root.dir.path().join(id).exists() {
        out.push(format!("state dir of {id}"));
    }
    for ctrl in [
        "memory", "pids", "cpu", "cpuset", "devices", "freezer", "systemd",
    ] {
        let p = PathBuf::from(format!("/sys/fs/cgroup/{ctrl}/berth/{id}"));
        if p.exists() {
            out.push(p.display().to_string());
        }
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    if mi.contains(&bundle.display().to_string()) {
        out.push("mount under the bundle".into());
    }
    out
}

/// Waits for `pid` (reparented to this subreaper), reaping any other zombie child on the
/// way: a zombie left in a pid namespace would keep that namespace's init alive.
fn reap(pid: i32) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        while let Ok(s) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if s == WaitStatus::StillAlive {
                break;
            }
            if s.pid().map(|p| p.as_raw()) == Some(pid) {
                return;
            }
        }
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Err(_) => return, // not our child (or already reaped)
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return,
        }
        assert!(Instant::now() < deadline, "pid {pid} did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn lifecycle_create_start_kill_delete_leaves_nothing() {
    if !need_root() {
        return;
    }
    become_subreaper();
    let b = Bundle::new(&["sh", "-c", "echo started > /tmp/out; exec sleep 1000"]);
    let r = Root::new();
    let id = unique("life");
    let pidfile = b.path().join("pid");
    r.ok(&[
        "create",
        "--bundle",
        b.path().to_str().expect("utf8"),
        "--pid-file",
        pidfile.to_str().expect("utf8"),
        &id,
    ]);
    let s = r.state(&id);
    assert_eq!(s["status"], "created");
    let pid = s["pid"].as_i64().expect("pid") as i32;
    assert_eq!(
        std::fs::read_to_string(&pidfile).expect("pid file"),
        pid.to_string()
    );
    assert!(
        !b.path().join("rootfs/tmp/out").exists(),
        "the process must not run before start"
    );
    assert!(Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists());
    let listed = r.ok(&["list", "-q"]);
    assert!(listed.lines().any(|l| l == id));

    r.ok(&["start", &id]);
    assert_eq!(r.state(&id)["status"], "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.path().join("rootfs/tmp/out").exists() {
        assert!(Instant::now() < deadline, "process never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    let o = r.runc(&["start", &id]);
    assert!(!o.status.success(), "second start must fail");
    let o = r.runc(&["delete", &id]);
    assert!(
        !o.status.success(),
        "delete of a running container must fail"
    );

    r.ok(&["kill", &id, "KILL"]);
    reap(pid);
    r.wait_status(&id, "stopped");
    let o = r.runc(&["kill", &id, "TERM"]);
    assert!(!o.status.success(), "kill of a stopped container must fail");
    r.ok(&["delete", &id]);
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "init is gone");
}

#[test]
fn run_returns_the_exit_code_and_cleans_up() {
    if !need_root() {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "hostname; exit 7"]);
    b.edit(|s| s["hostname"] = json!("berth-test"));
    let r = Root::new();
    let id = unique("run");
    let o = r.runc(&["run", "-b", b.path().to_str().expect("utf8"), &id]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "berth-test");
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
}

fn start_sleeper(r: &Root, b: &Bundle, id: &str) -> i32 {
    r.ok(&["create", "-b", b.path().to_str().expect("utf8"), id]);
    r.ok(&["start", id]);
    r.state(id)["pid"].as_i64().expect("pid") as i32
}

#[test]
fn exec_joins_namespaces_and_cgroup() {
    if !need_root() {
        return;
    }
    become_subreaper();
    let b = Bundle::new(&["sleep", "1000"]);
    let r = Root::new();
    let id = unique("exec");
    let init = start_sleeper(&r, &b, &id);
    let o = r.runc(&["exec", &id, "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; cat /proc/self/cgroup | grep memory; exit 3"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let host_pidns = std::fs::read_link(format!("/proc/{init}/ns/pid")).expect("ns");
    let host_mntns = std::fs::read_link(format!("/proc/{init}/ns/mnt")).expect("ns");
    assert!(out.contains(&host_pidns.display().to_string()), "{out}");
    assert!(out.contains(&host_mntns.display().to_string()), "{out}");
    assert!(out.contains(":memory:/"), "{out}");
    // Detached with a pid file: the process is in the container's cgroup.
    let pf = b.path().join("exec.pid");
    r.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().expect("utf8"),
        &id,
        "sleep",
        "1000",
    ]);
    let pid: i32 = std::fs::read_to_string(&pf)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let ps: Vec<i32> =
        serde_json::from_str(&r.ok(&["ps", "--format", "json", &id])).expect("ps json");
    assert!(ps.contains(&pid) && ps.contains(&init), "{ps:?}");
    // A bad command is a clear error.
    let o = r.runc(&["exec", &id, "no-such-command"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    r.ok(&["kill", "--all", &id, "KILL"]);
    reap(pid);
    reap(init);
    r.wait_status(&id, "stopped");
    r.ok(&["delete", &id]);
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
}

#[test]
fn pause_resume_and_forced_delete() {
    if !need_root() {
        return;
    }
    become_subreaper();
    let b = Bundle::new(&["sleep", "1000"]);
    let r = Root::new();
    let id = unique("pause");
    let init = start_sleeper(&r, &b, &id);
    r.ok(&["pause", &id]);
    assert_eq!(r.state(&id)["status"], "paused");
    let fz = std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state"))
        .expect("freezer");
    assert_eq!(fz.trim(), "FROZEN");
    assert!(!r.runc(&["pause", &id]).status.success(), "pause twice");
    r.ok(&["resume", &id]);
    assert_eq!(r.state(&id)["status"], "running");
    let stats: Value = serde_json::from_str(&r.ok(&["events", "--stats", &id])).expect("stats");
    assert_eq!(stats["type"], "stats");
    assert!(stats["data"]["pids"]["current"].as_u64().expect("pids") >= 1);
    assert!(stats["data"]["memory"]["usage"].as_u64().expect("mem") > 0);
    r.ok(&["delete", "--force", &id]);
    reap(init);
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
}

#[test]
fn console_socket_receives_the_pty_master() {
    use std::io::{IoSliceMut, Read};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::net::UnixListener;
    if !need_root() {
        return;
    }
    become_subreaper();
    let b = Bundle::new(&["sh", "-c", "tty; echo term-ok; exec sleep 1000"]);
    b.edit(|s| s["process"]["terminal"] = json!(true));
    let r = Root::new();
    let id = unique("tty");
    let sock_path = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).expect("bind");
    let bundle = b.path().to_str().expect("utf8").to_owned();
    let sock = sock_path.to_str().expect("utf8").to_owned();
    let child = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .expect("recvmsg");
        let mut fds = Vec::new();
        for c in msg.cmsgs().expect("cmsgs") {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        assert_eq!(fds.len(), 1, "one pty master");
        // SAFETY: SCM_RIGHTS gave us a new fd.
        unsafe { OwnedFd::from_raw_fd(fds[0]) }
    });
    r.ok(&["create", "-b", &bundle, "--console-socket", &sock, &id]);
    let master = child.join().expect("receiver");
    r.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("term-ok") {
        let n = f.read(&mut buf).expect("read pty");
        assert!(n > 0, "pty closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("/dev/pts/0"), "{seen}");
    let pid = r.state(&id)["pid"].as_i64().expect("pid") as i32;
    r.ok(&["delete", "--force", &id]);
    reap(pid);
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
}

#[test]
fn host_fds_and_cwd_do_not_leak_in() {
    if !need_root() {
        return;
    }
    let b = Bundle::new(&[
        "sh",
        "-c",
        "ls /proc/self/fd | tr '\\n' ' '; echo; readlink /proc/self/cwd",
    ]);
    b.edit(|s| s["process"]["cwd"] = json!("/tmp"));
    let r = Root::new();
    let id = unique("fds");
    // An inheritable host fd (no close-on-exec) in the runtime's fd table.
    let host = std::fs::File::open("/etc/hostname").expect("open");
    // SAFETY: clearing FD_CLOEXEC on an fd we own.
    unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&host), libc::F_SETFD, 0) };
    let o = r.runc(&["run", "-b", b.path().to_str().expect("utf8"), &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut lines = out.lines();
    let fds: Vec<&str> = lines.next().expect("fd line").split_whitespace().collect();
    // 0, 1, 2 and the fd `ls` opened for the directory itself.
    assert!(fds.len() <= 4, "leaked fds: {fds:?}");
    assert_eq!(lines.next(), Some("/tmp"), "cwd is inside the rootfs");
    drop(host);
}

#[test]
fn runtime_binary_is_out_of_reach_from_the_container() {
    if !need_root() {
        return;
    }
    become_subreaper();
    let before = std::fs::read(BIN).expect("read binary");
    let b = Bundle::new(&["sleep", "1000"]);
    let r = Root::new();
    let id = unique("exe");
    // Created: init (pid 1 inside) still runs the runtime binary until start.
    r.ok(&["create", "-b", b.path().to_str().expect("utf8"), &id]);
    let init = r.state(&id)["pid"].as_i64().expect("pid") as i32;
    let o = r.runc(&[
        "exec", &id, "sh", "-c",
        "if cat /proc/1/exe >/dev/null 2>&1; then echo READ; fi; if (echo x >> /proc/1/exe) 2>/dev/null; then echo WROTE; fi; echo done",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("done"),
        "exec ran: {out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.contains("READ") && !out.contains("WROTE"), "{out}");
    assert_eq!(
        std::fs::read(BIN).expect("read binary"),
        before,
        "binary unchanged"
    );
    r.ok(&["delete", "--force", &id]);
    reap(init);
}

fn expect_clean_failure(b: &Bundle, r: &Root, id: &str, needle: &str) {
    let o = r.runc(&["create", "-b", b.path().to_str().expect("utf8"), id]);
    assert!(!o.status.success(), "create must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "error {err:?} lacks {needle:?}");
    assert_eq!(leftovers(r, id, b.path()), Vec::<String>::new());
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    if !need_root() {
        return;
    }
    become_subreaper();
    let r = Root::new();

    let b = Bundle::new(&["true"]);
    std::fs::remove_file(b.path().join("config.json")).expect("rm");
    expect_clean_failure(&b, &r, &unique("bad"), "config.json");

    let b = Bundle::new(&["true"]);
    std::fs::write(b.path().join("config.json"), "{ not json").expect("write");
    expect_clean_failure(&b, &r, &unique("bad"), "config.json");

    let b = Bundle::new(&["true"]);
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "bogus"}))
    });
    expect_clean_failure(&b, &r, &unique("bad"), "bogus");

    let b = Bundle::new(&["true"]);
    b.edit(|s| s["process"]["capabilities"]["bounding"] = json!(["CAP_NOT_A_CAP"]));
    expect_clean_failure(&b, &r, &unique("bad"), "CAP_NOT_A_CAP");

    let b = Bundle::new(&["true"]);
    b.edit(|s| s["root"]["path"] = json!("../"));
    expect_clean_failure(&b, &r, &unique("bad"), "leaves the bundle");

    // Refused by the plan before anything exists.
    let b = Bundle::new(&["true"]);
    b.edit(|s| s["linux"]["resources"]["memory"] = json!({"limit": 1000, "swap": 10}));
    expect_clean_failure(&b, &r, &unique("bad"), "memory+swap");

    // Refused by the kernel after the cgroup was made: it must be removed again.
    let b = Bundle::new(&["true"]);
    b.edit(|s| s["linux"]["resources"]["cpu"] = json!({"cpus": "4096"}));
    expect_clean_failure(&b, &r, &unique("bad"), "cpuset.cpus");

    // Fails inside init after mounts were made: nothing may remain either.
    let b = Bundle::new(&["no-such-binary"]);
    expect_clean_failure(&b, &r, &unique("bad"), "not found");

    assert_eq!(
        std::fs::read_dir(r.dir.path()).expect("root").count(),
        0,
        "no state dirs"
    );
}

#[test]
fn v2_device_program_loads_and_is_enforced() {
    if !need_root() {
        return;
    }
    let unified = if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        PathBuf::from("/sys/fs/cgroup/unified")
    } else {
        PathBuf::from("/sys/fs/cgroup")
    };
    struct Cg(PathBuf);
    impl Drop for Cg {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let cg = Cg(unified.join(unique("bpfdev")));
    std::fs::create_dir(&cg.0).expect("mkdir cgroup");
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
    )
    .expect("rules");
    let prog = berth_runtime::cgroups::devices_v2::program(&rules).expect("program");
    berth_runtime::cgroups::devices_v2::attach(&prog, &cg.0).expect("the verifier accepts it");
    let script = format!(
        "echo $$ > {}/cgroup.procs && echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null 2>&1 || echo zero-denied",
        cg.0.display()
    );
    let o = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("sh");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("null-ok") && out.contains("zero-denied"),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn seccomp_profile_is_enforced() {
    if !need_root() {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "mkdir /tmp/x 2>&1; echo after"]);
    b.edit(|s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        })
    });
    let r = Root::new();
    let id = unique("seccomp");
    let o = r.runc(&["run", "-b", b.path().to_str().expect("utf8"), &id]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("Operation not permitted") && out.contains("after"),
        "{out}"
    );
    assert!(!b.path().join("rootfs/tmp/x").exists());
    // An action the compiler cannot enforce is refused at create, leaving nothing.
    b.edit(|s| s["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_NOTIFY"));
    let id = unique("seccomp");
    let o = r.runc(&["run", "-b", b.path().to_str().expect("utf8"), &id]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("SCMP_ACT_NOTIFY"));
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
}

#[test]
fn user_namespace_maps_root() {
    if !need_root() {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "cat /proc/self/uid_map; id -u"]);
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    let r = Root::new();
    let id = unique("userns");
    let o = r.runc(&["run", "-b", b.path().to_str().expect("utf8"), &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let map: Vec<&str> = out
        .lines()
        .next()
        .expect("map line")
        .split_whitespace()
        .collect();
    assert_eq!(map, ["0", "200000", "65536"]);
    assert_eq!(out.lines().nth(1), Some("0"));
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
}

#[test]
fn preserved_fds_reach_the_container() {
    if !need_root() {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "cat <&3; ls /proc/self/fd | wc -l"]);
    let r = Root::new();
    let id = unique("preserve");
    let msg = b.path().join("message");
    std::fs::write(&msg, "through fd 3\n").expect("write");
    let io = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "exec 3< {}; exec {BIN} --root {} run --preserve-fds 1 -b {} {id} > {}/out 2> {}/err",
        msg.display(),
        r.dir.path().display(),
        b.path().display(),
        io.path().display(),
        io.path().display()
    );
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .status()
        .expect("sh");
    let out = std::fs::read_to_string(io.path().join("out")).expect("out");
    let err = std::fs::read_to_string(io.path().join("err")).expect("err");
    assert!(status.success(), "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("through fd 3"));
    // 0, 1, 2, the preserved 3 and the directory fd of `ls`.
    assert_eq!(lines.next().map(str::trim), Some("5"), "{out}");
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
}

/// The last error record of a `--log-format json` file.
fn last_error(log: &Path) -> berth_runtime::log::Record {
    let text = std::fs::read_to_string(log).expect("log file");
    text.lines()
        .filter_map(|l| serde_json::from_str::<berth_runtime::log::Record>(l).ok())
        .rfind(|r| r.is_error())
        .unwrap_or_else(|| panic!("no error record in {text:?}"))
}

#[test]
fn exec_failures_are_typed_on_stderr_and_the_json_log() {
    if !need_root() {
        return;
    }
    become_subreaper();
    let r = Root::new();
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("log.json");
    let log_s = log.to_str().expect("utf8");
    let create = |b: &Bundle, id: &str| {
        r.runc(&[
            "--log",
            log_s,
            "--log-format",
            "json",
            "create",
            "-b",
            b.path().to_str().expect("utf8"),
            id,
        ])
    };

    // Not in $PATH: create fails (runc's LookPath before the start wait), nothing left.
    let b = Bundle::new(&["nosuchcmd"]);
    let id = unique("enoent");
    let o = create(&b, &id);
    assert!(!o.status.success());
    let want = r#"unable to start container process: exec: "nosuchcmd": executable file not found in $PATH"#;
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(want),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rec = last_error(&log);
    assert_eq!(rec.msg, want);
    assert_eq!(rec.kind.as_deref(), Some("executable-not-found"));
    assert_eq!(rec.errno, Some(libc::ENOENT));
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());

    // A file without an x bit: permission denied, kind not-executable.
    let b = Bundle::new(&["/bin/data"]);
    std::fs::write(b.path().join("rootfs/bin/data"), "not a program").expect("write");
    let id = unique("eacces");
    let o = create(&b, &id);
    assert!(!o.status.success());
    let rec = last_error(&log);
    assert_eq!(
        rec.msg,
        r#"unable to start container process: exec: "/bin/data": permission denied"#
    );
    assert_eq!(rec.kind.as_deref(), Some("not-executable"));
    assert_eq!(rec.errno, Some(libc::EACCES));
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());

    // Gone between create and start: execve's ENOENT comes back typed over the start
    // socket, and `start` fails with the same kind.
    let b = Bundle::new(&["/bin/tool"]);
    std::fs::copy("/bin/busybox", b.path().join("rootfs/bin/tool")).expect("copy");
    let id = unique("gone");
    let o = create(&b, &id);
    assert!(
        o.status.success(),
        "create: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let pid = r.state(&id)["pid"].as_i64().expect("pid") as i32;
    std::fs::remove_file(b.path().join("rootfs/bin/tool")).expect("rm");
    let o = r.runc(&["--log", log_s, "--log-format", "json", "start", &id]);
    assert!(!o.status.success());
    let rec = last_error(&log);
    assert_eq!(
        rec.msg,
        r#"unable to start container process: exec: "/bin/tool": no such file or directory"#
    );
    assert_eq!(rec.kind.as_deref(), Some("executable-not-found"));
    assert_eq!(rec.errno, Some(libc::ENOENT));
    reap(pid);
    r.wait_status(&id, "stopped");
    r.ok(&["delete", &id]);
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());

    // exec of a missing command in a running container: the same typed record.
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique("exec-enoent");
    let init = start_sleeper(&r, &b, &id);
    let o = r.runc(&[
        "--log",
        log_s,
        "--log-format",
        "json",
        "exec",
        "-d",
        &id,
        "nosuchcmd",
    ]);
    assert!(!o.status.success());
    let rec = last_error(&log);
    assert_eq!(rec.kind.as_deref(), Some("executable-not-found"));
    assert!(rec.msg.contains(r#"exec: "nosuchcmd""#), "{}", rec.msg);
    r.ok(&["kill", "--all", &id, "KILL"]);
    reap(init);
    r.wait_status(&id, "stopped");
    r.ok(&["delete", &id]);
    assert_eq!(leftovers(&r, &id, b.path()), Vec::<String>::new());
}
