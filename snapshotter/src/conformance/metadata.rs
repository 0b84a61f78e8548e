//! Cases that need no mounts: records, errors, labels, listing, persistence.

use std::collections::BTreeSet;
use std::sync::Barrier;

use super::{Factory, Scratch, kind_of, labels};
use crate::error::ErrorKind;
use crate::snapshotter::{Kind, Labels};

/// prepare → commit → prepare on it → commit → view: kinds and parents as containerd.
pub(crate) fn chain_metadata(make: Factory<'_>, scratch: &Scratch) {
    let s = make(&scratch.root());
    let m = s.prepare("a", "", Labels::new()).expect("prepare a");
    assert_eq!(m.len(), 1, "one mount for a snapshot without parent: {m:?}");
    assert_eq!(s.mounts("a").expect("mounts a"), m);
    let a = s.stat("a").expect("stat a");
    assert_eq!(
        (a.kind, a.parent.as_str(), a.name.as_str()),
        (Kind::Active, "", "a")
    );

    s.commit("base", "a", labels(&[("l", "1")]))
        .expect("commit base");
    assert_eq!(
        kind_of(s.stat("a")),
        ErrorKind::NotFound,
        "the key is gone after commit"
    );
    let base = s.stat("base").expect("stat base");
    assert_eq!((base.kind, base.parent.as_str()), (Kind::Committed, ""));
    assert_eq!(base.labels, labels(&[("l", "1")]));

    s.prepare("b", "base", Labels::new()).expect("prepare b");
    assert_eq!(s.stat("b").expect("stat b").parent, "base");
    s.commit("top", "b", Labels::new()).expect("commit top");
    let vm = s.view("v", "top", Labels::new()).expect("view v");
    assert_eq!(s.mounts("v").expect("mounts v"), vm);
    let v = s.stat("v").expect("stat v");
    assert_eq!((v.kind, v.parent.as_str()), (Kind::View, "top"));
    assert!(
        vm.iter()
            .all(|m| m.options.iter().any(|o| o == "ro") || m.fs_type == "overlay"),
        "views are read-only: {vm:?}"
    );
}

/// containerd's error codes for every misuse.
pub(crate) fn error_codes(make: Factory<'_>, scratch: &Scratch) {
    let s = make(&scratch.root());
    let none = Labels::new;
    s.prepare("a", "", none()).expect("prepare a");
    assert_eq!(
        kind_of(s.prepare("a", "", none())),
        ErrorKind::AlreadyExists
    );
    assert_eq!(kind_of(s.view("a", "", none())), ErrorKind::AlreadyExists);
    assert_eq!(
        kind_of(s.prepare("x", "missing", none())),
        ErrorKind::NotFound
    );
    assert_eq!(kind_of(s.view("x", "missing", none())), ErrorKind::NotFound);
    assert_eq!(
        kind_of(s.view("x", "a", none())),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind_of(s.prepare("x", "a", none())),
        ErrorKind::InvalidArgument,
        "active parent"
    );
    assert_eq!(
        kind_of(s.prepare("", "", none())),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kind_of(s.stat("x")),
        ErrorKind::NotFound,
        "failed prepares leave nothing"
    );
    assert_eq!(
        kind_of(s.commit("c", "missing", none())),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind_of(s.commit("", "a", none())),
        ErrorKind::InvalidArgument
    );
    s.commit("c", "a", none()).expect("commit c");
    assert_eq!(
        kind_of(s.commit("c2", "c", none())),
        ErrorKind::FailedPrecondition,
        "committed"
    );
    s.view("v", "c", none()).expect("view v");
    assert_eq!(
        kind_of(s.commit("c3", "v", none())),
        ErrorKind::FailedPrecondition,
        "a view"
    );
    s.prepare("b", "c", none()).expect("prepare b");
    assert_eq!(
        kind_of(s.commit("c", "b", none())),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        s.stat("b").expect("b survives a failed commit").kind,
        Kind::Active
    );
    assert_eq!(
        kind_of(s.commit("b", "b", none())),
        ErrorKind::AlreadyExists,
        "containerd refuses a name equal to the key"
    );
    assert_eq!(
        kind_of(s.commit("c", "missing", none())),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind_of(s.mounts("c")),
        ErrorKind::FailedPrecondition,
        "committed has no mounts"
    );
    assert_eq!(kind_of(s.mounts("missing")), ErrorKind::NotFound);
    assert_eq!(kind_of(s.stat("missing")), ErrorKind::NotFound);
    assert_eq!(kind_of(s.usage("missing")), ErrorKind::NotFound);
    assert_eq!(kind_of(s.remove("missing")), ErrorKind::NotFound);
    let mut info = s.stat("c").expect("stat c");
    info.name = "missing".into();
    assert_eq!(kind_of(s.update(info, &[])), ErrorKind::NotFound);
    let big = labels(&[("k", &"v".repeat(5000))]);
    assert_eq!(kind_of(s.prepare("y", "", big)), ErrorKind::InvalidArgument);
}

/// Update: `labels.<k>` merges one label, `labels` or no path replaces them all.
pub(crate) fn labels_update(make: Factory<'_>, scratch: &Scratch) {
    let s = make(&scratch.root());
    s.prepare("a", "", labels(&[("keep", "1"), ("x", "old")]))
        .expect("prepare");
    let before = s.stat("a").expect("stat");
    assert_eq!(before.labels, labels(&[("keep", "1"), ("x", "old")]));

    let mut req = before.clone();
    req.labels = labels(&[("x", "new"), ("ignored", "y")]);
    let got = s
        .update(req, &["labels.x".into()])
        .expect("update labels.x");
    assert_eq!(got.labels, labels(&[("keep", "1"), ("x", "new")]));
    assert!(got.updated_at >= before.updated_at);
    assert_eq!(got.created_at, before.created_at);
    assert_eq!(
        s.stat("a").expect("stat").labels,
        got.labels,
        "update is stored"
    );

    let mut req = got.clone();
    req.labels = Labels::new();
    let got = s
        .update(req, &["labels.keep".into()])
        .expect("remove one label");
    assert_eq!(got.labels, labels(&[("x", "new")]));

    let mut req = got.clone();
    req.labels = labels(&[("only", "this")]);
    let got = s.update(req, &[]).expect("replace");
    assert_eq!(got.labels, labels(&[("only", "this")]));

    let mut req = got.clone();
    req.labels = labels(&[("z", "1")]);
    let got = s
        .update(req, &["labels".into()])
        .expect("replace via labels");
    assert_eq!(got.labels, labels(&[("z", "1")]));

    let mut req = got.clone();
    req.parent = "other".into();
    assert_eq!(
        kind_of(s.update(req, &["parent".into()])),
        ErrorKind::InvalidArgument
    );
    assert_eq!(s.stat("a").expect("stat").parent, "", "parent is immutable");
}

/// A snapshot with children cannot be removed; without, it goes and its key is free.
pub(crate) fn remove_rules(make: Factory<'_>, scratch: &Scratch) {
    let s = make(&scratch.root());
    s.prepare("a", "", Labels::new()).expect("prepare a");
    s.commit("base", "a", Labels::new()).expect("commit");
    s.prepare("child", "base", Labels::new())
        .expect("prepare child");
    s.view("view", "base", Labels::new()).expect("view");
    assert_eq!(kind_of(s.remove("base")), ErrorKind::FailedPrecondition);
    s.remove("child").expect("remove child");
    assert_eq!(
        kind_of(s.remove("base")),
        ErrorKind::FailedPrecondition,
        "the view remains"
    );
    s.remove("view").expect("remove view");
    s.remove("base").expect("remove base");
    for key in ["base", "child", "view"] {
        assert_eq!(kind_of(s.stat(key)), ErrorKind::NotFound, "{key}");
    }
    assert!(s.walk(&|_| true).expect("walk").is_empty());
    s.prepare("base", "", Labels::new())
        .expect("the name is free again");
}

/// Walk lists every snapshot once, sorted, and applies the filter.
pub(crate) fn walk_filters(make: Factory<'_>, scratch: &Scratch) {
    let s = make(&scratch.root());
    s.prepare("k1", "", labels(&[("team", "a")]))
        .expect("prepare");
    s.commit("c1", "k1", labels(&[("team", "b")]))
        .expect("commit");
    s.prepare("k2", "c1", labels(&[("team", "a")]))
        .expect("prepare");
    s.view("v1", "c1", Labels::new()).expect("view");
    let all = s.walk(&|_| true).expect("walk");
    let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["c1", "k2", "v1"]);
    for info in &all {
        assert_eq!(
            info,
            &s.stat(&info.name).expect("stat"),
            "walk agrees with stat"
        );
    }
    let active = s.walk(&|i| i.kind == Kind::Active).expect("walk active");
    assert_eq!(
        active.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["k2"]
    );
    let team_a = s
        .walk(&|i| i.labels.get("team").map(String::as_str) == Some("a"))
        .expect("walk");
    assert_eq!(team_a.len(), 1);
    let children = s.walk(&|i| i.parent == "c1").expect("walk children");
    assert_eq!(children.len(), 2);
}

/// Drop and reopen: every record, label, timestamp and mount is the same; new ids do
/// not collide with old ones.
pub(crate) fn reopen_persists(make: Factory<'_>, scratch: &Scratch) {
    let root = scratch.root();
    let (infos, mounts_k2, mounts_v) = {
        let s = make(&root);
        s.prepare("k1", "", labels(&[("a", "1")])).expect("prepare");
        s.commit("c1", "k1", labels(&[("b", "2")])).expect("commit");
        s.prepare("k2", "c1", Labels::new()).expect("prepare");
        s.view("v", "c1", Labels::new()).expect("view");
        s.prepare("gone", "", Labels::new()).expect("prepare");
        s.remove("gone").expect("remove");
        let mut info = s.stat("k2").expect("stat");
        info.labels = labels(&[("c", "3")]);
        s.update(info, &[]).expect("update");
        let infos = s.walk(&|_| true).expect("walk");
        (
            infos,
            s.mounts("k2").expect("mounts"),
            s.mounts("v").expect("mounts"),
        )
    };
    let s = make(&root);
    assert_eq!(s.walk(&|_| true).expect("walk after reopen"), infos);
    assert_eq!(s.mounts("k2").expect("mounts"), mounts_k2);
    assert_eq!(s.mounts("v").expect("mounts"), mounts_v);
    assert_eq!(kind_of(s.stat("gone")), ErrorKind::NotFound);
    let fresh = s
        .prepare("k3", "", Labels::new())
        .expect("prepare after reopen");
    for old in [&mounts_k2, &mounts_v] {
        assert_ne!(&fresh, old, "a new snapshot gets a new directory");
    }
    s.commit("c2", "k2", Labels::new())
        .expect("commit after reopen");
}

/// Many threads at once: distinct keys all succeed; one key succeeds exactly once.
pub(crate) fn concurrent_prepares(make: Factory<'_>, scratch: &Scratch) {
    let s = make(&scratch.root());
    s.prepare("a", "", Labels::new()).expect("prepare");
    s.commit("base", "a", Labels::new()).expect("commit");
    let n = 8;
    let barrier = Barrier::new(n);
    let (distinct, same): (Vec<_>, Vec<_>) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (s, barrier) = (&s, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let own = s.prepare(&format!("k{i}"), "base", Labels::new());
                    let shared = s.prepare("same", "base", Labels::new());
                    (own, shared)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .unzip()
    });
    let mounts: BTreeSet<String> = distinct
        .into_iter()
        .map(|r| format!("{:?}", r.expect("distinct keys all succeed")))
        .collect();
    assert_eq!(mounts.len(), n, "every snapshot has its own mounts");
    let ok = same.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "exactly one prepare of a shared key wins");
    for r in same.into_iter().filter(|r| r.is_err()) {
        assert_eq!(kind_of(r), ErrorKind::AlreadyExists);
    }
    assert_eq!(s.walk(&|i| i.parent == "base").expect("walk").len(), n + 1);
}
