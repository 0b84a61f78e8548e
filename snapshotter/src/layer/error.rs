//! The error type of the layer module.

use std::io;
use std::path::PathBuf;

/// What kind of failure a [`LayerError`] is, for callers that map errors to
/// API codes (a hostile or malformed layer is the caller's fault; I/O is ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerErrorKind {
    /// The layer (or media type) is malformed, hostile or unsupported.
    InvalidArgument,
    /// Reading, writing or the filesystem failed.
    Internal,
}

/// Errors from [`apply`](super::apply) and [`diff`](super::diff()).
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The media type names a compression or format this module cannot read.
    #[error("unsupported layer media type {media_type}")]
    UnsupportedMediaType { media_type: String },
    /// The layer stream could not be read or decompressed.
    #[error("read layer stream")]
    Read(#[source] io::Error),
    /// A tar header could not be parsed.
    #[error("malformed tar entry {path}")]
    Tar {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An entry name (or hardlink target) climbs above the target root with `..`.
    #[error("entry {path} escapes the target root")]
    Escape { path: PathBuf },
    /// A whiteout names `.`, `..` or nothing.
    #[error("invalid whiteout {path}")]
    InvalidWhiteout { path: PathBuf },
    /// A hardlink points at a path that does not exist inside the target.
    #[error("hardlink {path} points at missing {link}")]
    LinkTarget { path: PathBuf, link: PathBuf },
    /// The tar entry type is not supported (e.g. GNU sparse files).
    #[error("unsupported entry type {kind:?} at {path}")]
    UnsupportedEntry { path: PathBuf, kind: char },
    /// The target root cannot be opened.
    #[error("open target root {path}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A filesystem operation on an entry failed.
    #[error("{op} {path}")]
    Fs {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing the diff tar failed.
    #[error("write diff stream")]
    Write(#[source] io::Error),
}

impl LayerError {
    /// The class of this error.
    pub fn kind(&self) -> LayerErrorKind {
        match self {
            Self::UnsupportedMediaType { .. }
            | Self::Tar { .. }
            | Self::Escape { .. }
            | Self::InvalidWhiteout { .. }
            | Self::LinkTarget { .. }
            | Self::UnsupportedEntry { .. } => LayerErrorKind::InvalidArgument,
            Self::Read(_) | Self::Root { .. } | Self::Fs { .. } | Self::Write(_) => {
                LayerErrorKind::Internal
            }
        }
    }

    pub(crate) fn fs(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Fs { op, path, source }
    }
}
