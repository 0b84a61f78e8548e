//! Leases: adapter over `metadata::Leases`.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_api::containerd::services::leases::v1::{
    AddResourceRequest, CreateRequest, CreateResponse, DeleteRequest, DeleteResourceRequest,
    Lease as PbLease, ListRequest, ListResourcesRequest, ListResourcesResponse, ListResponse,
    Resource, leases_server::Leases,
};
use tonic::{Request, Response, Status};

use super::{blocking, namespace, parse_filters, record_id, to_btree, to_hash, to_timestamp};
use crate::metadata::{Db, Lease, LeaseResource};

#[derive(Debug, Clone)]
pub struct LeasesService {
    db: Db,
}

impl LeasesService {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// A fresh lease id in containerd's shape: `<nanoseconds>-<random>`.
pub fn generate_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{nanos}-{}", &rand[..6])
}

fn to_pb(l: Lease) -> PbLease {
    PbLease {
        id: l.id,
        created_at: to_timestamp(l.created_at),
        labels: to_hash(l.labels),
    }
}

fn resource(r: Option<Resource>) -> Result<LeaseResource, Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("resource must be set"))?;
    Ok(LeaseResource {
        id: r.id,
        kind: r.r#type,
    })
}

#[tonic::async_trait]
impl Leases for LeasesService {
    async fn create(
        &self,
        req: Request<CreateRequest>,
    ) -> Result<Response<CreateResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let id = if r.id.is_empty() { generate_id() } else { r.id };
        record_id(&id);
        let labels = to_btree(r.labels);
        let db = self.db.clone();
        let lease = blocking(move || db.leases(&ns).create(&id, &labels)).await?;
        Ok(Response::new(CreateResponse {
            lease: Some(to_pb(lease)),
        }))
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        // `sync` asks to wait for garbage collection; berth's GC is not built yet, so
        // there is nothing to wait for.
        let id = req.into_inner().id;
        record_id(&id);
        let db = self.db.clone();
        blocking(move || db.leases(&ns).delete(&id)).await?;
        Ok(Response::new(()))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = parse_filters(&req.get_ref().filters)?;
        let db = self.db.clone();
        let leases = blocking(move || db.leases(&ns).list(&filter)).await?;
        Ok(Response::new(ListResponse {
            leases: leases.into_iter().map(to_pb).collect(),
        }))
    }

    async fn add_resource(&self, req: Request<AddResourceRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.id);
        let res = resource(r.resource)?;
        let db = self.db.clone();
        blocking(move || db.leases(&ns).add_resource(&r.id, &res)).await?;
        Ok(Response::new(()))
    }

    async fn delete_resource(
        &self,
        req: Request<DeleteResourceRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        record_id(&r.id);
        let res = resource(r.resource)?;
        let db = self.db.clone();
        blocking(move || db.leases(&ns).delete_resource(&r.id, &res)).await?;
        Ok(Response::new(()))
    }

    async fn list_resources(
        &self,
        req: Request<ListResourcesRequest>,
    ) -> Result<Response<ListResourcesResponse>, Status> {
        let ns = namespace(&req)?;
        let id = req.into_inner().id;
        record_id(&id);
        let db = self.db.clone();
        let res = blocking(move || db.leases(&ns).list_resources(&id)).await?;
        Ok(Response::new(ListResourcesResponse {
            resources: res
                .into_iter()
                .map(|r| Resource {
                    id: r.id,
                    r#type: r.kind,
                })
                .collect(),
        }))
    }
}
