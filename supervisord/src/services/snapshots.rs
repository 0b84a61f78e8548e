//! Snapshots: not built yet (snapshotter integration is a later issue).

use tonic::codegen::BoxStream;

use berth_api::containerd::services::snapshots::v1 as pb;

use super::unimplemented;

/// Every RPC answers `Unimplemented` until the real service lands.
#[derive(Debug, Clone, Default)]
pub struct SnapshotsPlaceholder;

#[tonic::async_trait]
impl pb::snapshots_server::Snapshots for SnapshotsPlaceholder {
    async fn prepare(
        &self,
        _request: tonic::Request<pb::PrepareSnapshotRequest>,
    ) -> std::result::Result<tonic::Response<pb::PrepareSnapshotResponse>, tonic::Status> {
        Err(unimplemented("Snapshots", "Prepare"))
    }
    async fn view(
        &self,
        _request: tonic::Request<pb::ViewSnapshotRequest>,
    ) -> std::result::Result<tonic::Response<pb::ViewSnapshotResponse>, tonic::Status> {
        Err(unimplemented("Snapshots", "View"))
    }
    async fn mounts(
        &self,
        _request: tonic::Request<pb::MountsRequest>,
    ) -> std::result::Result<tonic::Response<pb::MountsResponse>, tonic::Status> {
        Err(unimplemented("Snapshots", "Mounts"))
    }
    async fn commit(
        &self,
        _request: tonic::Request<pb::CommitSnapshotRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Snapshots", "Commit"))
    }
    async fn remove(
        &self,
        _request: tonic::Request<pb::RemoveSnapshotRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Snapshots", "Remove"))
    }
    async fn stat(
        &self,
        _request: tonic::Request<pb::StatSnapshotRequest>,
    ) -> std::result::Result<tonic::Response<pb::StatSnapshotResponse>, tonic::Status> {
        Err(unimplemented("Snapshots", "Stat"))
    }
    async fn update(
        &self,
        _request: tonic::Request<pb::UpdateSnapshotRequest>,
    ) -> std::result::Result<tonic::Response<pb::UpdateSnapshotResponse>, tonic::Status> {
        Err(unimplemented("Snapshots", "Update"))
    }
    async fn list(
        &self,
        _request: tonic::Request<pb::ListSnapshotsRequest>,
    ) -> std::result::Result<tonic::Response<BoxStream<pb::ListSnapshotsResponse>>, tonic::Status>
    {
        Err(unimplemented("Snapshots", "List"))
    }
    async fn usage(
        &self,
        _request: tonic::Request<pb::UsageRequest>,
    ) -> std::result::Result<tonic::Response<pb::UsageResponse>, tonic::Status> {
        Err(unimplemented("Snapshots", "Usage"))
    }
    async fn cleanup(
        &self,
        _request: tonic::Request<pb::CleanupRequest>,
    ) -> std::result::Result<tonic::Response<()>, tonic::Status> {
        Err(unimplemented("Snapshots", "Cleanup"))
    }
}
