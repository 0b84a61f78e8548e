//! Mounts as the snapshotters return them, and the helper that performs them.
//!
//! [`mount_all`] is what berthd (diff/apply) and the tests use; it behaves like
//! containerd's `mount.All`: options are split into `MS_*` flags and filesystem data,
//! read-only binds are remounted read-only, propagation flags are applied last, and an
//! overlay whose option string would not fit the kernel's one-page limit is mounted with
//! lowerdirs relative to their common directory, from a thread that has its own cwd
//! (`unshare(CLONE_FS)`), so the process's cwd is never touched. The kernel is reached
//! through [`Mounter`]; [`FakeMounter`] records calls for tests without root.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags};

use crate::error::{Error, Result};

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

/// One mount(2) call, as [`Mounter`] performs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountCall {
    pub source: Option<String>,
    pub target: PathBuf,
    pub fs_type: Option<String>,
    pub flags: MsFlags,
    pub data: Option<String>,
    /// Perform the call with this working directory (relative overlay lowerdirs).
    pub cwd: Option<PathBuf>,
}

/// Kernel mount access.
pub trait Mounter: Send + Sync {
    fn mount(&self, call: &MountCall) -> nix::Result<()>;
    fn unmount(&self, target: &Path, flags: MntFlags) -> nix::Result<()>;
}

/// The real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxMounter;

impl Mounter for LinuxMounter {
    fn mount(&self, call: &MountCall) -> nix::Result<()> {
        let run = || {
            nix::mount::mount(
                call.source.as_deref(),
                &call.target,
                call.fs_type.as_deref(),
                call.flags,
                call.data.as_deref(),
            )
        };
        let Some(cwd) = &call.cwd else {
            return run();
        };
        // A short-lived thread with its own fs context: chdir there does not move the
        // cwd of the rest of the process.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
                    nix::unistd::chdir(cwd.as_path())?;
                    run()
                })
                .join()
                .unwrap_or(Err(nix::Error::EIO))
        })
    }

    fn unmount(&self, target: &Path, flags: MntFlags) -> nix::Result<()> {
        nix::mount::umount2(target, flags)
    }
}

/// A recording fake: every call succeeds (unless told to fail) and is remembered.
#[derive(Debug, Default)]
pub struct FakeMounter {
    state: Mutex<FakeState>,
    /// Fail the mount call with this index (0-based) with EINVAL.
    pub fail_at: Option<usize>,
}

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<MountCall>,
    unmounts: Vec<PathBuf>,
    mounted: Vec<PathBuf>,
}

impl FakeMounter {
    /// Every mount call so far.
    pub fn calls(&self) -> Vec<MountCall> {
        self.state
            .lock()
            .map(|s| s.calls.clone())
            .unwrap_or_default()
    }

    /// Every successful unmount so far.
    pub fn unmounts(&self) -> Vec<PathBuf> {
        self.state
            .lock()
            .map(|s| s.unmounts.clone())
            .unwrap_or_default()
    }

    /// Targets still mounted.
    pub fn mounted(&self) -> Vec<PathBuf> {
        self.state
            .lock()
            .map(|s| s.mounted.clone())
            .unwrap_or_default()
    }
}

impl Mounter for FakeMounter {
    fn mount(&self, call: &MountCall) -> nix::Result<()> {
        let mut s = self.state.lock().map_err(|_| nix::Error::EIO)?;
        let index = s.calls.len();
        s.calls.push(call.clone());
        if self.fail_at == Some(index) {
            return Err(nix::Error::EINVAL);
        }
        // Remounts and propagation changes carry no source: they add no layer.
        if call.source.is_some() {
            s.mounted.push(call.target.clone());
        }
        Ok(())
    }

    fn unmount(&self, target: &Path, _flags: MntFlags) -> nix::Result<()> {
        let mut s = self.state.lock().map_err(|_| nix::Error::EIO)?;
        let pos = s
            .mounted
            .iter()
            .rposition(|t| t == target)
            .ok_or(nix::Error::EINVAL)?;
        s.mounted.remove(pos);
        s.unmounts.push(target.to_path_buf());
        Ok(())
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

struct ParsedOptions {
    flags: MsFlags,
    propagation: MsFlags,
    data: Vec<String>,
}

fn parse_options(options: &[String]) -> ParsedOptions {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for opt in options {
        let (clear, flag) = match opt.as_str() {
            "defaults" => (false, MsFlags::empty()),
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "bind" => (false, MsFlags::MS_BIND),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            "suid" => (true, MsFlags::MS_NOSUID),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "dev" => (true, MsFlags::MS_NODEV),
            "nodev" => (false, MsFlags::MS_NODEV),
            "exec" => (true, MsFlags::MS_NOEXEC),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "async" => (true, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (false, MsFlags::MS_DIRSYNC),
            "remount" => (false, MsFlags::MS_REMOUNT),
            "mand" => (false, MsFlags::MS_MANDLOCK),
            "nomand" => (true, MsFlags::MS_MANDLOCK),
            "atime" => (true, MsFlags::MS_NOATIME),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "diratime" => (true, MsFlags::MS_NODIRATIME),
            "nodiratime" => (false, MsFlags::MS_NODIRATIME),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "norelatime" => (true, MsFlags::MS_RELATIME),
            "strictatime" => (false, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
            other => {
                let prop = match other {
                    "private" => MsFlags::MS_PRIVATE,
                    "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                    "shared" => MsFlags::MS_SHARED,
                    "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
                    "slave" => MsFlags::MS_SLAVE,
                    "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    "unbindable" => MsFlags::MS_UNBINDABLE,
                    "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
                    _ => {
                        data.push(other.to_owned());
                        MsFlags::empty()
                    }
                };
                propagation |= prop;
                continue;
            }
        };
        if clear {
            flags.remove(flag);
        } else {
            flags.insert(flag);
        }
    }
    ParsedOptions {
        flags,
        propagation,
        data,
    }
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
}

/// Rewrites `lowerdir=` to paths relative to the lowerdirs' common directory and
/// returns that directory, or `None` (nothing changed) when there is no useful one.
fn compact_lowerdir(data: &mut [String]) -> Option<PathBuf> {
    let opt = data.iter_mut().find(|o| o.starts_with("lowerdir="))?;
    let dirs: Vec<&Path> = opt["lowerdir=".len()..].split(':').map(Path::new).collect();
    if dirs.len() < 2 || !dirs.iter().all(|d| d.is_absolute()) {
        return None;
    }
    let mut common: PathBuf = dirs[0].parent()?.to_path_buf();
    while !dirs.iter().all(|d| d.starts_with(&common)) {
        common = common.parent()?.to_path_buf();
    }
    // Relative to "/" would gain nothing.
    common.parent()?;
    let rel: Vec<String> = dirs
        .iter()
        .map(|d| d.strip_prefix(&common).map(|r| r.display().to_string()))
        .collect::<Result<_, _>>()
        .ok()?;
    *opt = format!("lowerdir={}", rel.join(":"));
    Some(common)
}

#[cfg(test)]
#[path = "mount_tests.rs"]
mod tests;
