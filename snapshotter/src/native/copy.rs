//! A faithful copy of a directory tree (the native snapshotter's layer creation).

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;

use crate::error::{Error, Result};

/// Copies `src` to the not yet existing `dst`, keeping file types (regular files,
/// directories, symlinks, device nodes, fifos), owners, modes, xattrs, access and
/// modification times, and hard links between files inside the tree. Sockets are
/// skipped (they cannot be copied).
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(src).map_err(Error::io("stat", src))?;
    Copier::default().copy(src, dst, &meta)
}

#[derive(Default)]
struct Copier {
    /// (dev, ino) of files with several links → where the first was copied.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier {
    fn copy(&mut self, src: &Path, dst: &Path, meta: &Metadata) -> Result<()> {
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(dst).map_err(Error::io("create", dst))?;
            for entry in fs::read_dir(src).map_err(Error::io("read", src))? {
                let entry = entry.map_err(Error::io("read", src))?;
                let path = entry.path();
                let child = fs::symlink_metadata(&path).map_err(Error::io("stat", &path))?;
                self.copy(&path, &dst.join(entry.file_name()), &child)?;
            }
            return copy_metadata(src, dst, meta);
        }
        if meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                return fs::hard_link(first, dst).map_err(Error::io("link", dst));
            }
            self.links
                .insert((meta.dev(), meta.ino()), dst.to_path_buf());
        }
        let perm = Mode::from_bits_truncate(meta.mode() & 0o7777);
        let rdev = meta.rdev();
        if ft.is_file() {
            fs::copy(src, dst).map_err(Error::io("copy", src))?;
        } else if ft.is_symlink() {
            let to = fs::read_link(src).map_err(Error::io("readlink", src))?;
            std::os::unix::fs::symlink(&to, dst).map_err(Error::io("symlink", dst))?;
        } else if ft.is_char_device() {
            mknod(dst, SFlag::S_IFCHR, perm, rdev).map_err(Error::sys("mknod", dst))?;
        } else if ft.is_block_device() {
            mknod(dst, SFlag::S_IFBLK, perm, rdev).map_err(Error::sys("mknod", dst))?;
        } else if ft.is_fifo() {
            nix::unistd::mkfifo(dst, perm).map_err(Error::sys("mkfifo", dst))?;
        } else {
            tracing::debug!(path = %src.display(), "skipping socket");
            self.links.remove(&(meta.dev(), meta.ino()));
            return Ok(());
        }
        copy_metadata(src, dst, meta)
    }
}

/// Owner, mode, xattrs, then times (in that order: chown clears set-id bits and
/// file capabilities, and every change moves ctime/mtime of directories).
fn copy_metadata(src: &Path, dst: &Path, meta: &Metadata) -> Result<()> {
    let symlink = meta.file_type().is_symlink();
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(Error::io("chown", dst))?;
    if !symlink {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(Error::io("chmod", dst))?;
    }
    copy_xattrs(src, dst, symlink)?;
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(Error::sys("utimensat", dst))
}

fn copy_xattrs(src: &Path, dst: &Path, symlink: bool) -> Result<()> {
    let names = match xattr::list(src) {
        Ok(names) => names,
        // A filesystem without xattrs has none to copy.
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(Error::io("listxattr", src)(e)),
    };
    for name in names {
        let Some(value) = xattr::get(src, &name).map_err(Error::io("getxattr", src))? else {
            continue;
        };
        if let Err(e) = xattr::set(dst, &name, &value) {
            // user.* xattrs are not allowed on symlinks; nothing else is expected to fail.
            if symlink {
                tracing::debug!(path = %dst.display(), name = ?name, error = %e, "xattr skipped");
                continue;
            }
            return Err(Error::io("setxattr", dst)(e));
        }
    }
    Ok(())
}
