//! gRPC adapters: each service converts proto <-> domain, calls the domain, maps the
//! error with [`status`] (code from `berth_api::status`, message with every cause). No
//! logic lives here.
//!
//! Every request runs in an `rpc` span (see `server.rs`) with fields `path`, `ns`, `id`;
//! adapters fill `ns` and `id` with [`record_ns`]/[`record_id`].

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_api::{ErrorKind, HasKind};
use tonic::{Request, Status};

use crate::error::Chain;
use crate::events::EventError;
use crate::filters::FilterError;
use crate::identifiers::InvalidIdentifier;
use crate::metadata;

pub mod containers;
pub mod content;
pub mod diff;
pub mod events;
pub mod images;
pub mod introspection;
pub mod leases;
pub mod namespaces;
pub mod snapshots;
pub mod tasks;
pub mod transfer;
pub mod version;

impl HasKind for metadata::Error {
    fn kind(&self) -> ErrorKind {
        use metadata::Error as E;
        match self {
            E::NotFound { .. } => ErrorKind::NotFound,
            E::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            E::InvalidArgument(_) => ErrorKind::InvalidArgument,
            E::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            E::SchemaVersion { .. } | E::Store(_) | E::Codec { .. } | E::Io { .. } => {
                ErrorKind::Internal
            }
        }
    }
}

impl HasKind for InvalidIdentifier {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

impl HasKind for FilterError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

impl HasKind for EventError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// An error whose display is its whole cause chain, of the error's own kind.
struct WithCauses<'a>(&'a (dyn std::error::Error + 'static), ErrorKind);

impl std::fmt::Display for WithCauses<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Chain(self.0).fmt(f)
    }
}

impl HasKind for WithCauses<'_> {
    fn kind(&self) -> ErrorKind {
        self.1
    }
}

/// Map a domain error to its status: the kind's code (`berth_api::status`, the one map)
/// and a message carrying every cause once ([`crate::error::Chain`]). Internal errors are
/// logged.
pub(crate) fn status<E: HasKind + std::error::Error + 'static>(e: E) -> Status {
    let st = berth_api::status(&WithCauses(&e, e.kind()));
    if e.kind() == ErrorKind::Internal {
        tracing::error!(error = %st.message(), "internal error");
    }
    st
}

/// A metadata point read (one record by key), run right here and its error mapped.
///
/// Why not [`blocking`]: a redb read transaction never waits for a writer and reads
/// a few mapped pages, microseconds; the hop to the blocking pool and back costs
/// more (tens of µs on a quiet host, much more on a busy one), and `ctr run` makes
/// about thirty such reads. Lists and writes (fsync) stay on the blocking pool.
pub(crate) fn point_read<T>(f: impl FnOnce() -> Result<T, metadata::Error>) -> Result<T, Status> {
    f().map_err(status)
}

/// Run a blocking metadata call off the async workers and map its error.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, metadata::Error> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(status),
        Err(e) => Err(Status::internal(format!("metadata task failed: {e}"))),
    }
}

/// Parse request filters; a bad filter is `InvalidArgument`.
pub(crate) fn parse_filters<S: AsRef<str>>(
    filters: &[S],
) -> Result<crate::filters::Filter, Status> {
    crate::filters::Filter::parse_all(filters).map_err(status)
}

/// The namespace of a namespaced request: `FailedPrecondition "namespace is required"`
/// when missing, `InvalidArgument` when not a valid identifier (containerd's rules).
pub fn namespace<T>(req: &Request<T>) -> Result<String, Status> {
    let ns = berth_api::metadata::namespace(req.metadata())
        .ok_or_else(|| Status::failed_precondition("namespace is required"))?;
    crate::identifiers::validate(ns)
        .map_err(|e| Status::invalid_argument(format!("namespace validation: {e}")))?;
    record_ns(ns);
    Ok(ns.to_owned())
}

/// The lease a request's new objects belong to, if any.
pub fn lease<T>(req: &Request<T>) -> Option<String> {
    berth_api::metadata::lease(req.metadata()).map(str::to_owned)
}

/// Record the namespace on the current RPC span.
pub fn record_ns(ns: &str) {
    tracing::Span::current().record("ns", ns);
}

/// Record the object id on the current RPC span.
pub fn record_id(id: &str) {
    tracing::Span::current().record("id", id);
}

/// The message text for an RPC that is not built yet.
pub(crate) fn unimplemented(service: &str, method: &str) -> Status {
    Status::unimplemented(format!(
        "{service}.{method} is not implemented in berth yet"
    ))
}

pub(crate) fn to_timestamp(t: SystemTime) -> Option<prost_types::Timestamp> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    Some(prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).ok()?,
        nanos: i32::try_from(d.subsec_nanos()).ok()?,
    })
}

pub(crate) fn from_timestamp(t: Option<&prost_types::Timestamp>) -> SystemTime {
    match t {
        Some(t) if t.seconds >= 0 => {
            UNIX_EPOCH
                + Duration::new(
                    u64::try_from(t.seconds).unwrap_or(0),
                    u32::try_from(t.nanos).unwrap_or(0),
                )
        }
        _ => UNIX_EPOCH,
    }
}

pub(crate) fn to_btree(m: HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

pub(crate) fn to_hash(m: BTreeMap<String, String>) -> HashMap<String, String> {
    m.into_iter().collect()
}

pub(crate) fn mask_paths(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|m| m.paths).unwrap_or_default()
}

pub(crate) fn to_any(a: metadata::AnyValue) -> prost_types::Any {
    prost_types::Any {
        type_url: a.type_url,
        value: a.value,
    }
}

pub(crate) fn from_any(a: prost_types::Any) -> metadata::AnyValue {
    metadata::AnyValue {
        type_url: a.type_url,
        value: a.value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_header_rules() {
        let req = Request::new(());
        let err = namespace(&req).expect_err("missing");
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert_eq!(err.message(), "namespace is required");

        let mut req = Request::new(());
        req.metadata_mut()
            .insert("containerd-namespace", "Bad..Name".parse().expect("ascii"));
        let err = namespace(&req).expect_err("invalid");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);

        let mut req = Request::new(());
        req.metadata_mut()
            .insert("containerd-namespace", "k8s.io".parse().expect("ascii"));
        assert_eq!(namespace(&req).expect("valid"), "k8s.io");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        assert_eq!(from_timestamp(to_timestamp(t).as_ref()), t);
        assert_eq!(from_timestamp(None), UNIX_EPOCH);
    }

    #[test]
    fn error_kinds() {
        let nf = metadata::Error::NotFound {
            kind: "image",
            id: "x".into(),
        };
        let st = status(nf);
        assert_eq!(st.code(), tonic::Code::NotFound);
        assert_eq!(st.message(), "image \"x\": not found");
    }

    /// Every cause reaches the message once, for internal and other kinds alike.
    #[test]
    fn nested_causes_reach_the_status_message() {
        use berth_snapshotter::layer::LayerError;

        use crate::diff::DiffError;
        use crate::images::TransferError;

        let enospc = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = TransferError::Diff(Box::new(DiffError::Apply {
            digest: "sha256:ab".into(),
            source: LayerError::Fs {
                op: "write",
                path: "usr/bin/x".into(),
                source: enospc(),
            },
        }));
        let st = status(e);
        assert_eq!(st.code(), tonic::Code::Internal);
        assert_eq!(
            st.message(),
            format!("apply layer sha256:ab: write usr/bin/x: {}", enospc())
        );

        let e = TransferError::Apply {
            digest: "sha256:cd".into(),
            source: Box::new(LayerError::Tar {
                path: "etc/passwd".into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "bad checksum"),
            }),
        };
        let st = status(e);
        assert_eq!(st.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            st.message(),
            "apply layer sha256:cd: malformed tar entry etc/passwd: bad checksum"
        );
    }
}
