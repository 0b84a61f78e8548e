//! Leases: `leases: (ns, id) -> Lease` and `lease_resources: (ns, lease, type, id) -> ()`.
//!
//! A lease protects the objects recorded as its resources from garbage collection until it
//! is deleted or its `containerd.io/gc.expire` time passes.

use std::borrow::Cow;
use std::time::SystemTime;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{encode, time_ns};
use super::images::validate_digest;
use super::{Db, Error, Labels, WriteTxn, namespaces, schema, store};
use crate::filters::{self, Adaptor, Filter};
use crate::identifiers;

/// The label holding a lease's expiry time (RFC 3339).
pub const EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// A lease record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub labels: Labels,
    #[serde(with = "time_ns")]
    pub created_at: SystemTime,
}

/// One object held by a lease. `kind` is containerd's resource type: `content`,
/// `ingests`, `snapshots/<snapshotter>`; berth adds `images` and `containers`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeaseResource {
    pub id: String,
    pub kind: String,
}

impl Adaptor for Lease {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        let (first, rest) = path.split_first()?;
        match (first.as_str(), rest) {
            ("id", []) => Some(Cow::Borrowed(&self.id)),
            ("labels", rest) => filters::label(&self.labels, rest),
            _ => None,
        }
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound {
        kind: "lease",
        id: id.to_owned(),
    }
}

fn validate_resource(r: &LeaseResource) -> Result<(), Error> {
    if r.id.is_empty() {
        return Err(Error::invalid("resource id must not be empty"));
    }
    match r.kind.as_str() {
        "content" => validate_digest(&r.id).map_err(Error::invalid),
        "ingests" | "images" | "containers" => Ok(()),
        k if k.strip_prefix("snapshots/").is_some_and(|s| !s.is_empty()) => Ok(()),
        k => Err(Error::invalid(format_args!(
            "unsupported resource type {k:?}"
        ))),
    }
}

/// Record `(kind, id)` as a resource of lease `lease` inside `txn`; the lease must exist.
pub fn add_resource_in(
    txn: &WriteTxn,
    ns: &str,
    lease: &str,
    kind: &str,
    id: &str,
) -> Result<(), Error> {
    ensure_lease(&txn.open_table(schema::LEASES).map_err(store)?, ns, lease)?;
    let mut t = txn.open_table(schema::LEASE_RESOURCES).map_err(store)?;
    t.insert((ns, lease, kind, id), ()).map_err(store)?;
    Ok(())
}

/// NotFound unless the `leases` table holds lease `lease` of namespace `ns`.
fn ensure_lease(
    leases: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    ns: &str,
    lease: &str,
) -> Result<(), Error> {
    match leases.get((ns, lease)).map_err(store)? {
        Some(_) => Ok(()),
        None => Err(not_found(lease)),
    }
}

/// The leases of one namespace.
#[derive(Debug, Clone)]
pub struct Leases {
    db: Db,
    ns: String,
}

impl Leases {
    pub(super) fn new(db: Db, ns: &str) -> Self {
        Self { db, ns: ns.into() }
    }

    /// Create a lease with the given id; `AlreadyExists` if taken.
    pub fn create(&self, id: &str, labels: &Labels) -> Result<Lease, Error> {
        if id.is_empty() {
            return Err(Error::invalid("lease id must not be empty"));
        }
        identifiers::validate_labels(labels)
            .map_err(|e| Error::invalid(format_args!("lease.Labels: {e}")))?;
        self.db.write(|txn| {
            namespaces::ensure(txn, &self.ns)?;
            let mut t = txn.open_table(schema::LEASES).map_err(store)?;
            if t.get((self.ns.as_str(), id)).map_err(store)?.is_some() {
                return Err(Error::AlreadyExists {
                    kind: "lease",
                    id: id.to_owned(),
                });
            }
            let lease = Lease {
                id: id.to_owned(),
                labels: labels.clone(),
                created_at: SystemTime::now(),
            };
            t.insert((self.ns.as_str(), id), encode(id, &lease)?.as_slice())
                .map_err(store)?;
            Ok(lease)
        })
    }

    /// Delete a lease and its resource records (the objects become collectable).
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        self.db.write(|txn| {
            let mut t = txn.open_table(schema::LEASES).map_err(store)?;
            if t.remove((self.ns.as_str(), id)).map_err(store)?.is_none() {
                return Err(not_found(id));
            }
            let mut r = txn.open_table(schema::LEASE_RESOURCES).map_err(store)?;
            let ns = self.ns.as_str();
            r.retain_in((ns, id, "", "").., |k, _| !(k.0 == ns && k.1 == id))
                .map_err(store)?;
            Ok(())
        })
    }

    pub fn get(&self, id: &str) -> Result<Lease, Error> {
        schema::get2(&self.db, schema::LEASES, &self.ns, id)?.ok_or_else(|| not_found(id))
    }

    /// Leases matching `filter`, by id.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Lease>, Error> {
        schema::list2(&self.db, schema::LEASES, &self.ns, |lease: &Lease| {
            filter.matches(lease)
        })
    }

    pub fn add_resource(&self, lease: &str, r: &LeaseResource) -> Result<(), Error> {
        validate_resource(r)?;
        self.db
            .write(|txn| add_resource_in(txn, &self.ns, lease, &r.kind, &r.id))
    }

    /// Remove a resource from a lease; removing one it does not hold is not an error.
    pub fn delete_resource(&self, lease: &str, r: &LeaseResource) -> Result<(), Error> {
        validate_resource(r)?;
        self.db.write(|txn| {
            let leases = txn.open_table(schema::LEASES).map_err(store)?;
            ensure_lease(&leases, &self.ns, lease)?;
            let mut t = txn.open_table(schema::LEASE_RESOURCES).map_err(store)?;
            t.remove((self.ns.as_str(), lease, r.kind.as_str(), r.id.as_str()))
                .map_err(store)?;
            Ok(())
        })
    }

    pub fn list_resources(&self, lease: &str) -> Result<Vec<LeaseResource>, Error> {
        self.db.read(|txn| {
            let leases = txn.open_table(schema::LEASES).map_err(store)?;
            ensure_lease(&leases, &self.ns, lease)?;
            let t = txn.open_table(schema::LEASE_RESOURCES).map_err(store)?;
            resources_of(&t, &self.ns, lease)
        })
    }
}

/// The resources of one lease, in key order.
pub(crate) fn resources_of(
    t: &impl ReadableTable<(&'static str, &'static str, &'static str, &'static str), ()>,
    ns: &str,
    lease: &str,
) -> Result<Vec<LeaseResource>, Error> {
    let mut out = Vec::new();
    for entry in t.range((ns, lease, "", "")..).map_err(store)? {
        let (k, _) = entry.map_err(store)?;
        let (kns, klease, kind, id) = k.value();
        if kns != ns || klease != lease {
            break;
        }
        out.push(LeaseResource {
            id: id.to_owned(),
            kind: kind.to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    fn res(kind: &str, id: &str) -> LeaseResource {
        LeaseResource {
            id: id.into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn lease_lifecycle_and_resources() {
        let (_d, db) = testutil::db();
        let l = db.leases("ns");
        let labels: Labels = [(EXPIRE_LABEL.into(), "2030-01-01T00:00:00Z".into())].into();
        let lease = l.create("123-abcd", &labels).expect("create");
        assert_eq!(lease.labels, labels);
        assert!(matches!(
            l.create("123-abcd", &labels),
            Err(Error::AlreadyExists { .. })
        ));
        let digest = format!("sha256:{}", "b".repeat(64));
        l.add_resource("123-abcd", &res("content", &digest))
            .expect("add");
        l.add_resource("123-abcd", &res("snapshots/overlayfs", "k1"))
            .expect("add");
        assert!(matches!(
            l.add_resource("123-abcd", &res("bogus", "x")),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            l.add_resource("nope", &res("ingests", "x")),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            l.list_resources("123-abcd").expect("list"),
            [res("content", &digest), res("snapshots/overlayfs", "k1")]
        );
        l.delete_resource("123-abcd", &res("content", &digest))
            .expect("del");
        assert_eq!(
            l.list_resources("123-abcd").expect("list"),
            [res("snapshots/overlayfs", "k1")]
        );
        l.create("other", &Labels::new()).expect("create");
        let ids = |f: &str| -> Vec<String> {
            l.list(&Filter::parse(f).expect("filter"))
                .expect("list")
                .into_iter()
                .map(|x| x.id)
                .collect()
        };
        assert_eq!(ids(""), ["123-abcd", "other"]);
        assert_eq!(ids("id==other"), ["other"]);
        assert_eq!(ids(r#"labels."containerd.io/gc.expire""#), ["123-abcd"]);
        l.delete("123-abcd").expect("delete");
        assert!(matches!(l.delete("123-abcd"), Err(Error::NotFound { .. })));
        assert!(matches!(
            l.list_resources("123-abcd"),
            Err(Error::NotFound { .. })
        ));
        // the resources went with the lease: a new lease of that id starts empty
        l.create("123-abcd", &Labels::new()).expect("recreate");
        assert!(l.list_resources("123-abcd").expect("list").is_empty());
    }
}
