//! Import and export of OCI image-layout archives (the format is in `layout.rs`):
//! export streams the tar out of a blocking writer; import streams blobs into the
//! content store as the tar arrives (digests verified at commit), under a lease.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::content::{ContentStore, ContentWriter, Labels, WriterOpts};

use super::Transfer;
use super::error::{Result, TransferError};
use super::labels;
use super::layout::{
    CHUNK, ChunkWriter, Entry, ExportBlob, INDEX_FILE, ImportOptions, OCI_LAYOUT_FILE, classify,
    entry_name, tag_of, write_layout,
};
use super::oci::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor, Index, MEDIA_TYPE_OCI_INDEX, Manifest,
    Platform, is_index, is_manifest, parse_json,
};
use super::push::read_blob;
use super::store::{self, TransferLease, open_writer, parse_digest};
use super::unpack::{TeeMsg, TeeReader};

/// An imported image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub name: String,
    pub target: Descriptor,
}

impl Transfer {
    /// Exports images `names` of namespace `ns` as an OCI layout tar, streamed in
    /// chunks through the returned receiver. `platform`: only that platform's manifests
    /// of an index (the index itself is kept as is).
    pub async fn export(
        &self,
        ns: &str,
        names: &[String],
        platform: Option<Platform>,
    ) -> Result<mpsc::Receiver<io::Result<Bytes>>> {
        if names.is_empty() {
            return Err(TransferError::InvalidArgument("no image to export".into()));
        }
        let mut index = Index {
            schema_version: 2,
            media_type: MEDIA_TYPE_OCI_INDEX.into(),
            manifests: Vec::new(),
        };
        let mut digests: BTreeMap<String, u64> = BTreeMap::new();
        for name in names {
            let (db, ns2, n) = (self.db.clone(), ns.to_owned(), name.clone());
            let image = store::blocking(move || db.images(&ns2).get(&n))
                .await
                .map_err(TransferError::metadata(format!("image {name}")))?;
            let mut root = Descriptor {
                media_type: image.target.media_type.clone(),
                digest: image.target.digest.clone(),
                size: image.target.size,
                ..Descriptor::default()
            };
            self.collect(ns, &root, platform.as_ref(), &mut digests)
                .await?;
            root.annotations
                .insert(ANNOTATION_IMAGE_NAME.into(), name.clone());
            if let Some(tag) = tag_of(name) {
                root.annotations
                    .insert(ANNOTATION_REF_NAME.into(), tag.to_owned());
            }
            index.manifests.push(root);
        }
        let mut blobs: Vec<ExportBlob> = Vec::with_capacity(digests.len());
        for (digest, size) in digests {
            let reader = self
                .content
                .reader(ns, &parse_digest(&digest)?)
                .await
                .map_err(TransferError::content(format!("read {digest}")))?;
            let file = reader
                .to_std()
                .map_err(TransferError::content(format!("open {digest}")))?;
            blobs.push((
                digest,
                size,
                Box::new(io::BufReader::with_capacity(CHUNK, file)),
            ));
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let err_tx = tx.clone();
            let result =
                write_layout(ChunkWriter::new(tx), &index, blobs).and_then(|mut w| w.flush());
            if let Err(e) = result
                && e.kind() != io::ErrorKind::BrokenPipe
            {
                let _ = err_tx.blocking_send(Err(e));
            }
        });
        Ok(rx)
    }

    /// Adds `desc` and every blob below it (children of an index that are stored and
    /// match `platform`) to `out`.
    async fn collect(
        &self,
        ns: &str,
        desc: &Descriptor,
        platform: Option<&Platform>,
        out: &mut BTreeMap<String, u64>,
    ) -> Result<()> {
        out.insert(desc.digest.clone(), desc.size as u64);
        let body = read_blob(&self.content, ns, &desc.digest).await?;
        if is_index(&desc.media_type) {
            let index: Index = parse_json("index", &desc.digest, &body)?;
            for child in &index.manifests {
                let wanted = match (platform, &child.platform) {
                    (Some(want), Some(p)) => want.matches(p),
                    _ => true,
                };
                let stored = self
                    .content
                    .info(ns, &parse_digest(&child.digest)?)
                    .await
                    .is_ok();
                if wanted && stored {
                    Box::pin(self.collect(ns, child, platform, out)).await?;
                }
            }
        } else if is_manifest(&desc.media_type) {
            let manifest: Manifest = parse_json("manifest", &desc.digest, &body)?;
            for blob in std::iter::once(&manifest.config).chain(manifest.layers.iter()) {
                out.insert(blob.digest.clone(), blob.size as u64);
            }
        }
        Ok(())
    }

    /// Imports an OCI layout tar read from `chunks` into namespace `ns`: every blob into
    /// the content store (digests verified), one image record per index.json entry with
    /// a name, GC labels as a pull sets them, and an unpack when asked.
    pub async fn import(
        &self,
        ns: &str,
        chunks: mpsc::Receiver<TeeMsg>,
        opts: ImportOptions,
    ) -> Result<Vec<Imported>> {
        let lease = TransferLease::create(&self.db, ns, "import").await?;
        let result = self.import_leased(ns, &lease.id, chunks, &opts).await;
        lease.release().await;
        result
    }

    async fn import_leased(
        &self,
        ns: &str,
        lease: &str,
        chunks: mpsc::Receiver<TeeMsg>,
        opts: &ImportOptions,
    ) -> Result<Vec<Imported>> {
        let content = self.content.clone();
        let (ns2, lease2) = (ns.to_owned(), lease.to_owned());
        let handle = tokio::runtime::Handle::current();
        let index_body = tokio::task::spawn_blocking(move || {
            read_archive(&handle, &content, &ns2, &lease2, chunks)
        })
        .await
        .map_err(|e| TransferError::Join(e.to_string()))??;
        let index: Index = parse_json("index", INDEX_FILE, &index_body)?;
        let snapshotter = if opts.unpack {
            Some(self.snapshotter_for(ns, &opts.snapshotter).await?)
        } else {
            None
        };
        let mut out = Vec::new();
        for entry in &index.manifests {
            let Some(name) = entry_name(entry, &opts.base_name) else {
                tracing::warn!(digest = %entry.digest, "archive entry without a name; skipped");
                continue;
            };
            let mut target = entry.clone();
            target.annotations = BTreeMap::new();
            target.platform = None;
            let manifest = self.label_tree(ns, &target).await?;
            if let (Some(sn), Some((mdesc, manifest))) = (snapshotter.as_deref(), manifest) {
                self.unpack_stored(ns, lease, sn, &manifest)
                    .await
                    .inspect_err(|_| {
                        tracing::warn!(manifest = %mdesc.digest, "unpack of imported image failed");
                    })?;
            }
            store::put_image(&self.db, ns, &name, &target, Labels::new()).await?;
            out.push(Imported { name, target });
        }
        Ok(out)
    }

    /// Sets the GC labels below `root` (as a pull does); returns the manifest for the
    /// host platform (the root itself, or the index's match) when there is one.
    async fn label_tree(
        &self,
        ns: &str,
        root: &Descriptor,
    ) -> Result<Option<(Descriptor, Manifest)>> {
        let body = read_blob(&self.content, ns, &root.digest).await?;
        if is_index(&root.media_type) {
            let index: Index = parse_json("index", &root.digest, &body)?;
            let mut stored = Vec::new();
            for child in &index.manifests {
                if self
                    .content
                    .info(ns, &parse_digest(&child.digest)?)
                    .await
                    .is_ok()
                {
                    stored.push(child);
                }
            }
            store::merge_labels(
                &self.content,
                ns,
                &root.digest,
                labels::index_labels(&stored),
            )
            .await?;
            let host = Platform::host();
            let mut chosen = None;
            for child in stored {
                if !is_manifest(&child.media_type) {
                    continue;
                }
                let found = Box::pin(self.label_tree(ns, child)).await?;
                let matches = child.platform.as_ref().is_none_or(|p| host.matches(p));
                if chosen.is_none() && matches {
                    chosen = found;
                }
            }
            Ok(chosen)
        } else if is_manifest(&root.media_type) {
            let manifest: Manifest = parse_json("manifest", &root.digest, &body)?;
            store::merge_labels(
                &self.content,
                ns,
                &root.digest,
                labels::manifest_labels(&manifest),
            )
            .await?;
            Ok(Some((root.clone(), manifest)))
        } else {
            Err(TransferError::MediaType {
                media_type: root.media_type.clone(),
                digest: root.digest.clone(),
            })
        }
    }
}

/// Reads the archive: blobs into the content store (under `lease`), returns index.json.
/// Runs on a blocking thread; content calls go through `handle`.
fn read_archive(
    handle: &tokio::runtime::Handle,
    content: &crate::content::LocalStore,
    ns: &str,
    lease: &str,
    chunks: mpsc::Receiver<TeeMsg>,
) -> Result<Vec<u8>> {
    let reader = TeeReader::new(Bytes::new(), chunks);
    let mut archive = tar::Archive::new(reader);
    let mut index = None;
    let mut seen = BTreeSet::new();
    for entry in archive.entries().map_err(TransferError::ArchiveIo)? {
        let mut entry = entry.map_err(TransferError::ArchiveIo)?;
        let path = entry
            .path()
            .map_err(TransferError::ArchiveIo)?
            .to_string_lossy()
            .into_owned();
        match classify(&path) {
            Entry::Index => {
                let mut body = Vec::new();
                entry
                    .read_to_end(&mut body)
                    .map_err(TransferError::ArchiveIo)?;
                index = Some(body);
            }
            Entry::Layout => {
                let mut body = Vec::new();
                entry
                    .read_to_end(&mut body)
                    .map_err(TransferError::ArchiveIo)?;
                let v: serde_json::Value = parse_json("oci-layout", OCI_LAYOUT_FILE, &body)?;
                if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
                    return Err(TransferError::Archive(format!(
                        "unsupported oci-layout {v}"
                    )));
                }
            }
            Entry::Blob(digest) => {
                if seen.insert(digest.clone()) {
                    import_blob(
                        handle,
                        content,
                        ns,
                        lease,
                        &digest,
                        entry.size(),
                        &mut entry,
                    )?;
                }
            }
            Entry::Other => {}
        }
    }
    index.ok_or_else(|| TransferError::Archive(format!("no {INDEX_FILE}: not an OCI image layout")))
}

/// Streams one archive blob into the content store; verified at commit.
fn import_blob(
    handle: &tokio::runtime::Handle,
    content: &crate::content::LocalStore,
    ns: &str,
    lease: &str,
    digest: &str,
    size: u64,
    data: &mut impl Read,
) -> Result<()> {
    let opts = WriterOpts {
        reference: store::ingest_ref("import", digest),
        total: size,
        expected: Some(parse_digest(digest)?),
        lease: Some(lease.to_owned()),
    };
    let Some(mut w) = handle.block_on(open_writer(content, ns, opts))? else {
        return Ok(());
    };
    let mut offset = 0;
    if !(w.status().offset == size && w.digest().is_some_and(|d| d.as_str() == digest)) {
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut n = 0;
            while n < CHUNK {
                match data.read(&mut buf[n..]).map_err(TransferError::ArchiveIo)? {
                    0 => break,
                    k => n += k,
                }
            }
            if n == 0 && offset > 0 {
                break;
            }
            buf.truncate(n);
            offset = handle
                .block_on(w.write_at(offset, buf))
                .map_err(TransferError::content(format!("write {digest}")))?;
            if n < CHUNK {
                break;
            }
        }
    }
    match handle.block_on(w.commit(size, Some(parse_digest(digest)?), Labels::new())) {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => Err(TransferError::Blob {
            digest: digest.to_owned(),
            what: format!(
                "archive content does not verify ({})",
                crate::error::Chain(&e)
            ),
        }),
    }
}
