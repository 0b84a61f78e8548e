//! `ctr images pull` into berthd from a local registry, end to end: content, images,
//! snapshots, Diff.Apply, garbage collection, and a corrupted registry blob.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_api::containerd::services::leases::v1::{self as leases, leases_client::LeasesClient};
use berth_api::containerd::services::snapshots::v1::{
    self as snapshots, snapshots_client::SnapshotsClient,
};
use berth_api::metadata::LEASE_HEADER;
use berth_tests::images::{Image, read_tree};
use berth_tests::{
    Berthd, Registry, block_on, channel, ctr, ctr_ok, images, in_ns, require_root, unique_name,
};

/// Pulls `image` (pushed to `registry`) into namespace `ns`; returns the reference.
fn pull(d: &Berthd, ns: &str, registry: &Registry, image: &Image) -> String {
    let reference = image.push(registry).expect("push the image");
    ctr_ok(
        &d.socket(),
        ns,
        &["images", "pull", "--plain-http", &reference],
    );
    reference
}

/// Lines of a ctr listing after its header.
fn rows(out: &str) -> Vec<&str> {
    out.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// `images rm --sync` (which waits for GC), then nothing of the image remains.
fn remove_and_expect_empty(d: &Berthd, ns: &str, reference: &str) {
    let sock = d.socket();
    ctr_ok(&sock, ns, &["images", "rm", "--sync", reference]);
    assert!(
        ctr_ok(&sock, ns, &["images", "ls", "-q"])
            .stdout
            .trim()
            .is_empty()
    );
    let content = ctr_ok(&sock, ns, &["content", "ls"]).stdout;
    assert!(
        rows(&content).is_empty(),
        "content left after GC:\n{content}"
    );
    let snaps = ctr_ok(&sock, ns, &["snapshots", "ls"]).stdout;
    assert!(rows(&snaps).is_empty(), "snapshots left after GC:\n{snaps}");
    let backend = d
        .root()
        .join("io.containerd.snapshotter.v1.overlayfs/snapshots");
    let left: Vec<_> = std::fs::read_dir(&backend)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "snapshot directories left: {left:?}");
}

#[test]
fn busybox_pull_ls_and_rm_leave_nothing_after_gc() {
    if !require_root("busybox_pull_ls_and_rm_leave_nothing_after_gc") {
        return;
    }
    let registry = Registry::start().expect("registry");
    let d = Berthd::start();
    let ns = d.namespace();
    let img = &images().busybox;
    let reference = pull(&d, &ns, &registry, img);
    let sock = d.socket();

    let listed = ctr_ok(&sock, &ns, &["images", "ls"]).stdout;
    assert!(listed.contains(&reference), "{listed}");
    assert!(listed.contains(&img.manifest_digest), "{listed}");

    let content = ctr_ok(&sock, &ns, &["content", "ls"]).stdout;
    for digest in [
        &img.manifest_digest,
        &img.config_digest,
        &img.layers[0].digest,
    ] {
        assert!(
            content.contains(digest.as_str()),
            "{digest} missing:\n{content}"
        );
    }
    assert_eq!(rows(&content).len(), 3, "{content}");
    let top = &img.chain_ids()[0];
    assert!(
        content.contains(&format!("containerd.io/gc.ref.snapshot.overlayfs={top}")),
        "{content}"
    );
    assert!(content.contains(&format!(
        "containerd.io/uncompressed={}",
        img.layers[0].diff_id
    )));

    let snaps = ctr_ok(&sock, &ns, &["snapshots", "ls"]).stdout;
    assert_eq!(rows(&snaps).len(), 1, "{snaps}");
    assert!(
        rows(&snaps)[0].starts_with(top.as_str()) && snaps.contains("Committed"),
        "{snaps}"
    );

    snapshot_error_codes(&d, &ns, top);

    // The same pull in another namespace is independent of this one.
    let other = d.namespace();
    pull(&d, &other, &registry, img);
    remove_and_expect_empty_ns_only(&d, &ns, &reference, &other);
    remove_and_expect_empty(&d, &other, &reference);
}

/// The codes ctr relies on (Stat → NotFound during unpack), straight from the service.
fn snapshot_error_codes(d: &Berthd, ns: &str, committed: &str) {
    block_on(async {
        let mut c = SnapshotsClient::new(channel(d.socket()).await);
        let stat = |sn: &str, key: &str| snapshots::StatSnapshotRequest {
            snapshotter: sn.into(),
            key: key.into(),
        };
        let code = |r: Result<tonic::Response<snapshots::StatSnapshotResponse>, tonic::Status>| {
            r.expect_err("an error").code()
        };
        let missing = c.stat(in_ns(ns, stat("overlayfs", "missing"))).await;
        assert_eq!(code(missing), tonic::Code::NotFound);
        let unknown = c.stat(in_ns(ns, stat("zfs", committed))).await;
        assert_eq!(code(unknown), tonic::Code::InvalidArgument);
        let info = c
            .stat(in_ns(ns, stat("overlayfs", committed)))
            .await
            .expect("stat")
            .into_inner()
            .info
            .expect("info");
        assert_eq!(info.kind, snapshots::Kind::Committed as i32);
        let prepare = |key: &str, parent: &str| snapshots::PrepareSnapshotRequest {
            snapshotter: "overlayfs".into(),
            key: key.into(),
            parent: parent.into(),
            labels: Default::default(),
        };
        let taken = c.prepare(in_ns(ns, prepare(committed, ""))).await;
        assert_eq!(taken.expect_err("taken").code(), tonic::Code::AlreadyExists);
        let orphan = c.prepare(in_ns(ns, prepare("k", "no-such-parent"))).await;
        assert_eq!(orphan.expect_err("no parent").code(), tonic::Code::NotFound);
        let gone = snapshots::RemoveSnapshotRequest {
            snapshotter: "overlayfs".into(),
            key: "missing".into(),
        };
        let r = c.remove(in_ns(ns, gone)).await;
        assert_eq!(r.expect_err("missing").code(), tonic::Code::NotFound);
    });
}

/// Removes the image in `ns` and checks `ns` is empty while `other` keeps its copy.
fn remove_and_expect_empty_ns_only(d: &Berthd, ns: &str, reference: &str, other: &str) {
    let sock = d.socket();
    ctr_ok(&sock, ns, &["images", "rm", "--sync", reference]);
    assert!(rows(&ctr_ok(&sock, ns, &["content", "ls"]).stdout).is_empty());
    assert!(rows(&ctr_ok(&sock, ns, &["snapshots", "ls"]).stdout).is_empty());
    assert_eq!(
        rows(&ctr_ok(&sock, other, &["content", "ls"]).stdout).len(),
        3
    );
    assert_eq!(
        rows(&ctr_ok(&sock, other, &["snapshots", "ls"]).stdout).len(),
        1
    );
}

/// Unmounts the target when dropped.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mounts the JSON mounts `ctr snapshots view --mounts` printed (one overlay or bind).
fn mount_json<'a>(json: &str, target: &'a Path) -> Mounted<'a> {
    use nix::mount::{MsFlags, mount};
    let mounts: Vec<serde_json::Value> = serde_json::from_str(json).expect("mounts JSON");
    assert_eq!(mounts.len(), 1, "{json}");
    let m = &mounts[0];
    // Go's encoding of mount.Mount: capitalized field names.
    let kind = m["Type"].as_str().expect("Type");
    let source = m["Source"].as_str().expect("Source");
    let options: Vec<&str> = m["Options"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o.as_str()).collect())
        .unwrap_or_default();
    match kind {
        "overlay" => {
            let data = options.join(",");
            mount(
                Some(source),
                target,
                Some("overlay"),
                MsFlags::MS_RDONLY,
                Some(data.as_str()),
            )
            .expect("mount overlay");
        }
        "bind" => {
            mount(
                Some(source),
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .expect("bind");
            let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            mount(None::<&str>, target, None::<&str>, ro, None::<&str>).expect("remount ro");
        }
        other => panic!("unexpected mount type {other}: {json}"),
    }
    Mounted(target)
}

#[test]
fn multilayer_top_snapshot_holds_exactly_the_expected_tree() {
    if !require_root("multilayer_top_snapshot_holds_exactly_the_expected_tree") {
        return;
    }
    let registry = Registry::start().expect("registry");
    let d = Berthd::start();
    let ns = d.namespace();
    let img = &images().multilayer;
    let reference = pull(&d, &ns, &registry, img);
    let sock = d.socket();
    let chain = img.chain_ids();
    let snaps = ctr_ok(&sock, &ns, &["snapshots", "ls"]).stdout;
    assert_eq!(rows(&snaps).len(), 4, "{snaps}");
    for c in &chain {
        assert!(snaps.contains(c.as_str()), "{c} missing:\n{snaps}");
    }

    // The view is held by a lease, as containerd's clients hold what they create: an
    // unreferenced snapshot is garbage, and the pull's lease deletion scheduled a GC.
    let key = unique_name("view");
    let top = chain.last().expect("4 layers").clone();
    let lease = unique_name("lease");
    let json = block_on(async {
        let ch = channel(sock.clone()).await;
        let create = leases::CreateRequest {
            id: lease.clone(),
            ..Default::default()
        };
        LeasesClient::new(ch.clone())
            .create(in_ns(&ns, create))
            .await
            .expect("create lease");
        let view = snapshots::ViewSnapshotRequest {
            snapshotter: "overlayfs".into(),
            key: key.clone(),
            parent: top.clone(),
            labels: Default::default(),
        };
        let mut req = in_ns(&ns, view);
        req.metadata_mut()
            .insert(LEASE_HEADER, lease.parse().expect("ascii lease id"));
        let mounts = SnapshotsClient::new(ch)
            .view(req)
            .await
            .expect("view")
            .into_inner()
            .mounts;
        let as_json: Vec<serde_json::Value> = mounts
            .into_iter()
            .map(
                |m| serde_json::json!({"Type": m.r#type, "Source": m.source, "Options": m.options}),
            )
            .collect();
        serde_json::to_string(&as_json).expect("json")
    });
    let printed = ctr_ok(&sock, &ns, &["snapshots", "mounts", "/mnt", &key]).stdout;
    assert!(
        printed.starts_with("mount -t overlay overlay /mnt -o "),
        "{printed}"
    );
    assert_eq!(printed.matches(':').count(), 3, "four lowerdirs: {printed}");

    let target = tempfile::tempdir().expect("mount point");
    let tree = {
        let _m = mount_json(&json, target.path());
        read_tree(target.path()).expect("read the mounted tree")
    };
    let expected = img.expected_tree();
    assert!(!expected.contains_key("data/random-2.bin") && !expected.contains_key("etc/motd"));
    let olddir: Vec<&String> = expected
        .keys()
        .filter(|k| k.starts_with("opt/olddir/"))
        .collect();
    assert_eq!(olddir, ["opt/olddir/c"]);
    let missing: Vec<&String> = expected.keys().filter(|k| !tree.contains_key(*k)).collect();
    let extra: Vec<&String> = tree.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    assert!(tree == expected, "same paths, but some content differs");

    ctr_ok(&sock, &ns, &["snapshots", "rm", &key]);
    ctr_ok(&sock, &ns, &["leases", "rm", &lease]);
    remove_and_expect_empty(&d, &ns, &reference);
}

#[test]
fn a_corrupted_registry_blob_fails_the_pull_and_leaves_no_image() {
    if !require_root("a_corrupted_registry_blob_fails_the_pull_and_leaves_no_image") {
        return;
    }
    let registry = Registry::start().expect("registry");
    let img = &images().busybox;
    let reference = img.push(&registry).expect("push");
    registry
        .corrupt_blob(&img.layers[0].digest)
        .expect("corrupt");
    let d = Berthd::start();
    let ns = d.namespace();
    let sock = d.socket();
    let out = ctr(&sock, &ns, &["images", "pull", "--plain-http", &reference]);
    assert!(!out.success(), "pull of a corrupt blob succeeded: {out:?}");
    assert!(
        out.stderr.contains("unexpected commit digest")
            && out.stderr.contains(&img.layers[0].digest),
        "unclear error: {}",
        out.stderr
    );
    assert!(
        ctr_ok(&sock, &ns, &["images", "ls", "-q"])
            .stdout
            .trim()
            .is_empty()
    );
    assert!(rows(&ctr_ok(&sock, &ns, &["snapshots", "ls"]).stdout).is_empty());
    // ctr deleted its lease; the collector then removes what the pull wrote.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let content = ctr_ok(&sock, &ns, &["content", "ls", "-q"]).stdout;
        let active = ctr_ok(&sock, &ns, &["content", "active"]).stdout;
        if content.trim().is_empty() && rows(&active).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left after GC:\n{content}\n{active}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
