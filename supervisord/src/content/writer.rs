//! [`LocalWriter`]: one writer session of [`LocalStore`], holding its ref for its lifetime.

use std::io::Read;
use std::time::SystemTime;

use super::ContentWriter;
use super::WriterOpts;
use super::digest::Digest;
use super::error::{ContentError, Result};
use super::ingest::{self, Ingest};
use super::local::LocalStore;
use super::locks::RefLockGuard;
use super::types::{Info, Labels, Status, validate_labels};
use crate::metadata::content::CommitOutcome;

const COPY_BUF: usize = 1 << 20;

/// Where a writer's bytes are.
#[derive(Debug)]
pub(super) enum WriterState {
    /// Linking a blob already on disk: no bytes written, offset = its size.
    Shared {
        digest: Digest,
        size: u64,
        started_at: SystemTime,
    },
    /// Writing into an ingest.
    Active(Box<Ingest>),
    /// A blocking step failed mid-way; the writer refuses further use.
    Broken,
}

/// A writer on one ref of one namespace. Dropping it releases the ref; the ingest stays
/// on disk and a later writer of the same ref resumes it.
#[derive(Debug)]
pub struct LocalWriter {
    store: LocalStore,
    ns: String,
    opts: WriterOpts,
    backend_ref: String,
    state: WriterState,
    _lock: RefLockGuard,
}

impl LocalWriter {
    pub(super) fn new(
        store: LocalStore,
        ns: String,
        opts: WriterOpts,
        backend_ref: String,
        state: WriterState,
        lock: RefLockGuard,
    ) -> Self {
        Self {
            store,
            ns,
            opts,
            backend_ref,
            state,
            _lock: lock,
        }
    }

    fn broken(&self) -> ContentError {
        ContentError::WriterBroken {
            reference: self.opts.reference.clone(),
        }
    }

    /// Run `f` on the state on a blocking thread; the state comes back unless it panics.
    async fn with_state<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut WriterState, &LocalStore, &str, &str, &WriterOpts) -> Result<T>
        + Send
        + 'static,
    ) -> Result<T> {
        let mut state = std::mem::replace(&mut self.state, WriterState::Broken);
        if matches!(state, WriterState::Broken) {
            return Err(self.broken());
        }
        let (store, ns, backend_ref, opts) = (
            self.store.clone(),
            self.ns.clone(),
            self.backend_ref.clone(),
            self.opts.clone(),
        );
        let (state, out) = tokio::task::spawn_blocking(move || {
            let out = f(&mut state, &store, &ns, &backend_ref, &opts);
            (state, out)
        })
        .await
        .map_err(ContentError::Join)?;
        self.state = state;
        out
    }
}

/// Turn a linking writer into a real ingest holding the blob's first `keep` bytes.
fn unshare(
    state: &mut WriterState,
    store: &LocalStore,
    ns: &str,
    backend_ref: &str,
    opts: &WriterOpts,
    keep: u64,
) -> Result<()> {
    let WriterState::Shared { digest, .. } = state else {
        return Ok(());
    };
    let digest = digest.clone();
    store
        .inner()
        .db
        .content(ns)
        .set_ingest_shared(&opts.reference, None)?;
    let mut ingest = Ingest::open(
        store.layout(),
        backend_ref,
        opts.total,
        opts.expected.as_ref(),
    )?;
    ingest.truncate()?;
    if keep > 0 {
        let path = store.layout().blob_path(&digest);
        let mut blob = store.layout().open_blob(&digest)?.take(keep);
        let mut buf = vec![0; COPY_BUF];
        loop {
            let n = blob.read(&mut buf).map_err(ContentError::io(&path))?;
            if n == 0 {
                break;
            }
            ingest.append(&buf[..n])?;
        }
    }
    *state = WriterState::Active(Box::new(ingest));
    Ok(())
}

impl ContentWriter for LocalWriter {
    fn status(&self) -> Status {
        let (offset, total, expected, started_at, updated_at) = match &self.state {
            WriterState::Shared {
                digest,
                size,
                started_at,
            } => (*size, *size, Some(digest.clone()), *started_at, *started_at),
            WriterState::Active(ingest) => {
                let st = ingest.status();
                (
                    st.offset,
                    st.total,
                    st.expected,
                    st.started_at,
                    st.updated_at,
                )
            }
            WriterState::Broken => (0, 0, None, SystemTime::now(), SystemTime::now()),
        };
        Status {
            reference: self.opts.reference.clone(),
            offset,
            total,
            expected,
            started_at,
            updated_at,
        }
    }

    fn digest(&self) -> Option<Digest> {
        match &self.state {
            WriterState::Shared { digest, .. } => Some(digest.clone()),
            WriterState::Active(ingest) => Some(ingest.digest()),
            WriterState::Broken => None,
        }
    }

    async fn write_at(&mut self, offset: u64, data: Vec<u8>) -> Result<u64> {
        let current = self.status().offset;
        if offset > 0 && offset != current {
            return Err(ContentError::OffsetMismatch {
                reference: self.opts.reference.clone(),
                offset,
                current,
            });
        }
        let truncate = offset == 0 && current > 0;
        if !truncate && data.is_empty() {
            return Ok(current);
        }
        self.with_state(move |state, store, ns, backend_ref, opts| {
            if matches!(state, WriterState::Shared { .. }) {
                let keep = if truncate { 0 } else { current };
                unshare(state, store, ns, backend_ref, opts, keep)?;
            }
            let WriterState::Active(ingest) = state else {
                return Err(ContentError::WriterBroken {
                    reference: opts.reference.clone(),
                });
            };
            if truncate {
                ingest.truncate()?;
            }
            ingest.append(&data)
        })
        .await
    }

    async fn commit(mut self, size: u64, expected: Option<Digest>, labels: Labels) -> Result<Info> {
        validate_labels(&labels)?;
        self.with_state(move |state, store, ns, backend_ref, opts| {
            let state = std::mem::replace(state, WriterState::Broken);
            let inner = store.inner();
            let _link = inner.link_lock();
            let (digest, size) = match state {
                WriterState::Shared {
                    digest, size: have, ..
                } => {
                    if size > 0 && size != have {
                        return Err(ContentError::SizeMismatch {
                            reference: opts.reference.clone(),
                            expected: size,
                            actual: have,
                        });
                    }
                    if let Some(e) = expected.as_ref().filter(|e| **e != digest) {
                        return Err(ContentError::DigestMismatch {
                            reference: opts.reference.clone(),
                            expected: e.to_string(),
                            actual: digest.to_string(),
                        });
                    }
                    if inner.layout.blob_size(&digest)?.is_none() {
                        return Err(ContentError::NotFound {
                            digest: digest.to_string(),
                        });
                    }
                    // A partial ingest of this ref from before the blob arrived.
                    ingest::remove(&inner.layout, backend_ref)?;
                    (digest, have)
                }
                WriterState::Active(ingest) => {
                    let done =
                        ingest.commit(&inner.layout, &opts.reference, size, expected.as_ref())?;
                    (done.digest, done.size)
                }
                WriterState::Broken => {
                    return Err(ContentError::WriterBroken {
                        reference: opts.reference.clone(),
                    });
                }
            };
            let outcome = inner.db.content(ns).commit(
                &opts.reference,
                digest.as_str(),
                size,
                labels,
                opts.lease.as_deref(),
            )?;
            match outcome {
                CommitOutcome::Created(rec) => Ok(Info {
                    digest,
                    size: rec.size,
                    created_at: rec.created_at,
                    updated_at: rec.updated_at,
                    labels: rec.labels,
                }),
                CommitOutcome::AlreadyExists => Err(ContentError::AlreadyExists {
                    digest: digest.to_string(),
                }),
            }
        })
        .await
    }
}
