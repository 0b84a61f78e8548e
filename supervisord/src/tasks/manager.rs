//! The task table: one entry per (namespace, container id), each holding its shim
//! connection, and every Tasks operation on it.
//!
//! Live state (status, pids, exit status) comes from the shim, which keeps exit statuses
//! until Delete, so answers stay right across berthd restarts. berthd itself keeps:
//! - for a task whose shim died, the exit it was cleaned up with (`dead`), so the task
//!   reads STOPPED until it is deleted;
//! - the init's status as berthd last learned it (`known`: from Create, Start, Pause
//!   and Resume answers, State answers, the init's exit event or Wait answer, and at a
//!   restart the shim's `init.state` file). Tasks.List answers from it, so listing N
//!   tasks is not N shim round trips (Tasks.Get still asks the shim). A status change
//!   berthd does not make itself is an exit, which the shim reports by event (retried
//!   until delivered), by Wait, and in its State file; until that event arrives a
//!   List may still show RUNNING for a process that just exited.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use berth_api::berth::shim::v1 as spb;
use berth_api::containerd::types::{Metric, Mount};
use berth_api::containerd::v1::types::{ProcessInfo, Status};
use prost_types::{Any, Timestamp};
use tokio::sync::watch;

use super::bundle::{self, Bundle};
use super::fields::{ProcessFields, TaskFields};
use super::recovery::UNKNOWN_EXIT;
use super::shim::ShimApi;
use super::shim_manager::Launcher;
use super::{RUNTIMES, TaskError};
use crate::events::Exchange;
use crate::filters::Filter;
use crate::metadata::Db;

/// How long Wait waits for the dead-shim path after its shim call broke.
const DEAD_SHIM_GRACE: Duration = Duration::from_secs(5);

/// A process exit: status and time (unset when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub status: u32,
    pub at: Option<Timestamp>,
}

/// A process's stdio as given at Create/Exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

impl From<&spb::StateResponse> for Stdio {
    fn from(s: &spb::StateResponse) -> Self {
        Self {
            stdin: s.stdin.clone(),
            stdout: s.stdout.clone(),
            stderr: s.stderr.clone(),
            terminal: s.terminal,
        }
    }
}

/// What Tasks.Get reports for one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessState {
    pub container_id: String,
    /// The container id for the init process, else the exec id.
    pub id: String,
    pub pid: u32,
    pub status: Status,
    pub stdio: Stdio,
    pub exit_status: u32,
    pub exited_at: Option<Timestamp>,
}

/// The result of deleting a task or process.
#[derive(Debug, Clone, PartialEq)]
pub struct Deleted {
    pub id: String,
    pub pid: u32,
    pub exit: Exit,
}

/// Tasks.Create's request, in domain terms.
#[derive(Debug, Clone, Default)]
pub struct CreateTask {
    pub container_id: String,
    pub rootfs: Vec<Mount>,
    pub stdio: Stdio,
    pub options: Option<Any>,
    pub runtime_path: String,
    pub checkpoint: bool,
}

/// One task: its shim and what berthd must remember about it.
#[derive(Debug)]
pub(super) struct Task {
    pub(super) namespace: String,
    pub(super) id: String,
    pub(super) bundle: Bundle,
    pub(super) shim: Arc<dyn ShimApi>,
    pub(super) pid: u32,
    pub(super) shim_pid: u32,
    /// Filled at Create, or from the shim's State after a restart.
    pub(super) stdio: Mutex<Stdio>,
    /// Exec ids added and not yet deleted.
    pub(super) execs: Mutex<HashSet<String>>,
    /// The init's exit as the shim's /tasks/exit event told it.
    pub(super) last_exit: Mutex<Option<Exit>>,
    /// Set once the shim died and the task was cleaned up.
    pub(super) dead: watch::Sender<Option<Exit>>,
    /// Set while Delete runs: the shim exiting then is expected.
    pub(super) deleting: AtomicBool,
    /// Set once the dead-shim path started (it runs once).
    pub(super) dying: AtomicBool,
    /// Whether the shim answered since this berthd attached to it (always at Create;
    /// after a restart, the first State that succeeds sets it).
    pub(super) confirmed: AtomicBool,
    /// The init's status as berthd last learned it (see the module doc); `None`:
    /// unknown, ask the shim. An exit (`last_exit`, `dead`) overrides it.
    pub(super) known: Mutex<Option<Status>>,
}

impl Task {
    pub(super) fn new(
        bundle: Bundle,
        shim: Arc<dyn ShimApi>,
        pid: u32,
        shim_pid: u32,
        stdio: Stdio,
        known: Option<Status>,
    ) -> Self {
        Self {
            namespace: bundle.namespace.clone(),
            id: bundle.id.clone(),
            bundle,
            shim,
            pid,
            shim_pid,
            stdio: Mutex::new(stdio),
            execs: Mutex::new(HashSet::new()),
            last_exit: Mutex::new(None),
            dead: watch::channel(None).0,
            deleting: AtomicBool::new(false),
            dying: AtomicBool::new(false),
            confirmed: AtomicBool::new(true),
            known: Mutex::new(known),
        }
    }

    pub(super) fn dead_exit(&self) -> Option<Exit> {
        *self.dead.borrow()
    }

    fn execs(&self) -> MutexGuard<'_, HashSet<String>> {
        self.execs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn stdio(&self) -> Stdio {
        self.stdio
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_stdio(&self, stdio: Stdio) {
        *self
            .stdio
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stdio;
    }

    pub(super) fn set_last_exit(&self, exit: Exit) {
        *self
            .last_exit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(exit);
        self.learn(Status::Stopped);
    }

    /// Learn the init's status. A stopped init stays stopped (an exit event can
    /// overtake the answer of the Start before it), and nothing moves an init back to
    /// CREATED.
    pub(super) fn learn(&self, status: Status) {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let settled = matches!(*known, Some(Status::Stopped));
        let backwards = status == Status::Created && known.is_some();
        if !settled && !backwards {
            *known = Some(status);
        }
    }

    /// Learn the init's status and stdio from a State answer (or the shim's file of
    /// it).
    pub(super) fn learn_state(&self, s: &spb::StateResponse) {
        self.set_stdio(Stdio::from(s));
        let status = Status::try_from(s.status).unwrap_or(Status::Unknown);
        if status == Status::Stopped {
            self.set_last_exit(Exit {
                status: s.exit_status,
                at: s.exited_at,
            });
        }
        if status != Status::Unknown {
            self.learn(status);
        }
    }

    /// The init's state from what berthd knows, without asking the shim; `None` when
    /// it does not know (then ask).
    pub(super) fn known_state(&self) -> Option<ProcessState> {
        if self.dead_exit().is_some() {
            return None; // process_state answers those without a round trip
        }
        let (status, exit) = match self.recorded_exit() {
            Some(exit) => (Status::Stopped, Some(exit)),
            None => (
                (*self
                    .known
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner))?,
                None,
            ),
        };
        Some(ProcessState {
            container_id: self.id.clone(),
            id: self.id.clone(),
            pid: self.pid,
            status,
            stdio: self.stdio(),
            exit_status: exit.map_or(0, |e| e.status),
            exited_at: exit.and_then(|e| e.at),
        })
    }

    pub(super) fn recorded_exit(&self) -> Option<Exit> {
        *self
            .last_exit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A slot in the table: reserved while Create runs, then the task.
#[derive(Debug)]
pub(super) enum Slot {
    Creating,
    Ready(Arc<Task>),
}

pub(super) type Key = (String, String);

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) db: Db,
    pub(super) events: Exchange,
    pub(super) state: PathBuf,
    pub(super) launcher: Arc<dyn Launcher>,
    pub(super) table: Mutex<HashMap<Key, Slot>>,
}

/// The task manager: cheap to clone, shared by the Tasks service and the background
/// watchers.
#[derive(Debug, Clone)]
pub struct TaskManager {
    pub(super) inner: Arc<Inner>,
}

fn key(ns: &str, id: &str) -> Key {
    (ns.to_owned(), id.to_owned())
}

fn task_not_found(ns: &str, id: &str) -> TaskError {
    let _ = ns;
    TaskError::NotFound {
        what: "task",
        id: id.to_owned(),
    }
}

/// A shim call that failed because the shim (or its socket) went away.
pub(super) fn is_transport(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// Removes a `Creating` reservation unless committed.
struct Reservation<'a> {
    inner: &'a Inner,
    key: Option<Key>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let mut table = self.inner.table();
            if matches!(table.get(&k), Some(Slot::Creating)) {
                table.remove(&k);
            }
        }
    }
}

impl Inner {
    pub(super) fn table(&self) -> MutexGuard<'_, HashMap<Key, Slot>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn task(&self, ns: &str, id: &str) -> Result<Arc<Task>, TaskError> {
        match self.table().get(&key(ns, id)) {
            Some(Slot::Ready(t)) => Ok(t.clone()),
            _ => Err(task_not_found(ns, id)),
        }
    }

    /// Whether `task` is still the table's entry for its key.
    pub(super) fn is_current(&self, task: &Arc<Task>) -> bool {
        matches!(
            self.table().get(&key(&task.namespace, &task.id)),
            Some(Slot::Ready(t)) if Arc::ptr_eq(t, task)
        )
    }

    pub(super) fn remove(&self, task: &Arc<Task>) {
        let mut table = self.table();
        let k = key(&task.namespace, &task.id);
        if matches!(table.get(&k), Some(Slot::Ready(t)) if Arc::ptr_eq(t, task)) {
            table.remove(&k);
        }
    }

    /// Remove a task's files: bundle, shim socket, runtime state dir. Logged, not fatal.
    pub(super) fn remove_files(&self, b: &Bundle) {
        if let Err(error) = b.remove() {
            tracing::warn!(namespace = %b.namespace, id = %b.id, %error, "bundle not removed");
        }
        let sock = bundle::socket_path(&self.state, &b.namespace, &b.id);
        let _ = std::fs::remove_file(sock);
        let runtime = bundle::runtime_root(&self.state, &b.namespace).join(&b.id);
        let _ = std::fs::remove_dir_all(runtime);
    }
}

impl TaskManager {
    /// A manager with an empty table. Call [`TaskManager::recover`] before serving.
    pub fn new(db: Db, events: Exchange, state: PathBuf, launcher: Arc<dyn Launcher>) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                events,
                state,
                launcher,
                table: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub(super) fn weak(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// Tasks.Create: container record → bundle → shim → shim Create.
    pub async fn create(&self, ns: &str, req: CreateTask) -> Result<u32, TaskError> {
        let id = req.container_id.clone();
        let k = key(ns, &id);
        {
            let mut table = self.inner.table();
            if table.contains_key(&k) {
                return Err(TaskError::AlreadyExists { what: "task", id });
            }
            table.insert(k.clone(), Slot::Creating);
        }
        let mut reservation = Reservation {
            inner: &self.inner,
            key: Some(k.clone()),
        };

        // A point read: inline (see `services::point_read`).
        let container =
            self.inner
                .db
                .containers(ns)
                .get(&id)
                .map_err(|source| TaskError::Metadata {
                    id: id.clone(),
                    source,
                })?;

        if !req.runtime_path.is_empty() {
            return Err(TaskError::InvalidArgument(format!(
                "runtime_path {:?} is not supported: berth runs every task with its own shim",
                req.runtime_path
            )));
        }
        if !RUNTIMES.contains(&container.runtime.name.as_str()) {
            return Err(TaskError::InvalidArgument(format!(
                "runtime {:?} is not supported (use one of {RUNTIMES:?})",
                container.runtime.name
            )));
        }
        if req.checkpoint {
            return Err(TaskError::NotImplemented(
                "creating a task from a checkpoint".into(),
            ));
        }
        let spec = container
            .spec
            .as_ref()
            .ok_or_else(|| TaskError::InvalidArgument(format!("container {id:?} has no spec")))?;
        match serde_json::from_slice::<serde_json::Value>(&spec.value) {
            Ok(v) if v.is_object() => {}
            Ok(_) => {
                return Err(TaskError::InvalidArgument(
                    "invalid spec: not a JSON object".into(),
                ));
            }
            Err(e) => return Err(TaskError::InvalidArgument(format!("invalid spec: {e}"))),
        }
        let options = req.options.clone().or_else(|| {
            container.runtime.options.as_ref().map(|o| Any {
                type_url: o.type_url.clone(),
                value: o.value.clone(),
            })
        });

        let bundle = Bundle::create(&self.inner.state, ns, &id, &spec.value)?;
        let t0 = std::time::Instant::now();
        let connected = match self.inner.launcher.start(&bundle).await {
            Ok(c) => c,
            Err(e) => {
                self.inner.remove_files(&bundle);
                return Err(e);
            }
        };
        let shim_req = spb::CreateRequest {
            id: id.clone(),
            bundle: bundle.path.display().to_string(),
            rootfs: req.rootfs,
            terminal: req.stdio.terminal,
            stdin: req.stdio.stdin.clone(),
            stdout: req.stdio.stdout.clone(),
            stderr: req.stdio.stderr.clone(),
            checkpoint: String::new(),
            parent_checkpoint: String::new(),
            options,
        };
        let shim_started = t0.elapsed();
        let resp = match connected.shim.create(shim_req).await {
            Ok(r) => r,
            Err(status) => {
                tracing::warn!(namespace = ns, id = %id, error = %status.message(), "shim create failed");
                let shutdown = spb::ShutdownRequest {
                    id: id.clone(),
                    now: true,
                };
                let _ = connected.shim.shutdown(shutdown).await;
                if let Err(error) = self.inner.launcher.cleanup(&bundle).await {
                    tracing::warn!(namespace = ns, id = %id, %error, "cleanup after failed create");
                }
                self.inner.remove_files(&bundle);
                return Err(TaskError::shim(&id, "create")(status));
            }
        };
        let task = Arc::new(Task::new(
            bundle,
            connected.shim,
            resp.pid,
            connected.shim_pid,
            req.stdio,
            Some(Status::Created),
        ));
        self.inner.table().insert(k, Slot::Ready(task.clone()));
        reservation.key = None;
        self.watch_shim(task);
        tracing::info!(
            namespace = ns,
            id = %id,
            pid = resp.pid,
            shim_start_ms = shim_started.as_secs_f64() * 1e3,
            total_ms = t0.elapsed().as_secs_f64() * 1e3,
            "task created"
        );
        Ok(resp.pid)
    }

    /// Tasks.Start: the init (empty `exec_id`) or an exec process; its pid.
    pub async fn start(&self, ns: &str, id: &str, exec_id: &str) -> Result<u32, TaskError> {
        let task = self.live(ns, id)?;
        let req = spb::StartRequest {
            id: id.to_owned(),
            exec_id: exec_id.to_owned(),
        };
        let resp = task
            .shim
            .start(req)
            .await
            .map_err(TaskError::shim(id, "start"))?;
        if exec_id.is_empty() {
            task.learn(Status::Running);
        }
        Ok(resp.pid)
    }

    /// Tasks.Delete: only a task that is not running; removes the bundle and what the
    /// runtime left, and lets the shim exit.
    pub async fn delete(&self, ns: &str, id: &str) -> Result<Deleted, TaskError> {
        let task = self.inner.task(ns, id)?;
        if let Some(exit) = task.dead_exit() {
            // The shim died and was cleaned up: only the record is left.
            self.inner.remove(&task);
            self.inner.events.emit(
                ns,
                "/tasks/delete",
                berth_api::any::pack(&berth_api::containerd::events::TaskDelete {
                    container_id: id.to_owned(),
                    pid: task.pid,
                    exit_status: exit.status,
                    exited_at: exit.at,
                    id: id.to_owned(),
                }),
            );
            return Ok(Deleted {
                id: id.to_owned(),
                pid: task.pid,
                exit,
            });
        }
        let state = task
            .shim
            .state(spb::StateRequest {
                id: id.to_owned(),
                exec_id: String::new(),
            })
            .await
            .map_err(TaskError::shim(id, "state"))?;
        let status = Status::try_from(state.status).unwrap_or(Status::Unknown);
        if matches!(status, Status::Running | Status::Paused | Status::Pausing) {
            return Err(TaskError::FailedPrecondition(format!(
                "task {id:?} must be stopped before deletion: {}",
                status.as_str_name().to_ascii_lowercase()
            )));
        }
        task.deleting.store(true, Ordering::SeqCst);
        let req = spb::DeleteRequest {
            id: id.to_owned(),
            exec_id: String::new(),
        };
        let resp = match task.shim.delete(req).await {
            Ok(r) => r,
            Err(status) => {
                task.deleting.store(false, Ordering::SeqCst);
                // A shim that died during Delete was skipped by its watcher: clean up
                // now, so the task reads STOPPED and a second Delete succeeds.
                if is_transport(&status)
                    && !self.inner.launcher.is_alive(&task.bundle, task.shim_pid)
                {
                    self.shim_died(&task).await;
                }
                return Err(TaskError::shim(id, "delete")(status));
            }
        };
        let shutdown = spb::ShutdownRequest {
            id: id.to_owned(),
            now: false,
        };
        if let Err(status) = task.shim.shutdown(shutdown).await {
            // The shim exiting while it answers is normal.
            tracing::debug!(namespace = ns, id, error = %status.message(), "shim shutdown");
        }
        self.inner.remove(&task);
        self.inner.remove_files(&task.bundle);
        tracing::info!(
            namespace = ns,
            id,
            exit_status = resp.exit_status,
            "task deleted"
        );
        Ok(Deleted {
            id: id.to_owned(),
            pid: resp.pid,
            exit: Exit {
                status: resp.exit_status,
                at: resp.exited_at,
            },
        })
    }

    /// Tasks.DeleteProcess: an exited exec process.
    pub async fn delete_process(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
    ) -> Result<Deleted, TaskError> {
        if exec_id.is_empty() {
            return Err(TaskError::InvalidArgument("exec_id must be set".into()));
        }
        let task = self.inner.task(ns, id)?;
        if let Some(exit) = task.dead_exit() {
            if task.execs().remove(exec_id) {
                return Ok(Deleted {
                    id: exec_id.to_owned(),
                    pid: 0,
                    exit,
                });
            }
            return Err(TaskError::NotFound {
                what: "process",
                id: exec_id.to_owned(),
            });
        }
        let req = spb::DeleteRequest {
            id: id.to_owned(),
            exec_id: exec_id.to_owned(),
        };
        let resp = task
            .shim
            .delete(req)
            .await
            .map_err(TaskError::shim(id, "delete process"))?;
        task.execs().remove(exec_id);
        Ok(Deleted {
            id: exec_id.to_owned(),
            pid: resp.pid,
            exit: Exit {
                status: resp.exit_status,
                at: resp.exited_at,
            },
        })
    }

    /// Tasks.Get: one process's state. NotFound when the container has no task.
    pub async fn get(&self, ns: &str, id: &str, exec_id: &str) -> Result<ProcessState, TaskError> {
        let task = self.inner.task(ns, id)?;
        process_state(&task, exec_id).await
    }

    /// Tasks.List: the namespace's tasks (init processes) that match `filter` (see
    /// `fields.rs` for the field names).
    pub async fn list(&self, ns: &str, filter: &Filter) -> Result<Vec<ProcessState>, TaskError> {
        let tasks: Vec<Arc<Task>> = self
            .inner
            .table()
            .iter()
            .filter_map(|((n, _), slot)| match slot {
                Slot::Ready(t) if n == ns => Some(t.clone()),
                _ => None,
            })
            .collect();
        let states = futures::future::join_all(tasks.iter().map(|t| async move {
            match t.known_state() {
                Some(s) => Ok(s),
                None => process_state(t, "").await,
            }
        }))
        .await;
        let mut out = Vec::with_capacity(states.len());
        for (t, s) in tasks.iter().zip(states) {
            match s {
                Ok(s) => out.push(s),
                Err(error) => {
                    tracing::warn!(namespace = ns, id = %t.id, %error, "task state unavailable");
                    out.push(ProcessState {
                        container_id: t.id.clone(),
                        id: t.id.clone(),
                        pid: t.pid,
                        status: Status::Unknown,
                        stdio: t.stdio(),
                        exit_status: 0,
                        exited_at: None,
                    });
                }
            }
        }
        out.retain(|p| {
            filter.matches(&ProcessFields {
                namespace: ns,
                process: p,
            })
        });
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Tasks.Kill. A task whose shim is gone has no process left: NotFound.
    pub async fn kill(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<(), TaskError> {
        let task = self.live(ns, id)?;
        let req = spb::KillRequest {
            id: id.to_owned(),
            exec_id: exec_id.to_owned(),
            signal,
            all,
        };
        task.shim
            .kill(req)
            .await
            .map_err(TaskError::shim(id, "kill"))
    }

    /// Tasks.Exec: add a process (created, not started). A duplicate id is AlreadyExists.
    pub async fn exec(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        stdio: Stdio,
        spec: Option<Any>,
    ) -> Result<(), TaskError> {
        if exec_id.is_empty() {
            return Err(TaskError::InvalidArgument("exec_id must be set".into()));
        }
        crate::identifiers::validate(exec_id)
            .map_err(|e| TaskError::InvalidArgument(format!("invalid exec id {exec_id:?}: {e}")))?;
        let spec =
            spec.ok_or_else(|| TaskError::InvalidArgument("exec process spec must be set".into()))?;
        let task = self.live(ns, id)?;
        if !task.execs().insert(exec_id.to_owned()) {
            return Err(TaskError::AlreadyExists {
                what: "exec process",
                id: exec_id.to_owned(),
            });
        }
        let req = spb::ExecRequest {
            id: id.to_owned(),
            exec_id: exec_id.to_owned(),
            terminal: stdio.terminal,
            stdin: stdio.stdin,
            stdout: stdio.stdout,
            stderr: stdio.stderr,
            spec: Some(spec),
        };
        if let Err(status) = task.shim.exec(req).await {
            // The shim may know the id from before a restart: keep it then.
            if status.code() != tonic::Code::AlreadyExists {
                task.execs().remove(exec_id);
            }
            return Err(TaskError::shim(id, "exec")(status));
        }
        Ok(())
    }

    pub async fn resize_pty(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), TaskError> {
        let task = self.live(ns, id)?;
        let req = spb::ResizePtyRequest {
            id: id.to_owned(),
            exec_id: exec_id.to_owned(),
            width,
            height,
        };
        task.shim
            .resize_pty(req)
            .await
            .map_err(TaskError::shim(id, "resize pty"))
    }

    pub async fn close_io(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        stdin: bool,
    ) -> Result<(), TaskError> {
        let task = self.live(ns, id)?;
        let req = spb::CloseIoRequest {
            id: id.to_owned(),
            exec_id: exec_id.to_owned(),
            stdin,
        };
        task.shim
            .close_io(req)
            .await
            .map_err(TaskError::shim(id, "close io"))
    }

    pub async fn pause(&self, ns: &str, id: &str) -> Result<(), TaskError> {
        let task = self.live(ns, id)?;
        task.shim
            .pause(spb::PauseRequest { id: id.to_owned() })
            .await
            .map_err(TaskError::shim(id, "pause"))?;
        task.learn(Status::Paused);
        Ok(())
    }

    pub async fn resume(&self, ns: &str, id: &str) -> Result<(), TaskError> {
        let task = self.live(ns, id)?;
        task.shim
            .resume(spb::ResumeRequest { id: id.to_owned() })
            .await
            .map_err(TaskError::shim(id, "resume"))?;
        task.learn(Status::Running);
        Ok(())
    }

    pub async fn list_pids(&self, ns: &str, id: &str) -> Result<Vec<ProcessInfo>, TaskError> {
        let task = self.live(ns, id)?;
        let resp = task
            .shim
            .pids(spb::PidsRequest { id: id.to_owned() })
            .await
            .map_err(TaskError::shim(id, "pids"))?;
        Ok(resp.processes)
    }

    /// Tasks.Update: new resources (an Any of LinuxResources JSON) and annotations.
    pub async fn update(
        &self,
        ns: &str,
        id: &str,
        resources: Option<Any>,
        annotations: HashMap<String, String>,
    ) -> Result<(), TaskError> {
        let resources =
            resources.ok_or_else(|| TaskError::InvalidArgument("resources must be set".into()))?;
        let task = self.live(ns, id)?;
        let req = spb::UpdateRequest {
            id: id.to_owned(),
            resources: Some(resources),
            annotations,
        };
        task.shim
            .update(req)
            .await
            .map_err(TaskError::shim(id, "update"))
    }

    /// Tasks.Metrics: cgroup metrics of the namespace's live tasks matching `filter`
    /// (fields `id`, `namespace`).
    pub async fn metrics(&self, ns: &str, filter: &Filter) -> Result<Vec<Metric>, TaskError> {
        let tasks: Vec<Arc<Task>> = self
            .inner
            .table()
            .iter()
            .filter_map(|((n, _), slot)| match slot {
                Slot::Ready(t)
                    if n == ns && t.dead_exit().is_none() && filter.matches(&TaskFields(t)) =>
                {
                    Some(t.clone())
                }
                _ => None,
            })
            .collect();
        let stats = futures::future::join_all(
            tasks
                .iter()
                .map(|t| t.shim.stats(spb::StatsRequest { id: t.id.clone() })),
        )
        .await;
        let now = crate::services::to_timestamp(SystemTime::now());
        let mut out = Vec::new();
        for (t, s) in tasks.iter().zip(stats) {
            match s {
                Ok(resp) => out.push(Metric {
                    timestamp: now,
                    id: t.id.clone(),
                    data: resp.stats,
                }),
                Err(status) => {
                    tracing::warn!(namespace = ns, id = %t.id, error = %status.message(), "no metrics");
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Tasks.Wait: blocks until the process exits (valid before Start). A shim that dies
    /// meanwhile answers with the exit the dead-shim path recorded.
    pub async fn wait(&self, ns: &str, id: &str, exec_id: &str) -> Result<Exit, TaskError> {
        let task = self.inner.task(ns, id)?;
        let mut dead = task.dead.subscribe();
        if let Some(exit) = *dead.borrow() {
            return Ok(exit);
        }
        let req = spb::WaitRequest {
            id: id.to_owned(),
            exec_id: exec_id.to_owned(),
        };
        let shim = task.shim.clone();
        let mut dead_again = task.dead.subscribe();
        // The exit the dead-shim path records; `None` if the task went away.
        async fn recorded(rx: &mut watch::Receiver<Option<Exit>>) -> Option<Exit> {
            let r = rx.wait_for(Option::is_some).await;
            r.ok().map(|e| {
                (*e).unwrap_or(Exit {
                    status: UNKNOWN_EXIT,
                    at: None,
                })
            })
        }
        tokio::select! {
            r = shim.wait(req) => match r {
                Ok(resp) => {
                    let exit = Exit { status: resp.exit_status, at: resp.exited_at };
                    if exec_id.is_empty() {
                        task.set_last_exit(exit);
                    }
                    Ok(exit)
                }
                Err(status) if is_transport(&status) => {
                    let waited =
                        tokio::time::timeout(DEAD_SHIM_GRACE, recorded(&mut dead_again)).await;
                    match waited.ok().flatten() {
                        Some(exit) => Ok(exit),
                        None => Err(TaskError::shim(id, "wait")(status)),
                    }
                }
                Err(status) => Err(TaskError::shim(id, "wait")(status)),
            },
            r = recorded(&mut dead) => r.ok_or_else(|| task_not_found(ns, id)),
        }
    }

    /// A task whose shim is alive; a dead one answers NotFound (no process left).
    fn live(&self, ns: &str, id: &str) -> Result<Arc<Task>, TaskError> {
        let task = self.inner.task(ns, id)?;
        if task.dead_exit().is_some() {
            return Err(TaskError::NotFound {
                what: "process (already finished) of task",
                id: id.to_owned(),
            });
        }
        Ok(task)
    }
}

async fn process_state(task: &Task, exec_id: &str) -> Result<ProcessState, TaskError> {
    if let Some(exit) = task.dead_exit() {
        if !exec_id.is_empty() && !task.execs().contains(exec_id) {
            return Err(TaskError::NotFound {
                what: "process",
                id: exec_id.to_owned(),
            });
        }
        return Ok(ProcessState {
            container_id: task.id.clone(),
            id: if exec_id.is_empty() {
                task.id.clone()
            } else {
                exec_id.to_owned()
            },
            pid: if exec_id.is_empty() { task.pid } else { 0 },
            status: Status::Stopped,
            stdio: if exec_id.is_empty() {
                task.stdio()
            } else {
                Stdio::default()
            },
            exit_status: exit.status,
            exited_at: exit.at,
        });
    }
    let req = spb::StateRequest {
        id: task.id.clone(),
        exec_id: exec_id.to_owned(),
    };
    let st = task
        .shim
        .state(req)
        .await
        .map_err(TaskError::shim(&task.id, "state"))?;
    if exec_id.is_empty() {
        task.learn_state(&st);
        // An answer since a restart confirms the shim (recovery.rs).
        task.confirmed.store(true, Ordering::SeqCst);
    }
    Ok(ProcessState {
        container_id: task.id.clone(),
        id: if exec_id.is_empty() {
            task.id.clone()
        } else {
            exec_id.to_owned()
        },
        pid: st.pid,
        status: Status::try_from(st.status).unwrap_or(Status::Unknown),
        stdio: Stdio::from(&st),
        exit_status: st.exit_status,
        exited_at: st.exited_at,
    })
}
