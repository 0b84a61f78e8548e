//! The namespaced operations: containerd's metadata snapshotter semantics.
//!
//! Errors as containerd's: Prepare/View of an existing key → AlreadyExists, of a missing
//! parent → NotFound; Commit to an existing name → AlreadyExists (checked first), of a
//! missing key → NotFound; Remove of a missing key → NotFound, of a snapshot with
//! children → FailedPrecondition; Stat/Mounts/Usage/Update of a missing key → NotFound.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::SystemTime;

use berth_snapshotter::{Kind, Labels, Mount, Snapshotter, Usage};

use super::{Result, SnapshotError, Snapshotters, new_backend_key};
use crate::filters::{self, Adaptor, Filter};
use crate::metadata::{self, SnapshotRecord, Snapshots, leases};

/// What is known about one namespaced snapshot (names are the namespace's keys).
pub type Info = berth_snapshotter::Info;

/// The filter view of an [`Info`]: fields `name`, `parent`, `kind`, `labels.<k>`.
struct Filterable<'a>(&'a Info);

impl Adaptor for Filterable<'_> {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        let (first, rest) = path.split_first()?;
        match (first.as_str(), rest) {
            ("name", []) => Some(Cow::Borrowed(&self.0.name)),
            ("parent", []) => Some(Cow::Borrowed(&self.0.parent)),
            ("kind", []) => Some(Cow::Borrowed(self.0.kind.as_str())),
            ("labels", rest) => filters::label(&self.0.labels, rest),
            _ => None,
        }
    }
}

/// The lease resource type of snapshotter `sn` (`snapshots/<sn>`).
pub(crate) fn lease_kind(sn: &str) -> String {
    format!("snapshots/{sn}")
}

fn not_found(key: &str) -> SnapshotError {
    SnapshotError::NotFound {
        key: key.to_owned(),
    }
}

/// The record of `key` in `records`; metadata's NotFound becomes `missing()`.
fn lookup(
    records: &Snapshots,
    key: &str,
    missing: impl FnOnce() -> SnapshotError,
) -> Result<SnapshotRecord> {
    match records.get(key) {
        Ok(r) => Ok(r),
        Err(metadata::Error::NotFound { .. }) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

/// The record of `key`, with metadata's NotFound turned into ours.
fn record(s: &Snapshotters, ns: &str, sn: &str, key: &str) -> Result<SnapshotRecord> {
    lookup(&s.db().snapshots(ns, sn), key, || not_found(key))
}

/// Fails with AlreadyExists when `key` (a new key or a commit's name) has a record.
fn ensure_new(records: &Snapshots, key: &str) -> Result<()> {
    match records.get(key) {
        Ok(_) => Err(SnapshotError::AlreadyExists {
            key: key.to_owned(),
        }),
        Err(metadata::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn check_labels(key: &str, labels: &Labels) -> Result<()> {
    crate::identifiers::validate_labels(labels).map_err(|source| SnapshotError::Labels {
        key: key.to_owned(),
        source,
    })
}

fn info_of(rec: SnapshotRecord, kind: Kind) -> Info {
    Info {
        name: rec.key,
        parent: rec.parent,
        kind,
        created_at: rec.created_at,
        updated_at: rec.updated_at,
        labels: rec.labels,
    }
}

impl Snapshotters {
    /// Creates active snapshot `key` on `parent` (empty: none) in namespace `ns`; with a
    /// lease, the snapshot becomes its resource. Returns the mounts.
    pub fn prepare(
        &self,
        ns: &str,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
        lease: Option<&str>,
    ) -> Result<Vec<Mount>> {
        self.create(ns, sn, key, parent, labels, lease, Kind::Active)
    }

    /// Creates read-only view `key` on `parent`; returns its mounts.
    pub fn view(
        &self,
        ns: &str,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
        lease: Option<&str>,
    ) -> Result<Vec<Mount>> {
        self.create(ns, sn, key, parent, labels, lease, Kind::View)
    }

    #[allow(clippy::too_many_arguments)] // the RPC's fields, one each
    fn create(
        &self,
        ns: &str,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
        lease: Option<&str>,
        kind: Kind,
    ) -> Result<Vec<Mount>> {
        if key.is_empty() {
            return Err(SnapshotError::invalid("snapshot key must not be empty"));
        }
        check_labels(key, &labels)?;
        let backend = self.backend(sn)?;
        let _shared = backend.shared();
        let records = self.db().snapshots(ns, sn);
        ensure_new(&records, key)?;
        let parent_key = if parent.is_empty() {
            String::new()
        } else {
            lookup(&records, parent, || SnapshotError::ParentNotFound {
                parent: parent.to_owned(),
            })?
            .backend_key
        };
        let backend_key = new_backend_key(ns, key);
        let b = &backend.snapshotter;
        let mounts = match kind {
            Kind::View => b.view(&backend_key, &parent_key, Labels::new()),
            _ => b.prepare(&backend_key, &parent_key, Labels::new()),
        }
        .map_err(SnapshotError::backend(sn))?;
        let now = SystemTime::now();
        let rec = SnapshotRecord {
            key: key.to_owned(),
            backend_key: backend_key.clone(),
            parent: parent.to_owned(),
            labels,
            created_at: now,
            updated_at: now,
        };
        let recorded = self.db().write(|txn| {
            records.insert_in(txn, &rec)?;
            if let Some(lease) = lease {
                leases::add_resource_in(txn, ns, lease, &lease_kind(sn), key)?;
            }
            Ok(())
        });
        if let Err(e) = recorded {
            if let Err(error) = b.remove(&backend_key) {
                tracing::warn!(%error, backend_key, "cannot undo backend snapshot");
            }
            return Err(match e {
                metadata::Error::AlreadyExists { .. } => SnapshotError::AlreadyExists {
                    key: key.to_owned(),
                },
                e => e.into(),
            });
        }
        Ok(mounts)
    }

    /// Runs `op` on the backend key of `key` under the backend's shared lock.
    fn on_backend_key<T>(
        &self,
        ns: &str,
        sn: &str,
        key: &str,
        op: impl FnOnce(&dyn Snapshotter, &str) -> Result<T, berth_snapshotter::Error>,
    ) -> Result<T> {
        let backend = self.backend(sn)?;
        let _shared = backend.shared();
        let rec = record(self, ns, sn, key)?;
        op(backend.snapshotter.as_ref(), &rec.backend_key).map_err(SnapshotError::backend(sn))
    }

    /// The mounts of active snapshot or view `key`.
    pub fn mounts(&self, ns: &str, sn: &str, key: &str) -> Result<Vec<Mount>> {
        self.on_backend_key(ns, sn, key, |b, backend_key| b.mounts(backend_key))
    }

    /// Commits active snapshot `key` as `name` with `labels` (the key is gone after).
    pub fn commit(
        &self,
        ns: &str,
        sn: &str,
        name: &str,
        key: &str,
        labels: Labels,
        lease: Option<&str>,
    ) -> Result<()> {
        if name.is_empty() {
            return Err(SnapshotError::invalid("snapshot name must not be empty"));
        }
        check_labels(name, &labels)?;
        let backend = self.backend(sn)?;
        let _shared = backend.shared();
        let records = self.db().snapshots(ns, sn);
        ensure_new(&records, name)?;
        let active = lookup(&records, key, || not_found(key))?;
        let backend_key = new_backend_key(ns, name);
        backend
            .snapshotter
            .commit(&backend_key, &active.backend_key, Labels::new())
            .map_err(SnapshotError::backend(sn))?;
        let now = SystemTime::now();
        let rec = SnapshotRecord {
            key: name.to_owned(),
            backend_key,
            parent: active.parent,
            labels,
            created_at: now,
            updated_at: now,
        };
        self.db().write(|txn| {
            records.remove_in(txn, key)?;
            records.insert_in(txn, &rec)?;
            if let Some(lease) = lease {
                leases::add_resource_in(txn, ns, lease, &lease_kind(sn), name)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Removes snapshot `key` (any kind) that has no children: its record, then the
    /// backend snapshot.
    pub fn remove(&self, ns: &str, sn: &str, key: &str) -> Result<()> {
        let backend_key = self.remove_record(ns, sn, key)?;
        self.remove_backend(sn, &backend_key);
        Ok(())
    }

    /// The durable half of [`Snapshotters::remove`]: deletes the record of `key` (which
    /// must have no children) and returns the backend key it named. From here on the
    /// snapshot is gone; its backend snapshot is an orphan until
    /// [`Snapshotters::remove_backend`] (or, after a crash, the collector's sweep)
    /// removes it.
    pub fn remove_record(&self, ns: &str, sn: &str, key: &str) -> Result<String> {
        let backend = self.backend(sn)?;
        let _shared = backend.shared();
        let records = self.db().snapshots(ns, sn);
        let all = records.list()?;
        if !all.iter().any(|r| r.key == key) {
            return Err(not_found(key));
        }
        if all.iter().any(|r| r.parent == key) {
            return Err(SnapshotError::HasChildren {
                key: key.to_owned(),
            });
        }
        let rec = match records.remove(key) {
            Ok(r) => r,
            Err(metadata::Error::NotFound { .. }) => return Err(not_found(key)),
            Err(e) => return Err(e.into()),
        };
        Ok(rec.backend_key)
    }

    /// Removes the backend snapshot a removed record named. Failures are logged, not
    /// returned: the record is gone, so the snapshot is, and the collector's sweep
    /// removes any orphan left (including one it already removed first).
    pub fn remove_backend(&self, sn: &str, backend_key: &str) {
        let Ok(backend) = self.backend(sn) else {
            return;
        };
        let _shared = backend.shared();
        match backend.snapshotter.remove(backend_key) {
            Ok(()) => {}
            Err(berth_snapshotter::Error::NotFound { .. }) => {
                tracing::debug!(backend_key, "backend snapshot already swept");
            }
            Err(error) => tracing::warn!(%error, backend_key, "backend remove failed"),
        }
    }

    /// What is known about `key`.
    pub fn stat(&self, ns: &str, sn: &str, key: &str) -> Result<Info> {
        let backend = self.backend(sn)?;
        let _shared = backend.shared();
        let rec = record(self, ns, sn, key)?;
        let kind = match backend.snapshotter.stat(&rec.backend_key) {
            Ok(i) => i.kind,
            Err(e) if e.kind() == berth_snapshotter::ErrorKind::NotFound => {
                return Err(not_found(key));
            }
            Err(e) => return Err(SnapshotError::backend(sn)(e)),
        };
        Ok(info_of(rec, kind))
    }

    /// Updates the labels of `info.name` by `paths` (containerd's rules: none or `labels`
    /// replaces the map, `labels.<k>` sets or removes one key, anything else is invalid).
    pub fn update(&self, ns: &str, sn: &str, info: Info, paths: &[String]) -> Result<Info> {
        let key = info.name.as_str();
        let backend = self.backend(sn)?;
        let _shared = backend.shared();
        let mut rec = record(self, ns, sn, key)?;
        if paths.is_empty() {
            rec.labels = info.labels.clone();
        }
        for path in paths {
            if path == "labels" {
                rec.labels = info.labels.clone();
            } else if let Some(k) = path.strip_prefix("labels.") {
                match info.labels.get(k).filter(|v| !v.is_empty()) {
                    Some(v) => rec.labels.insert(k.to_owned(), v.clone()),
                    None => rec.labels.remove(k),
                };
            } else {
                return Err(SnapshotError::InvalidField {
                    key: key.to_owned(),
                    path: path.clone(),
                });
            }
        }
        rec.labels.retain(|_, v| !v.is_empty());
        check_labels(key, &rec.labels)?;
        rec.updated_at = SystemTime::now();
        self.db().snapshots(ns, sn).put(&rec)?;
        drop(_shared);
        self.stat(ns, sn, key)
    }

    /// Every snapshot of namespace `ns` in `sn` that passes `filter`, by name.
    pub fn list(&self, ns: &str, sn: &str, filter: &Filter) -> Result<Vec<Info>> {
        let backend = self.backend(sn)?;
        let _shared = backend.shared();
        let records = self.db().snapshots(ns, sn).list()?;
        let kinds: HashMap<String, Kind> = backend
            .snapshotter
            .walk(&|_| true)
            .map_err(SnapshotError::backend(sn))?
            .into_iter()
            .map(|i| (i.name, i.kind))
            .collect();
        Ok(records
            .into_iter()
            .filter_map(|rec| {
                let kind = *kinds.get(&rec.backend_key)?;
                Some(info_of(rec, kind))
            })
            .filter(|info| filter.matches(&Filterable(info)))
            .collect())
    }

    /// Disk usage of `key`'s own layer.
    pub fn usage(&self, ns: &str, sn: &str, key: &str) -> Result<Usage> {
        self.on_backend_key(ns, sn, key, |b, backend_key| b.usage(backend_key))
    }

    /// Removes backend directories no backend snapshot references; returns how many.
    pub fn cleanup(&self, sn: &str) -> Result<usize> {
        let backend = self.backend(sn)?;
        let _shared = backend.shared();
        backend
            .snapshotter
            .cleanup()
            .map_err(SnapshotError::backend(sn))
    }
}
