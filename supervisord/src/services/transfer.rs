//! `berth.images.v1.Transfer`: daemon-side pull (progress streamed), push, import and
//! export of OCI archives. An adapter: converts, calls `images::Transfer`, maps errors.

use berth_api::berth::images::v1 as pb;
use berth_api::containerd::types::Descriptor as PbDescriptor;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::{namespace, record_id, status, to_btree, to_hash};
use crate::images::oci::{Descriptor, Platform};
use crate::images::unpack::TeeMsg;
use crate::images::{self, BlobProgress, BlobStatus, Progress, Transfer};

/// Progress messages buffered towards a slow client (older ones are merged, not lost).
const PROGRESS_BATCH: usize = 64;

/// The Transfer service over the image domain.
#[derive(Debug, Clone)]
pub struct TransferService {
    transfer: Transfer,
}

impl TransferService {
    pub fn new(transfer: Transfer) -> Self {
        Self { transfer }
    }
}

fn blob_to_pb(b: BlobProgress) -> pb::BlobProgress {
    let status = match b.status {
        BlobStatus::Waiting => pb::TransferStatus::Waiting,
        BlobStatus::Downloading => pb::TransferStatus::Downloading,
        BlobStatus::Downloaded => pb::TransferStatus::Downloaded,
        BlobStatus::Unpacking => pb::TransferStatus::Unpacking,
        BlobStatus::Done => pb::TransferStatus::Done,
        BlobStatus::Exists => pb::TransferStatus::Exists,
    };
    pb::BlobProgress {
        digest: b.digest,
        media_type: b.media_type,
        offset: i64::try_from(b.offset).unwrap_or(i64::MAX),
        total: i64::try_from(b.total).unwrap_or(i64::MAX),
        status: status as i32,
    }
}

fn desc_to_pb(d: Descriptor) -> PbDescriptor {
    PbDescriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: to_hash(d.annotations),
    }
}

/// Drains `events` into messages (all ready events in one message), then the final one.
fn progress_stream<M: Send + 'static>(
    mut events: mpsc::UnboundedReceiver<BlobProgress>,
    done: tokio::task::JoinHandle<Result<M, images::TransferError>>,
    wrap: fn(Vec<pb::BlobProgress>, Option<M>) -> Option<M>,
) -> BoxStream<M> {
    let (tx, rx) = mpsc::channel::<Result<M, Status>>(PROGRESS_BATCH);
    tokio::spawn(async move {
        while let Some(first) = events.recv().await {
            let mut blobs = vec![blob_to_pb(first)];
            while let Ok(more) = events.try_recv() {
                blobs.push(blob_to_pb(more));
            }
            if let Some(msg) = wrap(blobs, None)
                && tx.send(Ok(msg)).await.is_err()
            {
                // The client went away: the transfer stops with it.
                done.abort();
                return;
            }
        }
        let last = match done.await {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => Err(status(e)),
            Err(e) => Err(Status::internal(format!("transfer task failed: {e}"))),
        };
        let _ = tx.send(last).await;
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl pb::transfer_server::Transfer for TransferService {
    async fn pull(
        &self,
        request: Request<pb::PullRequest>,
    ) -> Result<Response<BoxStream<pb::PullProgress>>, Status> {
        let ns = namespace(&request)?;
        let r = request.into_inner();
        record_id(&r.r#ref);
        let req = images::PullRequest {
            reference: r.r#ref,
            platform: r.platform,
            snapshotter: r.snapshotter,
            plain_http: r.plain_http,
            unpack: r.unpack,
            labels: to_btree(r.labels),
            username: r.username,
            password: r.password,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let transfer = self.transfer.clone();
        let done = tokio::spawn(async move {
            let pulled = transfer.pull(&ns, req, Progress::new(tx)).await?;
            Ok(pb::PullProgress {
                blobs: Vec::new(),
                image: Some(pb::Image {
                    name: pulled.name,
                    target: Some(desc_to_pb(pulled.target)),
                }),
            })
        });
        Ok(Response::new(progress_stream(rx, done, |blobs, _| {
            Some(pb::PullProgress { blobs, image: None })
        })))
    }

    async fn push(
        &self,
        request: Request<pb::PushRequest>,
    ) -> Result<Response<BoxStream<pb::PushProgress>>, Status> {
        let ns = namespace(&request)?;
        let r = request.into_inner();
        record_id(&r.name);
        let req = images::push::PushRequest {
            name: r.name,
            reference: r.r#ref,
            plain_http: r.plain_http,
            username: r.username,
            password: r.password,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let transfer = self.transfer.clone();
        let done = tokio::spawn(async move {
            let pushed = transfer.push(&ns, req, Progress::new(tx)).await?;
            Ok(pb::PushProgress {
                blobs: Vec::new(),
                pushed: Some(desc_to_pb(pushed)),
            })
        });
        Ok(Response::new(progress_stream(rx, done, |blobs, _| {
            Some(pb::PushProgress {
                blobs,
                pushed: None,
            })
        })))
    }

    async fn import(
        &self,
        request: Request<Streaming<pb::ImportChunk>>,
    ) -> Result<Response<pb::ImportResponse>, Status> {
        let ns = namespace(&request)?;
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("import stream is empty"))?;
        let opts = images::layout::ImportOptions {
            base_name: first.base_name,
            snapshotter: first.snapshotter,
            unpack: first.unpack,
        };
        let (tx, rx) = mpsc::channel(16);
        let feeder = tokio::spawn(async move {
            if tx.send(TeeMsg::Data(first.data.into())).await.is_err() {
                return;
            }
            while let Some(msg) = stream.next().await {
                let msg = match msg {
                    Ok(m) => TeeMsg::Data(m.data.into()),
                    Err(e) => TeeMsg::Failed(format!("import stream: {}", e.message())),
                };
                let failed = matches!(msg, TeeMsg::Failed(_));
                if tx.send(msg).await.is_err() || failed {
                    return;
                }
            }
        });
        let result = self.transfer.import(&ns, rx, opts).await;
        feeder.abort();
        let imported = result.map_err(status)?;
        Ok(Response::new(pb::ImportResponse {
            images: imported
                .into_iter()
                .map(|i| pb::Image {
                    name: i.name,
                    target: Some(desc_to_pb(i.target)),
                })
                .collect(),
        }))
    }

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<BoxStream<pb::ExportChunk>>, Status> {
        let ns = namespace(&request)?;
        let r = request.into_inner();
        let platform = if r.platform.is_empty() {
            None
        } else {
            Some(Platform::parse(&r.platform).map_err(status)?)
        };
        let rx = self
            .transfer
            .export(&ns, &r.names, platform)
            .await
            .map_err(status)?;
        let stream = ReceiverStream::new(rx).map(|chunk| match chunk {
            Ok(data) => Ok(pb::ExportChunk {
                data: data.to_vec(),
            }),
            Err(e) => Err(Status::internal(format!(
                "export: {}",
                crate::error::Chain(&e)
            ))),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
