//! The content store conformance suite: behaviour every [`ContentStore`] must show, run
//! here against [`LocalStore`] on a temp root (plus LocalStore-only cases: reopen, GC).

use std::path::Path;

use super::*;
use crate::metadata::Db;

struct Fixture {
    dir: tempfile::TempDir,
    store: LocalStore,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    Fixture { dir, store }
}

impl Fixture {
    /// A writer for ingest `reference` of unknown size and digest.
    async fn writer(&self, ns: &str, reference: &str) -> LocalWriter {
        self.store
            .writer(ns, opts(reference, 0, None))
            .await
            .expect("writer")
    }
}

fn open(root: &Path) -> LocalStore {
    let db = Db::open(&root.join("metadata")).expect("db");
    LocalStore::open(root, db).expect("store")
}

fn opts(reference: &str, total: u64, expected: Option<&Digest>) -> WriterOpts {
    WriterOpts {
        reference: reference.into(),
        total,
        expected: expected.cloned(),
        lease: None,
    }
}

fn blob(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Write `data` in `chunk`-sized writes and commit with size and digest checked.
async fn put<S: ContentStore>(s: &S, ns: &str, reference: &str, data: &[u8]) -> Result<Info> {
    let d = Digest::of(data);
    let mut w = s
        .writer(ns, opts(reference, data.len() as u64, Some(&d)))
        .await?;
    let mut off = w.status().offset;
    for chunk in data[off as usize..].chunks(7000) {
        off = w.write_at(off, chunk.to_vec()).await?;
    }
    w.commit(data.len() as u64, Some(d), Labels::new()).await
}

async fn read_all<S: ContentStore>(s: &S, ns: &str, d: &Digest) -> Result<Vec<u8>> {
    let r = s.reader(ns, d).await?;
    r.read_at(0, usize::MAX).await
}

#[tokio::test]
async fn write_commit_read_ranges() {
    let f = fixture();
    let data = blob(50_000, 1);
    let info = put(&f.store, "ns", "layer-1", &data).await.expect("put");
    assert_eq!(info.digest, Digest::of(&data));
    assert_eq!(info.size, 50_000);
    assert_eq!(f.store.info("ns", &info.digest).await.expect("info"), info);

    let r = f.store.reader("ns", &info.digest).await.expect("reader");
    assert_eq!(r.size(), 50_000);
    assert_eq!(r.read_at(0, 10).await.expect("read"), data[..10]);
    assert_eq!(r.read_at(49_990, 100).await.expect("read"), data[49_990..]);
    assert_eq!(r.read_at(1234, 4321).await.expect("read"), data[1234..5555]);
    assert!(r.read_at(50_000, 10).await.expect("read at end").is_empty());
    assert!(matches!(
        r.read_at(50_001, 1).await,
        Err(ContentError::ReadPastEnd { .. })
    ));
    assert_eq!(
        read_all(&f.store, "ns", &info.digest).await.expect("all"),
        data
    );

    // Blob file is where containerd keeps it, read-only, and the ingest is gone.
    let path = f
        .dir
        .path()
        .join(CONTENT_DIR)
        .join("blobs/sha256")
        .join(info.digest.hex());
    let meta = std::fs::metadata(&path).expect("blob file");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o444
    );
    assert_eq!(
        std::fs::read_dir(f.store.layout().ingests_dir())
            .expect("ingests")
            .count(),
        0
    );
    assert!(matches!(
        f.store.status("ns", "layer-1").await,
        Err(ContentError::RefNotFound { .. })
    ));
}

#[tokio::test]
async fn resume_continues_at_status_offset() {
    let f = fixture();
    let data = blob(30_000, 2);
    let d = Digest::of(&data);
    {
        let mut w = f
            .store
            .writer("ns", opts("r", 30_000, Some(&d)))
            .await
            .expect("writer");
        assert_eq!(
            w.write_at(0, data[..12_345].to_vec()).await.expect("write"),
            12_345
        );
    } // dropped mid-way, as a broken stream would
    let st = f.store.status("ns", "r").await.expect("status");
    assert_eq!((st.offset, st.total), (12_345, 30_000));
    assert_eq!(st.reference, "r");
    let listed = f
        .store
        .list_statuses("ns", Filter::all())
        .await
        .expect("list");
    assert_eq!(listed, vec![st.clone()]);

    let mut w = f
        .store
        .writer("ns", opts("r", 30_000, Some(&d)))
        .await
        .expect("resume");
    assert_eq!(w.status().offset, 12_345);
    assert!(matches!(
        w.write_at(100, b"x".to_vec()).await,
        Err(ContentError::OffsetMismatch {
            current: 12_345,
            ..
        })
    ));
    assert_eq!(
        w.write_at(12_345, data[12_345..].to_vec())
            .await
            .expect("rest"),
        30_000
    );
    assert_eq!(w.digest(), Some(d.clone()));
    let info = w
        .commit(30_000, Some(d.clone()), Labels::new())
        .await
        .expect("commit");
    assert_eq!(
        read_all(&f.store, "ns", &info.digest).await.expect("read"),
        data
    );
}

#[tokio::test]
async fn offset_zero_truncates() {
    let f = fixture();
    let mut w = f.writer("ns", "r").await;
    w.write_at(0, b"garbage".to_vec()).await.expect("write");
    assert_eq!(w.write_at(0, b"good".to_vec()).await.expect("rewrite"), 4);
    let info = w
        .commit(4, Some(Digest::of(b"good")), Labels::new())
        .await
        .expect("commit");
    assert_eq!(
        read_all(&f.store, "ns", &info.digest).await.expect("read"),
        b"good"
    );
}

#[tokio::test]
async fn abort_drops_the_ingest() {
    let f = fixture();
    let mut w = f.writer("ns", "r").await;
    w.write_at(0, b"abc".to_vec()).await.expect("write");
    let busy = f.store.abort("ns", "r").await;
    assert!(matches!(busy, Err(ContentError::Locked { .. })), "{busy:?}");
    drop(w);
    f.store.abort("ns", "r").await.expect("abort");
    assert!(
        f.store
            .status("ns", "r")
            .await
            .expect_err("gone")
            .is_not_found()
    );
    assert!(
        f.store
            .abort("ns", "r")
            .await
            .expect_err("twice")
            .is_not_found()
    );
    assert_eq!(
        std::fs::read_dir(f.store.layout().ingests_dir())
            .expect("dir")
            .count(),
        0
    );
    let w = f
        .store
        .writer("ns", opts("r", 0, None))
        .await
        .expect("fresh");
    assert_eq!(w.status().offset, 0, "an aborted ref starts from scratch");
}

#[tokio::test]
async fn one_writer_per_ref() {
    let f = fixture();
    let w1 = f
        .store
        .writer("ns", opts("r", 0, None))
        .await
        .expect("first");
    let second = f.store.writer("ns", opts("r", 0, None)).await;
    assert!(
        matches!(second, Err(ContentError::Locked { .. })),
        "{second:?}"
    );
    // The same ref in another namespace is another ingest.
    let other = f
        .store
        .writer("other", opts("r", 0, None))
        .await
        .expect("other ns");
    drop(other);
    drop(w1);
    f.store
        .writer("ns", opts("r", 0, None))
        .await
        .expect("after release");
}

#[tokio::test]
async fn concurrent_writers_of_one_ref_exactly_one_wins() {
    let f = fixture();
    let tries = (0..8).map(|_| {
        let s = f.store.clone();
        tokio::spawn(async move { s.writer("ns", opts("r", 0, None)).await })
    });
    let results: Vec<_> = futures::future::join_all(tries).await;
    let mut held = Vec::new();
    let mut locked = 0;
    for r in results {
        match r.expect("join") {
            Ok(w) => held.push(w),
            Err(ContentError::Locked { .. }) => locked += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // Every winner is still alive in `held`, so exactly one can have won.
    assert_eq!((held.len(), locked), (1, 7));
}

#[tokio::test]
async fn commit_verifies_size_and_digest_and_keeps_ingest() {
    let f = fixture();
    let mut w = f.writer("ns", "r").await;
    w.write_at(0, b"hello".to_vec()).await.expect("write");
    let err = w.commit(6, None, Labels::new()).await.expect_err("size");
    assert!(
        matches!(
            err,
            ContentError::SizeMismatch {
                expected: 6,
                actual: 5,
                ..
            }
        ),
        "{err}"
    );

    let w = f
        .store
        .writer("ns", opts("r", 0, None))
        .await
        .expect("resume");
    assert_eq!(w.status().offset, 5, "a failed commit keeps the bytes");
    let err = w
        .commit(5, Some(Digest::of(b"world")), Labels::new())
        .await
        .expect_err("digest");
    assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
    assert!(f.store.info("ns", &Digest::of(b"hello")).await.is_err());
    assert_eq!(
        f.store.status("ns", "r").await.expect("still there").offset,
        5
    );
}

#[tokio::test]
async fn existing_content_is_already_exists() {
    let f = fixture();
    let info = put(&f.store, "ns", "r1", b"same").await.expect("put");
    let again = f
        .store
        .writer("ns", opts("r2", 4, Some(&info.digest)))
        .await;
    assert!(
        matches!(again, Err(ContentError::AlreadyExists { .. })),
        "{again:?}"
    );
    // Without an expected digest the writer runs and the commit says AlreadyExists.
    let mut w = f.writer("ns", "r3").await;
    w.write_at(0, b"same".to_vec()).await.expect("write");
    let err = w.commit(4, None, Labels::new()).await.expect_err("exists");
    assert!(err.is_already_exists(), "{err}");
    assert!(
        f.store
            .status("ns", "r3")
            .await
            .expect_err("ingest gone")
            .is_not_found()
    );
    assert_eq!(
        f.store.list("ns", Filter::all()).await.expect("list").len(),
        1
    );
}

#[tokio::test]
async fn namespaces_are_isolated_and_share_blobs() {
    let f = fixture();
    let data = blob(10_000, 3);
    let info = put(&f.store, "a", "r", &data).await.expect("put");
    let d = info.digest.clone();
    assert!(f.store.info("b", &d).await.expect_err("b").is_not_found());
    assert!(f.store.reader("b", &d).await.expect_err("b").is_not_found());
    assert!(f.store.delete("b", &d).await.expect_err("b").is_not_found());
    assert!(
        f.store
            .list("b", Filter::all())
            .await
            .expect("list")
            .is_empty()
    );
    let upd = f.store.update("b", &d, Labels::new(), vec![]).await;
    assert!(upd.expect_err("b").is_not_found());

    // b writes the same blob: the writer links the file on disk without any bytes.
    let w = f
        .store
        .writer("b", opts("r", 10_000, Some(&d)))
        .await
        .expect("writer");
    assert_eq!(
        w.status().offset,
        10_000,
        "linking writer reports the blob as written"
    );
    assert_eq!(w.digest(), Some(d.clone()));
    let linked = w
        .commit(10_000, Some(d.clone()), Labels::new())
        .await
        .expect("link");
    assert_eq!(linked.size, 10_000);
    assert_eq!(read_all(&f.store, "b", &d).await.expect("b reads"), data);
    assert_eq!(
        f.store.disk_blobs().await.expect("disk").len(),
        1,
        "stored once"
    );

    // Deleting in one namespace keeps the file for the other; the last delete removes it.
    f.store.delete("a", &d).await.expect("delete a");
    assert!(f.store.info("a", &d).await.is_err());
    assert_eq!(
        read_all(&f.store, "b", &d).await.expect("b still reads"),
        data
    );
    f.store.delete("b", &d).await.expect("delete b");
    assert!(f.store.disk_blobs().await.expect("disk").is_empty());
}

#[tokio::test]
async fn linking_writer_that_writes_rewrites() {
    let f = fixture();
    let info = put(&f.store, "a", "r", b"payload").await.expect("put");
    let mut w = f
        .store
        .writer("b", opts("r", 7, Some(&info.digest)))
        .await
        .expect("writer");
    assert_eq!(w.write_at(0, b"pay".to_vec()).await.expect("restart"), 3);
    assert_eq!(w.write_at(3, b"load".to_vec()).await.expect("rest"), 7);
    let linked = w
        .commit(7, Some(info.digest.clone()), Labels::new())
        .await
        .expect("commit");
    assert_eq!(linked.digest, info.digest);
    assert_eq!(
        read_all(&f.store, "b", &info.digest).await.expect("read"),
        b"payload"
    );
}

#[tokio::test]
async fn update_labels_and_filters() {
    let f = fixture();
    let a = put(&f.store, "ns", "a", b"aaa").await.expect("a");
    let b = put(&f.store, "ns", "b", b"bbb").await.expect("b");
    let labels: Labels = [
        ("k".to_owned(), "v".to_owned()),
        ("x".to_owned(), "1".to_owned()),
    ]
    .into();
    let i = f
        .store
        .update("ns", &a.digest, labels.clone(), vec!["labels.k".into()])
        .await
        .expect("update");
    assert_eq!(i.labels, [("k".to_owned(), "v".to_owned())].into());
    assert!(i.updated_at >= i.created_at);
    let i = f
        .store
        .update("ns", &a.digest, labels.clone(), vec![])
        .await
        .expect("replace");
    assert_eq!(i.labels, labels);
    let err = f
        .store
        .update("ns", &a.digest, labels, vec!["size".into()])
        .await
        .expect_err("bad path");
    assert!(matches!(err, ContentError::InvalidField { .. }), "{err}");

    let hit = Filter::parse("labels.k==v").expect("filter");
    let found = f.store.list("ns", hit).await.expect("list");
    assert_eq!(
        found.iter().map(|i| &i.digest).collect::<Vec<_>>(),
        vec![&a.digest]
    );
    let by_digest = Filter::parse_all(&[format!("digest=={}", b.digest), "labels.x==1".into()])
        .expect("filter");
    assert_eq!(f.store.list("ns", by_digest).await.expect("list").len(), 2);

    for r in ["layer-1", "config-1"] {
        let mut w = f
            .store
            .writer("ns", opts(r, 0, None))
            .await
            .expect("writer");
        w.write_at(0, b"z".to_vec()).await.expect("write");
    }
    let st = f
        .store
        .list_statuses("ns", Filter::parse("ref~=^layer-").expect("filter"))
        .await
        .expect("statuses");
    assert_eq!(
        st.iter().map(|s| s.reference.as_str()).collect::<Vec<_>>(),
        ["layer-1"]
    );
    let all = f
        .store
        .list_statuses("ns", Filter::parse("").expect("empty"))
        .await
        .expect("all");
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn ingests_and_blobs_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = blob(20_000, 4);
    let d = Digest::of(&data);
    let committed;
    {
        let s = open(dir.path());
        committed = put(&s, "ns", "done", b"committed").await.expect("put");
        let mut w = s
            .writer("ns", opts("r", 20_000, Some(&d)))
            .await
            .expect("writer");
        w.write_at(0, data[..9_000].to_vec()).await.expect("write");
    }
    let s = open(dir.path());
    assert_eq!(
        s.info("ns", &committed.digest).await.expect("info"),
        committed
    );
    assert_eq!(s.status("ns", "r").await.expect("status").offset, 9_000);
    let mut w = s
        .writer("ns", opts("r", 20_000, Some(&d)))
        .await
        .expect("resume");
    assert_eq!(w.status().offset, 9_000);
    w.write_at(9_000, data[9_000..].to_vec())
        .await
        .expect("rest");
    w.commit(20_000, Some(d.clone()), Labels::new())
        .await
        .expect("commit after reopen");
    assert_eq!(read_all(&s, "ns", &d).await.expect("read"), data);
}

#[tokio::test]
async fn gc_helpers_remove_only_unreferenced() {
    let f = fixture();
    let info = put(&f.store, "ns", "r", b"kept").await.expect("put");
    assert!(
        !f.store
            .remove_blob_if_unreferenced(&info.digest)
            .await
            .expect("gc")
    );
    let mut w = f.writer("ns", "live").await;
    w.write_at(0, b"x".to_vec()).await.expect("write");
    drop(w);
    let stray = f.store.layout().ingests_dir().join("stray");
    std::fs::create_dir_all(&stray).expect("stray");
    assert_eq!(f.store.remove_stray_ingests().await.expect("clean"), 1);
    let orphan = f.store.layout().blob_path(&Digest::of(b"orphan"));
    std::fs::write(&orphan, b"orphan").expect("orphan blob");
    assert_eq!(f.store.remove_orphan_blobs().await.expect("orphans"), 1);
    assert!(!orphan.exists());
    assert_eq!(
        f.store.disk_blobs().await.expect("disk"),
        vec![(info.digest.clone(), 4)],
        "the referenced blob stays"
    );
    assert!(!stray.exists());
    assert_eq!(
        f.store
            .status("ns", "live")
            .await
            .expect("live kept")
            .offset,
        1
    );
}

#[tokio::test]
async fn bad_input_is_refused() {
    let f = fixture();
    assert!(matches!(
        f.store.writer("ns", opts("", 0, None)).await,
        Err(ContentError::EmptyRef)
    ));
    let w = f
        .store
        .writer("ns", opts("r", 0, None))
        .await
        .expect("writer");
    let big: Labels = [("k".to_owned(), "v".repeat(MAX_LABEL_SIZE))].into();
    assert!(matches!(
        w.commit(0, None, big).await,
        Err(ContentError::LabelTooLarge { .. })
    ));
}
