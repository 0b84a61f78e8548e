//! Where deletes trigger a collection, without touching the other services' code:
//! [`WithGc`] wraps the Images and Leases services (their deletes carry `sync`, which
//! waits for the collection), and [`watch_deletes`] schedules one on the events of the
//! other deletes (`/containers/delete`, `/content/delete`, `/snapshot/remove`).

use berth_api::containerd::services::images::v1 as images;
use berth_api::containerd::services::leases::v1 as leases;
use futures::StreamExt;
use tonic::{Request, Response, Status};

use super::Gc;
use crate::events::Exchange;
use crate::filters::Filter;

/// A service whose deletes schedule (or, with `sync`, run) a collection.
#[derive(Debug, Clone)]
pub struct WithGc<S> {
    inner: S,
    gc: Gc,
}

impl<S> WithGc<S> {
    pub fn new(inner: S, gc: Gc) -> Self {
        Self { inner, gc }
    }

    async fn after_delete(&self, sync: bool) -> Result<(), Status> {
        if sync {
            self.gc.collect().await.map_err(crate::services::status)?;
        } else {
            self.gc.schedule();
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl<S: images::images_server::Images> images::images_server::Images for WithGc<S> {
    async fn get(
        &self,
        req: Request<images::GetImageRequest>,
    ) -> Result<Response<images::GetImageResponse>, Status> {
        self.inner.get(req).await
    }
    async fn list(
        &self,
        req: Request<images::ListImagesRequest>,
    ) -> Result<Response<images::ListImagesResponse>, Status> {
        self.inner.list(req).await
    }
    async fn create(
        &self,
        req: Request<images::CreateImageRequest>,
    ) -> Result<Response<images::CreateImageResponse>, Status> {
        self.inner.create(req).await
    }
    async fn update(
        &self,
        req: Request<images::UpdateImageRequest>,
    ) -> Result<Response<images::UpdateImageResponse>, Status> {
        self.inner.update(req).await
    }
    async fn delete(
        &self,
        req: Request<images::DeleteImageRequest>,
    ) -> Result<Response<()>, Status> {
        let sync = req.get_ref().sync;
        let resp = self.inner.delete(req).await?;
        self.after_delete(sync).await?;
        Ok(resp)
    }
}

#[tonic::async_trait]
impl<S: leases::leases_server::Leases> leases::leases_server::Leases for WithGc<S> {
    async fn create(
        &self,
        req: Request<leases::CreateRequest>,
    ) -> Result<Response<leases::CreateResponse>, Status> {
        self.inner.create(req).await
    }
    async fn delete(&self, req: Request<leases::DeleteRequest>) -> Result<Response<()>, Status> {
        let sync = req.get_ref().sync;
        let resp = self.inner.delete(req).await?;
        self.after_delete(sync).await?;
        Ok(resp)
    }
    async fn list(
        &self,
        req: Request<leases::ListRequest>,
    ) -> Result<Response<leases::ListResponse>, Status> {
        self.inner.list(req).await
    }
    async fn add_resource(
        &self,
        req: Request<leases::AddResourceRequest>,
    ) -> Result<Response<()>, Status> {
        self.inner.add_resource(req).await
    }
    async fn delete_resource(
        &self,
        req: Request<leases::DeleteResourceRequest>,
    ) -> Result<Response<()>, Status> {
        let resp = self.inner.delete_resource(req).await?;
        self.gc.schedule();
        Ok(resp)
    }
    async fn list_resources(
        &self,
        req: Request<leases::ListResourcesRequest>,
    ) -> Result<Response<leases::ListResourcesResponse>, Status> {
        self.inner.list_resources(req).await
    }
}

/// Topics whose events schedule a collection.
pub const DELETE_TOPICS: [&str; 3] = ["/containers/delete", "/content/delete", "/snapshot/remove"];

/// The delete events to watch, subscribed now: a daemon subscribes before it serves and
/// hands the stream to [`watch_deletes`] once its collector exists, so a delete in
/// between still schedules a collection.
pub fn delete_events(
    events: &Exchange,
) -> impl futures::Stream<Item = crate::events::Envelope> + Send + 'static {
    events.subscribe(Filter::all())
}

/// Schedule a collection on every delete event of [`DELETE_TOPICS`] in `stream` (a task
/// that ends when the exchange closes).
pub fn watch_deletes(
    stream: impl futures::Stream<Item = crate::events::Envelope> + Send + 'static,
    gc: Gc,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(env) = stream.next().await {
            if DELETE_TOPICS.contains(&env.topic.as_str()) {
                gc.schedule();
            }
        }
    })
}
