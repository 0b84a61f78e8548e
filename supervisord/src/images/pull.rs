//! Pull: resolve the reference, pick the platform, fetch every layer concurrently
//! (`fetch.rs`) into its ingest and — through a tee — into the unpack (`unpack.rs`),
//! which applies each layer as soon as its parent is committed while its bytes still
//! arrive; then record the small blobs and the image.
//!
//! Order of effects (so a failure leaves nothing a client can see as an image):
//! lease → layers (ingest `layer-sha256:<hex>`, committed when the digest verifies;
//! snapshot `<chainID>` committed when the layer's diff_id verifies) → config (with
//! `gc.ref.snapshot.<snapshotter>`) → manifest → index → image record → lease released.
//! A daemon restart mid-pull leaves the ingests (under the expiring lease): the next
//! pull of the same image resumes each one at its stored offset with a range request.

use std::sync::Arc;

use crate::content::Labels;

use super::Transfer;
use super::error::{Result, TransferError};
use super::fetch::{FetchCtx, spawn_fetches};
use super::labels;
use super::oci::{
    Descriptor, ImageConfig, Index, Manifest, Platform, choose_platform, is_index, is_manifest,
    parse_json, sniff_media_type,
};
use super::progress::{BlobStatus, Progress};
use super::reference;
use super::remote::Remote;
use super::store::{self, TransferLease};
use super::unpack::stack;

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
        let started = std::time::Instant::now();
        let phase = |what: &str| {
            tracing::debug!(%name, phase = what, ms = started.elapsed().as_millis() as u64, "pull phase");
        };

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

        phase("manifest");
        let config_body = remote.small_blob(&manifest.config.digest).await?;
        phase("config");
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

        phase("layers");
        // Small blobs: committed together (the lease holds them; the image record,
        // which makes them reachable, comes after all three).
        let source = |existing: Option<String>| {
            labels::distribution_source(&registry, &repository, existing.as_deref())
        };
        let source_key = source(None).0;
        let mut cfg_labels = Labels::new();
        let existing =
            store::label_of(&self.content, ns, &manifest.config.digest, &source_key).await?;
        let (k, v) = source(existing);
        cfg_labels.insert(k, v);
        if let (Some(sn), Some(top)) = (snapshotter, &top) {
            let (k, v) = labels::snapshot_ref(sn, top);
            cfg_labels.insert(k, v);
        }
        let cfg_desc = manifest.config.clone();
        let mut m_labels = labels::manifest_labels(&manifest);
        let existing =
            store::label_of(&self.content, ns, &manifest_desc.digest, &source_key).await?;
        let (k, v) = source(existing);
        m_labels.insert(k, v);
        let index = match index {
            Some((index_desc, index_body, chosen)) => {
                let mut i_labels = labels::index_labels(&[&chosen]);
                let existing =
                    store::label_of(&self.content, ns, &index_desc.digest, &source_key).await?;
                let (k, v) = source(existing);
                i_labels.insert(k, v);
                Some((index_desc, index_body, i_labels))
            }
            None => None,
        };
        let config_put = self.put_verified(
            ns,
            lease,
            "config",
            &cfg_desc,
            config_body,
            cfg_labels,
            &progress,
        );
        let manifest_put = self.put_verified(
            ns,
            lease,
            "manifest",
            &manifest_desc,
            manifest_body,
            m_labels,
            &progress,
        );
        let index_put = async {
            match index {
                Some((desc, body, l)) => {
                    self.put_verified(ns, lease, "index", &desc, body, l, &progress)
                        .await
                }
                None => Ok(()),
            }
        };
        futures::try_join!(config_put, manifest_put, index_put)?;
        phase("blobs");
        store::put_image(&self.db, ns, &name, &root, req.labels.clone()).await?;
        phase("image");
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
}
