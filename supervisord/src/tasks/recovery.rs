//! Keeping the task table true to the shims: restart recovery, the per-shim death
//! watcher, and exit events.
//!
//! * **Recovery** (before serving): every bundle under `<state>/tasks/<ns>/<id>` is
//!   checked in parallel. A shim whose process is alive (`shim.pid`, its command line
//!   naming the bundle) is attached at once with a lazy connection and confirmed by one
//!   `State` call in the background, [`CONFIRM_DELAY`] later, unless a client's call got
//!   an answer from it first (no answer: the dead-shim path below); so the first
//!   Tasks.List after a restart does not compete with a State call per task. A shim
//!   whose process dies is found at once by the death watch. Otherwise a real connect
//!   is tried. A live shim's task goes back in the table (the shim still holds exit statuses, so an exit during the downtime reads
//!   STOPPED with its real status). A shim that does not answer is dead: `berth-shim
//!   delete` kills what is left and unmounts the rootfs, `/tasks/exit` and
//!   `/tasks/delete` are published and the bundle is removed (containerd's
//!   `cleanupAfterDeadShim`). Empty directories are removed.
//! * **Death watch**: each live shim's pid is watched (pidfd). A shim that dies while its
//!   task exists (not during Delete) goes through the same cleanup; the task stays in
//!   the table as STOPPED (137 when the cleanup had to kill) until Delete.
//! * **Exit events**: the shims' `/tasks/exit` envelopes (forwarded into the exchange by
//!   the Events service) record each init's exit on its task, through a tap on the
//!   exchange (synchronous, before subscribers see the event).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use berth_api::containerd::events::{TaskDelete, TaskExit};

use super::bundle::{self, Bundle};
use super::manager::{Exit, Slot, Stdio, Task, TaskManager};

/// How long after recovery an attached shim is confirmed, if no client call did it.
pub const CONFIRM_DELAY: Duration = Duration::from_millis(200);

/// Exit status reported when a dead shim's cleanup could not say.
pub const UNKNOWN_EXIT: u32 = 255;

/// What recovery found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub live: usize,
    pub dead: usize,
    pub empty_dirs: usize,
}

/// How one bundle was recovered.
enum Outcome {
    /// Live by its process; still to confirm with `State`.
    Attached(Arc<Task>),
    /// Live: answered `Connect`.
    Connected,
    Dead,
}

impl TaskManager {
    /// Record each init's exit from the `/tasks/exit` events (the shims' and the
    /// dead-shim path's) on its task, as the event is published: before any client
    /// can see the event, Tasks.List shows the task STOPPED. Call once.
    pub fn watch_exit_events(&self) {
        let weak = self.weak();
        self.inner.events.tap("/tasks/exit", move |env| {
            let Some(inner) = weak.upgrade() else {
                return false; // this manager is gone
            };
            let Ok(exit) = berth_api::any::unpack::<TaskExit>(&env.event) else {
                return true;
            };
            if exit.id != exit.container_id && !exit.id.is_empty() {
                return true; // an exec's exit
            }
            if let Ok(task) = inner.task(&env.namespace, &exit.container_id) {
                task.set_last_exit(Exit {
                    status: exit.exit_status,
                    at: exit.exited_at,
                });
            }
            true
        });
    }

    /// Rebuild the table from the bundles on disk. Shims are checked concurrently; the
    /// call returns once every bundle is settled.
    pub async fn recover(&self) -> Recovered {
        let t0 = Instant::now();
        let mut found = Recovered::default();
        let mut bundles = Vec::new();
        let root = bundle::tasks_dir(&self.inner.state);
        for ns_dir in read_dirs(&root) {
            let Some(ns) = file_name(&ns_dir) else {
                continue;
            };
            for dir in read_dirs(&ns_dir) {
                let Some(id) = file_name(&dir) else { continue };
                let empty = std::fs::read_dir(&dir)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if empty {
                    let _ = std::fs::remove_dir(&dir);
                    found.empty_dirs += 1;
                    continue;
                }
                bundles.push(Bundle::at(&self.inner.state, &ns, &id));
            }
            // Removed only when nothing is left in it.
            let _ = std::fs::remove_dir(&ns_dir);
        }
        let results =
            futures::future::join_all(bundles.into_iter().map(|b| self.recover_one(b))).await;
        let mut attached = Vec::new();
        for outcome in results {
            match outcome {
                Outcome::Attached(task) => {
                    found.live += 1;
                    attached.push(task);
                }
                Outcome::Connected => found.live += 1,
                Outcome::Dead => found.dead += 1,
            }
        }
        // Confirmed after the table is complete, so serving need not wait for them.
        for task in attached {
            let this = self.clone();
            tokio::spawn(async move { this.confirm(task).await });
        }
        tracing::info!(
            live = found.live,
            dead = found.dead,
            empty = found.empty_dirs,
            elapsed_ms = t0.elapsed().as_secs_f64() * 1000.0,
            "tasks recovered"
        );
        found
    }

    /// Reconnect one bundle's shim; true if it is live. A shim whose process is alive is
    /// attached without a round trip and confirmed in the background; otherwise a real
    /// connect is tried before the bundle counts as dead.
    async fn recover_one(&self, b: Bundle) -> Outcome {
        let inner = &self.inner;
        if let Ok(c) = inner.launcher.attach(&b) {
            let task = self.register(b, c);
            task.confirmed.store(false, Ordering::SeqCst);
            return Outcome::Attached(task);
        }
        match inner.launcher.connect(&b).await {
            Ok(c) => {
                let task = self.register(b, c);
                self.refresh_state(&task).await;
                Outcome::Connected
            }
            Err(error) => {
                tracing::warn!(namespace = %b.namespace, id = %b.id, %error, "shim is dead; cleaning up");
                self.cleanup_dead_bundle(&b).await;
                Outcome::Dead
            }
        }
    }

    fn register(&self, b: Bundle, c: super::shim_manager::Connected) -> Arc<Task> {
        let key = (b.namespace.clone(), b.id.clone());
        // The shim's file of its init's State answer, when it has one: the task's
        // status (and stdio) without a round trip. Confirmed in the background.
        let saved = b.init_state();
        let task = Arc::new(Task::new(
            b,
            c.shim,
            c.task_pid,
            c.shim_pid,
            Stdio::default(),
            None,
        ));
        if let Some(s) = &saved {
            task.learn_state(s);
        }
        self.inner.table().insert(key, Slot::Ready(task.clone()));
        tracing::debug!(namespace = %task.namespace, id = %task.id, pid = task.pid, "task reconnected");
        self.watch_shim(task.clone());
        task
    }

    /// Confirm an attached shim with one `State` call (it proves the shim answers and
    /// fills the stdio paths); one that does not answer goes the dead-shim path.
    async fn confirm(&self, task: Arc<Task>) {
        tokio::time::sleep(CONFIRM_DELAY).await;
        if task.confirmed.load(Ordering::SeqCst) || !self.inner.is_current(&task) {
            return;
        }
        let req = berth_api::berth::shim::v1::StateRequest {
            id: task.id.clone(),
            exec_id: String::new(),
        };
        let answer =
            tokio::time::timeout(super::shim_manager::LIVENESS_TIMEOUT, task.shim.state(req)).await;
        match answer {
            Ok(result) => {
                if result.is_ok() {
                    task.confirmed.store(true, Ordering::SeqCst);
                }
                if let Err(status) = self.apply_state(&task, result).await {
                    tracing::warn!(namespace = %task.namespace, id = %task.id, error = %status.message(), "shim does not answer");
                    self.shim_died(&task).await;
                }
            }
            Err(_) => {
                tracing::warn!(namespace = %task.namespace, id = %task.id, "shim State timed out");
                self.shim_died(&task).await;
            }
        }
    }

    /// Fill the stdio paths from the shim's State (Get reports them for FIFO cleanup).
    async fn refresh_state(&self, task: &Arc<Task>) {
        let req = berth_api::berth::shim::v1::StateRequest {
            id: task.id.clone(),
            exec_id: String::new(),
        };
        let result = task.shim.state(req).await;
        let _ = self.apply_state(task, result).await;
    }

    /// Take a State answer: stdio paths on success. A shim that holds no container
    /// (berthd stopped between starting it and Create) is shut down and its bundle
    /// removed. Any other error is returned.
    async fn apply_state(
        &self,
        task: &Arc<Task>,
        result: Result<berth_api::berth::shim::v1::StateResponse, tonic::Status>,
    ) -> Result<(), tonic::Status> {
        match result {
            Ok(s) => {
                task.learn_state(&s);
                Ok(())
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                tracing::warn!(namespace = %task.namespace, id = %task.id, "shim holds no container; removing it");
                task.deleting
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                self.inner.remove(task);
                let shutdown = berth_api::berth::shim::v1::ShutdownRequest {
                    id: task.id.clone(),
                    now: true,
                };
                let _ = task.shim.shutdown(shutdown).await;
                if let Err(error) = self.inner.launcher.cleanup(&task.bundle).await {
                    tracing::warn!(namespace = %task.namespace, id = %task.id, %error, "cleanup of an empty shim");
                }
                self.inner.remove_files(&task.bundle);
                Ok(())
            }
            Err(status) => Err(status),
        }
    }

    /// containerd's cleanupAfterDeadShim for a bundle found at start.
    async fn cleanup_dead_bundle(&self, b: &Bundle) {
        let inner = &self.inner;
        let (pid, exit) = match inner.launcher.cleanup(b).await {
            Ok(r) => (
                r.pid,
                Exit {
                    status: r.exit_status,
                    at: r.exited_at.or_else(now),
                },
            ),
            Err(error) => {
                tracing::warn!(namespace = %b.namespace, id = %b.id, %error, "dead shim cleanup failed");
                (
                    b.init_pid().unwrap_or(0),
                    Exit {
                        status: UNKNOWN_EXIT,
                        at: now(),
                    },
                )
            }
        };
        inner.events.emit(
            &b.namespace,
            "/tasks/exit",
            berth_api::any::pack(&TaskExit {
                container_id: b.id.clone(),
                id: b.id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: exit.at,
            }),
        );
        inner.events.emit(
            &b.namespace,
            "/tasks/delete",
            berth_api::any::pack(&TaskDelete {
                container_id: b.id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: exit.at,
                id: b.id.clone(),
            }),
        );
        inner.remove_files(b);
    }

    /// Watch the task's shim process; when it dies outside Delete, run the dead-shim path.
    pub(super) fn watch_shim(&self, task: Arc<Task>) {
        if task.shim_pid == 0 {
            tracing::warn!(namespace = %task.namespace, id = %task.id, "shim pid unknown; not watched");
            return;
        }
        let weak = self.weak();
        tokio::spawn(async move {
            let launcher = match weak.upgrade() {
                Some(inner) => inner.launcher.clone(),
                None => return,
            };
            launcher.exited(&task.bundle, task.shim_pid).await;
            let Some(inner) = weak.upgrade() else { return };
            TaskManager { inner }.shim_died(&task).await;
        });
    }

    /// The dead-shim path for a task in the table: clean up, mark STOPPED, publish exit.
    pub(super) async fn shim_died(&self, task: &Arc<Task>) {
        let inner = &self.inner;
        use std::sync::atomic::Ordering;
        if task.deleting.load(Ordering::SeqCst)
            || !inner.is_current(task)
            || task.dying.swap(true, Ordering::SeqCst)
        {
            return;
        }
        tracing::warn!(namespace = %task.namespace, id = %task.id, shim_pid = task.shim_pid, "shim died");
        let recorded = task.recorded_exit();
        let cleaned = inner.launcher.cleanup(&task.bundle).await;
        let exit = match (&cleaned, recorded) {
            (_, Some(exit)) => exit,
            (Ok(r), None) => Exit {
                status: r.exit_status,
                at: r.exited_at.or_else(now),
            },
            (Err(error), None) => {
                tracing::warn!(namespace = %task.namespace, id = %task.id, %error, "dead shim cleanup failed");
                Exit {
                    status: UNKNOWN_EXIT,
                    at: now(),
                }
            }
        };
        // Files go before the state flips: whoever sees STOPPED sees the bundle gone.
        inner.remove_files(&task.bundle);
        task.dead.send_replace(Some(exit));
        if recorded.is_none() {
            inner.events.emit(
                &task.namespace,
                "/tasks/exit",
                berth_api::any::pack(&TaskExit {
                    container_id: task.id.clone(),
                    id: task.id.clone(),
                    pid: task.pid,
                    exit_status: exit.status,
                    exited_at: exit.at,
                }),
            );
        }
    }
}

fn now() -> Option<prost_types::Timestamp> {
    crate::services::to_timestamp(SystemTime::now())
}

fn read_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

fn file_name(p: &Path) -> Option<String> {
    p.file_name().and_then(|n| n.to_str()).map(str::to_owned)
}
