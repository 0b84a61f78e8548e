//! Apply and diff through the content store onto real directories and mounts.

use std::io::Write;
use std::path::Path;

use berth_api::{ErrorKind, HasKind};
use berth_snapshotter::Mount;
use berth_snapshotter::layer::MEDIA_TYPE_DOCKER_LAYER_GZIP;
use sha2::{Digest as _, Sha256};

use super::{
    Blob, DiffRequest, Differ, LABEL_UNCOMPRESSED, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP,
};
use crate::content::{ContentStore, ContentWriter, Digest, LocalStore, WriterOpts};
use crate::metadata::Db;

struct Env {
    dir: tempfile::TempDir,
    content: LocalStore,
    differ: Differ,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("meta")).expect("db");
    let content = LocalStore::open(dir.path(), db).expect("content");
    let differ = Differ::open(dir.path(), content.clone()).expect("differ");
    Env {
        dir,
        content,
        differ,
    }
}

fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root under CI=true"
    );
    false
}

/// A tar with files (`path`, contents) and empty whiteout markers (contents `None`).
fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let bytes = data.unwrap_or("").as_bytes();
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, bytes).expect("append");
    }
    b.into_inner().expect("finish tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip finish")
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

async fn put(e: &Env, ns: &str, data: &[u8]) -> String {
    let d = Digest::of(data);
    let opts = WriterOpts {
        reference: format!("layer-{d}"),
        total: data.len() as u64,
        expected: Some(d.clone()),
        lease: None,
    };
    let mut w = e.content.writer(ns, opts).await.expect("writer");
    w.write_at(0, data.to_vec()).await.expect("write");
    w.commit(data.len() as u64, Some(d.clone()), Default::default())
        .await
        .expect("commit");
    d.to_string()
}

fn bind(dir: &Path) -> Mount {
    Mount::bind(dir, false)
}

#[tokio::test]
async fn apply_onto_a_bind_deletes_whiteouts_and_returns_the_diff_id() {
    let e = env();
    let target = e.dir.path().join("fs");
    std::fs::create_dir_all(target.join("etc")).expect("mkdir");
    std::fs::write(target.join("etc/motd"), "old").expect("write");
    let tar = tar_of(&[("etc/.wh.motd", None), ("etc/new", Some("fresh"))]);
    let layer = gzip(&tar);
    let digest = put(&e, "ns", &layer).await;
    let desc = Blob {
        media_type: MEDIA_TYPE_DOCKER_LAYER_GZIP.into(),
        digest: digest.clone(),
        size: layer.len() as u64,
    };
    let applied = e
        .differ
        .apply("ns", &desc, vec![bind(&target)])
        .await
        .expect("apply");
    assert_eq!(applied.media_type, MEDIA_TYPE_LAYER);
    assert_eq!(applied.digest, sha(&tar));
    assert_eq!(applied.size, tar.len() as u64);
    assert!(!target.join("etc/motd").exists());
    assert_eq!(
        std::fs::read_to_string(target.join("etc/new")).expect("read"),
        "fresh"
    );

    // Namespaced: another namespace does not see the blob.
    let err = e
        .differ
        .apply("other", &desc, vec![bind(&target)])
        .await
        .expect_err("not visible");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let ro = Mount::bind(&target, true);
    let err = e.differ.apply("ns", &desc, vec![ro]).await.expect_err("ro");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn apply_onto_an_overlay_upper_makes_overlay_whiteouts() {
    if !root_or_skip("apply_onto_an_overlay_upper_makes_overlay_whiteouts") {
        return;
    }
    let e = env();
    let upper = e.dir.path().join("upper");
    std::fs::create_dir(&upper).expect("mkdir");
    let tar = tar_of(&[
        (".wh.gone", None),
        ("d/.wh..wh..opq", None),
        ("d/kept", Some("k")),
    ]);
    let digest = put(&e, "ns", &tar).await;
    let desc = Blob {
        media_type: MEDIA_TYPE_LAYER.into(),
        digest,
        size: tar.len() as u64,
    };
    let m = Mount {
        fs_type: "overlay".into(),
        source: "overlay".into(),
        target: None,
        options: vec![
            format!("upperdir={}", upper.display()),
            "workdir=/nonexistent".into(),
            "lowerdir=/nonexistent".into(),
        ],
    };
    let applied = e.differ.apply("ns", &desc, vec![m]).await.expect("apply");
    assert_eq!(applied.digest, sha(&tar));
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let wh = std::fs::symlink_metadata(upper.join("gone")).expect("whiteout");
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    let opaque = xattr_of(&upper.join("d"), "trusted.overlay.opaque");
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
}

fn xattr_of(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 64];
    // SAFETY: both strings are NUL-terminated and live across the call; the buffer is
    // valid for `buf.len()` bytes and the kernel writes at most that many.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let len = usize::try_from(len).ok()?;
    buf.truncate(len);
    Some(buf)
}

#[tokio::test]
async fn apply_onto_a_mount_set_mounts_in_a_temp_dir_and_cleans_up() {
    if !root_or_skip("apply_onto_a_mount_set_mounts_in_a_temp_dir_and_cleans_up") {
        return;
    }
    let e = env();
    let (a, b) = (e.dir.path().join("a"), e.dir.path().join("b"));
    std::fs::create_dir_all(a.join("sub")).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    std::fs::write(b.join("old"), "x").expect("write");
    let mut sub = bind(&b);
    sub.target = Some("sub".into());
    let tar = tar_of(&[
        ("top", Some("1")),
        ("sub/.wh.old", None),
        ("sub/f", Some("2")),
    ]);
    let digest = put(&e, "ns", &tar).await;
    let desc = Blob {
        media_type: String::new(),
        digest,
        size: tar.len() as u64,
    };
    e.differ
        .apply("ns", &desc, vec![bind(&a), sub])
        .await
        .expect("apply");
    assert_eq!(std::fs::read_to_string(a.join("top")).expect("top"), "1");
    assert_eq!(std::fs::read_to_string(b.join("f")).expect("f"), "2");
    assert!(!b.join("old").exists());
    let tmp = e.dir.path().join(super::TMP_DIR);
    assert_eq!(
        std::fs::read_dir(&tmp).expect("tmp").count(),
        0,
        "temp mount removed"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&tmp.display().to_string()));
}

#[tokio::test]
async fn diff_of_two_trees_is_stored_and_applies_back() {
    let e = env();
    let (lower, upper, copy) = (
        e.dir.path().join("lower"),
        e.dir.path().join("upper"),
        e.dir.path().join("copy"),
    );
    for d in [&lower, &upper, &copy] {
        std::fs::create_dir_all(d.join("etc")).expect("mkdir");
        std::fs::write(d.join("etc/shared"), "same").expect("write");
    }
    std::fs::write(lower.join("etc/removed"), "bye").expect("write");
    std::fs::write(copy.join("etc/removed"), "bye").expect("write");
    std::fs::write(upper.join("etc/added"), "hello").expect("write");
    let req = DiffRequest {
        left: vec![Mount::bind(&lower, true)],
        right: vec![Mount::bind(&upper, true)],
        reference: "diff-test".into(),
        ..DiffRequest::default()
    };
    let blob = e.differ.diff("ns", req).await.expect("diff");
    assert_eq!(blob.media_type, MEDIA_TYPE_LAYER_GZIP);
    let info = e
        .content
        .info("ns", &Digest::parse(&blob.digest).expect("digest"))
        .await
        .expect("stored");
    assert_eq!(info.size, blob.size);
    let diff_id = info.labels.get(LABEL_UNCOMPRESSED).expect("label").clone();

    let applied = e
        .differ
        .apply("ns", &blob, vec![bind(&copy)])
        .await
        .expect("apply back");
    assert_eq!(applied.digest, diff_id);
    assert!(!copy.join("etc/removed").exists());
    assert_eq!(
        std::fs::read_to_string(copy.join("etc/added")).expect("added"),
        "hello"
    );

    let zstd = DiffRequest {
        right: vec![Mount::bind(&upper, true)],
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
        ..DiffRequest::default()
    };
    let err = e.differ.diff("ns", zstd).await.expect_err("zstd");
    assert_eq!(err.kind(), ErrorKind::NotImplemented);
}
