//! The on-disk half shared by every namespace: [`Layout`] (paths, see the tree in the
//! module doc of `content`) and the blob operations on it. All functions here are
//! synchronous; async callers run them through `spawn_blocking`.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::digest::{ALGORITHM, Digest};
use super::error::{ContentError, Result};

/// Directory under the daemon root that holds the content store (containerd's plugin id).
pub const CONTENT_DIR: &str = "io.containerd.content.v1.content";
pub const BLOBS_DIR: &str = "blobs";
pub const INGEST_DIR: &str = "ingest";
pub const DATA_FILE: &str = "data";
pub const REF_FILE: &str = "ref";
pub const STARTED_AT_FILE: &str = "startedat";
pub const UPDATED_AT_FILE: &str = "updatedat";
pub const TOTAL_FILE: &str = "total";
pub const EXPECTED_FILE: &str = "expected";

/// Paths of one content store.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The store under `daemon_root/io.containerd.content.v1.content`, created if absent.
    pub fn create(daemon_root: &Path) -> Result<Self> {
        let layout = Self {
            root: daemon_root.join(CONTENT_DIR),
        };
        for dir in [layout.blobs_dir(), layout.root.join(INGEST_DIR)] {
            fs::create_dir_all(&dir).map_err(ContentError::io(&dir))?;
        }
        Ok(layout)
    }

    /// `…/io.containerd.content.v1.content`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `…/blobs/sha256`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join(BLOBS_DIR).join(ALGORITHM)
    }

    /// `…/blobs/sha256/<hex>`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// `…/ingest`.
    pub fn ingests_dir(&self) -> PathBuf {
        self.root.join(INGEST_DIR)
    }

    /// `…/ingest/<sha256 hex of the backend ref>`: fixed length whatever the ref holds.
    pub fn ingest_dir(&self, backend_ref: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(backend_ref.as_bytes());
        self.ingests_dir().join(hex::encode(h.finalize()))
    }

    /// Size of the blob on disk, or `None` when it is not there.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContentError::io(path)(e)),
        }
    }

    /// Open a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound {
                    digest: digest.to_string(),
                }
            } else {
                ContentError::io(path)(e)
            }
        })
    }

    /// Remove a blob file; `false` when it was already gone.
    pub fn remove_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ContentError::io(path)(e)),
        }
    }

    /// Every blob on disk with its size (names that are not digests are skipped).
    pub fn walk_blobs(&self) -> Result<Vec<(Digest, u64)>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(ContentError::io(&dir))? {
            let entry = entry.map_err(ContentError::io(&dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(digest) = Digest::parse(&format!("{ALGORITHM}:{name}")) else {
                continue;
            };
            let meta = entry.metadata().map_err(ContentError::io(entry.path()))?;
            if meta.is_file() {
                out.push((digest, meta.len()));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A committed blob opened for reading: random access, shareable between threads.
#[derive(Debug, Clone)]
pub struct BlobReader {
    digest: Digest,
    path: PathBuf,
    file: std::sync::Arc<File>,
    size: u64,
}

impl BlobReader {
    pub(crate) fn new(digest: Digest, path: PathBuf, file: File, size: u64) -> Self {
        Self {
            digest,
            path,
            file: std::sync::Arc::new(file),
            size,
        }
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Read exactly `min(len, size - offset)` bytes at `offset` (blocking).
    pub fn read_at_blocking(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset > self.size {
            return Err(ContentError::ReadPastEnd {
                digest: self.digest.to_string(),
                offset,
                size: self.size,
            });
        }
        let n = usize::try_from(self.size - offset).map_or(len, |rest| rest.min(len));
        let mut buf = vec![0; n];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| ContentError::io(format!("blob {}@{offset}", self.digest))(e))?;
        Ok(buf)
    }

    /// [`Self::read_at_blocking`] on a blocking thread.
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.read_at_blocking(offset, len))
            .await
            .map_err(ContentError::Join)?
    }

    /// The blob file's path (read-only; never write or rename it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh sequential `std::io::Read` handle with its own position, for synchronous
    /// consumers (decompression, layer apply).
    pub fn to_std(&self) -> Result<File> {
        File::open(&self.path).map_err(ContentError::io(&self.path))
    }
}
