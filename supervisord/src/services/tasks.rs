//! Tasks: not built yet (shims and tasks are a later issue).

use berth_api::containerd::services::tasks::v1 as pb;

use super::unimplemented;

/// Every RPC answers `Unimplemented` until the real service lands.
#[derive(Debug, Clone, Default)]
pub struct TasksPlaceholder;

#[tonic::async_trait]
impl pb::tasks_server::Tasks for TasksPlaceholder {
    async fn create(
        &self,
        _request: tonic::Request<pb::CreateTaskRequest>,
    ) -> std::result::Result<tonic::Response<pb::CreateTaskResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "Create"))
    }
    async fn start(
        &self,
        _request: tonic::Request<pb::StartRequest>,
    ) -> std::result::Result<tonic::Response<pb::StartResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "Start"))
    }
    async fn delete(
        &self,
        _request: tonic::Request<pb::DeleteTaskRequest>,
    ) -> std::result::Result<tonic::Response<pb::DeleteResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "Delete"))
    }
    async fn delete_process(
        &self,
        _request: tonic::Request<pb::DeleteProcessRequest>,
    ) -> std::result::Result<tonic::Response<pb::DeleteResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "DeleteProcess"))
    }
    async fn get(
        &self,
        _request: tonic::Request<pb::GetRequest>,
    ) -> std::result::Result<tonic::Response<pb::GetResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "Get"))
    }
    async fn list(
        &self,
        _request: tonic::Request<pb::ListTasksRequest>,
    ) -> std::result::Result<tonic::Response<pb::ListTasksResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "List"))
    }
    async fn kill(
        &self,
        _request: tonic::Request<pb::KillRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Tasks", "Kill"))
    }
    async fn exec(
        &self,
        _request: tonic::Request<pb::ExecProcessRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Tasks", "Exec"))
    }
    async fn resize_pty(
        &self,
        _request: tonic::Request<pb::ResizePtyRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Tasks", "ResizePty"))
    }
    async fn close_io(
        &self,
        _request: tonic::Request<pb::CloseIoRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Tasks", "CloseIo"))
    }
    async fn pause(
        &self,
        _request: tonic::Request<pb::PauseTaskRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Tasks", "Pause"))
    }
    async fn resume(
        &self,
        _request: tonic::Request<pb::ResumeTaskRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Tasks", "Resume"))
    }
    async fn list_pids(
        &self,
        _request: tonic::Request<pb::ListPidsRequest>,
    ) -> std::result::Result<tonic::Response<pb::ListPidsResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "ListPids"))
    }
    async fn checkpoint(
        &self,
        _request: tonic::Request<pb::CheckpointTaskRequest>,
    ) -> std::result::Result<tonic::Response<pb::CheckpointTaskResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "Checkpoint"))
    }
    async fn update(
        &self,
        _request: tonic::Request<pb::UpdateTaskRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Tasks", "Update"))
    }
    async fn metrics(
        &self,
        _request: tonic::Request<pb::MetricsRequest>,
    ) -> std::result::Result<tonic::Response<pb::MetricsResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "Metrics"))
    }
    async fn wait(
        &self,
        _request: tonic::Request<pb::WaitRequest>,
    ) -> std::result::Result<tonic::Response<pb::WaitResponse>, tonic::Status> {
        Err(unimplemented("Tasks", "Wait"))
    }
}
