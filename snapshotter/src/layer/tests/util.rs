//! Test helpers: a raw tar builder (hostile names allowed), tree snapshots.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// True when running as root. Without root: false, unless `CI=true`, where it panics.
pub(crate) fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "this test needs root and CI=true forbids skipping it"
    );
    false
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Builds tars entry by entry, writing names verbatim (so `..` and `/abs` work).
pub(crate) struct Layer {
    builder: tar::Builder<Vec<u8>>,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: u64,
}

impl Layer {
    pub(crate) fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
        }
    }

    fn header(&self, name: &str, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut header = Header::new_gnu();
        let raw = &mut header.as_old_mut().name;
        assert!(name.len() < raw.len(), "test names are short");
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(self.uid);
        header.set_gid(self.gid);
        header.set_mtime(self.mtime);
        header
    }

    fn push(&mut self, mut header: Header, data: &[u8]) -> &mut Self {
        header.set_cksum();
        self.builder.append(&header, data).expect("append to a Vec");
        self
    }

    pub(crate) fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let header = self.header(name, EntryType::Directory, mode, 0);
        self.push(header, b"")
    }

    pub(crate) fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let header = self.header(name, EntryType::Regular, mode, data.len() as u64);
        self.push(header, data)
    }

    pub(crate) fn link(&mut self, name: &str, kind: EntryType, target: &str) -> &mut Self {
        let mut header = self.header(name, kind, 0o777, 0);
        let raw = &mut header.as_old_mut().linkname;
        raw[..target.len()].copy_from_slice(target.as_bytes());
        self.push(header, b"")
    }

    pub(crate) fn node(
        &mut self,
        name: &str,
        kind: EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut header = self.header(name, kind, 0o640, 0);
        header.set_device_major(major).expect("gnu header");
        header.set_device_minor(minor).expect("gnu header");
        self.push(header, b"")
    }

    pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.builder
            .append_pax_extensions(records.iter().copied())
            .expect("append to a Vec");
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().expect("finish a Vec")
    }
}

/// One node of a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) kind: &'static str,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: i64,
    pub(crate) rdev: u64,
    pub(crate) content: Vec<u8>,
}

/// Every path below `root` (relative) with its metadata and content
/// (file bytes, symlink target). `skip` names a subtree left out.
pub(crate) fn snapshot(root: &Path, skip: Option<&Path>) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, skip, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, skip: Option<&Path>, out: &mut BTreeMap<PathBuf, Node>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if Some(path.as_path()) == skip {
            continue;
        }
        let meta = fs::symlink_metadata(&path).expect("lstat");
        let ft = meta.file_type();
        let (kind, content) = if ft.is_dir() {
            ("dir", Vec::new())
        } else if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(&path)
                    .expect("readlink")
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if ft.is_file() {
            ("file", fs::read(&path).expect("read"))
        } else if ft.is_char_device() {
            ("char", Vec::new())
        } else if ft.is_block_device() {
            ("block", Vec::new())
        } else {
            ("fifo", Vec::new())
        };
        let rel = path.strip_prefix(root).expect("below root").to_owned();
        out.insert(
            rel,
            Node {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: meta.mtime(),
                rdev: meta.rdev(),
                content,
            },
        );
        if ft.is_dir() {
            walk(root, &path, skip, out);
        }
    }
}
