use std::time::Duration;

use berth_api::{ErrorKind, HasKind};
use nix::sys::stat::Mode;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::*;
use crate::events::Forwarder;
use crate::mount;
use crate::runtime::fake::Fake;

struct Harness {
    task: Arc<Task<Fake>>,
    reaper: Reaper,
    events: Forwarder,
    dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let reaper = Reaper::new();
    let (publisher, events) = Publisher::new("ns1");
    let cfg = TaskConfig {
        namespace: "ns1".into(),
        id: "c1".into(),
        bundle: dir.path().to_owned(),
        console_dir: dir.path().to_owned(),
        console_prefix: "t".into(),
        drain_limit: Duration::from_secs(10),
        watch_oom: false,
        trim_after_start: false,
    };
    let task = Task::new(
        cfg,
        Fake::default(),
        reaper.clone(),
        publisher,
        Box::new(mount::Fake::default()),
    );
    Harness {
        task,
        reaper,
        events,
        dir,
    }
}

impl Harness {
    /// The process exits: the fds it held close, then the reaper sees it.
    fn exit(&self, pid: u32, status: u32) {
        self.task.runtime().stdio.lock().expect("lock").clear();
        self.reaper.dispatch(pid, Exit::now(status));
    }

    fn topics(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.events.try_next())
            .map(|e| e.topic)
            .collect()
    }

    fn create_req(&self) -> CreateRequest {
        CreateRequest {
            bundle: self.dir.path().to_owned(),
            rootfs: vec![Mount {
                r#type: "bind".into(),
                source: "/tmp".into(),
                target: String::new(),
                options: vec!["rbind".into()],
            }],
            ..Default::default()
        }
    }
}

fn spec() -> Vec<u8> {
    br#"{"args":["sh","-c","echo hi"],"cwd":"/"}"#.to_vec()
}

#[tokio::test]
async fn init_lifecycle_keeps_exit_until_delete_and_orders_events() {
    let mut h = harness();
    let pid = h.task.create(h.create_req()).await.expect("create");
    assert_eq!(h.task.state_of("").expect("state").status, Status::Created);
    // Wait before Start blocks until the exit.
    let waiter = {
        let t = h.task.clone();
        tokio::spawn(async move { t.wait("").await })
    };
    assert_eq!(h.task.start("").await.expect("start"), pid);
    assert_eq!(h.task.state_of("").expect("state").status, Status::Running);
    let err = h.task.delete("").await.expect_err("running");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(!waiter.is_finished());

    h.exit(pid, 3);
    let exit = waiter.await.expect("join").expect("wait");
    assert_eq!(exit.status, 3);
    // The exit stays until Delete, for every later Wait and State.
    assert_eq!(h.task.wait("").await.expect("again").status, 3);
    let st = h.task.state_of("").expect("state");
    assert_eq!(
        (st.status, st.exit.map(|e| e.status)),
        (Status::Stopped, Some(3))
    );
    let err = h.task.kill("", 9, false).await.expect_err("stopped");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let (dpid, dexit) = h.task.delete("").await.expect("delete");
    assert_eq!((dpid, dexit.status), (pid, 3));
    assert_eq!(
        h.task.state_of("").expect_err("gone").kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        h.task
            .create(h.create_req())
            .await
            .expect_err("deleted")
            .kind(),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(
        h.topics(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    let calls = h.task.runtime().calls();
    assert_eq!(calls, ["create c1", "start c1", "delete c1 true"]);
    assert!(h.task.can_shutdown());
}

#[tokio::test]
async fn second_create_is_already_exists_and_failed_create_unmounts() {
    let h = harness();
    h.task.runtime().fail.lock().expect("lock").push("create");
    let err = h.task.create(h.create_req()).await.expect_err("fails");
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(h.task.can_shutdown());
    h.task.runtime().fail.lock().expect("lock").clear();
    h.task.create(h.create_req()).await.expect("create");
    assert!(!h.task.can_shutdown());
    let err = h.task.create(h.create_req()).await.expect_err("twice");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
}

#[tokio::test]
async fn execs_have_unique_ids_and_their_own_lifecycle() {
    let mut h = harness();
    assert_eq!(
        h.task
            .exec("e1", StdioPaths::default(), spec())
            .await
            .expect_err("no task")
            .kind(),
        ErrorKind::NotFound
    );
    let init = h.task.create(h.create_req()).await.expect("create");
    h.task.start("").await.expect("start");
    h.task
        .exec("e1", StdioPaths::default(), spec())
        .await
        .expect("exec");
    let dup = h.task.exec("e1", StdioPaths::default(), spec()).await;
    assert_eq!(dup.expect_err("dup").kind(), ErrorKind::AlreadyExists);
    for bad in ["", "../x", "a/b", &"x".repeat(77)] {
        let e = h.task.exec(bad, StdioPaths::default(), spec()).await;
        assert_eq!(
            e.expect_err(bad).kind(),
            ErrorKind::InvalidArgument,
            "{bad}"
        );
    }
    let e = h
        .task
        .exec("e2", StdioPaths::default(), b"not json".to_vec())
        .await;
    assert_eq!(e.expect_err("spec").kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        h.task.state_of("nope").expect_err("unknown").kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        h.task
            .kill("nope", 9, false)
            .await
            .expect_err("unknown")
            .kind(),
        ErrorKind::NotFound
    );
    let st = h.task.state_of("e1").expect("state");
    assert_eq!((st.pid, st.status), (0, Status::Created));

    let waiter = {
        let t = h.task.clone();
        tokio::spawn(async move { t.wait("e1").await })
    };
    let pid = h.task.start("e1").await.expect("start exec");
    assert_ne!(pid, init);
    assert_eq!(
        h.task.delete("e1").await.expect_err("running").kind(),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(
        h.task.start("e1").await.expect_err("twice").kind(),
        ErrorKind::FailedPrecondition
    );
    h.exit(pid, 137);
    assert_eq!(waiter.await.expect("join").expect("wait").status, 137);
    let (dpid, exit) = h.task.delete("e1").await.expect("delete exec");
    assert_eq!((dpid, exit.status), (pid, 137));
    assert_eq!(
        h.task.delete("e1").await.expect_err("gone").kind(),
        ErrorKind::NotFound
    );
    // The exec id is free again.
    h.task
        .exec("e1", StdioPaths::default(), spec())
        .await
        .expect("reuse");
    // The init is untouched.
    assert_eq!(h.task.state_of("").expect("init").status, Status::Running);
    assert_eq!(
        h.topics(),
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exec-added"
        ]
    );
    let calls = h.task.runtime().calls();
    assert!(calls[2].starts_with("exec c1 {\"args\""), "{calls:?}");
    // The process file was removed after start.
    assert!(!h.dir.path().join("exec-e1.json").exists());
}

#[tokio::test]
async fn pause_resume_and_state_checks() {
    let mut h = harness();
    h.task.create(h.create_req()).await.expect("create");
    assert_eq!(
        h.task.pause().await.expect_err("not running").kind(),
        ErrorKind::FailedPrecondition
    );
    h.task.start("").await.expect("start");
    h.task.pause().await.expect("pause");
    assert_eq!(h.task.state_of("").expect("state").status, Status::Paused);
    assert_eq!(
        h.task.delete("").await.expect_err("paused").kind(),
        ErrorKind::FailedPrecondition
    );
    h.task.resume().await.expect("resume");
    assert_eq!(h.task.state_of("").expect("state").status, Status::Running);
    h.task.kill("", 15, true).await.expect("kill all");
    *h.task.runtime().pids.lock().expect("lock") = vec![7, 8];
    assert_eq!(h.task.pids().await.expect("pids"), [7, 8]);
    h.task
        .update(br#"{"pids":{"limit":5}}"#)
        .await
        .expect("update");
    let calls = h.task.runtime().calls();
    assert_eq!(
        calls[2..],
        [
            "pause c1",
            "resume c1",
            "kill c1 15 true",
            "ps c1",
            r#"update c1 {"pids":{"limit":5}}"#
        ]
    );
    let topics = h.topics();
    assert_eq!(topics[2..], ["/tasks/paused", "/tasks/resumed"]);
}

#[tokio::test]
async fn deleting_a_created_init_reports_killed() {
    let h = harness();
    let pid = h.task.create(h.create_req()).await.expect("create");
    let (dpid, exit) = h.task.delete("").await.expect("delete created");
    assert_eq!((dpid, exit.status), (pid, 137));
    // Its late exit is ignored.
    h.reaper.dispatch(pid, Exit::now(137));
    assert!(h.task.can_shutdown());
}

#[tokio::test]
async fn output_is_drained_into_the_fifo_before_wait_returns() {
    let h = harness();
    let out = h.dir.path().join("c1-stdout");
    nix::unistd::mkfifo(&out, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let mut client = pipe::OpenOptions::new()
        .open_receiver(&out)
        .expect("client reader");
    let mut req = h.create_req();
    req.stdio.stdout = out.display().to_string();
    let pid = h.task.create(req).await.expect("create");
    h.task.start("").await.expect("start");
    // The "container" writes and exits.
    let stdio = h
        .task
        .runtime()
        .stdio
        .lock()
        .expect("lock")
        .pop()
        .expect("init stdio");
    let w = stdio.stdout.expect("stdout pipe");
    nix::unistd::write(&w, b"out\n").expect("write");
    drop(w);
    drop(stdio.stderr);
    h.reaper.dispatch(pid, Exit::now(0));
    h.task.wait("").await.expect("wait");
    // Everything is in the FIFO, and our handles on it are closed.
    let mut got = String::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_string(&mut got))
        .await
        .expect("EOF after exit")
        .expect("read");
    assert_eq!(got, "out\n");
    let log = std::fs::read_to_string(h.dir.path().join("container.log")).expect("log");
    assert!(log.contains(r#""log":"out\n""#), "{log}");
}

#[tokio::test]
async fn close_io_and_resize_need_a_known_process() {
    let h = harness();
    assert_eq!(
        h.task.close_io("").expect_err("no task").kind(),
        ErrorKind::NotFound
    );
    h.task.create(h.create_req()).await.expect("create");
    h.task.close_io("").expect("init");
    h.task.resize("", 80, 24).expect("no terminal: ignored");
    assert_eq!(
        h.task.close_io("x").expect_err("unknown").kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn init_state_file_follows_the_init_until_delete() {
    use berth_api::berth::shim::v1::StateResponse;
    use berth_api::containerd::v1::types::Status as Pb;
    use prost::Message;
    let h = harness();
    let file = h.dir.path().join(crate::paths::INIT_STATE);
    let saved = || {
        let b = std::fs::read(&file).expect("init.state");
        StateResponse::decode(&b[..]).expect("decode init.state")
    };
    let status = |s: &StateResponse| Pb::try_from(s.status).expect("status");
    assert!(!file.exists());
    let pid = h.task.create(h.create_req()).await.expect("create");
    assert_eq!((saved().pid, status(&saved())), (pid, Pb::Created));
    h.task.start("").await.expect("start");
    assert_eq!(status(&saved()), Pb::Running);
    h.task.pause().await.expect("pause");
    assert_eq!(status(&saved()), Pb::Paused);
    h.task.resume().await.expect("resume");
    assert_eq!(status(&saved()), Pb::Running);
    h.exit(pid, 7);
    assert_eq!(h.task.wait("").await.expect("wait").status, 7);
    let s = saved();
    assert_eq!((status(&s), s.exit_status), (Pb::Stopped, 7));
    assert!(s.exited_at.is_some());
    assert_eq!(s, h.task.state_answer("").expect("State answer"));
    h.task.delete("").await.expect("delete");
    assert!(!file.exists(), "removed with the init");
}
