//! Mount entries of the spec turned into mount operations: flags, propagation, data and
//! the remount a bind needs for ro/nosuid/nodev/noexec.

use std::path::PathBuf;

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::error::{Error, Result};

/// What kind of mount an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Cgroup,
    Other,
}

/// One planned mount.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOp {
    pub kind: Kind,
    pub source: Option<PathBuf>,
    /// Destination inside the container (absolute).
    pub dest: PathBuf,
    pub fstype: Option<String>,
    /// Flags of the mount call (for binds: MS_BIND and MS_REC only).
    pub flags: MsFlags,
    /// For binds: the flags of the remount that follows (ro, nosuid, ...).
    pub remount: MsFlags,
    /// Propagation changes applied after mounting, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options (`mode=755`, `size=...`).
    pub data: String,
}

/// Parses one option: (set, clear) flags, propagation flag, or None for data.
fn flag_of(opt: &str) -> Option<(MsFlags, bool)> {
    Some(match opt {
        "ro" => (MsFlags::MS_RDONLY, false),
        "rw" => (MsFlags::MS_RDONLY, true),
        "nosuid" => (MsFlags::MS_NOSUID, false),
        "suid" => (MsFlags::MS_NOSUID, true),
        "nodev" => (MsFlags::MS_NODEV, false),
        "dev" => (MsFlags::MS_NODEV, true),
        "noexec" => (MsFlags::MS_NOEXEC, false),
        "exec" => (MsFlags::MS_NOEXEC, true),
        "sync" => (MsFlags::MS_SYNCHRONOUS, false),
        "async" => (MsFlags::MS_SYNCHRONOUS, true),
        "dirsync" => (MsFlags::MS_DIRSYNC, false),
        "remount" => (MsFlags::MS_REMOUNT, false),
        "mand" => (MsFlags::MS_MANDLOCK, false),
        "nomand" => (MsFlags::MS_MANDLOCK, true),
        "noatime" => (MsFlags::MS_NOATIME, false),
        "atime" => (MsFlags::MS_NOATIME, true),
        "nodiratime" => (MsFlags::MS_NODIRATIME, false),
        "diratime" => (MsFlags::MS_NODIRATIME, true),
        "relatime" => (MsFlags::MS_RELATIME, false),
        "norelatime" => (MsFlags::MS_RELATIME, true),
        "strictatime" => (MsFlags::MS_STRICTATIME, false),
        "nostrictatime" => (MsFlags::MS_STRICTATIME, true),
        "bind" => (MsFlags::MS_BIND, false),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, false),
        _ => return None,
    })
}

/// The propagation flags of a propagation keyword.
pub fn propagation_of(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Plans one spec mount.
pub fn plan(m: &Mount) -> Result<MountOp> {
    let mut flags = MsFlags::empty();
    let mut propagation = Vec::new();
    let mut data = Vec::new();
    for o in m.options().iter().flatten() {
        if let Some((f, clear)) = flag_of(o) {
            if clear {
                flags.remove(f)
            } else {
                flags.insert(f)
            }
        } else if let Some(p) = propagation_of(o) {
            propagation.push(p);
        } else if o == "tmpcopyup" || o.starts_with("x-") {
            // not a kernel option
        } else if o == "idmap" || o == "ridmap" {
            return Err(Error::InvalidSpec(format!(
                "mount {}: idmapped mounts are not supported",
                m.destination().display()
            )));
        } else {
            data.push(o.as_str());
        }
    }
    let fstype = m.typ().clone().filter(|t| !t.is_empty());
    let kind = if flags.contains(MsFlags::MS_BIND) || fstype.as_deref() == Some("bind") {
        Kind::Bind
    } else if fstype.as_deref() == Some("cgroup") || fstype.as_deref() == Some("cgroup2") {
        Kind::Cgroup
    } else {
        Kind::Other
    };
    let (flags, remount) = if kind == Kind::Bind {
        let call = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
        let rest = flags - MsFlags::MS_BIND - MsFlags::MS_REC - MsFlags::MS_REMOUNT;
        (call, rest)
    } else {
        (flags, MsFlags::empty())
    };
    if kind == Kind::Bind && m.source().is_none() {
        return Err(Error::InvalidSpec(format!(
            "bind mount {} has no source",
            m.destination().display()
        )));
    }
    Ok(MountOp {
        kind,
        source: m.source().clone(),
        dest: m.destination().clone(),
        fstype,
        flags,
        remount,
        propagation,
        data: data.join(","),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(json: &str) -> MountOp {
        plan(&serde_json::from_str(json).expect("mount json")).expect("plan")
    }

    #[test]
    fn tmpfs_flags_and_data() {
        let m = mount(
            r#"{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}"#,
        );
        assert_eq!(m.kind, Kind::Other);
        assert_eq!(m.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(m.data, "mode=755,size=65536k");
    }

    #[test]
    fn bind_ro_becomes_bind_then_remount() {
        let m = mount(
            r#"{"destination":"/data","type":"bind","source":"/srv","options":["rbind","ro","nosuid","rslave"]}"#,
        );
        assert_eq!(m.kind, Kind::Bind);
        assert_eq!(m.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(m.remount, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(m.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn cgroup_and_refusals() {
        let m = mount(
            r#"{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro"]}"#,
        );
        assert_eq!(m.kind, Kind::Cgroup);
        let bad: Mount =
            serde_json::from_str(r#"{"destination":"/x","type":"bind","options":["bind"]}"#)
                .expect("json");
        assert!(plan(&bad).is_err(), "bind without source");
    }
}
