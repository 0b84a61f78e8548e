//! The `Snapshotter` role: containerd's snapshot model, synchronous.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::error::Result;
use crate::mount::Mount;

/// Labels of a snapshot (sorted, so listings are stable).
pub type Labels = BTreeMap<String, String>;

/// The state of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A read-only transaction on a committed parent; cannot be committed.
    View,
    /// A writable transaction; becomes committed through [`Snapshotter::commit`].
    Active,
    /// An immutable snapshot; the only kind that can be a parent.
    Committed,
}

impl Kind {
    /// Whether snapshots of this kind can be a parent.
    pub fn can_be_parent(self) -> bool {
        self == Kind::Committed
    }

    /// Whether [`Snapshotter::mounts`] answers for this kind.
    pub fn has_mounts(self) -> bool {
        matches!(self, Kind::View | Kind::Active)
    }

    /// containerd's name of the kind (`view`, `active`, `committed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }
}

/// What is known about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The key (active, view) or name (committed).
    pub name: String,
    /// The committed parent's name, or empty.
    pub parent: String,
    pub kind: Kind,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub labels: Labels,
}

/// Disk usage of a snapshot's own layer (not its parents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated (blocks × 512), each inode counted once.
    pub size: u64,
    /// Distinct inodes.
    pub inodes: u64,
}

/// A filter for [`Snapshotter::walk`]; `&|_| true` lists everything.
pub type Filter<'a> = &'a dyn Fn(&Info) -> bool;

/// A store of layered filesystems with containerd's snapshot semantics.
///
/// Lifecycle: `prepare` (or `view`) creates an active (or view) snapshot on top of an
/// optional committed parent and returns the mounts that assemble it; the caller mounts
/// them itself (they are plain Linux `bind`/`overlay` mounts of host paths). `commit`
/// turns an active snapshot into an immutable committed one under a new name, which can
/// then be the parent of others. `remove` deletes a snapshot without children.
///
/// Errors (by [`crate::ErrorKind`]), as containerd's:
/// - `prepare`/`view`: an existing key → AlreadyExists; a missing parent → NotFound; a
///   parent that is not committed → InvalidArgument; an empty key → InvalidArgument.
/// - `mounts`: missing → NotFound; a committed snapshot → FailedPrecondition.
/// - `commit`, checked in this order: the name exists (also when it equals the key) →
///   AlreadyExists; missing key → NotFound; key not active (a view or committed) →
///   FailedPrecondition.
/// - `remove`: missing → NotFound; has children → FailedPrecondition.
/// - `stat`/`usage`/`update`: missing → NotFound; `update` with an unknown field path →
///   InvalidArgument.
///
/// Every mutation is durable when it returns (the metastore commits synchronously); a
/// crash in the middle leaves at most unreferenced directories, which `cleanup` removes.
/// All methods are blocking; async callers use `spawn_blocking`.
pub trait Snapshotter: Send + Sync {
    /// Creates an active snapshot `key` on `parent` (empty: none); returns its mounts.
    fn prepare(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>>;

    /// Creates a read-only view `key` on `parent`; returns its (read-only) mounts.
    fn view(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>>;

    /// The mounts of an active snapshot or view; the same as `prepare`/`view` returned.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;

    /// Commits active snapshot `key` as `name` with `labels`; `key` no longer exists after.
    /// Records the layer's usage.
    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()>;

    /// Removes a snapshot of any kind that has no children, with its directory.
    fn remove(&self, key: &str) -> Result<()>;

    /// Information about the snapshot `key`.
    fn stat(&self, key: &str) -> Result<Info>;

    /// Updates the mutable fields of `info.name` (its labels) and returns the new info.
    ///
    /// `fieldpaths` as containerd: empty → the labels are replaced by `info.labels`;
    /// `labels` → the same; `labels.<k>` → only label `k` is set to `info.labels[k]`, or
    /// removed when that is absent or empty. Any other path → InvalidArgument.
    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info>;

    /// All snapshots for which `filter` holds, sorted by name.
    fn walk(&self, filter: Filter<'_>) -> Result<Vec<Info>>;

    /// Usage of the snapshot's own layer: recorded at commit for committed snapshots,
    /// measured now for active ones, zero for views.
    fn usage(&self, key: &str) -> Result<Usage>;

    /// Removes directories that no snapshot references (left by crashes or failed
    /// removals). Safe to call at any time; returns how many were removed.
    fn cleanup(&self) -> Result<usize>;
}
