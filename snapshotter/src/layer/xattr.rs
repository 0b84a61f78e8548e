//! Extended attributes of entries addressed as (parent dir fd, name), never
//! following the last component.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// The xattr overlayfs marks an opaque directory with.
pub(crate) const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";

/// Whether an xattr belongs to overlayfs itself. Layers never set these:
/// `redirect`/`metacopy`/`opaque` would change what a mount shows beyond the
/// layer's own entries.
pub(crate) fn is_overlay_private(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// `/proc/self/fd/<dir>/<name>`: the kernel resolves the magic link to the
/// already-confined directory; `l*xattr` then does not follow `name`.
fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<CString> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.as_bytes());
    CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Where an xattr goes: an open file or directory, or (for symlinks and
/// device nodes, which cannot be opened for this) a name in a directory.
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a OsStr),
}

/// Sets xattr `key` on `node` (never following a symlink).
pub(crate) fn set(node: Node<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let key = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let rc = match node {
        // SAFETY: `key` is NUL-terminated, `value` is a live slice whose length
        // is passed alongside it, and the fd is open for the call's duration.
        Node::Fd(fd) => unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                key.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        },
        Node::At(dir, name) => {
            let path = proc_path(dir, name)?;
            // SAFETY: as above; `path` is NUL-terminated.
            unsafe {
                libc::lsetxattr(
                    path.as_ptr(),
                    key.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// All xattrs of `path` (no follow), sorted by name.
pub(crate) fn list(path: &Path) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let names = read_sized(|buf, len| {
        // SAFETY: `cpath` is NUL-terminated; `buf` points to `len` writable bytes
        // (or is null with len 0 to query the size).
        unsafe { libc::llistxattr(cpath.as_ptr(), buf.cast(), len) }
    })?;
    let mut out = Vec::new();
    for key in names.split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let ckey = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let value = read_sized(|buf, len| {
            // SAFETY: as above; `ckey` is NUL-terminated.
            unsafe { libc::lgetxattr(cpath.as_ptr(), ckey.as_ptr(), buf.cast(), len) }
        });
        match value {
            Ok(value) => out.push((OsString::from_vec(key.to_vec()), value)),
            // Removed between list and get.
            Err(err) if err.raw_os_error() == Some(libc::ENODATA) => {}
            Err(err) => return Err(err),
        }
    }
    out.sort();
    Ok(out)
}

/// Calls a size-query-then-fill libc function until the buffer fits.
fn read_sized(mut call: impl FnMut(*mut u8, usize) -> libc::ssize_t) -> io::Result<Vec<u8>> {
    loop {
        let size = call(std::ptr::null_mut(), 0);
        if size < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENOTSUP) => Ok(Vec::new()),
                _ => Err(err),
            };
        }
        let mut buf = vec![0u8; size as usize];
        let got = call(buf.as_mut_ptr(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}
