//! Device nodes of the container's /dev: the default set plus `linux.devices`.

use std::path::PathBuf;

use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result};

/// One node to create (or bind from the host inside a user namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

fn node(path: &str, major: u64, minor: u64) -> DeviceNode {
    DeviceNode {
        path: PathBuf::from(path),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    }
}

/// The nodes every container gets, then the spec's (a spec entry replaces a default one
/// with the same path).
pub fn plan(spec_devices: &[LinuxDevice]) -> Result<Vec<DeviceNode>> {
    let mut out = vec![
        node("/dev/null", 1, 3),
        node("/dev/zero", 1, 5),
        node("/dev/full", 1, 7),
        node("/dev/random", 1, 8),
        node("/dev/urandom", 1, 9),
        node("/dev/tty", 5, 0),
    ];
    for d in spec_devices {
        if !d.path().starts_with("/dev") {
            return Err(Error::InvalidSpec(format!(
                "device {} is outside /dev",
                d.path().display()
            )));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::InvalidSpec(format!(
                    "device {} has type 'a'",
                    d.path().display()
                )));
            }
        };
        out.retain(|n| n.path != *d.path());
        out.push(DeviceNode {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let d: Vec<LinuxDevice> = serde_json::from_str(
            r#"[{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":420},
                {"path":"/dev/sda","type":"b","major":8,"minor":0,"uid":5}]"#,
        )
        .expect("json");
        let p = plan(&d).expect("plan");
        assert_eq!(p.len(), 7);
        let null = p.iter().find(|n| n.path.ends_with("null")).expect("null");
        assert_eq!(null.mode, 0o644);
        let sda = p.last().expect("sda");
        assert_eq!((sda.kind, sda.major, sda.uid), (SFlag::S_IFBLK, 8, 5));
        let bad: Vec<LinuxDevice> =
            serde_json::from_str(r#"[{"path":"/etc/x","type":"c","major":1,"minor":3}]"#)
                .expect("json");
        assert!(plan(&bad).is_err());
    }
}
