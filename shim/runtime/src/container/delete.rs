//! `delete`: a stopped or created container (or any with `force`): kill what is left,
//! remove the cgroup, run poststop hooks (warnings only), remove the state dir.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{hook_state, load, run_warn_hooks, wait_gone};
use crate::cgroups::CgroupManager;
use crate::error::{Error, Result};
use crate::state::{RuntimeRoot, Status};

/// Sends SIGKILL (through `send`) to every process of the cgroup and to `init`, thawing
/// a paused cgroup first: a frozen task cannot act on the signal.
pub(crate) fn kill_all(cg: &dyn CgroupManager, paused: bool, init: i32, mut send: impl FnMut(i32)) {
    if paused {
        let _ = cg.freeze(false);
    }
    for p in cg.pids().unwrap_or_default() {
        send(p);
    }
    send(init);
}

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
        kill_all(
            l.cgroup.as_ref(),
            l.status == Status::Paused,
            l.rec.pid,
            |p| {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            },
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::{Fake, FakeCall};

    #[test]
    fn kill_all_thaws_first_and_kills_every_task() {
        let cg = Fake::default();
        cg.add_task(11).expect("add");
        cg.add_task(12).expect("add");
        cg.freeze(true).expect("freeze");
        let mut sent = Vec::new();
        kill_all(&cg, true, 10, |p| sent.push(p));
        assert_eq!(sent, vec![11, 12, 10]);
        assert_eq!(cg.calls().last(), Some(&FakeCall::Freeze(false)));
        assert!(!cg.is_frozen().expect("state"));
    }

    #[test]
    fn kill_all_leaves_a_running_cgroup_unthawed() {
        let cg = Fake::default();
        let mut sent = Vec::new();
        kill_all(&cg, false, 10, |p| sent.push(p));
        assert_eq!(sent, vec![10]);
        assert!(cg.calls().is_empty());
    }
}
