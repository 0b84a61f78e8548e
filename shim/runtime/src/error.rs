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
    /// Anything else: a syscall or the container's init failed.
    Internal,
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
