//! The parent <-> child channel between fork and exec: a SOCK_SEQPACKET pair carrying
//! one tagged message per packet. EOF means the peer exited (or exec'd: the child's end
//! is close-on-exec).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use crate::error::{Error, Result};

/// Message tags.
pub mod tag {
    /// parent -> intermediate: proceed (it is in the cgroup).
    pub const GO: u8 = b'G';
    /// intermediate -> parent: user ns created, write the id maps.
    pub const USERNS: u8 = b'U';
    /// parent -> intermediate: maps written.
    pub const MAPPED: u8 = b'M';
    /// intermediate -> parent: pid (i32 LE) of the process in the container.
    pub const PID: u8 = b'P';
    /// parent -> init: the state JSON for hooks.
    pub const STATE: u8 = b'S';
    /// init -> parent: run prestart/createRuntime hooks now.
    pub const HOOKS: u8 = b'H';
    /// parent -> init: hooks done.
    pub const HOOKS_DONE: u8 = b'h';
    /// init -> parent: created, waiting for start.
    pub const READY: u8 = b'R';
    /// child -> parent: an error message follows.
    pub const ERROR: u8 = b'E';
}

/// One end of the channel.
#[derive(Debug)]
pub struct Chan(OwnedFd);

/// A connected pair, both ends close-on-exec.
pub fn pair() -> Result<(Chan, Chan)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", e))?;
    Ok((Chan(a), Chan(b)))
}

impl Chan {
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn send(&self, t: u8, payload: &[u8]) -> nix::Result<()> {
        let mut buf = Vec::with_capacity(payload.len() + 1);
        buf.push(t);
        buf.extend_from_slice(payload);
        nix::sys::socket::send(self.fd(), &buf, nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
            .map(|_| ())
    }

    /// The next message, or `None` on EOF.
    pub fn recv(&self) -> nix::Result<Option<(u8, Vec<u8>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match nix::sys::socket::recv(self.fd(), &mut buf, nix::sys::socket::MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    buf.truncate(n);
                    let t = buf[0];
                    buf.remove(0);
                    return Ok(Some((t, buf)));
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for `want`; an ERROR message or EOF becomes `Err(message)`.
    pub fn expect(&self, want: u8) -> std::result::Result<Vec<u8>, String> {
        match self.recv() {
            Ok(Some((t, p))) if t == want => Ok(p),
            Ok(Some((tag::ERROR, p))) => Err(String::from_utf8_lossy(&p).into_owned()),
            Ok(Some((t, _))) => Err(format!("unexpected sync message {:?}", t as char)),
            Ok(None) => Err("peer exited".into()),
            Err(e) => Err(format!("sync: {e}")),
        }
    }
}
