//! diff → apply round trips.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};

use tar::EntryType;

use super::util::{Layer, require_root, sha256, snapshot};
use crate::layer::{
    DiffCompression, MEDIA_TYPE_LAYER_GZIP, WhiteoutMode, apply, diff, diff_overlay_upper,
};

fn base_layer() -> Vec<u8> {
    let mut layer = Layer::new();
    layer
        .dir("etc/", 0o755)
        .file("etc/keep", b"keep", 0o644)
        .file("etc/edit", b"before", 0o644)
        .file("etc/chmod", b"c", 0o644)
        .file("etc/remove", b"r", 0o644)
        .file("tree/a/b", b"deep", 0o644)
        .file("becomes_dir", b"f", 0o644)
        .link("link", EntryType::Symlink, "etc/keep");
    layer.finish()
}

#[test]
fn diff_of_two_trees_applies_back_to_the_same_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [lower, upper, replay] = ["lower", "upper", "replay"].map(|n| {
        let p = dir.path().join(n);
        fs::create_dir(&p).expect("mkdir");
        apply(base_layer().as_slice(), "", &p, WhiteoutMode::Delete).expect("base");
        p
    });
    fs::write(upper.join("etc/edit"), b"after, longer").expect("edit");
    fs::set_permissions(upper.join("etc/chmod"), fs::Permissions::from_mode(0o4711))
        .expect("chmod");
    fs::remove_file(upper.join("etc/remove")).expect("rm");
    fs::remove_dir_all(upper.join("tree")).expect("rm -r");
    fs::remove_file(upper.join("becomes_dir")).expect("rm");
    fs::create_dir_all(upper.join("becomes_dir/inner")).expect("mkdir");
    fs::write(upper.join("new"), b"new").expect("new");
    // Longer than a ustar name field: GNU long-name records both ways.
    let long = format!("{}/{}", "d".repeat(90), "f".repeat(120));
    fs::create_dir(upper.join("d".repeat(90))).expect("long dir");
    fs::write(upper.join(&long), b"long").expect("long name");
    fs::hard_link(upper.join("new"), upper.join("new_hardlink")).expect("hardlink");
    fs::remove_file(upper.join("link")).expect("rm link");
    symlink("/elsewhere", upper.join("link")).expect("symlink");

    let mut blob = Vec::new();
    let diffed = diff(&lower, &upper, &mut blob, DiffCompression::Gzip).expect("diff");
    assert_eq!(diffed.media_type, MEDIA_TYPE_LAYER_GZIP);
    assert_eq!(diffed.digest, sha256(&blob));
    assert_eq!(diffed.size, blob.len() as u64);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(blob.as_slice())
        .read_to_end(&mut tar)
        .expect("gunzip");
    assert_eq!(diffed.diff_id, sha256(&tar));
    assert_eq!(diffed.uncompressed_size, tar.len() as u64);

    let names = entry_names(&tar);
    assert!(names.contains(&"etc/.wh.remove".to_owned()), "{names:?}");
    assert!(names.contains(&".wh.tree".to_owned()), "{names:?}");
    assert!(
        !names.contains(&"etc/keep".to_owned()),
        "unchanged files stay out: {names:?}"
    );

    let applied = apply(
        blob.as_slice(),
        diffed.media_type,
        &replay,
        WhiteoutMode::Delete,
    )
    .expect("replay");
    assert_eq!(applied.digest, diffed.diff_id);
    // Node keeps whole-second mtimes, as a tar carries them.
    assert_eq!(snapshot(&replay, None), snapshot(&upper, None));
    let replay_meta = fs::metadata(replay.join("new_hardlink")).expect("hardlink");
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&replay_meta), 2);
}

fn entry_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned()
        })
        .collect()
}

#[test]
fn overlay_upper_diff_turns_whiteouts_back_into_oci_markers() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let upper = dir.path().join("upper");
    let again = dir.path().join("again");
    fs::create_dir(&upper).expect("mkdir");
    fs::create_dir(&again).expect("mkdir");
    let mut layer = Layer::new();
    layer
        .file(".wh.gone", b"", 0o644)
        .dir("opq/", 0o755)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/new", b"new", 0o644)
        .file("plain", b"p", 0o600);
    apply(layer.finish().as_slice(), "", &upper, WhiteoutMode::Overlay).expect("upper");

    let mut blob = Vec::new();
    let diffed = diff_overlay_upper(&upper, &mut blob, DiffCompression::None).expect("diff");
    assert_eq!(diffed.digest, diffed.diff_id);
    let names = entry_names(&blob);
    assert_eq!(
        names,
        [".wh.gone", "opq", "opq/.wh..wh..opq", "opq/new", "plain"]
    );
    let mut archive = tar::Archive::new(blob.as_slice());
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        assert_ne!(
            entry.header().entry_type(),
            EntryType::Char,
            "no raw whiteout devices in a layer"
        );
        let mut pax = entry;
        if let Some(exts) = pax.pax_extensions().expect("pax") {
            for ext in exts {
                assert!(
                    !ext.expect("ext").key().expect("utf-8").contains("overlay"),
                    "overlay xattrs stay private"
                );
            }
        }
    }
    apply(blob.as_slice(), "", &again, WhiteoutMode::Overlay).expect("apply back");
    assert_eq!(snapshot(&again, None), snapshot(&upper, None));
    let attrs = super::super::xattr::list(&again.join("opq")).expect("xattrs");
    assert!(attrs.contains(&("trusted.overlay.opaque".into(), b"y".to_vec())));
}
