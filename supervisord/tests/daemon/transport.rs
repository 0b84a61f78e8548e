//! Transport and lifecycle: namespace header rules, message size limit, garbage bytes,
//! socket handling, the root lock, graceful shutdown, durability across kill -9.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_api::containerd::services::events::v1::{SubscribeRequest, events_client::EventsClient};
use berth_api::containerd::services::images::v1::{
    CreateImageRequest, Image, ListImagesRequest, images_client::ImagesClient,
};
use berth_api::containerd::services::namespaces::v1::{
    CreateNamespaceRequest, ListNamespacesRequest, Namespace, namespaces_client::NamespacesClient,
};
use berth_api::containerd::services::version::v1::version_client::VersionClient;
use berth_api::containerd::types::Descriptor;
use berth_supervisord::lock::LockError;
use berth_supervisord::server::{Daemon, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Code, Request};

use crate::{CALL_TIMEOUT, TestDaemon, config_in, connect, ns, with_ns, within};

async fn version_answers(ch: tonic::transport::Channel) {
    let v = within("version", VersionClient::new(ch).version(Request::new(())))
        .await
        .expect("Version answers")
        .into_inner();
    assert!(v.version.starts_with("berth-"), "{}", v.version);
}

#[tokio::test]
async fn namespace_header_is_required_and_validated() {
    let d = TestDaemon::start().await;
    let mut images = ImagesClient::new(d.channel().await);
    let err = within("list", images.list(ListImagesRequest::default()))
        .await
        .expect_err("no namespace");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "namespace is required");
    let err = within(
        "list",
        images.list(with_ns("Bad..Name", ListImagesRequest::default())),
    )
    .await
    .expect_err("bad namespace");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("must match"), "{}", err.message());
    within("list", images.list(ns(ListImagesRequest::default())))
        .await
        .expect("with a namespace");
}

#[tokio::test]
async fn oversized_message_is_an_error_status_and_the_server_keeps_serving() {
    let d = TestDaemon::start().await;
    let ch = d.channel().await;
    let mut images = ImagesClient::new(ch.clone()).max_encoding_message_size(64 << 20);
    let big = Image {
        name: "big".into(),
        labels: [("k".to_owned(), "x".repeat(17 << 20))].into(),
        target: Some(Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = within(
        "create",
        images.create(ns(CreateImageRequest { image: Some(big) })),
    )
    .await
    .expect_err("over 16 MiB");
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    // The same connection and a new one both still work.
    version_answers(ch).await;
    version_answers(d.channel().await).await;
}

#[tokio::test]
async fn garbage_bytes_drop_that_connection_only() {
    let d = TestDaemon::start().await;
    let mut raw = tokio::net::UnixStream::connect(&d.socket)
        .await
        .expect("connect");
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff garbage \x01\x02\x03")
        .await
        .expect("write garbage");
    let mut sink = Vec::new();
    // The server closes the connection: read reaches EOF (or a reset), it never hangs.
    let _ = within("connection closed", raw.read_to_end(&mut sink)).await;
    version_answers(d.channel().await).await;
}

#[tokio::test]
async fn socket_is_0660_and_removed_on_graceful_stop() {
    let d = TestDaemon::start().await;
    let mode = std::fs::metadata(&d.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    let socket = d.socket.clone();
    // A long-lived subscription must not keep the daemon from stopping.
    let mut stream = within(
        "subscribe",
        EventsClient::new(d.channel().await).subscribe(SubscribeRequest::default()),
    )
    .await
    .expect("subscribe")
    .into_inner();
    d.stop().await.expect("serve returns Ok");
    assert!(!socket.exists(), "socket removed");
    let end = within("stream ends", stream.message()).await;
    assert!(
        !matches!(end, Ok(Some(_))),
        "no event after shutdown: {end:?}"
    );
}

#[tokio::test]
async fn a_second_daemon_on_the_same_root_is_refused() {
    let d = TestDaemon::start().await;
    let mut cfg = config_in(d.dir.path());
    cfg.address = d.dir.path().join("other.sock");
    match Daemon::bind(cfg) {
        Err(ServerError::Lock(LockError::Held { .. })) => {}
        other => panic!("expected the root lock to be held, got {other:?}"),
    }
    version_answers(d.channel().await).await;
}

#[tokio::test]
async fn stale_socket_is_replaced_but_other_files_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_in(dir.path());
    std::fs::create_dir_all(dir.path()).expect("dir");
    drop(std::os::unix::net::UnixListener::bind(&cfg.address).expect("stale socket"));
    assert!(cfg.address.exists());
    let d = TestDaemon::start_in(dir).await;
    version_answers(d.channel().await).await;
    d.stop().await.expect("stop");

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_in(dir.path());
    std::fs::write(&cfg.address, b"not a socket").expect("file");
    assert!(matches!(
        Daemon::bind(cfg),
        Err(ServerError::NotASocket { .. })
    ));
}

#[tokio::test]
async fn state_survives_a_graceful_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = TestDaemon::start_in(dir).await;
    let mut nsc = NamespacesClient::new(d.channel().await);
    let team = Namespace {
        name: "team1".into(),
        labels: [("k".to_owned(), "v".to_owned())].into(),
    };
    within(
        "create",
        nsc.create(CreateNamespaceRequest {
            namespace: Some(team.clone()),
        }),
    )
    .await
    .expect("create");
    let dir = take_dir(d).await;
    let d = TestDaemon::start_in(dir).await;
    let list = within(
        "list",
        NamespacesClient::new(d.channel().await).list(ListNamespacesRequest::default()),
    )
    .await
    .expect("list")
    .into_inner();
    assert_eq!(list.namespaces, [team]);
}

/// Stop `d` gracefully and keep its directory.
async fn take_dir(mut d: TestDaemon) -> tempfile::TempDir {
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().expect("placeholder"));
    d.stop().await.expect("stop");
    dir
}

/// Kills the child on drop.
struct Berthd(Child);

impl Drop for Berthd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_berthd(dir: &std::path::Path) -> Berthd {
    let cfg = config_in(dir);
    let child = Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--root")
        .arg(&cfg.root)
        .arg("--state")
        .arg(&cfg.state)
        .arg("--address")
        .arg(&cfg.address)
        .arg("--log-level")
        .arg("warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn berthd");
    Berthd(child)
}

/// Poll until berthd answers Version (bounded), as a client would.
async fn wait_until_serving(dir: &std::path::Path) -> tonic::transport::Channel {
    let address = config_in(dir).address;
    let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
    loop {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::UnixStream::connect(&address),
        )
        .await
        {
            drop(stream);
            let ch = connect(address.clone()).await;
            if VersionClient::new(ch.clone())
                .version(Request::new(()))
                .await
                .is_ok()
            {
                return ch;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "berthd did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn namespaces_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = spawn_berthd(dir.path());
    let ch = wait_until_serving(dir.path()).await;
    let mut nsc = NamespacesClient::new(ch);
    let names: Vec<String> = (0..5).map(|i| format!("durable{i}")).collect();
    for n in &names {
        let ns = Namespace {
            name: n.clone(),
            labels: [("i".to_owned(), n.clone())].into(),
        };
        within(
            "create",
            nsc.create(CreateNamespaceRequest {
                namespace: Some(ns),
            }),
        )
        .await
        .expect("create");
    }
    // SIGKILL: no shutdown path runs; the socket file stays behind.
    first.0.kill().expect("kill -9");
    first.0.wait().expect("reap");
    drop(first);
    let _second = spawn_berthd(dir.path());
    let ch = wait_until_serving(dir.path()).await;
    let list = within(
        "list",
        NamespacesClient::new(ch).list(ListNamespacesRequest::default()),
    )
    .await
    .expect("list")
    .into_inner();
    let got: Vec<_> = list.namespaces.iter().map(|n| n.name.clone()).collect();
    assert_eq!(got, names);
    assert!(
        list.namespaces
            .iter()
            .all(|n| n.labels.get("i") == Some(&n.name))
    );
}

#[tokio::test]
async fn in_flight_rpcs_finish_after_shutdown_starts() {
    use berth_api::containerd::services::content::v1::{
        InfoRequest, WriteAction, WriteContentRequest, content_client::ContentClient,
    };
    use sha2::Digest;

    let mut d = TestDaemon::start().await;
    let ch = d.channel().await;
    // Ending subscriptions is the first thing shutdown does: it tells us when it began.
    let mut signal = within(
        "subscribe",
        EventsClient::new(ch.clone()).subscribe(SubscribeRequest::default()),
    )
    .await
    .expect("subscribe")
    .into_inner();

    let data = b"in-flight blob".to_vec();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&data)));
    let msg = |action: WriteAction| WriteContentRequest {
        action: action as i32,
        r#ref: "in-flight".into(),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(msg(WriteAction::Stat)).await.expect("send stat");
    let mut content = ContentClient::new(ch.clone());
    let mut replies = within(
        "write",
        content.write(ns(tokio_stream::wrappers::ReceiverStream::new(rx))),
    )
    .await
    .expect("write stream")
    .into_inner();
    within("stat", replies.message())
        .await
        .expect("stat")
        .expect("reply");

    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().expect("placeholder"));
    let stopping = tokio::spawn(d.stop());
    let ended = within("shutdown begins", signal.message()).await;
    assert!(
        !matches!(ended, Ok(Some(_))),
        "subscription ends at shutdown"
    );

    // The stream opened before shutdown still completes.
    let write = WriteContentRequest {
        data: data.clone(),
        ..msg(WriteAction::Write)
    };
    tx.send(write).await.expect("send write");
    let r = within("write", replies.message())
        .await
        .expect("write")
        .expect("reply");
    assert_eq!(r.offset, data.len() as i64);
    let len = i64::try_from(data.len()).expect("small");
    // A GC root: the collector that runs at the restart below keeps it.
    let commit = WriteContentRequest {
        total: len,
        offset: len,
        expected: digest.clone(),
        labels: [("containerd.io/gc.root".to_string(), "test".to_string())].into(),
        ..msg(WriteAction::Commit)
    };
    tx.send(commit).await.expect("send commit");
    let r = within("commit", replies.message())
        .await
        .expect("commit")
        .expect("reply");
    assert_eq!(r.digest, digest);
    drop(tx);
    drop(replies);
    drop(content);
    drop(ch);
    within("stop", stopping)
        .await
        .expect("stop task")
        .expect("serve returns Ok");

    // New RPCs are not served once shutdown began; after a restart the blob is there.
    let d = TestDaemon::start_in(dir).await;
    let mut content = ContentClient::new(d.channel().await);
    let info = within(
        "info",
        content.info(ns(InfoRequest {
            digest: digest.clone(),
        })),
    )
    .await;
    assert_eq!(
        info.expect("committed blob")
            .into_inner()
            .info
            .expect("info")
            .size,
        len
    );
}
