//! `berthctl pull` from a private Debian `docker-registry` on a free loopback
//! port: plain lines when stdout is a pipe, progress bars on a terminal (a pty
//! from util-linux `script`). Needs `/usr/bin/docker-registry` and
//! `/usr/bin/script`; without them the test returns early, except under
//! `CI=true`.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use berth_test_support::registry::{REGISTRY_BIN, Registry};

use super::{Daemon, NamespaceCgroups, unique, with_image};

const SCRIPT_BIN: &str = "/usr/bin/script";

/// Whether the registry and `script` are installed (panics under `CI=true`
/// when they are not).
fn has_tools(test: &str) -> bool {
    if Path::new(REGISTRY_BIN).exists() && Path::new(SCRIPT_BIN).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs {REGISTRY_BIN} and {SCRIPT_BIN} under CI=true"
    );
    eprintln!("{test}: skipped (needs {REGISTRY_BIN} and {SCRIPT_BIN})");
    false
}

/// The 12-hex short digests of the image's manifest, config and layers.
fn blob_ids(d: &Daemon, ns: &str, image: &str) -> Vec<String> {
    let json: Value =
        serde_json::from_str(&d.ok(ns, &["images", "inspect", image])).expect("inspect json");
    let i = &json[0];
    let mut digests = vec![
        i["manifest_digest"].clone(),
        i["manifest"]["config"]["digest"].clone(),
    ];
    digests.extend(
        i["manifest"]["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].clone()),
    );
    digests
        .iter()
        .map(|d| {
            let hex = d.as_str().expect("digest").trim_start_matches("sha256:");
            hex[..12].to_string()
        })
        .collect()
}

#[test]
fn pull_prints_plain_lines_to_a_pipe_and_bars_to_a_terminal() {
    let test = "pull_prints_plain_lines_to_a_pipe_and_bars_to_a_terminal";
    if !has_tools(test) {
        return;
    }
    let Some((d, ns, image)) = with_image(test) else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let reg = Registry::start().expect("registry");
    let remote = format!("{}/{ns}/busybox:latest", reg.addr());
    d.ok(&ns, &["images", "push", &image, &remote]);
    let blobs = blob_ids(&d, &ns, &image);
    let target = serde_json::from_str::<Value>(&d.ok(&ns, &["images", "inspect", &image]))
        .expect("json")[0]["target"]["digest"]
        .as_str()
        .expect("target")
        .to_string();

    // A pipe: plain lines, each "<short digest>: <status>[ size]", then the
    // image line; nothing a terminal would interpret.
    let piped_ns = unique("pipe");
    let _piped_cgroups = NamespaceCgroups(piped_ns.clone());
    let out = d.ok(&piped_ns, &["pull", &remote]);
    assert!(
        !out.contains('\x1b') && !out.contains('\r'),
        "escapes in {out:?}"
    );
    let lines: Vec<&str> = out.lines().collect();
    let (last, progress) = lines.split_last().expect("output");
    assert_eq!(*last, format!("{remote} {target}"), "{out}");
    assert!(!progress.is_empty(), "no progress lines: {out}");
    for line in progress {
        let (id, status) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("not a progress line: {line:?}"));
        assert!(
            id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{line:?}"
        );
        assert!(!status.is_empty(), "{line:?}");
    }
    for id in &blobs {
        assert!(
            progress.iter().any(|l| l.starts_with(&format!("{id}: "))),
            "no line for blob {id}: {out}"
        );
    }
    // Each blob ends done (or was already there): one final line per blob.
    for id in &blobs[1..] {
        assert!(
            progress.iter().any(|l| {
                l.strip_prefix(&format!("{id}: "))
                    .is_some_and(|s| s.starts_with("done") || s.starts_with("exists"))
            }),
            "blob {id} never done: {out}"
        );
    }

    // A terminal: indicatif bars, redrawn with escapes, "=" filled.
    let tty_ns = unique("tty");
    let _tty_cgroups = NamespaceCgroups(tty_ns.clone());
    let cmd = format!("{} pull {remote}", env!("CARGO_BIN_EXE_berthctl"));
    let out = Command::new(SCRIPT_BIN)
        .args(["-qec", &cmd, "/dev/null"])
        .env("BERTH_ADDRESS", d.socket())
        .env("BERTH_NAMESPACE", &tty_ns)
        .env("TERM", "xterm")
        .env_remove("BERTH_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}: {text}\nstderr: {}\nberthd: {}\nregistry: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        d.log(),
        reg.log()
    );
    assert!(
        text.contains("\r\x1b[2K"),
        "no redraws (carriage return, erase line): {text:?}"
    );
    assert!(
        text.contains(&format!("[{}]", "=".repeat(30))),
        "no full bar: {text:?}"
    );
    for id in &blobs[1..] {
        assert!(text.contains(id.as_str()), "no bar for {id}: {text:?}");
    }
    assert!(text.contains(&format!("{remote} {target}")), "{text:?}");
    // Both pulls stored the same image.
    let pulled: Value =
        serde_json::from_str(&d.ok(&tty_ns, &["images", "inspect", &remote])).expect("json");
    assert_eq!(pulled[0]["target"]["digest"], target.as_str());
}
