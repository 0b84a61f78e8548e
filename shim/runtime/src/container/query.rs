//! The small verbs: `state`, `list`, `ps`, `pause`, `resume`, `stats`, `update`.

use oci_spec::runtime::LinuxResources;

use super::{load, state_of};
use crate::cgroups::Stats;
use crate::error::{Error, Result};
use crate::state::{RuntimeRoot, State, Status};

/// runc's state of container `id`.
pub fn state(root: &RuntimeRoot, id: &str) -> Result<State> {
    Ok(state_of(&load(root, id)?))
}

/// States of every container under `root`, sorted by id.
pub fn list(root: &RuntimeRoot) -> Result<Vec<State>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        match load(root, &id) {
            Ok(l) => out.push(state_of(&l)),
            Err(e) => tracing::warn!(id, error = %e, "skipping unreadable container"),
        }
    }
    Ok(out)
}

/// Host pids of every process in the container's cgroup.
pub fn ps(root: &RuntimeRoot, id: &str) -> Result<Vec<i32>> {
    let l = load(root, id)?;
    l.cgroup.pids().map_err(|source| Error::Cgroup {
        id: id.to_owned(),
        source,
    })
}

/// Freezes a running container.
pub fn pause(root: &RuntimeRoot, id: &str) -> Result<()> {
    let l = load(root, id)?;
    if !l.status.is_running() {
        return Err(Error::WrongState {
            id: id.to_owned(),
            status: l.status.to_string(),
            op: "pause",
        });
    }
    l.cgroup.freeze(true).map_err(|source| Error::Cgroup {
        id: id.to_owned(),
        source,
    })
}

/// Thaws a paused container.
pub fn resume(root: &RuntimeRoot, id: &str) -> Result<()> {
    let l = load(root, id)?;
    if l.status != Status::Paused {
        return Err(Error::WrongState {
            id: id.to_owned(),
            status: l.status.to_string(),
            op: "resume",
        });
    }
    l.cgroup.freeze(false).map_err(|source| Error::Cgroup {
        id: id.to_owned(),
        source,
    })
}

/// Cgroup statistics of container `id`.
pub fn stats(root: &RuntimeRoot, id: &str) -> Result<Stats> {
    let l = load(root, id)?;
    l.cgroup.stats().map_err(|source| Error::Cgroup {
        id: id.to_owned(),
        source,
    })
}

/// Writes new resource limits to container `id`'s cgroup.
pub fn update(root: &RuntimeRoot, id: &str, resources: &LinuxResources) -> Result<()> {
    let l = load(root, id)?;
    if l.status == Status::Stopped {
        return Err(Error::WrongState {
            id: id.to_owned(),
            status: l.status.to_string(),
            op: "update",
        });
    }
    l.cgroup.update(resources).map_err(|source| Error::Cgroup {
        id: id.to_owned(),
        source,
    })
}
