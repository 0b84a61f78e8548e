//! The container verbs, one file each. Every verb loads the record from
//! `<root>/<id>/state.json`, derives the live status and acts; nothing here forks except
//! `create` and `exec` (see `process::create` for the process model).

pub mod create;
pub mod delete;
pub mod exec;
pub mod kill;
pub mod plan;
pub mod query;
pub mod start;

use std::os::fd::RawFd;
use std::path::PathBuf;

use oci_spec::runtime::Process;
use serde_json::json;

use crate::cgroups::{self, CgroupManager};
use crate::error::{Error, Result};
use crate::state::{ContainerRecord, RuntimeRoot, State, Status, process_alive};

/// Options of `create` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Where to write the init's host pid.
    pub pid_file: Option<PathBuf>,
    /// AF_UNIX socket receiving the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// Fds 3..3+N of the caller are passed to the container process.
    pub preserve_fds: i32,
    /// Use MS_MOVE + chroot instead of pivot_root (ramfs roots).
    pub no_pivot: bool,
    /// The init's stdin, stdout and stderr; `None`: the caller's fds 0, 1, 2 (the
    /// CLI). A caller that keeps serving from its own process (the shim) passes the
    /// container's here; its other descriptors are then closed in the forked
    /// processes (only the preserved ones stay). Ignored for a terminal.
    pub stdio: Option<[RawFd; 3]>,
}

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The process to run (args, env, cwd, user, capabilities...).
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// Informational for callers: the library never waits (the CLI does without `-d`).
    pub detach: bool,
    pub preserve_fds: i32,
}

/// A container as found on disk, with its live status.
pub(crate) struct Loaded {
    pub rec: ContainerRecord,
    pub status: Status,
    pub cgroup: Box<dyn CgroupManager>,
}

pub(crate) fn load(root: &RuntimeRoot, id: &str) -> Result<Loaded> {
    let rec = root.load(id)?;
    let cgroup = cgroups::open(&rec.cgroup_path).map_err(|source| Error::Cgroup {
        id: id.to_owned(),
        source,
    })?;
    let status = if !process_alive(rec.pid, rec.pid_start) {
        Status::Stopped
    } else if cgroup.is_frozen().unwrap_or(false) {
        Status::Paused
    } else if rec.started {
        Status::Running
    } else {
        Status::Created
    };
    Ok(Loaded {
        rec,
        status,
        cgroup,
    })
}

/// runc's `state` of a loaded container.
pub(crate) fn state_of(l: &Loaded) -> State {
    let r = &l.rec;
    State {
        oci_version: r.config.version().clone(),
        id: r.id.clone(),
        pid: if l.status == Status::Stopped {
            0
        } else {
            r.pid
        },
        status: l.status,
        bundle: r.bundle.clone(),
        rootfs: r.rootfs.clone(),
        created: r.created.clone(),
        owner: r.owner.clone(),
        annotations: r.annotations(),
    }
}

/// The OCI state JSON hooks get on stdin.
pub(crate) fn hook_state(rec: &ContainerRecord, status: Status) -> Vec<u8> {
    json!({
        "ociVersion": rec.config.version(),
        "id": rec.id,
        "status": status,
        "pid": rec.pid,
        "bundle": rec.bundle,
        "annotations": rec.annotations(),
    })
    .to_string()
    .into_bytes()
}

/// Runs hooks that only warn on failure (poststart, poststop).
pub(crate) fn run_warn_hooks(
    kind: &'static str,
    id: &str,
    hooks: &[oci_spec::runtime::Hook],
    state: &[u8],
) {
    // Each hook runs even if an earlier one failed.
    for h in hooks {
        if let Err((path, reason)) = crate::hooks::run(kind, std::slice::from_ref(h), state) {
            tracing::warn!(id, kind, path = %path.display(), reason, "hook failed");
        }
    }
}

/// Waits until `pid` (recorded with `start`) is gone or a zombie.
pub(crate) fn wait_gone(pid: i32, start: u64, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_micros(100);
    while process_alive(pid, start) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
    true
}

/// Reaps `pid` if it is our child (we are a subreaper and it was reparented to us):
/// an unreaped process inside a pid namespace keeps that namespace's init from exiting.
pub(crate) fn reap_if_child(pid: i32) {
    let ours = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.get(s.rfind(')')? + 2..)?.to_owned();
            after.split(' ').nth(1)?.parse::<i32>().ok()
        })
        .is_some_and(|ppid| ppid == std::process::id() as i32);
    if ours {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
}
