//! berth-snapshotter: containerd-style snapshotters and OCI layer apply.
//!
//! A plain synchronous library (no async, no protobuf types): berthd calls it from
//! `spawn_blocking` and maps [`ErrorKind`] to gRPC codes.
//!
//! - [`Snapshotter`]: the role, with containerd's semantics (documented on the trait).
//! - [`Overlay`] (overlayfs, layers stacked) and [`Native`] (full copies) backends; both
//!   keep their records in a redb metastore inside their root and lay it out as
//!   `<root>/metadata.redb` + `<root>/snapshots/<numeric id>/fs` (see [`overlay`] and
//!   [`native`] for the trees).
//! - [`open_named`]: a backend by containerd's name (`overlayfs`, `native`) under a
//!   daemon root, at `<root>/io.containerd.snapshotter.v1.<name>`.
//! - [`mount_all`] / [`unmount`] / [`MountGuard`]: perform the returned mounts.
//! - `conformance` (tests and feature `conformance`): the suite every backend runs.
//! - [`layer`]: OCI layer apply and diff.

mod engine;
mod error;
mod metastore;
mod mount;
mod named;
pub mod native;
pub mod overlay;
mod snapshotter;
mod usage;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub mod layer;

pub use error::{Error, ErrorKind, Result};
pub use mount::{
    FakeMounter, LinuxMounter, Mount, MountCall, MountGuard, Mounter, mount_all, mount_all_with,
    unmount, unmount_with,
};
pub use named::{NATIVE, OVERLAYFS, backend_root, open_named};
pub use native::Native;
pub use overlay::{Overlay, check_overlay_support, overlay_supported};
pub use snapshotter::{Filter, Info, Kind, Labels, Snapshotter, Usage};
