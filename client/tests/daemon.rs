//! berthctl against a real berthd on temp paths.
//!
//! The daemon binary is the workspace's `target/<profile>/berthd` (build it
//! with `cargo build -p berth-supervisord --bin berthd`). Without it the
//! tests return early, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A berthd on a private root/state/socket; killed and removed on drop.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
}

fn berthd_path() -> PathBuf {
    // <target>/<profile>/deps/daemon-<hash>  →  <target>/<profile>/berthd
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .join("berthd")
}

impl Daemon {
    fn start(test: &str) -> Option<Daemon> {
        let bin = berthd_path();
        if !bin.exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: {} is missing under CI=true",
                bin.display()
            );
            eprintln!("{test}: skipped, {} not built", bin.display());
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berthctl-test-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("berthd.sock");
        let log = std::fs::File::create(dir.path().join("berthd.log")).expect("log file");
        let child = Command::new(&bin)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .arg("--address")
            .arg(&socket)
            .arg("--log-level")
            .arg("warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        let daemon = Daemon { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "berthd did not listen: {}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(daemon)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("berthd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    fn ctl(&self, ns: &str, args: &[&str]) -> Output {
        self.ctl_cmd(ns, args).output().expect("run berthctl")
    }

    fn ctl_cmd(&self, ns: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berthctl"));
        cmd.env("BERTH_ADDRESS", self.socket())
            .env("BERTH_NAMESPACE", ns)
            .env_remove("BERTH_LOG")
            .args(args);
        cmd
    }

    fn ok(&self, ns: &str, args: &[&str]) -> String {
        let out = self.ctl(ns, args);
        assert!(
            out.status.success(),
            "berthctl {args:?}: {:?}\nstderr: {}\nberthd: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).expect("utf8 stdout")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

#[test]
fn version_reports_client_and_server() {
    let Some(d) = Daemon::start("version_reports_client_and_server") else {
        return;
    };
    let text = d.ok("default", &["version"]);
    assert!(
        text.contains("Client:") && text.contains("Server:"),
        "{text}"
    );
    let json: Value =
        serde_json::from_str(&d.ok("default", &["version", "--format", "json"])).expect("json");
    assert_eq!(json["client"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        json["server"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{json}"
    );
}

#[test]
fn namespaces_create_list_remove() {
    let Some(d) = Daemon::start("namespaces_create_list_remove") else {
        return;
    };
    let ns = unique("ns");
    d.ok(
        "default",
        &["namespaces", "create", &ns, "--label", "team=a"],
    );
    let table = d.ok("default", &["namespaces", "ls"]);
    let line = table
        .lines()
        .find(|l| l.starts_with(&ns))
        .unwrap_or_else(|| panic!("{ns} missing from:\n{table}"));
    assert!(line.ends_with("team=a"), "{line}");
    let json: Value =
        serde_json::from_str(&d.ok("default", &["ns", "ls", "--format", "json"])).expect("json");
    let entry = json
        .as_array()
        .expect("array")
        .iter()
        .find(|n| n["name"] == ns.as_str())
        .expect("listed");
    assert_eq!(entry["labels"]["team"], "a");

    // Creating it again is a daemon error: exit 125, one sentence.
    let again = d.ctl("default", &["namespaces", "create", &ns]);
    assert_eq!(again.status.code(), Some(125));
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("berthctl: ") && err.contains(&ns), "{err}");

    assert_eq!(d.ok("default", &["namespaces", "rm", &ns]).trim(), ns);
    assert!(
        !d.ok("default", &["ns", "ls", "-q"])
            .lines()
            .any(|l| l == ns)
    );
}

#[test]
fn images_ls_is_empty_in_a_new_namespace() {
    let Some(d) = Daemon::start("images_ls_is_empty_in_a_new_namespace") else {
        return;
    };
    let ns = unique("img");
    let table = d.ok(&ns, &["images", "ls"]);
    assert_eq!(table.trim_end(), "NAME   DIGEST   SIZE   CREATED");
    let json: Value =
        serde_json::from_str(&d.ok(&ns, &["images", "ls", "--format", "json"])).expect("json");
    assert_eq!(json, Value::Array(vec![]));
    let missing = d.ctl(&ns, &["images", "inspect", "no-such-image"]);
    assert_eq!(missing.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-image"));
}

#[test]
fn events_print_one_json_object_per_line() {
    let Some(d) = Daemon::start("events_print_one_json_object_per_line") else {
        return;
    };
    let ns = unique("ev");
    let mut events = d
        .ctl_cmd("default", &["events", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn events");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = events.stdout.take().expect("stdout");
    let _guard = Kill(events);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The subscription is live once berthd has it; keep creating namespaces
    // until one of their events arrives.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut created = Vec::new();
    let event = loop {
        assert!(Instant::now() < deadline, "no event arrived");
        let name = format!("{ns}-{}", created.len());
        d.ok("default", &["namespaces", "create", &name]);
        created.push(name);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            break line.expect("line");
        }
    };
    let v: Value = serde_json::from_str(&event).expect("one JSON object per line");
    assert_eq!(v["topic"], "/namespaces/create");
    assert_eq!(v["type"], "containerd.events.NamespaceCreate");
    assert!(
        created.iter().any(|n| v["event"]["name"] == n.as_str()),
        "{v}"
    );
    assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[test]
fn unreachable_daemon_is_exit_125() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_berthctl"))
        .arg("--address")
        .arg(dir.path().join("none.sock"))
        .arg("ps")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to berthd"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn usage_errors_are_exit_125() {
    let out = Command::new(env!("CARGO_BIN_EXE_berthctl"))
        .args(["run", "--net", "bridge", "img"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(125));
    let help = Command::new(env!("CARGO_BIN_EXE_berthctl"))
        .arg("--help")
        .output()
        .expect("help");
    assert_eq!(help.status.code(), Some(0));
}
