//! Per-entry metadata: the tar header with its PAX records folded in, and
//! the small helpers that apply it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::LayerError;

/// Metadata of one entry, PAX records folded in.
pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) mtime: i64,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) fn ids(meta: &Meta) -> (Uid, Gid) {
    // Ids beyond u32 cannot exist on Linux; clamp to the overflow id.
    let uid = u32::try_from(meta.uid).unwrap_or(65534);
    let gid = u32::try_from(meta.gid).unwrap_or(65534);
    (Uid::from_raw(uid), Gid::from_raw(gid))
}

pub(super) fn set_times_at(parent: BorrowedFd<'_>, base: &OsStr, mtime: i64) -> io::Result<()> {
    let time = TimeSpec::new(mtime, 0);
    Ok(utimensat(
        parent,
        base,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )?)
}

pub(super) fn link_name<R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &Path,
) -> Result<PathBuf, LayerError> {
    match entry.link_name() {
        Ok(Some(link)) => Ok(link.into_owned()),
        Ok(None) => Err(LayerError::Tar {
            path: name.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, "link entry without a target"),
        }),
        Err(source) => Err(LayerError::Tar {
            path: name.to_owned(),
            source,
        }),
    }
}

/// Mode, owners, mtime and xattrs of an entry, PAX records overriding the
/// ustar fields.
pub(super) fn read_meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    name: &Path,
) -> Result<Meta, LayerError> {
    let bad = |source| LayerError::Tar {
        path: name.to_owned(),
        source,
    };
    let header = entry.header();
    let mut meta = Meta {
        mode: header.mode().map_err(bad)? & 0o7777,
        uid: header.uid().map_err(bad)?,
        gid: header.gid().map_err(bad)?,
        mtime: i64::try_from(header.mtime().map_err(bad)?).unwrap_or(i64::MAX),
        xattrs: Vec::new(),
    };
    if let Some(extensions) = entry.pax_extensions().map_err(bad)? {
        for extension in extensions {
            let extension = extension.map_err(bad)?;
            let key = extension.key_bytes();
            let value = extension.value_bytes();
            if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
                meta.xattrs.push((xattr.to_vec(), value.to_vec()));
                continue;
            }
            let number = || {
                std::str::from_utf8(value)
                    .ok()
                    .map(|v| v.split('.').next().unwrap_or(v).to_owned())
            };
            match key {
                b"uid" => meta.uid = number().and_then(|v| v.parse().ok()).unwrap_or(meta.uid),
                b"gid" => meta.gid = number().and_then(|v| v.parse().ok()).unwrap_or(meta.gid),
                b"mtime" => {
                    meta.mtime = number().and_then(|v| v.parse().ok()).unwrap_or(meta.mtime)
                }
                _ => {}
            }
        }
    }
    Ok(meta)
}

/// Copies an entry's data with a large buffer (fewer syscalls than io::copy's 8 KiB).
pub(super) fn copy(from: &mut impl Read, to: &mut File, buffer: &mut [u8]) -> io::Result<()> {
    loop {
        let n = match from.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        to.write_all(&buffer[..n])?;
    }
}
