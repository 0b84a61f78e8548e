//! Mounts as the snapshotters return them, and the helper that performs them.
//!
//! [`mount_all`] is what berthd (diff/apply) and the tests use; it behaves like
//! containerd's `mount.All`: options are split into `MS_*` flags and filesystem data,
//! read-only binds are remounted read-only, propagation flags are applied last, and an
//! overlay whose option string would not fit the kernel's one-page limit is mounted with
//! lowerdirs relative to their common directory, from a thread that has its own cwd
//! (`unshare(CLONE_FS)`), so the process's cwd is never touched. The kernel is reached
//! through [`Mounter`]; [`FakeMounter`] records calls for tests without root.

mod kernel;
mod options;

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

pub use kernel::{FakeMounter, LinuxMounter, MountCall, Mounter};

use crate::error::{Error, Result};
use options::{compact_lowerdir, page_size, parse_options};

/// One mount, in containerd's shape (`containerd.types.Mount`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    /// Filesystem type: `bind`, `overlay`, ...
    pub fs_type: String,
    /// Source: a host path for binds, `overlay` for overlays.
    pub source: String,
    /// Sub-path under the mount target (containerd 1.7+ field); `None` is the target itself.
    pub target: Option<String>,
    /// Options: `MS_*` names (`ro`, `rbind`, ...) and filesystem data (`lowerdir=...`).
    pub options: Vec<String>,
}

impl Mount {
    /// A bind mount of `source`; `rw` or `ro`, always recursive (`rbind`).
    pub fn bind(source: &Path, read_only: bool) -> Self {
        let ro = if read_only { "ro" } else { "rw" };
        Mount {
            fs_type: "bind".to_owned(),
            source: source.display().to_string(),
            target: None,
            options: vec![ro.to_owned(), "rbind".to_owned()],
        }
    }
}

/// Mounts `mounts` in order on `target` with the real kernel.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    mount_all_with(&LinuxMounter, mounts, target)
}

/// Unmounts everything stacked on `target` (not an error when nothing is mounted).
pub fn unmount(target: &Path) -> Result<()> {
    unmount_with(&LinuxMounter, target, MntFlags::empty())
}

/// [`mount_all`] with a chosen [`Mounter`]. On failure, what was mounted is unmounted.
pub fn mount_all_with(mounter: &dyn Mounter, mounts: &[Mount], target: &Path) -> Result<()> {
    for (done, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(mounter, m, target) {
            for prev in mounts[..done].iter().rev() {
                let t = sub_target(prev, target);
                if let Err(err) = unmount_with(mounter, &t, MntFlags::MNT_DETACH) {
                    tracing::warn!(target = %t.display(), error = %err, "rollback unmount failed");
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts `target` until nothing is mounted there.
pub fn unmount_with(mounter: &dyn Mounter, target: &Path, flags: MntFlags) -> Result<()> {
    loop {
        match mounter.unmount(target, flags) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => return Ok(()),
            Err(source) => {
                return Err(Error::Unmount {
                    target: target.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// Mounts on drop-guarded `target`: unmounts (lazily if busy) when dropped.
#[derive(Debug)]
#[must_use = "dropping the guard unmounts"]
pub struct MountGuard {
    target: PathBuf,
}

impl MountGuard {
    /// [`mount_all`] on `target`, unmounted when the guard drops.
    pub fn mount(mounts: &[Mount], target: &Path) -> Result<Self> {
        mount_all(mounts, target)?;
        Ok(MountGuard {
            target: target.to_path_buf(),
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if unmount(&self.target).is_err() {
            let lazy = unmount_with(&LinuxMounter, &self.target, MntFlags::MNT_DETACH);
            if let Err(e) = lazy {
                tracing::warn!(target = %self.target.display(), error = %e, "unmount failed");
            }
        }
    }
}

fn sub_target(m: &Mount, target: &Path) -> PathBuf {
    match &m.target {
        Some(sub) if !sub.is_empty() => target.join(sub.trim_start_matches('/')),
        _ => target.to_path_buf(),
    }
}

fn mount_one(mounter: &dyn Mounter, m: &Mount, target: &Path) -> Result<()> {
    let target = sub_target(m, target);
    let parsed = parse_options(&m.options);
    let mut data = parsed.data;
    let mut cwd = None;
    if m.fs_type == "overlay" && data.join(",").len() >= page_size().saturating_sub(512) {
        cwd = compact_lowerdir(&mut data);
    }
    let err = |source| Error::Mount {
        fs_type: m.fs_type.clone(),
        source_path: m.source.clone(),
        target: target.clone(),
        source,
    };
    let call = MountCall {
        source: Some(m.source.clone()),
        target: target.clone(),
        fs_type: Some(m.fs_type.clone()),
        flags: parsed.flags,
        data: (!data.is_empty()).then(|| data.join(",")),
        cwd,
    };
    mounter.mount(&call).map_err(err)?;
    let remount = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let follow_up = |flags: MsFlags| MountCall {
        source: None,
        target: target.clone(),
        fs_type: None,
        flags,
        data: None,
        cwd: None,
    };
    let mut result = Ok(());
    if parsed.flags.contains(MsFlags::MS_BIND) && parsed.flags.intersects(remount) {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | (parsed.flags & remount);
        result = mounter.mount(&follow_up(flags)).map_err(err);
    }
    if result.is_ok() && !parsed.propagation.is_empty() {
        result = mounter.mount(&follow_up(parsed.propagation)).map_err(err);
    }
    if result.is_err() {
        let _ = unmount_with(mounter, &target, MntFlags::MNT_DETACH);
    }
    result
}

#[cfg(test)]
mod tests;
