//! `berth-shim delete …`: cleanup after a dead shim. Force-deletes the
//! container through the runtime (kills its processes, removes its cgroup
//! and state), unmounts `<bundle>/rootfs` and returns the
//! `berth.shim.v1.DeleteResponse` to print: exit status 137 (killed, as
//! containerd's runc shim reports) and exited_at now.

use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::Context;
use berth_api::berth::shim::v1::DeleteResponse;
use prost::Message;

use crate::cli::ShimArgs;
use crate::mount::{Linux, Mounter};
use crate::paths;

/// Exit status reported for a container whose shim died.
pub const KILLED_STATUS: u32 = 128 + 9;

/// Cleans up and returns the encoded DeleteResponse.
pub fn delete(args: &ShimArgs) -> anyhow::Result<Vec<u8>> {
    let pid = std::fs::read_to_string(args.bundle.join(paths::INIT_PID))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let root = paths::runtime_root(&args.state, &args.namespace);
    let out = Command::new("/proc/self/exe")
        .arg("runtime")
        .arg("--root")
        .arg(&root)
        .args(["delete", "--force", &args.id])
        .stdin(Stdio::null())
        .output()
        .context("run runtime delete")?;
    if !out.status.success() {
        // Already gone (never created, or deleted before the shim died).
        eprintln!(
            "berth-shim delete: runtime delete of {}: {}",
            args.id,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Linux
        .unmount_all(&args.bundle.join(paths::ROOTFS))
        .context("unmount rootfs")?;
    // Console sockets the dead shim left behind.
    let socket = paths::socket_path(&args.state, &args.namespace, &args.id);
    if let (Some(dir), Some(stem)) = (socket.parent(), socket.file_stem()) {
        let prefix = format!("{}-", stem.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name.ends_with(".pty") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    let _ = std::fs::remove_file(&socket);
    let resp = DeleteResponse {
        pid,
        exit_status: KILLED_STATUS,
        exited_at: Some(crate::events::timestamp(SystemTime::now())),
    };
    Ok(resp.encode_to_vec())
}
