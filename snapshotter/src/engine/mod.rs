//! The logic both backends share: records, directories, crash-safe creation and removal.
//!
//! A backend only says how a new snapshot directory is filled ([`Backend::populate`])
//! and which mounts assemble a snapshot ([`Backend::mounts`]). Creation fills a temporary
//! `snapshots/new-*` directory first, then, inside one metastore transaction, records the
//! snapshot and renames the directory to `snapshots/<id>`; removal deletes the record
//! first and the directory after. A crash at any point leaves only directories no record
//! names, which [`Snapshotter::cleanup`] removes.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

mod delegate;
mod labels;

pub(crate) use delegate::delegate_snapshotter;

use crate::error::{Error, Result};
use crate::metastore::{Metastore, Record, record_now_ns};
use crate::mount::Mount;
use crate::snapshotter::{Filter, Info, Kind, Labels, Snapshotter, Usage};
use crate::usage::disk_usage;
use labels::{apply_update, check_labels};

/// The directory holding one directory per snapshot.
pub(crate) const SNAPSHOTS_DIR: &str = "snapshots";
/// The layer inside a snapshot directory.
pub(crate) const FS_DIR: &str = "fs";
/// overlayfs' work directory inside an active snapshot's directory.
pub(crate) const WORK_DIR: &str = "work";
const NEW_PREFIX: &str = "new-";
const REMOVING_PREFIX: &str = "rm-";

/// Paths of a snapshotter root.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    snapshots: PathBuf,
}

impl Layout {
    #[cfg(test)]
    pub(crate) fn for_tests(snapshots: PathBuf) -> Self {
        Layout { snapshots }
    }

    pub(crate) fn dir(&self, id: u64) -> PathBuf {
        self.snapshots.join(id.to_string())
    }

    pub(crate) fn fs(&self, id: u64) -> PathBuf {
        self.dir(id).join(FS_DIR)
    }

    pub(crate) fn work(&self, id: u64) -> PathBuf {
        self.dir(id).join(WORK_DIR)
    }
}

/// What differs between backends.
pub(crate) trait Backend: Send + Sync {
    /// Fills the new snapshot directory `dir` for a snapshot of `kind` whose parent's
    /// layer is `parent_fs`.
    fn populate(&self, dir: &Path, kind: Kind, parent_fs: Option<&Path>) -> Result<()>;

    /// The mounts of snapshot `id` of `kind` with ancestors `parent_ids` (nearest first).
    fn mounts(&self, layout: &Layout, id: u64, kind: Kind, parent_ids: &[u64]) -> Vec<Mount>;
}

/// A snapshotter: a metastore, a directory tree and a backend.
pub(crate) struct Engine<B> {
    layout: Layout,
    db: Metastore,
    backend: B,
    /// Held shared by every operation that creates or removes directories and
    /// exclusively by `cleanup`, so cleanup never takes a directory being created.
    gate: RwLock<()>,
}

impl<B: Backend> Engine<B> {
    pub(crate) fn open(root: &Path, backend: B) -> Result<Self> {
        let snapshots = root.join(SNAPSHOTS_DIR);
        create_private_dir(&snapshots)?;
        let db = Metastore::open(root)?;
        Ok(Engine {
            layout: Layout { snapshots },
            db,
            backend,
            gate: RwLock::new(()),
        })
    }

    fn create(&self, kind: Kind, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        check_name(key)?;
        check_labels(&labels)?;
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        // Fail fast, before any copying; the transaction checks again.
        if self.db.get(key)?.is_some() {
            return Err(Error::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let parent_fs = match parent {
            "" => None,
            _ => Some(
                self.layout
                    .fs(committed_parent(self.db.get(parent)?, key, parent)?.id),
            ),
        };
        let temp = self.layout.snapshots.join(unique_name(NEW_PREFIX));
        fs::create_dir(&temp).map_err(Error::io("create", &temp))?;
        let mut moved = None;
        let result = self
            .backend
            .populate(&temp, kind, parent_fs.as_deref())
            .and_then(|()| {
                self.db.write(|t| {
                    if t.get(key)?.is_some() {
                        return Err(Error::AlreadyExists {
                            key: key.to_owned(),
                        });
                    }
                    let parent_ids = match parent {
                        "" => Vec::new(),
                        _ => {
                            committed_parent(t.get(parent)?, key, parent)?;
                            t.parent_ids(parent)?
                        }
                    };
                    let id = t.next_id()?;
                    t.put(key, &Record::new(id, kind, parent, labels))?;
                    let dest = self.layout.dir(id);
                    if dest.exists() {
                        // Left by a crash between rename and commit: no record names it.
                        tracing::warn!(path = %dest.display(), "removing stale snapshot dir");
                        fs::remove_dir_all(&dest).map_err(Error::io("remove", &dest))?;
                    }
                    fs::rename(&temp, &dest).map_err(Error::io("rename", &temp))?;
                    moved = Some(dest);
                    Ok(self.backend.mounts(&self.layout, id, kind, &parent_ids))
                })
            });
        if result.is_err() {
            for dir in std::iter::once(temp).chain(moved) {
                if dir.exists()
                    && let Err(e) = fs::remove_dir_all(&dir)
                {
                    tracing::warn!(path = %dir.display(), error = %e, "cannot remove");
                }
            }
        }
        result
    }
}

/// Creates `dir` (and missing parents) with mode 0700, as containerd does for its
/// snapshotter roots: image layers may hold set-id binaries that other users must not
/// reach. An existing directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io("create", dir))
}

fn check_name(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("snapshot key must not be empty"));
    }
    Ok(())
}

fn committed_parent(rec: Option<Record>, key: &str, parent: &str) -> Result<Record> {
    let rec = rec.ok_or_else(|| Error::ParentNotFound {
        key: key.to_owned(),
        parent: parent.to_owned(),
    })?;
    if !rec.kind.can_be_parent() {
        return Err(Error::ParentNotCommitted {
            key: key.to_owned(),
            parent: parent.to_owned(),
        });
    }
    Ok(rec)
}

/// containerd's order of checks for a commit: the name is free (even of the key
/// itself), the key exists, the key is active.
fn active_for_commit(
    existing: Option<Record>,
    rec: Option<Record>,
    name: &str,
    key: &str,
) -> Result<Record> {
    if existing.is_some() {
        return Err(Error::AlreadyExists {
            key: name.to_owned(),
        });
    }
    let rec = rec.ok_or_else(|| Error::NotFound {
        key: key.to_owned(),
    })?;
    if rec.kind != Kind::Active {
        return Err(Error::NotActive {
            key: key.to_owned(),
        });
    }
    Ok(rec)
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{}-{n}", std::process::id(), record_now_ns())
}

fn remove_dir_logged(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        tracing::warn!(path = %dir.display(), error = %e, "cannot remove; cleanup will retry");
    }
}

impl<B: Backend> Snapshotter for Engine<B> {
    fn prepare(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::Active, key, parent, labels)
    }

    fn view(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>> {
        self.create(Kind::View, key, parent, labels)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let (rec, parent_ids) = self.db.resolve(key)?;
        if !rec.kind.has_mounts() {
            return Err(Error::NotActiveOrView {
                key: key.to_owned(),
            });
        }
        Ok(self
            .backend
            .mounts(&self.layout, rec.id, rec.kind, &parent_ids))
    }

    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        check_name(name)?;
        check_labels(&labels)?;
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        // Checked before measuring usage, and again in the transaction.
        let rec = active_for_commit(self.db.get(name)?, self.db.get(key)?, name, key)?;
        let usage = disk_usage(&self.layout.fs(rec.id))?;
        self.db.write(|t| {
            let rec = active_for_commit(t.get(name)?, t.get(key)?, name, key)?;
            t.delete(key, &rec)?;
            let mut committed = Record::new(rec.id, Kind::Committed, &rec.parent, labels);
            committed.size = usage.size;
            committed.inodes = usage.inodes;
            t.put(name, &committed)
        })?;
        tracing::debug!(key, name, id = rec.id, "committed snapshot");
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<()> {
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let id = self.db.write(|t| {
            let rec = t.require(key)?;
            if t.has_children(key)? {
                return Err(Error::HasChildren {
                    key: key.to_owned(),
                });
            }
            t.delete(key, &rec)?;
            Ok(rec.id)
        })?;
        let dir = self.layout.dir(id);
        let doomed = self.layout.snapshots.join(format!("{REMOVING_PREFIX}{id}"));
        match fs::rename(&dir, &doomed) {
            Ok(()) => remove_dir_logged(&doomed),
            Err(e) => tracing::warn!(path = %dir.display(), error = %e, "cannot move away"),
        }
        tracing::debug!(key, id, "removed snapshot");
        Ok(())
    }

    fn stat(&self, key: &str) -> Result<Info> {
        let rec = self.db.get(key)?.ok_or_else(|| Error::NotFound {
            key: key.to_owned(),
        })?;
        Ok(rec.info(key))
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        check_labels(&info.labels)?;
        let key = info.name.as_str();
        self.db.write(|t| {
            let mut rec = t.require(key)?;
            apply_update(&mut rec.labels, &info.labels, fieldpaths)?;
            rec.updated_ns = record_now_ns();
            t.put(key, &rec)?;
            Ok(rec.info(key))
        })
    }

    fn walk(&self, filter: Filter<'_>) -> Result<Vec<Info>> {
        Ok(self
            .db
            .all()?
            .into_iter()
            .map(|(key, rec)| rec.info(&key))
            .filter(|info| filter(info))
            .collect())
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        let rec = self.db.get(key)?.ok_or_else(|| Error::NotFound {
            key: key.to_owned(),
        })?;
        match rec.kind {
            Kind::Committed => Ok(rec.usage()),
            Kind::Active => disk_usage(&self.layout.fs(rec.id)),
            Kind::View => Ok(Usage::default()),
        }
    }

    fn cleanup(&self) -> Result<usize> {
        let _exclusive = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let ids: HashSet<String> = self
            .db
            .all()?
            .into_iter()
            .map(|(_, rec)| rec.id.to_string())
            .collect();
        let dir = &self.layout.snapshots;
        let mut removed = 0;
        for entry in fs::read_dir(dir).map_err(Error::io("read", dir))? {
            let entry = entry.map_err(Error::io("read", dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if ids.contains(&name) {
                continue;
            }
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing unreferenced snapshot dir");
            let res = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            res.map_err(Error::io("remove", &path))?;
            removed += 1;
        }
        Ok(removed)
    }
}
