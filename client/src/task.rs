//! Task lifecycle helpers over Tasks: create with the container's rootfs,
//! start, wait, kill, exec, resize, close stdin, delete.

use berth_api::any::{PROCESS_TYPE_URL, pack_json};
use berth_api::containerd::services::tasks::v1::{
    CloseIoRequest, CreateTaskRequest, DeleteProcessRequest, DeleteResponse, DeleteTaskRequest,
    ExecProcessRequest, GetRequest, KillRequest, ListPidsRequest, ListTasksRequest, MetricsRequest,
    PauseTaskRequest, ResizePtyRequest, ResumeTaskRequest, StartRequest, WaitRequest, WaitResponse,
};
use berth_api::containerd::types::{Metric, Mount};
use berth_api::containerd::v1::types::{Process, ProcessInfo, Status};

use crate::cio::FifoSet;
use crate::client::Client;
use crate::error::{Error, Result};

/// How a process's stdio is wired.
#[derive(Debug, Clone, Copy)]
pub enum Stdio<'a> {
    /// Through a FIFO set the caller attached.
    Fifos(&'a FifoSet),
    /// No paths: berth's shim keeps the output in the container log.
    Null,
}

impl Stdio<'_> {
    fn paths(&self) -> (String, String, String, bool) {
        match self {
            Stdio::Fifos(f) => {
                let (i, o, e) = f.paths();
                (i, o, e, f.terminal)
            }
            Stdio::Null => Default::default(),
        }
    }
}

/// A task's status name as ctr prints it (`running`, `stopped`, …).
pub fn status_name(status: i32) -> &'static str {
    Status::try_from(status)
        .unwrap_or(Status::Unknown)
        .lower_name()
}

impl Client {
    /// Creates the task of container `id` on its snapshot's mounts; returns
    /// the init pid.
    pub async fn create_task(&self, id: &str, stdio: Stdio<'_>) -> Result<u32> {
        let container = self.get_container(id).await?;
        let rootfs = if container.snapshot_key.is_empty() {
            Vec::new()
        } else {
            self.snapshot_mounts(&container.snapshotter, &container.snapshot_key)
                .await?
        };
        self.create_task_on(id, rootfs, stdio).await
    }

    /// Creates the task of container `id` on `rootfs` (its snapshot's
    /// mounts, known to the caller); returns the init pid.
    pub async fn create_task_on(
        &self,
        id: &str,
        rootfs: Vec<Mount>,
        stdio: Stdio<'_>,
    ) -> Result<u32> {
        let (stdin, stdout, stderr, terminal) = stdio.paths();
        Ok(self
            .tasks()
            .create(CreateTaskRequest {
                container_id: id.to_string(),
                rootfs,
                stdin,
                stdout,
                stderr,
                terminal,
                ..CreateTaskRequest::default()
            })
            .await
            .map_err(Error::at("Tasks.Create"))?
            .into_inner()
            .pid)
    }

    /// Starts the init (`exec_id` empty) or an exec; returns its pid.
    pub async fn start_task(&self, id: &str, exec_id: &str) -> Result<u32> {
        Ok(self
            .tasks()
            .start(StartRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
            .await
            .map_err(Error::at("Tasks.Start"))?
            .into_inner()
            .pid)
    }

    /// Blocks until the process exits; returns its exit status.
    pub async fn wait_task(&self, id: &str, exec_id: &str) -> Result<WaitResponse> {
        Ok(self
            .tasks()
            .wait(WaitRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
            .await
            .map_err(Error::at("Tasks.Wait"))?
            .into_inner())
    }

    /// Sends `signal` to the process (to every process with `all`).
    pub async fn kill_task(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        self.tasks()
            .kill(KillRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                signal,
                all,
            })
            .await
            .map_err(Error::at("Tasks.Kill"))?;
        Ok(())
    }

    /// The task's process state; `None` when the container has no task.
    pub async fn get_task(&self, id: &str) -> Result<Option<Process>> {
        match self
            .tasks()
            .get(GetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            })
            .await
        {
            Ok(resp) => Ok(resp.into_inner().process),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(Error::rpc("Tasks.Get", s)),
        }
    }

    /// Process `exec_id` of task `id` (empty: the init); `None` when there
    /// is no such task or exec.
    pub async fn get_process(&self, id: &str, exec_id: &str) -> Result<Option<Process>> {
        match self
            .tasks()
            .get(GetRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
            .await
        {
            Ok(resp) => Ok(resp.into_inner().process),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(Error::rpc("Tasks.Get", s)),
        }
    }

    /// Reopens the stdio FIFOs of running process `exec_id` of task `id`
    /// (empty: the init), as ctr's `tasks attach`: their paths come from
    /// Tasks.Get. Fails with `NotFound` when there is no such process and
    /// `InvalidArgument` when it is not running or its stdio is not FIFOs
    /// (a process started without them writes to its container log).
    ///
    /// ```no_run
    /// # async fn demo(client: berth_client::Client) -> berth_client::Result<()> {
    /// use std::time::Duration;
    ///
    /// let fifos = client.attach_fifos("web", "").await?;
    /// let output = fifos.attach(
    ///     Some(Box::new(std::io::stdin())),
    ///     Box::new(std::io::stdout()),
    ///     Box::new(std::io::stderr()),
    /// );
    /// let exit = client.wait_task("web", "").await?;
    /// output.wait_output(Duration::from_secs(5)).await;
    /// println!("web exited with {}", exit.exit_status);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn attach_fifos(&self, id: &str, exec_id: &str) -> Result<FifoSet> {
        let process = self.get_process(id, exec_id).await?.ok_or_else(|| {
            Error::NotFound(format!("container {id} has no process {exec_id:?} running"))
        })?;
        let status = Status::try_from(process.status).unwrap_or(Status::Unknown);
        if !matches!(status, Status::Running | Status::Paused | Status::Created) {
            return Err(Error::InvalidArgument(format!(
                "cannot attach to container {id}: it is {}",
                status_name(process.status)
            )));
        }
        if crate::cio::is_log_target(&process.stdout) {
            return Err(Error::InvalidArgument(format!(
                "cannot attach to container {id}: it was started without stdio fifos \
                 (its output is in its log)"
            )));
        }
        FifoSet::existing(
            &process.stdin,
            &process.stdout,
            &process.stderr,
            process.terminal,
        )
    }

    /// Every task in the namespace.
    pub async fn list_tasks(&self) -> Result<Vec<Process>> {
        Ok(self
            .tasks()
            .list(ListTasksRequest {
                filter: String::new(),
            })
            .await
            .map_err(Error::at("Tasks.List"))?
            .into_inner()
            .tasks)
    }

    /// Deletes a stopped task; returns its exit status.
    pub async fn delete_task(&self, id: &str) -> Result<DeleteResponse> {
        Ok(self
            .tasks()
            .delete(DeleteTaskRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(Error::at("Tasks.Delete"))?
            .into_inner())
    }

    /// Adds exec `exec_id` running `process` (an OCI Process as JSON).
    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &serde_json::Value,
        stdio: Stdio<'_>,
    ) -> Result<()> {
        let (stdin, stdout, stderr, terminal) = stdio.paths();
        let json = serde_json::to_vec(process).map_err(|source| Error::Parse {
            what: "process spec".into(),
            source,
        })?;
        self.tasks()
            .exec(ExecProcessRequest {
                container_id: id.to_string(),
                stdin,
                stdout,
                stderr,
                terminal,
                spec: Some(pack_json(PROCESS_TYPE_URL, json)),
                exec_id: exec_id.to_string(),
            })
            .await
            .map_err(Error::at("Tasks.Exec"))?;
        Ok(())
    }

    /// Removes a finished exec.
    pub async fn delete_process(&self, id: &str, exec_id: &str) -> Result<DeleteResponse> {
        Ok(self
            .tasks()
            .delete_process(DeleteProcessRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
            .await
            .map_err(Error::at("Tasks.DeleteProcess"))?
            .into_inner())
    }

    /// Resizes the process's terminal.
    pub async fn resize_pty(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.tasks()
            .resize_pty(ResizePtyRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                width,
                height,
            })
            .await
            .map_err(Error::at("Tasks.ResizePty"))?;
        Ok(())
    }

    /// Closes the process's stdin (after the client's input hit EOF).
    pub async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()> {
        self.tasks()
            .close_io(CloseIoRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                stdin: true,
            })
            .await
            .map_err(Error::at("Tasks.CloseIO"))?;
        Ok(())
    }

    /// Freezes every process of the task.
    pub async fn pause_task(&self, id: &str) -> Result<()> {
        self.tasks()
            .pause(PauseTaskRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(Error::at("Tasks.Pause"))?;
        Ok(())
    }

    /// Thaws a paused task.
    pub async fn resume_task(&self, id: &str) -> Result<()> {
        self.tasks()
            .resume(ResumeTaskRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(Error::at("Tasks.Resume"))?;
        Ok(())
    }

    /// The processes in the task's container.
    pub async fn task_pids(&self, id: &str) -> Result<Vec<ProcessInfo>> {
        Ok(self
            .tasks()
            .list_pids(ListPidsRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(Error::at("Tasks.ListPids"))?
            .into_inner()
            .processes)
    }

    /// cgroup metrics of the tasks matching `filters` (e.g. `id==web`).
    pub async fn task_metrics(&self, filters: Vec<String>) -> Result<Vec<Metric>> {
        Ok(self
            .tasks()
            .metrics(MetricsRequest { filters })
            .await
            .map_err(Error::at("Tasks.Metrics"))?
            .into_inner()
            .metrics)
    }
}

/// An exec's process: the container's process with the caller's args,
/// env (merged), cwd, user and terminal.
pub fn exec_process(
    container_spec: &serde_json::Value,
    args: &[String],
    env: &[String],
    cwd: Option<&str>,
    user: Option<&crate::spec::ResolvedUser>,
    terminal: bool,
) -> serde_json::Value {
    let mut p = container_spec["process"].clone();
    p["args"] = serde_json::json!(args);
    let base: Vec<String> = p["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut extra = env.to_vec();
    if terminal {
        extra.insert(0, "TERM=xterm".to_string());
    }
    p["env"] = serde_json::json!(crate::spec::merge_env(&base, &extra));
    if let Some(cwd) = cwd {
        p["cwd"] = serde_json::json!(cwd);
    }
    if let Some(u) = user {
        p["user"] = serde_json::json!({"uid": u.uid, "gid": u.gid});
        if !u.additional_gids.is_empty() {
            p["user"]["additionalGids"] = serde_json::json!(u.additional_gids);
        }
    }
    p["terminal"] = serde_json::json!(terminal);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exec_process_starts_from_the_container_process() {
        let spec = json!({"process": {"args": ["sh"], "env": ["PATH=/bin", "A=1"], "cwd": "/srv",
                                      "user": {"uid": 5, "gid": 5}, "terminal": false}});
        let root = crate::spec::ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![10],
        };
        let p = exec_process(
            &spec,
            &["ls".into()],
            &["A=2".into()],
            None,
            Some(&root),
            true,
        );
        assert_eq!(p["args"], json!(["ls"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "A=2", "TERM=xterm"]));
        assert_eq!(p["cwd"], "/srv");
        assert_eq!(
            p["user"],
            json!({"uid": 0, "gid": 0, "additionalGids": [10]})
        );
        assert_eq!(p["terminal"], true);
    }

    #[test]
    fn status_names_are_lowercase_enum_names() {
        assert_eq!(status_name(Status::Running as i32), "running");
        assert_eq!(status_name(Status::Stopped as i32), "stopped");
        assert_eq!(status_name(99), "unknown");
    }
}
