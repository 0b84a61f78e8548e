//! A registry as one transfer sees it: an oci-client for one reference, with the scheme
//! (https, or plain http when [`super::reference::use_plain_http`]) and credentials
//! decided once.

use bytes::Bytes;
use futures::Stream;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::auth::RegistryConfig;
use super::error::{Result, TransferError};
use super::oci::{MANIFEST_MEDIA_TYPES, sha256_digest};
use super::reference::use_plain_http;

/// A connection to the registry of one reference.
pub struct Remote {
    client: Client,
    auth: RegistryAuth,
    reference: Reference,
}

/// A blob body: a stream of bytes from `offset` on.
pub type BlobStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

impl Remote {
    pub fn new(
        reference: Reference,
        config: &RegistryConfig,
        plain_http: bool,
        username: &str,
        password: &str,
    ) -> Result<Self> {
        let registry = reference.resolve_registry().to_owned();
        let protocol = if use_plain_http(reference.registry(), plain_http, &config.insecure) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::try_from(ClientConfig {
            protocol,
            platform_resolver: None,
            ..ClientConfig::default()
        })
        .map_err(TransferError::registry(&registry, "build client"))?;
        let auth = config.auth_for(reference.registry(), username, password)?;
        Ok(Self {
            client,
            auth,
            reference,
        })
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// Authenticates for `op` (the token dance, when the registry asks for one).
    pub async fn login(&self, op: RegistryOperation) -> Result<()> {
        self.client
            .auth(&self.reference, &self.auth, op)
            .await
            .map_err(TransferError::registry(self.registry(), "authenticate"))?;
        Ok(())
    }

    /// Fetches the manifest (or index) `digest`, or the reference's own when `None`;
    /// verifies its digest. Returns the body and its digest.
    pub async fn manifest(&self, digest: Option<&str>) -> Result<(Vec<u8>, String)> {
        let r = match digest {
            Some(d) => self.reference.clone_with_digest(d.to_owned()),
            None => self.reference.clone(),
        };
        let (body, got) = self
            .client
            .pull_manifest_raw(&r, &self.auth, &MANIFEST_MEDIA_TYPES)
            .await
            .map_err(TransferError::registry(
                self.registry(),
                format!("fetch manifest {r}"),
            ))?;
        let actual = sha256_digest(&body);
        let expected = digest.or(r.digest()).unwrap_or(got.as_str());
        if actual != expected {
            return Err(TransferError::Blob {
                digest: expected.to_owned(),
                what: format!("manifest content has digest {actual}"),
            });
        }
        Ok((body.to_vec(), actual))
    }

    /// Fetches a small blob (a config) into memory, verified against `digest`.
    pub async fn small_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.client
            .pull_blob(&self.reference, digest, &mut out)
            .await
            .map_err(TransferError::registry(
                self.registry(),
                format!("fetch blob {digest}"),
            ))?;
        Ok(out)
    }

    /// Streams blob `digest` from `offset`. The bool says whether the registry honoured
    /// the range (`false`: the stream starts at 0). Not verified: the content store
    /// verifies the digest at commit.
    pub async fn blob(&self, digest: &str, offset: u64) -> Result<(BlobStream, bool)> {
        let err = || TransferError::registry(self.registry(), format!("fetch blob {digest}"));
        if offset == 0 {
            let s = self
                .client
                .pull_blob_stream(&self.reference, digest)
                .await
                .map_err(err())?;
            return Ok((Box::pin(s.stream), true));
        }
        match self
            .client
            .pull_blob_stream_partial(&self.reference, digest, offset, None)
            .await
            .map_err(err())?
        {
            BlobResponse::Partial(s) => Ok((Box::pin(s.stream), true)),
            BlobResponse::Full(s) => Ok((Box::pin(s.stream), false)),
        }
    }

    /// Whether the registry has blob `digest` in this repository.
    pub async fn has_blob(&self, digest: &str) -> Result<bool> {
        self.client
            .blob_exists(&self.reference, digest)
            .await
            .map_err(TransferError::registry(
                self.registry(),
                format!("check blob {digest}"),
            ))
    }

    /// Uploads a blob.
    pub async fn push_blob(&self, digest: &str, data: Vec<u8>) -> Result<()> {
        self.client
            .push_blob(&self.reference, data, digest)
            .await
            .map_err(TransferError::registry(
                self.registry(),
                format!("push blob {digest}"),
            ))?;
        Ok(())
    }

    /// Uploads a manifest or index under the reference's tag (or digest).
    pub async fn push_manifest(&self, body: Vec<u8>, media_type: &str) -> Result<String> {
        let ct = http_header(media_type)?;
        self.client
            .push_manifest_raw(&self.reference, body, ct)
            .await
            .map_err(TransferError::registry(
                self.registry(),
                format!("push manifest {}", self.reference),
            ))
    }

    /// Uploads a child manifest by its digest (for an index's children).
    pub async fn push_manifest_by_digest(
        &self,
        digest: &str,
        body: Vec<u8>,
        media_type: &str,
    ) -> Result<()> {
        let r = Reference::with_digest(
            self.reference.registry().to_owned(),
            self.reference.repository().to_owned(),
            digest.to_owned(),
        );
        let ct = http_header(media_type)?;
        self.client
            .push_manifest_raw(&r, body, ct)
            .await
            .map_err(TransferError::registry(
                self.registry(),
                format!("push manifest {digest}"),
            ))?;
        Ok(())
    }
}

fn http_header(media_type: &str) -> Result<http::HeaderValue> {
    http::HeaderValue::from_str(media_type)
        .map_err(|_| TransferError::InvalidArgument(format!("bad media type {media_type:?}")))
}
