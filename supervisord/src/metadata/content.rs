//! Content records: which blobs and ingests each namespace can see
//! (`content` and `content_ingests` in the table tree of the module doc).
//!
//! Blobs live once on disk, shared by every namespace (`crate::content` draws that
//! layout); a namespace sees a blob only through its record here, as in containerd.
//!
//! ```text
//! content          (ns, "sha256:<hex>") -> BlobRecord   {size, created_at, updated_at, labels}
//! content_ingests  (ns, ref)            -> IngestRecord {backend_ref, shared?{digest, size}}
//! ```
//!
//! `backend_ref` names the ingest on disk (`<ns>/<nanos>/<ref>`), so two namespaces writing
//! the same ref never share bytes. `shared` is set while a writer links a blob that is
//! already on disk from another namespace: nothing is written, the commit only adds the
//! record. GC: a blob file is live while any namespace has a record of it or a shared
//! ingest names it ([`Db::content_blob_referenced`]); an ingest directory is live while a
//! record's `backend_ref` names it ([`Db::content_ingest_backend_refs`]).

use std::time::{SystemTime, UNIX_EPOCH};

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{decode, encode, time_ns};
use super::{Db, Error, Labels, leases, namespaces, schema, store};

/// One namespace's record of a committed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: u64,
    #[serde(with = "time_ns")]
    pub created_at: SystemTime,
    #[serde(with = "time_ns")]
    pub updated_at: SystemTime,
    #[serde(default)]
    pub labels: Labels,
}

/// One namespace's in-progress write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestRecord {
    /// The on-disk ingest's ref.
    pub backend_ref: String,
    /// Set while the writer links a blob that is already on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedBlob>,
}

/// A blob on disk that an ingest links instead of writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedBlob {
    pub digest: String,
    pub size: u64,
}

/// What [`ContentRecords::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Created(BlobRecord),
    /// The namespace already had a record of the digest (left unchanged).
    AlreadyExists,
}

/// The content records of one namespace.
#[derive(Debug, Clone)]
pub struct ContentRecords {
    db: Db,
    ns: String,
}

impl Db {
    /// The content records of namespace `ns`.
    pub fn content(&self, ns: &str) -> ContentRecords {
        ContentRecords {
            db: self.clone(),
            ns: ns.to_owned(),
        }
    }

    /// Does any namespace hold a record of `digest`, or a shared ingest linking it?
    /// (A blob file nothing references may be removed.)
    pub fn content_blob_referenced(&self, digest: &str) -> Result<bool, Error> {
        self.read(|txn| {
            let blobs = txn.open_table(schema::CONTENT).map_err(store)?;
            for entry in blobs.iter().map_err(store)? {
                if entry.map_err(store)?.0.value().1 == digest {
                    return Ok(true);
                }
            }
            let ingests = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            for entry in ingests.iter().map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let rec: IngestRecord = decode(k.value().1, v.value())?;
                if rec.shared.is_some_and(|s| s.digest == digest) {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    /// Every digest some namespace records or a shared ingest links, once.
    pub fn content_referenced_digests(&self) -> Result<std::collections::BTreeSet<String>, Error> {
        self.read(|txn| {
            let mut out = std::collections::BTreeSet::new();
            let blobs = txn.open_table(schema::CONTENT).map_err(store)?;
            for entry in blobs.iter().map_err(store)? {
                out.insert(entry.map_err(store)?.0.value().1.to_owned());
            }
            let ingests = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            for entry in ingests.iter().map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let rec: IngestRecord = decode(k.value().1, v.value())?;
                if let Some(s) = rec.shared {
                    out.insert(s.digest);
                }
            }
            Ok(out)
        })
    }

    /// Every `(namespace, digest)` with a blob record (GC marks these reachable or not).
    pub fn content_all_blobs(&self) -> Result<Vec<(String, String)>, Error> {
        self.read(|txn| {
            let blobs = txn.open_table(schema::CONTENT).map_err(store)?;
            let mut out = Vec::new();
            for entry in blobs.iter().map_err(store)? {
                let (k, _) = entry.map_err(store)?;
                let (ns, d) = k.value();
                out.push((ns.to_owned(), d.to_owned()));
            }
            Ok(out)
        })
    }

    /// The backend refs of every ingest record, in every namespace.
    pub fn content_ingest_backend_refs(&self) -> Result<Vec<String>, Error> {
        self.read(|txn| {
            let t = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let rec: IngestRecord = decode(k.value().1, v.value())?;
                out.push(rec.backend_ref);
            }
            Ok(out)
        })
    }
}

impl ContentRecords {
    /// The namespace of this view.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The record of `digest`, if this namespace has one.
    pub fn get(&self, digest: &str) -> Result<Option<BlobRecord>, Error> {
        self.db.read(|txn| {
            let t = txn.open_table(schema::CONTENT).map_err(store)?;
            let v = t.get((self.ns.as_str(), digest)).map_err(store)?;
            v.map(|v| decode(digest, v.value())).transpose()
        })
    }

    /// Every `(digest, record)` of this namespace, by digest.
    pub fn list(&self) -> Result<Vec<(String, BlobRecord)>, Error> {
        self.db.read(|txn| {
            let t = txn.open_table(schema::CONTENT).map_err(store)?;
            schema::rows2(&t, &self.ns)?
                .into_iter()
                .map(|(d, bytes)| Ok((d.clone(), decode(&d, &bytes)?)))
                .collect()
        })
    }

    /// Change the record of `digest` with `change` (which sets labels; `updated_at` is
    /// set here) in one transaction. `Ok(None)` when there is no record.
    pub fn update(
        &self,
        digest: &str,
        change: impl FnOnce(&mut BlobRecord) -> Result<(), Error>,
    ) -> Result<Option<BlobRecord>, Error> {
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::CONTENT).map_err(store)?;
            let key = (self.ns.as_str(), digest);
            let mut rec: BlobRecord = match t.get(key).map_err(store)? {
                Some(v) => decode(digest, v.value())?,
                None => return Ok(None),
            };
            change(&mut rec)?;
            rec.updated_at = SystemTime::now();
            t.insert(key, encode(digest, &rec)?.as_slice())
                .map_err(store)?;
            Ok(Some(rec))
        })
    }

    /// Remove the record of `digest`. `Ok(None)` when there was none; otherwise whether
    /// any namespace still references the blob (the caller holds its blob lock).
    pub fn remove(&self, digest: &str) -> Result<Option<bool>, Error> {
        let removed = self.db.write(|txn| {
            let mut t = txn.open_table(schema::CONTENT).map_err(store)?;
            Ok(t.remove((self.ns.as_str(), digest))
                .map_err(store)?
                .is_some())
        })?;
        if !removed {
            return Ok(None);
        }
        self.db.content_blob_referenced(digest).map(Some)
    }

    /// The ingest record of `reference`.
    pub fn ingest(&self, reference: &str) -> Result<Option<IngestRecord>, Error> {
        self.db.read(|txn| {
            let t = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            let v = t.get((self.ns.as_str(), reference)).map_err(store)?;
            v.map(|v| decode(reference, v.value())).transpose()
        })
    }

    /// Every `(ref, record)` of this namespace's ingests, by ref.
    pub fn ingests(&self) -> Result<Vec<(String, IngestRecord)>, Error> {
        self.db.read(|txn| {
            let t = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            schema::rows2(&t, &self.ns)?
                .into_iter()
                .map(|(r, bytes)| Ok((r.clone(), decode(&r, &bytes)?)))
                .collect()
        })
    }

    /// Open the ingest record of `reference` for a writer, in one transaction:
    /// `Ok(None)` if `expected` is already committed in this namespace (the caller answers
    /// AlreadyExists); otherwise the existing record or a new one with a fresh backend ref,
    /// its `shared` field set to `shared`. The namespace is created if needed; with
    /// `lease`, the ingest becomes a resource of that lease.
    pub fn open_ingest(
        &self,
        reference: &str,
        expected: Option<&str>,
        shared: Option<SharedBlob>,
        lease: Option<&str>,
    ) -> Result<Option<IngestRecord>, Error> {
        self.db.write(|txn| {
            if let Some(d) = expected {
                let blobs = txn.open_table(schema::CONTENT).map_err(store)?;
                if blobs.get((self.ns.as_str(), d)).map_err(store)?.is_some() {
                    if let Some(lease) = lease {
                        leases::add_resource_in(txn, &self.ns, lease, "content", d)?;
                    }
                    return Ok(None);
                }
            }
            namespaces::ensure(txn, &self.ns)?;
            let mut t = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            let key = (self.ns.as_str(), reference);
            let existing: Option<IngestRecord> = t
                .get(key)
                .map_err(store)?
                .map(|v| decode(reference, v.value()))
                .transpose()?;
            let rec = IngestRecord {
                backend_ref: existing
                    .map(|r| r.backend_ref)
                    .unwrap_or_else(|| new_backend_ref(&self.ns, reference)),
                shared,
            };
            t.insert(key, encode(reference, &rec)?.as_slice())
                .map_err(store)?;
            if let Some(lease) = lease {
                leases::add_resource_in(txn, &self.ns, lease, "ingests", reference)?;
            }
            Ok(Some(rec))
        })
    }

    /// Set or clear the `shared` link of an ingest (when a linking writer starts writing
    /// bytes after all). No-op when the record is gone.
    pub fn set_ingest_shared(
        &self,
        reference: &str,
        shared: Option<SharedBlob>,
    ) -> Result<(), Error> {
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            let key = (self.ns.as_str(), reference);
            let rec: Option<IngestRecord> = t
                .get(key)
                .map_err(store)?
                .map(|v| decode(reference, v.value()))
                .transpose()?;
            if let Some(mut rec) = rec {
                rec.shared = shared;
                t.insert(key, encode(reference, &rec)?.as_slice())
                    .map_err(store)?;
            }
            Ok(())
        })
    }

    /// Remove the ingest record of `reference`, returning it.
    pub fn remove_ingest(&self, reference: &str) -> Result<Option<IngestRecord>, Error> {
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            let old = t.remove((self.ns.as_str(), reference)).map_err(store)?;
            old.map(|v| decode(reference, v.value())).transpose()
        })
    }

    /// Finish the write of `reference` in one transaction: drop its ingest record and add
    /// the blob record of `digest` (unless this namespace has one already). With `lease`,
    /// the blob becomes a resource of that lease either way.
    pub fn commit(
        &self,
        reference: &str,
        digest: &str,
        size: u64,
        labels: Labels,
        lease: Option<&str>,
    ) -> Result<CommitOutcome, Error> {
        self.db.write(|txn| {
            namespaces::ensure(txn, &self.ns)?;
            let mut ingests = txn.open_table(schema::CONTENT_INGESTS).map_err(store)?;
            ingests
                .remove((self.ns.as_str(), reference))
                .map_err(store)?;
            let mut blobs = txn.open_table(schema::CONTENT).map_err(store)?;
            let key = (self.ns.as_str(), digest);
            let outcome = if blobs.get(key).map_err(store)?.is_some() {
                CommitOutcome::AlreadyExists
            } else {
                let now = SystemTime::now();
                let rec = BlobRecord {
                    size,
                    created_at: now,
                    updated_at: now,
                    labels,
                };
                blobs
                    .insert(key, encode(digest, &rec)?.as_slice())
                    .map_err(store)?;
                CommitOutcome::Created(rec)
            };
            if let Some(lease) = lease {
                leases::add_resource_in(txn, &self.ns, lease, "content", digest)?;
            }
            Ok(outcome)
        })
    }
}

/// A backend ref unique to this namespace, ref and moment.
fn new_backend_ref(ns: &str, reference: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{ns}/{nanos}/{reference}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::testutil;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn records_are_per_namespace_and_commit_is_once() {
        let (_dir, db) = testutil::db();
        let a = db.content("a");
        let ab = db.content("ab");
        let rec = a
            .open_ingest("r", Some(D1), None, None)
            .expect("open")
            .expect("new");
        assert!(rec.backend_ref.starts_with("a/"));
        let again = a
            .open_ingest("r", Some(D1), None, None)
            .expect("open")
            .expect("same");
        assert_eq!(
            again.backend_ref, rec.backend_ref,
            "a resumed ref keeps its backend ref"
        );

        let out = a.commit("r", D1, 3, Labels::new(), None).expect("commit");
        assert!(matches!(out, CommitOutcome::Created(ref r) if r.size == 3));
        assert!(a.ingest("r").expect("ingest").is_none());
        assert_eq!(
            a.commit("r", D1, 3, Labels::new(), None).expect("commit"),
            CommitOutcome::AlreadyExists
        );
        assert!(
            a.open_ingest("r2", Some(D1), None, None)
                .expect("open")
                .is_none()
        );

        assert!(
            ab.get(D1).expect("get").is_none(),
            "namespace ab does not see a's blob"
        );
        assert!(ab.list().expect("list").is_empty());
        assert!(db.content_blob_referenced(D1).expect("ref"));
        assert_eq!(a.remove(D1).expect("remove"), Some(false));
        assert_eq!(a.remove(D1).expect("remove"), None);
        assert!(!db.content_blob_referenced(D1).expect("ref"));
    }

    #[test]
    fn update_changes_labels_and_time() {
        let (_dir, db) = testutil::db();
        let a = db.content("a");
        a.commit("r", D1, 3, Labels::new(), None).expect("commit");
        let before = a.get(D1).expect("get").expect("some");
        let after = a
            .update(D1, |r| {
                r.labels.insert("k".into(), "v".into());
                Ok(())
            })
            .expect("update")
            .expect("some");
        assert_eq!(after.labels["k"], "v");
        assert!(after.updated_at >= before.updated_at);
        assert_eq!(after.created_at, before.created_at);
        assert!(
            db.content("b")
                .update(D1, |_| Ok(()))
                .expect("update")
                .is_none()
        );
    }
}
