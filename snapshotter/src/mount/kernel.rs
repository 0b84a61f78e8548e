//! The kernel side of mounting: the [`Mounter`] role, Linux and a recording fake.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags};

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
    /// A fake whose mount call number `index` (0-based) fails with EINVAL.
    pub fn failing_at(index: usize) -> Self {
        FakeMounter {
            fail_at: Some(index),
            ..FakeMounter::default()
        }
    }

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
