//! In-process tests: the Content service on a temp unix socket, driven by a tonic client
//! the way ctr 1.6 drives containerd (STAT → WRITE chunks → COMMIT, resume, have-it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use berth_api::containerd::events::ContentDelete;
use berth_api::containerd::services::content::v1 as pb;
use berth_api::transport::{connect_unix, unix_endpoint};
use futures::StreamExt;
use pb::content_client::ContentClient;
use pb::content_server::ContentServer;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::transport::Channel;
use tonic::{Code, Request, Streaming};

use super::*;
use crate::content::LocalStore;
use crate::filters::Filter;
use crate::metadata::Db;

const MIB: usize = 1 << 20;

struct Harness {
    _dir: tempfile::TempDir,
    store: LocalStore,
    events: Exchange,
    client: ContentClient<Channel>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("metadata")).expect("db");
    let store = LocalStore::open(dir.path(), db).expect("store");
    let events = Exchange::new();
    let sock: PathBuf = dir.path().join("berthd.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let svc = ContentServer::new(ContentService::new(store.clone(), events.clone()))
        .max_decoding_message_size(16 * MIB)
        .max_encoding_message_size(16 * MIB);
    let server = tokio::spawn(async move {
        let res = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(UnixListenerStream::new(listener))
            .await;
        if let Err(e) = res {
            panic!("server failed: {e}");
        }
    });
    let channel = connect_unix(unix_endpoint(), sock).await.expect("connect");
    let client = ContentClient::new(channel)
        .max_decoding_message_size(16 * MIB)
        .max_encoding_message_size(16 * MIB);
    Harness {
        _dir: dir,
        store,
        events,
        client,
        server,
    }
}

fn req<T>(ns: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("containerd-namespace", ns.parse().expect("ascii"));
    r
}

fn blob(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed))
        .collect()
}

/// An open Write stream: one request out, one response back, like ctr's remoteWriter.
struct Writer {
    tx: mpsc::Sender<pb::WriteContentRequest>,
    rx: Streaming<pb::WriteContentResponse>,
}

impl Writer {
    async fn open(client: &mut ContentClient<Channel>, ns: &str) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(4);
        let resp = client.write(req(ns, ReceiverStream::new(rx))).await?;
        Ok(Self {
            tx,
            rx: resp.into_inner(),
        })
    }

    async fn send(
        &mut self,
        msg: pb::WriteContentRequest,
    ) -> Result<pb::WriteContentResponse, tonic::Status> {
        self.tx.send(msg).await.expect("request stream open");
        match self.rx.message().await? {
            Some(resp) => Ok(resp),
            None => panic!("stream ended without a response"),
        }
    }
}

fn stat(reference: &str, total: usize, expected: &str) -> pb::WriteContentRequest {
    pb::WriteContentRequest {
        action: pb::WriteAction::Stat as i32,
        r#ref: reference.into(),
        total: total as i64,
        expected: expected.into(),
        ..Default::default()
    }
}

fn write(offset: usize, data: &[u8]) -> pb::WriteContentRequest {
    pb::WriteContentRequest {
        action: pb::WriteAction::Write as i32,
        offset: offset as i64,
        data: data.to_vec(),
        ..Default::default()
    }
}

fn commit(total: usize, offset: usize, expected: &str) -> pb::WriteContentRequest {
    pb::WriteContentRequest {
        action: pb::WriteAction::Commit as i32,
        total: total as i64,
        offset: offset as i64,
        expected: expected.into(),
        labels: HashMap::from([("containerd.io/uncompressed".into(), "x".into())]),
        ..Default::default()
    }
}

/// Open a writer, retrying while another stream still holds the ref (ctr backs off and
/// retries on Unavailable in the same way).
async fn open_stat(
    client: &mut ContentClient<Channel>,
    ns: &str,
    first: pb::WriteContentRequest,
) -> Result<(Writer, pb::WriteContentResponse), tonic::Status> {
    for _ in 0..500 {
        let mut w = Writer::open(client, ns).await?;
        match w.send(first.clone()).await {
            Err(e) if e.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
            Ok(resp) => return Ok((w, resp)),
        }
    }
    panic!("ref stayed locked");
}

/// ctr's sequence for one blob: STAT, STAT, WRITE 1 MiB chunks from the offset, COMMIT.
async fn ctr_write(
    client: &mut ContentClient<Channel>,
    ns: &str,
    reference: &str,
    data: &[u8],
) -> Result<pb::WriteContentResponse, tonic::Status> {
    let d = Digest::of(data).to_string();
    let (mut w, first) = open_stat(client, ns, stat(reference, data.len(), &d)).await?;
    let again = w.send(stat(reference, data.len(), &d)).await?;
    assert_eq!(again.offset, first.offset);
    let mut off = usize::try_from(first.offset).expect("offset");
    for chunk in data[off..].chunks(MIB) {
        let resp = w.send(write(off, chunk)).await?;
        assert_eq!(resp.action, pb::WriteAction::Write as i32);
        assert_eq!(resp.offset as usize, off + chunk.len(), "no short write");
        off += chunk.len();
    }
    let done = w.send(commit(data.len(), off, &d)).await?;
    drop(w.tx);
    assert!(
        w.rx.message().await?.is_none(),
        "nothing after the commit response"
    );
    Ok(done)
}

async fn read(
    client: &mut ContentClient<Channel>,
    ns: &str,
    digest: &str,
    offset: i64,
    size: i64,
) -> Result<Vec<pb::ReadContentResponse>, tonic::Status> {
    let mut s = client
        .read(req(
            ns,
            pb::ReadContentRequest {
                digest: digest.into(),
                offset,
                size,
            },
        ))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await? {
        out.push(m);
    }
    Ok(out)
}

fn joined(msgs: &[pb::ReadContentResponse]) -> Vec<u8> {
    msgs.iter().flat_map(|m| m.data.iter().copied()).collect()
}

#[tokio::test]
async fn ctr_write_sequence_then_info_read_list() {
    let mut h = start().await;
    let data = blob(2 * MIB + MIB / 2, 1);
    let d = Digest::of(&data).to_string();

    let (mut w, first) = open_stat(&mut h.client, "ns", stat("layer-x", data.len(), &d))
        .await
        .expect("stat");
    assert_eq!((first.offset, first.total), (0, data.len() as i64));
    assert!(first.started_at.is_some() && first.updated_at.is_some());
    assert_eq!(first.digest, Digest::of(b"").to_string(), "digest so far");
    drop(w.tx);
    assert!(w.rx.message().await.expect("clean end").is_none());

    let done = ctr_write(&mut h.client, "ns", "layer-x", &data)
        .await
        .expect("write");
    assert_eq!(done.offset, data.len() as i64);
    assert_eq!(done.digest, d);

    let info = h
        .client
        .info(req("ns", pb::InfoRequest { digest: d.clone() }))
        .await
        .expect("info")
        .into_inner()
        .info
        .expect("info set");
    assert_eq!(info.size, data.len() as i64);
    assert_eq!(info.labels["containerd.io/uncompressed"], "x");
    assert!(info.created_at.is_some());

    let all = read(&mut h.client, "ns", &d, 0, 0).await.expect("read all");
    assert_eq!(joined(&all), data);
    assert_eq!(all.len(), 3, "1 MiB chunks");
    assert!(all.iter().all(|m| m.data.len() <= MIB));
    let part = read(&mut h.client, "ns", &d, 1000, 5000)
        .await
        .expect("range");
    assert_eq!(joined(&part), data[1000..6000]);
    assert_eq!(part[0].offset, 1000);
    let tail = read(&mut h.client, "ns", &d, (data.len() - 10) as i64, 100)
        .await
        .expect("tail");
    assert_eq!(joined(&tail), data[data.len() - 10..]);
    let past = read(&mut h.client, "ns", &d, data.len() as i64 + 1, 0).await;
    assert_eq!(past.expect_err("past end").code(), Code::InvalidArgument);

    let mut list = h
        .client
        .list(req("ns", pb::ListContentRequest { filters: vec![] }))
        .await
        .expect("list")
        .into_inner();
    let got = list.message().await.expect("msg").expect("one");
    assert_eq!(got.info.len(), 1);
    assert_eq!(got.info[0].digest, d);
    assert!(list.message().await.expect("end").is_none());

    let statuses = h
        .client
        .list_statuses(req(
            "ns",
            pb::ListStatusesRequest {
                filters: vec![String::new()],
            },
        ))
        .await
        .expect("statuses")
        .into_inner();
    assert!(statuses.statuses.is_empty(), "ingest gone after commit");
}

#[tokio::test]
async fn resume_after_dropped_stream() {
    let mut h = start().await;
    let data = blob(3 * MIB, 2);
    let d = Digest::of(&data).to_string();
    {
        let (mut w, _) = open_stat(&mut h.client, "ns", stat("layer-r", data.len(), &d))
            .await
            .expect("stat");
        w.send(write(0, &data[..MIB])).await.expect("write");
        w.send(write(MIB, &data[MIB..MIB + 4096]))
            .await
            .expect("write");
    } // the client goes away without a commit

    let st = h
        .client
        .status(req(
            "ns",
            pb::StatusRequest {
                r#ref: "layer-r".into(),
            },
        ))
        .await
        .expect("status")
        .into_inner()
        .status
        .expect("set");
    assert_eq!(
        (st.offset, st.total),
        ((MIB + 4096) as i64, data.len() as i64)
    );

    // ctr's next attempt: STAT reports the offset, it seeks and continues there.
    let (mut w, first) = open_stat(&mut h.client, "ns", stat("layer-r", data.len(), &d))
        .await
        .expect("resume");
    assert_eq!(first.offset, (MIB + 4096) as i64);
    let bad = w.send(write(10, b"x")).await;
    assert_eq!(bad.expect_err("wrong offset").code(), Code::InvalidArgument);

    let done = ctr_write(&mut h.client, "ns", "layer-r", &data)
        .await
        .expect("finish");
    assert_eq!(done.digest, d);
    let all = read(&mut h.client, "ns", &d, 0, -1).await.expect("read");
    assert_eq!(joined(&all), data);
}

#[tokio::test]
async fn rewrite_is_already_exists_and_other_namespace_links() {
    let mut h = start().await;
    let data = blob(100_000, 3);
    let d = Digest::of(&data).to_string();
    ctr_write(&mut h.client, "ns", "config-1", &data)
        .await
        .expect("first");

    let mut w = Writer::open(&mut h.client, "ns").await.expect("open");
    let err = w
        .send(stat("config-1", data.len(), &d))
        .await
        .expect_err("have it");
    assert_eq!(err.code(), Code::AlreadyExists);

    // Another namespace: the blob is on disk, so STAT reports it complete and COMMIT links.
    let (mut w, first) = open_stat(&mut h.client, "other", stat("config-1", data.len(), &d))
        .await
        .expect("stat");
    assert_eq!(first.offset, data.len() as i64);
    assert_eq!(first.digest, d);
    let done = w
        .send(commit(data.len(), data.len(), &d))
        .await
        .expect("link");
    assert_eq!(
        (done.offset, done.digest.as_str()),
        (data.len() as i64, d.as_str())
    );
    let all = read(&mut h.client, "other", &d, 0, 0).await.expect("read");
    assert_eq!(joined(&all), data);
}

#[tokio::test]
async fn second_writer_of_a_ref_is_unavailable() {
    let mut h = start().await;
    let (mut w1, _) = open_stat(&mut h.client, "ns", stat("layer-l", 10, ""))
        .await
        .expect("first");
    let mut w2 = Writer::open(&mut h.client, "ns").await.expect("open");
    let err = w2.send(stat("layer-l", 10, "")).await.expect_err("locked");
    assert_eq!(err.code(), Code::Unavailable);
    w1.send(write(0, b"0123456789"))
        .await
        .expect("first still writes");
}

#[tokio::test]
async fn protocol_errors() {
    let mut h = start().await;
    let mut w = Writer::open(&mut h.client, "ns").await.expect("open");
    let err = w.send(write(0, b"x")).await.expect_err("no ref");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("first message must have a reference")
    );

    let (mut w, _) = open_stat(&mut h.client, "ns", stat("r", 0, ""))
        .await
        .expect("stat");
    w.send(write(0, b"abc")).await.expect("write");
    let wrong = Digest::of(b"abd").to_string();
    let err = w.send(commit(3, 3, &wrong)).await.expect_err("digest");
    assert_eq!(err.code(), Code::FailedPrecondition);

    let mut no_ns = h
        .client
        .info(Request::new(pb::InfoRequest {
            digest: wrong.clone(),
        }))
        .await;
    assert_eq!(
        no_ns.as_mut().expect_err("no namespace").code(),
        Code::FailedPrecondition
    );
    let nf = h
        .client
        .info(req("ns", pb::InfoRequest { digest: wrong }))
        .await;
    assert_eq!(nf.expect_err("missing").code(), Code::NotFound);
    let bad = h
        .client
        .info(req(
            "ns",
            pb::InfoRequest {
                digest: "sha256:zz".into(),
            },
        ))
        .await;
    assert_eq!(bad.expect_err("bad digest").code(), Code::InvalidArgument);

    h.client
        .abort(req("ns", pb::AbortRequest { r#ref: "r".into() }))
        .await
        .expect("abort");
    let again = h
        .client
        .abort(req("ns", pb::AbortRequest { r#ref: "r".into() }))
        .await;
    assert_eq!(again.expect_err("gone").code(), Code::NotFound);
}

#[tokio::test]
async fn update_masks_and_delete_event() {
    let mut h = start().await;
    let data = b"manifest".to_vec();
    let d = Digest::of(&data).to_string();
    ctr_write(&mut h.client, "ns", "manifest-1", &data)
        .await
        .expect("write");

    let update = |labels: &[(&str, &str)], paths: &[&str]| pb::UpdateRequest {
        info: Some(pb::Info {
            digest: d.clone(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).into()).collect(),
        }),
    };
    let got = h
        .client
        .update(req(
            "ns",
            update(
                &[("containerd.io/gc.ref.content.l.0", "sha256:aa")],
                &["labels.containerd.io/gc.ref.content.l.0"],
            ),
        ))
        .await
        .expect("update")
        .into_inner()
        .info
        .expect("info");
    assert_eq!(got.labels.len(), 2, "merged with the commit label");
    let got = h
        .client
        .update(req("ns", update(&[("only", "1")], &["labels"])))
        .await
        .expect("replace")
        .into_inner()
        .info
        .expect("info");
    assert_eq!(got.labels, HashMap::from([("only".into(), "1".into())]));
    let bad = h.client.update(req("ns", update(&[], &["size"]))).await;
    assert_eq!(bad.expect_err("size").code(), Code::InvalidArgument);
    let filtered = h
        .client
        .list(req(
            "ns",
            pb::ListContentRequest {
                filters: vec!["labels.only==2".into()],
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .collect::<Vec<_>>()
        .await;
    assert!(filtered.is_empty(), "no message for no match");

    let mut events = Box::pin(h.events.subscribe(Filter::all()));
    h.client
        .delete(req("ns", pb::DeleteContentRequest { digest: d.clone() }))
        .await
        .expect("delete");
    let env = events.next().await.expect("event");
    assert_eq!(
        (env.namespace.as_str(), env.topic.as_str()),
        ("ns", "/content/delete")
    );
    let ev: ContentDelete = berth_api::any::unpack(&env.event).expect("payload");
    assert_eq!(ev.digest, d);
    let again = h
        .client
        .delete(req("ns", pb::DeleteContentRequest { digest: d.clone() }))
        .await;
    assert_eq!(again.expect_err("gone").code(), Code::NotFound);
    assert!(h.store.disk_blobs().await.expect("disk").is_empty());
}
