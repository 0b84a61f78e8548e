//! gRPC metadata keys containerd clients send, and readers for them.

use tonic::metadata::MetadataMap;

/// The namespace of a call (`ctr -n`), on every namespaced RPC.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";

/// The lease that new resources of a call are attached to.
pub const LEASE_HEADER: &str = "containerd-lease";

/// The namespace named in `meta`, if present, non-empty and valid text.
pub fn namespace(meta: &MetadataMap) -> Option<&str> {
    ascii_value(meta, NAMESPACE_HEADER)
}

/// The lease named in `meta`, if present, non-empty and valid text.
pub fn lease(meta: &MetadataMap) -> Option<&str> {
    ascii_value(meta, LEASE_HEADER)
}

fn ascii_value<'a>(meta: &'a MetadataMap, key: &str) -> Option<&'a str> {
    meta.get(key)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespace_and_lease() {
        let mut meta = MetadataMap::new();
        assert_eq!(namespace(&meta), None);
        meta.insert(NAMESPACE_HEADER, "default".parse().expect("ascii"));
        meta.insert(LEASE_HEADER, "123-abc".parse().expect("ascii"));
        assert_eq!(namespace(&meta), Some("default"));
        assert_eq!(lease(&meta), Some("123-abc"));
    }

    #[test]
    fn empty_value_counts_as_absent() {
        let mut meta = MetadataMap::new();
        meta.insert(NAMESPACE_HEADER, "".parse().expect("ascii"));
        assert_eq!(namespace(&meta), None);
    }
}
