//! Entry types, metadata, digests, whiteouts.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::EntryType;

use super::util::{Layer, require_root, sha256};
use crate::layer::{
    LayerError, LayerErrorKind, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD,
    WhiteoutMode, apply,
};

fn apply_bytes(
    bytes: &[u8],
    media_type: &str,
    target: &Path,
    mode: WhiteoutMode,
) -> Result<crate::layer::Applied, LayerError> {
    apply(bytes, media_type, target, mode)
}

#[test]
fn every_entry_type_round_trips_with_metadata() {
    let root = nix::unistd::geteuid().is_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layer = Layer::new();
    layer.uid = if root { 1234 } else { 0 };
    layer.gid = if root { 5678 } else { 0 };
    layer.dir("d/", 0o2750);
    layer.dir("tmp/", 0o1777);
    layer.file("d/suid", b"#!/bin/true\n", 0o4755);
    // trusted.* needs root and is the one namespace a symlink can carry.
    layer.pax(&[("SCHILY.xattr.trusted.berth", b"on-link")]);
    layer.link("d/link", EntryType::Symlink, "suid");
    layer.link("d/abs", EntryType::Symlink, "/etc/hostname");
    layer.link("d/hard", EntryType::Link, "d/suid");
    layer.node("d/fifo", EntryType::Fifo, 0, 0);
    layer.node("d/null", EntryType::Char, 1, 3);
    layer.node("d/loop", EntryType::Block, 7, 0);
    layer.pax(&[("SCHILY.xattr.user.berth", b"v1")]);
    layer.file("d/attr", b"x", 0o644);
    layer.mtime = 1_500_000_000;
    layer.file("implied/parent/file", b"deep", 0o600);
    layer.file("./dot/./slash", b"dot", 0o644);
    let bytes = layer.finish();

    let applied =
        apply_bytes(&bytes, MEDIA_TYPE_LAYER, dir.path(), WhiteoutMode::Delete).expect("apply");
    assert_eq!(applied.digest, sha256(&bytes));
    assert_eq!(applied.size, bytes.len() as u64);

    let d = dir.path().join("d");
    let meta = |p: &str| fs::symlink_metadata(d.join(p)).expect(p);
    assert_eq!(fs::metadata(&d).expect("d").mode() & 0o7777, 0o2750);
    assert_eq!(
        fs::metadata(dir.path().join("tmp")).expect("tmp").mode() & 0o7777,
        0o1777
    );
    assert_eq!(fs::read(d.join("suid")).expect("read"), b"#!/bin/true\n");
    assert_eq!(meta("suid").mode() & 0o7777, 0o4755);
    assert_eq!(
        fs::read_link(d.join("link")).expect("link").to_str(),
        Some("suid")
    );
    assert_eq!(
        fs::read_link(d.join("abs")).expect("abs").to_str(),
        Some("/etc/hostname")
    );
    assert_eq!(meta("hard").ino(), meta("suid").ino());
    assert!(meta("fifo").file_type().is_fifo());
    assert_eq!(meta("suid").mtime(), 1_600_000_000);
    // The directory mtime survives the entries written into it afterwards.
    assert_eq!(meta(".").mtime(), 1_600_000_000);
    assert_eq!(
        fs::read(dir.path().join("implied/parent/file")).expect("deep"),
        b"deep"
    );
    assert_eq!(
        fs::metadata(dir.path().join("implied"))
            .expect("implied")
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(
        fs::read(dir.path().join("dot/slash")).expect("./ names"),
        b"dot"
    );
    let user_xattr = super::super::xattr::list(&d.join("attr")).expect("xattrs");
    // user.* xattrs need a filesystem that has them; the temp dir's does.
    assert_eq!(user_xattr, vec![("user.berth".into(), b"v1".to_vec())]);
    if root {
        assert_eq!((meta("suid").uid(), meta("suid").gid()), (1234, 5678));
        assert_eq!((meta("link").uid(), meta("link").gid()), (1234, 5678));
        let link_xattrs = super::super::xattr::list(&d.join("link")).expect("xattrs");
        assert_eq!(
            link_xattrs,
            vec![("trusted.berth".into(), b"on-link".to_vec())]
        );
        assert!(meta("null").file_type().is_char_device());
        assert_eq!(meta("null").rdev(), libc::makedev(1, 3));
        assert!(meta("loop").file_type().is_block_device());
        assert_eq!(meta("null").mode() & 0o7777, 0o640);
    } else {
        assert!(!d.join("null").exists(), "devices need root");
    }
}

#[test]
fn digest_is_of_the_uncompressed_stream_for_every_compression() {
    let mut layer = Layer::new();
    layer
        .dir("a/", 0o755)
        .file("a/b", &vec![7u8; 100_000], 0o644);
    let mut tar = layer.finish();
    // Extra record padding after the end-of-archive blocks belongs to the digest too.
    tar.extend_from_slice(&[0u8; 10 * 512]);
    let expected = sha256(&tar);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zst = zstd::encode_all(tar.as_slice(), 3).expect("zstd");

    for (bytes, media_type) in [
        (&tar, MEDIA_TYPE_LAYER),
        (&gz, MEDIA_TYPE_LAYER_GZIP),
        (&zst, MEDIA_TYPE_LAYER_ZSTD),
        // Mislabelled: the magic bytes win.
        (&gz, MEDIA_TYPE_LAYER),
        (&tar, MEDIA_TYPE_LAYER_GZIP),
        (&zst, ""),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let applied =
            apply_bytes(bytes, media_type, dir.path(), WhiteoutMode::Delete).expect(media_type);
        assert_eq!(applied.digest, expected, "{media_type}");
        assert_eq!(applied.size, tar.len() as u64, "{media_type}");
        assert_eq!(
            fs::read(dir.path().join("a/b")).expect("file").len(),
            100_000
        );
    }
}

#[test]
fn a_corrupt_or_truncated_stream_fails_as_a_read_error() {
    let mut layer = Layer::new();
    layer.file("f", &vec![1u8; 300_000], 0o644);
    let tar = layer.finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let mut corrupt = gz.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle..middle + 64].fill(0xff);
    for (bytes, what) in [
        (&gz[..gz.len() / 2], "truncated"),
        (&corrupt[..], "corrupt"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = apply_bytes(
            bytes,
            MEDIA_TYPE_LAYER_GZIP,
            dir.path(),
            WhiteoutMode::Delete,
        )
        .expect_err(what);
        assert!(matches!(err, LayerError::Read(_)), "{what}: {err:?}");
    }
}

#[test]
fn unknown_compression_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = apply_bytes(
        b"",
        "application/vnd.oci.image.layer.v1.tar+bzip2",
        dir.path(),
        WhiteoutMode::Delete,
    )
    .expect_err("bzip2 is not supported");
    assert!(matches!(err, LayerError::UnsupportedMediaType { .. }));
    assert_eq!(err.kind(), LayerErrorKind::InvalidArgument);
}

/// The lower tree both whiteout tests start from.
fn lower_layer() -> Vec<u8> {
    let mut layer = Layer::new();
    layer
        .file("gone", b"old", 0o644)
        .dir("tree/", 0o755)
        .file("tree/sub/old", b"old", 0o644)
        .dir("opq/", 0o755)
        .file("opq/old", b"old", 0o644)
        .dir("opq/keepdir/", 0o755)
        .file("opq/keepdir/old", b"old", 0o644)
        .file("stays", b"s", 0o644);
    layer.finish()
}

/// Whiteouts of `gone` and `tree`, opaque `opq` after two of its new entries.
fn whiteout_layer() -> Vec<u8> {
    let mut layer = Layer::new();
    layer
        .file(".wh.gone", b"", 0o644)
        .file(".wh.tree", b"", 0o644)
        .file("opq/new", b"new", 0o644)
        .file("opq/keepdir/new", b"new", 0o644)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/after", b"after", 0o644);
    layer.finish()
}

#[test]
fn delete_mode_removes_whited_out_paths_and_empties_opaque_dirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    apply_bytes(&lower_layer(), "", dir.path(), WhiteoutMode::Delete).expect("lower");
    apply_bytes(&whiteout_layer(), "", dir.path(), WhiteoutMode::Delete).expect("whiteouts");
    let p = |s: &str| dir.path().join(s);
    assert!(!p("gone").exists());
    assert!(!p("tree").exists());
    assert!(p("stays").exists());
    assert!(!p("opq/old").exists());
    assert!(!p("opq/keepdir/old").exists());
    assert_eq!(fs::read(p("opq/new")).expect("new"), b"new");
    assert_eq!(fs::read(p("opq/keepdir/new")).expect("keepdir/new"), b"new");
    assert_eq!(fs::read(p("opq/after")).expect("after"), b"after");
    for marker in [".wh.gone", ".wh.tree", "opq/.wh..wh..opq"] {
        assert!(
            fs::symlink_metadata(p(marker)).is_err(),
            "{marker} must not be materialised"
        );
    }
}

#[test]
fn overlay_mode_writes_overlay_whiteouts_and_opaque_xattr() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    apply_bytes(&whiteout_layer(), "", dir.path(), WhiteoutMode::Overlay).expect("apply");
    for name in ["gone", "tree"] {
        let meta = fs::symlink_metadata(dir.path().join(name)).expect(name);
        assert!(meta.file_type().is_char_device(), "{name}");
        assert_eq!(meta.rdev(), 0);
    }
    let attrs = super::super::xattr::list(&dir.path().join("opq")).expect("xattrs");
    assert!(
        attrs.contains(&("trusted.overlay.opaque".into(), b"y".to_vec())),
        "{attrs:?}"
    );
    assert!(dir.path().join("opq/new").exists() && dir.path().join("opq/after").exists());
}

#[test]
fn entries_replace_other_types_and_dirs_merge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Layer::new();
    first
        .dir("x/", 0o755)
        .file("x/inner", b"i", 0o644)
        .file("f", b"f", 0o644)
        .dir("merge/", 0o700)
        .file("merge/old", b"o", 0o644);
    apply_bytes(&first.finish(), "", dir.path(), WhiteoutMode::Delete).expect("first");
    let mut second = Layer::new();
    second
        .file("x", b"now a file", 0o644)
        .link("f", EntryType::Symlink, "x")
        .dir("merge/", 0o755)
        .file("merge/new", b"n", 0o644);
    apply_bytes(&second.finish(), "", dir.path(), WhiteoutMode::Delete).expect("second");
    assert_eq!(fs::read(dir.path().join("x")).expect("x"), b"now a file");
    assert_eq!(
        fs::read_link(dir.path().join("f")).expect("f").to_str(),
        Some("x")
    );
    assert!(dir.path().join("merge/old").exists() && dir.path().join("merge/new").exists());
    assert_eq!(
        fs::metadata(dir.path().join("merge"))
            .expect("merge")
            .mode()
            & 0o7777,
        0o755
    );
}
