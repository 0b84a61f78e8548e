//! `delete`: a stopped or created container (or any with `force`): kill what is left,
//! remove the cgroup, run poststop hooks (warnings only), remove the state dir.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{hook_state, load, run_warn_hooks, wait_gone};
use crate::error::{Error, Result};
use crate::state::{RuntimeRoot, Status};

/// Deletes container `id`.
pub fn delete(root: &RuntimeRoot, id: &str, force: bool) -> Result<()> {
    let l = match load(root, id) {
        Ok(l) => l,
        Err(Error::State { .. }) if force => return root.remove_dir(id),
        Err(e) => return Err(e),
    };
    if !force && !l.status.can_delete() {
        return Err(Error::WrongState {
            id: id.to_owned(),
            status: l.status.to_string(),
            op: "delete",
        });
    }
    if l.status != Status::Stopped {
        if l.status == Status::Paused {
            let _ = l.cgroup.freeze(false);
        }
        for p in l.cgroup.pids().unwrap_or_default() {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let _ = kill(Pid::from_raw(l.rec.pid), Signal::SIGKILL);
        if !wait_gone(l.rec.pid, l.rec.pid_start, Duration::from_secs(10)) {
            return Err(Error::State {
                id: id.to_owned(),
                reason: "init did not die after SIGKILL".into(),
            });
        }
    }
    l.cgroup.remove().map_err(|source| Error::Cgroup {
        id: id.to_owned(),
        source,
    })?;
    let hooks = l.rec.config.hooks().clone().unwrap_or_default();
    if let Some(list) = hooks.poststop() {
        run_warn_hooks("poststop", id, list, &hook_state(&l.rec, Status::Stopped));
    }
    root.remove_dir(id)?;
    tracing::info!(id, "deleted");
    Ok(())
}
