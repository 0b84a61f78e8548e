//! OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) during apply.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::SFlag;

use super::apply::{Applier, WhiteoutMode};
use super::root::{self, remove_all_at};
use super::{LayerError, OPAQUE_WHITEOUT, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX, xattr};

impl Applier {
    /// Handles the whiteout entry `name` (`base` in `parent_rel`).
    pub(super) fn whiteout(
        &mut self,
        name: &Path,
        parent_rel: &Path,
        base: &OsStr,
    ) -> Result<(), LayerError> {
        let fs = |op| LayerError::fs(op, name.to_owned());
        if base.as_bytes() == OPAQUE_WHITEOUT.as_bytes() {
            return self.opaque(name, parent_rel);
        }
        if base.as_bytes().starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no meaning here.
            tracing::debug!(path = %name.display(), "aufs whiteout metadata skipped");
            return Ok(());
        }
        let hidden = OsStr::from_bytes(&base.as_bytes()[WHITEOUT_PREFIX.len()..]);
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(LayerError::InvalidWhiteout {
                path: name.to_owned(),
            });
        }
        self.forget_parent();
        match self.mode {
            WhiteoutMode::Overlay => {
                let parent = self
                    .parent_dir(parent_rel)
                    .map_err(fs("resolve parent of"))?;
                remove_all_at(parent.as_fd(), hidden).map_err(fs("remove whited-out"))?;
                root::mknod_at(parent.as_fd(), hidden, SFlag::S_IFCHR, libc::makedev(0, 0))
                    .map_err(fs("create overlay whiteout"))?;
            }
            WhiteoutMode::Delete => {
                let parent = match self.root.dir(parent_rel) {
                    Ok(fd) => fd,
                    // Nothing there to delete.
                    Err(err)
                        if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) =>
                    {
                        return Ok(());
                    }
                    Err(source) => {
                        return Err(LayerError::Fs {
                            op: "resolve parent of",
                            path: name.to_owned(),
                            source,
                        });
                    }
                };
                remove_all_at(parent.as_fd(), hidden).map_err(fs("remove whited-out"))?;
            }
        }
        Ok(())
    }

    /// `.wh..wh..opq` in `dir_rel`: hide the lower layers' content of the dir.
    fn opaque(&mut self, name: &Path, dir_rel: &Path) -> Result<(), LayerError> {
        let fs = |op| LayerError::fs(op, name.to_owned());
        match self.mode {
            WhiteoutMode::Overlay => {
                let dir = self.parent_dir(dir_rel).map_err(fs("resolve opaque dir"))?;
                let readable = root::open_subdir(dir.as_fd(), OsStr::new("."))
                    .map_err(fs("open opaque dir"))?;
                xattr::set(
                    xattr::Node::Fd(readable.as_fd()),
                    xattr::OVERLAY_OPAQUE.as_bytes(),
                    b"y",
                )
                .map_err(fs("mark opaque"))?;
            }
            WhiteoutMode::Delete => {
                self.forget_parent();
                let dir = match self.root.dir(dir_rel) {
                    Ok(fd) => fd,
                    Err(err)
                        if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) =>
                    {
                        return Ok(());
                    }
                    Err(source) => {
                        return Err(LayerError::Fs {
                            op: "resolve opaque dir",
                            path: name.to_owned(),
                            source,
                        });
                    }
                };
                let readable = root::open_subdir(dir.as_fd(), OsStr::new("."))
                    .map_err(fs("open opaque dir"))?;
                root::retain_at(readable.as_fd(), dir_rel, &self.unpacked)
                    .map_err(fs("empty opaque dir"))?;
            }
        }
        Ok(())
    }
}
