//! The runtime's error type. Callers match [`Error::kind`], never message text.

use std::path::PathBuf;

use crate::cgroups::CgroupError;

/// What went wrong, coarsely; the shim maps these to gRPC codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No container with that id.
    NotFound,
    /// A container with that id exists already.
    AlreadyExists,
    /// The container is in the wrong state for the operation.
    FailedPrecondition,
    /// The request or the bundle's config is invalid.
    InvalidArgument,
    /// The process's executable does not exist (ENOENT, ENOTDIR): docker's 127.
    ExecutableNotFound,
    /// The executable exists but cannot be run (EACCES, EISDIR, ENOEXEC, ...): 126.
    NotExecutable,
    /// Anything else: a syscall or the container's init failed.
    Internal,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::FailedPrecondition,
        ErrorKind::InvalidArgument,
        ErrorKind::ExecutableNotFound,
        ErrorKind::NotExecutable,
        ErrorKind::Internal,
    ];

    /// The kind's name in berth-runc's JSON log records (the `kind` field).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::AlreadyExists => "already-exists",
            ErrorKind::FailedPrecondition => "failed-precondition",
            ErrorKind::InvalidArgument => "invalid-argument",
            ErrorKind::ExecutableNotFound => "executable-not-found",
            ErrorKind::NotExecutable => "not-executable",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind named `name` by [`ErrorKind::as_str`].
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Why the container's process could not be executed, found by the init before
/// `create` returns (a PATH search like runc's `exec.LookPath`) or by `execve` itself.
/// Displays like runc's message: `exec: "sh": executable file not found in $PATH`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exec: {command:?}: {}", self.reason())]
pub struct ExecError {
    /// `process.args[0]` (or the resolved path execve failed on).
    pub command: String,
    /// The errno: ENOENT when nothing matched, EACCES when not executable, ...
    pub errno: nix::errno::Errno,
    /// True when `command` was looked up in the process's `$PATH`.
    pub searched_path: bool,
}

impl ExecError {
    /// ExecutableNotFound for ENOENT/ENOTDIR, NotExecutable otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self.errno {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => ErrorKind::ExecutableNotFound,
            _ => ErrorKind::NotExecutable,
        }
    }

    fn reason(&self) -> String {
        if self.searched_path && self.errno == nix::errno::Errno::ENOENT {
            return "executable file not found in $PATH".to_owned();
        }
        // strerror text, lower-cased like Go's syscall errors ("permission denied").
        let desc = self.errno.desc();
        let mut chars = desc.chars();
        match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect(),
            None => format!("errno {}", self.errno as i32),
        }
    }
}

/// Errors of the runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container id {id:?} is invalid: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container {id} does not exist")]
    NotFound { id: String },
    #[error("container {id} already exists")]
    Exists { id: String },
    #[error("container {id} is {status}: cannot {op}")]
    WrongState {
        id: String,
        status: String,
        op: &'static str,
    },
    #[error("loading config {path}: {reason}")]
    LoadSpec { path: PathBuf, reason: String },
    #[error("invalid config: {0}")]
    InvalidSpec(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("container {id}: {message}")]
    Init { id: String, message: String },
    /// The container's process could not be executed (runc's wording).
    #[error("unable to start container process: {source}")]
    Exec {
        id: String,
        #[source]
        source: ExecError,
    },
    #[error("cgroup of container {id}: {source}")]
    Cgroup {
        id: String,
        #[source]
        source: CgroupError,
    },
    #[error("{kind} hook {path}: {reason}")]
    Hook {
        kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("state of container {id}: {reason}")]
    State { id: String, reason: String },
}

impl Error {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Exists { .. } => ErrorKind::AlreadyExists,
            Error::WrongState { .. } => ErrorKind::FailedPrecondition,
            Error::InvalidId { .. }
            | Error::LoadSpec { .. }
            | Error::InvalidSpec(_)
            | Error::Seccomp(_) => ErrorKind::InvalidArgument,
            Error::Exec { source, .. } => source.kind(),
            _ => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(op: &'static str, source: nix::Error) -> Self {
        Error::Sys { op, source }
    }
}

/// Result alias of the runtime.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;

    fn exec(command: &str, errno: Errno, searched_path: bool) -> ExecError {
        ExecError {
            command: command.to_owned(),
            errno,
            searched_path,
        }
    }

    #[test]
    fn exec_errors_read_like_runc_and_carry_their_kind() {
        let missing = exec("nosuchcmd", Errno::ENOENT, true);
        assert_eq!(
            missing.to_string(),
            r#"exec: "nosuchcmd": executable file not found in $PATH"#
        );
        assert_eq!(missing.kind(), ErrorKind::ExecutableNotFound);
        let gone = exec("/bin/gone", Errno::ENOENT, false);
        assert_eq!(
            gone.to_string(),
            r#"exec: "/bin/gone": no such file or directory"#
        );
        assert_eq!(gone.kind(), ErrorKind::ExecutableNotFound);
        let denied = exec("/etc/passwd", Errno::EACCES, false);
        assert_eq!(
            denied.to_string(),
            r#"exec: "/etc/passwd": permission denied"#
        );
        assert_eq!(denied.kind(), ErrorKind::NotExecutable);
        assert_eq!(
            exec("/etc", Errno::EISDIR, false).kind(),
            ErrorKind::NotExecutable
        );
        let e = Error::Exec {
            id: "c1".into(),
            source: missing,
        };
        assert_eq!(e.kind(), ErrorKind::ExecutableNotFound);
        assert_eq!(
            e.to_string(),
            r#"unable to start container process: exec: "nosuchcmd": executable file not found in $PATH"#
        );
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::from_name("bogus"), None);
    }
}
