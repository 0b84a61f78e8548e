//! Is overlayfs usable on a snapshotter root?

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::mount::{Mount, mount_all, unmount};

/// Mounts a tiny overlay inside `root` (which must exist) and unmounts it. An error
/// says why overlayfs is not usable there (no kernel support, not root, a root on a
/// filesystem overlayfs cannot use as upper).
pub fn check_overlay_support(root: &Path) -> Result<()> {
    let probe = tempfile_dir(root)?;
    let result = try_mount(&probe);
    if let Err(e) = fs::remove_dir_all(&probe) {
        tracing::warn!(path = %probe.display(), error = %e, "cannot remove overlay probe");
    }
    result.map_err(|e| Error::OverlayUnsupported {
        root: root.to_path_buf(),
        source: Box::new(e),
    })
}

/// The file under a snapshotter root naming the boot (`/proc/sys/kernel/random/boot_id`)
/// in which overlayfs was last mounted there successfully.
pub const PROBED_FILE: &str = "overlay-probed";

const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// [`check_overlay_support`] once per boot: skipped when [`PROBED_FILE`] names the
/// current boot, written after a successful probe. The probe's mount and unmount cost
/// 20-100 ms on a busy host at every daemon start; support does not change within a
/// boot. Without a readable boot id, always probes.
pub fn check_overlay_support_once_per_boot(root: &Path) -> Result<()> {
    let boot = fs::read_to_string(BOOT_ID)
        .ok()
        .map(|b| b.trim().to_owned());
    let marker = root.join(PROBED_FILE);
    if let Some(boot) = &boot
        && fs::read_to_string(&marker).is_ok_and(|m| m.trim() == boot)
    {
        return Ok(());
    }
    check_overlay_support(root)?;
    if let Some(boot) = boot {
        // A cache: a lost or torn write only means probing again.
        let tmp = root.join(format!("{PROBED_FILE}.tmp-{}", std::process::id()));
        let written = fs::write(&tmp, format!("{boot}\n")).and_then(|()| fs::rename(&tmp, &marker));
        if let Err(e) = written {
            tracing::debug!(path = %marker.display(), error = %e, "overlay probe not remembered");
            let _ = fs::remove_file(&tmp);
        }
    }
    Ok(())
}

/// Whether overlayfs is usable on `root` (see [`check_overlay_support`]).
pub fn overlay_supported(root: &Path) -> bool {
    match check_overlay_support(root) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(root = %root.display(), error = %e, "overlayfs unsupported");
            false
        }
    }
}

fn tempfile_dir(root: &Path) -> Result<std::path::PathBuf> {
    let nanos = crate::metastore::record_now_ns();
    let probe = root.join(format!("overlay-probe-{}-{nanos}", std::process::id()));
    for sub in ["lower", "upper", "work", "merged"] {
        let dir = probe.join(sub);
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
    }
    Ok(probe)
}

fn try_mount(probe: &Path) -> Result<()> {
    let dir = |s: &str| probe.join(s).display().to_string();
    let m = Mount {
        fs_type: "overlay".to_owned(),
        source: "overlay".to_owned(),
        target: None,
        options: vec![
            format!("lowerdir={}", dir("lower")),
            format!("upperdir={}", dir("upper")),
            format!("workdir={}", dir("work")),
        ],
    };
    let merged = probe.join("merged");
    mount_all(&[m], &merged)?;
    unmount(&merged)
}
