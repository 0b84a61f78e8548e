//! Per-container state on disk and the container's lifecycle status.
//!
//! ```text
//! <root>/                       --root (default /run/berth-runc), mode 0700
//! └── <id>/                     one directory per container, created atomically by `create`
//!     ├── state.json            ContainerRecord: OCI state + init start time + config snapshot
//!     └── start.sock            listening socket held by the blocked init; `start` connects
//!                               to it once (gone after start)
//! ```
//!
//! The status is never trusted from disk alone: a recorded pid is checked against its
//! start time in `/proc/<pid>/stat` (pid reuse), zombies count as stopped, and a frozen
//! cgroup means paused.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File names inside a container's state directory.
pub const STATE_FILE: &str = "state.json";
/// The socket the created init waits on until `start`.
pub const START_SOCKET: &str = "start.sock";
/// The default `--root`.
pub const DEFAULT_ROOT: &str = "/run/berth-runc";

/// Lifecycle status, as in the OCI runtime spec (plus runc's `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    /// The lower-case name used in state JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
    /// `start` is allowed only on a created container.
    pub fn can_start(self) -> bool {
        self == Status::Created
    }
    /// `kill` needs a live init.
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    /// `delete` without force: created (like runc) or stopped.
    pub fn can_delete(self) -> bool {
        matches!(self, Status::Created | Status::Stopped)
    }
    /// `exec`, `pause`: the container must be running.
    pub fn is_running(self) -> bool {
        self == Status::Running
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `state` prints: runc's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// The record kept in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ContainerRecord {
    pub id: String,
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` when init was created.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub started: bool,
    /// The cgroup path the container was placed in (as given to the manager).
    pub cgroup_path: PathBuf,
    /// The config as it was at create time.
    pub config: Spec,
}

impl ContainerRecord {
    pub fn annotations(&self) -> HashMap<String, String> {
        self.config.annotations().clone().unwrap_or_default()
    }
}

/// The directory holding every container's state (`--root`).
#[derive(Debug, Clone)]
pub struct RuntimeRoot {
    dir: PathBuf,
}

impl RuntimeRoot {
    /// A root at `dir` (created on first `create`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RuntimeRoot { dir: dir.into() }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn container_dir(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        Ok(self.dir.join(id))
    }

    /// Ids of all containers with a state directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("reading root", &self.dir, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Creates `<root>/<id>` atomically; fails with `Exists` when it is there.
    pub(crate) fn create_dir(&self, id: &str) -> Result<PathBuf> {
        let dir = self.container_dir(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Error::io("creating root", &self.dir, e))?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists { id: id.to_owned() })
            }
            Err(e) => Err(Error::io("creating state dir", &dir, e)),
        }
    }

    pub(crate) fn load(&self, id: &str) -> Result<ContainerRecord> {
        let path = self.container_dir(id)?.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { id: id.to_owned() });
            }
            Err(e) => return Err(Error::io("reading state", &path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::State {
            id: id.to_owned(),
            reason: format!("corrupt {}: {e}", path.display()),
        })
    }

    /// The config snapshot taken at create time.
    pub fn load_config(&self, id: &str) -> Result<Spec> {
        Ok(self.load(id)?.config)
    }

    pub(crate) fn save(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.container_dir(&rec.id)?;
        let data = serde_json::to_vec(rec).map_err(|e| Error::State {
            id: rec.id.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&dir.join(STATE_FILE), &data)
    }

    pub(crate) fn remove_dir(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id)?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing state dir", &dir, e)),
        }
    }
}

/// Writes `data` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("writing", &tmp, e))?;
    f.write_all(data)
        .map_err(|e| Error::io("writing", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io("renaming", path, e))
}

/// runc's id rule: non-empty, no path separators, no `.`/`..`, printable.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("dot name");
    }
    if id.len() > 1024 {
        return bad("too long");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
    {
        return bad("only [A-Za-z0-9_+.-] are allowed");
    }
    Ok(())
}

/// Start time (field 22) and state letter of `/proc/<pid>/stat`, if the process exists.
pub(crate) fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let data = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &data[data.rfind(')')? + 2..];
    let mut fields = after.split(' ');
    let state = fields.next()?.chars().next()?;
    // after ')' the fields start at 3; starttime is 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((start, state))
}

/// True if `pid` is the same live (non-zombie) process that was recorded.
pub(crate) fn process_alive(pid: i32, start: u64) -> bool {
    match proc_stat(pid) {
        Some((s, st)) => s == start && st != 'Z' && st != 'X',
        None => false,
    }
}

/// RFC 3339 UTC with nanoseconds, like runc's `created`.
pub(crate) fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("abc-1.2_x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn own_process_is_alive_and_start_time_matters() {
        let pid = std::process::id() as i32;
        let (start, _) = proc_stat(pid).expect("own stat");
        assert!(process_alive(pid, start));
        assert!(!process_alive(pid, start + 1));
    }

    #[test]
    fn create_dir_twice_is_exists() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::new(tmp.path().join("r"));
        root.create_dir("c1").expect("first");
        let err = root.create_dir("c1").expect_err("second");
        assert_eq!(err.kind(), crate::ErrorKind::AlreadyExists);
        assert!(root.ids().expect("ids").is_empty(), "no state.json yet");
    }
}
