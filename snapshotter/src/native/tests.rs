#![allow(clippy::unwrap_used)] // unwrap is fine in tests (house rule)

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::{ErrorKind, Kind, Labels, Snapshotter};

crate::snapshotter_conformance!(|root: &Path| {
    Box::new(Native::open(root).expect("open native")) as Box<dyn Snapshotter>
});

#[test]
fn mounts_are_always_binds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Native::open(dir.path()).unwrap();
    let m = s.prepare("a", "", Labels::new()).unwrap();
    let fs_a = dir.path().join("snapshots/1/fs");
    assert_eq!(m, vec![Mount::bind(&fs_a, false)]);
    assert_eq!(m[0].options, ["rw", "rbind"]);
    s.commit("c", "a", Labels::new()).unwrap();
    let v = s.view("v", "c", Labels::new()).unwrap();
    assert_eq!(
        v,
        vec![Mount::bind(&dir.path().join("snapshots/2/fs"), true)]
    );
    let b = s.prepare("b", "c", Labels::new()).unwrap();
    assert_eq!(
        b,
        vec![Mount::bind(&dir.path().join("snapshots/3/fs"), false)]
    );
}

#[test]
fn child_is_a_full_copy_keeping_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let s = Native::open(dir.path()).unwrap();
    s.prepare("a", "", Labels::new()).unwrap();
    let src = dir.path().join("snapshots/1/fs");
    fs::create_dir(src.join("d")).unwrap();
    fs::write(src.join("d/file"), "data").unwrap();
    fs::set_permissions(src.join("d/file"), fs::Permissions::from_mode(0o4751)).unwrap();
    fs::hard_link(src.join("d/file"), src.join("hard")).unwrap();
    std::os::unix::fs::symlink("d/file", src.join("sym")).unwrap();
    nix::unistd::mkfifo(
        &src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    xattr::set(src.join("d/file"), "user.berth", b"x").unwrap();
    let root = nix::unistd::geteuid().is_root();
    if root {
        std::os::unix::fs::lchown(src.join("d/file"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::chown(src.join("d/file"), Some(1234), Some(5678)).unwrap();
        fs::set_permissions(src.join("d/file"), fs::Permissions::from_mode(0o4751)).unwrap();
        let dev = nix::sys::stat::makedev(1, 3);
        let perm = nix::sys::stat::Mode::from_bits_truncate(0o666);
        nix::sys::stat::mknod(&src.join("null"), nix::sys::stat::SFlag::S_IFCHR, perm, dev)
            .unwrap();
    }
    let old = filetime_of(&src.join("d/file"));
    s.commit("c", "a", Labels::new()).unwrap();
    s.prepare("b", "c", Labels::new()).unwrap();
    let dst = dir.path().join("snapshots/2/fs");

    assert_eq!(fs::read_to_string(dst.join("d/file")).unwrap(), "data");
    let m = fs::metadata(dst.join("d/file")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4751, "mode with setuid kept");
    assert_eq!(filetime_of(&dst.join("d/file")), old, "mtime kept");
    assert_eq!(
        m.ino(),
        fs::metadata(dst.join("hard")).unwrap().ino(),
        "hard link kept"
    );
    assert_ne!(
        m.ino(),
        fs::metadata(src.join("d/file")).unwrap().ino(),
        "a copy, not a link"
    );
    assert_eq!(fs::read_link(dst.join("sym")).unwrap(), Path::new("d/file"));
    assert!(
        fs::symlink_metadata(dst.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        xattr::get(dst.join("d/file"), "user.berth")
            .unwrap()
            .as_deref(),
        Some(&b"x"[..])
    );
    if root {
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
        let null = fs::symlink_metadata(dst.join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    }
    // The copy is independent of its parent.
    fs::write(dst.join("d/file"), "changed").unwrap();
    assert_eq!(fs::read_to_string(src.join("d/file")).unwrap(), "data");
}

use std::os::unix::fs::FileTypeExt;

fn filetime_of(p: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec())
}

#[test]
fn cleanup_removes_crash_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Native::open(dir.path()).unwrap();
    s.prepare("a", "", Labels::new()).unwrap();
    let snaps = dir.path().join("snapshots");
    // What a crash leaves: a half-made snapshot, a dir renamed but not recorded, a
    // removal that did not finish.
    for stray in ["new-1-2-3/fs", "77/fs", "rm-5/fs/x"] {
        fs::create_dir_all(snaps.join(stray)).unwrap();
    }
    assert_eq!(s.cleanup().unwrap(), 3);
    let left: Vec<String> = fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["1"]);
    assert_eq!(s.stat("a").unwrap().name, "a");
}

#[test]
fn stale_dir_with_a_fresh_id_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = Native::open(dir.path()).unwrap();
    // A crash after the rename but before the commit leaves snapshots/<next id>.
    fs::create_dir_all(dir.path().join("snapshots/1/fs/stale")).unwrap();
    let m = s.prepare("a", "", Labels::new()).unwrap();
    assert_eq!(
        m[0].source,
        dir.path().join("snapshots/1/fs").display().to_string()
    );
    assert!(!dir.path().join("snapshots/1/fs/stale").exists());
}

#[test]
fn a_root_is_opened_once() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Native::open(dir.path()).unwrap();
    let err = Native::open(dir.path())
        .err()
        .expect("second open must fail");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
}

#[test]
fn remove_deletes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Native::open(dir.path()).unwrap();
    s.prepare("a", "", Labels::new()).unwrap();
    assert!(dir.path().join("snapshots/1/fs").is_dir());
    s.remove("a").unwrap();
    assert_eq!(
        fs::read_dir(dir.path().join("snapshots")).unwrap().count(),
        0
    );
}

/// Env var that turns `crash_child` into the worker of `survives_kill_9`.
const CRASH_ROOT_ENV: &str = "BERTH_SNAP_CRASH_ROOT";

/// Worker for `survives_kill_9`: does nothing unless the env var names a root; then it
/// prepares, writes, commits and removes snapshots forever, printing each finished round.
#[test]
fn crash_child() {
    let Ok(root) = std::env::var(CRASH_ROOT_ENV) else {
        return;
    };
    let s = Native::open(Path::new(&root)).unwrap();
    let mut parent = String::new();
    for i in 0u64.. {
        let key = format!("k{i}");
        s.prepare(&key, &parent, Labels::new()).unwrap();
        let m = s.mounts(&key).unwrap();
        fs::write(Path::new(&m[0].source).join(format!("f{i}")), i.to_string()).unwrap();
        let name = format!("c{i}");
        s.commit(&name, &key, Labels::new()).unwrap();
        s.view(&format!("v{i}"), &name, Labels::new()).unwrap();
        if i % 3 == 2 {
            s.remove(&format!("v{i}")).unwrap();
        }
        parent = name;
        println!("round {i}");
    }
}

#[test]
fn survives_kill_9() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "native::tests::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_ROOT_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let rounds = BufReader::new(stdout)
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| l.starts_with("round "))
        .take(30)
        .count();
    assert_eq!(rounds, 30, "the worker ran");
    // Killed in the middle of whatever it does next.
    child.kill().unwrap();
    child.wait().unwrap();

    let s = Native::open(dir.path()).unwrap();
    let all = s.walk(&|_| true).unwrap();
    let committed: Vec<_> = all.iter().filter(|i| i.kind == Kind::Committed).collect();
    assert!(committed.len() >= 30, "{} committed", committed.len());
    for info in &all {
        if info.kind == Kind::Committed {
            // Each committed layer has every file of its ancestors.
            let i: u64 = info.name[1..].parse().unwrap();
            let v = format!("check-{i}");
            let m = s.view(&v, &info.name, Labels::new()).unwrap();
            let fs_dir = Path::new(&m[0].source);
            for j in 0..=i {
                let got = fs::read_to_string(fs_dir.join(format!("f{j}"))).unwrap();
                assert_eq!(got, j.to_string(), "layer {i} file {j}");
            }
            s.remove(&v).unwrap();
        } else {
            let m = s.mounts(&info.name).unwrap();
            assert!(
                Path::new(&m[0].source).is_dir(),
                "{} has its directory",
                info.name
            );
        }
    }
    s.cleanup().unwrap();
    let dirs = fs::read_dir(dir.path().join("snapshots")).unwrap().count();
    assert_eq!(dirs, all.len(), "after cleanup: one directory per record");
    // And it keeps working.
    let top = &committed.iter().max_by_key(|i| i.created_at).unwrap().name;
    s.prepare("after-crash", top, Labels::new()).unwrap();
}

#[test]
fn roots_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/native");
    let _s = Native::open(&root).unwrap();
    for d in [root.clone(), root.join("snapshots")] {
        assert_eq!(
            fs::metadata(&d).unwrap().mode() & 0o777,
            0o700,
            "{}",
            d.display()
        );
    }
}
