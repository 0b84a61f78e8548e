//! Bundles: the per-task directory berthd writes before starting a shim and removes
//! after the task is deleted.
//!
//! ```text
//! <state>/tasks/<namespace>/<id>/    mode 0700
//! ├── config.json   the container record's spec bytes, byte-exact (berthd)
//! ├── rootfs/       empty; the shim mounts the rootfs mounts here, unmounts at Delete
//! ├── address       unix:///<socket path>   (shim, before `start` exits)
//! ├── shim.pid      the long-lived shim's pid (shim)
//! ├── shim.log      the shim's own log (shim)
//! ├── init.pid      the container init pid (runtime --pid-file)
//! └── init.state    the init's latest State answer, protobuf (shim; read at restart)
//! ```

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::TaskError;

/// Directory of all bundles under the state dir.
pub const TASKS_DIR: &str = "tasks";
/// Runtime state roots under the state dir (one per namespace).
pub const RUNTIME_DIR: &str = "runtime";
/// Shim sockets under the state dir.
pub const SOCKETS_DIR: &str = "s";
pub const CONFIG_FILE: &str = "config.json";
pub const ROOTFS_DIR: &str = "rootfs";
pub const ADDRESS_FILE: &str = "address";
pub const SHIM_PID_FILE: &str = "shim.pid";
pub const SHIM_LOG_FILE: &str = "shim.log";
pub const INIT_PID_FILE: &str = "init.pid";

/// One task's bundle directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub namespace: String,
    pub id: String,
    pub path: PathBuf,
}

/// `<state>/tasks`.
pub fn tasks_dir(state: &Path) -> PathBuf {
    state.join(TASKS_DIR)
}

/// The runtime's state root for `namespace`: `<state>/runtime/<namespace>`.
pub fn runtime_root(state: &Path, namespace: &str) -> PathBuf {
    state.join(RUNTIME_DIR).join(namespace)
}

/// The shim socket of a task: `<state>/s/<first 16 hex of sha256("<ns>/<id>")>.sock`.
pub fn socket_path(state: &Path, namespace: &str, id: &str) -> PathBuf {
    let digest = Sha256::digest(format!("{namespace}/{id}").as_bytes());
    let hex = hex::encode(digest);
    state.join(SOCKETS_DIR).join(format!("{}.sock", &hex[..16]))
}

impl Bundle {
    /// The bundle of (`namespace`, `id`) under `state`, whether or not it exists.
    pub fn at(state: &Path, namespace: &str, id: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            id: id.to_owned(),
            path: tasks_dir(state).join(namespace).join(id),
        }
    }

    /// Create the bundle: the directory (0700), `config.json` = `spec` byte-exact and an
    /// empty `rootfs/`. `AlreadyExists` if the directory is already there.
    pub fn create(state: &Path, namespace: &str, id: &str, spec: &[u8]) -> Result<Self, TaskError> {
        let b = Self::at(state, namespace, id);
        if let Some(parent) = b.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(TaskError::io("create bundle parent", parent))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&b.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(TaskError::AlreadyExists {
                    what: "bundle",
                    id: format!("{namespace}/{id}"),
                });
            }
            Err(e) => return Err(TaskError::io("create bundle", &b.path)(e)),
        }
        let write = || -> Result<(), TaskError> {
            // The umask may have narrowed the mode.
            std::fs::set_permissions(&b.path, std::fs::Permissions::from_mode(0o700))
                .map_err(TaskError::io("chmod bundle", &b.path))?;
            let config = b.config();
            std::fs::write(&config, spec).map_err(TaskError::io("write", &config))?;
            let rootfs = b.rootfs();
            std::fs::create_dir(&rootfs).map_err(TaskError::io("create", &rootfs))?;
            Ok(())
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_dir_all(&b.path);
            return Err(e);
        }
        Ok(b)
    }

    pub fn config(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }
    pub fn rootfs(&self) -> PathBuf {
        self.path.join(ROOTFS_DIR)
    }
    pub fn address_file(&self) -> PathBuf {
        self.path.join(ADDRESS_FILE)
    }
    pub fn shim_pid_file(&self) -> PathBuf {
        self.path.join(SHIM_PID_FILE)
    }

    /// The shim's address (`unix:///path`) as the shim wrote it, trimmed; `None` if the
    /// file is missing or empty.
    pub fn address(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.address_file()).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// The shim's pid from `shim.pid`, if readable.
    pub fn shim_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.shim_pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The init's latest State answer as the shim saved it
    /// (`berth_api::berth::shim::INIT_STATE_FILE`); `None` if missing or undecodable
    /// (a shim from before the file, or one whose init was deleted).
    pub fn init_state(&self) -> Option<berth_api::berth::shim::v1::StateResponse> {
        use prost::Message;
        let bytes = std::fs::read(self.path.join(berth_api::berth::shim::INIT_STATE_FILE)).ok()?;
        berth_api::berth::shim::v1::StateResponse::decode(&bytes[..]).ok()
    }

    /// The container init's pid from `init.pid`, if readable.
    pub fn init_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path.join(INIT_PID_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Remove the bundle. Refuses (and leaves everything) while `rootfs/` is still a
    /// mount point, so a failed unmount never deletes container files. Missing is fine.
    pub fn remove(&self) -> Result<(), TaskError> {
        let rootfs = self.rootfs();
        if is_mount_point(&rootfs) {
            return Err(TaskError::FailedPrecondition(format!(
                "bundle {}: rootfs is still mounted",
                self.path.display()
            )));
        }
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(TaskError::io("remove bundle", &self.path)(e)),
        }
        // The namespace directory goes when its last bundle does.
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(())
    }
}

/// Whether `path` is a mount point, per `/proc/self/mountinfo` (a bind mount from the
/// same filesystem shares the device number, so `stat` cannot tell).
fn is_mount_point(path: &Path) -> bool {
    let Ok(path) = std::fs::canonicalize(path) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| Path::new(&unescape(mount_point)) == path)
}

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = (bytes[i] == b'\\' && i + 4 <= bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 4]).ok())
            .flatten()
            .and_then(|oct| u8::from_str_radix(oct, 8).ok());
        if let Some(v) = octal {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn create_writes_spec_byte_exact_and_rootfs() {
        let state = tempfile::tempdir().expect("tempdir");
        let spec = b"{\"ociVersion\": \"1.0.2\" ,\n \"root\":{\"path\":\"rootfs\"}}  ";
        let b = Bundle::create(state.path(), "ns1", "c1", spec).expect("create");
        assert_eq!(b.path, state.path().join("tasks/ns1/c1"));
        assert_eq!(std::fs::read(b.config()).expect("read config"), spec);
        assert!(b.rootfs().is_dir());
        let mode = std::fs::metadata(&b.path).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(b.address().is_none());
        assert!(b.shim_pid().is_none());
    }

    #[test]
    fn create_twice_is_already_exists_and_keeps_the_first() {
        let state = tempfile::tempdir().expect("tempdir");
        Bundle::create(state.path(), "ns1", "c1", b"{}").expect("create");
        let err = Bundle::create(state.path(), "ns1", "c1", b"[]").expect_err("second");
        assert!(matches!(err, TaskError::AlreadyExists { .. }), "{err}");
        let b = Bundle::at(state.path(), "ns1", "c1");
        assert_eq!(std::fs::read(b.config()).expect("read"), b"{}");
    }

    #[test]
    fn address_and_pid_are_read_trimmed() {
        let state = tempfile::tempdir().expect("tempdir");
        let b = Bundle::create(state.path(), "n", "c", b"{}").expect("create");
        std::fs::write(b.address_file(), "unix:///run/x.sock\n").expect("write");
        std::fs::write(b.shim_pid_file(), "4242\n").expect("write");
        assert_eq!(b.address().as_deref(), Some("unix:///run/x.sock"));
        assert_eq!(b.shim_pid(), Some(4242));
    }

    #[test]
    fn remove_deletes_bundle_and_empty_namespace_dir() {
        let state = tempfile::tempdir().expect("tempdir");
        let a = Bundle::create(state.path(), "n", "a", b"{}").expect("create a");
        let b = Bundle::create(state.path(), "n", "b", b"{}").expect("create b");
        a.remove().expect("remove a");
        assert!(!a.path.exists());
        assert!(state.path().join("tasks/n").is_dir(), "b still lives there");
        b.remove().expect("remove b");
        assert!(!state.path().join("tasks/n").exists());
        b.remove().expect("removing twice is fine");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\"), "/end\\");
        assert!(is_mount_point(Path::new("/proc")));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!is_mount_point(dir.path()));
    }

    #[test]
    fn socket_path_is_short_and_stable() {
        let p = socket_path(Path::new("/run/berth"), "default", "c1");
        let again = socket_path(Path::new("/run/berth"), "default", "c1");
        assert_eq!(p, again);
        assert_ne!(p, socket_path(Path::new("/run/berth"), "default", "c2"));
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name.len(), 16 + ".sock".len());
        assert!(p.starts_with("/run/berth/s"));
        assert_eq!(
            runtime_root(Path::new("/st"), "ns"),
            PathBuf::from("/st/runtime/ns")
        );
    }
}
