//! Containers: adapter over `metadata::Containers`, publishing `/containers/*` events.
//! The spec `Any` is stored and returned byte-for-byte.

use berth_api::any::pack;
use berth_api::containerd::events::{
    ContainerCreate, ContainerDelete, ContainerUpdate, container_create,
};
use berth_api::containerd::services::containers::v1::{
    Container as PbContainer, CreateContainerRequest, CreateContainerResponse,
    DeleteContainerRequest, GetContainerRequest, GetContainerResponse, ListContainerMessage,
    ListContainersRequest, ListContainersResponse, UpdateContainerRequest, UpdateContainerResponse,
    container, containers_server::Containers,
};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::{
    blocking, from_any, from_timestamp, lease, mask_paths, namespace, parse_filters, point_read,
    record_id, to_any, to_btree, to_hash, to_timestamp,
};
use crate::events::Exchange;
use crate::metadata::{Container, Db, Runtime};

#[derive(Debug, Clone)]
pub struct ContainersService {
    db: Db,
    events: Exchange,
}

impl ContainersService {
    pub fn new(db: Db, events: Exchange) -> Self {
        Self { db, events }
    }
}

fn to_pb(c: Container) -> PbContainer {
    PbContainer {
        id: c.id,
        labels: to_hash(c.labels),
        image: c.image,
        runtime: Some(container::Runtime {
            name: c.runtime.name,
            options: c.runtime.options.map(to_any),
        }),
        spec: c.spec.map(to_any),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: to_timestamp(c.created_at),
        updated_at: to_timestamp(c.updated_at),
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, to_any(v)))
            .collect(),
        sandbox: c.sandbox,
    }
}

fn from_pb(c: PbContainer) -> Container {
    let runtime = c.runtime.unwrap_or_default();
    Container {
        id: c.id,
        labels: to_btree(c.labels),
        image: c.image,
        runtime: Runtime {
            name: runtime.name,
            options: runtime.options.map(from_any),
        },
        spec: c.spec.map(from_any),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: from_timestamp(c.created_at.as_ref()),
        updated_at: from_timestamp(c.updated_at.as_ref()),
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, from_any(v)))
            .collect(),
        sandbox: c.sandbox,
    }
}

fn required(c: Option<PbContainer>) -> Result<Container, Status> {
    c.map(from_pb)
        .ok_or_else(|| Status::invalid_argument("container must be set"))
}

#[tonic::async_trait]
impl Containers for ContainersService {
    async fn get(
        &self,
        req: Request<GetContainerRequest>,
    ) -> Result<Response<GetContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let id = req.into_inner().id;
        record_id(&id);
        let c = point_read(|| self.db.containers(&ns).get(&id))?;
        Ok(Response::new(GetContainerResponse {
            container: Some(to_pb(c)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = parse_filters(&req.get_ref().filters)?;
        let db = self.db.clone();
        let all = blocking(move || db.containers(&ns).list(&filter)).await?;
        Ok(Response::new(ListContainersResponse {
            containers: all.into_iter().map(to_pb).collect(),
        }))
    }

    async fn list_stream(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<BoxStream<ListContainerMessage>>, Status> {
        let ns = namespace(&req)?;
        let filter = parse_filters(&req.get_ref().filters)?;
        let db = self.db.clone();
        let all = blocking(move || db.containers(&ns).list(&filter)).await?;
        let items = all.into_iter().map(|c| {
            Ok(ListContainerMessage {
                container: Some(to_pb(c)),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn create(
        &self,
        req: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let c = required(req.into_inner().container)?;
        record_id(&c.id);
        let db = self.db.clone();
        let ns2 = ns.clone();
        let created = blocking(move || db.containers(&ns2).create(&c, lease.as_deref())).await?;
        let ev = ContainerCreate {
            id: created.id.clone(),
            image: created.image.clone(),
            runtime: Some(container_create::Runtime {
                name: created.runtime.name.clone(),
                options: created.runtime.options.clone().map(to_any),
            }),
        };
        self.events.emit(&ns, "/containers/create", pack(&ev));
        Ok(Response::new(CreateContainerResponse {
            container: Some(to_pb(created)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateContainerRequest>,
    ) -> Result<Response<UpdateContainerResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let c = required(r.container)?;
        let paths = mask_paths(r.update_mask);
        record_id(&c.id);
        let db = self.db.clone();
        let ns2 = ns.clone();
        let updated = blocking(move || db.containers(&ns2).update(&c, &paths)).await?;
        let ev = ContainerUpdate {
            id: updated.id.clone(),
            image: updated.image.clone(),
            labels: to_hash(updated.labels.clone()),
            snapshot_key: updated.snapshot_key.clone(),
        };
        self.events.emit(&ns, "/containers/update", pack(&ev));
        Ok(Response::new(UpdateContainerResponse {
            container: Some(to_pb(updated)),
        }))
    }

    async fn delete(&self, req: Request<DeleteContainerRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let id = req.into_inner().id;
        record_id(&id);
        let db = self.db.clone();
        let (ns2, i) = (ns.clone(), id.clone());
        blocking(move || db.containers(&ns2).delete(&i)).await?;
        self.events
            .emit(&ns, "/containers/delete", pack(&ContainerDelete { id }));
        Ok(Response::new(()))
    }
}
