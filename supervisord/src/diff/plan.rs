//! Where a layer is applied, decided from the mounts alone (pure, unit-tested).

use std::path::PathBuf;

use berth_snapshotter::Mount;
use berth_snapshotter::layer::WhiteoutMode;

use super::DiffError;

/// How to apply a layer onto a set of mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyPlan {
    /// Write straight into this directory, no mount needed: an overlay's `upperdir`
    /// (whiteouts become overlay whiteouts) or a bind's source (whiteouts delete).
    Direct { dir: PathBuf, mode: WhiteoutMode },
    /// Mount everything on a temporary directory and apply there, deleting whiteouts.
    Mount,
}

fn is_read_only(m: &Mount) -> bool {
    m.options.iter().any(|o| o == "ro")
}

/// The plan for `mounts`, as containerd's applier: a single `overlay` → its upperdir; a
/// single writable `bind` → its source; anything else → mount. A read-only single mount
/// cannot take a layer (InvalidArgument), nor can nothing.
pub fn plan_apply(mounts: &[Mount]) -> Result<ApplyPlan, DiffError> {
    let [m] = mounts else {
        if mounts.is_empty() {
            return Err(DiffError::mounts("no mounts to apply the layer onto"));
        }
        return Ok(ApplyPlan::Mount);
    };
    if m.target
        .as_deref()
        .is_some_and(|t| !t.is_empty() && t != "/")
    {
        return Ok(ApplyPlan::Mount);
    }
    match m.fs_type.as_str() {
        "overlay" => {
            let upper = m
                .options
                .iter()
                .find_map(|o| o.strip_prefix("upperdir="))
                .ok_or_else(|| DiffError::mounts("overlay mount has no upperdir (read-only)"))?;
            Ok(ApplyPlan::Direct {
                dir: PathBuf::from(upper),
                mode: WhiteoutMode::Overlay,
            })
        }
        "bind" | "rbind" if is_read_only(m) => Err(DiffError::mounts("bind mount is read-only")),
        "bind" | "rbind" => Ok(ApplyPlan::Direct {
            dir: PathBuf::from(&m.source),
            mode: WhiteoutMode::Delete,
        }),
        _ => Ok(ApplyPlan::Mount),
    }
}

/// A directory that holds a mount set's tree without mounting: a single bind's source.
pub fn direct_tree(mounts: &[Mount]) -> Option<PathBuf> {
    match mounts {
        [m] if matches!(m.fs_type.as_str(), "bind" | "rbind") && m.target.is_none() => {
            Some(PathBuf::from(&m.source))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::HasKind;

    fn mount(fs_type: &str, source: &str, options: &[&str]) -> Mount {
        Mount {
            fs_type: fs_type.into(),
            source: source.into(),
            target: None,
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn single_overlay_writes_its_upperdir_with_overlay_whiteouts() {
        let m = mount(
            "overlay",
            "overlay",
            &[
                "index=off",
                "workdir=/s/2/work",
                "upperdir=/s/2/fs",
                "lowerdir=/s/1/fs",
            ],
        );
        assert_eq!(
            plan_apply(&[m]).expect("plan"),
            ApplyPlan::Direct {
                dir: PathBuf::from("/s/2/fs"),
                mode: WhiteoutMode::Overlay
            }
        );
    }

    #[test]
    fn single_bind_writes_its_source_deleting_whiteouts() {
        let m = mount("bind", "/s/1/fs", &["rw", "rbind"]);
        assert_eq!(
            plan_apply(std::slice::from_ref(&m)).expect("plan"),
            ApplyPlan::Direct {
                dir: PathBuf::from("/s/1/fs"),
                mode: WhiteoutMode::Delete
            }
        );
        assert_eq!(direct_tree(&[m]), Some(PathBuf::from("/s/1/fs")));
    }

    #[test]
    fn read_only_or_empty_mounts_are_refused_and_others_mounted() {
        let ro = mount("bind", "/s/1/fs", &["ro", "rbind"]);
        let err = plan_apply(&[ro]).expect_err("ro bind");
        assert_eq!(err.kind(), berth_api::ErrorKind::InvalidArgument);
        let view = mount("overlay", "overlay", &["lowerdir=/a:/b"]);
        assert!(plan_apply(&[view]).is_err());
        assert!(plan_apply(&[]).is_err());
        let two = [mount("bind", "/a", &["rw"]), mount("tmpfs", "tmpfs", &[])];
        assert_eq!(plan_apply(&two).expect("plan"), ApplyPlan::Mount);
        assert_eq!(direct_tree(&two), None);
        assert_eq!(
            plan_apply(&[mount("ext4", "/dev/x", &[])]).expect("plan"),
            ApplyPlan::Mount
        );
    }
}
