//! Cases that mount the returned mounts (root only).

use std::fs;
use std::io::ErrorKind as IoKind;
use std::path::Path;

use super::{Factory, Scratch, have_root, mount_on};
use crate::snapshotter::{Labels, Snapshotter};

fn read(dir: &Path, name: &str) -> Option<String> {
    match fs::read_to_string(dir.join(name)) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == IoKind::NotFound => None,
        Err(e) => panic!("read {name}: {e}"),
    }
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    fs::write(&path, content).expect("write through the mount");
}

/// Prepares `key` on `parent`, lets `edit` change it through its mounts, commits `name`.
fn layer(
    s: &dyn Snapshotter,
    scratch: &Scratch,
    key: &str,
    parent: &str,
    name: &str,
    edit: impl FnOnce(&Path),
) {
    let mounts = s.prepare(key, parent, Labels::new()).expect("prepare");
    {
        let m = mount_on(scratch, key, &mounts);
        edit(m.target());
    }
    s.commit(name, key, Labels::new()).expect("commit");
}

/// Files of lower layers are visible above; changes and deletions in a layer hide the
/// lower state only from that layer up; views are read-only.
pub(crate) fn layers_visible_through_mounts(make: Factory<'_>, scratch: &Scratch) {
    if !have_root("layers_visible_through_mounts") {
        return;
    }
    let s = make(&scratch.root());
    layer(&*s, scratch, "k1", "", "L1", |d| {
        write(d, "a.txt", "one");
        write(d, "dir/x", "x");
        write(d, "gone", "soon");
    });
    layer(&*s, scratch, "k2", "L1", "L2", |d| {
        assert_eq!(
            read(d, "a.txt").as_deref(),
            Some("one"),
            "lower file visible in upper"
        );
        write(d, "a.txt", "two");
        write(d, "b.txt", "b");
        fs::remove_file(d.join("gone")).expect("delete a lower file");
        assert_eq!(read(d, "gone"), None);
    });
    let top = mount_on(
        scratch,
        "v2",
        &s.view("v2", "L2", Labels::new()).expect("view L2"),
    );
    let t = top.target();
    assert_eq!(read(t, "a.txt").as_deref(), Some("two"));
    assert_eq!(read(t, "b.txt").as_deref(), Some("b"));
    assert_eq!(read(t, "dir/x").as_deref(), Some("x"));
    assert_eq!(
        read(t, "gone"),
        None,
        "a deletion in the upper layer hides the lower file"
    );
    let err = fs::write(t.join("new"), "x").expect_err("a view is read-only");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");

    let base = mount_on(
        scratch,
        "v1",
        &s.view("v1", "L1", Labels::new()).expect("view L1"),
    );
    let b = base.target();
    assert_eq!(
        read(b, "a.txt").as_deref(),
        Some("one"),
        "committed layers are immutable"
    );
    assert_eq!(read(b, "gone").as_deref(), Some("soon"));
    assert_eq!(read(b, "b.txt"), None);

    let active = mount_on(
        scratch,
        "k3",
        &s.prepare("k3", "L2", Labels::new()).expect("prepare"),
    );
    let a = active.target();
    write(a, "c.txt", "c");
    assert_eq!(read(a, "a.txt").as_deref(), Some("two"));
    assert_eq!(
        read(t, "c.txt"),
        None,
        "an active snapshot does not leak into a view"
    );
}

/// 120 layers, each adding a file: the top mounts (one page of mount data is not enough
/// for 120 absolute lowerdirs under a long root) and shows every file.
pub(crate) fn deep_chain_mounts(make: Factory<'_>, scratch: &Scratch) {
    if !have_root("deep_chain_mounts") {
        return;
    }
    let s = make(&scratch.root());
    let depth = 120;
    let mut parent = String::new();
    for i in 0..depth {
        let name = format!("sha256:{i:064}");
        layer(&*s, scratch, &format!("extract-{i}"), &parent, &name, |d| {
            write(d, &format!("layer-{i}"), &i.to_string());
        });
        parent = name;
    }
    let mounts = s
        .prepare("container", &parent, Labels::new())
        .expect("prepare on deep chain");
    let m = mount_on(scratch, "container", &mounts);
    for i in 0..depth {
        assert_eq!(
            read(m.target(), &format!("layer-{i}")),
            Some(i.to_string()),
            "layer {i}"
        );
    }
    write(m.target(), "top", "t");
    let view = mount_on(
        scratch,
        "view",
        &s.view("view", &parent, Labels::new()).expect("view"),
    );
    assert_eq!(read(view.target(), "layer-0").as_deref(), Some("0"));
    assert_eq!(read(view.target(), "top"), None);
}

/// Usage counts the snapshot's own layer: live while active, recorded at commit.
pub(crate) fn usage_measures_layer(make: Factory<'_>, scratch: &Scratch) {
    if !have_root("usage_measures_layer") {
        return;
    }
    let s = make(&scratch.root());
    let mib = 1 << 20;
    let mounts = s.prepare("k", "", Labels::new()).expect("prepare");
    let empty = s.usage("k").expect("usage of an empty active snapshot");
    {
        let m = mount_on(scratch, "k", &mounts);
        fs::write(m.target().join("big"), vec![1u8; mib]).expect("write");
        fs::create_dir(m.target().join("d")).expect("mkdir");
    }
    let active = s.usage("k").expect("usage active");
    assert!(
        active.size >= empty.size + mib as u64,
        "{active:?} vs {empty:?}"
    );
    assert_eq!(active.inodes, empty.inodes + 2);
    s.commit("c", "k", Labels::new()).expect("commit");
    assert_eq!(s.usage("c").expect("usage committed"), active);
    s.view("v", "c", Labels::new()).expect("view");
    assert_eq!(s.usage("v").expect("usage view"), crate::Usage::default());
    layer(&*s, scratch, "k2", "c", "c2", |d| write(d, "small", "s"));
    let upper = s.usage("c2").expect("usage c2");
    assert!(upper.inodes >= 2, "{upper:?}");
}

/// Cleanup removes nothing a record still names; everything stays usable after it.
pub(crate) fn cleanup_keeps_referenced(make: Factory<'_>, scratch: &Scratch) {
    if !have_root("cleanup_keeps_referenced") {
        return;
    }
    let s = make(&scratch.root());
    layer(&*s, scratch, "k1", "", "L1", |d| write(d, "f", "1"));
    s.prepare("tmp", "L1", Labels::new()).expect("prepare");
    s.remove("tmp").expect("remove");
    let mounts = s.prepare("k2", "L1", Labels::new()).expect("prepare");
    {
        let m = mount_on(scratch, "k2-before", &mounts);
        write(m.target(), "g", "2");
    }
    s.cleanup().expect("cleanup");
    assert_eq!(
        s.cleanup().expect("second cleanup"),
        0,
        "nothing left to clean"
    );
    let m = mount_on(scratch, "k2-after", &s.mounts("k2").expect("mounts"));
    assert_eq!(read(m.target(), "f").as_deref(), Some("1"));
    assert_eq!(read(m.target(), "g").as_deref(), Some("2"));
}

/// Drop and reopen: the files of committed and active snapshots are all still there.
pub(crate) fn reopen_keeps_files(make: Factory<'_>, scratch: &Scratch) {
    if !have_root("reopen_keeps_files") {
        return;
    }
    let root = scratch.root();
    {
        let s = make(&root);
        layer(&*s, scratch, "k1", "", "L1", |d| write(d, "f", "1"));
        let m = mount_on(
            scratch,
            "k2",
            &s.prepare("k2", "L1", Labels::new()).expect("prepare"),
        );
        write(m.target(), "g", "2");
    }
    let s = make(&root);
    assert_eq!(s.cleanup().expect("cleanup after reopen"), 0);
    let m = mount_on(
        scratch,
        "k2-again",
        &s.mounts("k2").expect("mounts after reopen"),
    );
    assert_eq!(read(m.target(), "f").as_deref(), Some("1"));
    assert_eq!(read(m.target(), "g").as_deref(), Some("2"));
    drop(m);
    s.commit("L2", "k2", Labels::new())
        .expect("commit after reopen");
}
