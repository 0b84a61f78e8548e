//! The native snapshotter: each snapshot is a full copy of its parent.
//!
//! ```text
//! <root>/                          e.g. /var/lib/berth/io.containerd.snapshotter.v1.native
//!   metadata.redb                  the metastore (crate::metastore)
//!   snapshots/
//!     <id>/fs                      the whole filesystem of the snapshot
//!     new-<pid>-<ns>-<n>/          being created (renamed to <id> in the commit)
//!     rm-<id>/                     being removed
//! ```
//!
//! Mounts are always one `bind` of `<id>/fs` with `rbind`, `rw` for active snapshots and
//! `ro` for views. Works on any filesystem; copying makes it slow for big images.

mod copy;

use std::fs;
use std::path::Path;

use crate::engine::{Backend, Engine, FS_DIR, Layout, create_private_dir};
use crate::error::{Error, Result};
use crate::mount::Mount;
use crate::snapshotter::Kind;

/// The directory name containerd gives this snapshotter under its root.
pub const NATIVE_ROOT_NAME: &str = "io.containerd.snapshotter.v1.native";

/// The native (copying) snapshotter.
pub struct Native {
    engine: Engine<NativeBackend>,
}

impl Native {
    /// Opens (or creates) a native snapshotter at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        create_private_dir(root)?;
        Ok(Native {
            engine: Engine::open(root, NativeBackend)?,
        })
    }
}

crate::engine::delegate_snapshotter!(Native);

pub(crate) struct NativeBackend;

impl Backend for NativeBackend {
    fn populate(&self, dir: &Path, _kind: Kind, parent_fs: Option<&Path>) -> Result<()> {
        let fs_dir = dir.join(FS_DIR);
        match parent_fs {
            Some(parent) => copy::copy_tree(parent, &fs_dir),
            None => fs::create_dir(&fs_dir).map_err(Error::io("create", &fs_dir)),
        }
    }

    fn mounts(&self, layout: &Layout, id: u64, kind: Kind, _parent_ids: &[u64]) -> Vec<Mount> {
        vec![Mount::bind(&layout.fs(id), kind == Kind::View)]
    }
}

#[cfg(test)]
mod tests;
