//! A real overlay mount of a lower tree and an upper applied in Overlay mode.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::util::{Layer, require_root};
use crate::layer::{WhiteoutMode, apply};

/// Unmounts on drop, also when an assertion fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

fn mount_overlay(lower: &Path, upper: &Path, work: &Path, merged: &Path) -> Mounted {
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .expect("mount overlay");
    Mounted(merged.to_owned())
}

#[test]
fn overlay_mount_hides_whiteouts_and_opaque_content() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|n| {
        let p = dir.path().join(n);
        fs::create_dir(&p).expect("mkdir");
        p
    });
    let mut base = Layer::new();
    base.file("gone", b"old", 0o644)
        .file("tree/sub/old", b"old", 0o644)
        .file("opq/old", b"old", 0o644)
        .file("stays", b"s", 0o644);
    apply(base.finish().as_slice(), "", &lower, WhiteoutMode::Delete).expect("lower");
    let mut top = Layer::new();
    top.file(".wh.gone", b"", 0o644)
        .file(".wh.tree", b"", 0o644)
        .file("opq/new", b"new", 0o644)
        .file("opq/.wh..wh..opq", b"", 0o644);
    apply(top.finish().as_slice(), "", &upper, WhiteoutMode::Overlay).expect("upper");

    let _mounted = mount_overlay(&lower, &upper, &work, &merged);
    let mut names: Vec<String> = walk(&merged);
    names.sort();
    assert_eq!(names, ["opq", "opq/new", "stays"]);
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            out.push(
                path.strip_prefix(root)
                    .expect("below")
                    .to_string_lossy()
                    .into_owned(),
            );
            if fs::symlink_metadata(&path).expect("lstat").is_dir() {
                stack.push(path);
            }
        }
    }
    out
}
