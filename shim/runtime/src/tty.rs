//! Terminals: the pty is opened inside the container (its /dev/ptmx), the master is sent
//! over the console socket with SCM_RIGHTS, the slave becomes the process's controlling
//! terminal and stdio.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, connect, sendmsg, socket};

use crate::error::{Error, Result};

/// Connects to the console socket at `path` (parent side, before fork).
pub fn connect_console(path: &Path) -> Result<OwnedFd> {
    let fd = socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("console socket", e))?;
    let addr = UnixAddr::new(path).map_err(|e| Error::sys("console socket address", e))?;
    connect(fd.as_raw_fd(), &addr)
        .map_err(|e| Error::io("connecting console socket", path, e.into()))?;
    Ok(fd)
}

/// In the child: creates the pty, sends its master, makes the slave the controlling
/// terminal and fds 0, 1, 2. `console` mounts the slave on /dev/console.
pub fn setup(
    sock: RawFd,
    size: Option<(u16, u16)>,
    console: bool,
) -> std::result::Result<(), String> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("open /dev/ptmx: {e}"))?;
    nix::pty::grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    nix::pty::unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {name}: {e}"))?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("sending pty master over the console socket: {e}"))?;
    drop(master);
    if console {
        let dev = Path::new("/dev/console");
        if std::fs::symlink_metadata(dev).is_err() {
            std::fs::File::create(dev).map_err(|e| format!("create /dev/console: {e}"))?;
        }
        nix::mount::mount(
            Some(name.as_str()),
            dev,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind {name} on /dev/console: {e}"))?;
    }
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: TIOCSCTTY takes an int argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(format!("TIOCSCTTY: {}", nix::Error::last()));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard fds of this (child) process.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(format!("dup2 pty: {}", nix::Error::last()));
        }
    }
    let raw = slave.into_raw_fd();
    if raw > 2 {
        let _ = nix::unistd::close(raw);
    }
    Ok(())
}
