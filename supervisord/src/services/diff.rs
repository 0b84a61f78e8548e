//! Diff: the gRPC adapter over [`Differ`] (the logic lives in `crate::diff`).

use berth_api::containerd::services::diff::v1 as pb;
use berth_api::containerd::types::Descriptor;
use tonic::{Request, Response, Status};

use super::snapshots::mount_from_pb;
use super::{lease, namespace, record_id, status, to_btree};
use crate::diff::{Blob, DiffRequest, Differ};

/// The Diff service.
#[derive(Debug, Clone)]
pub struct DiffService {
    differ: Differ,
}

impl DiffService {
    pub fn new(differ: Differ) -> Self {
        Self { differ }
    }
}

fn blob_to_pb(b: Blob) -> Descriptor {
    Descriptor {
        media_type: b.media_type,
        digest: b.digest,
        size: i64::try_from(b.size).unwrap_or(i64::MAX),
        annotations: Default::default(),
    }
}

#[tonic::async_trait]
impl pb::diff_server::Diff for DiffService {
    async fn apply(
        &self,
        req: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let desc = r
            .diff
            .ok_or_else(|| Status::invalid_argument("diff descriptor must be set"))?;
        record_id(&desc.digest);
        let blob = Blob {
            media_type: desc.media_type,
            digest: desc.digest,
            size: u64::try_from(desc.size).unwrap_or(0),
        };
        let mounts = r.mounts.into_iter().map(mount_from_pb).collect();
        let applied = self
            .differ
            .apply(&ns, &blob, mounts)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ApplyResponse {
            applied: Some(blob_to_pb(applied)),
        }))
    }

    async fn diff(
        &self,
        req: Request<pb::DiffRequest>,
    ) -> Result<Response<pb::DiffResponse>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let r = req.into_inner();
        record_id(&r.r#ref);
        let request = DiffRequest {
            left: r.left.into_iter().map(mount_from_pb).collect(),
            right: r.right.into_iter().map(mount_from_pb).collect(),
            media_type: r.media_type,
            reference: r.r#ref,
            labels: to_btree(r.labels),
            lease,
        };
        let blob = self.differ.diff(&ns, request).await.map_err(status)?;
        Ok(Response::new(pb::DiffResponse {
            diff: Some(blob_to_pb(blob)),
        }))
    }
}
