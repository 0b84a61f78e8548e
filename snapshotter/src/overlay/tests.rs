#![allow(clippy::unwrap_used)] // unwrap is fine in tests (house rule)

use std::path::{Path, PathBuf};

use super::*;
use crate::{Labels, Snapshotter};

/// Overlay needs root to mount; without it, the probe fails: skip unless CI=true.
fn open(root: &Path) -> Box<dyn Snapshotter> {
    Box::new(Overlay::open(root).expect("open overlay (needs root)"))
}

fn root_or_skip() -> bool {
    crate::conformance::have_root("overlay")
}

macro_rules! overlay_conformance {
    ($($case:ident),*) => {$(
        #[test]
        fn $case() {
            if root_or_skip() {
                crate::conformance::run_case(stringify!($case), &open);
            }
        }
    )*};
}

overlay_conformance!(
    chain_metadata,
    error_codes,
    labels_update,
    remove_rules,
    walk_filters,
    reopen_persists,
    concurrent_prepares,
    layers_visible_through_mounts,
    deep_chain_mounts,
    usage_measures_layer,
    cleanup_keeps_referenced,
    reopen_keeps_files
);

#[test]
fn every_case_is_listed() {
    assert_eq!(
        crate::conformance::CASES.len(),
        12,
        "add new cases to the lists above"
    );
}

fn layout(root: &str) -> Layout {
    Layout::for_tests(PathBuf::from(root).join("snapshots"))
}

#[test]
fn mount_shapes_follow_containerd() {
    let l = layout("/r");
    assert_eq!(
        overlay_mounts(&l, 1, Kind::Active, &[], true),
        [Mount::bind(Path::new("/r/snapshots/1/fs"), false)]
    );
    assert_eq!(
        overlay_mounts(&l, 1, Kind::View, &[], true),
        [Mount::bind(Path::new("/r/snapshots/1/fs"), true)]
    );
    assert_eq!(
        overlay_mounts(&l, 5, Kind::View, &[3], true),
        [Mount::bind(Path::new("/r/snapshots/3/fs"), true)]
    );
    let active = &overlay_mounts(&l, 5, Kind::Active, &[3], true)[0];
    assert_eq!(
        (active.fs_type.as_str(), active.source.as_str()),
        ("overlay", "overlay")
    );
    assert_eq!(
        active.options,
        [
            "index=off",
            "workdir=/r/snapshots/5/work",
            "upperdir=/r/snapshots/5/fs",
            "lowerdir=/r/snapshots/3/fs"
        ]
    );
    let view = &overlay_mounts(&l, 9, Kind::View, &[7, 3, 1], false)[0];
    assert_eq!(
        view.options,
        ["lowerdir=/r/snapshots/7/fs:/r/snapshots/3/fs:/r/snapshots/1/fs"]
    );
}

#[test]
fn deep_lowerdirs_fit_a_page_once_compacted() {
    // 200 layers under containerd's usual root: too long as absolute paths, but relative
    // to their common directory (what mount_all and containerd's mount.All do) it fits.
    let l = layout("/var/lib/berth/io.containerd.snapshotter.v1.overlayfs");
    let parents: Vec<u64> = (1..=200).rev().collect();
    let m = overlay_mounts(&l, 201, Kind::Active, &parents, true);
    assert!(m[0].options.join(",").len() > 4096);
    let fake = crate::FakeMounter::default();
    crate::mount_all_with(&fake, &m, Path::new("/mnt")).unwrap();
    let call = &fake.calls()[0];
    assert_eq!(
        call.cwd.as_deref(),
        Some(Path::new(
            "/var/lib/berth/io.containerd.snapshotter.v1.overlayfs/snapshots"
        ))
    );
    let data = call.data.as_deref().unwrap();
    assert!(data.len() < 4096 - 512, "{}", data.len());
    assert!(data.contains("lowerdir=200/fs:199/fs:"), "{data}");
    assert!(
        data.contains("upperdir=/var/lib/berth/"),
        "upper stays absolute: {data}"
    );
}

#[test]
fn probe_reports_support() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(overlay_supported(dir.path()));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the probe cleans up"
    );
}

#[test]
fn probe_runs_once_per_boot() {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join(PROBED_FILE);
    // A marker naming this boot: no mount at all (so it passes even without root).
    std::fs::write(&marker, &boot).unwrap();
    check_overlay_support_once_per_boot(dir.path()).expect("remembered");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no probe dir"
    );
    // A marker of another boot: probed again, and remembered only on success.
    std::fs::write(&marker, "another-boot\n").unwrap();
    let probed = check_overlay_support_once_per_boot(dir.path());
    let now = std::fs::read_to_string(&marker).unwrap();
    if nix::unistd::geteuid().is_root() {
        probed.expect("overlay works as root here");
        assert_eq!(now.trim(), boot.trim());
    } else {
        assert!(probed.is_err(), "mounting needs root");
        assert_eq!(now, "another-boot\n");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the marker: {left:?}");
}

#[test]
fn child_upper_takes_parent_root_owner_and_mode() {
    if !root_or_skip() {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let s = Overlay::open(dir.path()).unwrap();
    s.prepare("a", "", Labels::new()).unwrap();
    let fs1 = dir.path().join("snapshots/1/fs");
    std::os::unix::fs::chown(&fs1, Some(4242), Some(4343)).unwrap();
    std::fs::set_permissions(&fs1, std::fs::Permissions::from_mode(0o1777)).unwrap();
    s.commit("c", "a", Labels::new()).unwrap();
    s.prepare("b", "c", Labels::new()).unwrap();
    let m = std::fs::metadata(dir.path().join("snapshots/2/fs")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4242, 4343, 0o1777));
}
