//! The content store: blobs by digest, ingests by ref, visibility per namespace.
//!
//! [`ContentStore`] is the role (what the Content service, pull, Diff and GC call);
//! [`LocalStore`] is the backend. Blobs are stored once on disk and shared by every
//! namespace; a namespace sees a blob only through its record in `metadata::content`
//! (containerd's model). Writers are resumable: an ingest's bytes stay on disk until it is
//! committed or aborted, across writer sessions and daemon restarts.
//!
//! On disk, under the daemon root (names as containerd's, so the tree looks familiar):
//!
//! ```text
//! <root>/io.containerd.content.v1.content/
//! ├── blobs/
//! │   └── sha256/
//! │       └── <hex>                  committed blob, mode 0444, fsynced before the rename
//! └── ingest/
//!     └── <sha256 hex of backend ref>/   one in-progress write
//!         ├── data                   the bytes so far (offset = its length)
//!         ├── ref                    the backend ref: "<namespace>/<nanos>/<ref>"
//!         ├── startedat              unix nanoseconds, decimal
//!         ├── updatedat              unix nanoseconds (data's mtime wins if newer)
//!         ├── total                  expected size, when the writer gave one
//!         └── expected               expected digest, when the writer gave one
//! ```
//!
//! Commit = verify size and digest, fsync `data`, rename it to `blobs/sha256/<hex>`,
//! fsync `blobs/sha256`, remove the ingest directory, then record the blob for the
//! namespace. Delete removes the namespace's record and, when no namespace references
//! the blob any more, the file too (GC can do the same with
//! [`LocalStore::remove_blob_if_unreferenced`] and [`LocalStore::remove_stray_ingests`]).
//!
//! Errors and what they mean to a client (containerd's codes):
//! NotFound (no record in this namespace / no such ingest), AlreadyExists (the digest is
//! committed in this namespace: "have it"), Unavailable (another writer holds the ref:
//! retry), FailedPrecondition (size or digest mismatch at commit), InvalidArgument
//! (bad digest, empty ref, bad update path, write at a wrong offset), OutOfRange (read past
//! the end).

use std::future::Future;

mod blobs;
mod digest;
mod error;
mod ingest;
mod local;
mod locks;
mod types;
mod writer;

#[cfg(test)]
mod conformance;

pub use blobs::{BlobReader, CONTENT_DIR, Layout};
pub use digest::Digest;
pub use error::{ContentError, Result};
pub use local::LocalStore;
pub use types::{Info, Labels, MAX_LABEL_SIZE, Status, apply_label_update, validate_labels};
pub use writer::LocalWriter;

use crate::filters::Filter;

/// How to open a writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterOpts {
    /// The client's ref (e.g. `layer-sha256:<hex>`); must not be empty.
    pub reference: String,
    /// Expected total size; 0 = unknown.
    pub total: u64,
    /// Expected digest: if it is committed in the namespace the writer is refused with
    /// AlreadyExists; if it is on disk from another namespace the writer links it.
    pub expected: Option<Digest>,
    /// Lease (from `containerd-lease`) that the ingest and the committed blob join.
    pub lease: Option<String>,
}

/// The content store role. Every call is scoped to namespace `ns`. All methods are safe to
/// call concurrently; file I/O runs on blocking threads.
pub trait ContentStore: Clone + Send + Sync + 'static {
    type Writer: ContentWriter;

    /// The blob's info. NotFound when the namespace has no record of it.
    fn info(&self, ns: &str, digest: &Digest) -> impl Future<Output = Result<Info>> + Send;

    /// Change labels: no `paths` or `labels` replaces the map, `labels.<key>` sets one key
    /// (an empty or absent value removes it); other paths are InvalidArgument.
    fn update(
        &self,
        ns: &str,
        digest: &Digest,
        labels: Labels,
        paths: Vec<String>,
    ) -> impl Future<Output = Result<Info>> + Send;

    /// The namespace's blobs that match `filter` (fields `digest`, `size`, `labels.<k>`).
    fn list(&self, ns: &str, filter: Filter) -> impl Future<Output = Result<Vec<Info>>> + Send;

    /// Remove the namespace's record (NotFound without one); the file goes with the last.
    fn delete(&self, ns: &str, digest: &Digest) -> impl Future<Output = Result<()>> + Send;

    /// Open a visible blob for random-access reads.
    fn reader(&self, ns: &str, digest: &Digest) -> impl Future<Output = Result<BlobReader>> + Send;

    /// Status of the ingest `reference` (NotFound without one).
    fn status(&self, ns: &str, reference: &str) -> impl Future<Output = Result<Status>> + Send;

    /// The namespace's ingests that match `filter` (fields `ref`, `expected`).
    fn list_statuses(
        &self,
        ns: &str,
        filter: Filter,
    ) -> impl Future<Output = Result<Vec<Status>>> + Send;

    /// Drop the ingest `reference` and its bytes (NotFound without one; Unavailable
    /// while a writer holds it, so GC never pulls bytes from under a live writer).
    fn abort(&self, ns: &str, reference: &str) -> impl Future<Output = Result<()>> + Send;

    /// Open (or resume) the ingest `opts.reference`. Unavailable while another writer
    /// holds it; AlreadyExists when `opts.expected` is committed in the namespace.
    fn writer(
        &self,
        ns: &str,
        opts: WriterOpts,
    ) -> impl Future<Output = Result<Self::Writer>> + Send;
}

/// One writer session; dropping it releases the ref and keeps the bytes for a resume.
pub trait ContentWriter: Send + 'static {
    /// Where the ingest is: offset (= bytes written), total, times.
    fn status(&self) -> Status;

    /// Digest of the bytes so far (the expected digest for a linking writer).
    fn digest(&self) -> Option<Digest>;

    /// Write `data` at `offset`, which must be the current offset, or 0 to start over
    /// (truncate); any other offset is InvalidArgument. Returns the new offset.
    fn write_at(&mut self, offset: u64, data: Vec<u8>) -> impl Future<Output = Result<u64>> + Send;

    /// Verify `size` (0 = any) and `expected`, commit, record the blob with `labels`.
    /// AlreadyExists when the namespace already has it.
    fn commit(
        self,
        size: u64,
        expected: Option<Digest>,
        labels: Labels,
    ) -> impl Future<Output = Result<Info>> + Send;
}
