//! Disk usage of a directory tree, as containerd measures it.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::snapshotter::Usage;

/// Allocated bytes (blocks × 512) and distinct inodes under `root`, `root` included;
/// hard links count once. Symlinks are not followed.
pub(crate) fn disk_usage(root: &Path) -> Result<Usage> {
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).map_err(Error::io("stat", &path))?;
        if seen.insert((meta.dev(), meta.ino())) {
            usage.inodes += 1;
            usage.size += meta.blocks() * 512;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(&path).map_err(Error::io("read", &path))? {
                stack.push(entry.map_err(Error::io("read", &path))?.path());
            }
        }
    }
    Ok(usage)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // unwrap is fine in tests (house rule)
mod tests {
    use super::*;

    #[test]
    fn counts_inodes_once_and_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let empty = disk_usage(dir.path()).unwrap();
        assert_eq!(empty.inodes, 1);
        fs::write(dir.path().join("a"), vec![7u8; 10_000]).unwrap();
        fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("d/l")).unwrap();
        let u = disk_usage(dir.path()).unwrap();
        assert_eq!(u.inodes, 4, "root, a (= b), d, l");
        assert!(u.size >= empty.size + 10_000, "{u:?}");
    }
}
