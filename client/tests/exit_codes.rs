//! Exit codes of a command that cannot run, end to end: berthctl (docker's 127 for a
//! missing command, 126 for one that cannot be executed) and the real `ctr` (fails at
//! Tasks.Create with runc's message), against a real berthd, berth-shim and runtime.
//!
//! Needs root, /bin/busybox, and `berthd` + `berth-shim` built next to this test
//! (`cargo build -p berth-supervisord -p berth-shim --bins`); otherwise it returns
//! early, except under `CI=true`, where it fails. The ctr part also needs `ctr`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// berthd on private paths; killed (and its tree removed) on drop.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
}

fn target_bin(name: &str) -> PathBuf {
    // <target>/<profile>/deps/exit_codes-<hash>  →  <target>/<profile>/<name>
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .join(name)
}

fn runnable(test: &str) -> bool {
    let missing: Vec<String> = ["berthd", "berth-shim"]
        .iter()
        .map(|b| target_bin(b))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .chain((!Path::new("/bin/busybox").exists()).then(|| "/bin/busybox".to_string()))
        .chain((!nix::unistd::geteuid().is_root()).then(|| "root".to_string()))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs {missing:?} under CI=true"
    );
    eprintln!("{test}: skipped, needs {missing:?}");
    false
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berthctl-exit-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("berthd.sock");
        let log = std::fs::File::create(dir.path().join("berthd.log")).expect("log file");
        let child = Command::new(target_bin("berthd"))
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
        let d = Daemon { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "berthd did not listen: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("berthd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    fn ctl(&self, ns: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berthctl"))
            .env("BERTH_ADDRESS", self.socket())
            .env("BERTH_NAMESPACE", ns)
            .env_remove("BERTH_LOG")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run berthctl")
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes the namespace's parent cgroups the runtime leaves under each controller.
struct NamespaceCgroups(String);

impl Drop for NamespaceCgroups {
    fn drop(&mut self) {
        let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for c in controllers.flatten() {
            let _ = std::fs::remove_dir(c.path().join(&self.0));
        }
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn tar_add(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(if kind == tar::EntryType::Regular {
        data.len() as u64
    } else {
        0
    });
    h.set_mode(match kind {
        tar::EntryType::Directory => 0o755,
        tar::EntryType::Symlink => 0o777,
        // busybox is executable; every other file is not.
        _ if path == "bin/busybox" => 0o755,
        _ => 0o644,
    });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(kind);
    if kind == tar::EntryType::Symlink {
        let target = std::str::from_utf8(data).expect("link target");
        b.append_link(&mut h, path, target).expect("tar link");
    } else if kind == tar::EntryType::Directory {
        b.append_data(&mut h, path, std::io::empty())
            .expect("tar dir");
    } else {
        b.append_data(&mut h, path, data).expect("tar file");
    }
}

/// An OCI archive of a busybox image named `name` with PATH=/bin and a file that is
/// not executable, `/bin/data`.
fn busybox_archive(dir: &Path, name: &str) -> PathBuf {
    use tar::EntryType::{Directory, Regular, Symlink};
    let mut layer = tar::Builder::new(Vec::new());
    for d in ["bin", "etc", "tmp"] {
        tar_add(&mut layer, d, Directory, b"");
    }
    let busybox = std::fs::read("/bin/busybox").expect("busybox");
    tar_add(&mut layer, "bin/busybox", Regular, &busybox);
    for applet in ["sh", "true", "echo"] {
        tar_add(&mut layer, &format!("bin/{applet}"), Symlink, b"busybox");
    }
    tar_add(&mut layer, "bin/data", Regular, b"not a program\n");
    tar_add(
        &mut layer,
        "etc/passwd",
        Regular,
        b"root:x:0:0::/:/bin/sh\n",
    );
    tar_add(&mut layer, "etc/group", Regular, b"root:x:0:\n");
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
    tar_add(
        &mut archive,
        "oci-layout",
        Regular,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    tar_add(&mut archive, "index.json", Regular, &index);
    for blob in [&layer, &config, &manifest] {
        let hex = sha256(blob).trim_start_matches("sha256:").to_owned();
        tar_add(&mut archive, &format!("blobs/sha256/{hex}"), Regular, blob);
    }
    let path = dir.join("busybox.tar");
    std::fs::write(&path, archive.into_inner().expect("archive")).expect("write archive");
    path
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The one line berthctl printed on stderr for a failed run.
fn error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    err.lines()
        .rfind(|l| l.starts_with("berthctl: "))
        .unwrap_or_else(|| panic!("no berthctl error line in {err:?}"))
        .to_owned()
}

#[test]
fn commands_that_cannot_run_exit_like_docker_and_fail_ctr_at_create() {
    let test = "commands_that_cannot_run_exit_like_docker_and_fail_ctr_at_create";
    if !runnable(test) {
        return;
    }
    let d = Daemon::start();
    let ns = unique("exit");
    let _cgroups = NamespaceCgroups(ns.clone());
    let image = format!("berth.test/{ns}/busybox:latest");
    let archive = busybox_archive(d.dir.path(), &image);
    d.ok(&ns, &["images", "import", archive.to_str().expect("utf8")]);

    // Not in $PATH: 127, with runc's message, and --rm left nothing behind.
    let out = d.ctl(&ns, &["run", "--rm", &image, "nosuchcmd"]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "stderr: {}\nberthd: {}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let line = error_line(&out);
    let message = r#"exec: "nosuchcmd": executable file not found in $PATH"#;
    assert!(line.contains(message), "{line}");
    // Said once, in the error: the runtime's own stderr (the container's) is
    // not copied when create fails.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches(message).count(), 1, "{stderr}");
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "");

    // A path that does not exist: 127 as well.
    let out = d.ctl(&ns, &["run", "--rm", &image, "/bin/gone"]);
    assert_eq!(out.status.code(), Some(127), "{}", error_line(&out));

    // Exists but is not executable: 126.
    let out = d.ctl(&ns, &["run", "--rm", &image, "/bin/data"]);
    assert_eq!(out.status.code(), Some(126), "{:?}", out.stderr);
    assert!(
        error_line(&out).contains(r#"exec: "/bin/data": permission denied"#),
        "{}",
        error_line(&out)
    );
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "");

    // exec of a missing command in a running container: 127; the container runs on.
    let name = unique("live");
    d.ok(
        &ns,
        &[
            "run",
            "-d",
            "--name",
            &name,
            &image,
            "sh",
            "-c",
            "exec sleep 300",
        ],
    );
    let out = d.ctl(&ns, &["exec", &name, "nosuchcmd"]);
    let removed = d.ctl(&ns, &["rm", "-f", &name]);
    assert_eq!(out.status.code(), Some(127), "{:?}", out.stderr);
    assert!(error_line(&out).contains("executable file not found"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("executable file not found").count(),
        1,
        "{stderr}"
    );
    assert!(removed.status.success(), "{removed:?}");

    // The real ctr: fails at Tasks.Create with the runtime's message.
    if Command::new("ctr").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "ctr is missing under CI=true"
        );
        return;
    }
    let id = unique("ctr");
    let ctr = Command::new("ctr")
        .arg("--address")
        .arg(d.socket())
        .args(["--namespace", &ns, "run", "--rm", &image, &id, "nosuchcmd"])
        .stdin(Stdio::null())
        .output()
        .expect("run ctr");
    let err = String::from_utf8_lossy(&ctr.stderr);
    assert!(!ctr.status.success(), "ctr run succeeded: {err}");
    assert!(err.contains("executable file not found"), "{err}");
    assert_eq!(d.ok(&ns, &["ps", "-a", "-q"]), "", "ctr run --rm left it");
}
