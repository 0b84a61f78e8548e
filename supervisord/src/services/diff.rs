//! Diff: not built yet (layer apply is a later issue).

use berth_api::containerd::services::diff::v1 as pb;

use super::unimplemented;

/// Every RPC answers `Unimplemented` until the real service lands.
#[derive(Debug, Clone, Default)]
pub struct DiffPlaceholder;

#[tonic::async_trait]
impl pb::diff_server::Diff for DiffPlaceholder {
    async fn apply(
        &self,
        _request: tonic::Request<pb::ApplyRequest>,
    ) -> std::result::Result<tonic::Response<pb::ApplyResponse>, tonic::Status> {
        Err(unimplemented("Diff", "Apply"))
    }
    async fn diff(
        &self,
        _request: tonic::Request<pb::DiffRequest>,
    ) -> std::result::Result<tonic::Response<pb::DiffResponse>, tonic::Status> {
        Err(unimplemented("Diff", "Diff"))
    }
}
