//! The local side of a transfer: blobs into the content store (with containerd's
//! labels), the pull lease, and the image record.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::content::{
    ContentError, ContentStore, ContentWriter, Digest, Labels, LocalStore, WriterOpts,
};
use crate::metadata::{self, Db};

use super::error::{Result, TransferError};
use super::labels::{self, GC_EXPIRE};
use super::oci::Descriptor;

/// How long a transfer's lease protects its objects if berthd dies mid-way.
pub const LEASE_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// How long to wait for an ingest ref another writer holds.
const REF_BUSY_RETRIES: u32 = 200;
const REF_BUSY_PAUSE: Duration = Duration::from_millis(50);

/// The deterministic ingest ref of a blob, as ctr names them: `<kind>-sha256:<hex>`.
pub fn ingest_ref(kind: &str, digest: &str) -> String {
    format!("{kind}-{digest}")
}

pub(crate) fn parse_digest(d: &str) -> Result<Digest> {
    Digest::parse(d).map_err(TransferError::content(format!("digest {d:?}")))
}

/// Opens the writer of `reference`, waiting while another writer holds it.
/// `Ok(None)`: the namespace has the blob already.
pub async fn open_writer(
    content: &LocalStore,
    ns: &str,
    opts: WriterOpts,
) -> Result<Option<<LocalStore as ContentStore>::Writer>> {
    let mut tries = 0;
    loop {
        match content.writer(ns, opts.clone()).await {
            Ok(w) => return Ok(Some(w)),
            Err(e) if e.is_already_exists() => return Ok(None),
            Err(ContentError::Locked { .. }) if tries < REF_BUSY_RETRIES => {
                tries += 1;
                tokio::time::sleep(REF_BUSY_PAUSE).await;
            }
            Err(e) => {
                return Err(TransferError::content(format!(
                    "open ingest {}",
                    opts.reference
                ))(e));
            }
        }
    }
}

/// Merges `labels` into a stored blob's labels (per-label update paths).
pub async fn merge_labels(
    content: &LocalStore,
    ns: &str,
    digest: &str,
    labels: Labels,
) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let paths = labels::paths(&labels);
    content
        .update(ns, &parse_digest(digest)?, labels, paths)
        .await
        .map_err(TransferError::content(format!("label {digest}")))?;
    Ok(())
}

/// The current value of a label of a stored blob, if any.
pub async fn label_of(
    content: &LocalStore,
    ns: &str,
    digest: &str,
    key: &str,
) -> Result<Option<String>> {
    match content.info(ns, &parse_digest(digest)?).await {
        Ok(info) => Ok(info.labels.get(key).cloned()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(TransferError::content(format!("info {digest}"))(e)),
    }
}

/// Stores a small blob held in memory (index, manifest, config) with `labels`; when the
/// namespace has it already, merges the labels instead. Verified at commit.
pub async fn put_small_blob(
    content: &LocalStore,
    ns: &str,
    lease: Option<&str>,
    kind: &str,
    desc: &Descriptor,
    data: Vec<u8>,
    labels: Labels,
) -> Result<bool> {
    let digest = parse_digest(&desc.digest)?;
    let size = data.len() as u64;
    let opts = WriterOpts {
        reference: ingest_ref(kind, &desc.digest),
        total: size,
        expected: Some(digest.clone()),
        lease: lease.map(str::to_owned),
    };
    let Some(mut w) = open_writer(content, ns, opts).await? else {
        merge_labels(content, ns, &desc.digest, labels).await?;
        return Ok(false);
    };
    let what = || format!("write {}", desc.digest);
    let linked = w.status().offset == size && w.digest().as_ref() == Some(&digest);
    if !linked {
        w.write_at(0, data)
            .await
            .map_err(TransferError::content(what()))?;
    }
    match w.commit(size, Some(digest), labels.clone()).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_already_exists() => {
            merge_labels(content, ns, &desc.digest, labels).await?;
            Ok(false)
        }
        Err(e) => Err(TransferError::content(format!("commit {}", desc.digest))(e)),
    }
}

/// A lease held for the length of a transfer; [`TransferLease::release`] deletes it.
#[derive(Debug)]
pub struct TransferLease {
    db: Db,
    ns: String,
    pub id: String,
}

impl TransferLease {
    /// Creates `berth-<what>-<nanos>` expiring in [`LEASE_EXPIRY`].
    pub async fn create(db: &Db, ns: &str, what: &str) -> Result<Self> {
        let now = SystemTime::now();
        let nanos = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let id = format!("berth-{what}-{nanos}");
        let mut labels = metadata::Labels::new();
        labels.insert(
            GC_EXPIRE.into(),
            humantime::format_rfc3339_seconds(now + LEASE_EXPIRY).to_string(),
        );
        let (db2, ns2, id2) = (db.clone(), ns.to_owned(), id.clone());
        blocking(move || db2.leases(&ns2).create(&id2, &labels))
            .await
            .map_err(TransferError::metadata(format!("create lease {id}")))?;
        Ok(Self {
            db: db.clone(),
            ns: ns.to_owned(),
            id,
        })
    }

    /// Deletes the lease: what it protected is now reachable only from the image (or
    /// collectable).
    pub async fn release(self) {
        let (db, ns, id) = (self.db, self.ns, self.id);
        let id2 = id.clone();
        if let Err(error) = blocking(move || db.leases(&ns).delete(&id2)).await {
            tracing::warn!(lease = %id, %error, "cannot delete transfer lease");
        }
    }
}

/// Creates the image record, or replaces the target and labels of an existing one.
pub async fn put_image(
    db: &Db,
    ns: &str,
    name: &str,
    target: &Descriptor,
    labels: metadata::Labels,
) -> Result<metadata::Image> {
    let img = metadata::Image::new(
        name,
        metadata::Descriptor {
            media_type: target.media_type.clone(),
            digest: target.digest.clone(),
            size: target.size,
            annotations: metadata::Labels::new(),
        },
        labels,
    );
    let images = db.images(ns);
    blocking(move || match images.create(&img, None) {
        Err(metadata::Error::AlreadyExists { .. }) => images.update(&img, &[]),
        other => other,
    })
    .await
    .map_err(TransferError::metadata(format!("record image {name}")))
}

/// Runs a blocking metadata call off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, metadata::Error> + Send + 'static,
) -> Result<T, metadata::Error> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(metadata::Error::FailedPrecondition(format!(
            "task failed: {e}"
        )))
    })
}
