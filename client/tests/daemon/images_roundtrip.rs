//! `images export` then `images import`: the archive brings back the same
//! image (target, manifest and config digests, chain id).

use serde_json::Value;

use super::{Daemon, with_image};

/// The digests `images inspect` reports for `image`.
fn digests(d: &Daemon, ns: &str, image: &str) -> [String; 4] {
    let json: Value =
        serde_json::from_str(&d.ok(ns, &["images", "inspect", image])).expect("inspect json");
    let i = &json.as_array().expect("array")[0];
    assert_eq!(i["name"], image, "{json}");
    let field = |v: &Value| {
        let s = v.as_str().unwrap_or_default().to_string();
        assert!(!s.is_empty(), "{json}");
        s
    };
    [
        field(&i["target"]["digest"]),
        field(&i["manifest_digest"]),
        field(&i["config_digest"]),
        field(&i["chain_id"]),
    ]
}

/// The target digest `images ls --format json` lists for `image`, if any.
fn listed(d: &Daemon, ns: &str, image: &str) -> Option<String> {
    let json: Value =
        serde_json::from_str(&d.ok(ns, &["images", "ls", "--format", "json"])).expect("ls json");
    json.as_array()
        .expect("array")
        .iter()
        .find(|i| i["name"] == image)
        .map(|i| i["digest"].as_str().expect("digest").to_string())
}

#[test]
fn export_rm_import_round_trips_to_the_same_digests() {
    let Some((d, ns, image)) = with_image("export_rm_import_round_trips_to_the_same_digests")
    else {
        return;
    };
    let before = digests(&d, &ns, &image);
    assert_eq!(listed(&d, &ns, &image).as_deref(), Some(before[0].as_str()));

    let archive = d.dir.path().join("exported.tar");
    let archive = archive.to_str().expect("utf8");
    d.ok(&ns, &["images", "export", "-o", archive, &image]);
    assert!(
        std::fs::metadata(archive).expect("archive written").len() > 0,
        "empty archive"
    );

    d.ok(&ns, &["images", "rm", "--sync", &image]);
    assert_eq!(listed(&d, &ns, &image), None, "image still listed after rm");
    let gone = d.ctl(&ns, &["images", "inspect", &image]);
    assert_eq!(gone.status.code(), Some(125));

    let imported = d.ok(&ns, &["images", "import", archive]);
    assert_eq!(imported.trim(), format!("{image} {}", before[0]));
    assert_eq!(digests(&d, &ns, &image), before);
    assert_eq!(listed(&d, &ns, &image).as_deref(), Some(before[0].as_str()));
}
