//! The host's device nodes, for `--privileged` (containerd's
//! `WithHostDevices` + `WithAllDevicesAllowed`).
//!
//! The walk follows containerd's `HostDevices`: every character and block
//! node under `/dev`, recursively, except the directories `pts`, `shm`,
//! `fd`, `mqueue`, `.lxc`, `.lxd-mounts` and `.udev`, the node `console`,
//! FIFOs, symlinks and anything that vanished while walking. Reading the
//! directory goes through [`Host`], so the rules are unit-tested with a
//! fake listing.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::host::{EntryKind, Host};

/// Directories under /dev that hold no host devices to pass on.
const SKIPPED_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// A device node to create in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// Path, same inside and outside (`/dev/loop0`).
    pub path: PathBuf,
    /// `c` or `b`.
    pub kind: char,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Every device node under `root` (normally `/dev`), sorted by path. A
/// subdirectory that cannot be read is skipped; an unreadable `root` is an
/// error.
pub fn host_devices(fs: &dyn Host, root: &Path) -> std::io::Result<Vec<HostDevice>> {
    let mut out = Vec::new();
    walk(fs, root, &mut out, true)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(fs: &dyn Host, dir: &Path, out: &mut Vec<HostDevice>, top: bool) -> std::io::Result<()> {
    let entries = match fs.read_dir(dir) {
        Ok(e) => e,
        Err(e) if !top => {
            tracing::debug!(dir = %dir.display(), error = %e, "device dir skipped");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for e in entries {
        let path = dir.join(&e.name);
        let kind = match e.kind {
            EntryKind::Dir if SKIPPED_DIRS.contains(&e.name.as_str()) => continue,
            EntryKind::Dir => {
                walk(fs, &path, out, false)?;
                continue;
            }
            EntryKind::Other => continue,
            _ if e.name == "console" => continue,
            EntryKind::Char => 'c',
            EntryKind::Block => 'b',
        };
        out.push(HostDevice {
            path,
            kind,
            major: e.major,
            minor: e.minor,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
        });
    }
    Ok(())
}

/// Adds `devices` to the spec's `linux.devices` (a host node replaces a
/// default one at the same path) and allows every device in the device
/// cgroup, as a privileged container has.
pub fn grant_all(spec: &mut Value, devices: &[HostDevice]) {
    let mut list: Vec<Value> = spec["linux"]["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for d in devices {
        let path = d.path.to_string_lossy();
        list.retain(|x| x["path"] != *path);
        list.push(json!({
            "path": path, "type": d.kind.to_string(), "major": d.major, "minor": d.minor,
            "fileMode": d.mode, "uid": d.uid, "gid": d.gid
        }));
    }
    spec["linux"]["devices"] = Value::Array(list);
    spec["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::host::DevEntry;
    use std::collections::HashMap;

    /// An in-memory /dev: directory path → entries; other dirs fail.
    struct FakeDev(HashMap<PathBuf, Vec<DevEntry>>);

    impl Host for FakeDev {
        fn read_dir(&self, dir: &Path) -> std::io::Result<Vec<DevEntry>> {
            self.0
                .get(dir)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::PermissionDenied))
        }

        fn bounding_caps(&self) -> std::io::Result<u64> {
            Ok(0)
        }
    }

    fn e(name: &str, kind: EntryKind, major: u64, minor: u64) -> DevEntry {
        DevEntry {
            name: name.into(),
            kind,
            major,
            minor,
            mode: 0o660,
            uid: 0,
            gid: 6,
        }
    }

    fn fake() -> FakeDev {
        use EntryKind::*;
        FakeDev(HashMap::from([
            (
                PathBuf::from("/dev"),
                vec![
                    e("null", Char, 1, 3),
                    e("loop0", Block, 7, 0),
                    e("console", Char, 5, 1),
                    e("stdin", Other, 0, 0),
                    e("initctl", Other, 0, 0),
                    e("pts", Dir, 0, 0),
                    e("shm", Dir, 0, 0),
                    e("fd", Dir, 0, 0),
                    e("mqueue", Dir, 0, 0),
                    e(".udev", Dir, 0, 0),
                    e("net", Dir, 0, 0),
                    e("locked", Dir, 0, 0),
                ],
            ),
            (PathBuf::from("/dev/net"), vec![e("tun", Char, 10, 200)]),
            // Listed although skipped: must never be walked.
            (PathBuf::from("/dev/pts"), vec![e("0", Char, 136, 0)]),
            (PathBuf::from("/dev/shm"), vec![e("x", Char, 9, 9)]),
        ]))
    }

    #[test]
    fn walk_follows_containerds_rules() {
        let devs = host_devices(&fake(), Path::new("/dev")).expect("walk");
        let paths: Vec<_> = devs
            .iter()
            .map(|d| d.path.to_str().expect("utf8"))
            .collect();
        // console, symlinks/FIFOs, pts/shm/fd/mqueue/.udev are skipped, the
        // unreadable `locked` dir is skipped, net/ is walked.
        assert_eq!(paths, ["/dev/loop0", "/dev/net/tun", "/dev/null"]);
        let lo = &devs[0];
        assert_eq!(
            (lo.kind, lo.major, lo.minor, lo.mode, lo.gid),
            ('b', 7, 0, 0o660, 6)
        );
        assert_eq!(devs[1].kind, 'c');
    }

    #[test]
    fn unreadable_root_is_an_error() {
        let none = FakeDev(HashMap::new());
        assert!(host_devices(&none, Path::new("/dev")).is_err());
    }

    #[test]
    fn grant_all_adds_nodes_and_allows_every_device() {
        let mut spec = json!({"linux": {
            "devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438}],
            "resources": {"devices": [{"allow": false, "access": "rwm"}]}
        }});
        let devs = host_devices(&fake(), Path::new("/dev")).expect("walk");
        grant_all(&mut spec, &devs);
        let list = spec["linux"]["devices"].as_array().expect("devices");
        assert_eq!(
            list.len(),
            3,
            "host /dev/null replaces the default: {list:?}"
        );
        let null: Vec<_> = list.iter().filter(|d| d["path"] == "/dev/null").collect();
        assert_eq!(null.len(), 1);
        assert_eq!(null[0]["fileMode"], 0o660);
        let lo = list
            .iter()
            .find(|d| d["path"] == "/dev/loop0")
            .expect("loop0");
        assert_eq!(
            (lo["type"].as_str(), lo["major"].as_u64()),
            (Some("b"), Some(7))
        );
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
    }
}
