//! The metadata side of a collection: read every record into a [`Graph`] and delete the
//! unreachable content and snapshot records, all in one write transaction, so no RPC can
//! add a reference between the mark and the sweep (containerd holds its bolt write lock
//! the same way). Files and backend snapshots go after, outside the transaction.

use std::collections::HashSet;
use std::time::SystemTime;

use super::mark::{Graph, Node, is_root, label_refs};
use crate::metadata::gc::{AllRecords, is_expired};
use crate::metadata::{self, Db};

/// What the record sweep removed, or found collectable outside the transaction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweptRecords {
    /// `(ns, digest)` content records deleted.
    pub content: Vec<(String, String)>,
    /// `(ns, snapshotter, key)` snapshot records deleted.
    pub snapshots: Vec<(String, String, String)>,
    /// `(ns, ref)` ingests no lease holds (aborted through the content store).
    pub ingests: Vec<(String, String)>,
}

/// The reference graph of every record the store holds at time `now`.
pub(crate) fn graph(all: &AllRecords, now: SystemTime) -> Graph {
    let mut g = Graph::default();
    for (ns, _, img) in &all.images {
        g.add_root(Node::content(ns, &img.target.digest));
        g.add_root_refs(label_refs(ns, &img.labels));
    }
    for (ns, _, c) in &all.containers {
        if !c.snapshot_key.is_empty() && !c.snapshotter.is_empty() {
            g.add_root(Node::snapshot(ns, &c.snapshotter, &c.snapshot_key));
        }
        g.add_root_refs(label_refs(ns, &c.labels));
    }
    let live_leases: HashSet<(&str, &str)> = all
        .leases
        .iter()
        .filter(|(_, _, lease)| !is_expired(lease, now))
        .map(|(ns, id, _)| (ns.as_str(), id.as_str()))
        .collect();
    for (ns, lease, r) in &all.lease_resources {
        if !live_leases.contains(&(ns.as_str(), lease.as_str())) {
            continue;
        }
        match (r.kind.as_str(), r.kind.strip_prefix("snapshots/")) {
            ("content", _) => g.add_root(Node::content(ns, &r.id)),
            ("ingests", _) => g.add_root(Node::ingest(ns, &r.id)),
            (_, Some(sn)) => g.add_root(Node::snapshot(ns, sn, &r.id)),
            _ => {}
        }
    }
    for (ns, digest, rec) in &all.content {
        let node = Node::content(ns, digest);
        if is_root(&rec.labels) {
            g.add_root(node.clone());
        }
        g.add_object(node, label_refs(ns, &rec.labels));
    }
    for (ns, reference) in &all.ingests {
        g.add_object(Node::ingest(ns, reference), Vec::new());
    }
    for (ns, sn, key, rec) in &all.snapshots {
        let node = Node::snapshot(ns, sn, key);
        if is_root(&rec.labels) {
            g.add_root(node.clone());
        }
        let mut refs = label_refs(ns, &rec.labels);
        if !rec.parent.is_empty() {
            refs.push(Node::snapshot(ns, sn, &rec.parent));
        }
        g.add_object(node, refs);
    }
    g
}

/// Mark from the roots and delete the unreachable content and snapshot records.
pub(crate) fn sweep_records(db: &Db, now: SystemTime) -> Result<SweptRecords, metadata::Error> {
    db.write(|txn| {
        let graph = graph(&metadata::gc::read_all(txn)?, now);
        let mut swept = SweptRecords::default();
        for node in graph.unreachable() {
            match node {
                Node::Content { ns, digest } => swept.content.push((ns, digest)),
                Node::Snapshot {
                    ns,
                    snapshotter,
                    key,
                } => swept.snapshots.push((ns, snapshotter, key)),
                Node::Ingest { ns, reference } => swept.ingests.push((ns, reference)),
            }
        }
        metadata::gc::delete_in(txn, &swept.content, &swept.snapshots)?;
        Ok(swept)
    })
}
