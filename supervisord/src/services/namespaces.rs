//! Namespaces: adapter over `metadata::Namespaces`, publishing `/namespaces/*` events.

use std::borrow::Cow;

use berth_api::any::pack;
use berth_api::containerd::events::{NamespaceCreate, NamespaceDelete, NamespaceUpdate};
use berth_api::containerd::services::namespaces::v1::{
    CreateNamespaceRequest, CreateNamespaceResponse, DeleteNamespaceRequest, GetNamespaceRequest,
    GetNamespaceResponse, ListNamespacesRequest, ListNamespacesResponse, Namespace as PbNamespace,
    UpdateNamespaceRequest, UpdateNamespaceResponse, namespaces_server::Namespaces,
};
use tonic::{Request, Response, Status};

use super::{blocking, mask_paths, point_read, record_id, to_btree, to_hash};
use crate::events::Exchange;
use crate::filters::{self, Adaptor};
use crate::metadata::{Db, Namespace};

#[derive(Debug, Clone)]
pub struct NamespacesService {
    db: Db,
    events: Exchange,
}

impl NamespacesService {
    pub fn new(db: Db, events: Exchange) -> Self {
        Self { db, events }
    }

    /// Events about namespace `name` go to the caller's namespace, or to `name` itself.
    fn publish<T>(&self, req_ns: Option<String>, name: &str, topic: &str, ev: &T)
    where
        T: prost::Name,
    {
        let ns = req_ns.as_deref().unwrap_or(name);
        self.events.emit(ns, topic, pack(ev));
    }
}

impl Adaptor for Namespace {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        let (first, rest) = path.split_first()?;
        match (first.as_str(), rest) {
            ("name", []) => Some(Cow::Borrowed(&self.name)),
            ("labels", rest) => filters::label(&self.labels, rest),
            _ => None,
        }
    }
}

fn to_pb(n: Namespace) -> PbNamespace {
    PbNamespace {
        name: n.name,
        labels: to_hash(n.labels),
    }
}

fn from_pb(n: Option<PbNamespace>) -> Namespace {
    let n = n.unwrap_or_default();
    Namespace {
        name: n.name,
        labels: to_btree(n.labels),
    }
}

fn caller_ns<T>(req: &Request<T>) -> Option<String> {
    berth_api::metadata::namespace(req.metadata())
        .filter(|n| crate::identifiers::validate(n).is_ok())
        .map(str::to_owned)
}

#[tonic::async_trait]
impl Namespaces for NamespacesService {
    async fn get(
        &self,
        req: Request<GetNamespaceRequest>,
    ) -> Result<Response<GetNamespaceResponse>, Status> {
        let name = req.into_inner().name;
        record_id(&name);
        let found = point_read(|| self.db.namespaces().get(&name))?;
        // As containerd: an unknown namespace is not an error, its labels are empty.
        let ns = found.unwrap_or(Namespace {
            name,
            labels: Default::default(),
        });
        Ok(Response::new(GetNamespaceResponse {
            namespace: Some(to_pb(ns)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        let filter = super::parse_filters(&[req.into_inner().filter])?;
        let db = self.db.clone();
        let all = blocking(move || db.namespaces().list()).await?;
        let namespaces = all
            .into_iter()
            .filter(|n| filter.matches(n))
            .map(to_pb)
            .collect();
        Ok(Response::new(ListNamespacesResponse { namespaces }))
    }

    async fn create(
        &self,
        req: Request<CreateNamespaceRequest>,
    ) -> Result<Response<CreateNamespaceResponse>, Status> {
        let caller = caller_ns(&req);
        let ns = from_pb(req.into_inner().namespace);
        record_id(&ns.name);
        let db = self.db.clone();
        let created = blocking(move || db.namespaces().create(&ns)).await?;
        let ev = NamespaceCreate {
            name: created.name.clone(),
            labels: to_hash(created.labels.clone()),
        };
        self.publish(caller, &created.name, "/namespaces/create", &ev);
        Ok(Response::new(CreateNamespaceResponse {
            namespace: Some(to_pb(created)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateNamespaceRequest>,
    ) -> Result<Response<UpdateNamespaceResponse>, Status> {
        let caller = caller_ns(&req);
        let r = req.into_inner();
        let ns = from_pb(r.namespace);
        let paths = mask_paths(r.update_mask);
        record_id(&ns.name);
        let db = self.db.clone();
        let updated = blocking(move || db.namespaces().update(&ns, &paths)).await?;
        let ev = NamespaceUpdate {
            name: updated.name.clone(),
            labels: to_hash(updated.labels.clone()),
        };
        self.publish(caller, &updated.name, "/namespaces/update", &ev);
        Ok(Response::new(UpdateNamespaceResponse {
            namespace: Some(to_pb(updated)),
        }))
    }

    async fn delete(&self, req: Request<DeleteNamespaceRequest>) -> Result<Response<()>, Status> {
        let caller = caller_ns(&req);
        let name = req.into_inner().name;
        record_id(&name);
        let db = self.db.clone();
        let n = name.clone();
        blocking(move || db.namespaces().delete(&n)).await?;
        let ev = NamespaceDelete { name: name.clone() };
        // The namespace is gone: publish to the caller's namespace when it has one.
        self.publish(caller, &name, "/namespaces/delete", &ev);
        Ok(Response::new(()))
    }
}
