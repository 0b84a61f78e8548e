//! Unpack: layers applied in order onto snapshots keyed by chain ID, as containerd's
//! unpacker does (`extract-<nanos>-<unique> <chainID>` prepared on the parent chain,
//! committed as `<chainID>` once the diff_id verifies, removed on any failure).
//!
//! While a layer downloads, its bytes come through the tee: the download sends each
//! batch both into the ingest and here, and [`TeeReader`] is the blocking reader the
//! layer apply (`berth_snapshotter::layer::apply` onto the directory Diff's
//! `plan_apply` names) consumes on its own thread. Resumed or stored blobs, and mounts
//! that must be mounted, go through Diff's own apply of the committed blob.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_api::{ErrorKind, HasKind};
use berth_snapshotter::Labels as SnapLabels;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::content::Labels;
use crate::diff::{ApplyPlan, Blob, plan_apply};

use super::Transfer;
use super::error::{Result, TransferError};
use super::fetch::AbortOnDrop;
use super::labels::{self, UNCOMPRESSED};
use super::oci::{Descriptor, ImageConfig, Manifest, chain_ids, parse_json};
use super::progress::{BlobStatus, Progress};
use super::store;

/// What a download hands the unpack through the tee.
#[derive(Debug)]
pub enum TeeMsg {
    /// The next bytes of the blob.
    Data(Bytes),
    /// The download resumed an ingest or found the blob: read the committed blob instead.
    UseBlob,
    /// The download failed; the apply must fail.
    Failed(String),
}

/// A blocking [`Read`] over the tee's messages (from a blocking thread only).
pub struct TeeReader {
    rx: mpsc::Receiver<TeeMsg>,
    chunk: Bytes,
}

impl TeeReader {
    /// `first` is a chunk already taken off `rx`.
    pub fn new(first: Bytes, rx: mpsc::Receiver<TeeMsg>) -> Self {
        Self { rx, chunk: first }
    }
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(TeeMsg::Data(b)) => self.chunk = b,
                Some(TeeMsg::Failed(why)) => return Err(io::Error::other(why)),
                Some(TeeMsg::UseBlob) => {
                    return Err(io::Error::other("download switched to the stored blob"));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// One layer's place in the stack.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) desc: Descriptor,
    pub(crate) diff_id: String,
    pub(crate) chain_id: String,
}

/// The layers of `manifest` with their diff_ids and chain IDs from `config`.
pub(crate) fn stack(manifest: &Manifest, config: &ImageConfig) -> Result<Vec<Layer>> {
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
    /// Applies the layers in order onto `snapshotter`; returns the top chain ID.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn unpack_layers(
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
        // Label updates run beside the next layer's unpack; all are joined at the end.
        let mut labelling = tokio::task::JoinSet::new();
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
            let started = std::time::Instant::now();
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
            let prepared = started.elapsed();
            let outcome = self
                .apply_one(ns, layer, mounts, tees[i].take(), &mut fetches[i])
                .await;
            let applied = started.elapsed();
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
            let (content, ns2, digest) = (self.content.clone(), ns.to_owned(), desc.digest.clone());
            labelling.spawn(async move { store::merge_labels(&content, &ns2, &digest, l).await });
            tracing::debug!(
                layer = %desc.digest,
                prepare_ms = prepared.as_millis() as u64,
                apply_ms = (applied - prepared).as_millis() as u64,
                commit_ms = (started.elapsed() - applied).as_millis() as u64,
                "layer unpacked"
            );
            progress.send(
                &desc.digest,
                &desc.media_type,
                desc.size as u64,
                desc.size as u64,
                BlobStatus::Done,
            );
            parent = chain;
        }
        while let Some(done) = labelling.join_next().await {
            done.map_err(|e| TransferError::Join(e.to_string()))??;
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
        let diff_err = |source| TransferError::Diff(Box::new(source));
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
    fn tee_reader_yields_chunks_then_eof_or_error() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(TeeMsg::Data(Bytes::from_static(b"cd")))
            .expect("room");
        drop(tx);
        let mut r = TeeReader::new(Bytes::from_static(b"ab"), rx);
        let mut out = String::new();
        r.read_to_string(&mut out).expect("reads");
        assert_eq!(out, "abcd");

        let (tx, rx) = mpsc::channel(4);
        tx.try_send(TeeMsg::Failed("boom".into())).expect("room");
        let mut r = TeeReader::new(Bytes::new(), rx);
        let err = r.read(&mut [0u8; 4]).expect_err("fails");
        assert_eq!(err.to_string(), "boom");
    }

    #[test]
    fn unpack_keys_are_unique_and_name_the_chain() {
        let a = unpack_key("sha256:x");
        let b = unpack_key("sha256:x");
        assert_ne!(a, b);
        assert!(a.starts_with("extract-"));
        assert!(a.ends_with(" sha256:x"));
    }
}
