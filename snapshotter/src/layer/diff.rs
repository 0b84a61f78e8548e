//! Writing a layer: the difference of two trees, or an overlay upper dir.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::writer::LayerWriter;
use super::{LayerError, OPAQUE_WHITEOUT, xattr};

/// Compression of a written layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffCompression {
    /// Plain tar.
    None,
    /// gzip at the default level.
    Gzip,
}

/// What [`diff()`] and [`diff_overlay_upper`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diffed {
    /// Media type of the written blob.
    pub media_type: &'static str,
    /// `sha256:<hex>` of the bytes written to the output (compressed if gzip).
    pub digest: String,
    /// Bytes written to the output.
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed tar (the diff_id, containerd's
    /// `containerd.io/uncompressed` label).
    pub diff_id: String,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// Writes to `out` the layer that turns tree `lower` into tree `upper`:
/// added and changed entries (with their parent directories), a `.wh.<name>`
/// for each path gone. Both are complete trees (native snapshots, mounted
/// overlays). Hardlinked files inside the layer stay hardlinked.
pub fn diff(
    lower: &Path,
    upper: &Path,
    out: impl Write,
    compression: DiffCompression,
) -> Result<Diffed, LayerError> {
    let mut writer = LayerWriter::new(out, compression);
    walk_trees(&mut writer, lower, upper, Path::new(""), true)?;
    writer.finish()
}

/// Writes to `out` the layer an overlay upper directory holds: every entry,
/// char devices 0:0 as `.wh.<name>`, directories with
/// `trusted.overlay.opaque=y` followed by `.wh..wh..opq`. (Overlay
/// `redirect_dir`/`metacopy` uppers are not supported; berth mounts without them.)
pub fn diff_overlay_upper(
    upper: &Path,
    out: impl Write,
    compression: DiffCompression,
) -> Result<Diffed, LayerError> {
    let mut writer = LayerWriter::new(out, compression);
    walk_upper(&mut writer, upper, Path::new(""))?;
    writer.finish()
}

fn walk_trees<W: Write>(
    w: &mut LayerWriter<W>,
    lower: &Path,
    upper: &Path,
    rel: &Path,
    lower_is_dir: bool,
) -> Result<(), LayerError> {
    let upper_names = sorted_names(&upper.join(rel))?;
    let lower_names = if lower_is_dir {
        sorted_names(&lower.join(rel))?
    } else {
        Vec::new()
    };
    let present: HashSet<&OsString> = upper_names.iter().collect();
    for name in lower_names.iter().filter(|n| !present.contains(n)) {
        w.parents(upper, rel)?;
        w.whiteout(rel, name)?;
    }
    for name in &upper_names {
        let child = rel.join(name);
        let upper_path = upper.join(&child);
        let meta = lstat(&upper_path)?;
        let lower_meta = if lower_is_dir {
            fs::symlink_metadata(lower.join(&child)).ok()
        } else {
            None
        };
        let changed = match &lower_meta {
            None => true,
            Some(old) => differs(&meta, old, &upper_path, &lower.join(&child))?,
        };
        if changed {
            w.parents(upper, rel)?;
            w.entry(&upper_path, &child, &meta)?;
        }
        if meta.is_dir() {
            let lower_dir = lower_meta.is_some_and(|m| m.is_dir());
            walk_trees(w, lower, upper, &child, lower_dir)?;
        }
    }
    Ok(())
}

fn walk_upper<W: Write>(
    w: &mut LayerWriter<W>,
    upper: &Path,
    rel: &Path,
) -> Result<(), LayerError> {
    for name in sorted_names(&upper.join(rel))? {
        let child = rel.join(&name);
        let path = upper.join(&child);
        let meta = lstat(&path)?;
        w.parents(upper, rel)?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            w.whiteout(rel, &name)?;
            continue;
        }
        w.entry(&path, &child, &meta)?;
        if meta.is_dir() {
            let attrs = xattr::list(&path).map_err(LayerError::fs("list xattrs", &path))?;
            let opaque = attrs.iter().any(|(k, v)| {
                (k == xattr::OVERLAY_OPAQUE || k == "user.overlay.opaque") && v.as_slice() == b"y"
            });
            if opaque {
                w.marker(&child.join(OPAQUE_WHITEOUT))?;
            }
            walk_upper(w, upper, &child)?;
        }
    }
    Ok(())
}

/// Whether `new` differs from `old` in anything a layer carries.
fn differs(
    new: &Metadata,
    old: &Metadata,
    new_path: &Path,
    old_path: &Path,
) -> Result<bool, LayerError> {
    if new.file_type() != old.file_type()
        || new.mode() != old.mode()
        || new.uid() != old.uid()
        || new.gid() != old.gid()
        || new.mtime() != old.mtime()
        || new.mtime_nsec() != old.mtime_nsec()
        || new.rdev() != old.rdev()
        || (new.is_file() && new.len() != old.len())
    {
        return Ok(true);
    }
    let attrs = |p: &Path| xattr::list(p).map_err(LayerError::fs("list xattrs", p));
    if attrs(new_path)? != attrs(old_path)? {
        return Ok(true);
    }
    if new.file_type().is_symlink() {
        let link = |p: &Path| fs::read_link(p).map_err(LayerError::fs("read link", p));
        return Ok(link(new_path)? != link(old_path)?);
    }
    // Whole-second mtimes (a tree unpacked from tar) cannot tell a rewrite
    // within the same second: compare content then.
    if new.is_file() && new.mtime_nsec() == 0 {
        return Ok(!same_content(new_path, old_path)?);
    }
    Ok(false)
}

fn same_content(a: &Path, b: &Path) -> Result<bool, LayerError> {
    let mut fa = open_nofollow(a)?;
    let mut fb = open_nofollow(b)?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(LayerError::fs("read", a))?;
        let nb = read_full(&mut fb, &mut bb).map_err(LayerError::fs("read", b))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

pub(super) fn open_nofollow(path: &Path) -> Result<File, LayerError> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(LayerError::fs("open", path))
}

pub(super) fn lstat(path: &Path) -> Result<Metadata, LayerError> {
    fs::symlink_metadata(path).map_err(LayerError::fs("stat", path))
}

fn sorted_names(dir: &Path) -> Result<Vec<OsString>, LayerError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(LayerError::fs("read dir", dir))? {
        names.push(entry.map_err(LayerError::fs("read dir", dir))?.file_name());
    }
    names.sort();
    Ok(names)
}
