//! Temporary mount points under `<root>/tmpmounts` (containerd's name), removed on drop.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::DiffError;

/// The directory of temporary mount points and files under the daemon root.
pub const TMP_DIR: &str = "tmpmounts";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty, private directory (or file path) under `parent`, removed on drop.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    is_dir: bool,
}

fn unique(parent: &Path, prefix: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    parent.join(format!("{prefix}-{nanos}-{seq}"))
}

impl TempPath {
    /// A new directory `<parent>/<prefix>-<nanos>-<seq>`, mode 0700.
    pub fn dir(parent: &Path, prefix: &str) -> Result<Self, DiffError> {
        let path = unique(parent, prefix);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(DiffError::io("create", &path))?;
        Ok(Self { path, is_dir: true })
    }

    /// A path for a new file (not created).
    pub fn file(parent: &Path, prefix: &str) -> Self {
        Self {
            path: unique(parent, prefix),
            is_dir: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let res = if self.is_dir {
            fs::remove_dir(&self.path)
        } else {
            fs::remove_file(&self.path)
        };
        if let Err(error) = res
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove temp path");
        }
    }
}

/// Create `<root>/tmpmounts` and clear what a crash left there (unmount, remove).
pub fn prepare_tmp_root(root: &Path) -> Result<PathBuf, DiffError> {
    let dir = root.join(TMP_DIR);
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&dir)
        .map_err(DiffError::io("create", &dir))?;
    for entry in fs::read_dir(&dir).map_err(DiffError::io("read", &dir))? {
        let path = entry.map_err(DiffError::io("read", &dir))?.path();
        if path.is_dir() {
            let _ = berth_snapshotter::unmount(&path);
            if let Err(error) = fs::remove_dir(&path) {
                tracing::warn!(path = %path.display(), %error, "stale temp mount kept");
            }
        } else {
            let _ = fs::remove_file(&path);
        }
    }
    Ok(dir)
}
