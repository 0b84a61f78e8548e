//! Host access for privileged containers: device directories and the
//! capabilities the host allows ([`Host`], with [`RealHost`] for the real
//! thing).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The `CapBnd:` bitmap of a `/proc/<pid>/status` text.
pub fn parse_cap_bnd(status: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let hex = l.strip_prefix("CapBnd:")?.trim();
        u64::from_str_radix(hex, 16).ok()
    })
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory (walked).
    Dir,
    /// A character device node.
    Char,
    /// A block device node.
    Block,
    /// Anything else (symlink, FIFO, regular file, socket): skipped.
    Other,
}

/// One entry of a /dev directory, as `lstat` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevEntry {
    /// File name.
    pub name: String,
    /// Its kind.
    pub kind: EntryKind,
    /// Device major number (nodes only).
    pub major: u64,
    /// Device minor number (nodes only).
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// What a privileged container inherits from the host, read through a
/// trait so spec generation is unit-tested with a fake.
pub trait Host {
    /// The entries of directory `dir` (without following symlinks).
    fn read_dir(&self, dir: &Path) -> std::io::Result<Vec<DevEntry>>;

    /// The capabilities a container may be given, as a bitmap (bit `n` is
    /// capability number `n`): the calling process's bounding set.
    /// containerd's `cap.Current` takes the caller's effective set instead,
    /// which is empty for a non-root client allowed on the socket; the
    /// bounding set is what the host lets any process (the runtime
    /// included) hold either way.
    fn bounding_caps(&self) -> std::io::Result<u64>;
}

/// The real host: the filesystem and `/proc/self/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHost;

impl Host for RealHost {
    fn bounding_caps(&self) -> std::io::Result<u64> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        parse_cap_bnd(&status).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no CapBnd line in /proc/self/status",
            )
        })
    }

    fn read_dir(&self, dir: &Path) -> std::io::Result<Vec<DevEntry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // A node that vanished between readdir and lstat is skipped.
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_char_device() {
                EntryKind::Char
            } else if ft.is_block_device() {
                EntryKind::Block
            } else {
                EntryKind::Other
            };
            let rdev = meta.rdev();
            out.push(DevEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                kind,
                major: nix::sys::stat::major(rdev),
                minor: nix::sys::stat::minor(rdev),
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_bnd_parses_from_status() {
        let status = "Name:\tx\nCapEff:\t0000000000000001\nCapBnd:\t000001fffeffffff\n";
        assert_eq!(parse_cap_bnd(status), Some(0x1fffeffffff));
        assert_eq!(parse_cap_bnd("Name: x\n"), None);
        // The real host answers.
        assert!(RealHost.bounding_caps().is_ok());
    }
}
