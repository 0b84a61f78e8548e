//! Garbage collection of content, snapshots and ingests, as containerd's metadata GC.
//!
//! Mark and sweep over the metadata store ([`records`]): the roots are images (their
//! target), containers (their snapshot), unexpired leases (`containerd.io/gc.expire`) and
//! their resources, and objects labelled `containerd.io/gc.root`; references are
//! `containerd.io/gc.ref.content*` and `containerd.io/gc.ref.snapshot.<snapshotter>` labels
//! and snapshot parents ([`mark`]). One write transaction marks and deletes the
//! unreachable content and snapshot records; then, with every snapshotter held
//! exclusively, the backend snapshots no record names are removed (children first), then
//! blob files no namespace references, unleased ingests and stray ingest directories.
//!
//! [`Gc`] is the handle services hold: [`Gc::schedule`] asks for a collection soon
//! (debounced by [`DEBOUNCE`], never blocking the caller), [`Gc::collect`] runs one now and
//! waits (a `sync` delete). [`spawn`] starts the collector task, which also runs once at
//! start.

pub mod hooks;
pub mod mark;
pub mod records;

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::content::{ContentError, ContentStore, Digest, LocalStore};
use crate::metadata::{self, Db};
use crate::snapshots::{SnapshotError, Snapshotters, SweepStats};

/// How long a scheduled collection waits for more deletes to batch with.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("gc: metadata")]
    Metadata(#[from] metadata::Error),
    #[error("gc: snapshots")]
    Snapshots(#[from] SnapshotError),
    #[error("gc: content")]
    Content(#[from] ContentError),
    #[error("gc: the collector is not running")]
    Stopped,
    #[error("gc: {0}")]
    Failed(String),
}

impl berth_api::HasKind for GcError {
    fn kind(&self) -> berth_api::ErrorKind {
        match self {
            GcError::Stopped => berth_api::ErrorKind::Unavailable,
            _ => berth_api::ErrorKind::Internal,
        }
    }
}

/// What one collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Content records deleted (per namespace).
    pub content: usize,
    /// Blob files deleted (no namespace referenced them any more).
    pub blobs: usize,
    /// Snapshot records deleted.
    pub snapshots: usize,
    /// Backend snapshots removed (records swept now and orphans of earlier crashes).
    pub backend_snapshots: usize,
    /// Ingests aborted plus stray ingest directories removed.
    pub ingests: usize,
    pub duration: Duration,
}

/// What a collection works on. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Collector {
    db: Db,
    content: LocalStore,
    snapshots: Snapshotters,
}

impl Collector {
    pub fn new(db: Db, content: LocalStore, snapshots: Snapshotters) -> Self {
        Self {
            db,
            content,
            snapshots,
        }
    }

    /// One full collection.
    pub async fn run(&self) -> Result<Stats, GcError> {
        let started = Instant::now();
        let (db, snapshots) = (self.db.clone(), self.snapshots.clone());
        let (swept, backend) = tokio::task::spawn_blocking(move || {
            let held = snapshots.lock_all();
            let swept = records::sweep_records(&db, SystemTime::now())?;
            let mut backend = SweepStats::default();
            for sn in snapshots.names() {
                let s = snapshots.sweep(&held, &sn)?;
                backend.removed += s.removed;
                backend.failed += s.failed;
            }
            Ok::<_, GcError>((swept, backend))
        })
        .await
        .map_err(|e| GcError::Failed(format!("collector task: {e}")))??;

        let mut stats = Stats {
            content: swept.content.len(),
            snapshots: swept.snapshots.len(),
            backend_snapshots: backend.removed,
            ..Stats::default()
        };
        let mut digests: Vec<&String> = swept.content.iter().map(|(_, d)| d).collect();
        digests.sort();
        digests.dedup();
        for d in digests {
            let Ok(digest) = Digest::parse(d) else {
                continue;
            };
            if self.content.remove_blob_if_unreferenced(&digest).await? {
                stats.blobs += 1;
            }
        }
        for (ns, reference) in &swept.ingests {
            match self.content.abort(ns, reference).await {
                Ok(()) => stats.ingests += 1,
                // Held by a writer right now, or gone already: not ours to remove.
                Err(e) => tracing::debug!(ns, reference, error = %e, "gc: ingest kept"),
            }
        }
        stats.ingests += self.content.remove_stray_ingests().await?;
        stats.duration = started.elapsed();
        Ok(stats)
    }
}

enum Msg {
    Schedule,
    Collect(oneshot::Sender<Result<Stats, String>>),
}

/// The handle to the collector task. Cheap to clone; [`Gc::disabled`] does nothing.
#[derive(Debug, Clone)]
pub struct Gc {
    tx: Option<mpsc::UnboundedSender<Msg>>,
}

impl Gc {
    /// A handle that never collects (services built without a collector, tests).
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// Ask for a collection soon; returns at once.
    pub fn schedule(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Schedule);
        }
    }

    /// Run a collection now (batched with any pending one) and wait for it.
    pub async fn collect(&self) -> Result<Stats, GcError> {
        let tx = self.tx.as_ref().ok_or(GcError::Stopped)?;
        let (done, wait) = oneshot::channel();
        tx.send(Msg::Collect(done)).map_err(|_| GcError::Stopped)?;
        wait.await
            .map_err(|_| GcError::Stopped)?
            .map_err(GcError::Failed)
    }
}

/// Start the collector task (inside a tokio runtime); it collects once right away, then
/// whenever asked. It ends when every [`Gc`] handle is dropped; the returned join handle
/// lets the daemon wait for that (the collector holds the metadata database open).
pub fn spawn(collector: Collector) -> (Gc, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(Msg::Schedule);
    let task = tokio::spawn(run_loop(collector, rx));
    (Gc { tx: Some(tx) }, task)
}

async fn run_loop(collector: Collector, mut rx: mpsc::UnboundedReceiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut waiters = Vec::new();
        let mut urgent = false;
        if let Msg::Collect(w) = first {
            waiters.push(w);
            urgent = true;
        }
        // Batch what arrives within the debounce window; a waiter ends the wait.
        let deadline = tokio::time::Instant::now() + DEBOUNCE;
        while !urgent {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Msg::Collect(w))) => {
                    waiters.push(w);
                    urgent = true;
                }
                Ok(Some(Msg::Schedule)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Collect(w) = msg {
                waiters.push(w);
            }
        }
        let result = collector.run().await;
        match &result {
            Ok(stats) => tracing::info!(
                content = stats.content,
                blobs = stats.blobs,
                snapshots = stats.snapshots,
                backend_snapshots = stats.backend_snapshots,
                ingests = stats.ingests,
                duration_ms = u64::try_from(stats.duration.as_millis()).unwrap_or(u64::MAX),
                "gc done"
            ),
            Err(error) => tracing::error!(error = %crate::error::Chain(error), "gc failed"),
        }
        let shared = result.map_err(|e| crate::error::chain(&e));
        for w in waiters {
            let _ = w.send(shared.clone());
        }
    }
}

#[cfg(test)]
mod tests;
