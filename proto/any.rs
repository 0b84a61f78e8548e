//! `google.protobuf.Any` with containerd's type-URL rules.
//!
//! containerd (Go `typeurl`) names a protobuf message by its bare full name,
//! e.g. `containerd.events.TaskExit`, without the `type.googleapis.com/`
//! prefix; non-protobuf payloads (OCI spec types) are JSON under the URLs
//! below. Decoding accepts both the bare and a prefixed form.

use prost::Name;
use prost_types::Any;

use crate::error::{ErrorKind, HasKind};

/// Type URL of an OCI runtime spec (container `spec`), JSON encoded.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Type URL of an OCI process spec (Tasks.Exec `spec`), JSON encoded.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// Type URL of OCI LinuxResources (Tasks.Update `resources`), JSON encoded.
pub const LINUX_RESOURCES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// Why an `Any` could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum AnyError {
    /// The Any holds another type.
    #[error("type url {found:?} does not name {expected}")]
    TypeMismatch {
        /// Full name of the requested message.
        expected: String,
        /// The Any's type URL.
        found: String,
    },
    /// The bytes are not a valid encoding of the type.
    #[error("cannot decode {type_url}")]
    Decode {
        /// The Any's type URL.
        type_url: String,
        /// The decoder's complaint.
        #[source]
        source: prost::DecodeError,
    },
}

impl HasKind for AnyError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Packs `msg` under its bare full name, as containerd does.
pub fn pack<M: Name>(msg: &M) -> Any {
    Any {
        type_url: M::full_name(),
        value: msg.encode_to_vec(),
    }
}

/// Wraps already-encoded JSON under one of the JSON type URLs.
pub fn pack_json(type_url: &str, json: Vec<u8>) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: json,
    }
}

/// The message name in a type URL: everything after the last `/`, or the
/// whole URL when it has none (containerd's bare form).
pub fn type_name(type_url: &str) -> &str {
    type_url.rsplit_once('/').map_or(type_url, |(_, name)| name)
}

/// Whether `any` holds an `M`, in bare or prefixed form.
pub fn is<M: Name>(any: &Any) -> bool {
    type_name(&any.type_url) == M::full_name()
}

/// Decodes an `M` from `any`, accepting the bare and prefixed URL forms.
pub fn unpack<M: Name + Default>(any: &Any) -> Result<M, AnyError> {
    if !is::<M>(any) {
        return Err(AnyError::TypeMismatch {
            expected: M::full_name(),
            found: any.type_url.clone(),
        });
    }
    M::decode(any.value.as_slice()).map_err(|source| AnyError::Decode {
        type_url: any.type_url.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::events::{TaskExit, TaskStart};
    use crate::containerd::runc::v1::Options;
    use crate::io::containerd::cgroups::v1::Metrics;

    #[test]
    fn pack_uses_bare_full_names() {
        assert_eq!(
            pack(&TaskExit::default()).type_url,
            "containerd.events.TaskExit"
        );
        assert_eq!(
            pack(&Options::default()).type_url,
            "containerd.runc.v1.Options"
        );
        assert_eq!(
            pack(&Metrics::default()).type_url,
            "io.containerd.cgroups.v1.Metrics"
        );
    }

    #[test]
    fn unpack_round_trips_and_accepts_prefixed_urls() {
        let exit = TaskExit {
            container_id: "c1".into(),
            id: "c1".into(),
            pid: 42,
            exit_status: 3,
            exited_at: None,
        };
        let mut any = pack(&exit);
        assert_eq!(unpack::<TaskExit>(&any).expect("bare url"), exit);
        any.type_url = format!("type.googleapis.com/{}", any.type_url);
        assert_eq!(unpack::<TaskExit>(&any).expect("prefixed url"), exit);
    }

    #[test]
    fn unpack_rejects_other_types_and_garbage() {
        let any = pack(&TaskStart::default());
        let err = unpack::<TaskExit>(&any).expect_err("wrong type");
        assert!(matches!(err, AnyError::TypeMismatch { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);

        let garbage = Any {
            type_url: "containerd.events.TaskExit".into(),
            value: vec![0xff, 0xff, 0xff],
        };
        assert!(matches!(
            unpack::<TaskExit>(&garbage),
            Err(AnyError::Decode { .. })
        ));
    }

    #[test]
    fn json_any_keeps_url_and_bytes() {
        let any = pack_json(SPEC_TYPE_URL, b"{}".to_vec());
        assert_eq!(any.type_url, SPEC_TYPE_URL);
        assert_eq!(any.value, b"{}");
        assert_eq!(type_name(PROCESS_TYPE_URL), "Process");
    }
}
