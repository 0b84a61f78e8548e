//! Exec processes: Exec (add) and their Start.

use std::sync::Arc;

use berth_api::containerd::events::{TaskExecAdded, TaskExecStarted};

use super::{Proc, Status, Task, TaskError, valid_exec_id};
use crate::events::topic;
use crate::io::{ProcIo, StdioPaths};
use crate::runtime::{ChildStdio, ExecOpts, Runtime};

impl<R: Runtime> Task<R> {
    pub(super) async fn start_exec(self: &Arc<Self>, exec_id: &str) -> Result<u32, TaskError> {
        let init_status = self.with_proc("", |p| Ok(p.status))?;
        if !init_status.is_alive() {
            return Err(self.wrong_state("", "exec in", init_status));
        }
        let (stdio, spec) = self.with_proc(exec_id, |p| match p.status {
            Status::Created => Ok((p.stdio.clone(), p.spec.clone())),
            s => Err(self.wrong_state(exec_id, "start", s)),
        })?;
        let bundle = &self.cfg.bundle;
        let process_file = bundle.join(format!("exec-{exec_id}.json"));
        let pid_file = bundle.join(format!("exec-{exec_id}.pid"));
        std::fs::write(&process_file, &spec).map_err(|source| TaskError::File {
            path: process_file.display().to_string(),
            source,
        })?;
        let opts = |stdio, console_socket| ExecOpts {
            id: self.cfg.id.clone(),
            process_file: process_file.clone(),
            pid_file: pid_file.clone(),
            console_socket,
            stdio,
        };
        let started = async {
            if stdio.terminal {
                let sock = self.console_socket()?;
                let call = self
                    .runtime
                    .exec(opts(ChildStdio::default(), Some(sock.path().to_owned())));
                let (pid, master) = self.with_console(call, &sock).await?;
                Ok::<_, TaskError>((pid, ProcIo::terminal(master, &stdio, None)?))
            } else {
                // A failed exec drops `pending`: its message is not copied.
                let (pending, child) = ProcIo::pipes(&stdio, None)?;
                let pid = self.runtime.exec(opts(child, None)).await?;
                Ok((pid, pending.start()))
            }
        }
        .await;
        let _ = std::fs::remove_file(&process_file);
        let _ = std::fs::remove_file(&pid_file);
        let (pid, io) = started?;
        let exit = self.reaper.subscribe(pid);
        let io = Arc::new(io);
        self.with_proc(exec_id, |p| {
            p.pid = pid;
            p.status = Status::Running;
            p.io = Some(io.clone());
            Ok(())
        })?;
        self.monitor(exec_id.to_owned(), pid, exit, Some(io));
        tracing::info!(exec_id, pid, "exec started");
        self.events.publish(
            topic::EXEC_STARTED,
            &TaskExecStarted {
                container_id: self.cfg.id.clone(),
                exec_id: exec_id.to_owned(),
                pid,
            },
        );
        Ok(pid)
    }

    /// Exec: adds a created exec process (started by Start).
    pub async fn exec(
        &self,
        exec_id: &str,
        stdio: StdioPaths,
        spec: Vec<u8>,
    ) -> Result<(), TaskError> {
        valid_exec_id(exec_id)?;
        if serde_json::from_slice::<serde_json::Value>(&spec).is_err() {
            return Err(TaskError::Invalid {
                what: "exec process spec",
                detail: "not JSON".into(),
            });
        }
        let _l = self.lifecycle.lock().await;
        {
            let mut st = self.state();
            let init = st.init.as_ref().ok_or_else(|| self.not_created())?;
            if init.status == Status::Stopped {
                return Err(self.wrong_state("", "exec in", init.status));
            }
            if st.execs.contains_key(exec_id) {
                return Err(TaskError::ExecExists {
                    id: self.cfg.id.clone(),
                    exec_id: exec_id.to_owned(),
                });
            }
            st.execs
                .insert(exec_id.to_owned(), Proc::new(0, stdio, spec));
        }
        self.events.publish(
            topic::EXEC_ADDED,
            &TaskExecAdded {
                container_id: self.cfg.id.clone(),
                exec_id: exec_id.to_owned(),
            },
        );
        Ok(())
    }
}
