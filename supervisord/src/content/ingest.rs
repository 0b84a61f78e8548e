//! One ingest on disk (`ingest/<hash of backend ref>/…`, drawn in the `content` module
//! doc): created or resumed by [`Ingest::open`], appended to, verified and committed by
//! fsync + rename. Synchronous; async callers go through `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use super::blobs::{
    DATA_FILE, EXPECTED_FILE, Layout, REF_FILE, STARTED_AT_FILE, TOTAL_FILE, UPDATED_AT_FILE,
};
use super::digest::Digest;
use super::error::{ContentError, Result};

const COPY_BUF: usize = 1 << 20;

/// What a commit did: a new blob, or one that another writer had already committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub digest: Digest,
    pub size: u64,
    /// `false` when the blob was already on disk (the ingest was dropped instead).
    pub new: bool,
}

/// Status of an ingest read back from its files (no live writer needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStatus {
    pub backend_ref: String,
    pub offset: u64,
    pub total: u64,
    pub expected: Option<Digest>,
    pub started_at: SystemTime,
    pub updated_at: SystemTime,
}

/// A live, exclusively held ingest. The caller holds the ref lock.
#[derive(Debug)]
pub struct Ingest {
    dir: PathBuf,
    backend_ref: String,
    file: File,
    hasher: Sha256,
    offset: u64,
    total: u64,
    expected: Option<Digest>,
    started_at: SystemTime,
    updated_at: SystemTime,
}

impl Ingest {
    /// Resume the ingest of `backend_ref` if its files are intact (offset = bytes on disk,
    /// digest state rebuilt by re-reading them), or start it fresh. A stored total that
    /// differs from a non-zero `total` restarts the ingest, as containerd does.
    pub fn open(
        layout: &Layout,
        backend_ref: &str,
        total: u64,
        expected: Option<&Digest>,
    ) -> Result<Self> {
        let dir = layout.ingest_dir(backend_ref);
        if dir.exists() {
            match Self::resume(&dir, backend_ref, total, expected) {
                Ok(ingest) => return Ok(ingest),
                Err(error) => {
                    tracing::info!(backend_ref, %error, "ingest not resumable; starting over");
                    fs::remove_dir_all(&dir).map_err(ContentError::io(&dir))?;
                }
            }
        }
        Self::create(dir, backend_ref, total, expected)
    }

    fn create(
        dir: PathBuf,
        backend_ref: &str,
        total: u64,
        expected: Option<&Digest>,
    ) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(ContentError::io(&dir))?;
        let now = SystemTime::now();
        write_file(&dir.join(REF_FILE), backend_ref)?;
        write_time(&dir.join(STARTED_AT_FILE), now)?;
        write_time(&dir.join(UPDATED_AT_FILE), now)?;
        if total > 0 {
            write_file(&dir.join(TOTAL_FILE), &total.to_string())?;
        }
        if let Some(d) = expected {
            write_file(&dir.join(EXPECTED_FILE), d.as_str())?;
        }
        let data = dir.join(DATA_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .read(true)
            .open(&data)
            .map_err(ContentError::io(&data))?;
        Ok(Self {
            dir,
            backend_ref: backend_ref.to_owned(),
            file,
            hasher: Sha256::new(),
            offset: 0,
            total,
            expected: expected.cloned(),
            started_at: now,
            updated_at: now,
        })
    }

    fn resume(
        dir: &Path,
        backend_ref: &str,
        total: u64,
        expected: Option<&Digest>,
    ) -> Result<Self> {
        let status = read_status(dir)?;
        if status.backend_ref != backend_ref {
            return Err(ContentError::RefNotFound {
                reference: backend_ref.to_owned(),
            });
        }
        if total > 0 && status.total > 0 && total != status.total {
            return Err(ContentError::SizeMismatch {
                reference: backend_ref.to_owned(),
                expected: total,
                actual: status.total,
            });
        }
        let data = dir.join(DATA_FILE);
        let mut file = OpenOptions::new()
            .write(true)
            .read(true)
            .open(&data)
            .map_err(ContentError::io(&data))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0; COPY_BUF];
        let mut offset = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(ContentError::io(&data))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        let total = if total > 0 { total } else { status.total };
        if total > 0 && status.total == 0 {
            write_file(&dir.join(TOTAL_FILE), &total.to_string())?;
        }
        let expected = expected.cloned().or(status.expected);
        Ok(Self {
            dir: dir.to_owned(),
            backend_ref: backend_ref.to_owned(),
            file,
            hasher,
            offset,
            total,
            expected,
            started_at: status.started_at,
            updated_at: status.updated_at,
        })
    }

    /// The status of this live ingest.
    pub fn status(&self) -> DiskStatus {
        DiskStatus {
            backend_ref: self.backend_ref.clone(),
            offset: self.offset,
            total: self.total,
            expected: self.expected.clone(),
            started_at: self.started_at,
            updated_at: self.updated_at,
        }
    }

    /// Digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_sha256(self.hasher.clone())
    }

    /// Append `data`; returns the new offset.
    pub fn append(&mut self, data: &[u8]) -> Result<u64> {
        let path = self.dir.join(DATA_FILE);
        self.file.write_all(data).map_err(ContentError::io(&path))?;
        self.hasher.update(data);
        self.offset += data.len() as u64;
        self.updated_at = SystemTime::now();
        Ok(self.offset)
    }

    /// Drop everything written so far (containerd only truncates to zero).
    pub fn truncate(&mut self) -> Result<()> {
        let path = self.dir.join(DATA_FILE);
        self.file.set_len(0).map_err(ContentError::io(&path))?;
        io::Seek::seek(&mut self.file, io::SeekFrom::Start(0)).map_err(ContentError::io(&path))?;
        self.hasher = Sha256::new();
        self.offset = 0;
        self.updated_at = SystemTime::now();
        Ok(())
    }

    /// Verify `size` (0 = any) and `expected`, fsync, rename into `blobs/sha256/<hex>`
    /// (read-only), fsync the directory and remove the ingest. If the blob is already on
    /// disk the ingest is removed and the result says `new: false`. On a mismatch the
    /// ingest stays on disk untouched, so the caller can resume or abort it.
    pub fn commit(
        self,
        layout: &Layout,
        reference: &str,
        size: u64,
        expected: Option<&Digest>,
    ) -> Result<Committed> {
        let data = self.dir.join(DATA_FILE);
        if size > 0 && size != self.offset {
            return Err(ContentError::SizeMismatch {
                reference: reference.to_owned(),
                expected: size,
                actual: self.offset,
            });
        }
        let digest = self.digest();
        if let Some(expected) = expected.filter(|e| **e != digest) {
            return Err(ContentError::DigestMismatch {
                reference: reference.to_owned(),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        self.file.sync_all().map_err(ContentError::io(&data))?;
        let size = self.offset;
        let target = layout.blob_path(&digest);
        let blobs = layout.blobs_dir();
        fs::create_dir_all(&blobs).map_err(ContentError::io(&blobs))?;
        if target.exists() {
            remove_ingest_dir(&self.dir)?;
            return Ok(Committed {
                digest,
                size,
                new: false,
            });
        }
        self.file
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(ContentError::io(&data))?;
        fs::rename(&data, &target).map_err(ContentError::io(&target))?;
        File::open(&blobs)
            .and_then(|d| d.sync_all())
            .map_err(ContentError::io(&blobs))?;
        remove_ingest_dir(&self.dir)?;
        Ok(Committed {
            digest,
            size,
            new: true,
        })
    }
}

/// Read an ingest's status from its files; the data file's mtime counts as an update.
pub fn read_status(dir: &Path) -> Result<DiskStatus> {
    let backend_ref = read_file(&dir.join(REF_FILE))?.ok_or_else(|| ContentError::Io {
        path: dir.join(REF_FILE),
        source: io::ErrorKind::NotFound.into(),
    })?;
    let data = dir.join(DATA_FILE);
    let meta = fs::metadata(&data).map_err(ContentError::io(&data))?;
    let started_at = read_time(&dir.join(STARTED_AT_FILE))?;
    let mut updated_at = read_time(&dir.join(UPDATED_AT_FILE))?;
    if let Ok(m) = meta.modified() {
        updated_at = updated_at.max(m);
    }
    let total = read_file(&dir.join(TOTAL_FILE))?
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let expected = read_file(&dir.join(EXPECTED_FILE))?.and_then(|e| Digest::parse(e.trim()).ok());
    Ok(DiskStatus {
        backend_ref,
        offset: meta.len(),
        total,
        expected,
        started_at,
        updated_at,
    })
}

/// Remove the ingest of `backend_ref`; `false` when there was none.
pub fn remove(layout: &Layout, backend_ref: &str) -> Result<bool> {
    let dir = layout.ingest_dir(backend_ref);
    if !dir.exists() {
        return Ok(false);
    }
    remove_ingest_dir(&dir)?;
    Ok(true)
}

/// Every ingest directory on disk.
pub fn list(layout: &Layout) -> Result<Vec<PathBuf>> {
    let dir = layout.ingests_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).map_err(ContentError::io(&dir))? {
        out.push(entry.map_err(ContentError::io(&dir))?.path());
    }
    Ok(out)
}

/// Remove one ingest directory (used by cleanup of stray ingests too).
pub fn remove_ingest_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ContentError::io(dir)(e)),
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(ContentError::io(path))
}

fn read_file(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ContentError::io(path)(e)),
    }
}

fn write_time(path: &Path, t: SystemTime) -> Result<()> {
    let nanos = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    write_file(path, &nanos.to_string())
}

fn read_time(path: &Path) -> Result<SystemTime> {
    let text = read_file(path)?.unwrap_or_default();
    let nanos: u64 = text.trim().parse().unwrap_or(0);
    Ok(UNIX_EPOCH + Duration::from_nanos(nanos))
}
