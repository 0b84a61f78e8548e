//! Snapshot records: `snapshots: (ns, snapshotter, key) -> SnapshotRecord`.
//!
//! The snapshotter backend (berth-snapshotter) keeps its own metastore of un-namespaced
//! backend keys; this table maps each namespace's user-visible key to that backend key,
//! so the same key can exist in two namespaces. The Snapshots service owns the protocol;
//! this view is only the record store it uses.

use std::collections::HashSet;
use std::time::SystemTime;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{decode, encode, time_ns};
use super::{Db, Error, Labels, WriteTxn, namespaces, schema, store};

/// One namespaced snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The user-visible key (or committed name) within the namespace.
    pub key: String,
    /// The key in the backend snapshotter.
    pub backend_key: String,
    /// The user-visible key of the parent, empty for none.
    pub parent: String,
    pub labels: Labels,
    #[serde(with = "time_ns")]
    pub created_at: SystemTime,
    #[serde(with = "time_ns")]
    pub updated_at: SystemTime,
}

/// The snapshot records of one namespace and snapshotter.
#[derive(Debug, Clone)]
pub struct Snapshots {
    db: Db,
    ns: String,
    snapshotter: String,
}

fn not_found(key: &str) -> Error {
    Error::NotFound {
        kind: "snapshot",
        id: key.to_owned(),
    }
}

impl Snapshots {
    pub(super) fn new(db: Db, ns: &str, snapshotter: &str) -> Self {
        Self {
            db,
            ns: ns.into(),
            snapshotter: snapshotter.into(),
        }
    }

    pub fn get(&self, key: &str) -> Result<SnapshotRecord, Error> {
        self.db.read(|txn| {
            let t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
            let v = t
                .get((self.ns.as_str(), self.snapshotter.as_str(), key))
                .map_err(store)?
                .ok_or_else(|| not_found(key))?;
            decode(key, v.value())
        })
    }

    /// Insert a new record inside `txn` (`AlreadyExists` if the key is taken), so the
    /// caller can pair it with its lease bookkeeping in one transaction.
    pub fn insert_in(&self, txn: &WriteTxn, rec: &SnapshotRecord) -> Result<(), Error> {
        namespaces::ensure(txn, &self.ns)?;
        let mut t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
        let key = (
            self.ns.as_str(),
            self.snapshotter.as_str(),
            rec.key.as_str(),
        );
        if t.get(key).map_err(store)?.is_some() {
            return Err(Error::AlreadyExists {
                kind: "snapshot",
                id: rec.key.clone(),
            });
        }
        t.insert(key, encode(&rec.key, rec)?.as_slice())
            .map_err(store)?;
        Ok(())
    }

    /// Insert a new record in its own transaction.
    pub fn insert(&self, rec: &SnapshotRecord) -> Result<(), Error> {
        self.db.write(|txn| self.insert_in(txn, rec))
    }

    /// Replace an existing record.
    pub fn put(&self, rec: &SnapshotRecord) -> Result<(), Error> {
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
            let key = (
                self.ns.as_str(),
                self.snapshotter.as_str(),
                rec.key.as_str(),
            );
            if t.get(key).map_err(store)?.is_none() {
                return Err(not_found(&rec.key));
            }
            t.insert(key, encode(&rec.key, rec)?.as_slice())
                .map_err(store)?;
            Ok(())
        })
    }

    /// Remove a record, returning it; `NotFound` if missing.
    pub fn remove(&self, key: &str) -> Result<SnapshotRecord, Error> {
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
            let old = t
                .remove((self.ns.as_str(), self.snapshotter.as_str(), key))
                .map_err(store)?
                .ok_or_else(|| not_found(key))?;
            decode(key, old.value())
        })
    }

    /// Remove the record `key` inside `txn`, so the caller can pair it with other writes
    /// in one transaction; whether there was one.
    pub fn remove_in(&self, txn: &WriteTxn, key: &str) -> Result<bool, Error> {
        let mut t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
        let old = t
            .remove((self.ns.as_str(), self.snapshotter.as_str(), key))
            .map_err(store)?;
        Ok(old.is_some())
    }

    /// Every record of this namespace and snapshotter, by key.
    pub fn list(&self) -> Result<Vec<SnapshotRecord>, Error> {
        self.db.read(|txn| {
            let t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
            let (ns, sn) = (self.ns.as_str(), self.snapshotter.as_str());
            let mut out = Vec::new();
            for entry in t.range((ns, sn, "")..).map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let (kns, ksn, key) = k.value();
                if kns != ns || ksn != sn {
                    break;
                }
                out.push(decode(key, v.value())?);
            }
            Ok(out)
        })
    }
}

impl Db {
    /// The backend keys of every record of snapshotter `snapshotter`, in every namespace.
    pub fn snapshot_backend_keys(&self, snapshotter: &str) -> Result<HashSet<String>, Error> {
        self.read(|txn| {
            let t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
            let mut out = HashSet::new();
            for entry in t.iter().map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let (_, sn, key) = k.value();
                if sn != snapshotter {
                    continue;
                }
                let rec: SnapshotRecord = decode(key, v.value())?;
                out.insert(rec.backend_key);
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    fn rec(key: &str) -> SnapshotRecord {
        SnapshotRecord {
            key: key.into(),
            backend_key: format!("backend-{key}"),
            parent: String::new(),
            labels: Labels::new(),
            created_at: SystemTime::now(),
            updated_at: SystemTime::now(),
        }
    }

    #[test]
    fn records_are_namespaced_per_snapshotter() {
        let (_d, db) = testutil::db();
        let s = db.snapshots("ns", "overlayfs");
        s.insert(&rec("k1")).expect("insert");
        assert!(matches!(
            s.insert(&rec("k1")),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(matches!(
            db.snapshots("ns", "native").get("k1"),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            db.snapshots("ns2", "overlayfs").get("k1"),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(s.get("k1").expect("get").backend_key, "backend-k1");
        assert!(matches!(
            db.namespaces().delete("ns"),
            Err(Error::FailedPrecondition(m)) if m.ends_with("still has snapshots")
        ));
        assert_eq!(s.list().expect("list").len(), 1);
        db.snapshots("ns2", "overlayfs")
            .insert(&rec("k2"))
            .expect("insert");
        db.snapshots("ns", "native")
            .insert(&rec("k3"))
            .expect("insert");
        assert_eq!(
            db.snapshot_backend_keys("overlayfs").expect("backend keys"),
            HashSet::from(["backend-k1".to_owned(), "backend-k2".to_owned()])
        );
        let removed = db
            .write(|txn| db.snapshots("ns", "native").remove_in(txn, "k3"))
            .expect("remove_in");
        assert!(removed);
        let removed = db
            .write(|txn| db.snapshots("ns", "native").remove_in(txn, "k3"))
            .expect("remove_in again");
        assert!(!removed);
        s.remove("k1").expect("remove");
        assert!(matches!(s.remove("k1"), Err(Error::NotFound { .. })));
    }
}
