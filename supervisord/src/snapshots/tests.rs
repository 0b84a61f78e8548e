//! The namespaced domain over a real native backend in a temp dir.

use berth_api::{ErrorKind, HasKind};
use berth_snapshotter::{Kind, Labels, NATIVE, Native};

use super::Snapshotters;
use crate::filters::Filter;
use crate::metadata::{Db, LeaseResource};

struct Env {
    _dir: tempfile::TempDir,
    s: Snapshotters,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("meta")).expect("db");
    let native = Native::open(&dir.path().join("native")).expect("native");
    let s = Snapshotters::with_backends(db, vec![(NATIVE.to_owned(), Box::new(native))]);
    Env { _dir: dir, s }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn kind<T: std::fmt::Debug>(r: Result<T, super::SnapshotError>) -> ErrorKind {
    r.expect_err("an error").kind()
}

#[test]
fn keys_are_namespaced_and_errors_are_containerds() {
    let Env { s, .. } = &env();
    let m = s
        .prepare("a", NATIVE, "k", "", Labels::new(), None)
        .expect("prepare a");
    let m2 = s
        .prepare("b", NATIVE, "k", "", Labels::new(), None)
        .expect("prepare b");
    assert_ne!(m[0].source, m2[0].source, "two namespaces, two snapshots");
    std::fs::write(format!("{}/f", m[0].source), "x").expect("write into a");
    assert!(!std::path::Path::new(&format!("{}/f", m2[0].source)).exists());

    assert_eq!(
        kind(s.prepare("a", NATIVE, "k", "", Labels::new(), None)),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(s.prepare("a", NATIVE, "k2", "nope", Labels::new(), None)),
        ErrorKind::NotFound
    );
    assert_eq!(kind(s.stat("a", NATIVE, "missing")), ErrorKind::NotFound);
    assert_eq!(kind(s.stat("a", "zfs", "k")), ErrorKind::InvalidArgument);
    assert_eq!(kind(s.stat("a", "", "k")), ErrorKind::InvalidArgument);
    assert_eq!(kind(s.mounts("c", NATIVE, "k")), ErrorKind::NotFound);
    assert_eq!(kind(s.remove("a", NATIVE, "missing")), ErrorKind::NotFound);
    assert_eq!(
        kind(s.prepare("a", NATIVE, "", "", Labels::new(), None)),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn commit_view_children_and_remove() {
    let Env { s, .. } = &env();
    let m = s
        .prepare("ns", NATIVE, "active", "", Labels::new(), None)
        .expect("prepare");
    std::fs::write(format!("{}/hello", m[0].source), "hi").expect("write");
    // Commit: the name must be free (also when it is the key), the key must exist.
    assert_eq!(
        kind(s.commit("ns", NATIVE, "active", "active", Labels::new(), None)),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(s.commit("ns", NATIVE, "c1", "missing", Labels::new(), None)),
        ErrorKind::NotFound
    );
    s.commit("ns", NATIVE, "c1", "active", labels(&[("l", "1")]), None)
        .expect("commit");
    assert_eq!(kind(s.stat("ns", NATIVE, "active")), ErrorKind::NotFound);
    let info = s.stat("ns", NATIVE, "c1").expect("stat");
    assert_eq!((info.kind, info.parent.as_str()), (Kind::Committed, ""));
    assert_eq!(info.labels, labels(&[("l", "1")]));
    assert_eq!(
        kind(s.mounts("ns", NATIVE, "c1")),
        ErrorKind::FailedPrecondition
    );

    let v = s
        .view("ns", NATIVE, "v", "c1", Labels::new(), None)
        .expect("view");
    assert_eq!(
        std::fs::read_to_string(format!("{}/hello", v[0].source)).expect("read"),
        "hi"
    );
    assert!(v[0].options.iter().any(|o| o == "ro"));
    assert_eq!(s.stat("ns", NATIVE, "v").expect("stat").kind, Kind::View);
    assert_eq!(
        kind(s.commit("ns", NATIVE, "c2", "v", Labels::new(), None)),
        ErrorKind::FailedPrecondition
    );
    assert_eq!(
        kind(s.remove("ns", NATIVE, "c1")),
        ErrorKind::FailedPrecondition
    );
    s.remove("ns", NATIVE, "v").expect("remove view");
    s.remove("ns", NATIVE, "c1").expect("remove parent");
    assert!(
        s.list("ns", NATIVE, &Filter::all())
            .expect("list")
            .is_empty()
    );
}

#[test]
fn update_list_filters_usage_and_leases() {
    let Env { s, .. } = &env();
    s.db()
        .leases("ns")
        .create("l1", &Labels::new())
        .expect("lease");
    s.prepare(
        "ns",
        NATIVE,
        "a",
        "",
        labels(&[("x", "1"), ("y", "2")]),
        Some("l1"),
    )
    .expect("prepare");
    s.commit("ns", NATIVE, "base", "a", Labels::new(), Some("l1"))
        .expect("commit");
    s.prepare("ns", NATIVE, "b", "base", labels(&[("x", "1")]), None)
        .expect("prepare child");
    let res = s.db().leases("ns").list_resources("l1").expect("resources");
    let want = |id: &str| LeaseResource {
        id: id.into(),
        kind: "snapshots/native".into(),
    };
    assert!(
        res.contains(&want("a")) && res.contains(&want("base")),
        "{res:?}"
    );
    assert_eq!(
        kind(s.prepare("ns", NATIVE, "c", "", Labels::new(), Some("no-such-lease"))),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.stat("ns", NATIVE, "c")),
        ErrorKind::NotFound,
        "undone"
    );

    let mut info = s.stat("ns", NATIVE, "b").expect("stat");
    info.labels = labels(&[("z", "3")]);
    let up = s
        .update(
            "ns",
            NATIVE,
            info.clone(),
            &["labels.z".into(), "labels.x".into()],
        )
        .expect("update");
    assert_eq!(up.labels, labels(&[("z", "3")]));
    assert!(up.updated_at >= up.created_at);
    assert_eq!(
        kind(s.update("ns", NATIVE, info.clone(), &["parent".into()])),
        ErrorKind::InvalidArgument
    );
    let all = s.update("ns", NATIVE, info, &[]).expect("replace");
    assert_eq!(all.labels, labels(&[("z", "3")]));

    let names = |f: &str| -> Vec<String> {
        let filter = Filter::parse_all(&[f]).expect("filter");
        s.list("ns", NATIVE, &filter)
            .expect("list")
            .into_iter()
            .map(|i| i.name)
            .collect()
    };
    assert_eq!(names(""), ["b", "base"]);
    assert_eq!(names("kind==committed"), ["base"]);
    assert_eq!(names("parent==base"), ["b"]);
    assert_eq!(names("labels.z==3"), ["b"]);
    assert!(names("name==a").is_empty());
    assert!(
        s.list("other", NATIVE, &Filter::all())
            .expect("list")
            .is_empty()
    );
    assert!(s.usage("ns", NATIVE, "base").expect("usage").inodes >= 1);
    assert_eq!(s.cleanup(NATIVE).expect("cleanup"), 0);
}

#[test]
fn sweep_removes_unrecorded_backend_snapshots_children_first() {
    let env = env();
    let s = &env.s;
    s.prepare("ns", NATIVE, "kept", "", Labels::new(), None)
        .expect("prepare");
    // Orphans as a crash between backend and record would leave them: a chain of two.
    let backend = &s.backend(NATIVE).expect("backend").snapshotter;
    backend
        .prepare("orphan-a", "", Labels::new())
        .expect("orphan");
    backend
        .commit("orphan-base", "orphan-a", Labels::new())
        .expect("orphan commit");
    backend
        .prepare("orphan-child", "orphan-base", Labels::new())
        .expect("orphan child");
    let held = s.lock_all();
    let stats = s.sweep(&held, NATIVE).expect("sweep");
    drop(held);
    assert_eq!((stats.removed, stats.failed), (2, 0));
    let left: Vec<String> = backend
        .walk(&|_| true)
        .expect("walk")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with("/kept"), "{left:?}");
    assert_eq!(
        s.stat("ns", NATIVE, "kept").expect("stat").kind,
        Kind::Active
    );
}

#[test]
fn removed_record_leaves_an_orphan_that_backend_removal_or_the_sweep_takes() {
    let env = env();
    let s = &env.s;
    let backend = &s.backend(NATIVE).expect("backend").snapshotter;
    let names = || -> Vec<String> {
        backend
            .walk(&|_| true)
            .expect("walk")
            .into_iter()
            .map(|i| i.name)
            .collect()
    };
    s.prepare("ns", NATIVE, "a", "", Labels::new(), None)
        .expect("prepare a");
    s.prepare("ns", NATIVE, "b", "", Labels::new(), None)
        .expect("prepare b");

    // The record goes first: the snapshot is gone for every caller, its backend
    // snapshot is still there.
    let key_a = s.remove_record("ns", NATIVE, "a").expect("remove a");
    assert_eq!(kind(s.stat("ns", NATIVE, "a")), ErrorKind::NotFound);
    assert_eq!(
        kind(s.remove_record("ns", NATIVE, "a")),
        ErrorKind::NotFound
    );
    assert!(names().contains(&key_a), "{:?}", names());
    s.remove_backend(NATIVE, &key_a);
    assert!(!names().contains(&key_a), "{:?}", names());

    // A crash before the backend removal: the sweep takes the orphan, and a late
    // backend removal after it is harmless.
    let key_b = s.remove_record("ns", NATIVE, "b").expect("remove b");
    let held = s.lock_all();
    let stats = s.sweep(&held, NATIVE).expect("sweep");
    drop(held);
    assert_eq!((stats.removed, stats.failed), (1, 0));
    assert!(names().is_empty(), "{:?}", names());
    s.remove_backend(NATIVE, &key_b);
    assert!(names().is_empty(), "{:?}", names());
}
