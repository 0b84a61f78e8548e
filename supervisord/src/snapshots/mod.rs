//! The namespaced snapshot domain: containerd's metadata snapshotter over berth's
//! backends (`berth_snapshotter`).
//!
//! Every backend (`overlayfs`, the default, and `native`) is opened once at start under
//! the daemon root and knows only un-namespaced *backend keys*. A namespace's snapshot
//! `key` lives in the metadata store (`metadata::snapshots`, table `snapshots`), which maps
//! `(namespace, snapshotter, key)` to its backend key, its parent's user key, its labels
//! and times; so two namespaces may use the same key, and labels stay namespaced.
//!
//! ```text
//! <root>/
//! ├── io.containerd.snapshotter.v1.overlayfs/   backend (layout in berth_snapshotter::overlay)
//! └── io.containerd.snapshotter.v1.native/      backend (layout in berth_snapshotter::native)
//!
//! backend key = "<namespace>/<unix nanos>-<seq>/<key>"   (unique across restarts)
//! ```
//!
//! Consistency: each mutation creates the backend snapshot first and records it after
//! (undoing the backend step when the record fails), and removes the record first and the
//! backend snapshot after. A crash between leaves only backend snapshots no record names,
//! which garbage collection removes ([`Snapshotters::sweep`]). Operations on one backend
//! share its lock; the collector takes it exclusively, so it never sees half an operation.
//! Every method blocks: async callers use [`Snapshotters::run`].

mod error;
mod ops;
mod sweep;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_snapshotter::{NATIVE, OVERLAYFS, Snapshotter};

pub use error::SnapshotError;
pub use ops::Info;
pub use sweep::SweepStats;

use crate::metadata::Db;

/// The snapshotter `ctr` uses unless told otherwise.
pub const DEFAULT_SNAPSHOTTER: &str = OVERLAYFS;

/// Result with [`SnapshotError`].
pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

/// One opened backend and the lock that orders its operations against the collector.
pub(crate) struct Backend {
    pub(crate) snapshotter: Box<dyn Snapshotter>,
    lock: RwLock<()>,
}

impl Backend {
    pub(crate) fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.lock
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.lock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Every loaded snapshotter, by containerd's name. Cheap to clone.
#[derive(Clone)]
pub struct Snapshotters {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) backends: BTreeMap<String, Backend>,
}

impl std::fmt::Debug for Snapshotters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotters")
            .field("names", &self.names())
            .finish_non_exhaustive()
    }
}

impl Snapshotters {
    /// Opens `overlayfs` and `native` under `daemon_root`. overlayfs is skipped (with a
    /// warning) where the kernel or filesystem cannot mount it; native always opens.
    pub fn open(daemon_root: &Path, db: Db) -> Result<Self> {
        let mut backends: Vec<(String, Box<dyn Snapshotter>)> = Vec::new();
        // Both at once: opening a metastore after a kill -9 waits on the disk.
        let (overlay, native) = std::thread::scope(|s| {
            let overlay = s.spawn(|| berth_snapshotter::open_named(daemon_root, OVERLAYFS));
            let native = berth_snapshotter::open_named(daemon_root, NATIVE);
            (overlay.join(), native)
        });
        let overlay = overlay.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match overlay {
            Ok(s) => backends.push((OVERLAYFS.to_owned(), s)),
            Err(e) if e.kind() == berth_snapshotter::ErrorKind::FailedPrecondition => {
                tracing::warn!(error = %e, "overlayfs snapshotter not loaded");
            }
            Err(e) => return Err(SnapshotError::backend(OVERLAYFS)(e)),
        }
        let native = native.map_err(SnapshotError::backend(NATIVE))?;
        backends.push((NATIVE.to_owned(), native));
        Ok(Self::with_backends(db, backends))
    }

    /// Snapshotters over the given backends (tests, embedders).
    pub fn with_backends(db: Db, backends: Vec<(String, Box<dyn Snapshotter>)>) -> Self {
        let backends = backends
            .into_iter()
            .map(|(name, snapshotter)| {
                let b = Backend {
                    snapshotter,
                    lock: RwLock::new(()),
                };
                (name, b)
            })
            .collect();
        Self {
            inner: Arc::new(Inner { db, backends }),
        }
    }

    /// The loaded snapshotters' names.
    pub fn names(&self) -> Vec<String> {
        self.inner.backends.keys().cloned().collect()
    }

    /// The metadata store the records live in.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn backend(&self, name: &str) -> Result<&Backend> {
        if name.is_empty() {
            return Err(SnapshotError::MissingSnapshotter);
        }
        self.inner
            .backends
            .get(name)
            .ok_or_else(|| SnapshotError::NotLoaded {
                name: name.to_owned(),
            })
    }

    /// Run a blocking snapshot operation on a blocking thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshotters) -> Result<T> + Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(SnapshotError::Join)?
    }

    /// Snapshots.Remove: returns once the record delete is durable; the backend
    /// snapshot (its own metastore commit and directory) is removed right after, off
    /// the caller's path. A crash in between leaves an orphan the collector's sweep
    /// removes.
    pub async fn remove_answering_early(&self, ns: &str, sn: &str, key: &str) -> Result<()> {
        let (n, s, k) = (ns.to_owned(), sn.to_owned(), key.to_owned());
        let backend_key = self.run(move |me| me.remove_record(&n, &s, &k)).await?;
        let (me, sn) = (self.clone(), sn.to_owned());
        tokio::task::spawn_blocking(move || me.remove_backend(&sn, &backend_key));
        Ok(())
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A backend key no other snapshot has had: `<ns>/<nanos>-<seq>/<key>`.
pub(crate) fn new_backend_key(ns: &str, key: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{ns}/{nanos}-{seq}/{key}")
}
