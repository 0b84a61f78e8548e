//! The root lock: one berthd per root directory.
//!
//! `<root>/berthd.lock` is held with an exclusive `flock` for the daemon's lifetime and
//! holds its pid (for humans). The kernel drops the lock when the process dies, so a
//! stale file after `kill -9` never blocks a restart.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use fs2::FileExt;

/// The lock file's name in the root directory.
pub const LOCK_FILE: &str = "berthd.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another berthd is already running with root {root} (lock {path} is held)")]
    Held { root: PathBuf, path: PathBuf },
    #[error("open lock file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct RootLock {
    file: File,
    path: PathBuf,
}

impl RootLock {
    /// Take the lock of `root` (created if missing); `Held` if another process has it.
    pub fn acquire(root: &Path) -> Result<Self, LockError> {
        let path = root.join(LOCK_FILE);
        let open_err = |source| LockError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(root).map_err(open_err)?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(open_err)?;
        if let Err(e) = file.try_lock_exclusive() {
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.raw_os_error() == Some(libc::EWOULDBLOCK)
            {
                return Err(LockError::Held {
                    root: root.to_owned(),
                    path,
                });
            }
            return Err(open_err(e));
        }
        // Best effort: the pid is informational only.
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Self { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RootLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let first = RootLock::acquire(&root).expect("first");
        match RootLock::acquire(&root) {
            Err(LockError::Held { root: r, .. }) => assert_eq!(r, root),
            other => panic!("expected Held, got {other:?}"),
        }
        let msg = RootLock::acquire(&root).expect_err("held").to_string();
        assert!(msg.contains("another berthd is already running"), "{msg}");
        drop(first);
        let again = RootLock::acquire(&root).expect("free again");
        assert!(again.path().ends_with(LOCK_FILE));
    }
}
