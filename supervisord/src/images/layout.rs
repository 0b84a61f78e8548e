//! OCI image-layout archives (tar): export stored images, import an archive into the
//! content store and image records.
//!
//! ```text
//! archive.tar
//! ├── oci-layout          {"imageLayoutVersion":"1.0.0"}
//! ├── index.json          one entry per image: its root descriptor, annotated with
//! │                       io.containerd.image.name=<name> and
//! │                       org.opencontainers.image.ref.name=<tag>
//! └── blobs/sha256/<hex>  every blob reachable from the entries (sorted, each once)
//! ```
//!
//! Export is deterministic (entries sorted, mtime 0, mode 0444, owner 0), so exporting
//! the same images twice gives the same bytes; import then export keeps every digest.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::content::{ContentStore, ContentWriter, Labels, WriterOpts};

use super::Transfer;
use super::error::{Result, TransferError};
use super::labels;
use super::oci::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor, Index, MEDIA_TYPE_OCI_INDEX, Manifest,
    Platform, is_index, is_manifest, parse_json, sha256_hex,
};
use super::push::read_blob;
use super::store::{self, TransferLease, open_writer, parse_digest};

pub const OCI_LAYOUT_FILE: &str = "oci-layout";
pub const INDEX_FILE: &str = "index.json";
pub const BLOBS_DIR: &str = "blobs/sha256/";
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Chunk size of export messages.
pub const CHUNK: usize = 1 << 20;

/// Options of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Name prefix for entries that carry only a tag (`<base>:<tag>`) or nothing
    /// (`<base>@<digest>`).
    pub base_name: String,
    pub snapshotter: String,
    pub unpack: bool,
}

/// The name an index.json entry gets: its containerd name, a full reference in
/// `ref.name`, `<base>:<tag>`, or `<base>@<digest>`; `None` without any.
pub fn entry_name(desc: &Descriptor, base: &str) -> Option<String> {
    if let Some(n) = desc.annotations.get(ANNOTATION_IMAGE_NAME) {
        return Some(n.clone());
    }
    match desc.annotations.get(ANNOTATION_REF_NAME) {
        Some(r) if r.contains('/') => Some(r.clone()),
        Some(tag) if !base.is_empty() => Some(format!("{base}:{tag}")),
        None if !base.is_empty() => Some(format!("{base}@{}", desc.digest)),
        _ => None,
    }
}

/// The tag of an image name (`a/b:tag` -> `tag`), for `ref.name` on export.
pub fn tag_of(name: &str) -> Option<&str> {
    let without_digest = name.split('@').next().unwrap_or(name);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, t)| t)
}

/// One blob of an export: digest, size, and its bytes.
pub type ExportBlob = (String, u64, Box<dyn Read + Send>);

/// Writes the tar of an OCI layout with `index` and `blobs` (sorted by digest, each
/// once, by the caller).
pub fn write_layout<W: Write>(out: W, index: &Index, blobs: Vec<ExportBlob>) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(kind);
        h
    }
    let file = |size| header(size, 0o444, tar::EntryType::Regular);
    tar.append_data(
        &mut file(OCI_LAYOUT_CONTENT.len() as u64),
        OCI_LAYOUT_FILE,
        OCI_LAYOUT_CONTENT,
    )?;
    let index_bytes = serde_json::to_vec(index).map_err(io::Error::other)?;
    tar.append_data(
        &mut file(index_bytes.len() as u64),
        INDEX_FILE,
        index_bytes.as_slice(),
    )?;
    for dir in ["blobs/", BLOBS_DIR] {
        tar.append_data(
            &mut header(0, 0o755, tar::EntryType::Directory),
            dir,
            io::empty(),
        )?;
    }
    for (digest, size, reader) in blobs {
        let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
        tar.append_data(
            &mut file(size),
            format!("{BLOBS_DIR}{hex}"),
            reader.take(size),
        )?;
    }
    tar.into_inner()
}

/// A [`Write`] that sends fixed-size chunks over a channel (from a blocking thread).
pub struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(data)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "export receiver went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Index,
    Layout,
    /// `blobs/sha256/<hex>`: the blob `sha256:<hex>`.
    Blob(String),
    /// Anything else (directories, docker's manifest.json, …): skipped.
    Other,
}

/// Classifies an archive path (a leading `./` is ignored).
pub fn classify(path: &str) -> Entry {
    let path = path.trim_start_matches("./");
    match path {
        INDEX_FILE => Entry::Index,
        OCI_LAYOUT_FILE => Entry::Layout,
        _ => match path.strip_prefix(BLOBS_DIR) {
            Some(hex) if sha256_hex(&format!("sha256:{hex}")).is_ok() => {
                Entry::Blob(format!("sha256:{hex}"))
            }
            _ => Entry::Other,
        },
    }
}

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
        chunks: mpsc::Receiver<super::unpack::TeeMsg>,
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
        chunks: mpsc::Receiver<super::unpack::TeeMsg>,
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
    chunks: mpsc::Receiver<super::unpack::TeeMsg>,
) -> Result<Vec<u8>> {
    let reader = super::unpack::TeeReader::new(Bytes::new(), chunks);
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
            what: format!("archive content does not verify ({e})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(digest: &str, ann: &[(&str, &str)]) -> Descriptor {
        Descriptor {
            media_type: super::super::oci::MEDIA_TYPE_OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 3,
            annotations: ann
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            platform: None,
        }
    }

    #[test]
    fn names_of_archive_entries() {
        let d = "sha256:ab";
        assert_eq!(
            entry_name(&desc(d, &[(ANNOTATION_IMAGE_NAME, "r/x:1")]), "b").as_deref(),
            Some("r/x:1")
        );
        assert_eq!(
            entry_name(&desc(d, &[(ANNOTATION_REF_NAME, "reg:5/x:2")]), "").as_deref(),
            Some("reg:5/x:2")
        );
        assert_eq!(
            entry_name(&desc(d, &[(ANNOTATION_REF_NAME, "latest")]), "b/i").as_deref(),
            Some("b/i:latest")
        );
        assert_eq!(
            entry_name(&desc(d, &[]), "b/i").as_deref(),
            Some("b/i@sha256:ab")
        );
        assert_eq!(
            entry_name(&desc(d, &[(ANNOTATION_REF_NAME, "latest")]), ""),
            None
        );
        assert_eq!(tag_of("127.0.0.1:5000/busybox:latest"), Some("latest"));
        assert_eq!(tag_of("127.0.0.1:5000/busybox"), None);
        assert_eq!(tag_of("a/b:t@sha256:x"), Some("t"));
    }

    #[test]
    fn layout_written_reads_back_entry_by_entry() {
        let blob = b"abc".to_vec();
        let digest = super::super::oci::sha256_digest(&blob);
        let index = Index {
            schema_version: 2,
            media_type: MEDIA_TYPE_OCI_INDEX.into(),
            manifests: vec![desc(&digest, &[(ANNOTATION_REF_NAME, "latest")])],
        };
        let blobs: Vec<ExportBlob> =
            vec![(digest.clone(), 3, Box::new(io::Cursor::new(blob.clone())))];
        let tar_bytes = write_layout(Vec::new(), &index, blobs).expect("writes");
        let again = write_layout(
            Vec::new(),
            &index,
            vec![(
                digest.clone(),
                3,
                Box::new(io::Cursor::new(blob.clone())) as Box<dyn Read + Send>,
            )],
        )
        .expect("writes");
        assert_eq!(tar_bytes, again, "export is deterministic");
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = Vec::new();
        for e in archive.entries().expect("entries") {
            let mut e = e.expect("entry");
            let path = e.path().expect("path").to_string_lossy().into_owned();
            let mut body = Vec::new();
            e.read_to_end(&mut body).expect("read");
            match classify(&path) {
                Entry::Index => {
                    let back: Index = serde_json::from_slice(&body).expect("index json");
                    assert_eq!(back.manifests[0].digest, digest);
                }
                Entry::Layout => assert_eq!(body, OCI_LAYOUT_CONTENT),
                Entry::Blob(d) => assert_eq!((d, body.clone()), (digest.clone(), blob.clone())),
                Entry::Other => assert!(path.ends_with('/'), "unexpected {path}"),
            }
            seen.push(classify(&path));
        }
        assert_eq!(seen.iter().filter(|e| **e == Entry::Index).count(), 1);
        assert_eq!(seen.iter().filter(|e| **e == Entry::Layout).count(), 1);
        assert_eq!(
            seen.iter().filter(|e| matches!(e, Entry::Blob(_))).count(),
            1
        );
        assert_eq!(classify("./blobs/sha256/zz"), Entry::Other);
        assert_eq!(classify("./index.json"), Entry::Index);
    }
}
