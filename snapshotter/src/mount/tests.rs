#![allow(clippy::unwrap_used)] // unwrap is fine in tests (house rule)

use super::options::compact_lowerdir;
use super::*;

fn opts(o: &[&str]) -> Vec<String> {
    o.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn read_only_bind_is_remounted() {
    let fake = FakeMounter::default();
    let m = Mount::bind(Path::new("/src"), true);
    mount_all_with(&fake, &[m], Path::new("/t")).unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].flags,
        MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
    );
    assert_eq!(calls[0].source.as_deref(), Some("/src"));
    assert_eq!(calls[0].data, None);
    assert_eq!(
        calls[1].flags,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY
    );
}

#[test]
fn rw_bind_is_one_call_and_propagation_comes_last() {
    let fake = FakeMounter::default();
    let m = Mount {
        fs_type: "bind".into(),
        source: "/src".into(),
        target: Some("sub".into()),
        options: opts(&["rw", "rbind", "rprivate"]),
    };
    mount_all_with(&fake, &[m], Path::new("/t")).unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].target, Path::new("/t/sub"));
    assert_eq!(calls[0].flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    assert_eq!(calls[1].flags, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    assert_eq!(calls[1].source, None);
}

#[test]
fn overlay_data_is_passed_through() {
    let fake = FakeMounter::default();
    let m = Mount {
        fs_type: "overlay".into(),
        source: "overlay".into(),
        target: None,
        options: opts(&[
            "index=off",
            "nodev",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/a:/b",
        ]),
    };
    mount_all_with(&fake, &[m], Path::new("/t")).unwrap();
    let call = &fake.calls()[0];
    assert_eq!(call.flags, MsFlags::MS_NODEV);
    assert_eq!(
        call.data.as_deref(),
        Some("index=off,workdir=/w,upperdir=/u,lowerdir=/a:/b")
    );
    assert_eq!(call.cwd, None, "short option strings are left alone");
}

#[test]
fn failure_unmounts_what_was_mounted() {
    let fake = FakeMounter::failing_at(1);
    let a = Mount::bind(Path::new("/a"), false);
    let b = Mount::bind(Path::new("/b"), false);
    let err = mount_all_with(&fake, &[a, b], Path::new("/t")).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Internal);
    assert!(
        fake.mounted().is_empty(),
        "rolled back: {:?}",
        fake.mounted()
    );
    assert_eq!(fake.unmounts(), [PathBuf::from("/t")]);
}

#[test]
fn unmount_stops_when_nothing_is_left() {
    let fake = FakeMounter::default();
    let m = Mount::bind(Path::new("/a"), false);
    mount_all_with(&fake, &[m.clone(), m], Path::new("/t")).unwrap();
    unmount_with(&fake, Path::new("/t"), MntFlags::empty()).unwrap();
    assert_eq!(fake.unmounts().len(), 2);
    unmount_with(&fake, Path::new("/t"), MntFlags::empty()).unwrap();
    assert_eq!(fake.unmounts().len(), 2);
}

#[test]
fn compaction_needs_a_common_directory() {
    let mut data = opts(&["lowerdir=/x/s/1/fs:/x/s/22/fs"]);
    assert_eq!(compact_lowerdir(&mut data), Some(PathBuf::from("/x/s")));
    assert_eq!(data, ["lowerdir=1/fs:22/fs"]);
    let mut data = opts(&["lowerdir=/a/fs:/b/fs"]);
    assert_eq!(compact_lowerdir(&mut data), None, "only / in common");
    assert_eq!(data, ["lowerdir=/a/fs:/b/fs"]);
}

#[test]
fn real_mount_and_unmount() {
    if !crate::conformance::have_root("real_mount_and_unmount") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    {
        let g = MountGuard::mount(&[Mount::bind(&src, true)], &dst).unwrap();
        assert_eq!(std::fs::read_to_string(g.target().join("f")).unwrap(), "x");
        let err = std::fs::write(dst.join("g"), "y").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    }
    assert!(!dst.join("f").exists(), "unmounted on drop");
    unmount(&dst).unwrap();
}
