//! The OCI (and Docker v2) image documents a transfer reads: index, manifest, config —
//! parsed leniently (unknown fields ignored) — with media types and digest helpers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::{Result, TransferError};

pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Every manifest media type a pull accepts (the `Accept` header).
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST,
];

/// The annotation an OCI layout's index.json names images with.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the full image name in exported layouts.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// Whether `media_type` is an index (or docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_INDEX || media_type == MEDIA_TYPE_DOCKER_LIST
}

/// Whether `media_type` is an image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_OCI_MANIFEST || media_type == MEDIA_TYPE_DOCKER_MANIFEST
}

/// A platform, as in an index entry and as asked for (`os/arch[/variant]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    /// The host's platform: berth runs linux containers; arch from the build target.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: String::new(),
        }
    }

    /// Parses `os/arch[/variant]`; empty is the host.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Ok(Self::host());
        }
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: String::new(),
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Self {
                    os: (*os).into(),
                    architecture: (*arch).into(),
                    variant: (*variant).into(),
                })
            }
            _ => Err(TransferError::Platform(s.to_owned())),
        }
    }

    /// Whether an index entry for `other` serves this platform: os and architecture
    /// equal; a requested variant must equal the entry's (no variant asked = any).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_empty() || self.variant == other.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// A content descriptor as OCI documents write it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An image index (or docker manifest list).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The part of an image config an unpack needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageConfig {
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// Only the media type, to tell an index from a manifest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// The media type of a manifest document: its `mediaType`, else guessed from its shape.
pub fn sniff_media_type(body: &[u8], digest: &str) -> Result<String> {
    let probe: Probe = parse_json("manifest", digest, body)?;
    Ok(match probe.media_type {
        m if !m.is_empty() => m,
        _ if probe.manifests.is_some() => MEDIA_TYPE_OCI_INDEX.to_owned(),
        _ if probe.config.is_some() => MEDIA_TYPE_OCI_MANIFEST.to_owned(),
        _ => {
            return Err(TransferError::MediaType {
                media_type: String::new(),
                digest: digest.to_owned(),
            });
        }
    })
}

/// Parses a JSON document, naming it in the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    digest: &str,
    body: &[u8],
) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| TransferError::Json {
        what,
        digest: digest.to_owned(),
        source,
    })
}

/// The entry of `index` that serves `platform`: the first match, as containerd's
/// platform matcher with a single platform picks.
pub fn choose_platform<'a>(
    index: &'a Index,
    platform: &Platform,
    index_digest: &str,
) -> Result<&'a Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| is_manifest(&d.media_type) || d.media_type.is_empty())
        .find(|d| match &d.platform {
            Some(p) => platform.matches(p),
            // An entry without a platform is taken only as a last resort (below).
            None => false,
        })
        .or_else(|| {
            let unlabelled: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| d.platform.is_none() && is_manifest(&d.media_type))
                .collect();
            (unlabelled.len() == 1).then(|| unlabelled[0])
        })
        .ok_or_else(|| TransferError::NoPlatform {
            platform: platform.to_string(),
            digest: index_digest.to_owned(),
        })
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The chain IDs of a layer stack: `chain[0] = diff_ids[0]`,
/// `chain[i] = sha256(chain[i-1] + " " + diff_ids[i])` (the OCI image spec's ChainID).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Checks a digest string is `sha256:<64 lower-case hex>` and returns the hex.
pub fn sha256_hex(digest: &str) -> Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| TransferError::InvalidArgument(format!("unsupported digest {digest:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: &str, digest: char) -> Descriptor {
        Descriptor {
            media_type: MEDIA_TYPE_OCI_MANIFEST.into(),
            digest: format!("sha256:{}", digest.to_string().repeat(64)),
            size: 10,
            platform: Some(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.into(),
            }),
            ..Descriptor::default()
        }
    }

    #[test]
    fn platform_parse_and_default() {
        assert_eq!(Platform::parse("").expect("host").os, "linux");
        let p = Platform::parse("linux/arm64/v8").expect("parses");
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn platform_choice_from_index() {
        let index = Index {
            manifests: vec![
                entry("arm", "v7", 'a'),
                entry("amd64", "", 'b'),
                entry("arm", "v6", 'c'),
            ],
            ..Index::default()
        };
        let amd = Platform::parse("linux/amd64").expect("parses");
        assert!(
            choose_platform(&index, &amd, "i")
                .expect("found")
                .digest
                .contains('b')
        );
        let v6 = Platform::parse("linux/arm/v6").expect("parses");
        assert!(
            choose_platform(&index, &v6, "i")
                .expect("found")
                .digest
                .contains('c')
        );
        let arm = Platform::parse("linux/arm").expect("parses");
        assert!(
            choose_platform(&index, &arm, "i")
                .expect("found")
                .digest
                .contains('a')
        );
        let s390 = Platform::parse("linux/s390x").expect("parses");
        let err = choose_platform(&index, &s390, "sha256:i").expect_err("none");
        assert_eq!(
            err.to_string(),
            "no manifest for platform linux/s390x in index sha256:i"
        );
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        // Values computed with `printf '%s' "<a> <b>" | sha256sum`.
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(
            ids[1],
            "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c"
        );
        assert_eq!(
            sha256_digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn media_types_are_sniffed() {
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#, "d").expect("index"),
            MEDIA_TYPE_OCI_INDEX
        );
        assert_eq!(
            sniff_media_type(
                br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#,
                "d"
            )
            .expect("docker"),
            MEDIA_TYPE_DOCKER_MANIFEST
        );
        assert!(sniff_media_type(b"not json", "d").is_err());
        assert!(sha256_hex("sha256:abc").is_err());
    }
}
