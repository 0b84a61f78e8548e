//! Keeping the runtime binary out of the container's reach (the CVE-2019-5736 class).
//!
//! Processes that join a running container (exec) are made non-dumpable until they exec,
//! so `/proc/<pid>/exe` cannot be opened from inside. On top of that, [`reexec_sealed`]
//! re-executes the runtime from a sealed memfd copy of itself: even a process that got
//! hold of `/proc/<pid>/exe` only reaches an immutable anonymous copy, never the host
//! file. `berth-runc` does this for `exec`; a shim helper joining containers should call
//! it first thing (before anything else runs).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Error, Result};

/// The memfd name; `/proc/self/exe` of a sealed copy reads `/memfd:<name> (deleted)`.
pub const MEMFD_NAME: &str = "berth-runc-sealed";

/// True if this process runs from a sealed memfd copy.
pub fn running_sealed() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| {
            p.as_os_str()
                .as_bytes()
                .starts_with(format!("/memfd:{MEMFD_NAME}").as_bytes())
        })
        .unwrap_or(false)
}

/// A sealed (no write, grow, shrink or further seals) memfd holding `/proc/self/exe`.
pub fn sealed_copy_of_self() -> Result<OwnedFd> {
    let name = CString::new(MEMFD_NAME).expect("no NUL in a constant");
    // SAFETY: name is a valid C string; flags are plain integers.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(Error::sys("memfd_create", nix::Error::last()));
    }
    // SAFETY: memfd_create returned a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut src = std::fs::File::open("/proc/self/exe")
        .map_err(|e| Error::io("opening", "/proc/self/exe", e))?;
    let mut dst = std::fs::File::from(fd.try_clone().map_err(|e| Error::io("dup", "memfd", e))?);
    std::io::copy(&mut src, &mut dst).map_err(|e| Error::io("copying", "/proc/self/exe", e))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on an fd we own with integer arguments.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(Error::sys("sealing memfd", nix::Error::last()));
    }
    Ok(fd)
}

/// Re-executes the current process from a sealed copy of its binary, with the same
/// arguments and environment, unless it already runs from one. Returns only on error.
pub fn reexec_sealed() -> Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let fd = sealed_copy_of_self()?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| {
            CString::new(a.as_bytes()).map_err(|_| Error::InvalidSpec("argument with NUL".into()))
        })
        .collect::<Result<_>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).map_err(|_| Error::InvalidSpec("environment with NUL".into()))
        })
        .collect::<Result<_>>()?;
    let e = nix::unistd::fexecve(&fd, &args, &env);
    Err(Error::sys(
        "re-exec from sealed memfd",
        e.err().unwrap_or(nix::Error::EINVAL),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_copy_cannot_be_written() {
        let fd = sealed_copy_of_self().expect("copy");
        let mut f = std::fs::File::from(fd);
        use std::io::Write;
        let err = f.write_all(b"x").expect_err("sealed");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let len = f.metadata().expect("md").len();
        let own = std::fs::metadata("/proc/self/exe").expect("exe").len();
        assert_eq!(len, own, "a full copy");
        // Reopening through /proc for write is refused too.
        let p = format!("/proc/self/fd/{}", f.as_raw_fd());
        let reopen = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|mut g| g.write_all(b"x"));
        assert!(reopen.is_err());
    }
}
