//! The metadata store: every berth object record, in one embedded redb database.
//!
//! redb is a crash-safe copy-on-write B-tree; every write transaction commits with
//! `Durability::Immediate`, so an acknowledged RPC survives `kill -9`. The rest of berthd
//! sees only this module's API (namespaced views such as [`Db::images`]); redb types do not
//! leave `metadata/`.
//!
//! On disk (`<root>/metadata/meta.redb`), table by table — keys are tuples, values are
//! JSON records (see each view), namespaces are the first key part everywhere:
//!
//! ```text
//! meta.redb
//! ├── meta              &str                      -> u64    "schema_version" = SCHEMA_VERSION
//! ├── namespaces        ns                        -> NamespaceRecord {labels, created_at}
//! ├── images            (ns, name)                -> Image
//! ├── containers        (ns, id)                  -> Container  (spec kept byte-exact)
//! ├── leases            (ns, lease id)            -> Lease
//! ├── lease_resources   (ns, lease id, type, id)  -> ()       type: content | ingests |
//! │                                                           snapshots/<snapshotter> |
//! │                                                           images | containers
//! ├── content           (ns, digest)              -> content record   (metadata/content.rs)
//! ├── content_ingests   (ns, ref)                 -> ingest record    (metadata/content.rs)
//! └── snapshots         (ns, snapshotter, key)    -> SnapshotRecord {backend_key, parent, …}
//! ```
//!
//! Garbage collection reads every table through [`gc::read_all`] and deletes through
//! [`gc::delete_in`], inside its one write transaction (the roots and references it
//! finds are `gc/`'s business). Creating any object in a namespace creates the namespace.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability, ReadableDatabase, ReadableTable};

mod codec;
pub mod containers;
pub mod content;
pub mod gc;
pub mod images;
pub mod leases;
pub mod namespaces;
mod schema;
pub mod snapshots;

pub use codec::AnyValue;
pub use containers::{Container, Containers, Runtime};
pub use images::{Descriptor, Image, Images};
pub use leases::{Lease, LeaseResource, Leases};
pub use namespaces::{Namespace, Namespaces};
pub use snapshots::{SnapshotRecord, Snapshots};

/// Labels of any object, ordered for stable output.
pub type Labels = std::collections::BTreeMap<String, String>;

/// The database file name under `<root>/metadata/`.
pub const DB_FILE: &str = "meta.redb";

/// Version of the table layout above; bumped on any incompatible change.
pub const SCHEMA_VERSION: u64 = 1;

/// A read transaction (opened by [`Db::read`]).
pub type ReadTxn = redb::ReadTransaction;
/// A write transaction (opened by [`Db::write`]). Outside `metadata/` it is only handed
/// on to this module's `*_in` functions, which pair several writes in one transaction;
/// tables are opened here alone (`schema` is private).
pub type WriteTxn = redb::WriteTransaction;

/// Errors of the metadata store. Each carries the object it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {id:?}: not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id:?}: already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("metadata database {path}: schema version {found}, this berthd knows {SCHEMA_VERSION}")]
    SchemaVersion { path: String, found: u64 },
    #[error("metadata database")]
    Store(#[source] redb::Error),
    #[error("metadata record {key}")]
    Codec {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("create metadata directory {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(msg: impl std::fmt::Display) -> Self {
        Self::InvalidArgument(msg.to_string())
    }
}

/// Any redb failure is a store error.
fn store<E: Into<redb::Error>>(e: E) -> Error {
    Error::Store(e.into())
}

/// The metadata database: cheap to clone, shared by every service.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Database>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Open (or create) `<dir>/meta.redb`, create every table and check the schema version.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path).map_err(store)?;
        let this = Self {
            inner: Arc::new(db),
        };
        if this.read(|txn| schema::is_current(txn, SCHEMA_VERSION))? {
            return Ok(this);
        }
        this.write(|txn| {
            let mut meta = txn.open_table(schema::META).map_err(store)?;
            let found = meta
                .get(schema::SCHEMA_VERSION_KEY)
                .map_err(store)?
                .map(|v| v.value());
            match found {
                None => {
                    meta.insert(schema::SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                        .map_err(store)?;
                }
                Some(SCHEMA_VERSION) => {}
                Some(found) => {
                    return Err(Error::SchemaVersion {
                        path: path.display().to_string(),
                        found,
                    });
                }
            }
            drop(meta);
            schema::create_all(txn)
        })?;
        Ok(this)
    }

    /// Run `f` in a read transaction (a consistent snapshot).
    pub fn read<T>(&self, f: impl FnOnce(&ReadTxn) -> Result<T, Error>) -> Result<T, Error> {
        let txn = self.inner.begin_read().map_err(store)?;
        f(&txn)
    }

    /// Run `f` in a write transaction: committed durably if `f` returns `Ok`, rolled back
    /// otherwise. Write transactions are serialized.
    pub fn write<T>(&self, f: impl FnOnce(&WriteTxn) -> Result<T, Error>) -> Result<T, Error> {
        let mut txn = self.inner.begin_write().map_err(store)?;
        txn.set_durability(Durability::Immediate).map_err(store)?;
        match f(&txn) {
            Ok(v) => {
                txn.commit().map_err(store)?;
                Ok(v)
            }
            Err(e) => {
                txn.abort().map_err(store)?;
                Err(e)
            }
        }
    }

    /// The namespaces view.
    pub fn namespaces(&self) -> Namespaces {
        Namespaces::new(self.clone())
    }

    /// The images of namespace `ns`.
    pub fn images(&self, ns: &str) -> Images {
        Images::new(self.clone(), ns)
    }

    /// The containers of namespace `ns`.
    pub fn containers(&self, ns: &str) -> Containers {
        Containers::new(self.clone(), ns)
    }

    /// The leases of namespace `ns`.
    pub fn leases(&self, ns: &str) -> Leases {
        Leases::new(self.clone(), ns)
    }

    /// The snapshot records of namespace `ns` for one snapshotter.
    pub fn snapshots(&self, ns: &str, snapshotter: &str) -> Snapshots {
        Snapshots::new(self.clone(), ns, snapshotter)
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::Db;

    /// A database in a fresh temp dir; the dir lives as long as the guard.
    pub fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path()).expect("open db");
        (dir, db)
    }
}
