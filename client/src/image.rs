//! Reading an image out of the content store: the manifest for this
//! platform, its config, and the chain IDs of its layers.

use berth_api::containerd::services::content::v1::ReadContentRequest;
use berth_api::containerd::services::images::v1::{GetImageRequest, Image, ListImagesRequest};
use berth_api::containerd::types::Descriptor;
use futures::StreamExt;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::error::{Error, Result};

/// OCI and Docker media types of an index / manifest list.
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Label holding an image's stop signal on a container, as containerd.
pub const STOP_SIGNAL_LABEL: &str = "io.containerd.image.config.stop-signal";

/// An image resolved for one platform.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The image record.
    pub image: Image,
    /// The platform manifest.
    pub manifest: ImageManifest,
    /// The manifest's descriptor (digest).
    pub manifest_digest: String,
    /// The parsed config.
    pub config: ImageConfiguration,
    /// Digest of the config blob (the image ID).
    pub config_digest: String,
}

impl ResolvedImage {
    /// The chain ID of all layers: the snapshot a container's rootfs is
    /// prepared on (empty for an image without layers).
    pub fn chain_id(&self) -> String {
        chain_ids(self.config.rootfs().diff_ids())
            .pop()
            .unwrap_or_default()
    }

    /// The sum of the compressed layer sizes.
    pub fn size(&self) -> i64 {
        self.manifest.layers().iter().map(|l| l.size() as i64).sum()
    }
}

/// containerd's chain IDs: `chain[0] = diff[0]`,
/// `chain[n] = sha256(chain[n-1] + " " + diff[n])`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => {
                let sum = Sha256::digest(format!("{parent} {diff}").as_bytes());
                format!("sha256:{}", hex::encode(sum))
            }
        };
        out.push(next);
    }
    out
}

/// The host platform as OCI names it (`linux`, `amd64`).
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    ("linux", arch)
}

impl Client {
    /// Reads a whole blob from the content store.
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = self
            .content()
            .read(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            })
            .await
            .map_err(Error::at("Content.Read"))?
            .into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk.map_err(Error::at("Content.Read"))?.data);
        }
        Ok(data)
    }

    /// Gets an image record by name.
    pub async fn get_image(&self, name: &str) -> Result<Image> {
        self.images()
            .get(GetImageRequest {
                name: name.to_string(),
            })
            .await
            .map_err(Error::at("Images.Get"))?
            .into_inner()
            .image
            .ok_or(Error::Truncated("Images.Get"))
    }

    /// Lists image records matching `filters` (empty: all).
    pub async fn list_images(&self, filters: Vec<String>) -> Result<Vec<Image>> {
        Ok(self
            .images()
            .list(ListImagesRequest { filters })
            .await
            .map_err(Error::at("Images.List"))?
            .into_inner()
            .images)
    }

    /// Resolves image `name` for the host platform: index → manifest →
    /// config.
    pub async fn resolve_image(&self, name: &str) -> Result<ResolvedImage> {
        let image = self.get_image(name).await?;
        let target = image.target.clone().ok_or_else(|| {
            Error::InvalidArgument(format!("image {name} has no target descriptor"))
        })?;
        let manifest_digest = self.manifest_for_host(name, &target).await?;
        let manifest: ImageManifest = parse(
            &self.read_blob(&manifest_digest).await?,
            format!("manifest {manifest_digest}"),
        )?;
        let config_digest = manifest.config().digest().to_string();
        let config: ImageConfiguration = parse(
            &self.read_blob(&config_digest).await?,
            format!("image config {config_digest}"),
        )?;
        Ok(ResolvedImage {
            image,
            manifest,
            manifest_digest,
            config,
            config_digest,
        })
    }

    async fn manifest_for_host(&self, name: &str, target: &Descriptor) -> Result<String> {
        if !INDEX_TYPES.contains(&target.media_type.as_str()) {
            return Ok(target.digest.clone());
        }
        let index: ImageIndex = parse(
            &self.read_blob(&target.digest).await?,
            format!("index {}", target.digest),
        )?;
        let (os, arch) = host_platform();
        index
            .manifests()
            .iter()
            .find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == os && p.architecture().to_string() == arch
                })
            })
            .map(|m| m.digest().to_string())
            .ok_or_else(|| Error::NotFound(format!("image {name} has no manifest for {os}/{arch}")))
    }
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: String) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Parse { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_containerd() {
        let a = "sha256:aaaa".to_string();
        let b = "sha256:bbbb".to_string();
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        let expect = hex::encode(Sha256::digest(b"sha256:aaaa sha256:bbbb"));
        assert_eq!(chain[1], format!("sha256:{expect}"));
        assert!(chain_ids(&[]).is_empty());
    }
}
