//! `berth-shim start …`: binds the shim socket and re-execs the binary as
//! `serve` (listener on fd 3, readiness pipe on fd 4, stdio /dev/null,
//! stderr appended to shim.log; `serve` makes its own session), waits until
//! it serves, writes `address` and `shim.pid` into the bundle and returns
//! the address.
//! Idempotent: when a live shim already answers on the socket its address is
//! returned. This process is single-threaded and exits right after, so it
//! may rearrange its own descriptors for the child.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::cli::ShimArgs;
use crate::paths;
use crate::serve::{LISTENER_FD, READY_FD_ENV};

/// How long `serve` may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The fd number of the readiness pipe in `serve`.
const READY_FD: i32 = 4;

fn live(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

fn record(args: &ShimArgs, address: &str, pid: u32) -> anyhow::Result<()> {
    paths::write_atomic(&args.bundle.join(paths::ADDRESS), address.as_bytes())
        .context("write address")?;
    paths::write_atomic(
        &args.bundle.join(paths::SHIM_PID),
        pid.to_string().as_bytes(),
    )
    .context("write shim.pid")?;
    Ok(())
}

/// Starts (or finds) the shim for `args`; returns its `unix://` address.
pub fn start(args: &ShimArgs) -> anyhow::Result<String> {
    let socket = paths::socket_path(&args.state, &args.namespace, &args.id);
    let address = paths::address_of(&socket);
    let dir = socket.parent().context("socket path has no parent")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    if live(&socket) {
        return Ok(address);
    }
    let _ = std::fs::remove_file(&socket);
    let listener = match UnixListener::bind(&socket) {
        Ok(l) => l,
        // Another `start` won the race.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && live(&socket) => {
            return Ok(address);
        }
        Err(e) => return Err(e).with_context(|| format!("bind {}", socket.display())),
    };
    match spawn_serve(args, listener) {
        Ok(pid) => {
            record(args, &address, pid)?;
            Ok(address)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            Err(e)
        }
    }
}

/// A close-on-exec copy of `fd` numbered 10 or above; `fd` is closed.
fn high(fd: OwnedFd) -> anyhow::Result<OwnedFd> {
    let raw = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
        .context("F_DUPFD_CLOEXEC")?;
    // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// An inheritable (not close-on-exec) copy of `fd` at number `at`, which
/// must be free of anything this process still uses.
fn inheritable(fd: &OwnedFd, at: RawFd) -> anyhow::Result<OwnedFd> {
    // SAFETY: dup2 onto `at`, which the caller moved everything away from;
    // the new descriptor is owned by the returned OwnedFd alone.
    let raw = unsafe { libc::dup2(fd.as_raw_fd(), at) };
    if raw != at {
        return Err(std::io::Error::last_os_error()).context(format!("dup2 to fd {at}"));
    }
    // SAFETY: as above; dup2 cleared FD_CLOEXEC on the new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Spawns `serve` with posix_spawn (no fork, no pre-exec code): the
/// listener and the readiness pipe are placed at fds 3 and 4 of this
/// single-threaded, short-lived process first, so the child inherits them
/// there; `serve` makes its own session.
fn spawn_serve(args: &ShimArgs, listener: UnixListener) -> anyhow::Result<u32> {
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("readiness pipe")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.bundle.join(paths::SHIM_LOG))
        .context("open shim.log")?;
    // Everything we hold moves above 9, so fds 3 and 4 are free to place.
    let listener = high(OwnedFd::from(listener))?;
    let ready_r = high(ready_r)?;
    let ready_w = high(ready_w)?;
    let log = high(OwnedFd::from(log))?;
    let child_listener = inheritable(&listener, LISTENER_FD)?;
    let child_ready = inheritable(&ready_w, READY_FD)?;
    let mut cmd = Command::new("/proc/self/exe");
    // argv[0] names the shim, so `ps` and `pgrep berth-shim` find it.
    cmd.arg0("berth-shim")
        .arg("serve")
        .args(args.to_args())
        .current_dir(&args.bundle)
        .env(READY_FD_ENV, READY_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    let spawned = cmd.spawn();
    // The child has its copies; ours must go, or the pipe never reports EOF.
    drop((cmd, child_listener, child_ready, ready_w, listener));
    let child = spawned.context("spawn serve")?;
    let pid = child.id();
    match wait_ready(ready_r) {
        Ok(()) => Ok(pid),
        Err(e) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let mut child = child;
            let _ = child.wait();
            Err(e).context(format!(
                "shim did not start (see {})",
                args.bundle.join(paths::SHIM_LOG).display()
            ))
        }
    }
}

fn wait_ready(ready: OwnedFd) -> anyhow::Result<()> {
    let timeout = PollTimeout::try_from(READY_TIMEOUT.as_millis() as i32)
        .map_err(|_| anyhow::anyhow!("bad timeout"))?;
    let mut fds = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, timeout).context("poll readiness")? == 0 {
        bail!("timed out after {READY_TIMEOUT:?}");
    }
    let mut buf = Vec::new();
    std::fs::File::from(ready)
        .read_to_end(&mut buf)
        .context("read readiness")?;
    if buf != b"ok" {
        bail!("serve exited before it was ready");
    }
    Ok(())
}
