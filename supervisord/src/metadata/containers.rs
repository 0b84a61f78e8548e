//! Containers: `containers: (ns, id) -> Container`, with containerd's validation
//! (`validateContainer`) and update rules. The spec is kept byte-exact.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{AnyValue, decode, encode, time_ns};
use super::images::set_or_remove;
use super::{Db, Error, Labels, leases, namespaces, schema, store};
use crate::filters::{self, Adaptor, Filter};
use crate::identifiers;

/// The runtime a container's task runs under.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Runtime {
    pub name: String,
    pub options: Option<AnyValue>,
}

/// A container record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub labels: Labels,
    pub image: String,
    pub runtime: Runtime,
    pub spec: Option<AnyValue>,
    pub snapshotter: String,
    pub snapshot_key: String,
    #[serde(with = "time_ns")]
    pub created_at: SystemTime,
    #[serde(with = "time_ns")]
    pub updated_at: SystemTime,
    pub extensions: BTreeMap<String, AnyValue>,
    #[serde(default)]
    pub sandbox: String,
}

impl Container {
    /// An empty record with id `id`; timestamps are set by the store.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            labels: Labels::new(),
            image: String::new(),
            runtime: Runtime::default(),
            spec: None,
            snapshotter: String::new(),
            snapshot_key: String::new(),
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
            extensions: BTreeMap::new(),
            sandbox: String::new(),
        }
    }
}

impl Adaptor for Container {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        let (first, rest) = path.split_first()?;
        match (first.as_str(), rest) {
            ("id", []) => Some(Cow::Borrowed(&self.id)),
            ("image", []) => Some(Cow::Borrowed(&self.image)),
            ("runtime", [f]) if f == "name" => Some(Cow::Borrowed(&self.runtime.name)),
            ("snapshotter", []) => Some(Cow::Borrowed(&self.snapshotter)),
            ("snapshotkey", []) => Some(Cow::Borrowed(&self.snapshot_key)),
            ("labels", rest) => filters::label(&self.labels, rest),
            _ => None,
        }
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound {
        kind: "container",
        id: id.to_owned(),
    }
}

fn validate(c: &Container) -> Result<(), Error> {
    identifiers::validate(&c.id).map_err(|e| Error::invalid(format_args!("container.ID: {e}")))?;
    if c.extensions.keys().any(String::is_empty) {
        return Err(Error::invalid(
            "container.Extension keys must not be zero-length",
        ));
    }
    identifiers::validate_labels(&c.labels)
        .map_err(|e| Error::invalid(format_args!("containers.Labels: {e}")))?;
    if c.runtime.name.is_empty() {
        return Err(Error::invalid("must specify a runtime name"));
    }
    if c.spec.is_none() {
        return Err(Error::invalid("must specify a spec"));
    }
    if !c.snapshot_key.is_empty() && c.snapshotter.is_empty() {
        return Err(Error::invalid(
            "must set snapshotter when snapshot key is set",
        ));
    }
    Ok(())
}

/// The containers of one namespace.
#[derive(Debug, Clone)]
pub struct Containers {
    db: Db,
    ns: String,
}

impl Containers {
    pub(super) fn new(db: Db, ns: &str) -> Self {
        Self { db, ns: ns.into() }
    }

    pub fn get(&self, id: &str) -> Result<Container, Error> {
        schema::get2(&self.db, schema::CONTAINERS, &self.ns, id)?.ok_or_else(|| not_found(id))
    }

    /// Containers matching `filter`, by id.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Container>, Error> {
        schema::list2(&self.db, schema::CONTAINERS, &self.ns, |c: &Container| {
            filter.matches(c)
        })
    }

    /// Create a container; with `lease`, it is also recorded as a resource of that lease.
    pub fn create(&self, c: &Container, lease: Option<&str>) -> Result<Container, Error> {
        validate(c)?;
        self.db.write(|txn| {
            namespaces::ensure(txn, &self.ns)?;
            let mut t = txn.open_table(schema::CONTAINERS).map_err(store)?;
            let key = (self.ns.as_str(), c.id.as_str());
            if t.get(key).map_err(store)?.is_some() {
                return Err(Error::AlreadyExists {
                    kind: "container",
                    id: c.id.clone(),
                });
            }
            let now = SystemTime::now();
            let rec = Container {
                created_at: now,
                updated_at: now,
                ..c.clone()
            };
            t.insert(key, encode(&c.id, &rec)?.as_slice())
                .map_err(store)?;
            if let Some(lease) = lease {
                leases::add_resource_in(txn, &self.ns, lease, "containers", &c.id)?;
            }
            Ok(rec)
        })
    }

    /// Update a container. No paths: replace everything (runtime name and snapshotter are
    /// immutable); otherwise each of `labels`, `labels.<k>`, `extensions`,
    /// `extensions.<k>`, `spec`, `image`, `snapshotkey` is taken from `c`.
    pub fn update(&self, c: &Container, paths: &[String]) -> Result<Container, Error> {
        if c.id.is_empty() {
            return Err(Error::invalid("must specify a container id"));
        }
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::CONTAINERS).map_err(store)?;
            let key = (self.ns.as_str(), c.id.as_str());
            let old: Container = match t.get(key).map_err(store)? {
                Some(v) => decode(&c.id, v.value())?,
                None => return Err(not_found(&c.id)),
            };
            if paths.is_empty() {
                if c.runtime.name != old.runtime.name {
                    return Err(Error::invalid("container.Runtime.Name field is immutable"));
                }
                if c.snapshotter != old.snapshotter {
                    return Err(Error::invalid("container.Snapshotter field is immutable"));
                }
            }
            let mut new = if paths.is_empty() {
                c.clone()
            } else {
                old.clone()
            };
            for path in paths {
                if let Some(k) = path.strip_prefix("labels.") {
                    set_or_remove(&mut new.labels, &c.labels, k);
                } else if let Some(k) = path.strip_prefix("extensions.") {
                    match c.extensions.get(k) {
                        Some(v) => new.extensions.insert(k.to_owned(), v.clone()),
                        None => new.extensions.remove(k),
                    };
                } else {
                    match path.as_str() {
                        "labels" => new.labels = c.labels.clone(),
                        "spec" => new.spec = c.spec.clone(),
                        "extensions" => new.extensions = c.extensions.clone(),
                        "image" => new.image = c.image.clone(),
                        "snapshotkey" => new.snapshot_key = c.snapshot_key.clone(),
                        _ => {
                            return Err(Error::invalid(format_args!(
                                "cannot update {path:?} field on {:?}",
                                c.id
                            )));
                        }
                    }
                }
            }
            validate(&new)?;
            new.created_at = old.created_at;
            new.updated_at = SystemTime::now();
            t.insert(key, encode(&c.id, &new)?.as_slice())
                .map_err(store)?;
            Ok(new)
        })
    }

    /// Delete a container record; `NotFound` if missing.
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::CONTAINERS).map_err(store)?;
            if t.remove((self.ns.as_str(), id)).map_err(store)?.is_none() {
                return Err(not_found(id));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    pub(crate) fn container(id: &str) -> Container {
        let mut c = Container::new(id);
        c.runtime.name = "io.containerd.runc.v2".into();
        c.spec = Some(AnyValue {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
            value: br#"{"ociVersion":"1.0.2","process":{"args":["sh"]}}"#.to_vec(),
        });
        c.snapshotter = "overlayfs".into();
        c.snapshot_key = id.into();
        c
    }

    #[test]
    fn crud_keeps_spec_byte_exact() {
        let (_d, db) = testutil::db();
        let cs = db.containers("ns");
        let c = container("c1");
        let created = cs.create(&c, None).expect("create");
        assert!(matches!(
            cs.create(&c, None),
            Err(Error::AlreadyExists { .. })
        ));
        let got = cs.get("c1").expect("get");
        assert_eq!(got, created);
        assert_eq!(got.spec, c.spec);
        assert!(matches!(
            db.namespaces().delete("ns"),
            Err(Error::FailedPrecondition(m)) if m.ends_with("still has containers")
        ));
        cs.delete("c1").expect("delete");
        assert!(matches!(cs.get("c1"), Err(Error::NotFound { .. })));
        assert!(matches!(cs.delete("c1"), Err(Error::NotFound { .. })));
    }

    #[test]
    fn validation_as_containerd() {
        let (_d, db) = testutil::db();
        let cs = db.containers("ns");
        let cases: Vec<(Container, &str)> = vec![
            (container("bad..id"), "container.ID"),
            (
                Container {
                    runtime: Runtime::default(),
                    ..container("a")
                },
                "runtime name",
            ),
            (
                Container {
                    spec: None,
                    ..container("a")
                },
                "spec",
            ),
            (
                Container {
                    snapshotter: String::new(),
                    ..container("a")
                },
                "snapshotter",
            ),
        ];
        for (c, want) in cases {
            match cs.create(&c, None) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{want}: {other:?}"),
            }
        }
    }

    #[test]
    fn update_and_filters() {
        let (_d, db) = testutil::db();
        let cs = db.containers("ns");
        cs.create(&container("a"), None).expect("create");
        cs.create(&container("b"), None).expect("create");
        let mut c = container("a");
        c.labels.insert("x".into(), "1".into());
        c.image = "img".into();
        let up = cs.update(&c, &["labels.x".into()]).expect("update");
        assert_eq!(up.labels.get("x").map(String::as_str), Some("1"));
        assert_eq!(up.image, "", "image not in mask");
        let mut other_rt = c.clone();
        other_rt.runtime.name = "other".into();
        assert!(matches!(
            cs.update(&other_rt, &[]),
            Err(Error::InvalidArgument(_))
        ));
        let up = cs.update(&c, &[]).expect("replace");
        assert_eq!(up.image, "img");
        assert!(matches!(
            cs.update(&c, &["runtime".into()]),
            Err(Error::InvalidArgument(_))
        ));
        let ids = |f: &str| -> Vec<String> {
            cs.list(&Filter::parse(f).expect("filter"))
                .expect("list")
                .into_iter()
                .map(|x| x.id)
                .collect()
        };
        assert_eq!(ids(""), ["a", "b"]);
        assert_eq!(ids("labels.x==1"), ["a"]);
        assert_eq!(ids("id!=a"), ["b"]);
        assert_eq!(ids("runtime.name==io.containerd.runc.v2,image==img"), ["a"]);
    }

    #[test]
    fn lease_header_records_a_resource() {
        let (_d, db) = testutil::db();
        db.leases("ns").create("l1", &Labels::new()).expect("lease");
        db.containers("ns")
            .create(&container("c"), Some("l1"))
            .expect("create");
        let res = db.leases("ns").list_resources("l1").expect("resources");
        assert_eq!(res.len(), 1);
        assert_eq!(
            (res[0].kind.as_str(), res[0].id.as_str()),
            ("containers", "c")
        );
        assert!(matches!(
            db.containers("ns").create(&container("d"), Some("missing")),
            Err(Error::NotFound { .. })
        ));
        assert!(
            matches!(db.containers("ns").get("d"), Err(Error::NotFound { .. })),
            "rolled back"
        );
    }
}
