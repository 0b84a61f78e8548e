//! [`LocalStore`]: the content store on the local disk, namespaced through the metadata
//! records (`metadata::content`).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use super::blobs::{BlobReader, Layout};
use super::digest::Digest;
use super::error::{ContentError, Result};
use super::ingest::{self, Ingest};
use super::locks::RefLocks;
use super::types::{Info, Labels, Status, apply_label_update};
use super::writer::{LocalWriter, WriterState};
use super::{ContentStore, WriterOpts};
use crate::filters::Filter;
use crate::metadata::content::{BlobRecord, IngestRecord, SharedBlob};
use crate::metadata::{self, Db};

/// The local content store: blobs and ingests under the daemon root, visibility per
/// namespace through metadata records. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) layout: Layout,
    pub(super) db: Db,
    locks: RefLocks,
    /// Held while a blob file and its records change together (commit, delete, GC), so a
    /// blob is never unlinked between "it is on disk" and "a record names it".
    link_lock: Mutex<()>,
}

impl Inner {
    pub(super) fn link_lock(&self) -> MutexGuard<'_, ()> {
        self.link_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl LocalStore {
    /// Open (creating directories) the store under `daemon_root`, with records in `db`.
    pub fn open(daemon_root: &Path, db: Db) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                layout: Layout::create(daemon_root)?,
                db,
                locks: RefLocks::default(),
                link_lock: Mutex::new(()),
            }),
        })
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The on-disk paths.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// Run `f` right here: for point reads (one record, one small file open), which
    /// cost less than the hop to the blocking pool (see `services::point_read`).
    fn now<T>(&self, f: impl FnOnce(&Inner) -> Result<T>) -> Result<T> {
        f(&self.inner)
    }

    /// Run `f` on a blocking thread with the store.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(ContentError::Join)?
    }

    /// Every blob file on disk with its size, in every namespace (for GC).
    pub async fn disk_blobs(&self) -> Result<Vec<(Digest, u64)>> {
        self.blocking(|s| s.layout.walk_blobs()).await
    }

    /// Remove the blob file of `digest` if no namespace references it any more (GC);
    /// `true` when a file was removed.
    pub async fn remove_blob_if_unreferenced(&self, digest: &Digest) -> Result<bool> {
        let digest = digest.clone();
        self.blocking(move |s| {
            let _link = s.link_lock();
            if s.db.content_blob_referenced(digest.as_str())? {
                return Ok(false);
            }
            s.layout.remove_blob(&digest)
        })
        .await
    }

    /// Remove every blob file that no namespace references (left by a crash between the
    /// rename and the record, or by an interrupted delete); returns how many. For GC at
    /// start; commits wait for it.
    pub async fn remove_orphan_blobs(&self) -> Result<usize> {
        self.blocking(|s| {
            let _link = s.link_lock();
            let live = s.db.content_referenced_digests()?;
            let mut removed = 0;
            for (digest, _) in s.layout.walk_blobs()? {
                if !live.contains(digest.as_str()) && s.layout.remove_blob(&digest)? {
                    tracing::info!(%digest, "removed unreferenced blob");
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }

    /// Remove ingest directories that no record names and no writer holds (left by a
    /// crash or an abort race); returns how many were removed.
    pub async fn remove_stray_ingests(&self) -> Result<usize> {
        self.blocking(|s| {
            // Directories first, records second: a writer records its ingest before it
            // creates the directory, and removes the directory before the record, so a
            // directory no record names *after* the listing is stray (even one so new
            // that its `ref` file is not written yet is named by a record already).
            let dirs = ingest::list(&s.layout)?;
            let live: std::collections::HashSet<_> =
                s.db.content_ingest_backend_refs()?
                    .iter()
                    .map(|r| s.layout.ingest_dir(r))
                    .collect();
            let mut removed = 0;
            for dir in dirs {
                if !live.contains(&dir) {
                    ingest::remove_ingest_dir(&dir)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }
}

/// The ref lock of `reference` in namespace `ns` (a namespace never contains '/').
fn lock_key(ns: &str, reference: &str) -> String {
    format!("{ns}/{reference}")
}

fn info_of(digest: Digest, rec: BlobRecord) -> Info {
    Info {
        digest,
        size: rec.size,
        created_at: rec.created_at,
        updated_at: rec.updated_at,
        labels: rec.labels,
    }
}

fn not_found(digest: &Digest) -> ContentError {
    ContentError::NotFound {
        digest: digest.to_string(),
    }
}

/// Status of `reference` from its record and the files on disk.
fn status_of(s: &Inner, reference: &str, rec: &IngestRecord) -> Result<Status> {
    if let Some(shared) = &rec.shared {
        let now = SystemTime::now();
        return Ok(Status {
            reference: reference.to_owned(),
            offset: shared.size,
            total: shared.size,
            expected: Digest::parse(&shared.digest).ok(),
            started_at: now,
            updated_at: now,
        });
    }
    let dir = s.layout.ingest_dir(&rec.backend_ref);
    if !dir.exists() {
        return Err(ContentError::RefNotFound {
            reference: reference.to_owned(),
        });
    }
    let st = ingest::read_status(&dir)?;
    Ok(Status {
        reference: reference.to_owned(),
        offset: st.offset,
        total: st.total,
        expected: st.expected,
        started_at: st.started_at,
        updated_at: st.updated_at,
    })
}

impl ContentStore for LocalStore {
    type Writer = LocalWriter;

    async fn info(&self, ns: &str, digest: &Digest) -> Result<Info> {
        self.now(|s| {
            let rec = s.db.content(ns).get(digest.as_str())?;
            rec.map(|r| info_of(digest.clone(), r))
                .ok_or_else(|| not_found(digest))
        })
    }

    async fn update(
        &self,
        ns: &str,
        digest: &Digest,
        labels: Labels,
        paths: Vec<String>,
    ) -> Result<Info> {
        let (ns, digest) = (ns.to_owned(), digest.clone());
        self.blocking(move |s| {
            let mut refused = None;
            let rec = s.db.content(&ns).update(digest.as_str(), |rec| {
                apply_label_update(&digest, &mut rec.labels, &labels, &paths).map_err(|e| {
                    let msg = e.to_string();
                    refused = Some(e);
                    metadata::Error::InvalidArgument(msg)
                })
            });
            if let Some(e) = refused {
                return Err(e);
            }
            rec?.map(|r| info_of(digest.clone(), r))
                .ok_or_else(|| not_found(&digest))
        })
        .await
    }

    async fn list(&self, ns: &str, filter: Filter) -> Result<Vec<Info>> {
        let ns = ns.to_owned();
        self.blocking(move |s| {
            let mut out = Vec::new();
            for (d, rec) in s.db.content(&ns).list()? {
                let Ok(digest) = Digest::parse(&d) else {
                    continue;
                };
                let info = info_of(digest, rec);
                if filter.matches(&info) {
                    out.push(info);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete(&self, ns: &str, digest: &Digest) -> Result<()> {
        let (ns, digest) = (ns.to_owned(), digest.clone());
        self.blocking(move |s| {
            let _link = s.link_lock();
            match s.db.content(&ns).remove(digest.as_str())? {
                None => Err(not_found(&digest)),
                Some(true) => Ok(()),
                Some(false) => {
                    s.layout.remove_blob(&digest)?;
                    tracing::debug!(%digest, "last record gone; blob removed");
                    Ok(())
                }
            }
        })
        .await
    }

    async fn reader(&self, ns: &str, digest: &Digest) -> Result<BlobReader> {
        self.now(|s| {
            if s.db.content(ns).get(digest.as_str())?.is_none() {
                return Err(not_found(digest));
            }
            let file = s.layout.open_blob(digest)?;
            let path = s.layout.blob_path(digest);
            let size = file.metadata().map_err(ContentError::io(&path))?.len();
            Ok(BlobReader::new(digest.clone(), path, file, size))
        })
    }

    async fn status(&self, ns: &str, reference: &str) -> Result<Status> {
        let (ns, reference) = (ns.to_owned(), reference.to_owned());
        self.blocking(move |s| {
            // Never pull an ingest from under a live writer (GC relies on this too).
            let _lock = s.locks.try_lock(&lock_key(&ns, &reference), &reference)?;
            let rec =
                s.db.content(&ns)
                    .ingest(&reference)?
                    .ok_or_else(|| ContentError::RefNotFound {
                        reference: reference.clone(),
                    })?;
            status_of(s, &reference, &rec)
        })
        .await
    }

    async fn list_statuses(&self, ns: &str, filter: Filter) -> Result<Vec<Status>> {
        let ns = ns.to_owned();
        self.blocking(move |s| {
            let mut out = Vec::new();
            for (reference, rec) in s.db.content(&ns).ingests()? {
                match status_of(s, &reference, &rec) {
                    Ok(st) if filter.matches(&st) => out.push(st),
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn abort(&self, ns: &str, reference: &str) -> Result<()> {
        let (ns, reference) = (ns.to_owned(), reference.to_owned());
        self.blocking(move |s| {
            // Never pull an ingest from under a live writer (GC relies on this too).
            let _lock = s.locks.try_lock(&lock_key(&ns, &reference), &reference)?;
            let rec =
                s.db.content(&ns)
                    .remove_ingest(&reference)?
                    .ok_or_else(|| ContentError::RefNotFound {
                        reference: reference.clone(),
                    })?;
            ingest::remove(&s.layout, &rec.backend_ref)?;
            Ok(())
        })
        .await
    }

    async fn writer(&self, ns: &str, opts: WriterOpts) -> Result<LocalWriter> {
        if opts.reference.is_empty() {
            return Err(ContentError::EmptyRef);
        }
        let ns = ns.to_owned();
        let store = self.clone();
        self.blocking(move |s| {
            let lock = s
                .locks
                .try_lock(&lock_key(&ns, &opts.reference), &opts.reference)?;
            let records = s.db.content(&ns);
            // Linkable: the expected blob is on disk already (from another namespace).
            let shared = match &opts.expected {
                Some(d) => s
                    .layout
                    .blob_size(d)?
                    .filter(|size| opts.total == 0 || opts.total == *size)
                    .map(|size| SharedBlob {
                        digest: d.to_string(),
                        size,
                    }),
                None => None,
            };
            let rec = records
                .open_ingest(
                    &opts.reference,
                    opts.expected.as_ref().map(Digest::as_str),
                    shared.clone(),
                    opts.lease.as_deref(),
                )?
                .ok_or_else(|| ContentError::AlreadyExists {
                    digest: opts
                        .expected
                        .as_ref()
                        .map(Digest::to_string)
                        .unwrap_or_default(),
                })?;
            let state = match (shared, &opts.expected) {
                (Some(shared), Some(digest)) => WriterState::Shared {
                    digest: digest.clone(),
                    size: shared.size,
                    started_at: SystemTime::now(),
                },
                _ => WriterState::Active(Box::new(Ingest::open(
                    &s.layout,
                    &rec.backend_ref,
                    opts.total,
                    opts.expected.as_ref(),
                )?)),
            };
            Ok(LocalWriter::new(
                store,
                ns,
                opts,
                rec.backend_ref,
                state,
                lock,
            ))
        })
        .await
    }
}
