//! Image transfer: daemon-side pull from registries (layers unpacked while they
//! download), push, and import/export of OCI image-layout archives.
//!
//! ```text
//! mod.rs        Transfer: the domain object the gRPC service calls
//! reference.rs  reference parsing, containerd's image names, plain-http registries
//! auth.rs       [registry] config section, credentials (request, config, docker)
//! remote.rs     one registry connection (oci-client)
//! oci.rs        index/manifest/config documents, platforms, chain IDs
//! labels.rs     containerd's content labels (gc refs, distribution source, …)
//! store.rs      blobs into the content store, the transfer lease, image records
//! unpack.rs     layers onto chain-ID snapshots, streamed through the tee or from blobs
//! pull.rs       pull: resolve, platform, record
//! fetch.rs      concurrent layer downloads into ingests, teed to the unpack
//! push.rs       push
//! layout.rs     the OCI image-layout archive format (write, classify, names)
//! archive.rs    import and export of such archives
//! progress.rs   per-blob progress events
//! ```
//!
//! Nothing here owns files of its own: blobs live in the content store, snapshots in
//! the snapshotters, records in the metadata store.

pub mod archive;
pub mod auth;
pub mod error;
pub mod fetch;
pub mod labels;
pub mod layout;
pub mod oci;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod remote;
pub mod store;
pub mod unpack;

pub use auth::RegistryConfig;
pub use error::{Result, TransferError};
pub use progress::{BlobProgress, BlobStatus, Progress};
pub use pull::{PullRequest, Pulled};

use crate::content::LocalStore;
use crate::diff::Differ;
use crate::metadata::Db;
use crate::snapshots::Snapshotters;

/// The namespace label naming its default snapshotter.
pub const DEFAULT_SNAPSHOTTER_LABEL: &str = "containerd.io/defaults/snapshotter";
/// The snapshotter used when neither the request nor the namespace names one.
pub const DEFAULT_SNAPSHOTTER: &str = crate::snapshots::DEFAULT_SNAPSHOTTER;

/// The transfer domain: what pulls, pushes, imports and exports work with.
#[derive(Clone)]
pub struct Transfer {
    content: LocalStore,
    db: Db,
    snapshots: Snapshotters,
    differ: Differ,
    registry: RegistryConfig,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer").finish_non_exhaustive()
    }
}

impl Transfer {
    pub fn new(
        content: LocalStore,
        db: Db,
        snapshots: Snapshotters,
        differ: Differ,
        registry: RegistryConfig,
    ) -> Self {
        install_crypto_provider();
        Self {
            content,
            db,
            snapshots,
            differ,
            registry,
        }
    }

    /// The snapshotter to unpack into: the request's, the namespace's default, overlayfs.
    pub async fn snapshotter_for(&self, ns: &str, requested: &str) -> Result<String> {
        if !requested.is_empty() {
            return Ok(requested.to_owned());
        }
        let (db, ns2) = (self.db.clone(), ns.to_owned());
        let found = store::blocking(move || db.namespaces().get(&ns2))
            .await
            .map_err(TransferError::metadata(format!("namespace {ns}")))?;
        Ok(found
            .and_then(|n| n.labels.get(DEFAULT_SNAPSHOTTER_LABEL).cloned())
            .unwrap_or_else(|| DEFAULT_SNAPSHOTTER.to_owned()))
    }
}

/// Installs rustls' ring provider for the registry client (once per process; the HTTP
/// client panics without one). Later calls are no-ops.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::ring::default_provider()
            .install_default()
            .is_err()
        {
            tracing::debug!("a rustls crypto provider was already installed");
        }
    });
}

#[cfg(test)]
mod tests;
