//! [`TransferError`]: every way a pull, push, import or export can fail.

use berth_api::{ErrorKind, HasKind};

use crate::content::ContentError;
use crate::metadata;

/// Errors of the image transfer domain. Each carries the object it is about.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("invalid image reference {reference:?}")]
    Reference {
        reference: String,
        #[source]
        source: oci_client::ParseError,
    },
    #[error("invalid platform {0:?}: want os/arch[/variant]")]
    Platform(String),
    #[error("no manifest for platform {platform} in index {digest}")]
    NoPlatform { platform: String, digest: String },
    #[error("registry {registry}: {what}")]
    Registry {
        registry: String,
        what: String,
        #[source]
        source: Box<oci_client::errors::OciDistributionError>,
    },
    #[error("blob {digest}: {what}")]
    Blob { digest: String, what: String },
    #[error("{what} {digest}: malformed json")]
    Json {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported media type {media_type:?} of {digest}")]
    MediaType { media_type: String, digest: String },
    #[error("layer {digest}: uncompressed digest {actual} does not match diff_id {expected}")]
    DiffId {
        digest: String,
        expected: String,
        actual: String,
    },
    #[error("apply layer {digest}")]
    Apply {
        digest: String,
        #[source]
        source: Box<berth_snapshotter::layer::LayerError>,
    },
    #[error("snapshot {key:?}")]
    Snapshot {
        key: String,
        #[source]
        source: Box<crate::snapshots::SnapshotError>,
    },
    /// Diff's apply (or its mounts) failed; its error names the layer.
    #[error(transparent)]
    Diff(Box<crate::diff::DiffError>),
    #[error("content {what}")]
    Content {
        what: String,
        #[source]
        source: Box<ContentError>,
    },
    #[error("metadata: {what}")]
    Metadata {
        what: String,
        #[source]
        source: Box<metadata::Error>,
    },
    #[error("archive: {0}")]
    Archive(String),
    #[error("archive io")]
    ArchiveIo(#[source] std::io::Error),
    #[error("docker config {path}: {what}")]
    DockerConfig { path: String, what: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("transfer cancelled")]
    Cancelled,
    #[error("background task failed: {0}")]
    Join(String),
}

impl TransferError {
    pub(crate) fn content(what: impl Into<String>) -> impl FnOnce(ContentError) -> Self {
        let what = what.into();
        move |source| Self::Content {
            what,
            source: Box::new(source),
        }
    }

    pub(crate) fn metadata(what: impl Into<String>) -> impl FnOnce(metadata::Error) -> Self {
        let what = what.into();
        move |source| Self::Metadata {
            what,
            source: Box::new(source),
        }
    }

    pub(crate) fn registry(
        registry: &str,
        what: impl Into<String>,
    ) -> impl FnOnce(oci_client::errors::OciDistributionError) -> Self {
        let registry = registry.to_owned();
        let what = what.into();
        move |source| Self::Registry {
            registry,
            what,
            source: Box::new(source),
        }
    }

    pub(crate) fn snapshot(key: &str) -> impl FnOnce(crate::snapshots::SnapshotError) -> Self {
        let key = key.to_owned();
        move |source| Self::Snapshot {
            key,
            source: Box::new(source),
        }
    }
}

impl HasKind for TransferError {
    fn kind(&self) -> ErrorKind {
        use oci_client::errors::OciDistributionError as O;
        match self {
            Self::Reference { .. } | Self::Platform(_) | Self::InvalidArgument(_) => {
                ErrorKind::InvalidArgument
            }
            Self::NoPlatform { .. } => ErrorKind::NotFound,
            Self::Registry { source, .. } => match source.as_ref() {
                O::ImageManifestNotFoundError(_) => ErrorKind::NotFound,
                O::AuthenticationFailure(_) | O::UnauthorizedError { .. } => {
                    ErrorKind::FailedPrecondition
                }
                _ => ErrorKind::Unavailable,
            },
            Self::Blob { .. }
            | Self::Json { .. }
            | Self::MediaType { .. }
            | Self::DiffId { .. }
            | Self::Archive(_)
            | Self::DockerConfig { .. } => ErrorKind::FailedPrecondition,
            Self::Apply { source, .. } => match source.kind() {
                berth_snapshotter::layer::LayerErrorKind::InvalidArgument => {
                    ErrorKind::FailedPrecondition
                }
                berth_snapshotter::layer::LayerErrorKind::Internal => ErrorKind::Internal,
            },
            Self::Snapshot { source, .. } => source.kind(),
            Self::Diff(source) => source.kind(),
            Self::Content { source, .. } => source.kind(),
            Self::Metadata { source, .. } => source.kind(),
            Self::ArchiveIo(_) | Self::Join(_) => ErrorKind::Internal,
            Self::Cancelled => ErrorKind::Canceled,
        }
    }
}

/// Result of the transfer domain.
pub type Result<T, E = TransferError> = std::result::Result<T, E>;
