//! File names in the bundle and the state dir, the shim socket path, and
//! atomic file writes. The layout is drawn in the crate doc.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The OCI spec berthd writes.
pub const CONFIG: &str = "config.json";
/// Where the rootfs mounts go.
pub const ROOTFS: &str = "rootfs";
/// `unix:///<socket>` of the serving shim.
pub const ADDRESS: &str = "address";
/// The serving shim's pid.
pub const SHIM_PID: &str = "shim.pid";
/// The init's latest State answer (see `berth_api::berth::shim::INIT_STATE_FILE`).
pub const INIT_STATE: &str = berth_api::berth::shim::INIT_STATE_FILE;
/// The shim's own log.
pub const SHIM_LOG: &str = "shim.log";
/// The container init's pid (runtime `--pid-file`).
pub const INIT_PID: &str = "init.pid";
/// The init's output as JSON lines (see `io::log`).
pub const CONTAINER_LOG: &str = "container.log";
/// The runtime's `--log` (JSON lines; see `runtime::log`).
pub const RUNTIME_LOG: &str = crate::runtime::LOG_FILE;

/// The shim socket for a task: `<state>/s/<first 16 hex of sha256("ns/id")>.sock`.
pub fn socket_path(state: &Path, namespace: &str, id: &str) -> PathBuf {
    let digest = Sha256::digest(format!("{namespace}/{id}").as_bytes());
    let name = hex::encode(digest);
    state.join("s").join(format!("{}.sock", &name[..16]))
}

/// The runtime state root berthd assigns: `<state>/runtime/<ns>`.
pub fn runtime_root(state: &Path, namespace: &str) -> PathBuf {
    state.join("runtime").join(namespace)
}

/// `unix://` + the absolute socket path.
pub fn address_of(socket: &Path) -> String {
    format!("unix://{}", socket.display())
}

/// The path in a `unix://` address, or the address itself when it is a path.
pub fn socket_of(address: &str) -> PathBuf {
    PathBuf::from(address.strip_prefix("unix://").unwrap_or(address))
}

/// Writes `data` to `path` through a temporary file and a rename, so a
/// reader sees either nothing or the whole content.
///
/// No fsync: these files live in the volatile state dir (`/run/berth` by
/// default) and describe processes that a power loss ends anyway; after one,
/// berthd's recovery takes a missing or empty `address`/`shim.pid` for a dead
/// shim. (An fsync here cost ~0.8 ms each, twice per task start, on an ext4
/// state dir.)
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} has no file name", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_is_short_and_stable() {
        let p = socket_path(Path::new("/var/lib/berth"), "default", "c1");
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name.len(), 16 + ".sock".len());
        assert_eq!(p, socket_path(Path::new("/var/lib/berth"), "default", "c1"));
        assert_ne!(p, socket_path(Path::new("/var/lib/berth"), "default", "c2"));
        assert_ne!(p, socket_path(Path::new("/var/lib/berth"), "other", "c1"));
        // sha256("default/c1") starts with these 16 hex digits.
        let want = hex::encode(Sha256::digest(b"default/c1"));
        assert!(name.starts_with(&want[..16]));
    }

    #[test]
    fn addresses_round_trip() {
        let s = Path::new("/run/x.sock");
        assert_eq!(address_of(s), "unix:///run/x.sock");
        assert_eq!(socket_of(&address_of(s)), s);
        assert_eq!(socket_of("/run/y.sock"), Path::new("/run/y.sock"));
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("address");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
