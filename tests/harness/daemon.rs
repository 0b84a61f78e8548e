//! A real `berthd` on private paths, stopped and cleaned up on drop.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::tools::{bin_path, unique_name};

/// How long berthd may take to answer after start.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long berthd may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One running berthd. Dropping it stops the daemon, kills processes started under its
/// state dir (shims and their containers), unmounts what is mounted under its tree,
/// removes the cgroups of the namespaces handed out by [`Berthd::namespace`] and deletes
/// the tree.
pub struct Berthd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    namespaces: Mutex<Vec<String>>,
    extra_args: Vec<String>,
}

impl Berthd {
    /// Starts berthd on fresh temporary paths and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`Berthd::start`], with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("create the daemon's temp dir");
        let mut daemon = Berthd {
            child: None,
            dir,
            namespaces: Mutex::new(Vec::new()),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        daemon.spawn();
        daemon
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berthd.sock")
    }
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("berthd.log")
    }
    /// The daemon's output so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A fresh namespace name for this test; its cgroups are removed on drop.
    pub fn namespace(&self) -> String {
        let ns = unique_name("bt");
        self.namespaces
            .lock()
            .expect("namespace list lock")
            .push(ns.clone());
        ns
    }

    /// The command line berthd runs with (without the binary).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--root".to_string(),
            self.root().display().to_string(),
            "--state".to_string(),
            self.state().display().to_string(),
            "--address".to_string(),
            self.socket().display().to_string(),
            "--log-level".to_string(),
            "debug".to_string(),
        ];
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the daemon log");
        let child = Command::new(bin_path("berthd"))
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls until the socket accepts a connection; panics with the log if berthd dies
    /// or does not answer in time.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("berthd exited early with {status}:\n{}", self.log());
            }
            if UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not answer within {READY_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills berthd with SIGKILL (no cleanup on its side) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops berthd with SIGTERM and returns its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = Pid::from_raw(i32::try_from(child.id()).ok()?);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts berthd again on the same paths (after [`Berthd::kill9`] or
    /// [`Berthd::terminate`]).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "berthd is still running");
        self.spawn();
    }

    fn cleanup_host(&self) {
        let tree = self.dir.path().to_path_buf();
        kill_processes_under(&tree);
        unmount_under(&tree);
        let namespaces = self
            .namespaces
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        for ns in namespaces {
            remove_cgroups(&ns);
        }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.terminate();
        self.cleanup_host();
    }
}

/// SIGKILLs every process whose command line mentions `tree` (shims started by berthd
/// carry its state dir in their arguments; their containers are killed with them).
fn kill_processes_under(tree: &Path) {
    let needle = tree.display().to_string();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Lazily unmounts everything mounted at or below `tree`, deepest first.
fn unmount_under(tree: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(tree))
        .map(str::to_string)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Removes `/sys/fs/cgroup/<controller>/<ns>` trees (deepest first) left by tasks of a
/// test namespace.
fn remove_cgroups(ns: &str) {
    let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for c in controllers.flatten() {
        let dir = c.path().join(ns);
        if dir.is_dir() {
            remove_cgroup_tree(&dir);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(children) = std::fs::read_dir(dir) {
        for child in children.flatten() {
            if child.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&child.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
