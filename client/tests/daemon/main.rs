//! berthctl against a real berthd on temp paths.
//!
//! ```text
//! tests/daemon/
//!   main.rs              the daemon and image fixtures, run/exec/logs/events
//!   interactive.rs       run -it through tmux (prompt, 42, window resizes)
//!   attach.rs            run -d -i/-t and attach
//!   exit_codes.rs        commands that cannot run: 126/127, and ctr fails at create
//!   images_roundtrip.rs  images export, rm, import: the same digests
//!   pull.rs              pull from a local docker-registry: plain lines, tty bars
//!   stats.rs             stats --no-stream: table row and JSON per container
//! ```
//!
//! The daemon binary is the workspace's `target/<profile>/berthd` (build it
//! with `cargo build -p berth-supervisord --bin berthd`); the container tests
//! also need `berth-shim` beside it. Without them the tests return early,
//! except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod attach;
mod exit_codes;
mod images_roundtrip;
mod interactive;
mod pull;
mod stats;

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

// ---------------------------------------------------------------------------
// Containers: these need root (overlay mounts, namespaces, cgroups) and
// busybox-static, plus berth-shim next to berthd.

fn needs_root(test: &str) -> bool {
    let shim = berthd_path().with_file_name("berth-shim");
    if nix::unistd::geteuid().is_root() && Path::new("/bin/busybox").exists() && shim.exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root, /bin/busybox and {} under CI=true",
        shim.display()
    );
    eprintln!(
        "{test}: skipped (needs root, /bin/busybox and {})",
        shim.display()
    );
    false
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn tar_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).expect("tar file");
}

fn tar_entry(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, link: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o777
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(kind);
    if kind == tar::EntryType::Symlink {
        b.append_link(&mut h, path, link).expect("tar link");
    } else {
        b.append_data(&mut h, path, std::io::empty())
            .expect("tar dir");
    }
}

/// An OCI archive of a one-layer busybox image named `name`, with a user
/// `app` (1000:1000) who is also in group `staff` (50), and a file that is
/// not executable, `/bin/data`.
fn busybox_archive(dir: &Path, name: &str) -> PathBuf {
    let mut layer = tar::Builder::new(Vec::new());
    for d in ["bin", "etc", "tmp", "root"] {
        tar_entry(&mut layer, d, tar::EntryType::Directory, "");
    }
    let busybox = std::fs::read("/bin/busybox").expect("busybox");
    tar_file(&mut layer, "bin/busybox", &busybox, 0o755);
    tar_file(&mut layer, "bin/data", b"not a program\n", 0o644);
    for applet in [
        "sh", "echo", "cat", "sleep", "id", "true", "ls", "stty", "grep",
    ] {
        tar_entry(
            &mut layer,
            &format!("bin/{applet}"),
            tar::EntryType::Symlink,
            "busybox",
        );
    }
    tar_file(
        &mut layer,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n",
        0o644,
    );
    tar_file(
        &mut layer,
        "etc/group",
        b"root:x:0:\nwheel:x:10:root\napp:x:1000:\nstaff:x:50:app\n",
        0o644,
    );
    let layer = layer.into_inner().expect("layer");
    let config = serde_json::json!({
        "architecture": berth_client::image::host_platform().1, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(&layer), "size": layer.len()}]
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha256(&manifest), "size": manifest.len(),
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": "latest"}}]
    })
    .to_string()
    .into_bytes();
    let mut archive = tar::Builder::new(Vec::new());
    tar_file(
        &mut archive,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
    );
    tar_file(&mut archive, "index.json", &index, 0o644);
    for blob in [&layer, &config, &manifest] {
        let digest = sha256(blob);
        let hex = digest.trim_start_matches("sha256:");
        tar_file(&mut archive, &format!("blobs/sha256/{hex}"), blob, 0o644);
    }
    let path = dir.join("busybox.tar");
    std::fs::write(&path, archive.into_inner().expect("archive")).expect("write archive");
    path
}

/// Removes the listed containers (forcefully) before the daemon goes.
struct Containers<'a> {
    daemon: &'a Daemon,
    ns: String,
    ids: Vec<String>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.daemon.ctl(&self.ns, &["rm", "-f", id]);
        }
    }
}

/// A fresh container name with `prefix`, and the guard that removes it on drop.
fn named_container<'a>(daemon: &'a Daemon, ns: &str, prefix: &str) -> (String, Containers<'a>) {
    let name = unique(prefix);
    let guard = Containers {
        daemon,
        ns: ns.to_owned(),
        ids: vec![name.clone()],
    };
    (name, guard)
}

/// Removes the namespace's parent cgroups (`/<ns>` under every v1
/// controller and the unified mount) that the runtime leaves behind.
struct NamespaceCgroups(String);

impl Drop for NamespaceCgroups {
    fn drop(&mut self) {
        let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for c in controllers.flatten() {
            let dir = c.path().join(&self.0);
            if dir.is_dir() {
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

fn with_image(test: &str) -> Option<(Daemon, String, String)> {
    if !needs_root(test) {
        return None;
    }
    let d = Daemon::start(test)?;
    let ns = unique("run");
    let image = format!("berth.test/{ns}/busybox:latest");
    let archive = busybox_archive(d.dir.path(), &image);
    let out = d.ok(&ns, &["images", "import", archive.to_str().expect("utf8")]);
    assert!(out.contains(&image), "{out}");
    Some((d, ns, image))
}

#[test]
fn run_rm_returns_the_exit_code_and_output() {
    let Some((d, ns, image)) = with_image("run_rm_returns_the_exit_code_and_output") else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let out = d.ctl(
        &ns,
        &[
            "run",
            "--rm",
            &image,
            "sh",
            "-c",
            "echo out; echo err >&2; exit 5",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    // --rm removed the container.
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "");

    // The user resolves through the image's /etc/passwd and /etc/group.
    let id = d.ok(&ns, &["run", "--rm", "-u", "app", &image, "id"]);
    assert_eq!(id.trim(), "uid=1000(app) gid=1000(app) groups=50(staff)");

    // Piped stdin reaches the container and EOF ends it.
    let mut cat = d
        .ctl_cmd(&ns, &["run", "--rm", "-i", &image, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    cat.stdin
        .take()
        .expect("stdin")
        .write_all(b"piped\n")
        .expect("write");
    let out = cat.wait_with_output().expect("cat");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n");
    assert_eq!(out.status.code(), Some(0));

    // A missing command cannot be invoked: docker's 126/127, never 0 or 125.
    let missing = d.ctl(&ns, &["run", "--rm", &image, "no-such-command"]);
    assert!(
        matches!(missing.status.code(), Some(126 | 127)),
        "{:?}",
        missing.status
    );
}

#[test]
fn detached_logs_exec_stop_rm() {
    let Some((d, ns, image)) = with_image("detached_logs_exec_stop_rm") else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let name = unique("web");
    let mut guard = Containers {
        daemon: &d,
        ns: ns.clone(),
        ids: vec![name.clone()],
    };
    let printed = d.ok(
        &ns,
        &[
            "run",
            "-d",
            "--name",
            &name,
            &image,
            "sh",
            "-c",
            "echo started; exec sleep 300",
        ],
    );
    assert_eq!(printed.trim(), name);
    let ps = d.ok(&ns, &["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&name) && l.ends_with("running")),
        "{ps}"
    );

    // logs: the shim's container.log (poll until the line is written).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = d.ctl(
            &ns,
            &[
                "--state",
                d.dir.path().join("state").to_str().expect("utf8"),
                "logs",
                &name,
            ],
        );
        if String::from_utf8_lossy(&out.stdout) == "started\n" {
            break;
        }
        assert!(Instant::now() < deadline, "no log: {out:?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let exec = d.ctl(&ns, &["exec", &name, "sh", "-c", "echo in-exec; exit 3"]);
    assert_eq!(exec.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "in-exec\n");

    // logs -f: prints what is there, follows what the container writes next, and
    // ends once the container has stopped (checked after `stop` below).
    let state = d.dir.path().join("state");
    let mut follow = d
        .ctl_cmd(
            &ns,
            &[
                "--state",
                state.to_str().expect("utf8"),
                "logs",
                "-f",
                &name,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logs -f");
    let wrote = d.ctl(
        &ns,
        &["exec", &name, "sh", "-c", "echo followed > /proc/1/fd/1"],
    );
    assert_eq!(wrote.status.code(), Some(0), "{wrote:?}");

    // rm without -f refuses a running container.
    let refused = d.ctl(&ns, &["rm", &name]);
    assert_eq!(refused.status.code(), Some(125));

    // sleep as pid 1 ignores SIGTERM: stop escalates to SIGKILL.
    assert_eq!(d.ok(&ns, &["stop", "-t", "1", &name]).trim(), name);
    let ps = d.ok(&ns, &["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with(&name) && l.contains("exited (137)")),
        "{ps}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while follow.try_wait().expect("logs -f status").is_none() {
        if Instant::now() >= deadline {
            let _ = follow.kill();
            panic!("logs -f did not end after the container stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let followed = follow.wait_with_output().expect("logs -f output");
    assert!(followed.status.success(), "{followed:?}");
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        "started\nfollowed\n"
    );
    assert_eq!(d.ok(&ns, &["rm", &name]).trim(), name);
    guard.ids.clear();
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "");
}

#[test]
fn run_forwards_sigterm_and_returns_the_trap_status() {
    let Some((d, ns, image)) = with_image("run_forwards_sigterm_and_returns_the_trap_status")
    else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let (name, _guard) = named_container(&d, &ns, "sig");
    let mut child = d
        .ctl_cmd(
            &ns,
            &[
                "run",
                "--rm",
                "--name",
                &name,
                &image,
                "sh",
                "-c",
                "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn run");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    use std::io::BufRead;
    stdout.read_line(&mut line).expect("ready line");
    assert_eq!(line, "ready\n");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal berthctl");
    let status = child.wait().expect("wait");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("rest");
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(42));
}

/// A host device node that a default container does not get.
fn host_only_device() -> Option<&'static str> {
    ["loop0", "loop-control", "kmsg", "fuse", "autofs"]
        .into_iter()
        .find(|d| Path::new("/dev").join(d).exists())
}

#[test]
fn privileged_containers_see_the_host_devices() {
    let Some((d, ns, image)) = with_image("privileged_containers_see_the_host_devices") else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let device = host_only_device().expect("a host device such as /dev/loop0");
    let listed = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image.as_str(), "ls", "/dev"]);
        d.ok(&ns, &args)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let privileged = listed(&["--privileged"]);
    assert!(
        privileged.iter().any(|n| n == device),
        "/dev/{device} missing with --privileged: {privileged:?}"
    );
    let plain = listed(&[]);
    assert!(
        !plain.iter().any(|n| n == device) && plain.iter().any(|n| n == "null"),
        "a default container has only the default nodes: {plain:?}"
    );
    // The node is usable: the device cgroup allows it (reading a block
    // device's first bytes, or opening a char device, must not be EPERM).
    let probe =
        format!("cat /dev/{device} > /dev/null 2>/tmp/err; grep -c 'not permitted' /tmp/err");
    let out = d.ctl(
        &ns,
        &["run", "--rm", "--privileged", &image, "sh", "-c", &probe],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{out:?}");
}

// ---------------------------------------------------------------------------
// A berthd that has built nothing: every verb must say which RPC is missing
// in one sentence and exit 125.

struct Unbuilt;

impl berth_api::containerd::services::version::v1::version_server::Version for Unbuilt {}

#[test]
fn unimplemented_services_are_one_sentence_and_exit_125() {
    let dir = tempfile::tempdir().expect("tmp");
    let socket = dir.path().join("unbuilt.sock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(async { tokio::net::UnixListener::bind(&socket) })
        .expect("bind");
    let server = rt.spawn(
        tonic::transport::Server::builder()
            .add_service(
                berth_api::containerd::services::version::v1::version_server::VersionServer::new(
                    Unbuilt,
                ),
            )
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    let cases: [(&[&str], &str); 10] = [
        (&["version"], "Version.Version"),
        (&["namespaces", "ls"], "Namespaces.List"),
        (&["images", "ls"], "Images.List"),
        (&["pull", "127.0.0.1:1/x:y"], "Transfer.Pull"),
        (&["snapshots", "ls"], "Snapshots.List"),
        (&["content", "ls"], "Content.List"),
        (&["leases", "ls"], "Leases.List"),
        (&["ps"], "Containers.List"),
        (&["events"], "Events.Subscribe"),
        (&["run", "img"], "Images.Get"),
    ];
    for (args, method) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_berthctl"))
            .arg("--address")
            .arg(&socket)
            .args(args)
            .output()
            .expect("run berthctl");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
        assert_eq!(
            err.trim_end(),
            format!("berthctl: berthd does not implement {method} yet"),
            "{args:?}"
        );
    }
    server.abort();
}
