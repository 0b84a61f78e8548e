//! Layer downloads: one task per layer, each writing its blob into the ingest
//! `layer-sha256:<hex>` (resumed at the stored offset with a range request) and teeing
//! the same bytes to the unpack; the content store verifies the digest at commit.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::content::{ContentError, ContentStore, ContentWriter, Labels, LocalStore, WriterOpts};

use super::error::{Result, TransferError};
use super::labels;
use super::oci::Descriptor;
use super::progress::{BlobStatus, Progress};
use super::remote::Remote;
use super::store::{self, ingest_ref, open_writer, parse_digest};
use super::unpack::{Layer, TeeMsg};

/// Layers downloading at once (containerd: 3).
pub const MAX_CONCURRENT_LAYERS: usize = 4;
/// Bytes batched per ingest write and tee message.
const BATCH: usize = 256 << 10;
/// Tee messages buffered per layer (16 MiB): a layer waiting for its parent pauses its
/// download beyond this.
const TEE_DEPTH: usize = 64;
/// Progress is reported at least every this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// What the fetch tasks share.
pub(crate) struct FetchCtx {
    pub(crate) content: LocalStore,
    pub(crate) ns: String,
    pub(crate) lease: String,
    pub(crate) remote: Arc<Remote>,
    pub(crate) progress: Progress,
}

/// Aborts the task when dropped (a failed pull stops its other downloads).
pub(crate) struct AbortOnDrop<T>(pub(crate) Option<JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    pub(crate) async fn join(&mut self) -> Result<T> {
        match self.0.take() {
            Some(h) => h.await.map_err(|e| TransferError::Join(e.to_string())),
            None => Err(TransferError::Join("task joined twice".into())),
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

pub(crate) type Fetches = (
    Vec<AbortOnDrop<Result<()>>>,
    Vec<Option<mpsc::Receiver<TeeMsg>>>,
);

/// Spawns one fetch task per layer; permits are handed out in layer order, so the lowest
/// unfinished layer always downloads (a later layer blocked on a full tee cannot starve it).
pub(crate) fn spawn_fetches(ctx: &Arc<FetchCtx>, layers: &[Layer], tee: bool) -> Fetches {
    let semaphore = Arc::new(Semaphore::new(MAX_CONCURRENT_LAYERS));
    let mut permit_txs = Vec::new();
    let mut fetches = Vec::new();
    let mut tees = Vec::new();
    for layer in layers {
        let (permit_tx, permit_rx) = oneshot::channel();
        permit_txs.push(permit_tx);
        let (tx, rx) = if tee {
            let (tx, rx) = mpsc::channel(TEE_DEPTH);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        tees.push(rx);
        let ctx = ctx.clone();
        let desc = layer.desc.clone();
        fetches.push(AbortOnDrop(Some(tokio::spawn(async move {
            let Ok(_permit) = permit_rx.await else {
                return Err(TransferError::Cancelled);
            };
            let result = fetch_layer(&ctx, &desc, tx.as_ref()).await;
            if let (Err(e), Some(tx)) = (&result, &tx) {
                let _ = tx.send(TeeMsg::Failed(crate::error::chain(e))).await;
            }
            result
        }))));
    }
    tokio::spawn(async move {
        for tx in permit_txs {
            let Ok(permit) = semaphore.clone().acquire_owned().await else {
                return;
            };
            // A closed receiver means the pull ended; the permit returns on drop.
            let _ = tx.send(permit);
        }
    });
    (fetches, tees)
}

/// Downloads one layer into its ingest (resuming at the stored offset), teeing the bytes
/// to the unpack, and commits it (digest verified). A blob that fails verification is
/// aborted so the next pull starts it afresh.
async fn fetch_layer(
    ctx: &FetchCtx,
    desc: &Descriptor,
    tee: Option<&mpsc::Sender<TeeMsg>>,
) -> Result<()> {
    let digest = parse_digest(&desc.digest)?;
    let size = u64::try_from(desc.size).map_err(|_| TransferError::Blob {
        digest: desc.digest.clone(),
        what: "negative size".into(),
    })?;
    let registry = ctx.remote.reference().registry();
    let repository = ctx.remote.reference().repository();
    let source_key = labels::distribution_source(registry, repository, None).0;
    let reference = ingest_ref("layer", &desc.digest);
    let opts = WriterOpts {
        reference: reference.clone(),
        total: size,
        expected: Some(digest.clone()),
        lease: Some(ctx.lease.clone()),
    };
    let use_blob = || async {
        if let Some(tee) = tee {
            let _ = tee.send(TeeMsg::UseBlob).await;
        }
    };
    let Some(mut w) = open_writer(&ctx.content, &ctx.ns, opts).await? else {
        let existing = store::label_of(&ctx.content, &ctx.ns, &desc.digest, &source_key).await?;
        let (k, v) = labels::distribution_source(registry, repository, existing.as_deref());
        store::merge_labels(&ctx.content, &ctx.ns, &desc.digest, Labels::from([(k, v)])).await?;
        ctx.progress.send(
            &desc.digest,
            &desc.media_type,
            size,
            size,
            BlobStatus::Exists,
        );
        use_blob().await;
        return Ok(());
    };
    let mut offset = w.status().offset;
    let complete = offset == size && w.digest().as_ref() == Some(&digest);
    if !complete {
        let (mut stream, ranged) = ctx.remote.blob(&desc.digest, offset).await?;
        let mut tee = tee;
        if offset > 0 || !ranged {
            // Resuming: the unpack reads the committed blob instead of the stream.
            use_blob().await;
            tee = None;
            if !ranged {
                offset = 0;
            }
        }
        let mut write_offset = offset;
        let mut buf: Vec<u8> = Vec::with_capacity(BATCH);
        let mut reported = 0u64;
        ctx.progress.send(
            &desc.digest,
            &desc.media_type,
            offset,
            size,
            BlobStatus::Downloading,
        );
        loop {
            let next = stream.next().await;
            let done = match next {
                Some(Ok(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    false
                }
                // oci-client's own digest check fails the stream after the last byte:
                // commit then verifies and drops the corrupt ingest.
                Some(Err(_)) if write_offset + buf.len() as u64 == size => true,
                // oci-client repeats a stream error forever: stop at the first one.
                Some(Err(e)) => {
                    return Err(TransferError::Blob {
                        digest: desc.digest.clone(),
                        what: format!(
                            "download interrupted at {}: {}",
                            write_offset + buf.len() as u64,
                            crate::error::Chain(&e)
                        ),
                    });
                }
                None => true,
            };
            if buf.len() >= BATCH || (done && !buf.is_empty()) {
                let data = std::mem::replace(&mut buf, Vec::with_capacity(BATCH));
                let len = data.len() as u64;
                if let Some(t) = tee
                    && t.send(TeeMsg::Data(Bytes::from(data.clone())))
                        .await
                        .is_err()
                {
                    tee = None; // the unpack no longer wants the bytes
                }
                write_offset = w
                    .write_at(write_offset, data)
                    .await
                    .map_err(TransferError::content(format!("write {reference}")))?;
                debug_assert!(write_offset >= len);
                if write_offset - reported >= PROGRESS_STEP || done {
                    reported = write_offset;
                    ctx.progress.send(
                        &desc.digest,
                        &desc.media_type,
                        write_offset,
                        size,
                        BlobStatus::Downloading,
                    );
                }
            }
            if done {
                break;
            }
        }
    } else {
        use_blob().await;
    }
    let (k, v) = labels::distribution_source(registry, repository, None);
    match w.commit(size, Some(digest), Labels::from([(k, v)])).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e @ (ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. })) => {
            if let Err(error) = ctx.content.abort(&ctx.ns, &reference).await {
                tracing::warn!(%reference, %error, "cannot drop a corrupt ingest");
            }
            return Err(TransferError::Blob {
                digest: desc.digest.clone(),
                what: format!(
                    "content does not match its digest ({})",
                    crate::error::Chain(&e)
                ),
            });
        }
        Err(e) => return Err(TransferError::content(format!("commit {reference}"))(e)),
    }
    ctx.progress.send(
        &desc.digest,
        &desc.media_type,
        size,
        size,
        BlobStatus::Downloaded,
    );
    Ok(())
}
