//! Namespaces through the real `ctr`, with containerd's behaviour as the reference.

use berth_api::containerd::services::namespaces::v1::{
    DeleteNamespaceRequest, namespaces_client::NamespacesClient,
};
use berth_tests::{Berthd, ctr, ctr_ok, require_root};

fn ls_line(d: &Berthd, name: &str) -> Option<String> {
    let out = ctr_ok(&d.socket(), "default", &["namespaces", "ls"]);
    out.stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(str::to_string)
}

#[test]
fn create_label_list_remove() {
    if !require_root("create_label_list_remove") {
        return;
    }
    let d = Berthd::start();
    let team = d.namespace();
    ctr_ok(&d.socket(), "default", &["namespaces", "create", &team]);
    assert!(ls_line(&d, &team).is_some(), "created namespace not listed");

    ctr_ok(
        &d.socket(),
        "default",
        &["namespaces", "label", &team, "k=v"],
    );
    let line = ls_line(&d, &team).expect("still listed");
    assert!(line.contains("k=v"), "label not shown: {line}");

    ctr_ok(&d.socket(), "default", &["namespaces", "rm", &team]);
    assert!(
        ls_line(&d, &team).is_none(),
        "removed namespace still listed"
    );
}

#[test]
fn removing_an_unknown_namespace_is_not_found_and_ctr_is_done() {
    if !require_root("removing_an_unknown_namespace_is_not_found_and_ctr_is_done") {
        return;
    }
    let d = Berthd::start();
    let ghost = d.namespace();
    // containerd answers NotFound ...
    let code = berth_tests::block_on(async {
        let mut client = NamespacesClient::new(berth_tests::channel(d.socket()).await);
        client
            .delete(DeleteNamespaceRequest {
                name: ghost.clone(),
            })
            .await
            .expect_err("deleting an unknown namespace must fail")
            .code()
    });
    assert_eq!(code, tonic::Code::NotFound);
    // ... and ctr treats that as done: it prints the name and exits 0.
    let out = ctr(&d.socket(), "default", &["namespaces", "rm", &ghost]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), ghost);
}

#[test]
fn a_bad_name_is_refused_with_containerds_message() {
    if !require_root("a_bad_name_is_refused_with_containerds_message") {
        return;
    }
    let d = Berthd::start();
    let out = ctr(
        &d.socket(),
        "default",
        &["namespaces", "create", "Bad..Name"],
    );
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains("invalid argument"),
        "expected an InvalidArgument error: {out:?}"
    );
    assert!(
        out.stderr.contains("Bad..Name"),
        "the message names the bad identifier: {out:?}"
    );
    assert!(ls_line(&d, "Bad..Name").is_none());
}

#[test]
fn creating_an_existing_namespace_is_already_exists() {
    if !require_root("creating_an_existing_namespace_is_already_exists") {
        return;
    }
    let d = Berthd::start();
    let ns = d.namespace();
    ctr_ok(&d.socket(), "default", &["namespaces", "create", &ns]);
    let out = ctr(&d.socket(), "default", &["namespaces", "create", &ns]);
    assert!(!out.success());
    assert!(out.stderr.contains("already exists"), "{out:?}");
}
