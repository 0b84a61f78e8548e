//! The metastore: every snapshot's record, in one redb file per snapshotter root.
//!
//! ```text
//! <root>/metadata.redb
//!   meta       &str  → u64    "schema_version" = 1
//!                             "next_id"        = the last numeric id handed out
//!   snapshots  &str  → bytes  key (active, view) or name (committed) → JSON Record:
//!                             {id, kind, parent, created_ns, updated_ns, labels,
//!                              size, inodes}   (size/inodes: usage, set at commit)
//!   children   &str  ⇉ &str   (multimap) parent name → the keys/names of its children
//! ```
//!
//! Each snapshot's directory is named by its numeric `id` (short paths for overlay).
//! A commit moves the record from the active key to the committed name and keeps the id.
//! Every write is one redb transaction with immediate durability: when a call returns,
//! the change survives a crash; a crash before that leaves the previous state.

mod record;

use std::path::{Path, PathBuf};

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};

use crate::error::{Error, Result};

pub(crate) use record::{Record, now_ns as record_now_ns};

/// The file name of the metastore inside a snapshotter root.
pub(crate) const DB_FILE: &str = "metadata.redb";
/// The schema this build reads and writes.
pub(crate) const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
const CHILDREN: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("children");
const KEY_SCHEMA: &str = "schema_version";
const KEY_NEXT_ID: &str = "next_id";

/// The open metastore.
pub(crate) struct Metastore {
    db: Database,
}

/// A write transaction's view of the tables.
pub(crate) struct Txn<'t> {
    meta: redb::Table<'t, &'static str, u64>,
    snapshots: redb::Table<'t, &'static str, &'static [u8]>,
    children: redb::MultimapTable<'t, &'static str, &'static str>,
}

impl Metastore {
    /// Opens (or creates) `<root>/metadata.redb` and checks its schema version.
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let path = root.join(DB_FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::RootInUse {
                    root: root.to_path_buf(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let store = Metastore { db };
        store.init_schema(path)?;
        Ok(store)
    }

    fn init_schema(&self, path: PathBuf) -> Result<()> {
        // The write also creates every table, so readers never meet a missing one.
        self.write(|t| {
            let found = t.meta.get(KEY_SCHEMA)?.map(|v| v.value());
            match found {
                None => {
                    t.meta.insert(KEY_SCHEMA, SCHEMA_VERSION)?;
                    Ok(())
                }
                Some(SCHEMA_VERSION) => Ok(()),
                Some(found) => Err(Error::SchemaVersion {
                    path,
                    found,
                    expected: SCHEMA_VERSION,
                }),
            }
        })
    }

    /// Runs `f` in one write transaction, committed only when `f` succeeds.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        let tx = self.db.begin_write()?;
        let out = {
            let mut t = Txn {
                meta: tx.open_table(META)?,
                snapshots: tx.open_table(SNAPSHOTS)?,
                children: tx.open_multimap_table(CHILDREN)?,
            };
            f(&mut t)
        };
        match out {
            Ok(v) => {
                tx.commit()?;
                Ok(v)
            }
            Err(e) => {
                if let Err(abort) = tx.abort() {
                    tracing::warn!(error = %abort, "metastore abort failed");
                }
                Err(e)
            }
        }
    }

    /// The record of `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Result<Option<Record>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SNAPSHOTS)?;
        read_record(&table, key)
    }

    /// The record of `key` and the ids of its ancestors (nearest first), read together.
    pub(crate) fn resolve(&self, key: &str) -> Result<(Record, Vec<u64>)> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SNAPSHOTS)?;
        let not_found = |key: &str| Error::NotFound {
            key: key.to_owned(),
        };
        let rec = read_record(&table, key)?.ok_or_else(|| not_found(key))?;
        let mut ids = Vec::new();
        let mut name = rec.parent.clone();
        while !name.is_empty() {
            let parent = read_record(&table, &name)?.ok_or_else(|| not_found(&name))?;
            ids.push(parent.id);
            name = parent.parent;
        }
        Ok((rec, ids))
    }

    /// Every record, sorted by key.
    pub(crate) fn all(&self) -> Result<Vec<(String, Record)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SNAPSHOTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let key = k.value().to_owned();
            let rec = Record::decode(&key, v.value())?;
            out.push((key, rec));
        }
        Ok(out)
    }
}

fn read_record(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Record>> {
    match table.get(key)? {
        Some(v) => Ok(Some(Record::decode(key, v.value())?)),
        None => Ok(None),
    }
}

impl Txn<'_> {
    pub(crate) fn get(&self, key: &str) -> Result<Option<Record>> {
        read_record(&self.snapshots, key)
    }

    /// The record of `key`, or NotFound.
    pub(crate) fn require(&self, key: &str) -> Result<Record> {
        self.get(key)?.ok_or_else(|| Error::NotFound {
            key: key.to_owned(),
        })
    }

    /// Inserts or replaces `key`'s record (the parent index follows `rec.parent`).
    pub(crate) fn put(&mut self, key: &str, rec: &Record) -> Result<()> {
        self.snapshots.insert(key, rec.encode().as_slice())?;
        if !rec.parent.is_empty() {
            self.children.insert(rec.parent.as_str(), key)?;
        }
        Ok(())
    }

    /// Deletes `key`'s record and its entry in its parent's children.
    pub(crate) fn delete(&mut self, key: &str, rec: &Record) -> Result<()> {
        self.snapshots.remove(key)?;
        if !rec.parent.is_empty() {
            self.children.remove(rec.parent.as_str(), key)?;
        }
        Ok(())
    }

    pub(crate) fn has_children(&self, key: &str) -> Result<bool> {
        Ok(self.children.get(key)?.next().is_some())
    }

    /// A fresh numeric id, never handed out before on this root.
    pub(crate) fn next_id(&mut self) -> Result<u64> {
        let last = self.meta.get(KEY_NEXT_ID)?.map(|v| v.value()).unwrap_or(0);
        let id = last + 1;
        self.meta.insert(KEY_NEXT_ID, id)?;
        Ok(id)
    }

    /// The ids of `parent` and its ancestors, nearest first.
    pub(crate) fn parent_ids(&self, parent: &str) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        let mut name = parent.to_owned();
        while !name.is_empty() {
            let rec = self
                .get(&name)?
                .ok_or_else(|| Error::NotFound { key: name.clone() })?;
            ids.push(rec.id);
            name = rec.parent;
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests;
