//! Reading files of a prepared rootfs without mounting it.
//!
//! ctr mounts a container's snapshot in a temp dir to read `/etc/passwd`
//! and `/etc/group`. berth's snapshotters return plain host-path mounts
//! (`bind` of a directory, or `overlay` with `upperdir`/`lowerdir`), so the
//! client reads the layer directories directly, top layer first, without
//! needing mount privileges: the first layer that has the file wins, and an
//! overlay whiteout (a 0:0 character device) hides it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_api::containerd::types::Mount;

use crate::spec::UserDb;

/// The host directories of `mounts`, topmost first; `None` when a mount is
/// not one berth's snapshotters produce.
pub fn layer_dirs(mounts: &[Mount]) -> Option<Vec<PathBuf>> {
    let [mount] = mounts else {
        return None;
    };
    match mount.r#type.as_str() {
        "bind" | "rbind" => Some(vec![PathBuf::from(&mount.source)]),
        "overlay" => {
            let mut dirs = Vec::new();
            let mut lower = Vec::new();
            for opt in &mount.options {
                if let Some(upper) = opt.strip_prefix("upperdir=") {
                    dirs.push(PathBuf::from(upper));
                } else if let Some(l) = opt.strip_prefix("lowerdir=") {
                    lower = l.split(':').map(PathBuf::from).collect();
                }
            }
            dirs.extend(lower);
            Some(dirs)
        }
        _ => None,
    }
}

/// Reads `rel` (e.g. `etc/passwd`) through the layers, topmost first.
pub fn read_layered(dirs: &[PathBuf], rel: &str) -> Option<String> {
    for dir in dirs {
        let path = dir.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            return None; // whiteout
        }
        return std::fs::read_to_string(&path).ok();
    }
    None
}

/// The user database of a rootfs given by its mounts; empty (numeric users
/// only) when the mounts cannot be read.
pub fn user_db(mounts: &[Mount]) -> UserDb {
    match layer_dirs(mounts) {
        Some(dirs) => UserDb::parse(
            read_layered(&dirs, "etc/passwd").as_deref(),
            read_layered(&dirs, "etc/group").as_deref(),
        ),
        None => {
            tracing::warn!(
                mounts = mounts.len(),
                "rootfs mounts not readable; numeric users only"
            );
            UserDb::default()
        }
    }
}

/// Whether `p` is inside one of `dirs` (for tests and diagnostics).
pub fn in_layers(dirs: &[PathBuf], p: &Path) -> bool {
    dirs.iter().any(|d| p.starts_with(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(kind: &str, source: &str, options: &[&str]) -> Mount {
        Mount {
            r#type: kind.into(),
            source: source.into(),
            target: String::new(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn overlay_layers_read_top_first() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (upper, l1, l2) = (
            tmp.path().join("u"),
            tmp.path().join("l1"),
            tmp.path().join("l2"),
        );
        for d in [&upper, &l1, &l2] {
            std::fs::create_dir_all(d.join("etc")).expect("mkdir");
        }
        std::fs::write(l2.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").expect("write");
        std::fs::write(l1.join("etc/passwd"), "app:x:5:6::/:/bin/sh\n").expect("write");
        std::fs::write(l2.join("etc/group"), "wheel:x:10:app\n").expect("write");
        let lower = format!("lowerdir={}:{}", l1.display(), l2.display());
        let upperdir = format!("upperdir={}", upper.display());
        let mounts = [mount(
            "overlay",
            "overlay",
            &["workdir=/w", &upperdir, &lower],
        )];
        let dirs = layer_dirs(&mounts).expect("overlay");
        assert_eq!(dirs, [upper.clone(), l1.clone(), l2.clone()]);
        assert!(in_layers(&dirs, &l1.join("etc")));
        let db = user_db(&mounts);
        let app = db.resolve("app").expect("from l1");
        assert_eq!((app.uid, app.gid, app.additional_gids), (5, 6, vec![10]));
        assert!(db.resolve("root").is_err(), "l1's passwd hides l2's");
    }

    #[test]
    fn bind_and_unknown_mounts() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(tmp.path().join("etc")).expect("mkdir");
        std::fs::write(tmp.path().join("etc/passwd"), "u:x:7:8::/:/bin/sh\n").expect("write");
        let src = tmp.path().to_str().expect("utf8");
        let db = user_db(&[mount("bind", src, &["rbind", "rw"])]);
        assert_eq!(db.resolve("u").expect("u").uid, 7);
        assert!(layer_dirs(&[mount("tmpfs", "tmpfs", &[])]).is_none());
        assert!(user_db(&[]).passwd.is_empty());
    }
}
