//! Starting, reconnecting to and cleaning up after shims: the [`Launcher`] role and
//! [`ShimProcesses`], which runs the real `berth-shim` binary.
//!
//! Commands (the berthd <-> shim contract):
//!
//! ```text
//! berth-shim start  --namespace NS --id ID --bundle B --address BERTHD_SOCK --state STATE
//!     cwd = B; prints unix:///<socket> once the long-lived shim accepts; exit 0
//! berth-shim delete --namespace NS --id ID --bundle B --address BERTHD_SOCK --state STATE
//!     dead-shim cleanup; prints an encoded berth.shim.v1.DeleteResponse; exit 0
//! ```

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use berth_api::berth::shim::v1 as pb;
use prost::Message;
use tokio::io::unix::AsyncFd;

use super::TaskError;
use super::bundle::Bundle;
use super::shim::{GrpcShim, ShimApi};

/// The shim binary's file name.
pub const SHIM_BINARY: &str = "berth-shim";

/// Environment override for the shim binary (tests, development).
pub const SHIM_PATH_ENV: &str = "BERTH_SHIM_PATH";

/// How long `Connect` may take on a shim found after a restart.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(2);

/// A connected shim and what its `Connect` reported.
#[derive(Debug, Clone)]
pub struct Connected {
    pub shim: Arc<dyn ShimApi>,
    pub shim_pid: u32,
    pub task_pid: u32,
}

/// Starts shims, reconnects to them, cleans up after dead ones, and watches them.
#[tonic::async_trait]
pub trait Launcher: Send + Sync + std::fmt::Debug {
    /// Start the shim for `bundle` (idempotent for a live one) and connect to it.
    async fn start(&self, bundle: &Bundle) -> Result<Connected, TaskError>;
    /// Connect to the shim a bundle names and check it is alive (`Connect`).
    async fn connect(&self, bundle: &Bundle) -> Result<Connected, TaskError>;
    /// Without a round trip: the shim a bundle names if its process is alive, with a
    /// connection that dials at first use. Callers confirm with `Connect` later.
    fn attach(&self, bundle: &Bundle) -> Result<Connected, TaskError>;
    /// The dead-shim path: force-delete the container, unmount its rootfs; the exit the
    /// shim reports (137 when it had to kill).
    async fn cleanup(&self, bundle: &Bundle) -> Result<pb::DeleteResponse, TaskError>;
    /// Resolves when the shim process `shim_pid` has exited.
    async fn exited(&self, bundle: &Bundle, shim_pid: u32);
    /// Whether the shim process `shim_pid` of `bundle` is still running.
    fn is_alive(&self, bundle: &Bundle, shim_pid: u32) -> bool;
}

/// The real launcher: runs the `berth-shim` binary.
#[derive(Debug, Clone)]
pub struct ShimProcesses {
    pub binary: PathBuf,
    /// berthd's own socket, where shims forward their events.
    pub address: PathBuf,
    pub state: PathBuf,
}

impl ShimProcesses {
    /// The shim binary: `$BERTH_SHIM_PATH`, else `berth-shim` next to the running berthd,
    /// else `berth-shim` on `$PATH`.
    pub fn default_binary() -> PathBuf {
        if let Some(p) = std::env::var_os(SHIM_PATH_ENV) {
            return PathBuf::from(p);
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join(SHIM_BINARY)))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(SHIM_BINARY))
    }

    pub fn new(binary: PathBuf, address: &Path, state: &Path) -> Self {
        Self {
            binary,
            address: address.to_owned(),
            state: state.to_owned(),
        }
    }

    fn command(&self, verb: &str, bundle: &Bundle) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.arg(verb)
            .arg("--namespace")
            .arg(&bundle.namespace)
            .arg("--id")
            .arg(&bundle.id)
            .arg("--bundle")
            .arg(&bundle.path)
            .arg("--address")
            .arg(&self.address)
            .arg("--state")
            .arg(&self.state)
            .current_dir(&bundle.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, verb: &'static str, bundle: &Bundle) -> Result<Vec<u8>, TaskError> {
        let fail = |reason: String| TaskError::ShimStart {
            id: format!("{}/{}", bundle.namespace, bundle.id),
            reason,
        };
        let out = self
            .command(verb, bundle)
            .output()
            .await
            .map_err(|e| fail(format!("run {} {verb}: {e}", self.binary.display())))?;
        if !out.status.success() {
            return Err(fail(format!(
                "{} {verb} failed ({}): {}",
                self.binary.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out.stdout)
    }

    /// A connection to the shim at `address` (no RPC yet).
    async fn channel(bundle: &Bundle, address: &str) -> Result<GrpcShim, TaskError> {
        GrpcShim::connect(&bundle.namespace, address)
            .await
            .map_err(|e| TaskError::ShimStart {
                id: format!("{}/{}", bundle.namespace, bundle.id),
                reason: format!("connect {address}: {e}"),
            })
    }

    /// Connect and ask the shim who it is (`Connect`: its pid and the task's).
    async fn dial(&self, bundle: &Bundle, address: &str) -> Result<Connected, TaskError> {
        let id = format!("{}/{}", bundle.namespace, bundle.id);
        let shim = Self::channel(bundle, address).await?;
        let req = pb::ConnectRequest {
            id: bundle.id.clone(),
        };
        let resp = tokio::time::timeout(LIVENESS_TIMEOUT, shim.connect(req))
            .await
            .map_err(|_| TaskError::ShimStart {
                id: id.clone(),
                reason: "Connect timed out".into(),
            })?
            .map_err(TaskError::shim(&id, "connect"))?;
        Ok(Connected {
            shim: Arc::new(shim),
            shim_pid: resp.shim_pid,
            task_pid: resp.task_pid,
        })
    }
}

#[tonic::async_trait]
impl Launcher for ShimProcesses {
    async fn start(&self, bundle: &Bundle) -> Result<Connected, TaskError> {
        let stdout = self.run("start", bundle).await?;
        let address = String::from_utf8_lossy(&stdout).trim().to_owned();
        if address.is_empty() {
            return Err(TaskError::ShimStart {
                id: format!("{}/{}", bundle.namespace, bundle.id),
                reason: "shim printed no address".into(),
            });
        }
        // `berth-shim start` wrote shim.pid before it printed the address and returned
        // once the shim served: a fresh shim needs no `Connect` round trip.
        match bundle.shim_pid() {
            Some(shim_pid) => Ok(Connected {
                shim: Arc::new(Self::channel(bundle, &address).await?),
                shim_pid,
                task_pid: 0,
            }),
            None => self.dial(bundle, &address).await,
        }
    }

    async fn connect(&self, bundle: &Bundle) -> Result<Connected, TaskError> {
        let address = bundle.address().ok_or_else(|| TaskError::ShimStart {
            id: format!("{}/{}", bundle.namespace, bundle.id),
            reason: "bundle has no address".into(),
        })?;
        self.dial(bundle, &address).await
    }

    fn attach(&self, bundle: &Bundle) -> Result<Connected, TaskError> {
        let id = format!("{}/{}", bundle.namespace, bundle.id);
        let fail = |reason: &str| TaskError::ShimStart {
            id: id.clone(),
            reason: reason.to_owned(),
        };
        let shim_pid = bundle
            .shim_pid()
            .ok_or_else(|| fail("bundle has no shim.pid"))?;
        if !is_shim_of(shim_pid, bundle) {
            return Err(fail("shim process is gone"));
        }
        let address = bundle
            .address()
            .ok_or_else(|| fail("bundle has no address"))?;
        if !super::shim::socket_of(&address).exists() {
            return Err(fail("shim socket is gone"));
        }
        let shim = GrpcShim::connect_lazy(&bundle.namespace, &address);
        Ok(Connected {
            shim: Arc::new(shim),
            shim_pid,
            task_pid: bundle.init_pid().unwrap_or(0),
        })
    }

    async fn cleanup(&self, bundle: &Bundle) -> Result<pb::DeleteResponse, TaskError> {
        let stdout = self.run("delete", bundle).await?;
        pb::DeleteResponse::decode(stdout.as_slice()).map_err(|e| TaskError::ShimStart {
            id: format!("{}/{}", bundle.namespace, bundle.id),
            reason: format!("decode delete response: {e}"),
        })
    }

    async fn exited(&self, _bundle: &Bundle, shim_pid: u32) {
        wait_pid_exit(shim_pid).await;
    }

    fn is_alive(&self, bundle: &Bundle, shim_pid: u32) -> bool {
        is_shim_of(shim_pid, bundle)
    }
}

/// Whether `pid` is a live shim serving `bundle`: its command line names the bundle
/// (guards against a recycled pid).
fn is_shim_of(pid: u32, bundle: &Bundle) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let want = bundle.path.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == want)
}

/// Resolves once process `pid` has exited (at once if it does not exist). Uses a pidfd,
/// which becomes readable when the process exits; not racing with pid reuse once open.
pub async fn wait_pid_exit(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if raw <= 0 {
        return;
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
    // shared with the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) };
    if fd < 0 {
        // ESRCH: already gone.
        return;
    }
    let Ok(fd) = i32::try_from(fd) else { return };
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `owned` is an OwnedFd: the fd stays open and the same for as long as the
    // AsyncFd owns it.
    let registered =
        unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) };
    match registered {
        Ok(afd) => {
            let _ = afd.readable().await;
            tracing::debug!(pid, fd = afd.get_ref().as_raw_fd(), "shim process exited");
        }
        Err(error) => {
            tracing::warn!(pid, error = %error, "cannot watch shim pid; polling");
            while nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None).is_ok() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_pid_exit_resolves_when_the_process_exits() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "read x"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        let waiter = tokio::spawn(wait_pid_exit(pid));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "process still alive");
        drop(child.stdin.take());
        // The pidfd turns readable at exit even before the zombie is reaped.
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("exit noticed")
            .expect("join");
        child.wait().expect("reap");
        // A pid that does not exist resolves at once.
        tokio::time::timeout(Duration::from_secs(1), wait_pid_exit(u32::MAX >> 1))
            .await
            .expect("nonexistent pid");
    }

    #[tokio::test]
    async fn failing_shim_binary_is_a_start_error_with_stderr() {
        let state = tempfile::tempdir().expect("tempdir");
        let bundle = Bundle::create(state.path(), "ns", "c1", b"{}").expect("bundle");
        let script = state.path().join("fake-shim");
        std::fs::write(&script, "#!/bin/sh\necho \"no luck: $1\" >&2\nexit 3\n").expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let l = ShimProcesses::new(script, Path::new("/nonexistent.sock"), state.path());
        let err = l.start(&bundle).await.expect_err("fails");
        let msg = err.to_string();
        assert!(msg.contains("no luck: start"), "{msg}");
        let err = l.connect(&bundle).await.expect_err("no address");
        assert!(err.to_string().contains("no address"), "{err}");
    }
}
