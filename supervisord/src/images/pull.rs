//! Pull: resolve the reference, pick the platform, fetch every layer concurrently into
//! its ingest and — through a tee — into the unpack, which applies each layer as soon as
//! its parent is committed while its bytes still arrive; then record the small blobs
//! and the image.
//!
//! Order of effects (so a failure leaves nothing a client can see as an image):
//! lease → layers (ingest `layer-sha256:<hex>`, committed when the digest verifies;
//! snapshot `<chainID>` committed when the layer's diff_id verifies) → config (with
//! `gc.ref.snapshot.<snapshotter>`) → manifest → index → image record → lease released.
//! A daemon restart mid-pull leaves the ingests: the next pull of the same image resumes
//! each one at its stored offset with a range request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::content::{ContentError, ContentStore, ContentWriter, Labels, LocalStore, WriterOpts};

use super::Transfer;
use super::error::{Result, TransferError};
use super::labels::{self, UNCOMPRESSED};
use super::oci::{
    Descriptor, ImageConfig, Index, Manifest, Platform, chain_ids, choose_platform, is_index,
    is_manifest, parse_json, sniff_media_type,
};
use super::progress::{BlobStatus, Progress};
use super::reference;
use super::remote::Remote;
use super::store::{self, TransferLease, ingest_ref, open_writer, parse_digest};
use super::unpack::{TeeMsg, TeeReader};
use crate::diff::{ApplyPlan, Blob, plan_apply};
use berth_api::{ErrorKind, HasKind};
use berth_snapshotter::Labels as SnapLabels;

/// Layers downloading at once (containerd: 3).
pub const MAX_CONCURRENT_LAYERS: usize = 4;
/// Bytes batched per ingest write and tee message.
const BATCH: usize = 256 << 10;
/// Tee messages buffered per layer (16 MiB): a layer waiting for its parent pauses its
/// download beyond this.
const TEE_DEPTH: usize = 64;
/// Progress is reported at least every this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

/// What to pull.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    pub reference: String,
    /// `os/arch[/variant]`; empty = the host.
    pub platform: String,
    /// Empty = the namespace's default (`containerd.io/defaults/snapshotter`) or overlayfs.
    pub snapshotter: String,
    pub plain_http: bool,
    pub unpack: bool,
    pub labels: Labels,
    pub username: String,
    pub password: String,
}

/// The stored image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub name: String,
    pub target: Descriptor,
}

/// One layer's place in the stack.
#[derive(Debug, Clone)]
struct Layer {
    desc: Descriptor,
    diff_id: String,
    chain_id: String,
}

/// What the fetch tasks share.
struct FetchCtx {
    content: LocalStore,
    ns: String,
    lease: String,
    remote: Arc<Remote>,
    progress: Progress,
}

/// Aborts the task when dropped (a failed pull stops its other downloads).
struct AbortOnDrop<T>(Option<JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    async fn join(&mut self) -> Result<T> {
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

impl Transfer {
    /// Pulls `req.reference` into namespace `ns`, streaming progress.
    pub async fn pull(&self, ns: &str, req: PullRequest, progress: Progress) -> Result<Pulled> {
        let reference = reference::parse(&req.reference)?;
        let platform = Platform::parse(&req.platform)?;
        let snapshotter = if req.unpack {
            Some(self.snapshotter_for(ns, &req.snapshotter).await?)
        } else {
            None
        };
        let remote = Arc::new(Remote::new(
            reference,
            &self.registry,
            req.plain_http,
            &req.username,
            &req.password,
        )?);
        let lease = TransferLease::create(&self.db, ns, "pull").await?;
        let result = self
            .pull_leased(
                ns,
                &lease.id,
                &req,
                &platform,
                snapshotter.as_deref(),
                remote,
                progress,
            )
            .await;
        lease.release().await;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn pull_leased(
        &self,
        ns: &str,
        lease: &str,
        req: &PullRequest,
        platform: &Platform,
        snapshotter: Option<&str>,
        remote: Arc<Remote>,
        progress: Progress,
    ) -> Result<Pulled> {
        let name = reference::image_name(remote.reference());
        let registry = remote.reference().registry().to_owned();
        let repository = remote.reference().repository().to_owned();
        tracing::info!(%name, ns, "pull");

        // Root: an index or a manifest.
        let (root_body, root_digest) = remote.manifest(None).await?;
        let root = Descriptor {
            media_type: sniff_media_type(&root_body, &root_digest)?,
            digest: root_digest.clone(),
            size: root_body.len() as i64,
            ..Descriptor::default()
        };
        let (index, manifest_desc, manifest_body) = if is_index(&root.media_type) {
            let index: Index = parse_json("index", &root.digest, &root_body)?;
            let chosen = choose_platform(&index, platform, &root.digest)?.clone();
            let (body, digest) = remote.manifest(Some(&chosen.digest)).await?;
            let desc = Descriptor {
                media_type: if chosen.media_type.is_empty() {
                    sniff_media_type(&body, &digest)?
                } else {
                    chosen.media_type.clone()
                },
                digest,
                size: body.len() as i64,
                ..Descriptor::default()
            };
            (Some((root.clone(), root_body, chosen)), desc, body)
        } else if is_manifest(&root.media_type) {
            (None, root.clone(), root_body)
        } else {
            return Err(TransferError::MediaType {
                media_type: root.media_type,
                digest: root.digest,
            });
        };
        let manifest: Manifest = parse_json("manifest", &manifest_desc.digest, &manifest_body)?;
        progress.send(
            &manifest_desc.digest,
            &manifest_desc.media_type,
            0,
            manifest_desc.size as u64,
            BlobStatus::Downloaded,
        );

        let config_body = remote.small_blob(&manifest.config.digest).await?;
        let config: ImageConfig = parse_json("config", &manifest.config.digest, &config_body)?;
        let layers = stack(&manifest, &config)?;
        for l in &layers {
            progress.send(
                &l.desc.digest,
                &l.desc.media_type,
                0,
                l.desc.size as u64,
                BlobStatus::Waiting,
            );
        }

        // Layers: fetch all (ordered permits), unpack in order as bytes arrive.
        let ctx = Arc::new(FetchCtx {
            content: self.content.clone(),
            ns: ns.to_owned(),
            lease: lease.to_owned(),
            remote: remote.clone(),
            progress: progress.clone(),
        });
        let (fetches, tees) = spawn_fetches(&ctx, &layers, snapshotter.is_some());
        let top = match snapshotter {
            Some(sn) => Some(
                self.unpack_layers(ns, lease, sn, &layers, fetches, tees, &progress)
                    .await?,
            ),
            None => {
                for mut f in fetches {
                    f.join().await??;
                }
                None
            }
        };

        // Small blobs, children first.
        let source = |existing: Option<String>| {
            labels::distribution_source(&registry, &repository, existing.as_deref())
        };
        let mut cfg_labels = Labels::new();
        let existing =
            store::label_of(&self.content, ns, &manifest.config.digest, &source(None).0).await?;
        let (k, v) = source(existing);
        cfg_labels.insert(k, v);
        if let (Some(sn), Some(top)) = (snapshotter, &top) {
            let (k, v) = labels::snapshot_ref(sn, top);
            cfg_labels.insert(k, v);
        }
        let cfg_desc = manifest.config.clone();
        self.put_verified(
            ns,
            lease,
            "config",
            &cfg_desc,
            config_body,
            cfg_labels,
            &progress,
        )
        .await?;

        let mut m_labels = labels::manifest_labels(&manifest);
        let existing =
            store::label_of(&self.content, ns, &manifest_desc.digest, &source(None).0).await?;
        let (k, v) = source(existing);
        m_labels.insert(k, v);
        self.put_verified(
            ns,
            lease,
            "manifest",
            &manifest_desc,
            manifest_body,
            m_labels,
            &progress,
        )
        .await?;

        if let Some((index_desc, index_body, chosen)) = index {
            let mut i_labels = labels::index_labels(&[&chosen]);
            let existing =
                store::label_of(&self.content, ns, &index_desc.digest, &source(None).0).await?;
            let (k, v) = source(existing);
            i_labels.insert(k, v);
            self.put_verified(
                ns,
                lease,
                "index",
                &index_desc,
                index_body,
                i_labels,
                &progress,
            )
            .await?;
        }

        store::put_image(&self.db, ns, &name, &root, req.labels.clone()).await?;
        tracing::info!(%name, ns, digest = %root.digest, "pulled");
        Ok(Pulled { name, target: root })
    }

    /// Stores an in-memory blob (digest verified at commit) and reports it.
    #[allow(clippy::too_many_arguments)]
    async fn put_verified(
        &self,
        ns: &str,
        lease: &str,
        kind: &str,
        desc: &Descriptor,
        body: Vec<u8>,
        labels: Labels,
        progress: &Progress,
    ) -> Result<()> {
        let size = body.len() as u64;
        let new =
            store::put_small_blob(&self.content, ns, Some(lease), kind, desc, body, labels).await?;
        let status = if new {
            BlobStatus::Done
        } else {
            BlobStatus::Exists
        };
        progress.send(&desc.digest, &desc.media_type, size, size, status);
        Ok(())
    }

    /// Applies the layers in order onto `snapshotter`; returns the top chain ID.
    #[allow(clippy::too_many_arguments)]
    async fn unpack_layers(
        &self,
        ns: &str,
        lease: &str,
        sn: &str,
        layers: &[Layer],
        mut fetches: Vec<AbortOnDrop<Result<()>>>,
        mut tees: Vec<Option<mpsc::Receiver<TeeMsg>>>,
        progress: &Progress,
    ) -> Result<String> {
        let mut parent = String::new();
        for (i, layer) in layers.iter().enumerate() {
            let desc = &layer.desc;
            let chain = layer.chain_id.clone();
            let (ns2, sn2, chain2) = (ns.to_owned(), sn.to_owned(), chain.clone());
            let stat = self
                .snapshots
                .run(move |s| s.stat(&ns2, &sn2, &chain2))
                .await;
            let exists = match stat {
                Ok(_) => true,
                Err(e) if e.kind() == ErrorKind::NotFound => false,
                Err(e) => return Err(TransferError::snapshot(&chain)(e)),
            };
            if exists {
                tees[i] = None;
                fetches[i].join().await??;
                progress.send(
                    &desc.digest,
                    &desc.media_type,
                    desc.size as u64,
                    desc.size as u64,
                    BlobStatus::Exists,
                );
                parent = chain;
                continue;
            }
            let key = unpack_key(&chain);
            let (ns2, sn2, key2, parent2, lease2) = (
                ns.to_owned(),
                sn.to_owned(),
                key.clone(),
                parent.clone(),
                lease.to_owned(),
            );
            let mounts = self
                .snapshots
                .run(move |s| {
                    s.prepare(
                        &ns2,
                        &sn2,
                        &key2,
                        &parent2,
                        SnapLabels::new(),
                        Some(&lease2),
                    )
                })
                .await
                .map_err(TransferError::snapshot(&key))?;
            progress.send(
                &desc.digest,
                &desc.media_type,
                0,
                desc.size as u64,
                BlobStatus::Unpacking,
            );
            let outcome = self
                .apply_one(ns, layer, mounts, tees[i].take(), &mut fetches[i])
                .await;
            let result = match outcome {
                Ok(()) => {
                    let (ns2, sn2, key2, chain2, lease2) = (
                        ns.to_owned(),
                        sn.to_owned(),
                        key.clone(),
                        chain.clone(),
                        lease.to_owned(),
                    );
                    self.snapshots
                        .run(move |s| {
                            s.commit(&ns2, &sn2, &chain2, &key2, SnapLabels::new(), Some(&lease2))
                        })
                        .await
                        .map_err(TransferError::snapshot(&chain))
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                let (ns2, sn2, key2) = (ns.to_owned(), sn.to_owned(), key.clone());
                if let Err(error) = self
                    .snapshots
                    .run(move |s| s.remove(&ns2, &sn2, &key2))
                    .await
                {
                    tracing::warn!(%key, %error, "cannot discard failed unpack snapshot");
                }
                // Another pull committed the same chain meanwhile: use theirs.
                let lost_race = matches!(&e, TransferError::Snapshot { source, .. }
                    if source.kind() == ErrorKind::AlreadyExists);
                if !lost_race {
                    return Err(e);
                }
            }
            let mut l = Labels::new();
            l.insert(UNCOMPRESSED.into(), layer.diff_id.clone());
            store::merge_labels(&self.content, ns, &desc.digest, l).await?;
            progress.send(
                &desc.digest,
                &desc.media_type,
                desc.size as u64,
                desc.size as u64,
                BlobStatus::Done,
            );
            parent = chain;
        }
        Ok(parent)
    }

    /// Applies one layer onto `mounts`: from the tee while it downloads when the mounts
    /// name a directory to write into, else (resumed, already stored, or mounts that
    /// must be mounted) through Diff's apply of the committed blob. Succeeds only when
    /// the blob verified and its diff_id matches.
    async fn apply_one(
        &self,
        ns: &str,
        layer: &Layer,
        mounts: Vec<berth_snapshotter::Mount>,
        tee: Option<mpsc::Receiver<TeeMsg>>,
        fetch: &mut AbortOnDrop<Result<()>>,
    ) -> Result<()> {
        let desc = &layer.desc;
        let diff_err = |source| TransferError::Diff {
            digest: desc.digest.clone(),
            source: Box::new(source),
        };
        let plan = plan_apply(&mounts).map_err(diff_err)?;
        let mut rx = tee;
        let first = match rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => None,
        };
        let applied = match (first, rx, plan) {
            (Some(TeeMsg::Data(first)), Some(rx), ApplyPlan::Direct { dir, mode }) => {
                let reader = TeeReader::new(first, rx);
                let media_type = desc.media_type.clone();
                let apply = tokio::task::spawn_blocking(move || {
                    berth_snapshotter::layer::apply(reader, &media_type, &dir, mode)
                });
                // A failed download explains a failed apply better than the apply's error.
                let fetched = fetch.join().await.and_then(|r| r);
                let applied = apply
                    .await
                    .map_err(|e| TransferError::Join(e.to_string()))?;
                fetched?;
                applied
                    .map_err(|source| TransferError::Apply {
                        digest: desc.digest.clone(),
                        source: Box::new(source),
                    })?
                    .digest
            }
            _ => {
                fetch.join().await??;
                let blob = Blob {
                    media_type: desc.media_type.clone(),
                    digest: desc.digest.clone(),
                    size: desc.size as u64,
                };
                self.differ
                    .apply(ns, &blob, mounts)
                    .await
                    .map_err(diff_err)?
                    .digest
            }
        };
        if applied != layer.diff_id {
            return Err(TransferError::DiffId {
                digest: desc.digest.clone(),
                expected: layer.diff_id.clone(),
                actual: applied,
            });
        }
        Ok(())
    }
}

/// The layers of `manifest` with their diff_ids and chain IDs from `config`.
fn stack(manifest: &Manifest, config: &ImageConfig) -> Result<Vec<Layer>> {
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(TransferError::Blob {
            digest: manifest.config.digest.clone(),
            what: format!(
                "config lists {} diff_ids for {} layers",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            ),
        });
    }
    let chains = chain_ids(&config.rootfs.diff_ids);
    Ok(manifest
        .layers
        .iter()
        .zip(config.rootfs.diff_ids.iter().zip(chains))
        .map(|(desc, (diff_id, chain_id))| Layer {
            desc: desc.clone(),
            diff_id: diff_id.clone(),
            chain_id,
        })
        .collect())
}

impl Transfer {
    /// Unpacks a stored image manifest onto `sn` (import's unpack); labels the config
    /// with its top snapshot. Returns the top chain ID.
    pub(crate) async fn unpack_stored(
        &self,
        ns: &str,
        lease: &str,
        sn: &str,
        manifest: &Manifest,
    ) -> Result<String> {
        let body = super::push::read_blob(&self.content, ns, &manifest.config.digest).await?;
        let config: ImageConfig = parse_json("config", &manifest.config.digest, &body)?;
        let layers = stack(manifest, &config)?;
        let fetches = layers
            .iter()
            .map(|_| AbortOnDrop(Some(tokio::spawn(async { Ok(()) }))))
            .collect();
        let tees = layers.iter().map(|_| None).collect();
        let top = self
            .unpack_layers(ns, lease, sn, &layers, fetches, tees, &Progress::none())
            .await?;
        let (k, v) = labels::snapshot_ref(sn, &top);
        store::merge_labels(
            &self.content,
            ns,
            &manifest.config.digest,
            Labels::from([(k, v)]),
        )
        .await?;
        Ok(top)
    }
}

type Fetches = (
    Vec<AbortOnDrop<Result<()>>>,
    Vec<Option<mpsc::Receiver<TeeMsg>>>,
);

/// Spawns one fetch task per layer; permits are handed out in layer order, so the lowest
/// unfinished layer always downloads (a later layer blocked on a full tee cannot starve it).
fn spawn_fetches(ctx: &Arc<FetchCtx>, layers: &[Layer], tee: bool) -> Fetches {
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
                let _ = tx.send(TeeMsg::Failed(e.to_string())).await;
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
                            "download interrupted at {}: {e}",
                            write_offset + buf.len() as u64
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
                what: format!("content does not match its digest ({e})"),
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

/// containerd's unpack key: `extract-<nanos>-<unique> <chainID>`.
fn unpack_key(chain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("extract-{nanos}-{:x}{n:x} {chain}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_keys_are_unique_and_name_the_chain() {
        let a = unpack_key("sha256:x");
        let b = unpack_key("sha256:x");
        assert_ne!(a, b);
        assert!(a.starts_with("extract-"));
        assert!(a.ends_with(" sha256:x"));
    }
}
