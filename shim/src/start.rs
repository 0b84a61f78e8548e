//! `berth-shim start …`: binds the shim socket and re-execs the binary as
//! `serve` (listener on fd 3, readiness pipe on fd 4, new session, stdio
//! /dev/null, stderr appended to shim.log), waits until it serves, writes
//! `address` and `shim.pid` into the bundle and returns the address.
//! Idempotent: when a live shim already answers on the socket its address is
//! returned. This process is single-threaded, so forking here is safe.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
    match spawn_serve(args, &listener) {
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

fn spawn_serve(args: &ShimArgs, listener: &UnixListener) -> anyhow::Result<u32> {
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("readiness pipe")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.bundle.join(paths::SHIM_LOG))
        .context("open shim.log")?;
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
    let lfd = listener.as_raw_fd();
    let rfd = ready_w.as_raw_fd();
    // SAFETY: the closure runs in the forked child of this single-threaded
    // process and only makes async-signal-safe calls (setsid, fcntl, dup2).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Move both out of the way of 3 and 4 before placing them.
            let l = libc::fcntl(lfd, libc::F_DUPFD_CLOEXEC, 10);
            let r = libc::fcntl(rfd, libc::F_DUPFD_CLOEXEC, 10);
            if l < 0 || r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 clears FD_CLOEXEC on the new descriptor.
            if libc::dup2(l, LISTENER_FD) < 0 || libc::dup2(r, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("spawn serve")?;
    let pid = child.id();
    drop(cmd);
    drop(ready_w);
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
