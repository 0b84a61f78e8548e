//! The Diff domain: apply a layer blob from the content store onto mounts, and compute a
//! layer from two mount sets into the content store (containerd's walking differ and
//! applier).
//!
//! Apply reads the blob (namespace-scoped) and unpacks it with
//! `berth_snapshotter::layer::apply` on a blocking thread; the compression comes from
//! the media type (`+gzip`, `+zstd`, Docker's `.tar.gzip`, plain tar) and, in the end,
//! the stream's magic bytes. Where it writes is [`plan::plan_apply`]: a single overlay
//! mount's `upperdir` (overlay whiteouts), a single bind mount's source (whiteouts
//! delete), or everything mounted on a temporary directory under `<root>/tmpmounts`
//! (whiteouts delete; unmounted by a guard, even on error).
//!
//! ```text
//! <root>/tmpmounts/
//! ├── apply-<nanos>-<seq>/     a temporary mount point (Apply of a mount set)
//! ├── left-… / right-…         temporary mount points (Diff)
//! └── diff-<nanos>-<seq>       a layer being written before it enters the content store
//! ```

mod error;
pub mod plan;
mod tmp;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::PathBuf;

use berth_snapshotter::layer::{self, DiffCompression, WhiteoutMode};
use berth_snapshotter::{Mount, MountGuard};

pub use error::DiffError;
pub use plan::{ApplyPlan, plan_apply};
pub use tmp::TMP_DIR;

use crate::content::{ContentStore, ContentWriter, Digest, LocalStore, WriterOpts};
use tmp::TempPath;

/// The label holding a compressed blob's uncompressed digest (its diff_id).
pub const LABEL_UNCOMPRESSED: &str = "containerd.io/uncompressed";

/// Media type of a gzip layer (what Diff writes unless asked otherwise).
pub use berth_snapshotter::layer::{MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP};

/// Bytes per content write while storing a computed layer.
const WRITE_CHUNK: usize = 1 << 20;

/// A blob as a descriptor (containerd's `Descriptor` without annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// What Diff.Diff is asked for.
#[derive(Debug, Clone, Default)]
pub struct DiffRequest {
    pub left: Vec<Mount>,
    pub right: Vec<Mount>,
    /// Empty: gzip.
    pub media_type: String,
    /// The content ref to write under; empty: one is made up.
    pub reference: String,
    pub labels: BTreeMap<String, String>,
    pub lease: Option<String>,
}

/// The differ and applier. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Differ {
    content: LocalStore,
    tmp: PathBuf,
}

impl Differ {
    /// A differ over `content`, with temporary mounts under `<daemon_root>/tmpmounts`
    /// (cleared of what a crash left).
    pub fn open(daemon_root: &std::path::Path, content: LocalStore) -> Result<Self, DiffError> {
        Ok(Self {
            content,
            tmp: tmp::prepare_tmp_root(daemon_root)?,
        })
    }

    /// Apply blob `desc` of namespace `ns` onto `mounts`; returns the uncompressed
    /// layer's descriptor (`…layer.v1.tar`, its diff_id, its size).
    pub async fn apply(
        &self,
        ns: &str,
        desc: &Blob,
        mounts: Vec<Mount>,
    ) -> Result<Blob, DiffError> {
        let digest = Digest::parse(&desc.digest)?;
        let plan = plan_apply(&mounts)?;
        let reader = self.content.reader(ns, &digest).await?;
        let file = reader.to_std()?;
        let media_type = desc.media_type.clone();
        let tmp = self.tmp.clone();
        let name = desc.digest.clone();
        let applied = tokio::task::spawn_blocking(move || {
            apply_blocking(file, &media_type, &name, &plan, &mounts, &tmp)
        })
        .await
        .map_err(DiffError::Join)??;
        Ok(Blob {
            media_type: MEDIA_TYPE_LAYER.to_owned(),
            digest: applied.digest,
            size: applied.size,
        })
    }

    /// Compute the layer that turns `left` into `right`, store it in namespace `ns` and
    /// return its descriptor. The blob is labelled `containerd.io/uncompressed`.
    pub async fn diff(&self, ns: &str, req: DiffRequest) -> Result<Blob, DiffError> {
        let media_type = if req.media_type.is_empty() {
            MEDIA_TYPE_LAYER_GZIP.to_owned()
        } else {
            req.media_type.clone()
        };
        let compression = match media_type.rsplit_once('+').map(|(_, c)| c) {
            None => DiffCompression::None,
            Some("gzip") => DiffCompression::Gzip,
            Some(_) => return Err(DiffError::UnsupportedMediaType { media_type }),
        };
        if req.right.is_empty() {
            return Err(DiffError::mounts("right mounts must not be empty"));
        }
        let out = TempPath::file(&self.tmp, "diff");
        let tmp = self.tmp.clone();
        let (left, right, out_path) = (req.left, req.right, out.path().to_owned());
        let diffed = tokio::task::spawn_blocking(move || {
            diff_blocking(&left, &right, &out_path, compression, &tmp)
        })
        .await
        .map_err(DiffError::Join)??;

        let reference = if req.reference.is_empty() {
            format!("diff-{}", diffed.digest)
        } else {
            req.reference
        };
        let digest = Digest::parse(&diffed.digest)?;
        let mut labels = req.labels;
        labels.insert(LABEL_UNCOMPRESSED.to_owned(), diffed.diff_id.clone());
        let opts = WriterOpts {
            reference,
            total: diffed.size,
            expected: Some(digest.clone()),
            lease: req.lease,
        };
        match self.content.writer(ns, opts).await {
            Ok(mut w) => {
                let mut file = File::open(out.path()).map_err(DiffError::io("open", out.path()))?;
                let mut offset = w.status().offset;
                if offset != 0 {
                    offset = w.write_at(0, Vec::new()).await?;
                }
                loop {
                    let (chunk, f) = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0; WRITE_CHUNK];
                        let n = file.read(&mut buf)?;
                        buf.truncate(n);
                        Ok::<_, std::io::Error>((buf, file))
                    })
                    .await
                    .map_err(DiffError::Join)?
                    .map_err(DiffError::io("read", out.path()))?;
                    file = f;
                    if chunk.is_empty() {
                        break;
                    }
                    offset = w.write_at(offset, chunk).await?;
                }
                match w.commit(diffed.size, Some(digest), labels).await {
                    Ok(_) => {}
                    Err(e) if e.is_already_exists() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Blob {
            media_type,
            digest: diffed.digest,
            size: diffed.size,
        })
    }
}

fn apply_blocking(
    file: File,
    media_type: &str,
    name: &str,
    plan: &ApplyPlan,
    mounts: &[Mount],
    tmp: &std::path::Path,
) -> Result<layer::Applied, DiffError> {
    let err = |source| DiffError::Apply {
        digest: name.to_owned(),
        source,
    };
    match plan {
        ApplyPlan::Direct { dir, mode } => layer::apply(file, media_type, dir, *mode).map_err(err),
        ApplyPlan::Mount => {
            let target = TempPath::dir(tmp, "apply")?;
            let guard = MountGuard::mount(mounts, target.path()).map_err(DiffError::Mount)?;
            let res = layer::apply(file, media_type, guard.target(), WhiteoutMode::Delete);
            drop(guard);
            res.map_err(err)
        }
    }
}

fn diff_blocking(
    left: &[Mount],
    right: &[Mount],
    out: &std::path::Path,
    compression: DiffCompression,
    tmp: &std::path::Path,
) -> Result<layer::Diffed, DiffError> {
    // Keep temp dirs declared before guards so guards (unmount) drop first.
    let mut dirs = Vec::new();
    let mut guards = Vec::new();
    let mut tree = |mounts: &[Mount], prefix: &str| -> Result<PathBuf, DiffError> {
        if let Some(dir) = plan::direct_tree(mounts) {
            return Ok(dir);
        }
        let dir = TempPath::dir(tmp, prefix)?;
        if !mounts.is_empty() {
            let ro: Vec<Mount> = mounts.iter().cloned().map(read_only).collect();
            guards.push(MountGuard::mount(&ro, dir.path()).map_err(DiffError::Mount)?);
        }
        let path = dir.path().to_owned();
        dirs.push(dir);
        Ok(path)
    };
    let lower = tree(left, "left")?;
    let upper = tree(right, "right")?;
    let file = File::create(out).map_err(DiffError::io("create", out))?;
    let res = layer::diff(&lower, &upper, BufWriter::new(file), compression);
    drop(guards);
    drop(dirs);
    res.map_err(DiffError::Diff)
}

/// The same mount, read-only (a diff never writes its inputs).
fn read_only(mut m: Mount) -> Mount {
    if m.fs_type == "overlay" {
        // An overlay without upper/work is read-only by construction.
        let mut lowers: Vec<String> = Vec::new();
        let mut options = Vec::new();
        for o in m.options {
            if let Some(u) = o.strip_prefix("upperdir=") {
                lowers.insert(0, u.to_owned());
            } else if let Some(l) = o.strip_prefix("lowerdir=") {
                lowers.extend(l.split(':').map(str::to_owned));
            } else if !o.starts_with("workdir=") {
                options.push(o);
            }
        }
        options.push(format!("lowerdir={}", lowers.join(":")));
        m.options = options;
    } else {
        m.options.retain(|o| o != "rw");
        if !m.options.iter().any(|o| o == "ro") {
            m.options.push("ro".to_owned());
        }
    }
    m
}

#[cfg(test)]
mod tests;
