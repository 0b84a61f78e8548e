//! Namespaces: `namespaces: ns -> NamespaceRecord`.
//!
//! As in containerd: getting an unknown namespace is not an error (its labels are empty),
//! creating an existing one is `AlreadyExists`, deleting a missing one `NotFound`, and a
//! namespace that still holds images, content, containers, snapshots or leases cannot be
//! deleted (`FailedPrecondition`).

use std::time::SystemTime;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{decode, encode, time_ns};
use super::schema::{self, has_rows2, has_rows3};
use super::{Db, Error, Labels, WriteTxn, store};
use crate::identifiers;

/// A namespace and its labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NamespaceRecord {
    labels: Labels,
    #[serde(with = "time_ns")]
    created_at: SystemTime,
}

/// The namespaces view of the store.
#[derive(Debug, Clone)]
pub struct Namespaces {
    db: Db,
}

impl Namespaces {
    pub(super) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Create a namespace; `AlreadyExists` if it exists.
    pub fn create(&self, ns: &Namespace) -> Result<Namespace, Error> {
        validate(ns)?;
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::NAMESPACES).map_err(store)?;
            if t.get(ns.name.as_str()).map_err(store)?.is_some() {
                return Err(Error::AlreadyExists {
                    kind: "namespace",
                    id: ns.name.clone(),
                });
            }
            let rec = NamespaceRecord {
                labels: ns.labels.clone(),
                created_at: SystemTime::now(),
            };
            t.insert(ns.name.as_str(), encode(&ns.name, &rec)?.as_slice())
                .map_err(store)?;
            Ok(ns.clone())
        })
    }

    /// A namespace, or `None` if it does not exist.
    pub fn get(&self, name: &str) -> Result<Option<Namespace>, Error> {
        self.db.read(|txn| {
            let t = txn.open_table(schema::NAMESPACES).map_err(store)?;
            let Some(v) = t.get(name).map_err(store)? else {
                return Ok(None);
            };
            let rec: NamespaceRecord = decode(name, v.value())?;
            Ok(Some(Namespace {
                name: name.to_owned(),
                labels: rec.labels,
            }))
        })
    }

    /// Every namespace, by name.
    pub fn list(&self) -> Result<Vec<Namespace>, Error> {
        self.db.read(|txn| {
            let t = txn.open_table(schema::NAMESPACES).map_err(store)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(store)? {
                let (k, v) = entry.map_err(store)?;
                let rec: NamespaceRecord = decode(k.value(), v.value())?;
                out.push(Namespace {
                    name: k.value().to_owned(),
                    labels: rec.labels,
                });
            }
            Ok(out)
        })
    }

    /// Update labels. `paths` empty or `["labels"]` replaces them all; `labels.<k>` sets
    /// (or, absent from `ns.labels`, removes) one label. Creates the namespace if missing.
    pub fn update(&self, ns: &Namespace, paths: &[String]) -> Result<Namespace, Error> {
        identifiers::validate(&ns.name).map_err(Error::invalid)?;
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::NAMESPACES).map_err(store)?;
            let existing = t
                .get(ns.name.as_str())
                .map_err(store)?
                .map(|v| decode::<NamespaceRecord>(&ns.name, v.value()))
                .transpose()?;
            let mut rec = existing.unwrap_or_else(|| NamespaceRecord {
                labels: Labels::new(),
                created_at: SystemTime::now(),
            });
            if paths.is_empty() {
                rec.labels = ns.labels.clone();
            }
            for path in paths {
                if path == "labels" {
                    rec.labels = ns.labels.clone();
                } else if let Some(key) = path.strip_prefix("labels.") {
                    match ns.labels.get(key) {
                        Some(v) => rec.labels.insert(key.to_owned(), v.clone()),
                        None => rec.labels.remove(key),
                    };
                } else {
                    return Err(Error::invalid(format_args!("cannot update {path:?} field")));
                }
            }
            identifiers::validate_labels(&rec.labels)
                .map_err(|e| Error::invalid(format_args!("namespace.Labels: {e}")))?;
            t.insert(ns.name.as_str(), encode(&ns.name, &rec)?.as_slice())
                .map_err(store)?;
            Ok(Namespace {
                name: ns.name.clone(),
                labels: rec.labels,
            })
        })
    }

    /// Delete an empty namespace.
    pub fn delete(&self, name: &str) -> Result<(), Error> {
        self.db.write(|txn| {
            let kinds = occupied_kinds(txn, name)?;
            if !kinds.is_empty() {
                return Err(Error::FailedPrecondition(format!(
                    "namespace {name:?} must be empty, but it still has {}",
                    kinds.join(", ")
                )));
            }
            let mut t = txn.open_table(schema::NAMESPACES).map_err(store)?;
            if t.remove(name).map_err(store)?.is_none() {
                return Err(Error::NotFound {
                    kind: "namespace",
                    id: name.to_owned(),
                });
            }
            Ok(())
        })
    }
}

fn validate(ns: &Namespace) -> Result<(), Error> {
    identifiers::validate(&ns.name).map_err(Error::invalid)?;
    identifiers::validate_labels(&ns.labels)
        .map_err(|e| Error::invalid(format_args!("namespace.Labels: {e}")))
}

/// The kinds of objects namespace `ns` still holds, in containerd's order.
fn occupied_kinds(txn: &WriteTxn, ns: &str) -> Result<Vec<&'static str>, Error> {
    let mut out = Vec::new();
    let two = [
        ("images", schema::IMAGES),
        ("blobs", schema::CONTENT),
        ("containers", schema::CONTAINERS),
    ];
    for (kind, def) in two {
        if has_rows2(&txn.open_table(def).map_err(store)?, ns)? {
            out.push(kind);
        }
    }
    if has_rows3(&txn.open_table(schema::SNAPSHOTS).map_err(store)?, ns)? {
        out.push("snapshots");
    }
    if has_rows2(&txn.open_table(schema::LEASES).map_err(store)?, ns)? {
        out.push("leases");
    }
    Ok(out)
}

/// Create namespace `ns` inside `txn` if it does not exist (objects created in a
/// namespace create it implicitly). Validates the name.
pub fn ensure(txn: &WriteTxn, ns: &str) -> Result<(), Error> {
    identifiers::validate(ns).map_err(Error::invalid)?;
    let mut t = txn.open_table(schema::NAMESPACES).map_err(store)?;
    if t.get(ns).map_err(store)?.is_none() {
        let rec = NamespaceRecord {
            labels: Labels::new(),
            created_at: SystemTime::now(),
        };
        t.insert(ns, encode(ns, &rec)?.as_slice()).map_err(store)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    fn ns(name: &str, labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn create_get_list_delete() {
        let (_d, db) = testutil::db();
        let n = db.namespaces();
        assert_eq!(n.get("team1").expect("get"), None);
        n.create(&ns("team1", &[("k", "v")])).expect("create");
        assert!(matches!(
            n.create(&ns("team1", &[])),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(
            n.get("team1").expect("get"),
            Some(ns("team1", &[("k", "v")]))
        );
        n.create(&ns("a", &[])).expect("create");
        let names: Vec<_> = n
            .list()
            .expect("list")
            .into_iter()
            .map(|x| x.name)
            .collect();
        assert_eq!(names, ["a", "team1"]);
        n.delete("team1").expect("delete");
        assert!(matches!(n.delete("team1"), Err(Error::NotFound { .. })));
        assert_eq!(n.get("team1").expect("get"), None);
    }

    #[test]
    fn invalid_names_are_refused() {
        let (_d, db) = testutil::db();
        let err = db
            .namespaces()
            .create(&ns("Bad..Name", &[]))
            .expect_err("invalid");
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert!(err.to_string().contains("must match"));
        assert!(matches!(
            db.namespaces().create(&ns(&"n".repeat(77), &[])),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn update_with_masks() {
        let (_d, db) = testutil::db();
        let n = db.namespaces();
        n.create(&ns("x", &[("a", "1"), ("b", "2")]))
            .expect("create");
        let got = n
            .update(
                &ns("x", &[("c", "3")]),
                &["labels.c".into(), "labels.a".into()],
            )
            .expect("update");
        assert_eq!(got, ns("x", &[("b", "2"), ("c", "3")]));
        let got = n.update(&ns("x", &[("z", "9")]), &[]).expect("replace");
        assert_eq!(got, ns("x", &[("z", "9")]));
        assert!(matches!(
            n.update(&ns("x", &[]), &["name".into()]),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(n.get("x").expect("get"), Some(ns("x", &[("z", "9")])));
    }

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = Db::open(dir.path()).expect("open");
            db.namespaces()
                .create(&ns("kept", &[("k", "v")]))
                .expect("create");
        }
        let db = Db::open(dir.path()).expect("reopen");
        assert_eq!(
            db.namespaces().get("kept").expect("get"),
            Some(ns("kept", &[("k", "v")]))
        );
    }
}
