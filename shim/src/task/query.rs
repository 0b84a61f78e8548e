//! Operations that read or signal processes without changing the
//! lifecycle: State, Kill, Wait, Pids, Stats, Update, ResizePty, CloseIO.

use super::{ProcState, Status, Task, TaskError};
use crate::reaper::Exit;
use crate::runtime::Runtime;

impl<R: Runtime> Task<R> {
    /// State of a process.
    pub fn state_of(&self, exec_id: &str) -> Result<ProcState, TaskError> {
        self.with_proc(exec_id, |p| {
            Ok(ProcState {
                exec_id: exec_id.to_owned(),
                pid: p.pid,
                status: p.status,
                stdio: p.stdio.clone(),
                exit: p.exit,
            })
        })
    }

    /// The bundle path.
    pub fn bundle(&self) -> &std::path::Path {
        &self.cfg.bundle
    }

    /// Kill: signals the init through the runtime (`all`: every process in
    /// the container) or an exec directly.
    pub async fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<(), TaskError> {
        let finished = || TaskError::Finished {
            id: self.cfg.id.clone(),
            process: self.process_name(exec_id),
        };
        if exec_id.is_empty() {
            let status = self.with_proc("", |p| Ok(p.status))?;
            if status == Status::Stopped {
                return Err(finished());
            }
            return Ok(self.runtime.kill(&self.cfg.id, signal, all).await?);
        }
        let pid = self.with_proc(exec_id, |p| match p.status {
            Status::Stopped => Err(finished()),
            Status::Created => Err(self.wrong_state(exec_id, "kill", p.status)),
            _ => Ok(p.pid),
        })?;
        let sig = if signal == 0 {
            None
        } else {
            Some(
                nix::sys::signal::Signal::try_from(signal as i32).map_err(|_| {
                    TaskError::Invalid {
                        what: "signal",
                        detail: signal.to_string(),
                    }
                })?,
            )
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
            .map_err(|source| TaskError::Signal { pid, source })
    }

    /// Wait: blocks until the process exited (also before Start).
    pub async fn wait(&self, exec_id: &str) -> Result<Exit, TaskError> {
        let mut rx = self.with_proc(exec_id, |p| Ok(p.waiter()))?;
        let exit = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| TaskError::ProcessNotFound {
                id: self.cfg.id.clone(),
                exec_id: exec_id.to_owned(),
            })?;
        (*exit).ok_or_else(|| self.not_created())
    }

    /// The pids in the container.
    pub async fn pids(&self) -> Result<Vec<u32>, TaskError> {
        self.with_proc("", |_| Ok(()))?;
        Ok(self.runtime.ps(&self.cfg.id).await?)
    }

    /// The runtime's stats JSON.
    pub async fn stats(&self) -> Result<serde_json::Value, TaskError> {
        self.with_proc("", |_| Ok(()))?;
        Ok(self.runtime.stats(&self.cfg.id).await?)
    }

    /// Update: new resources (LinuxResources JSON).
    pub async fn update(&self, resources: &[u8]) -> Result<(), TaskError> {
        self.with_proc("", |_| Ok(()))?;
        Ok(self.runtime.update(&self.cfg.id, resources).await?)
    }

    /// ResizePty of a process (no-op without a terminal).
    pub fn resize(&self, exec_id: &str, width: u32, height: u32) -> Result<(), TaskError> {
        let io = self.with_proc(exec_id, |p| Ok(p.io.clone()))?;
        let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        match io {
            Some(io) => Ok(io.resize(clamp(width), clamp(height))?),
            None => Ok(()),
        }
    }

    /// CloseIO: closes our stdin writer of a process.
    pub fn close_io(&self, exec_id: &str) -> Result<(), TaskError> {
        let io = self.with_proc(exec_id, |p| Ok(p.io.clone()))?;
        if let Some(io) = io {
            io.close_stdin();
        }
        Ok(())
    }

    /// The init pid, 0 when none.
    pub fn task_pid(&self) -> u32 {
        self.state().init.as_ref().map_or(0, |p| p.pid)
    }

    /// Whether the shim may exit: no container (never created or deleted)
    /// and no live process.
    pub fn can_shutdown(&self) -> bool {
        let st = self.state();
        st.init.is_none() && st.execs.values().all(|p| !p.status.is_alive())
    }
}
