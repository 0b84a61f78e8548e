//! [`ContentError`]: every failure of the content store, with its kind.

use std::path::PathBuf;

/// A content store failure. Messages are lower-case; the variant decides the gRPC code
/// through [`ContentError::kind`].
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("invalid digest {digest:?}")]
    InvalidDigest { digest: String },
    #[error("content digest {digest}: not found")]
    NotFound { digest: String },
    #[error("ref {reference}: not found")]
    RefNotFound { reference: String },
    #[error("content {digest}: already exists")]
    AlreadyExists { digest: String },
    #[error("ref {reference} locked: another writer holds it")]
    Locked { reference: String },
    #[error("ref must not be empty")]
    EmptyRef,
    #[error("write @{offset} must occur at current offset {current} (ref {reference})")]
    OffsetMismatch {
        reference: String,
        offset: u64,
        current: u64,
    },
    #[error("read past object length {size} bytes (offset {offset}, {digest})")]
    ReadPastEnd {
        digest: String,
        offset: u64,
        size: u64,
    },
    #[error("unexpected commit size {actual}, expected {expected} (ref {reference})")]
    SizeMismatch {
        reference: String,
        expected: u64,
        actual: u64,
    },
    #[error("unexpected commit digest {actual}, expected {expected} (ref {reference})")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error("cannot update {path:?} field on content info {digest}")]
    InvalidField { digest: String, path: String },
    #[error("label {key:?}: key and value greater than maximum size ({max} bytes)")]
    LabelTooLarge { key: String, max: usize },
    #[error("writer for ref {reference} is no longer usable after an earlier failure")]
    WriterBroken { reference: String },
    #[error("content i/o at {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Metadata(#[from] crate::metadata::Error),
    #[error("blocking content task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl ContentError {
    /// Wrap an I/O error with the path it happened at.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    /// True for [`ContentError::NotFound`] and [`ContentError::RefNotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. } | Self::RefNotFound { .. })
    }

    /// True for [`ContentError::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. })
    }
}

/// The content store's result type.
pub type Result<T, E = ContentError> = std::result::Result<T, E>;

impl berth_api::HasKind for ContentError {
    fn kind(&self) -> berth_api::ErrorKind {
        use berth_api::ErrorKind as K;
        match self {
            // containerd answers OutOfRange for the two offset errors; berth's one error
            // map has no such kind and reads OutOfRange as InvalidArgument anyway.
            Self::InvalidDigest { .. }
            | Self::EmptyRef
            | Self::OffsetMismatch { .. }
            | Self::ReadPastEnd { .. }
            | Self::InvalidField { .. }
            | Self::LabelTooLarge { .. } => K::InvalidArgument,
            Self::NotFound { .. } | Self::RefNotFound { .. } => K::NotFound,
            Self::AlreadyExists { .. } => K::AlreadyExists,
            Self::Locked { .. } => K::Unavailable,
            Self::SizeMismatch { .. } | Self::DigestMismatch { .. } | Self::WriterBroken { .. } => {
                K::FailedPrecondition
            }
            Self::Metadata(e) => e.kind(),
            Self::Io { .. } | Self::Join(_) => K::Internal,
        }
    }
}
