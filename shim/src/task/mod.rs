//! The task domain: the container's init process and its execs, their
//! state machine, and the lifecycle operations behind the Shim RPCs.
//!
//! ```text
//! init:  Create -> created --Start--> running <-Pause/Resume-> paused
//!                     |                  |  (exit reaped, output drained)
//!                     +------------------+--> stopped --Delete--> (gone)
//! exec:  Exec -> created --Start--> running --exit--> stopped --Delete--> (gone)
//! ```
//!
//! Lifecycle operations (Create, Start, Delete, Exec, Pause, Resume) and
//! the recording of exits are serialised by one async lock, so the events
//! they publish keep the contract's order (an exit is never published before
//! the Start that preceded it). Exit statuses stay until Delete.

mod console;
mod error;
mod exec;
mod process;
mod query;
mod state_file;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_api::containerd::events::{
    TaskCreate, TaskDelete, TaskExit, TaskIo, TaskPaused, TaskResumed, TaskStart,
};
use berth_api::containerd::types::Mount;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::TaskError;
pub use process::{Proc, ProcState, Status};

use crate::events::{Publisher, timestamp, topic};
use crate::io::log::ContainerLog;
use crate::io::{ProcIo, StdioPaths};
use crate::mount::{MountSpec, Mounter};
use crate::reaper::{Exit, Reaper};
use crate::runtime::{ChildStdio, CreateOpts, Runtime};

/// How long a console socket may wait for the pty after the runtime returned.
const CONSOLE_WAIT: Duration = Duration::from_secs(5);

/// Fixed facts about the task a shim serves.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// containerd namespace.
    pub namespace: String,
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Directory for console sockets (short paths: sun_path is 108 bytes).
    pub console_dir: PathBuf,
    /// File name prefix of console sockets.
    pub console_prefix: String,
    /// How long output may take to drain after an exit.
    pub drain_limit: Duration,
    /// Whether to watch the container's memory cgroup for OOM kills.
    pub watch_oom: bool,
    /// Whether to trim start-up pages after the init's Start
    /// ([`crate::trim::after_start`]).
    pub trim_after_start: bool,
}

/// What Create asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Bundle (must be the shim's).
    pub bundle: PathBuf,
    /// Mounts for `<bundle>/rootfs`, as sent (kept for the event).
    pub rootfs: Vec<Mount>,
    /// Stdio.
    pub stdio: StdioPaths,
    /// runc's `--no-pivot`.
    pub no_pivot: bool,
}

#[derive(Default)]
struct State {
    init: Option<Proc>,
    execs: HashMap<String, Proc>,
    deleted: bool,
    mounted: bool,
    oom: Option<JoinHandle<()>>,
    log: Option<Arc<Mutex<ContainerLog>>>,
}

/// The task a shim serves.
pub struct Task<R: Runtime> {
    cfg: TaskConfig,
    runtime: R,
    reaper: Reaper,
    events: Publisher,
    mounter: Box<dyn Mounter>,
    lifecycle: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    console_seq: AtomicU32,
}

fn valid_exec_id(exec_id: &str) -> Result<(), TaskError> {
    let ok = !exec_id.is_empty()
        && exec_id.len() <= 76
        && exec_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !exec_id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(TaskError::Invalid {
            what: "exec id",
            detail: format!("{exec_id:?} must be 1-76 of [A-Za-z0-9_.-]"),
        })
    }
}

impl<R: Runtime> Task<R> {
    /// A task with nothing created yet.
    pub fn new(
        cfg: TaskConfig,
        runtime: R,
        reaper: Reaper,
        events: Publisher,
        mounter: Box<dyn Mounter>,
    ) -> Arc<Task<R>> {
        Arc::new(Task {
            cfg,
            runtime,
            reaper,
            events,
            mounter,
            lifecycle: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
            console_seq: AtomicU32::new(0),
        })
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.cfg.id
    }

    /// The runtime (tests inspect the fake).
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn not_created(&self) -> TaskError {
        TaskError::NotCreated {
            id: self.cfg.id.clone(),
        }
    }

    fn process_name(&self, exec_id: &str) -> String {
        if exec_id.is_empty() {
            self.cfg.id.clone()
        } else {
            exec_id.to_owned()
        }
    }

    fn wrong_state(&self, exec_id: &str, op: &'static str, status: Status) -> TaskError {
        TaskError::WrongState {
            id: self.cfg.id.clone(),
            process: self.process_name(exec_id),
            op,
            status: status.name(),
        }
    }

    /// Runs `f` on the process `exec_id` ("" = init) under the state lock.
    fn with_proc<T>(
        &self,
        exec_id: &str,
        f: impl FnOnce(&mut Proc) -> Result<T, TaskError>,
    ) -> Result<T, TaskError> {
        let mut st = self.state();
        if exec_id.is_empty() {
            let init = st.init.as_mut().ok_or_else(|| self.not_created())?;
            return f(init);
        }
        if st.init.is_none() {
            return Err(self.not_created());
        }
        let p = st
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| TaskError::ProcessNotFound {
                id: self.cfg.id.clone(),
                exec_id: exec_id.to_owned(),
            })?;
        f(p)
    }

    /// Watches `pid` until it exits, drains its output and records the exit.
    fn monitor(
        self: &Arc<Self>,
        exec_id: String,
        pid: u32,
        exit: oneshot::Receiver<Exit>,
        io: Option<Arc<ProcIo>>,
    ) {
        let task = Arc::clone(self);
        tokio::spawn(async move {
            let Ok(exit) = exit.await else { return };
            tracing::debug!(exec_id, pid, status = exit.status, "process exited");
            if let Some(io) = io {
                io.drain(task.cfg.drain_limit).await;
            }
            task.record_exit(&exec_id, pid, exit).await;
        });
    }

    /// Marks the process exited and publishes TaskExit.
    async fn record_exit(&self, exec_id: &str, pid: u32, exit: Exit) {
        let _l = self.lifecycle.lock().await;
        let mut st = self.state();
        let proc = if exec_id.is_empty() {
            st.init.as_mut()
        } else {
            st.execs.get_mut(exec_id)
        };
        let Some(proc) = proc.filter(|p| p.pid == pid && p.exit.is_none()) else {
            return;
        };
        proc.set_exited(exit);
        proc.io = None;
        if exec_id.is_empty()
            && let Some(h) = st.oom.take()
        {
            h.abort();
        }
        drop(st);
        if exec_id.is_empty() {
            self.save_init_state();
        }
        tracing::info!(exec_id, pid, status = exit.status, "exit recorded");
        self.events.publish(
            topic::EXIT,
            &TaskExit {
                container_id: self.cfg.id.clone(),
                id: self.process_name(exec_id),
                pid,
                exit_status: exit.status,
                exited_at: Some(timestamp(exit.at)),
            },
        );
    }

    /// Create: mounts the rootfs, sets up stdio, creates the container.
    pub async fn create(self: &Arc<Self>, req: CreateRequest) -> Result<u32, TaskError> {
        let _l = self.lifecycle.lock().await;
        {
            let st = self.state();
            if st.deleted {
                return Err(TaskError::Deleted {
                    id: self.cfg.id.clone(),
                });
            }
            if st.init.is_some() {
                return Err(TaskError::AlreadyCreated {
                    id: self.cfg.id.clone(),
                });
            }
        }
        let rootfs = self.cfg.bundle.join(crate::paths::ROOTFS);
        let mounts: Vec<MountSpec> = req
            .rootfs
            .iter()
            .map(|m| MountSpec {
                kind: m.r#type.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            })
            .collect();
        if !mounts.is_empty() {
            std::fs::create_dir_all(&rootfs).map_err(|source| TaskError::File {
                path: rootfs.display().to_string(),
                source,
            })?;
            self.mounter.mount_all(&mounts, &rootfs)?;
        }
        let created = self.create_container(&req).await;
        let (pid, io, log) = match created {
            Ok(v) => v,
            Err(e) => {
                if !mounts.is_empty()
                    && let Err(u) = self.mounter.unmount_all(&rootfs)
                {
                    tracing::warn!(error = %u, "cannot unmount rootfs after failed create");
                }
                return Err(e);
            }
        };
        let exit = self.reaper.subscribe(pid);
        let mut proc = Proc::new(pid, req.stdio.clone(), Vec::new());
        proc.io = Some(io.clone());
        {
            let mut st = self.state();
            st.init = Some(proc);
            st.mounted = !mounts.is_empty();
            st.log = log;
            if self.cfg.watch_oom {
                st.oom = crate::oom::watch(pid, self.cfg.id.clone(), self.events.clone());
            }
        }
        self.save_init_state();
        self.monitor(String::new(), pid, exit, Some(io));
        tracing::info!(pid, "container created");
        self.events.publish(
            topic::CREATE,
            &TaskCreate {
                container_id: self.cfg.id.clone(),
                bundle: self.cfg.bundle.display().to_string(),
                rootfs: req.rootfs.clone(),
                io: Some(TaskIo {
                    stdin: req.stdio.stdin.clone(),
                    stdout: req.stdio.stdout.clone(),
                    stderr: req.stdio.stderr.clone(),
                    terminal: req.stdio.terminal,
                }),
                checkpoint: String::new(),
                pid,
            },
        );
        Ok(pid)
    }

    #[allow(clippy::type_complexity)]
    async fn create_container(
        &self,
        req: &CreateRequest,
    ) -> Result<(u32, Arc<ProcIo>, Option<Arc<Mutex<ContainerLog>>>), TaskError> {
        let log = crate::io::container_log(&self.cfg.bundle, &req.stdio);
        let opts = |stdio, console_socket| CreateOpts {
            id: self.cfg.id.clone(),
            bundle: self.cfg.bundle.clone(),
            pid_file: self.cfg.bundle.join(crate::paths::INIT_PID),
            console_socket,
            no_pivot: req.no_pivot,
            stdio,
        };
        if req.stdio.terminal {
            let sock = self.console_socket()?;
            let call = self
                .runtime
                .create(opts(ChildStdio::default(), Some(sock.path().to_owned())));
            let (pid, master) = self.with_console(call, &sock).await?;
            let io = ProcIo::terminal(master, &req.stdio, log.clone())?;
            Ok((pid, Arc::new(io), log))
        } else {
            // A failed create drops `pending`: its message is not copied.
            let (pending, child) = ProcIo::pipes(&req.stdio, log.clone())?;
            let pid = self.runtime.create(opts(child, None)).await?;
            Ok((pid, Arc::new(pending.start()), log))
        }
    }

    /// Start of the init (`exec_id` empty) or of a created exec.
    pub async fn start(self: &Arc<Self>, exec_id: &str) -> Result<u32, TaskError> {
        let _l = self.lifecycle.lock().await;
        if exec_id.is_empty() {
            let pid = self.with_proc("", |p| match p.status {
                Status::Created => Ok(p.pid),
                s => Err(self.wrong_state("", "start", s)),
            })?;
            self.runtime.start(&self.cfg.id).await?;
            self.with_proc("", |p| {
                if p.status == Status::Created {
                    p.status = Status::Running;
                }
                Ok(())
            })?;
            self.save_init_state();
            tracing::info!(pid, "container started");
            self.events.publish(
                topic::START,
                &TaskStart {
                    container_id: self.cfg.id.clone(),
                    pid,
                },
            );
            if self.cfg.trim_after_start {
                crate::trim::after_start(self.events.clone());
            }
            return Ok(pid);
        }
        self.start_exec(exec_id).await
    }

    /// Delete of a non-running process; for the init also the container,
    /// its rootfs mount, and everything else. Returns pid and exit.
    pub async fn delete(&self, exec_id: &str) -> Result<(u32, Exit), TaskError> {
        let _l = self.lifecycle.lock().await;
        if !exec_id.is_empty() {
            let (pid, exit) = self.with_proc(exec_id, |p| {
                if !p.status.can_delete() {
                    return Err(self.wrong_state(exec_id, "delete", p.status));
                }
                Ok((p.pid, p.exit.unwrap_or_else(|| Exit::now(0))))
            })?;
            if let Some(p) = self.state().execs.remove(exec_id)
                && let Some(io) = p.io
            {
                io.close();
            }
            return Ok((pid, exit));
        }
        let (pid, status, exit) = self.with_proc("", |p| {
            if !p.status.can_delete() {
                return Err(self.wrong_state("", "delete", p.status));
            }
            Ok((p.pid, p.status, p.exit))
        })?;
        self.runtime.delete(&self.cfg.id, true).await?;
        // A created init is killed by the forced delete.
        let exit =
            exit.unwrap_or_else(|| Exit::now(if status == Status::Created { 137 } else { 0 }));
        let mounted = {
            let mut st = self.state();
            if let Some(io) = st.init.take().and_then(|p| p.io) {
                io.close();
            }
            for (_, p) in st.execs.drain() {
                if let Some(io) = p.io {
                    io.close();
                }
            }
            if let Some(h) = st.oom.take() {
                h.abort();
            }
            st.log = None;
            st.deleted = true;
            std::mem::take(&mut st.mounted)
        };
        self.save_init_state();
        if mounted {
            self.mounter
                .unmount_all(&self.cfg.bundle.join(crate::paths::ROOTFS))?;
        }
        tracing::info!(pid, status = exit.status, "container deleted");
        self.events.publish(
            topic::DELETE,
            &TaskDelete {
                container_id: self.cfg.id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: Some(timestamp(exit.at)),
                id: self.cfg.id.clone(),
            },
        );
        Ok((pid, exit))
    }

    /// Pause: freezes the container.
    pub async fn pause(&self) -> Result<(), TaskError> {
        let _l = self.lifecycle.lock().await;
        self.with_proc("", |p| match p.status {
            Status::Running => Ok(()),
            s => Err(self.wrong_state("", "pause", s)),
        })?;
        self.runtime.pause(&self.cfg.id).await?;
        self.with_proc("", |p| {
            if p.status == Status::Running {
                p.status = Status::Paused;
            }
            Ok(())
        })?;
        self.save_init_state();
        self.events.publish(
            topic::PAUSED,
            &TaskPaused {
                container_id: self.cfg.id.clone(),
            },
        );
        Ok(())
    }

    /// Resume: thaws the container.
    pub async fn resume(&self) -> Result<(), TaskError> {
        let _l = self.lifecycle.lock().await;
        self.with_proc("", |p| match p.status {
            Status::Paused => Ok(()),
            s => Err(self.wrong_state("", "resume", s)),
        })?;
        self.runtime.resume(&self.cfg.id).await?;
        self.with_proc("", |p| {
            if p.status == Status::Paused {
                p.status = Status::Running;
            }
            Ok(())
        })?;
        self.save_init_state();
        self.events.publish(
            topic::RESUMED,
            &TaskResumed {
                container_id: self.cfg.id.clone(),
            },
        );
        Ok(())
    }
}
