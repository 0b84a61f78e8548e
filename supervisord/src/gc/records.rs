//! The metadata side of a collection: read every record into a [`Graph`] and delete the
//! unreachable content and snapshot records, all in one write transaction, so no RPC can
//! add a reference between the mark and the sweep (containerd holds its bolt write lock
//! the same way). Files and backend snapshots go after, outside the transaction.

use std::time::SystemTime;

use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use super::mark::{Graph, Node, is_root, label_refs};
use crate::metadata::content::BlobRecord;
use crate::metadata::gc::is_expired;
use crate::metadata::{self, Container, Db, Image, Lease, SnapshotRecord, WriteTxn, schema, store};

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

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, metadata::Error> {
    serde_json::from_slice(bytes).map_err(|source| metadata::Error::Codec {
        key: key.to_owned(),
        source,
    })
}

type Table2 = TableDefinition<'static, (&'static str, &'static str), &'static [u8]>;

/// `(ns, id, value bytes)` of every row of a `(ns, id)` table.
fn rows2(txn: &WriteTxn, def: Table2) -> Result<Vec<(String, String, Vec<u8>)>, metadata::Error> {
    let t = txn.open_table(def).map_err(store)?;
    let mut out = Vec::new();
    for entry in t.iter().map_err(store)? {
        let (k, v) = entry.map_err(store)?;
        let (ns, id) = k.value();
        out.push((ns.to_owned(), id.to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

/// Reads every record of the store into the reference graph.
pub(crate) fn read_graph(txn: &WriteTxn, now: SystemTime) -> Result<Graph, metadata::Error> {
    let mut g = Graph::default();
    for (ns, name, bytes) in rows2(txn, schema::IMAGES)? {
        let img: Image = decode(&name, &bytes)?;
        g.add_root(Node::content(&ns, &img.target.digest));
        g.add_root_refs(label_refs(&ns, &img.labels));
    }
    for (ns, id, bytes) in rows2(txn, schema::CONTAINERS)? {
        let c: Container = decode(&id, &bytes)?;
        if !c.snapshot_key.is_empty() && !c.snapshotter.is_empty() {
            g.add_root(Node::snapshot(&ns, &c.snapshotter, &c.snapshot_key));
        }
        g.add_root_refs(label_refs(&ns, &c.labels));
    }
    let mut live_leases = std::collections::HashSet::new();
    for (ns, id, bytes) in rows2(txn, schema::LEASES)? {
        let lease: Lease = decode(&id, &bytes)?;
        if !is_expired(&lease, now) {
            live_leases.insert((ns, id));
        }
    }
    {
        let t = txn.open_table(schema::LEASE_RESOURCES).map_err(store)?;
        for entry in t.iter().map_err(store)? {
            let (k, _) = entry.map_err(store)?;
            let (ns, lease, kind, id) = k.value();
            if !live_leases.contains(&(ns.to_owned(), lease.to_owned())) {
                continue;
            }
            match (kind, kind.strip_prefix("snapshots/")) {
                ("content", _) => g.add_root(Node::content(ns, id)),
                ("ingests", _) => g.add_root(Node::ingest(ns, id)),
                (_, Some(sn)) => g.add_root(Node::snapshot(ns, sn, id)),
                _ => {}
            }
        }
    }
    for (ns, digest, bytes) in rows2(txn, schema::CONTENT)? {
        let rec: BlobRecord = decode(&digest, &bytes)?;
        let node = Node::content(&ns, &digest);
        if is_root(&rec.labels) {
            g.add_root(node.clone());
        }
        g.add_object(node, label_refs(&ns, &rec.labels));
    }
    for (ns, reference, _) in rows2(txn, schema::CONTENT_INGESTS)? {
        g.add_object(Node::ingest(&ns, &reference), Vec::new());
    }
    {
        let t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
        for entry in t.iter().map_err(store)? {
            let (k, v) = entry.map_err(store)?;
            let (ns, sn, key) = k.value();
            let rec: SnapshotRecord = decode(key, v.value())?;
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
    }
    Ok(g)
}

/// Mark from the roots and delete the unreachable content and snapshot records.
pub(crate) fn sweep_records(db: &Db, now: SystemTime) -> Result<SweptRecords, metadata::Error> {
    db.write(|txn| {
        let graph = read_graph(txn, now)?;
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
        {
            let mut t = txn.open_table(schema::CONTENT).map_err(store)?;
            for (ns, digest) in &swept.content {
                t.remove((ns.as_str(), digest.as_str())).map_err(store)?;
            }
        }
        {
            let mut t = txn.open_table(schema::SNAPSHOTS).map_err(store)?;
            for (ns, sn, key) in &swept.snapshots {
                t.remove((ns.as_str(), sn.as_str(), key.as_str()))
                    .map_err(store)?;
            }
        }
        Ok(swept)
    })
}
