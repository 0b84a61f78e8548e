//! The parent <-> child channel between fork and exec: a SOCK_SEQPACKET pair carrying
//! one tagged message per packet. EOF means the peer exited (or exec'd: the child's end
//! is close-on-exec).
//!
//! A child reports failure as a [`ChildError`]: a plain message (`ERROR`) or, when the
//! process's executable cannot be run, a typed [`ExecError`] (`EXEC_FAILED`:
//! errno i32 LE, searched-PATH flag u8, command bytes), so the parent returns
//! [`Error::Exec`] with its errno instead of a sentence to be matched.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use crate::error::{Error, ExecError, Result};

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
    /// child -> parent: the executable cannot be run (an encoded [`super::ExecError`]).
    pub const EXEC_FAILED: u8 = b'X';
}

/// A failure of a child between fork and exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildError {
    /// Any failure, as one sentence.
    Message(String),
    /// The process's executable cannot be run.
    Exec(ExecError),
}

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildError::Message(m) => f.write_str(m),
            ChildError::Exec(e) => e.fmt(f),
        }
    }
}

impl From<String> for ChildError {
    fn from(m: String) -> Self {
        ChildError::Message(m)
    }
}

impl From<&str> for ChildError {
    fn from(m: &str) -> Self {
        ChildError::Message(m.to_owned())
    }
}

impl From<ExecError> for ChildError {
    fn from(e: ExecError) -> Self {
        ChildError::Exec(e)
    }
}

impl ChildError {
    /// The tag and payload this error travels as.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            ChildError::Message(m) => (tag::ERROR, m.as_bytes().to_vec()),
            ChildError::Exec(e) => {
                let mut p = (e.errno as i32).to_le_bytes().to_vec();
                p.push(u8::from(e.searched_path));
                p.extend_from_slice(e.command.as_bytes());
                (tag::EXEC_FAILED, p)
            }
        }
    }

    /// The error a message with tag `t` carries, if it is one.
    pub fn decode(t: u8, payload: &[u8]) -> Option<ChildError> {
        match t {
            tag::ERROR => Some(ChildError::Message(
                String::from_utf8_lossy(payload).into_owned(),
            )),
            tag::EXEC_FAILED => Some(match payload {
                [a, b, c, d, searched, command @ ..] => ChildError::Exec(ExecError {
                    command: String::from_utf8_lossy(command).into_owned(),
                    errno: nix::errno::Errno::from_raw(i32::from_le_bytes([*a, *b, *c, *d])),
                    searched_path: *searched != 0,
                }),
                _ => ChildError::Message("malformed exec error from the container init".into()),
            }),
            _ => None,
        }
    }

    /// Tag and payload in one buffer (for the start socket, a byte stream).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (t, mut p) = self.encode();
        p.insert(0, t);
        p
    }

    /// The inverse of [`ChildError::to_bytes`]; untagged bytes are a message.
    pub fn from_bytes(bytes: &[u8]) -> ChildError {
        match bytes.split_first() {
            Some((t, p)) => ChildError::decode(*t, p).unwrap_or_else(|| {
                ChildError::Message(String::from_utf8_lossy(bytes).into_owned())
            }),
            None => ChildError::Message("empty error from the container init".into()),
        }
    }

    /// The library error of container `id`.
    pub fn into_error(self, id: &str) -> Error {
        match self {
            ChildError::Message(message) => Error::Init {
                id: id.to_owned(),
                message,
            },
            ChildError::Exec(source) => Error::Exec {
                id: id.to_owned(),
                source,
            },
        }
    }
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

    /// Sends `e` (a child's last message).
    pub fn send_error(&self, e: &ChildError) -> nix::Result<()> {
        let (t, p) = e.encode();
        self.send(t, &p)
    }

    /// Waits for `want`; a reported error or EOF becomes the `Err`.
    pub fn expect(&self, want: u8) -> std::result::Result<Vec<u8>, ChildError> {
        match self.recv() {
            Ok(Some((t, p))) if t == want => Ok(p),
            Ok(Some((t, p))) => Err(ChildError::decode(t, &p).unwrap_or_else(|| {
                ChildError::Message(format!("unexpected sync message {:?}", t as char))
            })),
            Ok(None) => Err("peer exited".into()),
            Err(e) => Err(format!("sync: {e}").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;

    fn missing() -> ChildError {
        ChildError::Exec(ExecError {
            command: "nosuchcmd".into(),
            errno: Errno::ENOENT,
            searched_path: true,
        })
    }

    #[test]
    fn child_errors_cross_the_channel_typed() {
        let (a, b) = pair().expect("pair");
        a.send_error(&missing()).expect("send");
        assert_eq!(b.expect(tag::READY), Err(missing()));
        a.send_error(&"mount failed".into()).expect("send");
        assert_eq!(b.expect(tag::READY), Err("mount failed".into()));
        a.send(tag::READY, b"x").expect("send");
        assert_eq!(b.expect(tag::READY), Ok(b"x".to_vec()));
        drop(a);
        assert_eq!(b.expect(tag::READY), Err("peer exited".into()));
    }

    #[test]
    fn child_errors_round_trip_as_bytes() {
        for e in [missing(), ChildError::Message("boom".into())] {
            assert_eq!(ChildError::from_bytes(&e.to_bytes()), e);
        }
        assert!(matches!(
            ChildError::from_bytes(&[tag::EXEC_FAILED, 1]),
            ChildError::Message(_)
        ));
        let e = missing().into_error("c1");
        assert_eq!(e.kind(), crate::ErrorKind::ExecutableNotFound);
    }
}
