//! Image references: parsing, containerd's normalized name, and which registries are
//! spoken to over plain http.

use std::net::IpAddr;

use oci_client::Reference;

use super::error::{Result, TransferError};

/// Parses `reference` as docker does: `busybox` is `docker.io/library/busybox:latest`.
pub fn parse(reference: &str) -> Result<Reference> {
    if reference.trim().is_empty() {
        return Err(TransferError::InvalidArgument(
            "image reference must not be empty".into(),
        ));
    }
    reference
        .parse::<Reference>()
        .map_err(|source| TransferError::Reference {
            reference: reference.to_owned(),
            source,
        })
}

/// The image record name containerd gives a reference: registry, repository and tag
/// and/or digest, e.g. `127.0.0.1:5000/busybox:latest`.
pub fn image_name(reference: &Reference) -> String {
    reference.whole()
}

/// The host of a registry without its port (`127.0.0.1:5000` -> `127.0.0.1`;
/// `[::1]:5000` -> `::1`), as containerd's `distribution.source.<host>` labels use.
pub fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host
        }
        _ => registry,
    }
}

/// Whether `registry` (host[:port]) is on the loopback: `localhost`, 127.0.0.0/8, ::1.
/// docker talks plain http to those without being told.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_without_port(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether to use plain http for `registry`: asked for, loopback, or listed as insecure
/// (entries match host:port or the bare host).
pub fn use_plain_http(registry: &str, requested: bool, insecure: &[String]) -> bool {
    requested
        || is_loopback(registry)
        || insecure
            .iter()
            .any(|i| i == registry || i == host_without_port(registry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_containerd() {
        let r = parse("busybox").expect("parses");
        assert_eq!(image_name(&r), "docker.io/library/busybox:latest");
        let r = parse("127.0.0.1:5000/busybox").expect("parses");
        assert_eq!(image_name(&r), "127.0.0.1:5000/busybox:latest");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "busybox");
        let d = "sha256:".to_owned() + &"a".repeat(64);
        let r = parse(&format!("localhost:5000/a/b@{d}")).expect("parses");
        assert_eq!(image_name(&r), format!("localhost:5000/a/b@{d}"));
        assert!(parse("").is_err());
        assert!(parse("library/BusyBox").is_err());
    }

    #[test]
    fn loopback_and_insecure_registries_use_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.8.9.1"));
        assert!(is_loopback("localhost:443"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("docker.io"));
        assert!(!is_loopback("127.0.0.1.example.com"));
        let insecure = vec!["reg.lan:5000".to_owned(), "other.lan".to_owned()];
        assert!(use_plain_http("reg.lan:5000", false, &insecure));
        assert!(use_plain_http("other.lan:8080", false, &insecure));
        assert!(!use_plain_http("reg.lan:6000", false, &insecure));
        assert!(use_plain_http("docker.io", true, &insecure));
        assert!(!use_plain_http("docker.io", false, &insecure));
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_without_port("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_without_port("docker.io"), "docker.io");
        assert_eq!(host_without_port("[::1]:5000"), "::1");
    }
}
