#![allow(clippy::unwrap_used)] // unwrap is fine in tests (house rule)

use super::*;
use crate::ErrorKind;
use crate::snapshotter::{Kind, Labels};

#[test]
fn records_children_and_ids_persist() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Metastore::open(dir.path()).unwrap();
        db.write(|t| {
            let a = t.next_id()?;
            t.put("base", &Record::new(a, Kind::Committed, "", Labels::new()))?;
            let b = t.next_id()?;
            t.put(
                "child",
                &Record::new(b, Kind::Active, "base", Labels::new()),
            )?;
            assert!(t.has_children("base")?);
            assert!(!t.has_children("child")?);
            assert_eq!(t.parent_ids("base")?, [a]);
            Ok(())
        })
        .unwrap();
    }
    let db = Metastore::open(dir.path()).unwrap();
    let (child, parents) = db.resolve("child").unwrap();
    assert_eq!((child.id, child.kind, parents), (2, Kind::Active, vec![1]));
    let next = db.write(|t| t.next_id()).unwrap();
    assert_eq!(next, 3, "ids are never reused");
    assert_eq!(db.all().unwrap().len(), 2);
}

#[test]
fn a_failed_write_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Metastore::open(dir.path()).unwrap();
    let err = db
        .write(|t| {
            let id = t.next_id()?;
            t.put("k", &Record::new(id, Kind::Active, "", Labels::new()))?;
            Err::<(), _>(Error::invalid("abort on purpose"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(db.get("k").unwrap().is_none());
    assert_eq!(db.write(|t| t.next_id()).unwrap(), 1);
}

#[test]
fn delete_drops_the_child_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = Metastore::open(dir.path()).unwrap();
    db.write(|t| {
        t.put("p", &Record::new(1, Kind::Committed, "", Labels::new()))?;
        let c = Record::new(2, Kind::View, "p", Labels::new());
        t.put("c", &c)?;
        t.delete("c", &c)?;
        assert!(!t.has_children("p")?);
        Ok(())
    })
    .unwrap();
}

#[test]
fn unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Metastore::open(dir.path()).unwrap();
        db.write(|t| {
            t.meta.insert(KEY_SCHEMA, 99)?;
            Ok(())
        })
        .unwrap();
    }
    let err = Metastore::open(dir.path())
        .err()
        .expect("schema 99 must be refused");
    assert!(
        matches!(err, Error::SchemaVersion { found: 99, .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
}

#[test]
fn a_corrupt_record_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = Metastore::open(dir.path()).unwrap();
    db.write(|t| {
        t.snapshots.insert("bad", b"not json".as_slice())?;
        Ok(())
    })
    .unwrap();
    let err = db.get("bad").unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}
