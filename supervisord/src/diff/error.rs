//! Errors of the Diff domain.

use std::path::PathBuf;

use berth_api::{ErrorKind, HasKind};
use berth_snapshotter::layer::{LayerError, LayerErrorKind};

use crate::content::ContentError;

/// Why an apply or a diff failed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("invalid mounts: {reason}")]
    Mounts { reason: String },
    #[error("invalid argument: {reason}")]
    Invalid { reason: String },
    #[error("layer media type {media_type} is not supported for diff")]
    UnsupportedMediaType { media_type: String },
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("apply layer {digest}")]
    Apply {
        digest: String,
        #[source]
        source: LayerError,
    },
    #[error("compute diff")]
    Diff(#[source] LayerError),
    #[error("mount")]
    Mount(#[source] berth_snapshotter::Error),
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blocking diff task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl DiffError {
    pub(crate) fn mounts(reason: impl Into<String>) -> Self {
        DiffError::Mounts {
            reason: reason.into(),
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| DiffError::Io { op, path, source }
    }
}

impl HasKind for DiffError {
    fn kind(&self) -> ErrorKind {
        match self {
            DiffError::Mounts { .. } | DiffError::Invalid { .. } => ErrorKind::InvalidArgument,
            DiffError::UnsupportedMediaType { .. } => ErrorKind::NotImplemented,
            DiffError::Content(e) => e.kind(),
            DiffError::Apply { source, .. } | DiffError::Diff(source) => match source.kind() {
                LayerErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                LayerErrorKind::Internal => ErrorKind::Internal,
            },
            DiffError::Mount(_) | DiffError::Io { .. } | DiffError::Join(_) => ErrorKind::Internal,
        }
    }
}
