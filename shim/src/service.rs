//! The gRPC adapter: `berth.shim.v1.Shim` requests converted into task
//! domain calls, errors mapped through [`berth_api::status`]. Checkpoint is
//! Unimplemented.

use std::sync::Arc;

use berth_api::berth::shim::v1 as pb;
use berth_api::berth::shim::v1::shim_server::Shim;
use berth_api::containerd::runc::v1::Options as RuncOptions;
use berth_api::containerd::v1::types::ProcessInfo;
use berth_api::status;
use tokio::sync::watch;
use tonic::{Request, Response, Status as RpcStatus};

use crate::events::timestamp;
use crate::io::StdioPaths;
use crate::runtime::Runtime;
use crate::task::{CreateRequest, Task, TaskError};

/// The Shim service over one task.
pub struct ShimService<R: Runtime> {
    task: Arc<Task<R>>,
    shutdown: watch::Sender<bool>,
    unified: bool,
}

impl<R: Runtime> ShimService<R> {
    /// Serves `task`; Shutdown sets `shutdown` to true. `unified` selects
    /// cgroup v2 metrics.
    pub fn new(task: Arc<Task<R>>, shutdown: watch::Sender<bool>, unified: bool) -> Self {
        ShimService {
            task,
            shutdown,
            unified,
        }
    }

    fn check_id(&self, id: &str) -> Result<(), RpcStatus> {
        if id == self.task.id() {
            Ok(())
        } else {
            Err(status(&TaskError::NotCreated { id: id.to_owned() }))
        }
    }
}

fn rpc<T>(r: Result<T, TaskError>) -> Result<Response<T>, RpcStatus> {
    r.map(Response::new).map_err(|e| {
        tracing::debug!(error = %e, "rpc failed");
        status(&e)
    })
}

#[tonic::async_trait]
impl<R: Runtime> Shim for ShimService<R> {
    #[tracing::instrument(skip_all, fields(id = %req.get_ref().id))]
    async fn create(
        &self,
        req: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, RpcStatus> {
        let r = req.into_inner();
        if r.id != self.task.id() {
            return Err(status(&TaskError::WrongTask {
                serves: self.task.id().to_owned(),
                id: r.id,
            }));
        }
        if !r.checkpoint.is_empty() {
            return Err(RpcStatus::unimplemented(
                "checkpoint restore is not supported",
            ));
        }
        let no_pivot = match &r.options {
            Some(any) if berth_api::any::is::<RuncOptions>(any) => {
                berth_api::any::unpack::<RuncOptions>(any)
                    .map_err(|e| status(&e))?
                    .no_pivot_root
            }
            _ => false,
        };
        let domain = CreateRequest {
            bundle: r.bundle.into(),
            rootfs: r.rootfs,
            stdio: StdioPaths {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                terminal: r.terminal,
            },
            no_pivot,
        };
        let pid = self.task.create(domain).await;
        rpc(pid.map(|pid| pb::CreateResponse { pid }))
    }

    #[tracing::instrument(skip_all, fields(id = %req.get_ref().id, exec_id = %req.get_ref().exec_id))]
    async fn start(
        &self,
        req: Request<pb::StartRequest>,
    ) -> Result<Response<pb::StartResponse>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        rpc(self
            .task
            .start(&r.exec_id)
            .await
            .map(|pid| pb::StartResponse { pid }))
    }

    #[tracing::instrument(skip_all, fields(id = %req.get_ref().id, exec_id = %req.get_ref().exec_id))]
    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        rpc(self
            .task
            .delete(&r.exec_id)
            .await
            .map(|(pid, exit)| pb::DeleteResponse {
                pid,
                exit_status: exit.status,
                exited_at: Some(timestamp(exit.at)),
            }))
    }

    #[tracing::instrument(skip_all, fields(id = %req.get_ref().id, exec_id = %req.get_ref().exec_id))]
    async fn exec(&self, req: Request<pb::ExecRequest>) -> Result<Response<()>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        let spec = r.spec.map(|a| a.value).unwrap_or_default();
        let stdio = StdioPaths {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            terminal: r.terminal,
        };
        rpc(self.task.exec(&r.exec_id, stdio, spec).await)
    }

    async fn state(
        &self,
        req: Request<pb::StateRequest>,
    ) -> Result<Response<pb::StateResponse>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        rpc(self.task.state_answer(&r.exec_id))
    }

    async fn pids(
        &self,
        req: Request<pb::PidsRequest>,
    ) -> Result<Response<pb::PidsResponse>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        rpc(self.task.pids().await.map(|pids| pb::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo { pid, info: None })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(id = %req.get_ref().id, exec_id = %req.get_ref().exec_id, signal = req.get_ref().signal))]
    async fn kill(&self, req: Request<pb::KillRequest>) -> Result<Response<()>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        rpc(self.task.kill(&r.exec_id, r.signal, r.all).await)
    }

    async fn pause(&self, req: Request<pb::PauseRequest>) -> Result<Response<()>, RpcStatus> {
        self.check_id(&req.get_ref().id)?;
        rpc(self.task.pause().await)
    }

    async fn resume(&self, req: Request<pb::ResumeRequest>) -> Result<Response<()>, RpcStatus> {
        self.check_id(&req.get_ref().id)?;
        rpc(self.task.resume().await)
    }

    async fn wait(
        &self,
        req: Request<pb::WaitRequest>,
    ) -> Result<Response<pb::WaitResponse>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        rpc(self.task.wait(&r.exec_id).await.map(|e| pb::WaitResponse {
            exit_status: e.status,
            exited_at: Some(timestamp(e.at)),
        }))
    }

    async fn stats(
        &self,
        req: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsResponse>, RpcStatus> {
        self.check_id(&req.get_ref().id)?;
        let unified = self.unified;
        rpc(self.task.stats().await.map(|s| pb::StatsResponse {
            stats: Some(crate::metrics::pack_for_host(&s, unified)),
        }))
    }

    async fn update(&self, req: Request<pb::UpdateRequest>) -> Result<Response<()>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        let json = r.resources.map(|a| a.value).unwrap_or_default();
        rpc(self.task.update(&json).await)
    }

    async fn resize_pty(
        &self,
        req: Request<pb::ResizePtyRequest>,
    ) -> Result<Response<()>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        rpc(self.task.resize(&r.exec_id, r.width, r.height))
    }

    async fn close_io(&self, req: Request<pb::CloseIoRequest>) -> Result<Response<()>, RpcStatus> {
        let r = req.into_inner();
        self.check_id(&r.id)?;
        if !r.stdin {
            return Ok(Response::new(()));
        }
        rpc(self.task.close_io(&r.exec_id))
    }

    async fn connect(
        &self,
        _req: Request<pb::ConnectRequest>,
    ) -> Result<Response<pb::ConnectResponse>, RpcStatus> {
        Ok(Response::new(pb::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: self.task.task_pid(),
            version: crate::VERSION.to_owned(),
        }))
    }

    #[tracing::instrument(skip_all, fields(now = req.get_ref().now))]
    async fn shutdown(&self, req: Request<pb::ShutdownRequest>) -> Result<Response<()>, RpcStatus> {
        if req.get_ref().now || self.task.can_shutdown() {
            tracing::info!("shutting down");
            self.shutdown.send_replace(true);
        } else {
            tracing::debug!("shutdown ignored: the task still has processes");
        }
        Ok(Response::new(()))
    }
}
