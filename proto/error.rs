//! The one map between berth's error kinds and gRPC status codes.
//!
//! It follows containerd's errdefs: each kind has exactly one code, and a
//! client turns a code back into a kind with [`ErrorKind::from_code`].
//! Library errors implement [`HasKind`]; gRPC adapters call [`status`].

use tonic::Code;

/// What went wrong, as far as a caller needs to know to react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// An object with that name or digest already exists.
    AlreadyExists,
    /// The request itself is malformed.
    InvalidArgument,
    /// The system is not in a state that allows the operation.
    FailedPrecondition,
    /// Transient: retry later (e.g. a locked ingest).
    Unavailable,
    /// The operation is not supported (gRPC `Unimplemented`).
    NotImplemented,
    /// The caller cancelled.
    Canceled,
    /// The deadline passed.
    DeadlineExceeded,
    /// Anything else.
    Internal,
}

impl ErrorKind {
    /// Every kind, for exhaustive tests and tables.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::InvalidArgument,
        ErrorKind::FailedPrecondition,
        ErrorKind::Unavailable,
        ErrorKind::NotImplemented,
        ErrorKind::Canceled,
        ErrorKind::DeadlineExceeded,
        ErrorKind::Internal,
    ];

    /// The gRPC code this kind travels as.
    pub fn code(self) -> Code {
        match self {
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::NotImplemented => Code::Unimplemented,
            ErrorKind::Canceled => Code::Cancelled,
            ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorKind::Internal => Code::Internal,
        }
    }

    /// The kind a received gRPC code means. Total: codes containerd has no
    /// kind for map to the nearest one (`OutOfRange` is a bad argument,
    /// `ResourceExhausted` is worth retrying later), the rest to `Internal`.
    pub fn from_code(code: Code) -> ErrorKind {
        match code {
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
            Code::FailedPrecondition => ErrorKind::FailedPrecondition,
            Code::Unavailable | Code::ResourceExhausted => ErrorKind::Unavailable,
            Code::Unimplemented => ErrorKind::NotImplemented,
            Code::Cancelled => ErrorKind::Canceled,
            Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
            Code::Ok
            | Code::Unknown
            | Code::PermissionDenied
            | Code::Aborted
            | Code::Internal
            | Code::DataLoss
            | Code::Unauthenticated => ErrorKind::Internal,
        }
    }
}

/// An error that can say which [`ErrorKind`] it is.
pub trait HasKind {
    /// The kind of this error.
    fn kind(&self) -> ErrorKind;
}

impl HasKind for tonic::Status {
    fn kind(&self) -> ErrorKind {
        ErrorKind::from_code(self.code())
    }
}

/// Converts an error into the gRPC status that carries it: the kind's code
/// and the error's display text. The only place errors become codes.
pub fn status<E: HasKind + std::fmt::Display>(e: &E) -> tonic::Status {
    tonic::Status::new(e.kind().code(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("image {name} not found")]
    struct Missing {
        name: String,
    }

    impl HasKind for Missing {
        fn kind(&self) -> ErrorKind {
            ErrorKind::NotFound
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_code() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), kind, "{kind:?}");
        }
    }

    #[test]
    fn kinds_have_distinct_codes() {
        for a in ErrorKind::ALL {
            for b in ErrorKind::ALL {
                if a != b {
                    assert_ne!(a.code(), b.code(), "{a:?} and {b:?}");
                }
            }
        }
    }

    #[test]
    fn containerd_codes_map_like_errdefs() {
        assert_eq!(ErrorKind::NotImplemented.code(), Code::Unimplemented);
        assert_eq!(ErrorKind::Canceled.code(), Code::Cancelled);
        assert_eq!(ErrorKind::from_code(Code::Unknown), ErrorKind::Internal);
        assert_eq!(
            ErrorKind::from_code(Code::OutOfRange),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            ErrorKind::from_code(Code::ResourceExhausted),
            ErrorKind::Unavailable
        );
        assert_eq!(
            ErrorKind::from_code(Code::PermissionDenied),
            ErrorKind::Internal
        );
    }

    #[test]
    fn status_carries_code_and_message() {
        let err = Missing {
            name: "busybox".to_string(),
        };
        let st = status(&err);
        assert_eq!(st.code(), Code::NotFound);
        assert_eq!(st.message(), "image busybox not found");
        assert_eq!(st.kind(), ErrorKind::NotFound);
    }
}
