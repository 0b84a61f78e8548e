//! The table definitions drawn in the module doc, and helpers to scan one namespace.

use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use super::codec::decode;
use super::{Db, Error, ReadTxn, WriteTxn, store};

/// Key of the schema version in [`META`].
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub const NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
pub const IMAGES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("images");
pub const CONTAINERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("containers");
pub const LEASES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("leases");
/// `(ns, lease, resource type, resource id) -> ()`.
pub const LEASE_RESOURCES: TableDefinition<(&str, &str, &str, &str), ()> =
    TableDefinition::new("lease_resources");
/// `(ns, digest) -> record`; the record encoding belongs to `metadata/content.rs`.
pub const CONTENT: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("content");
/// `(ns, ref) -> record`; the record encoding belongs to `metadata/content.rs`.
pub const CONTENT_INGESTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("content_ingests");
/// `(ns, snapshotter, key) -> SnapshotRecord`.
pub const SNAPSHOTS: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("snapshots");

/// Does the store already hold schema version `version` and every table? Then opening
/// needs no write transaction (a restart pays no commit and its fsyncs).
pub(super) fn is_current(txn: &ReadTxn, version: u64) -> Result<bool, Error> {
    fn exists(r: Result<impl Sized, redb::TableError>) -> Result<bool, Error> {
        match r {
            Ok(_) => Ok(true),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(store(e)),
        }
    }
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
        Err(e) => return Err(store(e)),
    };
    if meta
        .get(SCHEMA_VERSION_KEY)
        .map_err(store)?
        .map(|v| v.value())
        != Some(version)
    {
        return Ok(false);
    }
    Ok(exists(txn.open_table(NAMESPACES))?
        && exists(txn.open_table(IMAGES))?
        && exists(txn.open_table(CONTAINERS))?
        && exists(txn.open_table(LEASES))?
        && exists(txn.open_table(LEASE_RESOURCES))?
        && exists(txn.open_table(CONTENT))?
        && exists(txn.open_table(CONTENT_INGESTS))?
        && exists(txn.open_table(SNAPSHOTS))?)
}

/// Create every table so read transactions can open them.
pub(super) fn create_all(txn: &WriteTxn) -> Result<(), Error> {
    txn.open_table(NAMESPACES).map_err(store)?;
    txn.open_table(IMAGES).map_err(store)?;
    txn.open_table(CONTAINERS).map_err(store)?;
    txn.open_table(LEASES).map_err(store)?;
    txn.open_table(LEASE_RESOURCES).map_err(store)?;
    txn.open_table(CONTENT).map_err(store)?;
    txn.open_table(CONTENT_INGESTS).map_err(store)?;
    txn.open_table(SNAPSHOTS).map_err(store)?;
    Ok(())
}

/// Does a `(ns, id)` table hold a row of namespace `ns`?
pub(crate) fn has_rows2(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    ns: &str,
) -> Result<bool, Error> {
    let mut range = table.range((ns, "")..).map_err(store)?;
    match range.next() {
        Some(entry) => Ok(entry.map_err(store)?.0.value().0 == ns),
        None => Ok(false),
    }
}

/// Does a `(ns, a, b)` table hold a row of namespace `ns`?
pub(crate) fn has_rows3(
    table: &impl ReadableTable<(&'static str, &'static str, &'static str), &'static [u8]>,
    ns: &str,
) -> Result<bool, Error> {
    let mut range = table.range((ns, "", "")..).map_err(store)?;
    match range.next() {
        Some(entry) => Ok(entry.map_err(store)?.0.value().0 == ns),
        None => Ok(false),
    }
}

/// The `(id, record)` rows of namespace `ns` in a `(ns, id)` table, in key order.
pub(crate) fn rows2(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    ns: &str,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    for entry in table.range((ns, "")..).map_err(store)? {
        let (k, v) = entry.map_err(store)?;
        let (kns, id) = k.value();
        if kns != ns {
            break;
        }
        out.push((id.to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

/// A `(ns, id) -> JSON record` table.
pub(crate) type Table2 = TableDefinition<'static, (&'static str, &'static str), &'static [u8]>;

/// Record `id` of namespace `ns` in table `def`, decoded; `None` when there is none.
pub(crate) fn get2<T: DeserializeOwned>(
    db: &Db,
    def: Table2,
    ns: &str,
    id: &str,
) -> Result<Option<T>, Error> {
    db.read(|txn| {
        let t = txn.open_table(def).map_err(store)?;
        match t.get((ns, id)).map_err(store)? {
            Some(v) => decode(id, v.value()).map(Some),
            None => Ok(None),
        }
    })
}

/// The records of namespace `ns` in table `def` that `keep` accepts, in key order.
pub(crate) fn list2<T: DeserializeOwned>(
    db: &Db,
    def: Table2,
    ns: &str,
    keep: impl Fn(&T) -> bool,
) -> Result<Vec<T>, Error> {
    db.read(|txn| {
        let t = txn.open_table(def).map_err(store)?;
        let mut out = Vec::new();
        for (id, bytes) in rows2(&t, ns)? {
            let rec: T = decode(&id, &bytes)?;
            if keep(&rec) {
                out.push(rec);
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::super::{DB_FILE, SCHEMA_VERSION};
    use super::*;

    #[test]
    fn only_a_store_with_every_table_and_the_version_is_current() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let raw = redb::Database::create(dir.path().join(DB_FILE)).expect("create");
            let txn = redb::ReadableDatabase::begin_read(&raw).expect("read");
            assert!(!is_current(&txn, SCHEMA_VERSION).expect("check empty"));
        }
        let db = Db::open(dir.path()).expect("open");
        assert!(db.read(|t| is_current(t, SCHEMA_VERSION)).expect("check"));
        assert!(
            !db.read(|t| is_current(t, SCHEMA_VERSION + 1))
                .expect("check")
        );
        drop(db);
        let db = Db::open(dir.path()).expect("reopen");
        assert!(db.read(|t| is_current(t, SCHEMA_VERSION)).expect("check"));
    }

    #[test]
    fn a_missing_table_is_created_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let raw = redb::Database::create(dir.path().join(DB_FILE)).expect("create");
            let txn = raw.begin_write().expect("write");
            txn.open_table(META)
                .expect("meta")
                .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let db = Db::open(dir.path()).expect("open");
        assert!(db.read(|t| is_current(t, SCHEMA_VERSION)).expect("check"));
        db.read(|t| t.open_table(SNAPSHOTS).map(drop).map_err(store))
            .expect("snapshots table exists");
    }

    #[test]
    fn another_schema_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Db::open(dir.path()).expect("create"));
        {
            let raw = redb::Database::create(dir.path().join(DB_FILE)).expect("open");
            let txn = raw.begin_write().expect("write");
            txn.open_table(META)
                .expect("meta")
                .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION + 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let err = Db::open(dir.path()).expect_err("newer schema");
        assert!(
            matches!(err, Error::SchemaVersion { found, .. } if found == SCHEMA_VERSION + 1),
            "{err:?}"
        );
    }
}
