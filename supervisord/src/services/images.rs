//! Images: adapter over `metadata::Images`, publishing `/images/*` events.

use berth_api::any::pack;
use berth_api::containerd::services::images::v1::{
    CreateImageRequest, CreateImageResponse, DeleteImageRequest, GetImageRequest, GetImageResponse,
    Image as PbImage, ImageCreate, ImageDelete, ImageUpdate, ListImagesRequest, ListImagesResponse,
    UpdateImageRequest, UpdateImageResponse, images_server::Images,
};
use berth_api::containerd::types::Descriptor as PbDescriptor;
use tonic::{Request, Response, Status};

use super::{
    blocking, from_timestamp, lease, mask_paths, namespace, parse_filters, point_read, record_id,
    to_btree, to_hash, to_timestamp,
};
use crate::events::Exchange;
use crate::metadata::{Db, Descriptor, Image};

#[derive(Debug, Clone)]
pub struct ImagesService {
    db: Db,
    events: Exchange,
}

impl ImagesService {
    pub fn new(db: Db, events: Exchange) -> Self {
        Self { db, events }
    }
}

pub(crate) fn descriptor_to_pb(d: Descriptor) -> PbDescriptor {
    PbDescriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: to_hash(d.annotations),
    }
}

pub(crate) fn descriptor_from_pb(d: PbDescriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: to_btree(d.annotations),
    }
}

fn to_pb(i: Image) -> PbImage {
    PbImage {
        name: i.name,
        labels: to_hash(i.labels),
        target: Some(descriptor_to_pb(i.target)),
        created_at: to_timestamp(i.created_at),
        updated_at: to_timestamp(i.updated_at),
    }
}

fn from_pb(i: PbImage) -> Image {
    Image {
        created_at: from_timestamp(i.created_at.as_ref()),
        updated_at: from_timestamp(i.updated_at.as_ref()),
        ..Image::new(
            i.name,
            descriptor_from_pb(i.target.unwrap_or_default()),
            to_btree(i.labels),
        )
    }
}

#[tonic::async_trait]
impl Images for ImagesService {
    async fn get(
        &self,
        req: Request<GetImageRequest>,
    ) -> Result<Response<GetImageResponse>, Status> {
        let ns = namespace(&req)?;
        let name = req.into_inner().name;
        record_id(&name);
        let img = point_read(|| self.db.images(&ns).get(&name))?;
        Ok(Response::new(GetImageResponse {
            image: Some(to_pb(img)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = parse_filters(&req.get_ref().filters)?;
        let db = self.db.clone();
        let images = blocking(move || db.images(&ns).list(&filter)).await?;
        Ok(Response::new(ListImagesResponse {
            images: images.into_iter().map(to_pb).collect(),
        }))
    }

    async fn create(
        &self,
        req: Request<CreateImageRequest>,
    ) -> Result<Response<CreateImageResponse>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let img = req
            .into_inner()
            .image
            .ok_or_else(|| Status::invalid_argument("Image.Name required"))?;
        let img = from_pb(img);
        record_id(&img.name);
        let db = self.db.clone();
        let ns2 = ns.clone();
        let created = blocking(move || db.images(&ns2).create(&img, lease.as_deref())).await?;
        let ev = ImageCreate {
            name: created.name.clone(),
            labels: to_hash(created.labels.clone()),
        };
        self.events.emit(&ns, "/images/create", pack(&ev));
        Ok(Response::new(CreateImageResponse {
            image: Some(to_pb(created)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateImageRequest>,
    ) -> Result<Response<UpdateImageResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let img = r
            .image
            .ok_or_else(|| Status::invalid_argument("Image.Name required"))?;
        let img = from_pb(img);
        let paths = mask_paths(r.update_mask);
        record_id(&img.name);
        let db = self.db.clone();
        let ns2 = ns.clone();
        let updated = blocking(move || db.images(&ns2).update(&img, &paths)).await?;
        let ev = ImageUpdate {
            name: updated.name.clone(),
            labels: to_hash(updated.labels.clone()),
        };
        self.events.emit(&ns, "/images/update", pack(&ev));
        Ok(Response::new(UpdateImageResponse {
            image: Some(to_pb(updated)),
        }))
    }

    async fn delete(&self, req: Request<DeleteImageRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let name = req.into_inner().name;
        record_id(&name);
        let db = self.db.clone();
        let (ns2, n) = (ns.clone(), name.clone());
        blocking(move || db.images(&ns2).delete(&n)).await?;
        self.events
            .emit(&ns, "/images/delete", pack(&ImageDelete { name }));
        Ok(Response::new(()))
    }
}
