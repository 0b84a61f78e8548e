//! The collector's side of the snapshot domain: remove backend snapshots that no record
//! names any more, children before parents.

use std::collections::HashSet;
use std::sync::RwLockWriteGuard;

use super::{Result, SnapshotError, Snapshotters};

/// What a backend sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Backend snapshots removed.
    pub removed: usize,
    /// Backend snapshots that could not be removed (logged; retried by the next run).
    pub failed: usize,
}

/// Exclusive hold of every backend: no snapshot operation runs while it lives.
pub struct ExclusiveGuard<'a> {
    _guards: Vec<RwLockWriteGuard<'a, ()>>,
}

impl Snapshotters {
    /// Takes every backend's lock exclusively (in name order, so two holders never
    /// deadlock).
    pub fn lock_all(&self) -> ExclusiveGuard<'_> {
        ExclusiveGuard {
            _guards: self
                .inner
                .backends
                .values()
                .map(|b| b.exclusive())
                .collect(),
        }
    }

    /// Removes from backend `sn` every snapshot no record names, leaves first. The caller
    /// holds [`Snapshotters::lock_all`].
    pub fn sweep(&self, _held: &ExclusiveGuard<'_>, sn: &str) -> Result<SweepStats> {
        let backend = self.backend(sn)?;
        let live = self.db().snapshot_backend_keys(sn)?;
        let all = backend
            .snapshotter
            .walk(&|_| true)
            .map_err(SnapshotError::backend(sn))?;
        let mut doomed: Vec<(String, String)> = all
            .iter()
            .filter(|i| !live.contains(&i.name))
            .map(|i| (i.name.clone(), i.parent.clone()))
            .collect();
        let mut present: HashSet<String> = all.into_iter().map(|i| i.name).collect();
        let mut stats = SweepStats::default();
        loop {
            // Parents of what still exists cannot go yet.
            let parents: HashSet<String> = doomed
                .iter()
                .filter(|(k, _)| present.contains(k))
                .map(|(_, p)| p.clone())
                .collect();
            let (leaves, rest): (Vec<_>, Vec<_>) =
                doomed.into_iter().partition(|(k, _)| !parents.contains(k));
            if leaves.is_empty() {
                stats.failed += rest.len();
                for (key, _) in &rest {
                    tracing::warn!(
                        snapshotter = sn,
                        backend_key = key,
                        "snapshot kept: it has children"
                    );
                }
                break;
            }
            for (key, _) in leaves {
                present.remove(&key);
                match backend.snapshotter.remove(&key) {
                    Ok(()) => stats.removed += 1,
                    Err(error) => {
                        stats.failed += 1;
                        tracing::warn!(%error, snapshotter = sn, backend_key = key, "gc: remove failed");
                    }
                }
            }
            doomed = rest;
            if doomed.is_empty() {
                break;
            }
        }
        if stats.removed > 0
            && let Err(error) = backend.snapshotter.cleanup()
        {
            tracing::warn!(%error, snapshotter = sn, "gc: cleanup failed");
        }
        Ok(stats)
    }
}
