//! berthd as a process: version, flags, lock, durability, shutdown.

use berth_tests::{Berthd, ctr, ctr_ok, require_root};

#[test]
fn ctr_version_prints_the_server_version() {
    if !require_root("ctr_version_prints_the_server_version") {
        return;
    }
    let d = Berthd::start();
    let out = ctr_ok(&d.socket(), "default", &["version"]);
    let server = out
        .stdout
        .split("Server:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Server section: {out:?}"));
    assert!(server.contains("Version:"), "{out:?}");
    assert!(server.contains("UUID:"), "{out:?}");
}

#[test]
fn introspection_uuid_survives_a_restart() {
    if !require_root("introspection_uuid_survives_a_restart") {
        return;
    }
    let mut d = Berthd::start();
    let uuid = |d: &Berthd| {
        let out = ctr_ok(&d.socket(), "default", &["version"]);
        out.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("UUID:").map(|u| u.trim().to_string()))
            .unwrap_or_else(|| panic!("no UUID line: {out:?}"))
    };
    let before = uuid(&d);
    assert!(!before.is_empty());
    d.kill9();
    d.restart();
    assert_eq!(uuid(&d), before);
}

#[test]
fn a_second_berthd_on_the_same_root_refuses_to_start() {
    if !require_root("a_second_berthd_on_the_same_root_refuses_to_start") {
        return;
    }
    let d = Berthd::start();
    let other_sock = d.root().join("other.sock");
    let out = std::process::Command::new(berth_tests::bin_path("berthd"))
        .arg("--root")
        .arg(d.root())
        .arg("--state")
        .arg(d.state())
        .arg("--address")
        .arg(&other_sock)
        .output()
        .expect("run a second berthd");
    assert!(!out.status.success(), "second berthd started: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lock"), "no clear lock error: {stderr}");
    // The first one still answers.
    ctr_ok(&d.socket(), "default", &["version"]);
}

#[test]
fn sigterm_removes_the_socket_and_exits_zero() {
    if !require_root("sigterm_removes_the_socket_and_exits_zero") {
        return;
    }
    let mut d = Berthd::start();
    ctr_ok(&d.socket(), "default", &["version"]);
    let status = d.terminate().expect("berthd was running");
    assert!(
        status.success(),
        "berthd exited with {status}:\n{}",
        d.log()
    );
    assert!(!d.socket().exists(), "socket file left behind");
}

#[test]
fn socket_is_mode_0660() {
    if !require_root("socket_is_mode_0660") {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = Berthd::start();
    let meta = std::fs::metadata(d.socket()).expect("stat the socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.uid(), 0);
}

#[test]
fn namespaces_survive_kill_9() {
    if !require_root("namespaces_survive_kill_9") {
        return;
    }
    let mut d = Berthd::start();
    let names: Vec<String> = (0..5).map(|_| d.namespace()).collect();
    for n in &names {
        ctr_ok(&d.socket(), "default", &["namespaces", "create", n, "k=v"]);
    }
    d.kill9();
    d.restart();
    let out = ctr_ok(&d.socket(), "default", &["namespaces", "ls"]);
    for n in &names {
        let line = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(n.as_str()))
            .unwrap_or_else(|| panic!("{n} lost after kill -9: {out:?}"));
        assert!(line.contains("k=v"), "{n} lost its label: {line}");
    }
    let out = ctr(&d.socket(), "default", &["version"]);
    assert!(out.success());
}
