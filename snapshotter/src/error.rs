//! The crate's error type and the kind callers match on.

use std::path::PathBuf;

/// The class of an [`Error`], the only thing callers should match on.
///
/// berthd maps it to a gRPC code (containerd's errdefs classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The snapshot (or its parent) does not exist.
    NotFound,
    /// A snapshot with that key or name already exists.
    AlreadyExists,
    /// The request itself is malformed (empty key, bad field path, oversized label).
    InvalidArgument,
    /// The snapshot is in the wrong state for the request (not active, has children).
    FailedPrecondition,
    /// Anything else: I/O, database, kernel.
    Internal,
}

/// Errors of the snapshotters, the metastore and the mount helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("snapshot {key:?} not found")]
    NotFound { key: String },
    #[error("parent snapshot {parent:?} of {key:?} not found")]
    ParentNotFound { key: String, parent: String },
    #[error("snapshot {key:?} already exists")]
    AlreadyExists { key: String },
    #[error("invalid argument: {reason}")]
    InvalidArgument { reason: String },
    #[error("parent {parent:?} of {key:?} is not a committed snapshot")]
    ParentNotCommitted { key: String, parent: String },
    #[error("snapshot {key:?} is not active")]
    NotActive { key: String },
    #[error("snapshot {key:?} is committed: it has no mounts")]
    NotActiveOrView { key: String },
    #[error("cannot remove snapshot {key:?}: it has children")]
    HasChildren { key: String },
    #[error("snapshotter not loaded: {name}")]
    UnknownSnapshotter { name: String },
    #[error("snapshotter root {root:?} is in use by another process")]
    RootInUse { root: PathBuf },
    #[error("overlayfs is not usable on {root:?}")]
    OverlayUnsupported {
        root: PathBuf,
        #[source]
        source: Box<Error>,
    },
    #[error("metastore at {path:?} has schema version {found}, this build knows {expected}")]
    SchemaVersion {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("metastore")]
    Db(#[source] Box<redb::Error>),
    #[error("corrupt metastore record for {key:?}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{op} {path:?}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount {fs_type} {source_path:?} on {target:?}")]
    Mount {
        fs_type: String,
        source_path: String,
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("unmount {target:?}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("{op} {path:?}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } | Error::ParentNotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::InvalidArgument { .. }
            | Error::ParentNotCommitted { .. }
            | Error::UnknownSnapshotter { .. } => ErrorKind::InvalidArgument,
            Error::NotActive { .. }
            | Error::NotActiveOrView { .. }
            | Error::HasChildren { .. }
            | Error::RootInUse { .. }
            | Error::OverlayUnsupported { .. }
            | Error::SchemaVersion { .. } => ErrorKind::FailedPrecondition,
            Error::Db(_)
            | Error::Corrupt { .. }
            | Error::Io { .. }
            | Error::Mount { .. }
            | Error::Unmount { .. }
            | Error::Sys { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            reason: reason.into(),
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn sys(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(nix::Error) -> Self {
        let path = path.into();
        move |source| Error::Sys { op, path, source }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
