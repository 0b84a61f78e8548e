//! berth's daemon-side pull (`berth.images.v1.Transfer`) through the client library:
//! per-layer progress, and a pull interrupted by `kill -9` of berthd that completes after
//! a restart with no corrupt blob and no stray ingest.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use berth_api::berth::images::v1::{PullRequest, TransferStatus};
use berth_client::Client;
use berth_tests::images::Image;
use berth_tests::{Berthd, Registry, block_on, ctr_ok, images, require_root};
use sha2::Digest as _;

fn request(reference: &str) -> PullRequest {
    PullRequest {
        r#ref: reference.to_string(),
        unpack: true,
        ..Default::default()
    }
}

/// Pulls through berthd's Transfer service; returns the final status of every blob.
fn pull(d: &Berthd, ns: &str, reference: &str) -> BTreeMap<String, i32> {
    block_on(async {
        let client = Client::connect(d.socket())
            .await
            .expect("connect")
            .with_namespace(ns)
            .expect("namespace");
        let mut last = BTreeMap::new();
        let image = client
            .pull(request(reference), |blob| {
                last.insert(blob.digest.clone(), blob.status);
            })
            .await
            .expect("pull");
        assert_eq!(image.name, reference);
        last
    })
}

/// Every blob file of the daemon's content store hashes to its name.
fn assert_blobs_intact(d: &Berthd) {
    let dir = d
        .root()
        .join("io.containerd.content.v1.content/blobs/sha256");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("blob dir").flatten() {
        let data = std::fs::read(entry.path()).expect("read blob");
        let hex = hex::encode(sha2::Sha256::digest(&data));
        assert_eq!(
            entry.file_name().to_string_lossy(),
            hex,
            "corrupt blob {:?}",
            entry.path()
        );
        n += 1;
    }
    assert!(n > 0, "no blobs in {}", dir.display());
}

fn ingest_dirs(root: &Path) -> usize {
    std::fs::read_dir(root.join("io.containerd.content.v1.content/ingest"))
        .map(|r| r.count())
        .unwrap_or(0)
}

fn layer_digests(img: &Image) -> Vec<String> {
    img.layers.iter().map(|l| l.digest.clone()).collect()
}

#[test]
fn daemon_pull_reports_every_layer_done() {
    if !require_root("daemon_pull_reports_every_layer_done") {
        return;
    }
    let registry = Registry::start().expect("registry");
    let d = Berthd::start();
    let ns = d.namespace();
    let img = &images().multilayer;
    let reference = img.push(&registry).expect("push");

    let last = pull(&d, &ns, &reference);
    for layer in layer_digests(img) {
        assert_eq!(
            last.get(&layer).copied(),
            Some(TransferStatus::Done as i32),
            "layer {layer} did not report done: {last:?}"
        );
    }
    let listed = ctr_ok(&d.socket(), &ns, &["images", "ls", "-q"]).stdout;
    assert!(listed.lines().any(|l| l == reference), "{listed}");
    // A second pull finds everything there.
    let again = pull(&d, &ns, &reference);
    for layer in layer_digests(img) {
        assert_eq!(
            again.get(&layer).copied(),
            Some(TransferStatus::Exists as i32),
            "{again:?}"
        );
    }
}

#[test]
fn pull_interrupted_by_kill_9_completes_after_restart() {
    if !require_root("pull_interrupted_by_kill_9_completes_after_restart") {
        return;
    }
    let registry = Registry::start().expect("registry");
    let mut d = Berthd::start();
    let ns = d.namespace();
    let img = &images().multilayer;
    let reference = img.push(&registry).expect("push");

    // Pull in a thread; the first layer bytes to arrive are the cue for kill -9.
    let (cue_tx, cue_rx) = mpsc::channel();
    let socket = d.socket();
    let (ns2, reference2) = (ns.clone(), reference.clone());
    let first = std::thread::spawn(move || {
        block_on(async {
            let client = Client::connect(socket)
                .await
                .expect("connect")
                .with_namespace(&ns2)
                .expect("namespace");
            client
                .pull(request(&reference2), |blob| {
                    if blob.status == TransferStatus::Downloading as i32 && blob.offset > 0 {
                        let _ = cue_tx.send(());
                    }
                })
                .await
        })
    });
    cue_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the pull started downloading a layer");
    d.kill9();
    assert!(
        first.join().expect("pull thread").is_err(),
        "the first pull must have been cut off by kill -9"
    );

    d.restart();
    let images_after_kill = ctr_ok(&d.socket(), &ns, &["images", "ls", "-q"]).stdout;
    assert!(
        !images_after_kill.lines().any(|l| l == reference),
        "an image record exists for an interrupted pull"
    );
    let last = pull(&d, &ns, &reference);
    for layer in layer_digests(img) {
        let status = last.get(&layer).copied();
        assert!(
            status == Some(TransferStatus::Done as i32)
                || status == Some(TransferStatus::Exists as i32),
            "layer {layer}: {status:?}"
        );
    }
    assert_blobs_intact(&d);
    let active = ctr_ok(&d.socket(), &ns, &["content", "active"]).stdout;
    assert!(
        active.lines().skip(1).all(|l| l.trim().is_empty()),
        "ingests left after the completed pull:\n{active}"
    );
    assert_eq!(ingest_dirs(&d.root()), 0, "ingest directories left");
    // The unpacked top snapshot is there: a container could run on it.
    let top = img.chain_ids().pop().expect("layers");
    let snaps = ctr_ok(&d.socket(), &ns, &["snapshots", "ls"]).stdout;
    assert!(snaps.contains(&top), "top snapshot {top} missing:\n{snaps}");
}
