//! Content: the gRPC adapter over a [`ContentStore`] (containerd's contentserver
//! semantics; the logic lives in `crate::content`).

use berth_api::any::pack;
use berth_api::containerd::events::ContentDelete;
use berth_api::containerd::services::content::v1 as pb;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::{
    lease, mask_paths, namespace, parse_filters, record_id, status, to_btree, to_hash, to_timestamp,
};
use crate::content::{self, ContentStore, ContentWriter, Digest, LocalStore, WriterOpts};
use crate::events::Exchange;

/// Largest data chunk of one Read response (ctr's copy buffer is the same).
pub const READ_CHUNK: usize = 1 << 20;
/// A Read of at most this much (manifests, configs, indexes) is read right away,
/// without a task and the blocking pool: from the page cache that is microseconds,
/// less than the hops it saves.
pub const SMALL_READ: u64 = 64 << 10;
/// Infos per List response message.
pub const LIST_CHUNK: usize = 100;

/// The Content service over store `S`.
#[derive(Debug, Clone)]
pub struct ContentService<S = LocalStore> {
    store: S,
    events: Exchange,
}

impl<S: ContentStore> ContentService<S> {
    pub fn new(store: S, events: Exchange) -> Self {
        Self { store, events }
    }
}

fn digest(d: &str) -> Result<Digest, Status> {
    record_id(d);
    Digest::parse(d).map_err(status)
}

fn optional_digest(d: &str) -> Result<Option<Digest>, Status> {
    if d.is_empty() {
        return Ok(None);
    }
    Digest::parse(d).map(Some).map_err(status)
}

fn non_negative(v: i64, what: &str) -> Result<u64, Status> {
    u64::try_from(v).map_err(|_| Status::invalid_argument(format!("{what} must not be negative")))
}

fn size_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn info_to_pb(i: content::Info) -> pb::Info {
    pb::Info {
        digest: i.digest.to_string(),
        size: size_i64(i.size),
        created_at: to_timestamp(i.created_at),
        updated_at: to_timestamp(i.updated_at),
        labels: to_hash(i.labels),
    }
}

fn status_to_pb(s: content::Status) -> pb::Status {
    pb::Status {
        started_at: to_timestamp(s.started_at),
        updated_at: to_timestamp(s.updated_at),
        r#ref: s.reference,
        offset: size_i64(s.offset),
        total: size_i64(s.total),
        expected: s.expected.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// A blob that is shorter than its record says.
fn shrank(reader: &content::BlobReader, at: u64, want: usize, got: usize) -> Status {
    Status::data_loss(format!(
        "blob {} shrank: read {got} of {want} bytes at {at}",
        reader.digest()
    ))
}

fn stream<T: Send + 'static>(rx: mpsc::Receiver<Result<T, Status>>) -> BoxStream<T> {
    ReceiverStream::new(rx).boxed()
}

#[tonic::async_trait]
impl<S: ContentStore> pb::content_server::Content for ContentService<S> {
    async fn info(
        &self,
        req: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        let ns = namespace(&req)?;
        let d = digest(&req.get_ref().digest)?;
        let info = self.store.info(&ns, &d).await.map_err(status)?;
        Ok(Response::new(pb::InfoResponse {
            info: Some(info_to_pb(info)),
        }))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let info = req
            .info
            .ok_or_else(|| Status::invalid_argument("info must be set"))?;
        let d = digest(&info.digest)?;
        let paths = mask_paths(req.update_mask);
        let updated = self
            .store
            .update(&ns, &d, to_btree(info.labels), paths)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateResponse {
            info: Some(info_to_pb(updated)),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListContentRequest>,
    ) -> Result<Response<BoxStream<pb::ListContentResponse>>, Status> {
        let ns = namespace(&req)?;
        let filter = parse_filters(&req.get_ref().filters)?;
        let infos = self.store.list(&ns, filter).await.map_err(status)?;
        let chunks: Vec<_> = infos
            .chunks(LIST_CHUNK)
            .map(|c| {
                Ok(pb::ListContentResponse {
                    info: c.iter().cloned().map(info_to_pb).collect(),
                })
            })
            .collect();
        Ok(Response::new(futures::stream::iter(chunks).boxed()))
    }

    async fn delete(&self, req: Request<pb::DeleteContentRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let d = digest(&req.get_ref().digest)?;
        self.store.delete(&ns, &d).await.map_err(status)?;
        self.events.emit(
            &ns,
            "/content/delete",
            pack(&ContentDelete {
                digest: d.to_string(),
            }),
        );
        Ok(Response::new(()))
    }

    async fn read(
        &self,
        req: Request<pb::ReadContentRequest>,
    ) -> Result<Response<BoxStream<pb::ReadContentResponse>>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let d = digest(&req.digest)?;
        let reader = self.store.reader(&ns, &d).await.map_err(status)?;
        let blob_size = reader.size();
        let offset = u64::try_from(req.offset).unwrap_or(0);
        if offset > blob_size {
            return Err(status(content::ContentError::ReadPastEnd {
                digest: d.to_string(),
                offset,
                size: blob_size,
            }));
        }
        // size is how much to read, not the blob's size; <= 0 or past the end = to the end.
        let end = match u64::try_from(req.size) {
            Ok(n) if n > 0 => offset.saturating_add(n).min(blob_size),
            _ => blob_size,
        };
        if end - offset <= SMALL_READ {
            let want = (end - offset) as usize; // <= SMALL_READ
            if want == 0 {
                return Ok(Response::new(futures::stream::empty().boxed()));
            }
            let msg = match reader.read_at_blocking(offset, want) {
                Ok(data) if data.len() == want => Ok(pb::ReadContentResponse {
                    offset: size_i64(offset),
                    data,
                }),
                Ok(data) => Err(shrank(&reader, offset, want, data.len())),
                Err(e) => Err(status(e)),
            };
            return Ok(Response::new(futures::stream::iter([msg]).boxed()));
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut at = offset;
            while at < end {
                let want = usize::try_from(end - at).map_or(READ_CHUNK, |n| n.min(READ_CHUNK));
                let msg = match reader.read_at(at, want).await {
                    Ok(data) if data.len() == want => Ok(pb::ReadContentResponse {
                        offset: size_i64(at),
                        data,
                    }),
                    Ok(data) => Err(shrank(&reader, at, want, data.len())),
                    Err(e) => Err(status(e)),
                };
                let failed = msg.is_err();
                if tx.send(msg).await.is_err() || failed {
                    return;
                }
                at += want as u64;
            }
        });
        Ok(Response::new(stream(rx)))
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let ns = namespace(&req)?;
        let reference = &req.get_ref().r#ref;
        record_id(reference);
        let st = self.store.status(&ns, reference).await.map_err(status)?;
        Ok(Response::new(pb::StatusResponse {
            status: Some(status_to_pb(st)),
        }))
    }

    async fn list_statuses(
        &self,
        req: Request<pb::ListStatusesRequest>,
    ) -> Result<Response<pb::ListStatusesResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = parse_filters(&req.get_ref().filters)?;
        let statuses = self
            .store
            .list_statuses(&ns, filter)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListStatusesResponse {
            statuses: statuses.into_iter().map(status_to_pb).collect(),
        }))
    }

    async fn write(
        &self,
        req: Request<Streaming<pb::WriteContentRequest>>,
    ) -> Result<Response<BoxStream<pb::WriteContentResponse>>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let incoming = req.into_inner();
        let (tx, rx) = mpsc::channel(2);
        let store = self.store.clone();
        tokio::spawn(async move {
            let session = WriteSession {
                store,
                ns,
                lease,
                tx: tx.clone(),
            };
            if let Err(e) = session.run(incoming).await {
                if e.code() != tonic::Code::AlreadyExists {
                    tracing::debug!(error = %e, "content write failed");
                }
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(Response::new(stream(rx)))
    }

    async fn abort(&self, req: Request<pb::AbortRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let reference = &req.get_ref().r#ref;
        record_id(reference);
        self.store.abort(&ns, reference).await.map_err(status)?;
        Ok(Response::new(()))
    }
}

/// One Write stream: exactly one response per request, as containerd's server.
struct WriteSession<S> {
    store: S,
    ns: String,
    lease: Option<String>,
    tx: mpsc::Sender<Result<pb::WriteContentResponse, Status>>,
}

impl<S: ContentStore> WriteSession<S> {
    async fn run(self, mut incoming: Streaming<pb::WriteContentRequest>) -> Result<(), Status> {
        let Some(mut req) = incoming.message().await? else {
            return Ok(());
        };
        if req.r#ref.is_empty() {
            return Err(Status::invalid_argument(
                "first message must have a reference",
            ));
        }
        let reference = req.r#ref.clone();
        record_id(&reference);
        let mut total = non_negative(req.total, "total")?;
        let mut expected = optional_digest(&req.expected)?;
        let mut writer = self
            .store
            .writer(
                &self.ns,
                WriterOpts {
                    reference: reference.clone(),
                    total,
                    expected: expected.clone(),
                    lease: self.lease.clone(),
                },
            )
            .await
            .map_err(status)?;
        loop {
            let action = pb::WriteAction::try_from(req.action)
                .map_err(|_| Status::invalid_argument(format!("unknown action {}", req.action)))?;
            let ws = writer.status();
            let mut msg = pb::WriteContentResponse {
                action: req.action,
                offset: size_i64(ws.offset),
                ..Default::default()
            };
            if let Some(e) = optional_digest(&req.expected)? {
                if self.store.info(&self.ns, &e).await.is_ok() {
                    drop(writer);
                    if let Err(error) = self.store.abort(&self.ns, &reference).await {
                        tracing::debug!(%error, "abort after have-it");
                    }
                    return Err(Status::already_exists(format!(
                        "blob with expected digest {e} exists"
                    )));
                }
                expected = Some(e);
            }
            if req.total > 0 {
                total = non_negative(req.total, "total")?;
            }
            match action {
                pb::WriteAction::Stat => {
                    msg.digest = writer.digest().map(|d| d.to_string()).unwrap_or_default();
                    msg.started_at = to_timestamp(ws.started_at);
                    msg.updated_at = to_timestamp(ws.updated_at);
                    msg.total = size_i64(total);
                }
                pb::WriteAction::Write | pb::WriteAction::Commit => {
                    let offset = non_negative(req.offset, "offset")?;
                    let data = std::mem::take(&mut req.data);
                    msg.offset = size_i64(writer.write_at(offset, data).await.map_err(status)?);
                    if action == pb::WriteAction::Commit {
                        let labels = to_btree(std::mem::take(&mut req.labels));
                        let info = writer
                            .commit(total, expected.clone(), labels)
                            .await
                            .map_err(status)?;
                        msg.digest = info.digest.to_string();
                        let _ = self.tx.send(Ok(msg)).await;
                        return Ok(());
                    }
                    msg.digest = writer.digest().map(|d| d.to_string()).unwrap_or_default();
                }
            }
            if self.tx.send(Ok(msg)).await.is_err() {
                return Ok(());
            }
            match incoming.message().await? {
                Some(next) => req = next,
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
