//! The client's one error type.

use std::path::PathBuf;

use berth_api::{ErrorKind, HasKind};

/// Everything the client library can fail with.
///
/// Every variant names what it was doing (an RPC, a path, an image) and
/// carries its cause; [`Error::kind`] says how a caller should react.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be reached.
    #[error("cannot connect to berthd at {}", address.display())]
    Connect {
        /// The socket path.
        address: PathBuf,
        /// Why the connection failed.
        #[source]
        source: tonic::transport::Error,
    },
    /// A gRPC call failed; `method` is `Service.Method`.
    #[error("{}", describe_rpc(method, *code, message))]
    Rpc {
        /// The RPC, e.g. `Images.Get`.
        method: &'static str,
        /// The status code berthd answered with.
        code: tonic::Code,
        /// berthd's message.
        message: String,
    },
    /// A namespace, lease or other value cannot travel as gRPC metadata.
    #[error("invalid {what} {value:?}: must be printable ASCII")]
    InvalidMetadata {
        /// Which value.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// A request the caller built is not valid.
    #[error("{0}")]
    InvalidArgument(String),
    /// Something named does not exist (an image platform, a user in the image).
    #[error("{0}")]
    NotFound(String),
    /// A blob or document did not parse.
    #[error("cannot parse {what}")]
    Parse {
        /// What was being parsed (e.g. `manifest sha256:…`).
        what: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A local file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done, e.g. `cannot create fifo`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A stream ended before its final message.
    #[error("{0} ended early")]
    Truncated(&'static str),
}

fn describe_rpc(method: &str, code: tonic::Code, message: &str) -> String {
    match code {
        tonic::Code::Unimplemented => {
            format!("berthd does not implement {method} yet")
        }
        tonic::Code::Unavailable if message.is_empty() => {
            format!("berthd is unavailable ({method})")
        }
        _ if message.is_empty() => format!("{method} failed: {}", code.description()),
        _ => message.to_string(),
    }
}

impl Error {
    /// Wraps a status from `method`.
    pub fn rpc(method: &'static str, status: tonic::Status) -> Error {
        Error::Rpc {
            method,
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    /// A closure for `map_err` on calls to `method`.
    pub fn at(method: &'static str) -> impl Fn(tonic::Status) -> Error {
        move |status| Error::rpc(method, status)
    }

    /// An I/O error on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// How a caller should react; gRPC codes map through berth-api's one
    /// table.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { .. } => ErrorKind::Unavailable,
            Error::Rpc { code, .. } => ErrorKind::from_code(*code),
            Error::InvalidMetadata { .. } | Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Parse { .. } | Error::Io { .. } | Error::Truncated(_) => ErrorKind::Internal,
        }
    }

    /// The RPC (`Service.Method`) that failed, for an [`Error::Rpc`].
    pub fn method(&self) -> Option<&'static str> {
        match self {
            Error::Rpc { method, .. } => Some(method),
            _ => None,
        }
    }

    /// Whether this is a NotFound, the one case callers tolerate most.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        Error::kind(self)
    }
}

/// The library's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_errors_keep_kind_and_message() {
        let e = Error::rpc(
            "Images.Get",
            tonic::Status::not_found("image \"x\": not found"),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "image \"x\": not found");
        assert_eq!(e.method(), Some("Images.Get"));
        assert_eq!(Error::NotFound("x".into()).method(), None);
    }

    #[test]
    fn unimplemented_names_the_method() {
        let e = Error::rpc("Snapshots.List", tonic::Status::unimplemented(""));
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
        assert_eq!(
            e.to_string(),
            "berthd does not implement Snapshots.List yet"
        );
    }

    #[test]
    fn empty_messages_fall_back_to_the_code() {
        let e = Error::rpc("Tasks.Get", tonic::Status::new(tonic::Code::Internal, ""));
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.to_string().starts_with("Tasks.Get failed: "), "{e}");
    }
}
