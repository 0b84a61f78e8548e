//! cgroups: the [`CgroupManager`] role with the `V1` (incl. hybrid hosts), `V2` and a
//! recording `Fake` backend.
//!
//! The managers only do file operations below a hierarchy root, so unit tests point them
//! at a temporary directory standing in for `/sys/fs/cgroup` and read back what was
//! written. What a spec turns into is computed by [`plan`] as a list of writes.
//!
//! Paths: an absolute `cgroupsPath` is taken relative to each hierarchy's mount point; a
//! relative one is placed under [`BERTH_PARENT`]; no path means `BERTH_PARENT/<id>`.

pub mod devices_v2;
mod fake;
pub mod plan;
mod stats;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

pub use fake::{Fake, FakeCall};
pub use stats::{BlkioEntry, BlkioStats, CpuStats, HugetlbStats, MemoryStats, PidsStats, Stats};
pub use v1::V1;
pub use v2::V2;

/// The parent of relative and default cgroup paths.
pub const BERTH_PARENT: &str = "berth";

/// Errors of the cgroup managers.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid resources: {0}")]
    Invalid(String),
    #[error("unsupported on this host: {0}")]
    Unsupported(String),
}

impl CgroupError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// A container's cgroup (one directory per hierarchy).
///
/// Contract: `apply` creates the cgroup (idempotent) and writes the limits; `add_task`
/// moves a process in (all hierarchies); `remove` deletes the directories once no task
/// is left (retrying briefly while exiting tasks drain) and is idempotent; `freeze(true)`
/// returns once the cgroup is frozen.
pub trait CgroupManager {
    /// Creates the cgroup and writes `resources`.
    fn apply(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError>;
    /// Writes new limits to an existing cgroup.
    fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// Moves `pid` into the cgroup.
    fn add_task(&self, pid: i32) -> Result<(), CgroupError>;
    /// The files a single-threaded process writes `0` to, in order, to move itself
    /// in. On v1 these are the `tasks` files: a thread migrating itself skips the
    /// global `cgroup_threadgroup_rwsem`, whose write lock (taken by any pid written
    /// to `cgroup.procs`) first waits for an RCU grace period (5-20 ms on a busy
    /// host). On v2 it is `cgroup.procs`.
    fn self_join_files(&self) -> Vec<PathBuf>;
    /// All processes in the cgroup (and below it).
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Freezes or thaws every task.
    fn freeze(&self, frozen: bool) -> Result<(), CgroupError>;
    /// True if the cgroup is frozen.
    fn is_frozen(&self) -> Result<bool, CgroupError>;
    /// Usage statistics.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// Removes the cgroup.
    fn remove(&self) -> Result<(), CgroupError>;
    /// (hierarchy name, host directory) pairs, for cgroup mounts without a cgroup ns.
    fn dirs(&self) -> Vec<(String, PathBuf)>;
}

/// The cgroup path of a container: absolute as given, relative under [`BERTH_PARENT`].
pub fn container_path(cgroups_path: Option<&Path>, id: &str) -> PathBuf {
    match cgroups_path {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) if !p.as_os_str().is_empty() => Path::new("/").join(BERTH_PARENT).join(p),
        _ => Path::new("/").join(BERTH_PARENT).join(id),
    }
}

/// The manager for this host: `V2` on a unified host, otherwise `V1` (hybrid included).
pub fn open(path: &Path) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let root = Path::new("/sys/fs/cgroup");
    if is_cgroup2(root) {
        return Ok(Box::new(V2::new(root, path)));
    }
    Ok(Box::new(V1::from_host(path)?))
}

/// True if /sys/fs/cgroup is the unified (v2) hierarchy.
pub fn is_unified_host() -> bool {
    is_cgroup2(Path::new("/sys/fs/cgroup"))
}

fn is_cgroup2(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// Joins an absolute cgroup path onto a hierarchy root.
pub(crate) fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(|e| CgroupError::io("writing", p, e))
}

pub(crate) fn read_file(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let p = dir.join(file);
    std::fs::read_to_string(&p).map_err(|e| CgroupError::io("reading", p, e))
}

/// Removes `dir`, retrying while tasks drain (EBUSY), then its empty ancestors up to
/// (excluding) `stop`.
pub(crate) fn remove_dir(dir: &Path, stop: &Path) -> Result<(), CgroupError> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 200 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(CgroupError::io("removing", dir, e)),
        }
    }
    let mut cur = dir.parent();
    while let Some(p) = cur {
        if !p.starts_with(stop) || p == stop {
            break;
        }
        if std::fs::remove_dir(p).is_err() {
            break;
        }
        cur = p.parent();
    }
    Ok(())
}

/// Reads `cgroup.procs` of `dir` and every descendant.
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let text = read_file(dir, "cgroup.procs")?;
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                procs_recursive(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_absolute_relative_default() {
        assert_eq!(
            container_path(Some(Path::new("/a/b")), "x"),
            PathBuf::from("/a/b")
        );
        assert_eq!(
            container_path(Some(Path::new("a/b")), "x"),
            PathBuf::from("/berth/a/b")
        );
        assert_eq!(container_path(None, "x"), PathBuf::from("/berth/x"));
    }

    #[test]
    fn remove_dir_removes_empty_ancestors_below_stop() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let stop = tmp.path().join("berth");
        let leaf = stop.join("a/b/c");
        std::fs::create_dir_all(&leaf).expect("mkdir");
        std::fs::create_dir_all(stop.join("a/other")).expect("mkdir");
        remove_dir(&leaf, &stop).expect("remove");
        assert!(!stop.join("a/b").exists());
        assert!(stop.join("a/other").exists(), "non-empty ancestor kept");
        assert!(stop.exists());
    }
}
