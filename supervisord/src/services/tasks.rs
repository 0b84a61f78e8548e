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
        let filter = parse_filters(&[&req.get_ref().filter])?;
        let tasks = self.tasks.list(&ns, &filter).await.map_err(status)?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use berth_api::containerd::services::tasks::v1::tasks_server::Tasks;
    use berth_api::containerd::v1::types::Status as PStatus;

    use super::*;
    use crate::events::Exchange;
    use crate::metadata::{AnyValue, Container, Runtime};
    use crate::tasks::fake::FakeLauncher;

    fn req<T>(ns: Option<&str>, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(ns) = ns {
            r.metadata_mut()
                .insert("containerd-namespace", ns.parse().expect("ascii"));
        }
        r
    }

    #[tokio::test]
    async fn adapter_maps_requests_processes_and_codes() {
        let (dir, db) = crate::metadata::testutil::db();
        let mut c = Container::new("c1");
        c.runtime = Runtime {
            name: "io.containerd.runc.v2".into(),
            options: None,
        };
        c.spec = Some(AnyValue {
            type_url: berth_api::any::SPEC_TYPE_URL.into(),
            value: b"{}".to_vec(),
        });
        db.containers("n1").create(&c, None).expect("container");
        let launcher = Arc::new(FakeLauncher::default());
        let mgr = TaskManager::new(
            db,
            Exchange::new(),
            dir.path().join("state"),
            launcher.clone(),
        );
        let svc = TasksService::new(mgr);

        let err = svc
            .get(req(
                None,
                pb::GetRequest {
                    container_id: "c1".into(),
                    exec_id: String::new(),
                },
            ))
            .await
            .expect_err("no namespace");
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        let err = svc
            .get(req(
                Some("n1"),
                pb::GetRequest {
                    container_id: "c1".into(),
                    exec_id: String::new(),
                },
            ))
            .await
            .expect_err("no task yet");
        assert_eq!(err.code(), tonic::Code::NotFound);

        let created = svc
            .create(req(
                Some("n1"),
                pb::CreateTaskRequest {
                    container_id: "c1".into(),
                    stdout: "/fifo/out".into(),
                    terminal: true,
                    ..Default::default()
                },
            ))
            .await
            .expect("create")
            .into_inner();
        assert_eq!(created.container_id, "c1");
        let sent = launcher
            .shim("n1", "c1")
            .st()
            .create
            .clone()
            .expect("shim create");
        assert!(sent.terminal);
        assert_eq!(sent.stdout, "/fifo/out");

        let p = svc
            .get(req(
                Some("n1"),
                pb::GetRequest {
                    container_id: "c1".into(),
                    exec_id: String::new(),
                },
            ))
            .await
            .expect("get")
            .into_inner()
            .process
            .expect("process");
        assert_eq!((p.id.as_str(), p.container_id.as_str()), ("c1", "c1"));
        assert_eq!((p.pid, p.status), (created.pid, PStatus::Created as i32));
        assert_eq!(p.stdout, "/fifo/out");
        assert!(p.terminal);

        let listed = svc
            .list(req(Some("n1"), pb::ListTasksRequest::default()))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(listed.tasks.len(), 1);
        let list = |filter: &str| {
            svc.list(req(
                Some("n1"),
                pb::ListTasksRequest {
                    filter: filter.into(),
                },
            ))
        };
        let created_only = list("status==created,id==c1")
            .await
            .expect("filtered list")
            .into_inner();
        assert_eq!(created_only.tasks.len(), 1);
        let running_only = list("status==running")
            .await
            .expect("filtered list")
            .into_inner();
        assert!(running_only.tasks.is_empty(), "{running_only:?}");
        let err = list("id==\"unterminated").await.expect_err("bad filter");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);

        let err = svc
            .checkpoint(req(
                Some("n1"),
                pb::CheckpointTaskRequest {
                    container_id: "c1".into(),
                    ..Default::default()
                },
            ))
            .await
            .expect_err("checkpoint");
        assert_eq!(err.code(), tonic::Code::Unimplemented);

        let err = svc
            .metrics(req(
                Some("n1"),
                pb::MetricsRequest {
                    filters: vec!["id==".into(), "((".into()],
                },
            ))
            .await
            .expect_err("bad filter");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let m = svc
            .metrics(req(
                Some("n1"),
                pb::MetricsRequest {
                    filters: vec!["id==c1".into()],
                },
            ))
            .await
            .expect("metrics")
            .into_inner();
        assert_eq!(m.metrics.len(), 1);

        launcher.shim("n1", "c1").exit("", 4);
        let w = svc
            .wait(req(
                Some("n1"),
                pb::WaitRequest {
                    container_id: "c1".into(),
                    exec_id: String::new(),
                },
            ))
            .await
            .expect("wait")
            .into_inner();
        assert_eq!(w.exit_status, 4);
        let d = svc
            .delete(req(
                Some("n1"),
                pb::DeleteTaskRequest {
                    container_id: "c1".into(),
                },
            ))
            .await
            .expect("delete")
            .into_inner();
        assert_eq!((d.id.as_str(), d.exit_status), ("c1", 4));
        assert!(d.exited_at.is_some());
    }
}
