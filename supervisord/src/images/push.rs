//! Push: a stored image to a registry — blobs first (skipping those the repository has),
//! then child manifests by digest, then the root under the tag. The bytes are the stored
//! ones, so the registry's manifest digest equals the local one.

use oci_client::RegistryOperation;

use crate::content::{ContentStore, LocalStore};

use super::Transfer;
use super::error::{Result, TransferError};
use super::oci::{Descriptor, Index, Manifest, is_index, is_manifest, parse_json};
use super::progress::{BlobStatus, Progress};
use super::reference;
use super::remote::Remote;
use super::store::{self, parse_digest};

/// What to push.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// The stored image's name.
    pub name: String,
    /// Destination reference; empty pushes to `name`.
    pub reference: String,
    pub plain_http: bool,
    pub username: String,
    pub password: String,
}

/// Reads a whole stored blob.
pub(crate) async fn read_blob(content: &LocalStore, ns: &str, digest: &str) -> Result<Vec<u8>> {
    let reader = content
        .reader(ns, &parse_digest(digest)?)
        .await
        .map_err(TransferError::content(format!("read {digest}")))?;
    let size = usize::try_from(reader.size())
        .map_err(|_| TransferError::InvalidArgument(format!("blob {digest} too large")))?;
    reader
        .read_at(0, size)
        .await
        .map_err(TransferError::content(format!("read {digest}")))
}

impl Transfer {
    /// Pushes image `req.name` of namespace `ns`; returns the pushed root descriptor.
    pub async fn push(&self, ns: &str, req: PushRequest, progress: Progress) -> Result<Descriptor> {
        let (db, ns2, name) = (self.db.clone(), ns.to_owned(), req.name.clone());
        let image = store::blocking(move || db.images(&ns2).get(&name))
            .await
            .map_err(TransferError::metadata(format!("image {}", req.name)))?;
        let dest = if req.reference.is_empty() {
            &req.name
        } else {
            &req.reference
        };
        let remote = Remote::new(
            reference::parse(dest)?,
            &self.registry,
            req.plain_http,
            &req.username,
            &req.password,
        )?;
        remote.login(RegistryOperation::Push).await?;
        let root = Descriptor {
            media_type: image.target.media_type.clone(),
            digest: image.target.digest.clone(),
            size: image.target.size,
            ..Descriptor::default()
        };
        let root_body = read_blob(&self.content, ns, &root.digest).await?;
        if is_index(&root.media_type) {
            let index: Index = parse_json("index", &root.digest, &root_body)?;
            for child in &index.manifests {
                if !is_manifest(&child.media_type) {
                    continue;
                }
                let body = match read_blob(&self.content, ns, &child.digest).await {
                    Ok(b) => b,
                    Err(TransferError::Content { source, .. }) if source.is_not_found() => {
                        tracing::debug!(digest = %child.digest, "platform not stored; not pushed");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                self.push_manifest_blobs(ns, &remote, child, &body, &progress)
                    .await?;
                remote
                    .push_manifest_by_digest(&child.digest, body, &child.media_type)
                    .await?;
                progress.send(
                    &child.digest,
                    &child.media_type,
                    child.size as u64,
                    child.size as u64,
                    BlobStatus::Done,
                );
            }
        } else if is_manifest(&root.media_type) {
            self.push_manifest_blobs(ns, &remote, &root, &root_body, &progress)
                .await?;
        } else {
            return Err(TransferError::MediaType {
                media_type: root.media_type,
                digest: root.digest,
            });
        }
        remote.push_manifest(root_body, &root.media_type).await?;
        progress.send(
            &root.digest,
            &root.media_type,
            root.size as u64,
            root.size as u64,
            BlobStatus::Done,
        );
        Ok(root)
    }

    async fn push_manifest_blobs(
        &self,
        ns: &str,
        remote: &Remote,
        desc: &Descriptor,
        body: &[u8],
        progress: &Progress,
    ) -> Result<()> {
        let manifest: Manifest = parse_json("manifest", &desc.digest, body)?;
        for blob in std::iter::once(&manifest.config).chain(manifest.layers.iter()) {
            let size = blob.size as u64;
            if remote.has_blob(&blob.digest).await? {
                progress.send(
                    &blob.digest,
                    &blob.media_type,
                    size,
                    size,
                    BlobStatus::Exists,
                );
                continue;
            }
            progress.send(
                &blob.digest,
                &blob.media_type,
                0,
                size,
                BlobStatus::Downloading,
            );
            let data = read_blob(&self.content, ns, &blob.digest).await?;
            remote.push_blob(&blob.digest, data).await?;
            progress.send(&blob.digest, &blob.media_type, size, size, BlobStatus::Done);
        }
        Ok(())
    }
}
