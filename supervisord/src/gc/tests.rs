//! The collector over a real metadata store, content store and native snapshotter.

use berth_snapshotter::{Labels, NATIVE, Native};

use super::{Collector, spawn};
use crate::content::{ContentStore, ContentWriter, Digest, LocalStore, WriterOpts};
use crate::filters::Filter;
use crate::metadata::leases::EXPIRE_LABEL;
use crate::metadata::{Container, Db, Descriptor, Image};
use crate::snapshots::Snapshotters;

struct Env {
    _dir: tempfile::TempDir,
    db: Db,
    content: LocalStore,
    snaps: Snapshotters,
    collector: Collector,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("meta")).expect("db");
    let content = LocalStore::open(dir.path(), db.clone()).expect("content");
    let native = Native::open(&dir.path().join("native")).expect("native");
    let snaps =
        Snapshotters::with_backends(db.clone(), vec![(NATIVE.to_owned(), Box::new(native))]);
    let collector = Collector::new(db.clone(), content.clone(), snaps.clone());
    Env {
        _dir: dir,
        db,
        content,
        snaps,
        collector,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn put(e: &Env, ns: &str, data: &[u8], l: Labels, lease: Option<&str>) -> String {
    let d = Digest::of(data);
    let opts = WriterOpts {
        reference: format!("ref-{d}"),
        total: data.len() as u64,
        expected: Some(d.clone()),
        lease: lease.map(str::to_owned),
    };
    let mut w = e.content.writer(ns, opts).await.expect("writer");
    w.write_at(0, data.to_vec()).await.expect("write");
    w.commit(data.len() as u64, Some(d.clone()), l)
        .await
        .expect("commit");
    d.to_string()
}

async fn digests(e: &Env, ns: &str) -> Vec<String> {
    let mut v: Vec<String> = e
        .content
        .list(ns, Filter::all())
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.digest.to_string())
        .collect();
    v.sort();
    v
}

fn snapshot_names(e: &Env, ns: &str) -> Vec<String> {
    e.snaps
        .list(ns, NATIVE, &Filter::all())
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect()
}

/// What `ctr images pull` leaves in `ns`: manifest → config (→ top snapshot) + layer.
async fn pull(e: &Env, ns: &str, image: bool) -> Vec<String> {
    let layer = put(e, ns, b"layer bytes", Labels::new(), None).await;
    e.snaps
        .prepare(ns, NATIVE, "extract-1", "", Labels::new(), None)
        .expect("prepare");
    e.snaps
        .commit(ns, NATIVE, "chain0", "extract-1", Labels::new(), None)
        .expect("commit");
    e.snaps
        .prepare(ns, NATIVE, "extract-2", "chain0", Labels::new(), None)
        .expect("prepare");
    e.snaps
        .commit(ns, NATIVE, "top", "extract-2", Labels::new(), None)
        .expect("commit");
    let cfg_labels = labels(&[("containerd.io/gc.ref.snapshot.native", "top")]);
    let config = put(e, ns, b"config bytes", cfg_labels, None).await;
    let man_labels = labels(&[
        ("containerd.io/gc.ref.content.config", &config),
        ("containerd.io/gc.ref.content.l.0", &layer),
    ]);
    let manifest = put(e, ns, b"manifest bytes", man_labels, None).await;
    if image {
        let target = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: manifest.clone(),
            size: 14,
            annotations: Labels::new(),
        };
        e.db.images(ns)
            .create(&Image::new("img", target, Labels::new()), None)
            .expect("image");
    }
    let mut all = vec![layer, config, manifest];
    all.sort();
    all
}

#[tokio::test]
async fn an_image_keeps_its_tree_until_deleted() {
    let e = env();
    let kept = pull(&e, "a", true).await;
    pull(&e, "b", false).await; // same blobs, no image: b's records go, the files stay
    let stray = put(&e, "a", b"stray", Labels::new(), None).await;
    e.snaps
        .prepare("a", NATIVE, "stray", "", Labels::new(), None)
        .expect("stray snapshot");
    let stats = e.collector.run().await.expect("gc");
    assert_eq!(digests(&e, "a").await, kept);
    assert!(digests(&e, "b").await.is_empty());
    assert_eq!(snapshot_names(&e, "a"), ["chain0", "top"]);
    assert!(snapshot_names(&e, "b").is_empty());
    assert_eq!((stats.content, stats.blobs), (4, 1), "{stats:?}");
    assert_eq!(
        (stats.snapshots, stats.backend_snapshots),
        (3, 3),
        "{stats:?}"
    );
    let on_disk = e.content.disk_blobs().await.expect("disk");
    assert_eq!(on_disk.len(), 3);
    assert!(!on_disk.iter().any(|(d, _)| d.to_string() == stray));

    e.db.images("a").delete("img").expect("delete image");
    e.collector.run().await.expect("gc");
    assert!(digests(&e, "a").await.is_empty());
    assert!(snapshot_names(&e, "a").is_empty());
    assert!(e.content.disk_blobs().await.expect("disk").is_empty());
    let backend = &e.snaps.backend(NATIVE).expect("native").snapshotter;
    assert!(backend.walk(&|_| true).expect("walk").is_empty());
}

#[tokio::test]
async fn leases_containers_and_root_labels_protect() {
    let e = env();
    let live = labels(&[(EXPIRE_LABEL, "2999-01-01T00:00:00Z")]);
    let dead = labels(&[(EXPIRE_LABEL, "2000-01-01T00:00:00Z")]);
    e.db.leases("ns").create("live", &live).expect("lease");
    e.db.leases("ns").create("dead", &dead).expect("lease");
    let leased = put(&e, "ns", b"leased", Labels::new(), Some("live")).await;
    put(&e, "ns", b"expired", Labels::new(), Some("dead")).await;
    let rooted = put(
        &e,
        "ns",
        b"rooted",
        labels(&[("containerd.io/gc.root", "")]),
        None,
    )
    .await;
    // A container's snapshot keeps its parent; a leased snapshot is kept alone.
    e.snaps
        .prepare("ns", NATIVE, "p", "", Labels::new(), None)
        .expect("prepare");
    e.snaps
        .commit("ns", NATIVE, "parent", "p", Labels::new(), None)
        .expect("commit");
    e.snaps
        .prepare("ns", NATIVE, "c1", "parent", Labels::new(), None)
        .expect("prepare");
    let mut c = Container::new("c1");
    c.runtime.name = "io.containerd.runc.v2".into();
    c.spec = Some(Default::default());
    c.snapshotter = NATIVE.into();
    c.snapshot_key = "c1".into();
    e.db.containers("ns").create(&c, None).expect("container");
    e.snaps
        .prepare("ns", NATIVE, "leased", "", Labels::new(), Some("live"))
        .expect("prepare");
    // An ingest under the live lease stays; one without a lease goes.
    for (reference, lease) in [("held", Some("live")), ("loose", None)] {
        let opts = WriterOpts {
            reference: reference.into(),
            total: 10,
            expected: None,
            lease: lease.map(str::to_owned),
        };
        let mut w = e.content.writer("ns", opts).await.expect("writer");
        w.write_at(0, b"part".to_vec()).await.expect("write");
    }
    let stats = e.collector.run().await.expect("gc");
    let mut want = vec![leased, rooted];
    want.sort();
    assert_eq!(digests(&e, "ns").await, want);
    assert_eq!(snapshot_names(&e, "ns"), ["c1", "leased", "parent"]);
    let refs: Vec<String> = e
        .content
        .list_statuses("ns", Filter::all())
        .await
        .expect("statuses")
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(refs, ["held"]);
    assert_eq!(stats.ingests, 1, "{stats:?}");

    e.db.containers("ns")
        .delete("c1")
        .expect("delete container");
    e.db.leases("ns").delete("live").expect("delete lease");
    e.collector.run().await.expect("gc");
    assert_eq!(digests(&e, "ns").await.len(), 1, "only the gc.root blob");
    assert!(snapshot_names(&e, "ns").is_empty());
    assert!(
        e.content
            .list_statuses("ns", Filter::all())
            .await
            .expect("s")
            .is_empty()
    );
}

#[tokio::test]
async fn the_handle_collects_on_demand_and_batches_schedules() {
    let e = env();
    let (gc, _task) = spawn(e.collector.clone());
    put(&e, "ns", b"unreferenced", Labels::new(), None).await;
    gc.schedule();
    gc.schedule();
    // The start-up run and the schedules may batch; the collect runs after the write.
    gc.collect().await.expect("collect");
    assert!(digests(&e, "ns").await.is_empty());
    let disabled = super::Gc::disabled();
    disabled.schedule();
    assert!(disabled.collect().await.is_err());
}
