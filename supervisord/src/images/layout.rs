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

use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::oci::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor, Index, sha256_hex};

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

#[cfg(test)]
mod tests {
    use super::super::oci::MEDIA_TYPE_OCI_INDEX;
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
