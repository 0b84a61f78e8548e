//! Paths of the built binaries, unique names, and running the real `ctr`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The directory holding berth's binaries: `$BERTH_BIN_DIR`, or the workspace's
/// `target/debug` (built by `cargo build --workspace --bins`, as the test command does).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    target.join("debug")
}

/// Path of one of berth's binaries; panics with the command to build it when missing.
pub fn bin_path(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (or set BERTH_BIN_DIR)",
        path.display()
    );
    path
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, valid as a containerd namespace or id:
/// `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs the real `ctr` against `socket` in namespace `ns`.
pub fn ctr(socket: &Path, ns: &str, args: &[&str]) -> Output {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .arg("--namespace")
        .arg(ns)
        .args(args)
        .output()
        .expect("the real ctr is installed (apt package containerd)");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `ctr` and panics with its output unless it exits 0.
pub fn ctr_ok(socket: &Path, ns: &str, args: &[&str]) -> Output {
    let out = ctr(socket, ns, args);
    assert!(out.success(), "ctr {args:?} failed: {out:?}");
    out
}
