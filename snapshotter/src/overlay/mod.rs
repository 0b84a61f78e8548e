//! The overlayfs snapshotter: each snapshot holds only its own layer.
//!
//! ```text
//! <root>/                          e.g. /var/lib/berth/io.containerd.snapshotter.v1.overlayfs
//!   metadata.redb                  the metastore (crate::metastore)
//!   overlay-probed                 boot id of the last successful overlay probe
//!   snapshots/
//!     <id>/fs                      the layer: upperdir while active, a lowerdir after commit
//!     <id>/work                    overlayfs workdir (active snapshots only)
//!     new-<pid>-<ns>-<n>/          being created (renamed to <id> in the commit)
//!     rm-<id>/                     being removed
//! ```
//!
//! Mounts, as containerd's overlayfs snapshotter returns them:
//! - no parent → `bind` of `<id>/fs`, `rw` (active) or `ro` (view), `rbind`;
//! - a view with exactly one parent → `ro` `bind` of the parent's `fs`;
//! - otherwise `overlay` with `lowerdir` = the ancestors' `fs`, nearest first, plus
//!   `upperdir`/`workdir` for active snapshots (`index=off` when the kernel has it).
//!
//! Paths are `<root>/snapshots/<numeric id>/fs`: short, and all under one directory, so
//! a client that meets the one-page limit of mount data (deep images) can mount them
//! relative to `<root>/snapshots` as containerd's `mount.All` and [`crate::mount_all`]
//! do. Overlay support is probed when the snapshotter opens, once per boot
//! (`overlay-probed`; the probe's mount and unmount are slow on a busy host).

mod probe;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

pub use probe::{
    PROBED_FILE, check_overlay_support, check_overlay_support_once_per_boot, overlay_supported,
};

use crate::engine::{Backend, Engine, FS_DIR, Layout, WORK_DIR, create_private_dir};
use crate::error::{Error, Result};
use crate::mount::Mount;
use crate::snapshotter::Kind;

/// The directory name containerd gives this snapshotter under its root.
pub const OVERLAY_ROOT_NAME: &str = "io.containerd.snapshotter.v1.overlayfs";

/// The overlayfs snapshotter.
pub struct Overlay {
    engine: Engine<OverlayBackend>,
}

impl Overlay {
    /// Opens (or creates) an overlay snapshotter at `root`. Fails with a
    /// FailedPrecondition error when overlayfs cannot be mounted there.
    pub fn open(root: &Path) -> Result<Self> {
        create_private_dir(root)?;
        check_overlay_support_once_per_boot(root)?;
        let backend = OverlayBackend {
            index_off: Path::new("/sys/module/overlay/parameters/index").exists(),
        };
        Ok(Overlay {
            engine: Engine::open(root, backend)?,
        })
    }
}

crate::engine::delegate_snapshotter!(Overlay);

pub(crate) struct OverlayBackend {
    /// Add `index=off` (as containerd does when the kernel knows the option).
    index_off: bool,
}

impl Backend for OverlayBackend {
    fn populate(&self, dir: &Path, kind: Kind, parent_fs: Option<&Path>) -> Result<()> {
        let fs_dir = dir.join(FS_DIR);
        fs::create_dir(&fs_dir).map_err(Error::io("create", &fs_dir))?;
        if kind == Kind::Active {
            let work = dir.join(WORK_DIR);
            fs::create_dir(&work).map_err(Error::io("create", &work))?;
        }
        // The merged root directory takes its owner and mode from the upper directory.
        if let Some(parent) = parent_fs {
            let meta = fs::metadata(parent).map_err(Error::io("stat", parent))?;
            std::os::unix::fs::chown(&fs_dir, Some(meta.uid()), Some(meta.gid()))
                .map_err(Error::io("chown", &fs_dir))?;
            let mode = fs::Permissions::from_mode(meta.mode() & 0o7777);
            fs::set_permissions(&fs_dir, mode).map_err(Error::io("chmod", &fs_dir))?;
        }
        Ok(())
    }

    fn mounts(&self, layout: &Layout, id: u64, kind: Kind, parent_ids: &[u64]) -> Vec<Mount> {
        overlay_mounts(layout, id, kind, parent_ids, self.index_off)
    }
}

fn overlay_mounts(
    layout: &Layout,
    id: u64,
    kind: Kind,
    parent_ids: &[u64],
    index_off: bool,
) -> Vec<Mount> {
    match (kind, parent_ids) {
        (_, []) => vec![Mount::bind(&layout.fs(id), kind == Kind::View)],
        (Kind::View, [only]) => vec![Mount::bind(&layout.fs(*only), true)],
        _ => {
            let mut options = Vec::new();
            if index_off {
                options.push("index=off".to_owned());
            }
            if kind == Kind::Active {
                options.push(format!("workdir={}", layout.work(id).display()));
                options.push(format!("upperdir={}", layout.fs(id).display()));
            }
            let lower: Vec<String> = parent_ids
                .iter()
                .map(|p| layout.fs(*p).display().to_string())
                .collect();
            options.push(format!("lowerdir={}", lower.join(":")));
            vec![Mount {
                fs_type: "overlay".to_owned(),
                source: "overlay".to_owned(),
                target: None,
                options,
            }]
        }
    }
}

#[cfg(test)]
mod tests;
