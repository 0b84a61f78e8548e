//! Tasks end to end: the real `ctr` runs containers through berthd and berth-shim, with a
//! busybox rootfs directory built by the test (`ctr run --rootfs`, no image needed).
//! Covers stdio and exit codes, the detached lifecycle with events, berthd kill -9 and
//! restart, a SIGKILLed shim, and containerd's error codes for bad input.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_api::containerd::services::containers::v1 as cpb;
use berth_api::containerd::services::tasks::v1 as tpb;
use berth_tests::{Berthd, ctr, ctr_ok, require_root};

const SPEC_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const PROCESS_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// A busybox root filesystem in a temp dir (removed on drop).
struct Rootfs(tempfile::TempDir);

impl Rootfs {
    fn busybox() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-rootfs-")
            .tempdir()
            .expect("rootfs temp dir");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "run"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("rootfs dir");
        }
        std::fs::copy("/bin/busybox", dir.path().join("bin/busybox"))
            .expect("copy /bin/busybox (package busybox-static)");
        for applet in ["sh", "echo", "sleep", "true", "cat", "ls", "touch"] {
            std::os::unix::fs::symlink("busybox", dir.path().join("bin").join(applet))
                .expect("applet link");
        }
        Rootfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn arg(&self) -> String {
        self.path().display().to_string()
    }
}

/// A daemon, a fresh namespace and a busybox rootfs for `test`; `None` without root
/// (which fails the test under `CI=true`, see `require_root`).
fn daemon_with_rootfs(test: &str) -> Option<(Berthd, String, Rootfs)> {
    if !require_root(test) {
        return None;
    }
    let d = Berthd::start();
    let ns = d.namespace();
    Some((d, ns, Rootfs::busybox()))
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `limit`.
fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `ctr tasks ls` as (id, pid, status) rows.
fn tasks(d: &Berthd, ns: &str) -> Vec<(String, u32, String)> {
    let out = ctr_ok(&d.socket(), ns, &["tasks", "ls"]);
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let id = f.next()?.to_string();
            let pid = f.next()?.parse().ok()?;
            let status = f.next()?.to_string();
            Some((id, pid, status))
        })
        .collect()
}

fn task(d: &Berthd, ns: &str, id: &str) -> Option<(u32, String)> {
    tasks(d, ns)
        .into_iter()
        .find(|t| t.0 == id)
        .map(|t| (t.1, t.2))
}

fn bundle(d: &Berthd, ns: &str, id: &str) -> PathBuf {
    d.state().join("tasks").join(ns).join(id)
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// `ctr events` in the background, its lines on a channel.
struct Events {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Events {
    /// Starts `ctr events` and returns once it demonstrably receives events.
    fn start(d: &Berthd) -> Self {
        let mut child = Command::new("ctr")
            .arg("--address")
            .arg(d.socket())
            .arg("events")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ctr events");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut ev = Events {
            child,
            lines,
            seen: Vec::new(),
        };
        // The subscription is live once a probe event comes through.
        let probe = d.namespace();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            ctr_ok(
                &d.socket(),
                &probe,
                &["namespaces", "label", &probe, "probe=1"],
            );
            if ev.wait_for(Duration::from_millis(200), |l| l.contains(&probe)) {
                return ev;
            }
            assert!(
                Instant::now() < deadline,
                "ctr events never showed the probe"
            );
        }
    }

    /// Waits up to `limit` for a line matching `pred` (lines are kept).
    fn wait_for(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> bool {
        if self.seen.iter().any(|l| pred(l)) {
            return true;
        }
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Topics of the task events of container `id` in namespace `ns`, in order.
    fn task_topics(&self, ns: &str, id: &str) -> Vec<String> {
        let needle = format!("\"container_id\":\"{id}\"");
        self.seen
            .iter()
            .filter(|l| l.contains(&format!(" {ns} /tasks/")) && l.contains(&needle))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn run_rm_delivers_stdio_and_exit_code() {
    let Some((d, ns, rootfs)) = daemon_with_rootfs("run_rm_delivers_stdio_and_exit_code") else {
        return;
    };
    let out = ctr(
        &d.socket(),
        &ns,
        &[
            "run",
            "--rm",
            "--rootfs",
            &rootfs.arg(),
            "c1",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(out.code, Some(3), "{out:?}\n{}", d.log());
    assert_eq!(out.stdout.trim(), "out", "{out:?}");
    assert!(out.stderr.lines().any(|l| l == "err"), "{out:?}");
    assert!(tasks(&d, &ns).is_empty());
    assert!(!bundle(&d, &ns, "c1").exists(), "bundle removed");
    let containers = ctr_ok(&d.socket(), &ns, &["containers", "ls", "-q"]);
    assert!(containers.stdout.trim().is_empty(), "{containers:?}");
}

#[test]
fn detached_task_lifecycle_with_events() {
    let Some((d, ns, rootfs)) = daemon_with_rootfs("detached_task_lifecycle_with_events") else {
        return;
    };
    let s = d.socket();
    let mut events = Events::start(&d);

    ctr_ok(
        &s,
        &ns,
        &[
            "run",
            "-d",
            "--rootfs",
            &rootfs.arg(),
            "c2",
            "sleep",
            "1000",
        ],
    );
    let (pid, status) = task(&d, &ns, "c2").expect("c2 listed");
    assert_eq!(status, "RUNNING");
    assert!(pid_alive(pid));

    let out = ctr_ok(
        &s,
        &ns,
        &[
            "tasks",
            "exec",
            "--exec-id",
            "e1",
            "c2",
            "sh",
            "-c",
            "echo hi",
        ],
    );
    assert_eq!(out.stdout.trim(), "hi");
    let ps = ctr_ok(&s, &ns, &["tasks", "ps", "c2"]);
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "{ps:?}"
    );

    ctr_ok(&s, &ns, &["tasks", "pause", "c2"]);
    assert_eq!(task(&d, &ns, "c2").expect("c2").1, "PAUSED");
    ctr_ok(&s, &ns, &["tasks", "resume", "c2"]);
    assert_eq!(task(&d, &ns, "c2").expect("c2").1, "RUNNING");

    let m = ctr_ok(&s, &ns, &["tasks", "metrics", "c2"]);
    assert!(m.stdout.contains("memory.usage_in_bytes"), "{m:?}");

    ctr_ok(&s, &ns, &["tasks", "kill", "-s", "SIGKILL", "c2"]);
    eventually(Duration::from_secs(5), "c2 stopped", || {
        task(&d, &ns, "c2").is_some_and(|t| t.1 == "STOPPED")
    });
    ctr_ok(&s, &ns, &["tasks", "rm", "c2"]);
    ctr_ok(&s, &ns, &["containers", "rm", "c2"]);
    assert!(task(&d, &ns, "c2").is_none());
    assert!(!pid_alive(pid));
    assert!(!bundle(&d, &ns, "c2").exists());

    assert!(
        events.wait_for(Duration::from_secs(5), |l| l.contains("/tasks/delete")),
        "delete event: {:?}",
        events.seen
    );
    let topics = events.task_topics(&ns, "c2");
    let wanted = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exit",
        "/tasks/delete",
    ];
    let mut it = topics.iter();
    for w in wanted {
        assert!(
            it.any(|t| t == w),
            "{w} missing or out of order in {topics:?}"
        );
    }
}

#[test]
fn restart_keeps_live_tasks_and_reports_exits() {
    if !require_root("restart_keeps_live_tasks_and_reports_exits") {
        return;
    }
    let mut d = Berthd::start();
    let ns = d.namespace();
    let rootfs = Rootfs::busybox();
    let s = d.socket();
    ctr_ok(
        &s,
        &ns,
        &[
            "run",
            "-d",
            "--rootfs",
            &rootfs.arg(),
            "live",
            "sleep",
            "1000",
        ],
    );
    let waits = "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 7";
    ctr_ok(
        &s,
        &ns,
        &[
            "run",
            "-d",
            "--rootfs",
            &rootfs.arg(),
            "ex",
            "sh",
            "-c",
            waits,
        ],
    );
    let (ex_pid, _) = task(&d, &ns, "ex").expect("ex listed");

    d.kill9();
    std::fs::write(rootfs.path().join("tmp/go"), b"").expect("trigger the exit");
    eventually(
        Duration::from_secs(5),
        "ex exits while berthd is down",
        || !pid_alive(ex_pid),
    );
    d.restart();

    assert_eq!(
        task(&d, &ns, "live").expect("live").1,
        "RUNNING",
        "{}",
        d.log()
    );
    assert_eq!(task(&d, &ns, "ex").expect("ex").1, "STOPPED");
    let out = ctr_ok(
        &s,
        &ns,
        &[
            "tasks",
            "exec",
            "--exec-id",
            "after",
            "live",
            "echo",
            "back",
        ],
    );
    assert_eq!(out.stdout.trim(), "back");

    // `tasks rm` reports the exit status the shim kept.
    let rm = ctr_ok(&s, &ns, &["tasks", "rm", "ex"]);
    assert!(rm.stderr.contains("exit code 7"), "{rm:?}");
    ctr_ok(&s, &ns, &["tasks", "kill", "-s", "SIGKILL", "live"]);
    eventually(Duration::from_secs(5), "live stopped", || {
        task(&d, &ns, "live").is_some_and(|t| t.1 == "STOPPED")
    });
    let rm = ctr_ok(&s, &ns, &["tasks", "rm", "live"]);
    assert!(rm.stderr.contains("exit code 137"), "{rm:?}");
    ctr_ok(&s, &ns, &["containers", "rm", "live", "ex"]);
}

#[test]
fn killed_shim_is_cleaned_up_within_a_second() {
    let Some((d, ns, rootfs)) = daemon_with_rootfs("killed_shim_is_cleaned_up_within_a_second")
    else {
        return;
    };
    let s = d.socket();
    ctr_ok(
        &s,
        &ns,
        &[
            "run",
            "-d",
            "--rootfs",
            &rootfs.arg(),
            "k1",
            "sleep",
            "1000",
        ],
    );
    let (pid, _) = task(&d, &ns, "k1").expect("k1 listed");
    let b = bundle(&d, &ns, "k1");
    let shim_pid: i32 = std::fs::read_to_string(b.join("shim.pid"))
        .expect("shim.pid")
        .trim()
        .parse()
        .expect("pid");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::SIGKILL,
    )
    .expect("kill the shim");
    eventually(
        Duration::from_secs(1),
        "task STOPPED within a second",
        || task(&d, &ns, "k1").is_some_and(|t| t.1 == "STOPPED"),
    );
    eventually(Duration::from_secs(1), "container process gone", || {
        !pid_alive(pid)
    });
    assert!(!b.exists(), "bundle removed");
    ctr_ok(&s, &ns, &["tasks", "rm", "k1"]);
    ctr_ok(&s, &ns, &["containers", "rm", "k1"]);
    assert!(task(&d, &ns, "k1").is_none());
    for ctl in ["memory", "pids", "cpu", "freezer"] {
        let cg = Path::new("/sys/fs/cgroup").join(ctl).join(&ns).join("k1");
        assert!(!cg.exists(), "{} left behind", cg.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let state = d.state().display().to_string();
    assert!(!mounts.contains(&state), "mounts left under the state dir");
}

/// A client of the daemon on `socket`, in namespace `ns`.
async fn client_in(socket: &Path, ns: &str) -> berth_client::Client {
    berth_client::Client::connect(socket)
        .await
        .expect("connect")
        .with_namespace(ns)
        .expect("namespace")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn bad_input_gets_containerd_codes() {
    let Some((d, ns, rootfs)) = daemon_with_rootfs("bad_input_gets_containerd_codes") else {
        return;
    };
    let s = d.socket();
    ctr_ok(
        &s,
        &ns,
        &[
            "run",
            "-d",
            "--rootfs",
            &rootfs.arg(),
            "ok",
            "sleep",
            "1000",
        ],
    );

    rt().block_on(async {
        let client = client_in(&s, &ns).await;
        let mut tasks = client.tasks();
        let create = |id: &str| tpb::CreateTaskRequest {
            container_id: id.into(),
            ..Default::default()
        };

        let err = tasks
            .create(create("missing"))
            .await
            .expect_err("no container");
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

        let mut c = cpb::Container {
            id: "badspec".into(),
            runtime: Some(cpb::container::Runtime {
                name: "io.containerd.runc.v2".into(),
                options: None,
            }),
            spec: Some(Default::default()),
            ..Default::default()
        };
        if let Some(spec) = c.spec.as_mut() {
            spec.type_url = SPEC_URL.into();
            spec.value = b"{not json".to_vec();
        }
        client
            .containers()
            .create(cpb::CreateContainerRequest { container: Some(c) })
            .await
            .expect("container with a bad spec is stored");
        let err = tasks.create(create("badspec")).await.expect_err("bad spec");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

        let exec = |exec_id: &str| {
            let mut req = tpb::ExecProcessRequest {
                container_id: "ok".into(),
                exec_id: exec_id.into(),
                spec: Some(Default::default()),
                ..Default::default()
            };
            if let Some(spec) = req.spec.as_mut() {
                spec.type_url = PROCESS_URL.into();
                spec.value =
                    br#"{"args":["true"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#
                        .to_vec();
            }
            req
        };
        tasks.exec(exec("e1")).await.expect("exec e1");
        let err = tasks.exec(exec("e1")).await.expect_err("duplicate exec");
        assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err:?}");
        tasks
            .start(tpb::StartRequest {
                container_id: "ok".into(),
                exec_id: "e1".into(),
            })
            .await
            .expect("start e1");
        tasks
            .wait(tpb::WaitRequest {
                container_id: "ok".into(),
                exec_id: "e1".into(),
            })
            .await
            .expect("wait e1");
        tasks
            .delete_process(tpb::DeleteProcessRequest {
                container_id: "ok".into(),
                exec_id: "e1".into(),
            })
            .await
            .expect("delete e1");

        let err = tasks
            .delete(tpb::DeleteTaskRequest {
                container_id: "ok".into(),
            })
            .await
            .expect_err("running");
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");

        let kill = || tpb::KillRequest {
            container_id: "ok".into(),
            signal: 9,
            ..Default::default()
        };
        tasks.kill(kill()).await.expect("kill");
        let w = tasks
            .wait(tpb::WaitRequest {
                container_id: "ok".into(),
                exec_id: String::new(),
            })
            .await
            .expect("wait");
        assert_eq!(w.into_inner().exit_status, 137);
        tasks
            .delete(tpb::DeleteTaskRequest {
                container_id: "ok".into(),
            })
            .await
            .expect("delete");
        let err = tasks.kill(kill()).await.expect_err("deleted");
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
        let err = tasks
            .get(tpb::GetRequest {
                container_id: "ok".into(),
                exec_id: String::new(),
            })
            .await
            .expect_err("deleted");
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    });
    ctr_ok(&s, &ns, &["containers", "rm", "ok", "badspec"]);
}

/// Runs `f(i)` for every `i` in `0..n`, `batch` at a time on threads.
fn in_batches(n: usize, batch: usize, f: impl Fn(usize) + Sync) {
    for start in (0..n).step_by(batch) {
        std::thread::scope(|s| {
            for i in start..(start + batch).min(n) {
                let f = &f;
                s.spawn(move || f(i));
            }
        });
    }
}

#[test]
fn stress_200_parallel_tasks_leave_nothing_behind() {
    if !require_root("stress_200_parallel_tasks_leave_nothing_behind") {
        return;
    }
    const N: usize = 200;
    const BATCH: usize = 20;
    let d = Berthd::start();
    let ns = d.namespace();
    let rootfs = Rootfs::busybox();
    let s = d.socket();
    let id = |i: usize| format!("{ns}-s{i}");

    in_batches(N, BATCH, |i| {
        ctr_ok(
            &s,
            &ns,
            &[
                "run",
                "-d",
                "--rootfs",
                &rootfs.arg(),
                &id(i),
                "sleep",
                "1000",
            ],
        );
    });
    let listed = tasks(&d, &ns);
    assert_eq!(listed.len(), N);
    assert!(listed.iter().all(|t| t.2 == "RUNNING"), "{listed:?}");
    let pids: Vec<u32> = listed.iter().map(|t| t.1).collect();

    in_batches(N, BATCH, |i| {
        ctr_ok(&s, &ns, &["tasks", "kill", "-s", "SIGKILL", &id(i)]);
    });
    eventually(Duration::from_secs(30), "all stopped", || {
        tasks(&d, &ns).iter().all(|t| t.2 == "STOPPED")
    });
    in_batches(N, BATCH, |i| {
        ctr_ok(&s, &ns, &["tasks", "rm", &id(i)]);
        ctr_ok(&s, &ns, &["containers", "rm", &id(i)]);
    });

    assert!(tasks(&d, &ns).is_empty());
    let cs = ctr_ok(&s, &ns, &["containers", "ls", "-q"]);
    assert!(cs.stdout.trim().is_empty(), "metadata records left: {cs:?}");
    assert!(
        pids.iter().all(|p| !pid_alive(*p)),
        "container processes left"
    );
    let state = d.state();
    let leftover = |dir: &Path| std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0);
    assert_eq!(leftover(&state.join("tasks").join(&ns)), 0, "bundles left");
    assert_eq!(leftover(&state.join("s")), 0, "shim sockets left");
    // Shims carry `--bundle <state>/tasks/...` (berthd itself only `--state`).
    let needle = state.join("tasks").display().to_string();
    let shims = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(shims, 0, "shim processes left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let state_str = state.display().to_string();
    assert!(
        !mounts.contains(&state_str),
        "mounts left under the state dir"
    );
    for ctl in ["memory", "pids", "cpu", "freezer"] {
        let dir = Path::new("/sys/fs/cgroup").join(ctl).join(&ns);
        let children = std::fs::read_dir(&dir)
            .map(|r| r.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0);
        assert_eq!(children, 0, "cgroups left in {}", dir.display());
    }
    let fifos = walk_names(Path::new("/run/containerd/fifo"));
    assert!(
        !fifos.iter().any(|n| n.starts_with(&format!("{ns}-s"))),
        "FIFOs left behind"
    );
}

/// File names below `dir` (two levels: ctr's FIFO dirs).
fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            out.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn shim_killed_while_berthd_is_down_is_cleaned_at_restart() {
    if !require_root("shim_killed_while_berthd_is_down_is_cleaned_at_restart") {
        return;
    }
    let mut d = Berthd::start();
    let ns = d.namespace();
    let rootfs = Rootfs::busybox();
    let s = d.socket();
    ctr_ok(
        &s,
        &ns,
        &[
            "run",
            "-d",
            "--rootfs",
            &rootfs.arg(),
            "gone",
            "sleep",
            "1000",
        ],
    );
    let (pid, _) = task(&d, &ns, "gone").expect("listed");
    let b = bundle(&d, &ns, "gone");
    let shim_pid: i32 = std::fs::read_to_string(b.join("shim.pid"))
        .expect("shim.pid")
        .trim()
        .parse()
        .expect("pid");

    d.kill9();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::SIGKILL,
    )
    .expect("kill the shim");
    d.restart();

    // containerd's dead-shim path: processes killed, bundle removed, task gone.
    assert!(task(&d, &ns, "gone").is_none(), "{}", d.log());
    eventually(Duration::from_secs(1), "container process gone", || {
        !pid_alive(pid)
    });
    assert!(!b.exists(), "bundle removed");
    for ctl in ["memory", "pids", "freezer"] {
        let cg = Path::new("/sys/fs/cgroup").join(ctl).join(&ns).join("gone");
        assert!(!cg.exists(), "{} left behind", cg.display());
    }
    ctr_ok(&s, &ns, &["containers", "rm", "gone"]);
}

#[test]
fn poststart_and_poststop_hooks_run_around_the_task() {
    let Some((d, ns, rootfs)) =
        daemon_with_rootfs("poststart_and_poststop_hooks_run_around_the_task")
    else {
        return;
    };
    let marks = tempfile::Builder::new()
        .prefix("berth-e2e-hooks-")
        .tempdir()
        .expect("marks dir");
    let s = d.socket();
    ctr_ok(
        &s,
        &ns,
        &[
            "containers",
            "create",
            "--rootfs",
            &rootfs.arg(),
            "h1",
            "sleep",
            "1000",
        ],
    );
    // Each hook writes the state it reads on stdin (the OCI state JSON) to a file.
    let hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}/{name}", marks.path().display())],
        })
    };
    rt().block_on(async {
        let client = client_in(&s, &ns).await;
        let mut c = client
            .containers()
            .get(cpb::GetContainerRequest { id: "h1".into() })
            .await
            .expect("get h1")
            .into_inner()
            .container
            .expect("container");
        let spec = c.spec.as_mut().expect("spec");
        let mut json: serde_json::Value = serde_json::from_slice(&spec.value).expect("spec json");
        json["hooks"] = serde_json::json!({
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
        spec.value = serde_json::to_vec(&json).expect("encode spec");
        client
            .containers()
            .update(cpb::UpdateContainerRequest {
                container: Some(c),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["spec".into()],
                }),
            })
            .await
            .expect("update spec");
    });
    ctr_ok(&s, &ns, &["tasks", "start", "-d", "--null-io", "h1"]);
    let started = std::fs::read_to_string(marks.path().join("poststart"))
        .expect("poststart hook ran before Start answered");
    assert!(started.contains(r#""id":"h1""#), "{started}");
    assert!(
        !marks.path().join("poststop").exists(),
        "poststop ran early"
    );
    ctr_ok(&s, &ns, &["tasks", "kill", "-s", "SIGKILL", "h1"]);
    eventually(Duration::from_secs(5), "h1 stopped", || {
        task(&d, &ns, "h1").is_some_and(|t| t.1 == "STOPPED")
    });
    ctr_ok(&s, &ns, &["tasks", "rm", "h1"]);
    let stopped = std::fs::read_to_string(marks.path().join("poststop"))
        .expect("poststop hook ran before Delete answered");
    assert!(stopped.contains(r#""id":"h1""#), "{stopped}");
    ctr_ok(&s, &ns, &["containers", "rm", "h1"]);
}
