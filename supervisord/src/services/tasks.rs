//! Tasks: every RPC of `containerd.services.tasks.v1.Tasks`, converted to and from the
//! task manager (`crate::tasks`). Checkpoint answers `Unimplemented`.

use berth_api::containerd::services::tasks::v1 as pb;
use berth_api::containerd::v1::types::Process;
use tonic::{Request, Response, Status};

use super::{namespace, parse_filters, record_id, status, unimplemented};
use crate::tasks::TaskManager;
use crate::tasks::manager::{CreateTask, ProcessState, Stdio};

#[derive(Debug, Clone)]
pub struct TasksService {
    tasks: TaskManager,
}

impl TasksService {
    pub fn new(tasks: TaskManager) -> Self {
        Self { tasks }
    }
}

fn to_process(s: ProcessState) -> Process {
    Process {
        container_id: s.container_id,
        id: s.id,
        pid: s.pid,
        status: s.status as i32,
        stdin: s.stdio.stdin,
        stdout: s.stdio.stdout,
        stderr: s.stdio.stderr,
        terminal: s.stdio.terminal,
        exit_status: s.exit_status,
        exited_at: s.exited_at,
    }
}

fn to_delete(d: crate::tasks::manager::Deleted) -> pb::DeleteResponse {
    pb::DeleteResponse {
        id: d.id,
        pid: d.pid,
        exit_status: d.exit.status,
        exited_at: d.exit.at,
    }
}

#[tonic::async_trait]
impl pb::tasks_server::Tasks for TasksService {
    async fn create(
        &self,
        req: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::CreateTaskResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        let id = r.container_id.clone();
        let create = CreateTask {
            container_id: r.container_id,
            rootfs: r.rootfs,
            stdio: Stdio {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                terminal: r.terminal,
            },
            options: r.options,
            runtime_path: r.runtime_path,
            checkpoint: r.checkpoint.is_some(),
        };
        let pid = self.tasks.create(&ns, create).await.map_err(status)?;
        Ok(Response::new(pb::CreateTaskResponse {
            container_id: id,
            pid,
        }))
    }

    async fn start(
        &self,
        req: Request<pb::StartRequest>,
    ) -> Result<Response<pb::StartResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        let pid = self
            .tasks
            .start(&ns, &r.container_id, &r.exec_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::StartResponse { pid }))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteTaskRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        let d = self
            .tasks
            .delete(&ns, &r.container_id)
            .await
            .map_err(status)?;
        Ok(Response::new(to_delete(d)))
    }

    async fn delete_process(
        &self,
        req: Request<pb::DeleteProcessRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        let d = self
            .tasks
            .delete_process(&ns, &r.container_id, &r.exec_id)
            .await
            .map_err(status)?;
        Ok(Response::new(to_delete(d)))
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        let s = self
            .tasks
            .get(&ns, &r.container_id, &r.exec_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetResponse {
            process: Some(to_process(s)),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let ns = namespace(&req)?;
        let tasks = self.tasks.list(&ns).await.map_err(status)?;
        Ok(Response::new(pb::ListTasksResponse {
            tasks: tasks.into_iter().map(to_process).collect(),
        }))
    }

    async fn kill(&self, req: Request<pb::KillRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        self.tasks
            .kill(&ns, &r.container_id, &r.exec_id, r.signal, r.all)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn exec(&self, req: Request<pb::ExecProcessRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        let stdio = Stdio {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            terminal: r.terminal,
        };
        self.tasks
            .exec(&ns, &r.container_id, &r.exec_id, stdio, r.spec)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn resize_pty(&self, req: Request<pb::ResizePtyRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        self.tasks
            .resize_pty(&ns, &r.container_id, &r.exec_id, r.width, r.height)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn close_io(&self, req: Request<pb::CloseIoRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        self.tasks
            .close_io(&ns, &r.container_id, &r.exec_id, r.stdin)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn pause(&self, req: Request<pb::PauseTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        self.tasks
            .pause(&ns, &r.container_id)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn resume(&self, req: Request<pb::ResumeTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        self.tasks
            .resume(&ns, &r.container_id)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn list_pids(
        &self,
        req: Request<pb::ListPidsRequest>,
    ) -> Result<Response<pb::ListPidsResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        let processes = self
            .tasks
            .list_pids(&ns, &r.container_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListPidsResponse { processes }))
    }

    async fn checkpoint(
        &self,
        req: Request<pb::CheckpointTaskRequest>,
    ) -> Result<Response<pb::CheckpointTaskResponse>, Status> {
        namespace(&req)?;
        record_id(&req.get_ref().container_id);
        Err(unimplemented("Tasks", "Checkpoint"))
    }

    async fn update(&self, req: Request<pb::UpdateTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        self.tasks
            .update(&ns, &r.container_id, r.resources, r.annotations)
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn metrics(
        &self,
        req: Request<pb::MetricsRequest>,
    ) -> Result<Response<pb::MetricsResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = parse_filters(&req.get_ref().filters)?;
        let metrics = self.tasks.metrics(&ns, &filter).await.map_err(status)?;
        Ok(Response::new(pb::MetricsResponse { metrics }))
    }

    async fn wait(
        &self,
        req: Request<pb::WaitRequest>,
    ) -> Result<Response<pb::WaitResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.container_id);
        let exit = self
            .tasks
            .wait(&ns, &r.container_id, &r.exec_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::WaitResponse {
            exit_status: exit.status,
            exited_at: exit.at,
        }))
    }
}
