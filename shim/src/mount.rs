//! The rootfs mounts of Create (bind or overlay mounts from berthd's
//! snapshotter, in containerd's `Mount{type, source, options}` form), behind
//! the [`Mounter`] role: [`Linux`] mounts for real, [`Fake`] records.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_api::{ErrorKind, HasKind};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// One mount as containerd describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Filesystem type (`bind`, `overlay`, …).
    pub kind: String,
    /// Source path or device.
    pub source: String,
    /// fstab-style options.
    pub options: Vec<String>,
}

/// Why mounting or unmounting failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// mount(2) failed.
    #[error("cannot mount {kind} {source_path} on {target}")]
    Mount {
        /// Filesystem type.
        kind: String,
        /// Source.
        source_path: String,
        /// Target.
        target: PathBuf,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// umount2(2) failed.
    #[error("cannot unmount {target}")]
    Unmount {
        /// Target.
        target: PathBuf,
        /// The errno.
        #[source]
        source: Errno,
    },
}

impl HasKind for MountError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// Mounts a container's rootfs.
pub trait Mounter: Send + Sync + 'static {
    /// Mounts `mounts` on `target`, in order (later ones stack on top).
    fn mount_all(&self, mounts: &[MountSpec], target: &Path) -> Result<(), MountError>;
    /// Unmounts everything mounted on `target`; a target with nothing
    /// mounted (or missing) is fine.
    fn unmount_all(&self, target: &Path) -> Result<(), MountError>;
}

/// What the options of a mount mean for mount(2).
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedOptions {
    /// Flags for the first mount(2).
    pub flags: MsFlags,
    /// Propagation flags applied afterwards.
    pub propagation: MsFlags,
    /// The filesystem-specific rest, comma-joined.
    pub data: String,
}

impl Default for ParsedOptions {
    fn default() -> Self {
        ParsedOptions {
            flags: MsFlags::empty(),
            propagation: MsFlags::empty(),
            data: String::new(),
        }
    }
}

/// Parses fstab-style options the way containerd's mount package does.
pub fn parse_options(options: &[String]) -> ParsedOptions {
    let mut p = ParsedOptions::default();
    let mut data = Vec::new();
    for o in options {
        let (set, clear) = match o.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "private" => {
                p.propagation = MsFlags::MS_PRIVATE;
                continue;
            }
            "rprivate" => {
                p.propagation = MsFlags::MS_PRIVATE | MsFlags::MS_REC;
                continue;
            }
            "slave" => {
                p.propagation = MsFlags::MS_SLAVE;
                continue;
            }
            "rslave" => {
                p.propagation = MsFlags::MS_SLAVE | MsFlags::MS_REC;
                continue;
            }
            "shared" => {
                p.propagation = MsFlags::MS_SHARED;
                continue;
            }
            "rshared" => {
                p.propagation = MsFlags::MS_SHARED | MsFlags::MS_REC;
                continue;
            }
            other => {
                data.push(other.to_owned());
                continue;
            }
        };
        p.flags.insert(set);
        p.flags.remove(clear);
    }
    p.data = data.join(",");
    p
}

/// Real mounts.
pub struct Linux;

impl Mounter for Linux {
    fn mount_all(&self, mounts: &[MountSpec], target: &Path) -> Result<(), MountError> {
        for (i, m) in mounts.iter().enumerate() {
            if let Err(e) = mount_one(m, target) {
                if i > 0 {
                    let _ = self.unmount_all(target);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn unmount_all(&self, target: &Path) -> Result<(), MountError> {
        // Stacked mounts come off one at a time; EINVAL means nothing is
        // mounted there any more.
        for _ in 0..64 {
            match umount2(target, MntFlags::empty()) {
                Ok(()) => continue,
                Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
                Err(Errno::EBUSY) => {
                    umount2(target, MntFlags::MNT_DETACH).map_err(|source| {
                        MountError::Unmount {
                            target: target.to_owned(),
                            source,
                        }
                    })?;
                }
                Err(source) => {
                    return Err(MountError::Unmount {
                        target: target.to_owned(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

fn mount_one(m: &MountSpec, target: &Path) -> Result<(), MountError> {
    let p = parse_options(&m.options);
    let err = |source| MountError::Mount {
        kind: m.kind.clone(),
        source_path: m.source.clone(),
        target: target.to_owned(),
        source,
    };
    let data = (!p.data.is_empty()).then_some(p.data.as_str());
    let bind = p.flags.contains(MsFlags::MS_BIND);
    let fstype = if bind { None } else { Some(m.kind.as_str()) };
    mount(Some(m.source.as_str()), target, fstype, p.flags, data).map_err(err)?;
    // A bind mount ignores most flags on the first call: apply them with a remount.
    let extra = p.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if bind && !extra.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(err)?;
    }
    if !p.propagation.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            p.propagation,
            None::<&str>,
        )
        .map_err(err)?;
    }
    Ok(())
}

/// Records mount calls; nothing is mounted.
#[derive(Default)]
pub struct Fake {
    /// `mount <target> <n>` and `unmount <target>` lines.
    pub calls: Mutex<Vec<String>>,
}

impl Mounter for Fake {
    fn mount_all(&self, mounts: &[MountSpec], target: &Path) -> Result<(), MountError> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("mount {} {}", target.display(), mounts.len()));
        }
        Ok(())
    }
    fn unmount_all(&self, target: &Path) -> Result<(), MountError> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("unmount {}", target.display()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bind_ro_sets_flags_and_no_data() {
        let p = parse_options(&opts(&["rbind", "ro", "nosuid"]));
        assert_eq!(
            p.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID
        );
        assert_eq!(p.data, "");
    }

    #[test]
    fn overlay_options_become_data_and_rw_clears_ro() {
        let p = parse_options(&opts(&[
            "ro",
            "rw",
            "index=off",
            "lowerdir=/a:/b",
            "upperdir=/u",
            "workdir=/w",
            "rprivate",
        ]));
        assert_eq!(p.flags, MsFlags::empty());
        assert_eq!(p.data, "index=off,lowerdir=/a:/b,upperdir=/u,workdir=/w");
        assert_eq!(p.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    }

    #[test]
    fn unmount_of_a_plain_dir_is_fine() {
        // umount2 of an unmounted dir is EPERM without root.
        if !crate::have_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        Linux.unmount_all(dir.path()).expect("nothing mounted");
    }
}
