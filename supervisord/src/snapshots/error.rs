//! Errors of the namespaced snapshot domain.

use berth_api::{ErrorKind, HasKind};

use crate::identifiers::InvalidIdentifier;
use crate::metadata;

/// Why a snapshot operation failed. [`HasKind::kind`] gives containerd's class.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshotter argument missing")]
    MissingSnapshotter,
    #[error("snapshotter not loaded: {name}")]
    NotLoaded { name: String },
    #[error("invalid argument: {reason}")]
    Invalid { reason: String },
    #[error("snapshot {key:?} does not exist")]
    NotFound { key: String },
    #[error("parent snapshot {parent:?} does not exist")]
    ParentNotFound { parent: String },
    #[error("snapshot {key:?} already exists")]
    AlreadyExists { key: String },
    #[error("cannot remove snapshot {key:?}: it has children")]
    HasChildren { key: String },
    #[error("cannot update field {path:?} of snapshot {key:?}")]
    InvalidField { key: String, path: String },
    #[error("labels of snapshot {key:?}")]
    Labels {
        key: String,
        #[source]
        source: InvalidIdentifier,
    },
    #[error(transparent)]
    Metadata(#[from] metadata::Error),
    #[error("snapshotter {name}")]
    Backend {
        name: String,
        #[source]
        source: berth_snapshotter::Error,
    },
    #[error("blocking snapshot task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl SnapshotError {
    pub(crate) fn backend(name: &str) -> impl FnOnce(berth_snapshotter::Error) -> Self {
        let name = name.to_owned();
        move |source| SnapshotError::Backend { name, source }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        SnapshotError::Invalid {
            reason: reason.into(),
        }
    }
}

impl HasKind for SnapshotError {
    fn kind(&self) -> ErrorKind {
        use SnapshotError as E;
        match self {
            E::MissingSnapshotter
            | E::NotLoaded { .. }
            | E::Invalid { .. }
            | E::InvalidField { .. }
            | E::Labels { .. } => ErrorKind::InvalidArgument,
            E::NotFound { .. } | E::ParentNotFound { .. } => ErrorKind::NotFound,
            E::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            E::HasChildren { .. } => ErrorKind::FailedPrecondition,
            E::Metadata(e) => e.kind(),
            E::Backend { source, .. } => match source.kind() {
                berth_snapshotter::ErrorKind::NotFound => ErrorKind::NotFound,
                berth_snapshotter::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
                berth_snapshotter::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                berth_snapshotter::ErrorKind::FailedPrecondition => ErrorKind::FailedPrecondition,
                berth_snapshotter::ErrorKind::Internal => ErrorKind::Internal,
            },
            E::Join(_) => ErrorKind::Internal,
        }
    }
}
