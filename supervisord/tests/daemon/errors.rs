//! A failure's causes reach the client in the status message, each once.

use berth_api::containerd::services::content::v1::{
    WriteAction, WriteContentRequest, content_client::ContentClient,
};
use berth_api::containerd::services::diff::v1::{ApplyRequest, diff_client::DiffClient};
use berth_api::containerd::types::{Descriptor, Mount};
use sha2::{Digest as _, Sha256};
use tonic::Code;

use crate::{TestDaemon, ns, within};

/// A tar whose first entry `ok.txt` is fine and whose second header is corrupt (its
/// checksum field overwritten), owned by the caller so no chown needs root.
fn tar_with_a_corrupt_second_header() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for name in ["ok.txt", "bad.txt"] {
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(nix::unistd::geteuid().as_raw().into());
        h.set_gid(nix::unistd::getegid().as_raw().into());
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &b"hi"[..]).expect("append");
    }
    let mut data = b.into_inner().expect("finish tar");
    // Header 2 follows header 1 and its one data block; checksum is bytes 148..156.
    data[1024 + 148..1024 + 156].copy_from_slice(b"0000001\0");
    data
}

#[tokio::test]
async fn a_failed_apply_carries_its_cause_in_the_message() {
    let d = TestDaemon::start().await;
    let ch = d.channel().await;
    let blob = tar_with_a_corrupt_second_header();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&blob)));

    // One Write message that writes and commits; a gc.root label keeps the blob from a
    // collection running meanwhile.
    let write = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: "nested-cause".into(),
        total: blob.len() as i64,
        expected: digest.clone(),
        offset: 0,
        data: blob.clone(),
        labels: [("containerd.io/gc.root".to_owned(), "now".to_owned())].into(),
    };
    let mut replies = within(
        "write",
        ContentClient::new(ch.clone()).write(ns(tokio_stream::iter([write]))),
    )
    .await
    .expect("write")
    .into_inner();
    let committed = within("commit", replies.message())
        .await
        .expect("commit")
        .expect("one reply");
    assert_eq!(committed.digest, digest);

    let target = tempfile::tempdir().expect("target dir");
    let apply = ApplyRequest {
        diff: Some(Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest: digest.clone(),
            size: blob.len() as i64,
            annotations: Default::default(),
        }),
        mounts: vec![Mount {
            r#type: "bind".into(),
            source: target.path().display().to_string(),
            target: String::new(),
            options: vec!["rbind".into(), "rw".into()],
        }],
        ..Default::default()
    };
    let err = within("apply", DiffClient::new(ch).apply(ns(apply)))
        .await
        .expect_err("a corrupt header fails the apply");

    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    let prefix = format!("apply layer {digest}: malformed tar entry ok.txt: ");
    let msg = err.message();
    assert!(msg.starts_with(&prefix), "{msg}");
    assert!(
        msg.len() > prefix.len(),
        "the tar reader's reason follows: {msg}"
    );
    assert_eq!(msg.matches("apply layer").count(), 1, "{msg}");
    assert_eq!(msg.matches("malformed tar entry").count(), 1, "{msg}");
    assert!(
        target.path().join("ok.txt").exists(),
        "the good entry was applied"
    );
}
