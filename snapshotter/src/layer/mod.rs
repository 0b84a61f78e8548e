//! OCI layer apply and diff.
//!
//! [`apply`] unpacks a layer (plain tar, gzip or zstd) onto a directory and
//! returns the digest of its uncompressed stream (the image's `diff_id`);
//! [`diff()`] and [`diff_overlay_upper`] write a layer from two trees or from an
//! overlay upper directory.
//!
//! # Whiteouts
//! An OCI layer marks deletions with empty entries named `.wh.<name>` and a
//! directory whose lower content is hidden with `.wh..wh..opq`. In
//! [`WhiteoutMode::Overlay`] (the target is an overlay upper dir) they become
//! overlay whiteouts: a char device 0:0 named `<name>` and the xattr
//! `trusted.overlay.opaque=y` on the directory. In [`WhiteoutMode::Delete`]
//! (a complete tree) `<name>` is deleted and an opaque directory loses every
//! child this layer did not itself create (also when the marker comes after
//! those entries, as containerd does).
//!
//! # Security policy (hostile layers)
//! All resolution goes through [`openat2`](nix::fcntl::openat2) with
//! `RESOLVE_IN_ROOT` from an fd of the target, and the last component is only
//! ever handled with `*at(…, AT_SYMLINK_NOFOLLOW)`-style calls, so there is no
//! check-then-use window. Per case:
//!
//! | entry | outcome |
//! |---|---|
//! | name with `..` climbing above the root (`../../x`) | refused: [`LayerError::Escape`] |
//! | `..` that stays inside (`a/../b`) | normalized (`b`) |
//! | absolute name (`/abs/x`) | confined: leading `/` dropped, written at `<target>/abs/x` |
//! | entry under a symlink (`l -> /`, `l -> ../../..`, then `l/x`) | confined: the symlink resolves as if the target were `/`, so `l/x` lands at `<target>/x` |
//! | parent path through a dangling symlink (`var/run -> /run`, `l -> ../../x`) | confined: followed in the root and the missing target created there (containerd does the same); symlink loops fail (`ELOOP`) |
//! | entry whose own name is an existing symlink | the symlink is removed, never written through |
//! | hardlink whose target has `..` climbing out | refused: [`LayerError::Escape`] |
//! | hardlink to `/etc/passwd`-like absolute path | confined: resolved as `<target>/etc/passwd`; missing → [`LayerError::LinkTarget`]; a symlink as source is linked itself, not followed |
//! | whiteout `.wh.`, `.wh..`, `.wh...` (empty, `.`, `..`) | refused: [`LayerError::InvalidWhiteout`] |
//! | whiteout under `..` (`../.wh.x`) | refused: [`LayerError::Escape`] |
//! | whiteout under a symlink to `/` | confined: deletes inside the target only |
//! | char/block device | created only when running as root, confined inside the target like any entry (as containerd does); skipped with a warning otherwise. Fifos are always created |
//! | `trusted.overlay.*` / `user.overlay.*` xattrs | ignored with a warning (only whiteouts may make a dir opaque; redirect/metacopy never come from a layer) |
//! | GNU sparse, other unknown types | sparse data is written out densely; unknown types refused ([`LayerError::UnsupportedEntry`]) |
//!
//! Owners are numeric (uid/gid from the header, PAX overriding); modes keep
//! setuid/setgid/sticky; directory mtimes are set after all entries. Without
//! root, foreign owners and `trusted.*` xattrs are skipped.

mod apply;
mod compression;
mod diff;
mod error;
mod meta;
mod pipe;
mod root;
mod whiteout;
mod writer;
mod xattr;

#[cfg(test)]
mod tests;

pub use apply::{Applied, WhiteoutMode, apply};
pub use compression::{
    Compression, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_LAYER_ZSTD,
};
pub use diff::{DiffCompression, Diffed, diff, diff_overlay_upper};
pub use error::{LayerError, LayerErrorKind};

/// Prefix of an OCI whiteout entry.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Prefix of whiteout bookkeeping entries (aufs); `.wh..wh..opq` is the one that matters.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// Name of the opaque-directory marker.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
