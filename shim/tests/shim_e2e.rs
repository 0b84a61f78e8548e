//! End-to-end tests of a real berth-shim (root): a busybox bundle built from
//! /bin/busybox, the shim started with `start`, driven over its socket with
//! the tonic client, events received by a stand-in berthd.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::berth::shim::v1 as pb;
use berth_api::berth::shim::v1::shim_client::ShimClient;
use berth_api::containerd::services::events::v1::events_server::{Events, EventsServer};
use berth_api::containerd::services::events::v1::{Envelope, ForwardRequest};
use berth_api::containerd::types::Mount;
use berth_api::containerd::v1::types::Status as PbStatus;
use berth_api::io::containerd::cgroups::v1::Metrics;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use prost::Message;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::Notify;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::Code;
use tonic::transport::Channel;

/// The shim under test; `BERTH_SHIM_BIN` runs the tests against another
/// build (e.g. target/release/berth-shim, to measure it).
fn shim_bin() -> String {
    std::env::var("BERTH_SHIM_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth-shim").to_owned())
}
const LONG: Duration = Duration::from_secs(20);

fn have_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "this test needs root (CI=true)"
    );
    false
}

/// The stand-in berthd: records forwarded envelopes.
#[derive(Clone, Default)]
struct Recorder {
    got: Arc<Mutex<Vec<Envelope>>>,
    more: Arc<Notify>,
}

#[tonic::async_trait]
impl Events for Recorder {
    async fn forward(
        &self,
        req: tonic::Request<ForwardRequest>,
    ) -> Result<tonic::Response<()>, tonic::Status> {
        if let Some(env) = req.into_inner().envelope {
            self.got.lock().expect("lock").push(env);
            self.more.notify_waiters();
        }
        Ok(tonic::Response::new(()))
    }
}

impl Recorder {
    fn topics(&self) -> Vec<String> {
        let got = self.got.lock().expect("lock");
        got.iter().map(|e| e.topic.clone()).collect()
    }

    /// Waits until `topic` has been received `n` times.
    async fn wait_for(&self, topic: &str, n: usize) {
        let count = || self.topics().iter().filter(|t| *t == topic).count();
        tokio::time::timeout(LONG, async {
            loop {
                let more = self.more.notified();
                if count() >= n {
                    return;
                }
                more.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {topic} event; got {:?}", self.topics()));
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One test's world: state dir, bundle, busybox rootfs source, berthd
/// stand-in. Drop kills what is left and unmounts.
struct World {
    dir: tempfile::TempDir,
    ns: String,
    id: String,
    state: PathBuf,
    bundle: PathBuf,
    rootsrc: PathBuf,
    berthd: PathBuf,
    events: Recorder,
}

impl World {
    async fn new(args: &[&str]) -> World {
        World::with_spec(args, |_| {}).await
    }

    async fn with_spec(args: &[&str], tweak: impl FnOnce(&mut serde_json::Value)) -> World {
        let dir = tempfile::Builder::new()
            .prefix("bs")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let ns = format!("berth-shim-test-{}-{n}", std::process::id());
        let id = format!("c{n}");
        let state = dir.path().join("state");
        let bundle = state.join("tasks").join(&ns).join(&id);
        let rootsrc = dir.path().join("rootsrc");
        std::fs::create_dir_all(bundle.join("rootfs")).expect("bundle");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "run"] {
            std::fs::create_dir_all(rootsrc.join(d)).expect("rootfs dir");
        }
        std::fs::copy("/bin/busybox", rootsrc.join("bin/busybox")).expect("busybox");
        for applet in ["sh", "echo", "sleep", "cat", "true", "stty"] {
            std::os::unix::fs::symlink("busybox", rootsrc.join("bin").join(applet))
                .expect("applet");
        }
        // The runtime's default spec, adjusted like ctr's.
        let out = Command::new(shim_bin())
            .args(["runtime", "spec"])
            .current_dir(&bundle)
            .output()
            .expect("runtime spec");
        assert!(out.status.success(), "spec: {out:?}");
        let path = bundle.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("config")).expect("json");
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["terminal"] = serde_json::json!(false);
        spec["root"]["readonly"] = serde_json::json!(false);
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{ns}/{id}"));
        tweak(&mut spec);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("encode")).expect("write");

        let berthd = dir.path().join("berthd.sock");
        let events = Recorder::default();
        let listener = tokio::net::UnixListener::bind(&berthd).expect("bind berthd");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(EventsServer::new(events.clone()))
                .serve_with_incoming(UnixListenerStream::new(listener)),
        );
        World {
            dir,
            ns,
            id,
            state,
            bundle,
            rootsrc,
            berthd,
            events,
        }
    }

    fn flags(&self) -> Vec<String> {
        vec![
            "--namespace".into(),
            self.ns.clone(),
            "--id".into(),
            self.id.clone(),
            "--bundle".into(),
            self.bundle.display().to_string(),
            "--address".into(),
            format!("unix://{}", self.berthd.display()),
            "--state".into(),
            self.state.display().to_string(),
        ]
    }

    fn start(&self) -> String {
        let out = Command::new(shim_bin())
            .arg("start")
            .args(self.flags())
            .current_dir(&self.bundle)
            .output()
            .expect("run start");
        assert!(
            out.status.success(),
            "start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }

    fn shim_pid(&self) -> i32 {
        std::fs::read_to_string(self.bundle.join("shim.pid"))
            .expect("shim.pid")
            .trim()
            .parse()
            .expect("pid")
    }

    fn client(&self, address: &str) -> ShimClient<Channel> {
        ShimClient::new(berth_shim::events::connect_lazy(PathBuf::from(
            address.strip_prefix("unix://").expect("unix address"),
        )))
    }

    fn fifo(&self, name: &str) -> String {
        let p = self.dir.path().join(name);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).expect("mkfifo");
        p.display().to_string()
    }

    fn create_req(&self) -> pb::CreateRequest {
        pb::CreateRequest {
            id: self.id.clone(),
            bundle: self.bundle.display().to_string(),
            rootfs: vec![Mount {
                r#type: "bind".into(),
                source: self.rootsrc.display().to_string(),
                target: String::new(),
                options: vec!["rbind".into(), "rw".into()],
            }],
            ..Default::default()
        }
    }

    fn rootfs_mounted(&self) -> bool {
        let rootfs = self.bundle.join("rootfs").display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(rootfs.as_str()))
    }

    /// An exec process spec: the container's, with other args.
    fn process(&self, args: &[&str]) -> prost_types::Any {
        let spec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.bundle.join("config.json")).expect("config"),
        )
        .expect("json");
        let mut p = spec["process"].clone();
        p["args"] = serde_json::json!(args);
        berth_api::any::pack_json(
            berth_api::any::PROCESS_TYPE_URL,
            serde_json::to_vec(&p).expect("encode"),
        )
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.bundle.join("shim.pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let root = self.state.join("runtime").join(&self.ns);
        let _ = Command::new(shim_bin())
            .arg("runtime")
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &self.id])
            .output();
        for _ in 0..8 {
            if nix::mount::umount2(
                &self.bundle.join("rootfs"),
                nix::mount::MntFlags::MNT_DETACH,
            )
            .is_err()
            {
                break;
            }
        }
        if let Ok(ctrls) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in ctrls.flatten() {
                let _ = std::fs::remove_dir(c.path().join(&self.ns).join(&self.id));
                let _ = std::fs::remove_dir(c.path().join(&self.ns));
            }
        }
    }
}

/// Waits until `pid` has exited (pidfd), at most `limit`.
fn wait_gone(pid: i32, limit: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        // Already reaped.
        return true;
    }
    // SAFETY: pidfd_open just returned this fd to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(&fd),
        PollFlags::POLLIN,
    )];
    let ms = PollTimeout::try_from(limit.as_millis() as i32).expect("timeout");
    poll(&mut fds, ms).expect("poll pidfd") == 1
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

async fn read_fifo(path: &str) -> tokio::task::JoinHandle<String> {
    let mut rx = pipe::OpenOptions::new()
        .open_receiver(path)
        .expect("open fifo");
    tokio::spawn(async move {
        let mut s = String::new();
        tokio::time::timeout(LONG, rx.read_to_string(&mut s))
            .await
            .expect("fifo EOF in time")
            .expect("read fifo");
        s
    })
}

async fn shutdown_and_check_gone(w: &World, client: &mut ShimClient<Channel>) {
    let shim = w.shim_pid();
    client
        .shutdown(pb::ShutdownRequest {
            id: w.id.clone(),
            now: false,
        })
        .await
        .expect("shutdown");
    assert!(wait_gone(shim, LONG), "shim exited after Shutdown");
    let socket = berth_shim::paths::socket_path(&w.state, &w.ns, &w.id);
    assert!(!socket.exists(), "socket removed");
    assert!(!w.rootfs_mounted(), "rootfs unmounted");
    let leftovers: Vec<_> = std::fs::read_dir(socket.parent().expect("s dir"))
        .expect("ls s")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "no sockets left: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_output_and_exit_status() {
    if !have_root() {
        return;
    }
    let w = World::new(&["sh", "-c", "echo out; echo err >&2; exit 3"]).await;
    let address = w.start();
    assert_eq!(
        std::fs::read_to_string(w.bundle.join("address")).expect("address"),
        address
    );
    let mut c = w.client(&address);
    let (out, err) = (w.fifo("c-stdout"), w.fifo("c-stderr"));
    let mut req = w.create_req();
    req.stdout = out.clone();
    req.stderr = err.clone();
    let pid = c.create(req).await.expect("create").into_inner().pid;
    assert!(pid > 0);
    assert!(w.rootfs_mounted());
    // Created in the shim's own process: the waiting init holds none of the shim's
    // sockets (its listener, its connections), only its own.
    let sockets = |pid: i32| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("fd dir")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|l| l.display().to_string())
            .filter(|l| l.starts_with("socket:"))
            .collect()
    };
    assert!(
        !w.bundle.join(berth_shim::paths::RUNTIME_LOG).exists(),
        "no runtime helper ran (it would have opened its --log)"
    );
    let (init, shim) = (sockets(pid as i32), sockets(w.shim_pid()));
    assert!(!shim.is_empty(), "the shim serves on a socket");
    assert!(
        init.iter().all(|s| !shim.contains(s)),
        "init {init:?} shares a socket of the shim {shim:?}"
    );
    let (out, err) = (read_fifo(&out).await, read_fifo(&err).await);
    let mut waiter = c.clone();
    let id = w.id.clone();
    let wait = tokio::spawn(async move {
        waiter
            .wait(pb::WaitRequest {
                id,
                exec_id: String::new(),
            })
            .await
    });
    let started = c
        .start(pb::StartRequest {
            id: w.id.clone(),
            exec_id: String::new(),
        })
        .await
        .expect("start")
        .into_inner();
    assert_eq!(started.pid, pid);
    let exit = wait.await.expect("join").expect("wait").into_inner();
    assert_eq!(exit.exit_status, 3);
    assert_eq!(out.await.expect("stdout"), "out\n");
    assert_eq!(err.await.expect("stderr"), "err\n");
    let st = c
        .state(pb::StateRequest {
            id: w.id.clone(),
            exec_id: String::new(),
        })
        .await
        .expect("state")
        .into_inner();
    assert_eq!((st.status, st.exit_status), (PbStatus::Stopped as i32, 3));
    let del = c
        .delete(pb::DeleteRequest {
            id: w.id.clone(),
            exec_id: String::new(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert_eq!((del.pid, del.exit_status), (pid, 3));
    let gone = c
        .state(pb::StateRequest {
            id: w.id.clone(),
            exec_id: String::new(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    let log = std::fs::read_to_string(w.bundle.join("container.log")).expect("container.log");
    assert!(log.contains(r#""log":"out\n""#), "{log}");
    assert!(log.contains(r#""log":"err\n""#), "{log}");
    w.events.wait_for("/tasks/delete", 1).await;
    assert_eq!(
        w.events.topics(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    shutdown_and_check_gone(&w, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pause_resume_stats_and_kill() {
    if !have_root() {
        return;
    }
    let w = World::new(&["sleep", "1000"]).await;
    let address = w.start();
    let mut c = w.client(&address);
    let id = w.id.clone();
    let pid = c
        .create(w.create_req())
        .await
        .expect("create")
        .into_inner()
        .pid;
    c.start(pb::StartRequest {
        id: id.clone(),
        exec_id: String::new(),
    })
    .await
    .expect("start");

    // Exec with its own FIFO; its output arrives and the FIFO closes.
    let out = w.fifo("e1-stdout");
    let exec = |exec_id: &str, stdout: &str| pb::ExecRequest {
        id: id.clone(),
        exec_id: exec_id.into(),
        terminal: false,
        stdin: String::new(),
        stdout: stdout.into(),
        stderr: String::new(),
        spec: Some(w.process(&["sh", "-c", "echo hi"])),
    };
    c.exec(exec("e1", &out)).await.expect("exec");
    let dup = c.exec(exec("e1", "")).await.expect_err("duplicate");
    assert_eq!(dup.code(), Code::AlreadyExists);
    // Like ctr: the client's read end is open before Start.
    let reader = read_fifo(&out).await;
    let mut waiter = c.clone();
    let wid = id.clone();
    let wait = tokio::spawn(async move {
        waiter
            .wait(pb::WaitRequest {
                id: wid,
                exec_id: "e1".into(),
            })
            .await
    });
    let epid = c
        .start(pb::StartRequest {
            id: id.clone(),
            exec_id: "e1".into(),
        })
        .await
        .expect("start exec")
        .into_inner()
        .pid;
    assert!(epid > 0 && epid != pid);
    assert_eq!(
        wait.await
            .expect("join")
            .expect("wait")
            .into_inner()
            .exit_status,
        0
    );
    assert_eq!(reader.await.expect("exec out"), "hi\n");
    c.delete(pb::DeleteRequest {
        id: id.clone(),
        exec_id: "e1".into(),
    })
    .await
    .expect("delete exec");
    let unknown = c
        .kill(pb::KillRequest {
            id: id.clone(),
            exec_id: "nope".into(),
            signal: 9,
            all: false,
        })
        .await
        .expect_err("unknown exec");
    assert_eq!(unknown.code(), Code::NotFound);

    let pids = c
        .pids(pb::PidsRequest { id: id.clone() })
        .await
        .expect("pids")
        .into_inner();
    assert!(pids.processes.iter().any(|p| p.pid == pid), "{pids:?}");

    let status = |c: &mut ShimClient<Channel>| {
        let mut c = c.clone();
        let id = id.clone();
        async move {
            c.state(pb::StateRequest {
                id,
                exec_id: String::new(),
            })
            .await
            .expect("state")
            .into_inner()
            .status
        }
    };
    c.pause(pb::PauseRequest { id: id.clone() })
        .await
        .expect("pause");
    assert_eq!(status(&mut c).await, PbStatus::Paused as i32);
    c.resume(pb::ResumeRequest { id: id.clone() })
        .await
        .expect("resume");
    assert_eq!(status(&mut c).await, PbStatus::Running as i32);

    let stats = c
        .stats(pb::StatsRequest { id: id.clone() })
        .await
        .expect("stats")
        .into_inner()
        .stats
        .expect("any");
    assert_eq!(stats.type_url, "io.containerd.cgroups.v1.Metrics");
    let m: Metrics = berth_api::any::unpack(&stats).expect("metrics");
    let mem = m.memory.expect("memory").usage.expect("memory.usage");
    assert!(mem.usage > 0, "{mem:?}");
    assert!(m.cpu.expect("cpu").usage.is_some());
    assert!(m.pids.expect("pids").current >= 1);

    c.update(pb::UpdateRequest {
        id: id.clone(),
        resources: Some(berth_api::any::pack_json(
            berth_api::any::LINUX_RESOURCES_TYPE_URL,
            br#"{"pids":{"limit":50}}"#.to_vec(),
        )),
        annotations: Default::default(),
    })
    .await
    .expect("update");
    let pids_max = format!("/sys/fs/cgroup/pids/{}/{}/pids.max", w.ns, w.id);
    if Path::new("/sys/fs/cgroup/pids").exists() {
        assert_eq!(
            std::fs::read_to_string(&pids_max).expect("pids.max").trim(),
            "50"
        );
    }

    let busy = c
        .delete(pb::DeleteRequest {
            id: id.clone(),
            exec_id: String::new(),
        })
        .await
        .expect_err("running");
    assert_eq!(busy.code(), Code::FailedPrecondition);
    c.kill(pb::KillRequest {
        id: id.clone(),
        exec_id: String::new(),
        signal: 9,
        all: false,
    })
    .await
    .expect("kill");
    let exit = c
        .wait(pb::WaitRequest {
            id: id.clone(),
            exec_id: String::new(),
        })
        .await
        .expect("wait")
        .into_inner();
    assert_eq!(exit.exit_status, 137);
    let del = c
        .delete(pb::DeleteRequest {
            id: id.clone(),
            exec_id: String::new(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert_eq!(del.exit_status, 137);
    w.events.wait_for("/tasks/delete", 1).await;
    let topics = w.events.topics();
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/paused",
            "/tasks/resumed",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    shutdown_and_check_gone(&w, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_outlives_its_parent_and_delete_cleans_up_after_a_dead_shim() {
    if !have_root() {
        return;
    }
    let w = World::new(&["sleep", "1000"]).await;
    let address = w.start();
    let shim = w.shim_pid();
    // Detached: its own session, not our child (its parent `start` exited).
    assert_eq!(
        nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(shim)))
            .expect("sid")
            .as_raw(),
        shim
    );
    let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).expect("stat");
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    assert_ne!(ppid, std::process::id() as i32);
    // Idempotent start: same address, same shim.
    assert_eq!(w.start(), address);
    assert_eq!(w.shim_pid(), shim);

    let mut c = w.client(&address);
    let pid = c
        .create(w.create_req())
        .await
        .expect("create")
        .into_inner()
        .pid;
    c.start(pb::StartRequest {
        id: w.id.clone(),
        exec_id: String::new(),
    })
    .await
    .expect("start");
    let conn = c
        .connect(pb::ConnectRequest { id: w.id.clone() })
        .await
        .expect("connect")
        .into_inner();
    assert_eq!((conn.shim_pid, conn.task_pid), (shim as u32, pid));
    assert!(!conn.version.is_empty());

    // The shim dies; the container lives on.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill shim");
    assert!(wait_gone(shim, LONG));
    assert!(alive(pid), "container survives its shim");

    let out = Command::new(shim_bin())
        .arg("delete")
        .args(w.flags())
        .current_dir(&w.bundle)
        .output()
        .expect("run delete");
    assert!(
        out.status.success(),
        "delete failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp = pb::DeleteResponse::decode(out.stdout.as_slice()).expect("DeleteResponse");
    assert_eq!((resp.pid, resp.exit_status), (pid, 137));
    assert!(resp.exited_at.is_some());
    assert!(
        wait_gone(pid as i32, LONG) || !alive(pid),
        "container killed"
    );
    assert!(!w.rootfs_mounted());
    assert!(!berth_shim::paths::socket_path(&w.state, &w.ns, &w.id).exists());
}

async fn wait_exit(c: &mut ShimClient<Channel>, id: &str, exec_id: &str) -> u32 {
    tokio::time::timeout(
        LONG,
        c.wait(pb::WaitRequest {
            id: id.into(),
            exec_id: exec_id.into(),
        }),
    )
    .await
    .expect("exit in time")
    .expect("wait")
    .into_inner()
    .exit_status
}

async fn start_init(c: &mut ShimClient<Channel>, id: &str) {
    c.start(pb::StartRequest {
        id: id.into(),
        exec_id: String::new(),
    })
    .await
    .expect("start");
}

async fn delete_init(c: &mut ShimClient<Channel>, id: &str) -> u32 {
    c.delete(pb::DeleteRequest {
        id: id.into(),
        exec_id: String::new(),
    })
    .await
    .expect("delete")
    .into_inner()
    .exit_status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_gets_the_pty_and_resize() {
    if !have_root() {
        return;
    }
    let w = World::with_spec(&["sh", "-c", "stty size; exit 5"], |s| {
        s["process"]["terminal"] = serde_json::json!(true);
    })
    .await;
    let address = w.start();
    let mut c = w.client(&address);
    let out = w.fifo("t-stdout");
    let mut req = w.create_req();
    req.terminal = true;
    req.stdout = out.clone();
    req.stderr = w.fifo("t-stderr");
    c.create(req).await.expect("create with terminal");
    let reader = read_fifo(&out).await;
    c.resize_pty(pb::ResizePtyRequest {
        id: w.id.clone(),
        exec_id: String::new(),
        width: 120,
        height: 40,
    })
    .await
    .expect("resize");
    start_init(&mut c, &w.id).await;
    assert_eq!(wait_exit(&mut c, &w.id, "").await, 5);
    assert_eq!(reader.await.expect("tty output"), "40 120\r\n");
    assert_eq!(delete_init(&mut c, &w.id).await, 5);
    shutdown_and_check_gone(&w, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_reaches_the_container_and_close_io_ends_it() {
    if !have_root() {
        return;
    }
    use tokio::io::AsyncWriteExt;
    let w = World::new(&["cat"]).await;
    let address = w.start();
    let mut c = w.client(&address);
    let (inp, out) = (w.fifo("i-stdin"), w.fifo("i-stdout"));
    let mut req = w.create_req();
    req.stdin = inp.clone();
    req.stdout = out.clone();
    c.create(req).await.expect("create");
    let reader = read_fifo(&out).await;
    let mut writer = pipe::OpenOptions::new()
        .open_sender(&inp)
        .expect("client stdin writer");
    start_init(&mut c, &w.id).await;
    writer.write_all(b"abc\n").await.expect("write stdin");
    drop(writer);
    c.close_io(pb::CloseIoRequest {
        id: w.id.clone(),
        exec_id: String::new(),
        stdin: true,
    })
    .await
    .expect("close io");
    assert_eq!(wait_exit(&mut c, &w.id, "").await, 0);
    assert_eq!(reader.await.expect("stdout"), "abc\n");
    delete_init(&mut c, &w.id).await;
    shutdown_and_check_gone(&w, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kill_is_reported() {
    if !have_root() {
        return;
    }
    let w = World::with_spec(&["sh", "-c", "a=x; while :; do a=$a$a; done"], |s| {
        s["linux"]["resources"] = serde_json::json!({"memory": {"limit": 16 << 20}});
    })
    .await;
    let address = w.start();
    let mut c = w.client(&address);
    c.create(w.create_req()).await.expect("create");
    start_init(&mut c, &w.id).await;
    assert_eq!(wait_exit(&mut c, &w.id, "").await, 137);
    w.events.wait_for("/tasks/oom", 1).await;
    delete_init(&mut c, &w.id).await;
    shutdown_and_check_gone(&w, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_shim_uses_one_thread() {
    if !have_root() {
        return;
    }
    let w = World::new(&["sleep", "1000"]).await;
    let address = w.start();
    let mut c = w.client(&address);
    c.create(w.create_req()).await.expect("create");
    start_init(&mut c, &w.id).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", w.shim_pid())).expect("status");
    let threads: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    eprintln!("serving shim with a running container: Threads {threads}, VmRSS {rss}");
    assert!(threads <= 2, "shim runs {threads} threads");
    c.kill(pb::KillRequest {
        id: w.id.clone(),
        exec_id: String::new(),
        signal: 9,
        all: true,
    })
    .await
    .expect("kill");
    assert_eq!(wait_exit(&mut c, &w.id, "").await, 137);
    delete_init(&mut c, &w.id).await;
    shutdown_and_check_gone(&w, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_create_says_its_error_once_and_copies_nothing() {
    if !have_root() {
        return;
    }
    let w = World::new(&["nosuchcmd"]).await;
    let address = w.start();
    let mut c = w.client(&address);
    let (out, err) = (w.fifo("f-stdout"), w.fifo("f-stderr"));
    // Our own writers keep the FIFOs open until the create returned, so
    // EOF means: every handle of the shim is closed too.
    let (out_reader, err_reader) = (read_fifo(&out).await, read_fifo(&err).await);
    let open_writer = |p: &str| pipe::OpenOptions::new().open_sender(p).expect("writer");
    let writers = (open_writer(&out), open_writer(&err));
    let mut req = w.create_req();
    req.stdout = out;
    req.stderr = err;
    let failed = c
        .create(req)
        .await
        .expect_err("create of a missing command");
    assert_eq!(failed.code(), Code::NotFound, "{failed:?}");
    let want = r#"exec: "nosuchcmd": executable file not found in $PATH"#;
    assert!(failed.message().contains(want), "{}", failed.message());
    drop(writers);
    // The runtime printed it on the container's stderr too; those pipes were
    // closed unread, so the client's FIFOs reach EOF empty.
    assert_eq!(err_reader.await.expect("stderr"), "");
    assert_eq!(out_reader.await.expect("stdout"), "");
    let log = std::fs::read_to_string(w.bundle.join("container.log")).unwrap_or_default();
    assert!(!log.contains("nosuchcmd"), "container.log: {log}");
    // Created in the shim's own process: the failure is in the shim's log.
    let shim_log =
        std::fs::read_to_string(w.bundle.join(berth_shim::paths::SHIM_LOG)).expect("shim log");
    assert!(shim_log.contains("nosuchcmd"), "{shim_log}");
    assert!(
        !w.rootfs_mounted(),
        "rootfs unmounted after the failed create"
    );
    assert_eq!(w.events.topics(), Vec::<String>::new());
    shutdown_and_check_gone(&w, &mut c).await;
}
