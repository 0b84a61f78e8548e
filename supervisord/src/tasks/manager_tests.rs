//! The task manager against fake shims: state transitions, error codes, dead shims,
//! restart recovery, exit events.

use std::sync::Arc;
use std::time::Duration;

use berth_api::containerd::events::{TaskDelete, TaskExit};
use berth_api::containerd::types::Mount;
use berth_api::containerd::v1::types::Status;
use berth_api::{ErrorKind, HasKind};
use futures::StreamExt;
use prost_types::Any;

use super::fake::FakeLauncher;
use super::manager::{CreateTask, Stdio};
use super::{Bundle, TaskManager};
use crate::events::{Envelope, Exchange};
use crate::filters::Filter;
use crate::metadata::{AnyValue, Container, Db, Runtime};

const NS: &str = "testns";
const SPEC: &[u8] = b"{\"ociVersion\":\"1.0.2\",  \"root\":{\"path\":\"rootfs\"},\"process\":{\"args\":[\"sh\"]}}\n";
const T: Duration = Duration::from_secs(10);

struct Env {
    _dir: tempfile::TempDir,
    state: std::path::PathBuf,
    db: Db,
    events: Exchange,
    launcher: Arc<FakeLauncher>,
    mgr: TaskManager,
}

fn env() -> Env {
    let (dir, db) = crate::metadata::testutil::db();
    let state = dir.path().join("state");
    let events = Exchange::new();
    let launcher = Arc::new(FakeLauncher::default());
    let mgr = TaskManager::new(db.clone(), events.clone(), state.clone(), launcher.clone());
    Env {
        _dir: dir,
        state,
        db,
        events,
        launcher,
        mgr,
    }
}

impl Env {
    /// berthd "restarts": a fresh manager over the same store, state dir and shims; the
    /// old one is dropped with everything it watched. Returns the new one.
    fn restart(&mut self) -> TaskManager {
        let mgr = TaskManager::new(
            self.db.clone(),
            self.events.clone(),
            self.state.clone(),
            self.launcher.clone(),
        );
        drop(std::mem::replace(&mut self.mgr, mgr.clone()));
        mgr
    }

    fn container(&self, id: &str, runtime: &str, spec: &[u8]) {
        let mut c = Container::new(id);
        c.runtime = Runtime {
            name: runtime.into(),
            options: Some(AnyValue {
                type_url: "containerd.runc.v1.Options".into(),
                value: vec![],
            }),
        };
        c.spec = Some(AnyValue {
            type_url: berth_api::any::SPEC_TYPE_URL.into(),
            value: spec.to_vec(),
        });
        self.db
            .containers(NS)
            .create(&c, None)
            .expect("create container");
    }

    async fn create(&self, id: &str) -> Result<u32, super::TaskError> {
        self.mgr
            .create(
                NS,
                CreateTask {
                    container_id: id.into(),
                    rootfs: vec![Mount {
                        r#type: "overlay".into(),
                        source: "overlay".into(),
                        target: String::new(),
                        options: vec!["lowerdir=/l".into()],
                    }],
                    stdio: Stdio {
                        stdin: format!("/fifo/{id}-stdin"),
                        stdout: format!("/fifo/{id}-stdout"),
                        stderr: format!("/fifo/{id}-stderr"),
                        terminal: false,
                    },
                    ..CreateTask::default()
                },
            )
            .await
    }

    fn bundle(&self, id: &str) -> Bundle {
        Bundle::at(&self.state, NS, id)
    }

    /// How many State calls the shim of `id` has had.
    fn state_calls(&self, id: &str) -> usize {
        self.launcher
            .shim(NS, id)
            .st()
            .calls
            .iter()
            .filter(|c| *c == "state")
            .count()
    }
}

async fn next_topics(
    stream: &mut (impl futures::Stream<Item = Envelope> + Unpin),
    n: usize,
) -> Vec<Envelope> {
    tokio::time::timeout(T, stream.take(n).collect::<Vec<_>>())
        .await
        .expect("events arrive")
}

#[tokio::test]
async fn create_checks_container_runtime_and_spec() {
    let e = env();
    let err = e.create("nope").await.expect_err("no container");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    e.container("badspec", "io.containerd.runc.v2", b"{not json");
    let err = e.create("badspec").await.expect_err("bad spec");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(!e.bundle("badspec").path.exists(), "no bundle left");

    e.container("kata", "io.containerd.kata.v2", SPEC);
    let err = e.create("kata").await.expect_err("runtime");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(
        e.launcher.shims.lock().expect("lock").is_empty(),
        "no shim started"
    );

    // The slot is free again after each failure.
    let err = e.create("nope").await.expect_err("still no container");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn failed_shim_create_cleans_up() {
    let e = env();
    e.container("c1", "io.containerd.runc.v2", SPEC);
    *e.launcher.fail_next_create.lock().expect("lock") =
        Some(tonic::Status::invalid_argument("bad mounts"));
    let err = e.create("c1").await.expect_err("shim refuses");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(!e.bundle("c1").path.exists());
    assert_eq!(e.launcher.cleanups(), [(NS.to_owned(), "c1".to_owned())]);
    let err = e.mgr.get(NS, "c1", "").await.expect_err("no task");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Creating again works.
    e.create("c1").await.expect("second create");
}

#[tokio::test]
async fn task_lifecycle_and_codes() {
    let e = env();
    e.container("c1", "io.containerd.runc.v2", SPEC);
    let pid = e.create("c1").await.expect("create");
    let b = e.bundle("c1");
    assert_eq!(
        std::fs::read(b.config()).expect("config"),
        SPEC,
        "byte-exact"
    );
    assert!(b.rootfs().is_dir());
    let shim = e.launcher.shim(NS, "c1");
    let sent = shim.st().create.clone().expect("shim create");
    assert_eq!(sent.bundle, b.path.display().to_string());
    assert_eq!(sent.rootfs[0].options, ["lowerdir=/l"]);
    assert_eq!(sent.stdout, "/fifo/c1-stdout");
    assert_eq!(
        sent.options.map(|o| o.type_url).as_deref(),
        Some("containerd.runc.v1.Options"),
        "container runtime options when the request has none"
    );

    let err = e.create("c1").await.expect_err("twice");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    let p = e.mgr.get(NS, "c1", "").await.expect("get");
    assert_eq!((p.id.as_str(), p.container_id.as_str()), ("c1", "c1"));
    assert_eq!((p.pid, p.status), (pid, Status::Created));
    assert_eq!(p.stdio.stdin, "/fifo/c1-stdin");

    // Wait before Start blocks until the exit.
    let waiter = tokio::spawn({
        let mgr = e.mgr.clone();
        async move { mgr.wait(NS, "c1", "").await }
    });
    assert_eq!(e.mgr.start(NS, "c1", "").await.expect("start"), pid);
    assert_eq!(
        e.mgr.get(NS, "c1", "").await.expect("get").status,
        Status::Running
    );
    assert!(!waiter.is_finished());

    let err = e.mgr.delete(NS, "c1").await.expect_err("running");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");

    e.mgr.pause(NS, "c1").await.expect("pause");
    assert_eq!(
        e.mgr.get(NS, "c1", "").await.expect("get").status,
        Status::Paused
    );
    let err = e.mgr.delete(NS, "c1").await.expect_err("paused");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    e.mgr.resume(NS, "c1").await.expect("resume");
    e.mgr
        .resize_pty(NS, "c1", "", 80, 24)
        .await
        .expect("resize");
    e.mgr.close_io(NS, "c1", "", true).await.expect("close io");
    let pids = e.mgr.list_pids(NS, "c1").await.expect("pids");
    assert_eq!(pids.iter().map(|p| p.pid).collect::<Vec<_>>(), [pid]);
    e.mgr.kill(NS, "c1", "", 15, true).await.expect("kill");
    assert!(shim.calls().contains(&"kill 15 true".to_owned()));

    shim.exit("", 3);
    let exit = tokio::time::timeout(T, waiter)
        .await
        .expect("wait ends")
        .expect("join")
        .expect("wait");
    assert_eq!(exit.status, 3);
    let p = e.mgr.get(NS, "c1", "").await.expect("get");
    assert_eq!((p.status, p.exit_status), (Status::Stopped, 3));
    assert!(p.exited_at.is_some());
    assert_eq!(e.mgr.list(NS, &Filter::all()).await.expect("list").len(), 1);

    let d = e.mgr.delete(NS, "c1").await.expect("delete");
    assert_eq!((d.id.as_str(), d.pid, d.exit.status), ("c1", pid, 3));
    assert!(shim.st().shut_down, "Shutdown after Delete");
    assert!(!b.path.exists(), "bundle removed");

    for err in [
        e.mgr.get(NS, "c1", "").await.expect_err("get"),
        e.mgr.kill(NS, "c1", "", 9, false).await.expect_err("kill"),
        e.mgr.delete(NS, "c1").await.map(drop).expect_err("delete"),
        e.mgr.wait(NS, "c1", "").await.map(drop).expect_err("wait"),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
    assert!(
        e.mgr
            .list(NS, &Filter::all())
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn exec_processes() {
    let e = env();
    e.container("c1", "berth", SPEC);
    e.create("c1").await.expect("create");
    e.mgr.start(NS, "c1", "").await.expect("start");
    let spec = || {
        Some(Any {
            type_url: berth_api::any::PROCESS_TYPE_URL.into(),
            value: b"{}".to_vec(),
        })
    };
    let io = Stdio {
        stdout: "/fifo/e1-stdout".into(),
        ..Stdio::default()
    };

    let err = e
        .mgr
        .exec(NS, "c1", "e1", io.clone(), None)
        .await
        .expect_err("no spec");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    e.mgr
        .exec(NS, "c1", "e1", io.clone(), spec())
        .await
        .expect("exec");
    let err = e
        .mgr
        .exec(NS, "c1", "e1", io.clone(), spec())
        .await
        .expect_err("dup");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let err = e
        .mgr
        .exec(NS, "nope", "e1", io.clone(), spec())
        .await
        .expect_err("no task");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let pid = e.mgr.start(NS, "c1", "e1").await.expect("start exec");
    let p = e.mgr.get(NS, "c1", "e1").await.expect("get exec");
    assert_eq!(
        (p.id.as_str(), p.container_id.as_str(), p.pid),
        ("e1", "c1", pid)
    );
    assert_eq!(p.stdio.stdout, "/fifo/e1-stdout");
    e.launcher.shim(NS, "c1").exit("e1", 0);
    let exit = e.mgr.wait(NS, "c1", "e1").await.expect("wait exec");
    assert_eq!(exit.status, 0);
    let d = e
        .mgr
        .delete_process(NS, "c1", "e1")
        .await
        .expect("delete exec");
    assert_eq!((d.id.as_str(), d.pid), ("e1", pid));
    // The id is free again.
    e.mgr
        .exec(NS, "c1", "e1", io, spec())
        .await
        .expect("exec again");
}

#[tokio::test]
async fn dead_shim_task_is_stopped_137_and_cleaned() {
    let e = env();
    e.container("c1", "io.containerd.runc.v1", SPEC);
    e.create("c1").await.expect("create");
    e.mgr.start(NS, "c1", "").await.expect("start");
    let mut events = Box::pin(e.events.subscribe(Filter::all()));
    let waiter = tokio::spawn({
        let mgr = e.mgr.clone();
        async move { mgr.wait(NS, "c1", "").await }
    });

    e.launcher.kill_shim(NS, "c1");
    let exit = tokio::time::timeout(T, waiter)
        .await
        .expect("wait ends")
        .expect("join")
        .expect("wait");
    assert_eq!(exit.status, 137);
    let got = next_topics(&mut events, 1).await;
    assert_eq!(got[0].topic, "/tasks/exit");
    let ev: TaskExit = berth_api::any::unpack(&got[0].event).expect("TaskExit");
    assert_eq!((ev.container_id.as_str(), ev.exit_status), ("c1", 137));

    let p = e.mgr.get(NS, "c1", "").await.expect("get");
    assert_eq!((p.status, p.exit_status), (Status::Stopped, 137));
    assert_eq!(e.launcher.cleanups(), [(NS.to_owned(), "c1".to_owned())]);
    assert!(!e.bundle("c1").path.exists(), "bundle removed");
    let err = e
        .mgr
        .kill(NS, "c1", "", 9, false)
        .await
        .expect_err("nothing to kill");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        e.mgr
            .metrics(NS, &Filter::all())
            .await
            .expect("metrics")
            .is_empty()
    );

    let d = e.mgr.delete(NS, "c1").await.expect("delete");
    assert_eq!(d.exit.status, 137);
    let got = next_topics(&mut events, 1).await;
    assert_eq!(got[0].topic, "/tasks/delete");
    let ev: TaskDelete = berth_api::any::unpack(&got[0].event).expect("TaskDelete");
    assert_eq!(ev.exit_status, 137);
    assert_eq!(
        e.mgr.get(NS, "c1", "").await.expect_err("gone").kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn exit_event_status_wins_over_cleanup_status() {
    let e = env();
    e.mgr.watch_exit_events();
    e.container("c1", "io.containerd.runc.v2", SPEC);
    e.create("c1").await.expect("create");
    e.mgr.start(NS, "c1", "").await.expect("start");
    let exit = TaskExit {
        container_id: "c1".into(),
        id: "c1".into(),
        pid: 1000,
        exit_status: 5,
        exited_at: None,
    };
    e.events
        .publish(NS, "/tasks/exit", berth_api::any::pack(&exit))
        .expect("publish");
    let task = e.mgr.inner.task(NS, "c1").expect("task");
    tokio::time::timeout(T, async {
        while task.recorded_exit().is_none() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("exit recorded");
    e.launcher.kill_shim(NS, "c1");
    let exit = tokio::time::timeout(T, e.mgr.wait(NS, "c1", ""))
        .await
        .expect("ends")
        .expect("wait");
    assert_eq!(exit.status, 5, "the real exit, not the cleanup's 137");
}

#[tokio::test]
async fn metrics_filter_by_id() {
    let e = env();
    for id in ["a", "b"] {
        e.container(id, "io.containerd.runc.v2", SPEC);
        e.create(id).await.expect("create");
    }
    let all = e.mgr.metrics(NS, &Filter::all()).await.expect("metrics");
    assert_eq!(
        all.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let only = e
        .mgr
        .metrics(NS, &Filter::parse("id==b").expect("filter"))
        .await
        .expect("metrics");
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].id, "b");
    assert!(only[0].timestamp.is_some());
    assert_eq!(
        only[0].data.as_ref().map(|d| d.type_url.as_str()),
        Some("io.containerd.cgroups.v1.Metrics")
    );
    assert!(
        e.mgr
            .metrics("otherns", &Filter::all())
            .await
            .expect("metrics")
            .is_empty()
    );
}

#[tokio::test]
async fn recovery_reconnects_live_shims_and_cleans_dead_ones() {
    let mut e = env();
    for id in ["live", "exited", "dead", "hung"] {
        e.container(id, "io.containerd.runc.v2", SPEC);
        e.create(id).await.expect("create");
        e.mgr.start(NS, id, "").await.expect("start");
    }
    // An empty leftover directory.
    let empty = e.state.join("tasks").join(NS).join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");

    // berthd goes away; meanwhile one task exits and one shim dies.
    let launcher = e.launcher.clone();
    // The old manager is gone with everything it watched.
    e.restart();
    launcher.shim(NS, "exited").exit("", 7);
    {
        let dead = launcher.shim(NS, "dead");
        let mut st = dead.st();
        st.dead = true;
        st.gone = true;
    }
    // Its process is alive but it does not answer.
    launcher.shim(NS, "hung").st().dead = true;

    let mgr2 = e.restart();
    let mut events = Box::pin(e.events.subscribe(Filter::all()));
    let found = mgr2.recover().await;
    assert_eq!((found.live, found.dead, found.empty_dirs), (3, 1, 1));
    assert!(!empty.exists());

    assert_eq!(
        mgr2.get(NS, "live", "").await.expect("live").status,
        Status::Running
    );
    let p = mgr2.get(NS, "exited", "").await.expect("exited");
    assert_eq!((p.status, p.exit_status), (Status::Stopped, 7));
    let exit = tokio::time::timeout(T, mgr2.wait(NS, "exited", ""))
        .await
        .expect("at once")
        .expect("wait");
    assert_eq!(exit.status, 7);

    assert_eq!(
        mgr2.get(NS, "dead", "").await.expect_err("dead").kind(),
        ErrorKind::NotFound
    );
    assert!(!Bundle::at(&e.state, NS, "dead").path.exists());
    assert!(
        launcher
            .cleanups()
            .contains(&(NS.to_owned(), "dead".to_owned()))
    );
    let got = next_topics(&mut events, 2).await;
    assert_eq!(
        got.iter().map(|g| g.topic.as_str()).collect::<Vec<_>>(),
        ["/tasks/exit", "/tasks/delete"]
    );
    let ev: TaskExit = berth_api::any::unpack(&got[0].event).expect("TaskExit");
    assert_eq!((ev.container_id.as_str(), ev.exit_status), ("dead", 137));

    // The hung shim is found out in the background: STOPPED, cleaned up.
    let exit = tokio::time::timeout(T, mgr2.wait(NS, "hung", ""))
        .await
        .expect("ends")
        .expect("wait");
    assert_eq!(exit.status, 137);
    let p = mgr2.get(NS, "hung", "").await.expect("hung");
    assert_eq!((p.status, p.exit_status), (Status::Stopped, 137));
    assert!(!Bundle::at(&e.state, NS, "hung").path.exists());
    let cleaned = launcher.cleanups();
    assert_eq!(
        cleaned.iter().filter(|c| c.1 == "hung").count(),
        1,
        "cleaned once: {cleaned:?}"
    );

    // The recovered live task works as before.
    mgr2.kill(NS, "live", "", 9, false)
        .await
        .expect("kill live");
    launcher.shim(NS, "live").exit("", 137);
    assert_eq!(mgr2.wait(NS, "live", "").await.expect("wait").status, 137);
    mgr2.delete(NS, "live").await.expect("delete");
    assert!(!Bundle::at(&e.state, NS, "live").path.exists());
}

#[tokio::test]
async fn shim_dying_during_delete_is_cleaned_and_delete_can_be_retried() {
    let e = env();
    e.container("c1", "io.containerd.runc.v2", SPEC);
    e.create("c1").await.expect("create");
    let shim = e.launcher.shim(NS, "c1");
    shim.st().die_at_delete = true;
    let err = e.mgr.delete(NS, "c1").await.expect_err("shim died");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let p = e.mgr.get(NS, "c1", "").await.expect("get");
    assert_eq!((p.status, p.exit_status), (Status::Stopped, 137));
    assert!(!e.bundle("c1").path.exists());
    let d = e.mgr.delete(NS, "c1").await.expect("second delete");
    assert_eq!(d.exit.status, 137);
    assert_eq!(e.launcher.cleanups().len(), 1);
}

#[tokio::test]
async fn recovery_removes_a_shim_without_container() {
    let mut e = env();
    e.container("c1", "io.containerd.runc.v2", SPEC);
    e.create("c1").await.expect("create");
    // As if berthd died between starting the shim and Create.
    e.launcher.shim(NS, "c1").st().procs.clear();
    let mgr2 = e.restart();
    mgr2.recover().await;
    let shim = e.launcher.shim(NS, "c1");
    tokio::time::timeout(T, async {
        while !shim.st().shut_down {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the empty shim is shut down");
    tokio::time::timeout(T, async {
        while e.bundle("c1").path.exists() || mgr2.get(NS, "c1", "").await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("bundle and task removed");
    // The container can get a task again.
    e.create("c1").await.expect("create again");
}

/// After a restart, a client's State answer confirms a shim; the background confirmation
/// ([`super::recovery::CONFIRM_DELAY`] later) then asks only the shims nobody asked.
#[tokio::test(start_paused = true)]
async fn client_state_confirms_recovered_shims_before_the_background_check() {
    let mut e = env();
    for id in ["listed", "idle"] {
        e.container(id, "io.containerd.runc.v2", SPEC);
        e.create(id).await.expect("create");
        e.mgr.start(NS, id, "").await.expect("start");
    }
    let mgr2 = e.restart();
    let states = |id: &str| e.state_calls(id);
    let (listed0, idle0) = (states("listed"), states("idle"));
    assert_eq!(mgr2.recover().await.live, 2);
    let got = mgr2.get(NS, "listed", "").await.expect("get");
    assert_eq!(got.status, Status::Running);
    assert_eq!(states("idle"), idle0, "not confirmed before the delay");
    // Virtual time: the confirmations come due; wait until the idle shim was asked.
    tokio::time::timeout(T, async {
        while states("idle") == idle0 {
            tokio::time::sleep(super::recovery::CONFIRM_DELAY).await;
        }
    })
    .await
    .expect("the idle shim is confirmed in the background");
    assert_eq!(states("idle"), idle0 + 1);
    assert_eq!(
        states("listed"),
        listed0 + 1,
        "confirmed by the client's call only"
    );
}

/// Tasks.List as (id, status, exit status).
async fn listed(mgr: &TaskManager) -> Vec<(String, Status, u32)> {
    mgr.list(NS, &Filter::all())
        .await
        .expect("list")
        .into_iter()
        .map(|p| (p.id, p.status, p.exit_status))
        .collect()
}

#[tokio::test]
async fn list_answers_from_known_statuses_without_asking_the_shims() {
    let e = env();
    e.mgr.watch_exit_events();
    for id in ["a", "b", "c"] {
        e.container(id, "io.containerd.runc.v2", SPEC);
        e.create(id).await.expect("create");
    }
    e.mgr.start(NS, "b", "").await.expect("start");
    e.mgr.start(NS, "c", "").await.expect("start");
    e.mgr.pause(NS, "c").await.expect("pause");
    let before: Vec<usize> = ["a", "b", "c"].map(|id| e.state_calls(id)).into();
    let row = |id: &str, s, code| (id.to_owned(), s, code);
    assert_eq!(
        listed(&e.mgr).await,
        [
            row("a", Status::Created, 0),
            row("b", Status::Running, 0),
            row("c", Status::Paused, 0)
        ]
    );
    e.mgr.resume(NS, "c").await.expect("resume");
    assert_eq!(listed(&e.mgr).await[2], row("c", Status::Running, 0));
    // b exits: the shim's /tasks/exit event.
    let exit = TaskExit {
        container_id: "b".into(),
        id: "b".into(),
        pid: 1000,
        exit_status: 3,
        exited_at: None,
    };
    e.events
        .publish(NS, "/tasks/exit", berth_api::any::pack(&exit))
        .expect("publish");
    // Recorded as it was published, before any subscriber could react to it.
    assert_eq!(listed(&e.mgr).await[1], row("b", Status::Stopped, 3));
    let after: Vec<usize> = ["a", "b", "c"].map(|id| e.state_calls(id)).into();
    assert_eq!(after, before, "no State round trip for a List");
}

/// At a restart the statuses come from each shim's `init.state` file (written by the
/// real shim at every change: shim/src/task/state_file.rs); a shim without the file
/// is asked.
#[tokio::test(start_paused = true)]
async fn recovery_takes_statuses_and_stdio_from_the_shims_state_files() {
    use berth_api::berth::shim::v1::StateResponse;
    use prost::Message;
    let mut e = env();
    for id in ["run", "exited", "old"] {
        e.container(id, "io.containerd.runc.v2", SPEC);
        e.create(id).await.expect("create");
        e.mgr.start(NS, id, "").await.expect("start");
    }
    let save = |id: &str, s: StateResponse| {
        let path = e
            .bundle(id)
            .path
            .join(berth_api::berth::shim::INIT_STATE_FILE);
        std::fs::write(path, s.encode_to_vec()).expect("write init.state");
    };
    save(
        "run",
        StateResponse {
            status: Status::Running as i32,
            stdout: "/from-file/stdout".into(),
            ..Default::default()
        },
    );
    // Exited while berthd was down (the fake shim itself still says running).
    let at = prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    };
    save(
        "exited",
        StateResponse {
            status: Status::Stopped as i32,
            exit_status: 7,
            exited_at: Some(at),
            ..Default::default()
        },
    );
    let mgr2 = e.restart();
    let before = (e.state_calls("run"), e.state_calls("exited"));
    assert_eq!(mgr2.recover().await.live, 3);
    let all = mgr2.list(NS, &Filter::all()).await.expect("list");
    let find = |id: &str| all.iter().find(|p| p.id == id).expect("listed");
    assert_eq!(find("run").status, Status::Running);
    assert_eq!(find("run").stdio.stdout, "/from-file/stdout");
    assert_eq!(
        (find("exited").status, find("exited").exit_status),
        (Status::Stopped, 7)
    );
    assert_eq!(find("exited").exited_at, Some(at));
    assert_eq!(find("old").status, Status::Running, "asked its shim");
    assert_eq!(
        (e.state_calls("run"), e.state_calls("exited")),
        before,
        "no round trip for the shims with a file"
    );
}
