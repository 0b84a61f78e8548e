//! In-process daemon tests of the Transfer service: a whole berthd on a temp socket, a
//! private docker-registry, images built by the tests and pushed with skopeo.

mod fixtures;
mod registry;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_api::berth::images::v1 as pb;
use berth_api::containerd::services::snapshots::v1 as snap_pb;
use berth_api::transport::{connect_unix, unix_endpoint};
use futures::StreamExt;
use pb::transfer_client::TransferClient;
use snap_pb::snapshots_client::SnapshotsClient;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::config::Config;
use crate::content::{ContentStore, LocalStore};
use crate::images::labels;
use crate::metadata::Db;
use crate::server::Daemon;
use fixtures::{Built, E, build_layout, noise, tar_layout};
use registry::{Registry, have_root, have_tools};

const MIB: usize = 1 << 20;
const NS: &str = "transfer-test";

/// berthd serving on a temp root; stopped on drop.
struct TestDaemon {
    dir: tempfile::TempDir,
    db: Db,
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestDaemon {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir).await
    }

    async fn start_in(dir: tempfile::TempDir) -> Self {
        let config = Config {
            root: dir.path().join("root"),
            state: dir.path().join("state"),
            address: dir.path().join("berthd.sock"),
            ..Config::default()
        };
        let socket = config.address.clone();
        let daemon = Daemon::bind(config).expect("bind berthd");
        let db = daemon.db().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            daemon
                .serve(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        Self {
            dir,
            db,
            socket,
            stop: Some(tx),
        }
    }

    async fn channel(&self) -> Channel {
        connect_unix(unix_endpoint(), &self.socket)
            .await
            .expect("connect")
    }

    async fn transfer(&self) -> TransferClient<Channel> {
        TransferClient::new(self.channel().await)
            .max_decoding_message_size(16 * MIB)
            .max_encoding_message_size(16 * MIB)
    }

    fn content(&self) -> LocalStore {
        LocalStore::open(&self.dir.path().join("root"), self.db.clone()).expect("content view")
    }

    fn labels(&self, ns: &str, digest: &str) -> Option<crate::content::Labels> {
        self.db
            .content(ns)
            .get(digest)
            .expect("content record")
            .map(|r| r.labels)
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn req<T>(ns: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("containerd-namespace", ns.parse().expect("ascii"));
    r
}

/// Pulls and collects every progress message; `Err` with the stream's status.
async fn pull(
    d: &TestDaemon,
    ns: &str,
    reference: &str,
    unpack: bool,
) -> Result<(Vec<pb::BlobProgress>, pb::Image), tonic::Status> {
    let mut client = d.transfer().await;
    let mut stream = client
        .pull(req(
            ns,
            pb::PullRequest {
                r#ref: reference.into(),
                unpack,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let mut blobs = Vec::new();
    let mut image = None;
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        blobs.extend(msg.blobs);
        if msg.image.is_some() {
            image = msg.image;
        }
    }
    Ok((blobs, image.expect("final message carries the image")))
}

fn three_layers() -> Vec<Vec<E>> {
    vec![
        vec![
            E::Dir("etc"),
            E::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n".to_vec()),
            E::Dir("a"),
            E::File("a/keep", b"keep".to_vec()),
            E::File("a/gone", b"gone".to_vec()),
            E::Dir("opt"),
            E::Dir("opt/old"),
            E::File("opt/old/x", b"x".to_vec()),
        ],
        vec![E::Dir("data"), E::File("data/big", noise(3 * MIB, 7))],
        vec![
            E::Whiteout("a/gone"),
            E::Dir("opt/old"),
            E::Opaque("opt/old"),
            E::File("opt/old/new", b"new".to_vec()),
        ],
    ]
}

/// Mounts a view of `parent` and runs `check` on the tree.
async fn with_view(d: &TestDaemon, ns: &str, parent: &str, check: impl FnOnce(&Path)) {
    let mut snaps = SnapshotsClient::new(d.channel().await);
    let key = format!("view-{}", std::process::id());
    let mounts = snaps
        .view(req(
            ns,
            snap_pb::ViewSnapshotRequest {
                snapshotter: "overlayfs".into(),
                key: key.clone(),
                parent: parent.into(),
                labels: HashMap::new(),
            },
        ))
        .await
        .expect("view")
        .into_inner()
        .mounts;
    let mounts: Vec<berth_snapshotter::Mount> = mounts
        .into_iter()
        .map(|m| berth_snapshotter::Mount {
            fs_type: m.r#type,
            source: m.source,
            target: None,
            options: m.options,
        })
        .collect();
    let target = tempfile::tempdir().expect("mount point");
    {
        let _guard =
            berth_snapshotter::MountGuard::mount(&mounts, target.path()).expect("mount view");
        check(target.path());
    }
    snaps
        .remove(req(
            ns,
            snap_pb::RemoveSnapshotRequest {
                snapshotter: "overlayfs".into(),
                key,
            },
        ))
        .await
        .expect("remove view");
}

fn assert_unpacked_tree(root: &Path) {
    assert_eq!(std::fs::read(root.join("a/keep")).expect("keep"), b"keep");
    assert!(!root.join("a/gone").exists(), "whiteout hides a/gone");
    assert!(
        !root.join("opt/old/x").exists(),
        "opaque dir hides opt/old/x"
    );
    assert_eq!(
        std::fs::read(root.join("opt/old/new")).expect("new"),
        b"new"
    );
    assert_eq!(
        std::fs::metadata(root.join("data/big")).expect("big").len(),
        3 * MIB as u64
    );
    assert!(root.join("etc/passwd").is_file());
}

/// A private registry holding the three-layer image under repository `name`; the layout
/// it was pushed from (the blobs [`Built`] names), what was built and its reference.
fn registry_with_three_layers(name: &str) -> (Registry, tempfile::TempDir, Built, String) {
    let reg = Registry::start();
    let layout = tempfile::tempdir().expect("layout dir");
    let built = build_layout(layout.path(), &three_layers());
    let reference = reg.push_layout(layout.path(), name);
    (reg, layout, built, reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_streams_per_layer_progress_records_and_unpacks() {
    if !have_tools("pull_streams_per_layer_progress")
        || !have_root("pull_streams_per_layer_progress")
    {
        return;
    }
    let (_reg, _layout, built, reference) = registry_with_three_layers("multi");
    let d = TestDaemon::start().await;

    let (blobs, image) = pull(&d, NS, &reference, true).await.expect("pull");
    assert_eq!(image.name, reference);
    let target = image.target.expect("target");
    assert_eq!(target.digest, built.index_digest);
    assert_eq!(target.media_type, crate::images::oci::MEDIA_TYPE_OCI_INDEX);

    // Per-layer progress: every layer is reported downloaded in full and done (unpacked);
    // the 3 MiB layer reports intermediate offsets.
    for (i, layer) in built.layers.iter().enumerate() {
        let mine: Vec<&pb::BlobProgress> = blobs.iter().filter(|b| &b.digest == layer).collect();
        let status = |s: pb::TransferStatus| mine.iter().any(|b| b.status == s as i32);
        assert!(
            status(pb::TransferStatus::Downloaded),
            "layer {i} downloaded: {mine:?}"
        );
        assert!(status(pb::TransferStatus::Unpacking), "layer {i} unpacking");
        assert!(status(pb::TransferStatus::Done), "layer {i} done");
        let total = std::fs::metadata(built.blob(layer)).expect("blob").len() as i64;
        assert!(mine.iter().all(|b| b.total == total && b.offset <= total));
    }
    let big: Vec<i64> = blobs
        .iter()
        .filter(|b| {
            b.digest == built.layers[1] && b.status == pb::TransferStatus::Downloading as i32
        })
        .map(|b| b.offset)
        .collect();
    assert!(
        big.len() >= 3,
        "the 3 MiB layer reports progress as it arrives: {big:?}"
    );
    assert!(
        big.windows(2).all(|w| w[0] <= w[1]),
        "offsets grow: {big:?}"
    );

    // Content labels, as containerd's pull writes them.
    let src = "containerd.io/distribution.source.127.0.0.1";
    let index = d.labels(NS, &built.index_digest).expect("index stored");
    assert_eq!(
        index["containerd.io/gc.ref.content.m.0"],
        built.manifest_digest
    );
    assert_eq!(index[src], "multi");
    let manifest = d
        .labels(NS, &built.manifest_digest)
        .expect("manifest stored");
    assert_eq!(
        manifest["containerd.io/gc.ref.content.config"],
        built.config_digest
    );
    for (i, l) in built.layers.iter().enumerate() {
        assert_eq!(manifest[&format!("containerd.io/gc.ref.content.l.{i}")], *l);
        let layer = d.labels(NS, l).expect("layer stored");
        assert_eq!(layer[labels::UNCOMPRESSED], built.diff_ids[i]);
        assert_eq!(layer[src], "multi");
    }
    let config = d.labels(NS, &built.config_digest).expect("config stored");
    let top = built.chains.last().expect("top chain").clone();
    assert_eq!(config["containerd.io/gc.ref.snapshot.overlayfs"], top);

    // The image record and the snapshots, keyed by chain IDs; no lease left behind.
    let img = d.db.images(NS).get(&reference).expect("image record");
    assert_eq!(img.target.digest, built.index_digest);
    let snaps = d.db.snapshots(NS, "overlayfs");
    for (i, chain) in built.chains.iter().enumerate() {
        let rec = snaps.get(chain).expect("snapshot per chain id");
        let parent = if i == 0 {
            String::new()
        } else {
            built.chains[i - 1].clone()
        };
        assert_eq!(rec.parent, parent);
    }
    assert_eq!(
        snaps.list().expect("list").len(),
        built.chains.len(),
        "no extract-* keys left"
    );
    let leases =
        d.db.leases(NS)
            .list(&crate::filters::Filter::default())
            .expect("leases");
    assert!(leases.is_empty(), "pull lease released: {leases:?}");
    with_view(&d, NS, &top, assert_unpacked_tree).await;

    // A second pull finds everything: EXISTS, same image.
    let (blobs, again) = pull(&d, NS, &reference, true).await.expect("re-pull");
    assert_eq!(again.target.expect("target").digest, built.index_digest);
    for l in &built.layers {
        assert!(
            blobs
                .iter()
                .any(|b| &b.digest == l && b.status == pb::TransferStatus::Exists as i32)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupted_blob_fails_the_pull_and_commits_nothing() {
    if !have_tools("corrupted_blob") || !have_root("corrupted_blob") {
        return;
    }
    let (reg, _layout, built, reference) = registry_with_three_layers("corrupt");
    // Flip bytes in the middle of the big layer as the registry stores it (same size).
    let path = reg.blob_path(&built.layers[1]);
    let mut data = std::fs::read(&path).expect("registry blob");
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&path, &data).expect("corrupt blob");
    let d = TestDaemon::start().await;

    let err = pull(&d, NS, &reference, true)
        .await
        .expect_err("corrupt blob fails");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains(&built.layers[1]),
        "names the blob: {}",
        err.message()
    );
    assert!(
        d.labels(NS, &built.layers[1]).is_none(),
        "corrupt blob not committed"
    );
    assert!(
        d.labels(NS, &built.manifest_digest).is_none(),
        "manifest not committed"
    );
    assert!(
        d.labels(NS, &built.config_digest).is_none(),
        "config not committed"
    );
    assert!(d.db.images(NS).get(&reference).is_err(), "no image record");
    let snaps = d.db.snapshots(NS, "overlayfs");
    assert!(
        snaps.get(&built.chains[1]).is_err(),
        "no snapshot for the corrupt layer"
    );
    assert!(
        snaps
            .list()
            .expect("list")
            .iter()
            .all(|r| !r.key.starts_with("extract-"))
    );
    let ingests = d
        .content()
        .list_statuses(NS, crate::filters::Filter::default())
        .await
        .expect("statuses");
    assert!(
        ingests
            .iter()
            .all(|s| !s.reference.contains(&built.layers[1])),
        "corrupt ingest dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupted_ingest_resumes_with_a_range_request() {
    if !have_tools("interrupted_ingest_resumes") || !have_root("interrupted_ingest_resumes") {
        return;
    }
    let (_reg, _layout, built, reference) = registry_with_three_layers("resume");
    // What a daemon killed mid-pull leaves in its root: half of the big layer in its
    // ingest, under the pull's lease (so the collector at start keeps it).
    let dir = tempfile::tempdir().expect("daemon dir");
    let big = std::fs::read(built.blob(&built.layers[1])).expect("blob");
    let half = big.len() / 2;
    {
        use crate::content::{ContentWriter, WriterOpts};
        let root = dir.path().join("root");
        let db = Db::open(&root.join(crate::server::METADATA_DIR)).expect("db");
        db.leases(NS)
            .create("killed-pull", &crate::metadata::Labels::new())
            .expect("lease");
        let store = LocalStore::open(&root, db).expect("content");
        let mut w = store
            .writer(
                NS,
                WriterOpts {
                    reference: format!("layer-{}", built.layers[1]),
                    total: big.len() as u64,
                    expected: Some(
                        crate::content::Digest::parse(&built.layers[1]).expect("digest"),
                    ),
                    lease: Some("killed-pull".into()),
                },
            )
            .await
            .expect("writer");
        w.write_at(0, big[..half].to_vec())
            .await
            .expect("write half");
    }
    let d = TestDaemon::start_in(dir).await;
    let (blobs, _) = pull(&d, NS, &reference, true).await.expect("resumed pull");
    let first = blobs
        .iter()
        .find(|b| b.digest == built.layers[1] && b.status == pb::TransferStatus::Downloading as i32)
        .expect("download progress");
    assert_eq!(
        first.offset, half as i64,
        "download continued at the stored offset"
    );
    assert_eq!(
        d.labels(NS, &built.layers[1]).expect("stored")[labels::UNCOMPRESSED],
        built.diff_ids[1]
    );
    let top = built.chains.last().expect("top").clone();
    with_view(&d, NS, &top, assert_unpacked_tree).await;
}

/// Streams an archive into Import in 64 KiB chunks.
async fn import(
    d: &TestDaemon,
    ns: &str,
    archive: Vec<u8>,
    base: &str,
    unpack: bool,
) -> Vec<pb::Image> {
    let mut chunks: Vec<pb::ImportChunk> = archive
        .chunks(64 << 10)
        .map(|c| pb::ImportChunk {
            data: c.to_vec(),
            ..Default::default()
        })
        .collect();
    chunks[0].base_name = base.into();
    chunks[0].unpack = unpack;
    let mut client = d.transfer().await;
    client
        .import(req(ns, futures::stream::iter(chunks)))
        .await
        .expect("import")
        .into_inner()
        .images
}

async fn export(d: &TestDaemon, ns: &str, names: &[&str]) -> Vec<u8> {
    let mut client = d.transfer().await;
    let mut stream = client
        .export(req(
            ns,
            pb::ExportRequest {
                names: names.iter().map(|s| (*s).to_owned()).collect(),
                platform: String::new(),
            },
        ))
        .await
        .expect("export")
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend(chunk.expect("chunk").data);
    }
    out
}

/// The index.json and blob digests of an archive; each blob's bytes checked.
fn read_archive(archive: &[u8]) -> (serde_json::Value, Vec<String>) {
    use std::io::Read;
    let mut a = tar::Archive::new(archive);
    let mut index = serde_json::Value::Null;
    let mut blobs = Vec::new();
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").to_string_lossy().into_owned();
        let mut body = Vec::new();
        e.read_to_end(&mut body).expect("read");
        match crate::images::layout::classify(&path) {
            crate::images::layout::Entry::Index => {
                index = serde_json::from_slice(&body).expect("json")
            }
            crate::images::layout::Entry::Blob(d) => {
                assert_eq!(
                    crate::images::oci::sha256_digest(&body),
                    d,
                    "blob bytes match their name"
                );
                blobs.push(d);
            }
            _ => {}
        }
    }
    blobs.sort();
    (index, blobs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_then_export_round_trips_digests() {
    let layout = tempfile::tempdir().expect("layout dir");
    let built = build_layout(layout.path(), &three_layers());
    let d = TestDaemon::start().await;
    let images = import(&d, NS, tar_layout(layout.path()), "example.com/rt", false).await;
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].name, "example.com/rt:latest");
    assert_eq!(
        images[0].target.as_ref().expect("target").digest,
        built.index_digest
    );
    let manifest = d
        .labels(NS, &built.manifest_digest)
        .expect("manifest stored");
    assert_eq!(
        manifest["containerd.io/gc.ref.content.config"],
        built.config_digest
    );

    let archive = export(&d, NS, &["example.com/rt:latest"]).await;
    let (index, blobs) = read_archive(&archive);
    assert_eq!(index["manifests"][0]["digest"], built.index_digest.as_str());
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "example.com/rt:latest"
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let (_, original) = read_archive(&tar_layout(layout.path()));
    assert_eq!(blobs, original, "the same blobs, byte for byte");

    // And back: the exported archive imports to the same image in another namespace.
    let again = import(&d, "transfer-test-2", archive.clone(), "", false).await;
    assert_eq!(again[0].name, "example.com/rt:latest");
    assert_eq!(
        again[0].target.as_ref().expect("target").digest,
        built.index_digest
    );
    assert_eq!(
        export(&d, "transfer-test-2", &["example.com/rt:latest"]).await,
        archive,
        "export is deterministic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_with_unpack_creates_the_snapshots() {
    if !have_root("import_with_unpack") {
        return;
    }
    let layout = tempfile::tempdir().expect("layout dir");
    let built = build_layout(layout.path(), &three_layers());
    let d = TestDaemon::start().await;
    import(
        &d,
        NS,
        tar_layout(layout.path()),
        "example.com/unpacked",
        true,
    )
    .await;
    let top = built.chains.last().expect("top").clone();
    let config = d.labels(NS, &built.config_digest).expect("config");
    assert_eq!(config["containerd.io/gc.ref.snapshot.overlayfs"], top);
    with_view(&d, NS, &top, assert_unpacked_tree).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_then_pull_back_gives_the_same_digest() {
    if !have_tools("push_then_pull_back") {
        return;
    }
    let reg = Registry::start();
    let layout = tempfile::tempdir().expect("layout dir");
    let built: Built = build_layout(layout.path(), &three_layers());
    let d = TestDaemon::start().await;
    import(
        &d,
        NS,
        tar_layout(layout.path()),
        "example.com/pushed",
        false,
    )
    .await;
    let dest = format!("{}/pushed:v1", reg.addr);
    let mut client = d.transfer().await;
    let mut stream = client
        .push(req(
            NS,
            pb::PushRequest {
                name: "example.com/pushed:latest".into(),
                r#ref: dest.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("push")
        .into_inner();
    let mut pushed = None;
    let mut seen = Vec::new();
    while let Some(msg) = stream.next().await {
        let msg = msg.expect("push progress");
        seen.extend(msg.blobs);
        if msg.pushed.is_some() {
            pushed = msg.pushed;
        }
    }
    assert_eq!(pushed.expect("pushed").digest, built.index_digest);
    for l in &built.layers {
        assert!(
            seen.iter()
                .any(|b| &b.digest == l && b.status == pb::TransferStatus::Done as i32)
        );
    }
    let (_, image) = pull(&d, "transfer-test-back", &dest, false)
        .await
        .expect("pull back");
    assert_eq!(image.target.expect("target").digest, built.index_digest);
    assert!(
        d.labels("transfer-test-back", &built.manifest_digest)
            .is_some()
    );
}
