//! Opening a backend by containerd's snapshotter name.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::native::{NATIVE_ROOT_NAME, Native};
use crate::overlay::{OVERLAY_ROOT_NAME, Overlay};
use crate::snapshotter::Snapshotter;

/// containerd's name of the overlayfs snapshotter (what `ctr` asks for by default).
pub const OVERLAYFS: &str = "overlayfs";
/// containerd's name of the native snapshotter.
pub const NATIVE: &str = "native";

/// The root of snapshotter `name` under a daemon root, as containerd lays it out:
/// `<daemon_root>/io.containerd.snapshotter.v1.<name>`.
pub fn backend_root(daemon_root: &Path, name: &str) -> Result<PathBuf> {
    match name {
        OVERLAYFS => Ok(daemon_root.join(OVERLAY_ROOT_NAME)),
        NATIVE => Ok(daemon_root.join(NATIVE_ROOT_NAME)),
        _ => Err(Error::UnknownSnapshotter {
            name: name.to_owned(),
        }),
    }
}

/// Opens snapshotter `name` (`overlayfs` or `native`) under `daemon_root`. An unknown
/// name is InvalidArgument (containerd: "snapshotter not loaded"); overlayfs on a host
/// or root where it cannot mount is FailedPrecondition (callers may fall back to native).
pub fn open_named(daemon_root: &Path, name: &str) -> Result<Box<dyn Snapshotter>> {
    let root = backend_root(daemon_root, name)?;
    Ok(match name {
        OVERLAYFS => Box::new(Overlay::open(&root)?),
        _ => Box::new(Native::open(&root)?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // unwrap is fine in tests (house rule)
mod tests {
    use super::*;
    use crate::{ErrorKind, Labels};

    #[test]
    fn names_map_to_containerd_roots() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_named(dir.path(), NATIVE).unwrap();
        let m = s.prepare("k", "", Labels::new()).unwrap();
        let expected = dir
            .path()
            .join("io.containerd.snapshotter.v1.native/snapshots/1/fs");
        assert_eq!(m[0].source, expected.display().to_string());
        let err = open_named(dir.path(), "zfs").err().expect("unknown name");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(err.to_string(), "snapshotter not loaded: zfs");
    }

    #[test]
    fn overlayfs_opens_where_it_can_mount() {
        if !crate::conformance::have_root("overlayfs_opens_where_it_can_mount") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = open_named(dir.path(), OVERLAYFS).unwrap();
        s.prepare("k", "", Labels::new()).unwrap();
        assert!(
            dir.path()
                .join("io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs")
                .is_dir()
        );
    }
}
