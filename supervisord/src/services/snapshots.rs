//! Snapshots: the gRPC adapter over [`Snapshotters`] (the logic lives in
//! `crate::snapshots`), publishing `/snapshot/prepare|commit|remove`.

use berth_api::any::pack;
use berth_api::containerd::events::{SnapshotCommit, SnapshotPrepare, SnapshotRemove};
use berth_api::containerd::services::snapshots::v1 as pb;
use berth_api::containerd::types::Mount as PbMount;
use berth_snapshotter::{Kind, Mount};
use futures::StreamExt;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::{
    from_timestamp, lease, mask_paths, namespace, parse_filters, record_id, status, to_btree,
    to_hash, to_timestamp,
};
use crate::events::Exchange;
use crate::gc::Gc;
use crate::snapshots::{Info, Snapshotters};

/// Infos per List response message.
pub const LIST_CHUNK: usize = 100;

/// The Snapshots service.
#[derive(Debug, Clone)]
pub struct SnapshotsService {
    snapshots: Snapshotters,
    events: Exchange,
    gc: Gc,
}

impl SnapshotsService {
    pub fn new(snapshots: Snapshotters, events: Exchange, gc: Gc) -> Self {
        Self {
            snapshots,
            events,
            gc,
        }
    }
}

/// A backend mount as containerd's `Mount`.
pub fn mount_to_pb(m: Mount) -> PbMount {
    PbMount {
        r#type: m.fs_type,
        source: m.source,
        target: m.target.unwrap_or_default(),
        options: m.options,
    }
}

/// containerd's `Mount` as a backend mount.
pub fn mount_from_pb(m: PbMount) -> Mount {
    Mount {
        fs_type: m.r#type,
        source: m.source,
        target: (!m.target.is_empty()).then_some(m.target),
        options: m.options,
    }
}

fn kind_to_pb(k: Kind) -> pb::Kind {
    match k {
        Kind::View => pb::Kind::View,
        Kind::Active => pb::Kind::Active,
        Kind::Committed => pb::Kind::Committed,
    }
}

fn info_to_pb(i: Info) -> pb::Info {
    pb::Info {
        name: i.name,
        parent: i.parent,
        kind: kind_to_pb(i.kind).into(),
        created_at: to_timestamp(i.created_at),
        updated_at: to_timestamp(i.updated_at),
        labels: to_hash(i.labels),
    }
}

fn info_from_pb(i: pb::Info) -> Info {
    Info {
        name: i.name,
        parent: i.parent,
        // Update never changes the kind; any value will do.
        kind: Kind::Active,
        created_at: from_timestamp(i.created_at.as_ref()),
        updated_at: from_timestamp(i.updated_at.as_ref()),
        labels: to_btree(i.labels),
    }
}

fn mounts_to_pb(m: Vec<Mount>) -> Vec<PbMount> {
    m.into_iter().map(mount_to_pb).collect()
}

#[tonic::async_trait]
impl pb::snapshots_server::Snapshots for SnapshotsService {
    async fn prepare(
        &self,
        req: Request<pb::PrepareSnapshotRequest>,
    ) -> Result<Response<pb::PrepareSnapshotResponse>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let r = req.into_inner();
        record_id(&r.key);
        let (n, sn, key, parent) = (
            ns.clone(),
            r.snapshotter.clone(),
            r.key.clone(),
            r.parent.clone(),
        );
        let labels = to_btree(r.labels);
        let mounts = self
            .snapshots
            .run(move |s| s.prepare(&n, &sn, &key, &parent, labels, lease.as_deref()))
            .await
            .map_err(status)?;
        self.events.emit(
            &ns,
            "/snapshot/prepare",
            pack(&SnapshotPrepare {
                key: r.key,
                parent: r.parent,
                snapshotter: r.snapshotter,
            }),
        );
        Ok(Response::new(pb::PrepareSnapshotResponse {
            mounts: mounts_to_pb(mounts),
        }))
    }

    async fn view(
        &self,
        req: Request<pb::ViewSnapshotRequest>,
    ) -> Result<Response<pb::ViewSnapshotResponse>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let r = req.into_inner();
        record_id(&r.key);
        let labels = to_btree(r.labels);
        let mounts = self
            .snapshots
            .run(move |s| {
                s.view(
                    &ns,
                    &r.snapshotter,
                    &r.key,
                    &r.parent,
                    labels,
                    lease.as_deref(),
                )
            })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ViewSnapshotResponse {
            mounts: mounts_to_pb(mounts),
        }))
    }

    async fn mounts(
        &self,
        req: Request<pb::MountsRequest>,
    ) -> Result<Response<pb::MountsResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.key);
        let mounts = self
            .snapshots
            .run(move |s| s.mounts(&ns, &r.snapshotter, &r.key))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::MountsResponse {
            mounts: mounts_to_pb(mounts),
        }))
    }

    async fn commit(
        &self,
        req: Request<pb::CommitSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let r = req.into_inner();
        record_id(&r.name);
        let (n, sn, name, key) = (
            ns.clone(),
            r.snapshotter.clone(),
            r.name.clone(),
            r.key.clone(),
        );
        let labels = to_btree(r.labels);
        self.snapshots
            .run(move |s| s.commit(&n, &sn, &name, &key, labels, lease.as_deref()))
            .await
            .map_err(status)?;
        self.events.emit(
            &ns,
            "/snapshot/commit",
            pack(&SnapshotCommit {
                key: r.key,
                name: r.name,
                snapshotter: r.snapshotter,
            }),
        );
        Ok(Response::new(()))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.key);
        self.snapshots
            .remove_answering_early(&ns, &r.snapshotter, &r.key)
            .await
            .map_err(status)?;
        self.events.emit(
            &ns,
            "/snapshot/remove",
            pack(&SnapshotRemove {
                key: r.key,
                snapshotter: r.snapshotter,
            }),
        );
        self.gc.schedule();
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        req: Request<pb::StatSnapshotRequest>,
    ) -> Result<Response<pb::StatSnapshotResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.key);
        let info = self
            .snapshots
            .run(move |s| s.stat(&ns, &r.snapshotter, &r.key))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::StatSnapshotResponse {
            info: Some(info_to_pb(info)),
        }))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateSnapshotRequest>,
    ) -> Result<Response<pb::UpdateSnapshotResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let info = r
            .info
            .ok_or_else(|| Status::invalid_argument("info must be set"))?;
        record_id(&info.name);
        let paths = mask_paths(r.update_mask);
        let info = info_from_pb(info);
        let updated = self
            .snapshots
            .run(move |s| s.update(&ns, &r.snapshotter, info, &paths))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateSnapshotResponse {
            info: Some(info_to_pb(updated)),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<BoxStream<pb::ListSnapshotsResponse>>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let filter = parse_filters(&r.filters)?;
        let infos = self
            .snapshots
            .run(move |s| s.list(&ns, &r.snapshotter, &filter))
            .await
            .map_err(status)?;
        let chunks: Vec<_> = infos
            .chunks(LIST_CHUNK)
            .map(|c| {
                Ok(pb::ListSnapshotsResponse {
                    info: c.iter().cloned().map(info_to_pb).collect(),
                })
            })
            .collect();
        Ok(Response::new(futures::stream::iter(chunks).boxed()))
    }

    async fn usage(
        &self,
        req: Request<pb::UsageRequest>,
    ) -> Result<Response<pb::UsageResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.key);
        let u = self
            .snapshots
            .run(move |s| s.usage(&ns, &r.snapshotter, &r.key))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UsageResponse {
            size: i64::try_from(u.size).unwrap_or(i64::MAX),
            inodes: i64::try_from(u.inodes).unwrap_or(i64::MAX),
        }))
    }

    async fn cleanup(&self, req: Request<pb::CleanupRequest>) -> Result<Response<()>, Status> {
        namespace(&req)?;
        let sn = req.into_inner().snapshotter;
        let removed = self
            .snapshots
            .run(move |s| s.cleanup(&sn))
            .await
            .map_err(status)?;
        tracing::debug!(removed, "snapshot cleanup");
        Ok(Response::new(()))
    }
}
