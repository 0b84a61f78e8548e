//! Applying one tar layer onto a target directory.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmod, fchmodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat};
use tar::EntryType;

use super::compression::{Compression, STREAM_BUFFER};
use super::meta::{Meta, copy, ids, link_name, read_meta, set_times_at};
use super::root::{self, Root, is_dir, lstat_at, normalize, split};
use super::{LayerError, WHITEOUT_PREFIX, pipe, xattr};

/// What an OCI whiteout becomes in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// The target is an overlay upper directory: `.wh.name` becomes a char
    /// device 0:0 `name`, `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its
    /// directory. Nothing is deleted.
    Overlay,
    /// The target is a complete tree (native snapshot, mounted overlay):
    /// `.wh.name` deletes `name`; `.wh..wh..opq` deletes whatever the directory
    /// held that this layer did not itself put there.
    Delete,
}

/// Result of [`apply`]: the layer's diff_id and uncompressed size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `sha256:<hex>` of the whole uncompressed tar stream (to its EOF).
    pub digest: String,
    /// Bytes of the uncompressed tar stream.
    pub size: u64,
}

/// Applies the layer read from `reader` onto `target`.
///
/// `media_type` names the compression (`…tar`, `…tar+gzip`, `…tar+zstd`, the
/// Docker gzip type, or empty); the stream's magic bytes decide in the end.
/// The digest covers every uncompressed byte including the tar trailer and
/// padding, so it equals the image config's `diff_id`.
///
/// Decompression and hashing run on a scoped second thread (hence `Send`),
/// overlapping with the file writes on the caller's thread.
///
/// Every entry is resolved inside `target` (see the module docs for the
/// policy on hostile entries). On error the target is left partially
/// applied; the caller discards it.
pub fn apply(
    reader: impl Read + Send,
    media_type: &str,
    target: &Path,
    mode: WhiteoutMode,
) -> Result<Applied, LayerError> {
    let declared = Compression::from_media_type(media_type)?;
    let root = Root::open(target).map_err(|source| LayerError::Root {
        path: target.to_owned(),
        source,
    })?;
    let (unpacked, hashed) = std::thread::scope(|scope| {
        let (stream, producer) = pipe::spawn(scope, reader, declared);
        let unpacked = unpack(stream, Applier::new(root, mode));
        let hashed = producer.join().unwrap_or_else(|_| {
            Err(LayerError::Read(io::Error::other(
                "decompression thread panicked",
            )))
        });
        (unpacked, hashed)
    });
    // A broken stream explains a failed unpack better than the unpack error.
    let (digest, size) = match (unpacked, hashed) {
        (_, Err(err)) | (Err(err), Ok(_)) => return Err(err),
        (Ok(()), Ok(Some(hashed))) => hashed,
        (Ok(()), Ok(None)) => {
            return Err(LayerError::Read(io::Error::other(
                "layer stream stopped before its end",
            )));
        }
    };
    tracing::debug!(target = %target.display(), %digest, size, "layer applied");
    Ok(Applied { digest, size })
}

/// Applies every entry of `stream`, then reads it to EOF (the digest covers
/// the tar trailer and any padding after it).
fn unpack(stream: impl Read, mut applier: Applier) -> Result<(), LayerError> {
    let mut archive = tar::Archive::new(stream);
    let mut last = PathBuf::new();
    for entry in archive.entries().map_err(LayerError::Read)? {
        let entry = entry.map_err(|source| LayerError::Tar {
            path: last.clone(),
            source,
        })?;
        last = applier.entry(entry)?;
    }
    applier.finish()?;
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(LayerError::Read)?;
    Ok(())
}

/// State across the entries of one layer.
pub(super) struct Applier {
    pub(super) root: Root,
    pub(super) mode: WhiteoutMode,
    is_root: bool,
    /// Every path this layer created (and their ancestors), for opaque dirs
    /// in [`WhiteoutMode::Delete`].
    pub(super) unpacked: HashSet<PathBuf>,
    /// Directory mtimes, set once all entries are written.
    dir_times: Vec<(PathBuf, i64)>,
    /// The last parent directory resolved; dropped on every removal.
    parent: Option<(PathBuf, OwnedFd)>,
    buffer: Vec<u8>,
}

impl Applier {
    fn new(root: Root, mode: WhiteoutMode) -> Self {
        Self {
            root,
            mode,
            is_root: nix::unistd::geteuid().is_root(),
            unpacked: HashSet::new(),
            dir_times: Vec::new(),
            parent: None,
            buffer: vec![0; STREAM_BUFFER],
        }
    }

    /// Applies one entry; returns its name (for error context).
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<PathBuf, LayerError> {
        let name = entry
            .path()
            .map_err(|source| LayerError::Tar {
                path: PathBuf::new(),
                source,
            })?
            .into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(name);
        }
        let rel = normalize(&name).ok_or_else(|| LayerError::Escape { path: name.clone() })?;
        if rel.as_os_str().is_empty() {
            // The root itself ("./"): its metadata belongs to the snapshot.
            return Ok(name);
        }
        let (parent_rel, base) = split(&rel);
        if base.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            self.whiteout(&name, parent_rel, base)?;
            return Ok(name);
        }
        let meta = read_meta(&mut entry, &name)?;
        let parent = self
            .parent_dir(parent_rel)
            .map_err(LayerError::fs("resolve parent of", &name))?;
        let parent = parent.as_fd();
        let fs = |op| LayerError::fs(op, name.clone());

        if let Some(existing) = lstat_at(parent, base).map_err(fs("stat"))?
            && !(is_dir(&existing) && kind == EntryType::Directory)
        {
            // The parent fd stays valid; only cached resolutions through
            // the removed path could change.
            root::remove_all_at(parent, base).map_err(fs("remove existing"))?;
            self.parent = None;
        }

        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = openat(
                    parent,
                    base,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| fs("create file")(e.into()))?;
                let mut file = File::from(fd);
                copy(&mut entry, &mut file, &mut self.buffer).map_err(fs("write file"))?;
                self.chown_fd(file.as_fd(), &meta).map_err(fs("chown"))?;
                fchmod(&file, Mode::from_bits_truncate(meta.mode))
                    .map_err(|e| fs("chmod")(e.into()))?;
                self.set_xattrs(xattr::Node::Fd(file.as_fd()), &meta, &name)?;
                let time = TimeSpec::new(meta.mtime, 0);
                nix::sys::stat::futimens(&file, &time, &time)
                    .map_err(|e| fs("set times")(e.into()))?;
            }
            EntryType::Directory => {
                match nix::sys::stat::mkdirat(parent, base, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(fs("mkdir")(e.into())),
                }
                let dir = root::open_subdir(parent, base).map_err(fs("open dir"))?;
                self.chown_fd(dir.as_fd(), &meta).map_err(fs("chown"))?;
                fchmod(&dir, Mode::from_bits_truncate(meta.mode))
                    .map_err(|e| fs("chmod")(e.into()))?;
                self.set_xattrs(xattr::Node::Fd(dir.as_fd()), &meta, &name)?;
                self.dir_times.push((rel.clone(), meta.mtime));
            }
            EntryType::Symlink => {
                let target = link_name(&entry, &name)?;
                symlinkat(target.as_path(), parent, base).map_err(|e| fs("symlink")(e.into()))?;
                self.chown_at(parent, base, &meta).map_err(fs("chown"))?;
                self.set_xattrs(xattr::Node::At(parent, base), &meta, &name)?;
                set_times_at(parent, base, meta.mtime).map_err(fs("set times"))?;
            }
            EntryType::Link => {
                let target = link_name(&entry, &name)?;
                self.hardlink(&name, &target, parent, base)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (sflag, dev) = match kind {
                    EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                        let sflag = if kind == EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (sflag, libc::makedev(major, minor))
                    }
                };
                if sflag != SFlag::S_IFIFO && !self.is_root {
                    tracing::warn!(path = %name.display(), "device node skipped: not running as root");
                    return Ok(name);
                }
                root::mknod_at(parent, base, sflag, dev).map_err(fs("mknod"))?;
                self.chown_at(parent, base, &meta).map_err(fs("chown"))?;
                fchmodat(
                    parent,
                    base,
                    Mode::from_bits_truncate(meta.mode),
                    FchmodatFlags::NoFollowSymlink,
                )
                .map_err(|e| fs("chmod")(e.into()))?;
                self.set_xattrs(xattr::Node::At(parent, base), &meta, &name)?;
                set_times_at(parent, base, meta.mtime).map_err(fs("set times"))?;
            }
            other => {
                return Err(LayerError::UnsupportedEntry {
                    path: name,
                    kind: char::from(other.as_byte()),
                });
            }
        }
        self.record(&rel);
        Ok(name)
    }

    /// `parent_rel` resolved in the root (created if missing), cached.
    pub(super) fn parent_dir(&mut self, parent_rel: &Path) -> io::Result<OwnedFd> {
        if let Some((cached, fd)) = &self.parent
            && cached == parent_rel
        {
            return fd.try_clone();
        }
        let fd = self.root.dir_create(parent_rel)?;
        self.parent = Some((parent_rel.to_owned(), fd.try_clone()?));
        for ancestor in parent_rel.ancestors() {
            if ancestor.as_os_str().is_empty() || !self.unpacked.insert(ancestor.to_owned()) {
                break;
            }
        }
        Ok(fd)
    }

    pub(super) fn forget_parent(&mut self) {
        self.parent = None;
    }

    fn record(&mut self, rel: &Path) {
        self.unpacked.insert(rel.to_owned());
    }

    /// A hardlink `base` in `parent` to `target` (an entry name), resolved in
    /// the root; the link source itself is never followed.
    fn hardlink(
        &self,
        name: &Path,
        target: &Path,
        parent: BorrowedFd<'_>,
        base: &OsStr,
    ) -> Result<(), LayerError> {
        let missing = || LayerError::LinkTarget {
            path: name.to_owned(),
            link: target.to_owned(),
        };
        let target_rel = normalize(target).ok_or_else(|| LayerError::Escape {
            path: target.to_owned(),
        })?;
        if target_rel.as_os_str().is_empty() {
            return Err(missing());
        }
        let (source_parent, source_base) = split(&target_rel);
        let source_dir = match self.root.dir(source_parent) {
            Ok(fd) => fd,
            Err(err) if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Err(missing());
            }
            Err(source) => {
                return Err(LayerError::Fs {
                    op: "resolve link source",
                    path: name.to_owned(),
                    source,
                });
            }
        };
        match linkat(&source_dir, source_base, parent, base, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::ENOENT) => Err(missing()),
            Err(e) => Err(LayerError::Fs {
                op: "link",
                path: name.to_owned(),
                source: e.into(),
            }),
        }
    }

    fn chown_fd(&self, fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
        let (uid, gid) = ids(meta);
        self.tolerate_eperm(fchown(fd, Some(uid), Some(gid)))
    }

    fn chown_at(&self, parent: BorrowedFd<'_>, base: &OsStr, meta: &Meta) -> io::Result<()> {
        let (uid, gid) = ids(meta);
        self.tolerate_eperm(fchownat(
            parent,
            base,
            Some(uid),
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ))
    }

    /// Without root, foreign owners cannot be set: keep the caller's.
    fn tolerate_eperm(&self, result: nix::Result<()>) -> io::Result<()> {
        match result {
            Err(Errno::EPERM) if !self.is_root => Ok(()),
            other => other.map_err(io::Error::from),
        }
    }

    fn set_xattrs(
        &self,
        node: xattr::Node<'_>,
        meta: &Meta,
        name: &Path,
    ) -> Result<(), LayerError> {
        for (key, value) in &meta.xattrs {
            if xattr::is_overlay_private(key) {
                tracing::warn!(path = %name.display(), key = %String::from_utf8_lossy(key), "overlay-private xattr in layer ignored");
                continue;
            }
            match xattr::set(node, key, value) {
                Ok(()) => {}
                Err(err)
                    if err.raw_os_error() == Some(libc::ENOTSUP)
                        || (!self.is_root && err.raw_os_error() == Some(libc::EPERM)) =>
                {
                    tracing::warn!(path = %name.display(), key = %String::from_utf8_lossy(key), error = %err, "xattr not supported here, skipped");
                }
                Err(source) => {
                    return Err(LayerError::Fs {
                        op: "set xattr",
                        path: name.to_owned(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Sets directory mtimes last, so writing their children cannot move them.
    fn finish(&mut self) -> Result<(), LayerError> {
        self.parent = None;
        for (rel, mtime) in std::mem::take(&mut self.dir_times) {
            let (parent_rel, base) = split(&rel);
            let Ok(parent) = self.root.dir(parent_rel) else {
                continue;
            };
            match lstat_at(parent.as_fd(), base) {
                Ok(Some(stat)) if is_dir(&stat) => set_times_at(parent.as_fd(), base, mtime)
                    .map_err(LayerError::fs("set times", &rel))?,
                _ => {}
            }
        }
        Ok(())
    }
}
