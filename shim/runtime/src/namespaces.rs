//! Namespaces: which to create, which to join (by path), and validation of the settings
//! that need one (hostname needs uts, sysctls need ipc/net/uts, mappings need user).

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// What the intermediate process does with namespaces.
#[derive(Debug, Clone, PartialEq)]
pub struct NsPlan {
    /// Create a user namespace (the parent writes the id maps).
    pub new_user: bool,
    /// Other namespaces to create with one `unshare`.
    pub unshare: CloneFlags,
    /// Namespaces to join, user first.
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Every type listed in the spec.
    pub types: Vec<LinuxNamespaceType>,
}

impl Default for NsPlan {
    fn default() -> Self {
        NsPlan {
            new_user: false,
            unshare: CloneFlags::empty(),
            joins: Vec::new(),
            types: Vec::new(),
        }
    }
}

impl NsPlan {
    /// True if the spec lists a namespace of type `t` (new or joined).
    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.types.contains(&t)
    }
    /// True if a new namespace of type `t` is created.
    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.has(t) && !self.joins.iter().any(|(j, _)| *j == t)
    }
}

/// The clone flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The `/proc/<pid>/ns/<name>` file name of a type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Plans the namespaces of `linux`, validating duplicates and id mappings.
pub fn plan(linux: &Linux) -> Result<NsPlan> {
    let mut p = NsPlan::default();
    for ns in linux.namespaces().iter().flatten() {
        let t = ns.typ();
        if p.types.contains(&t) {
            return Err(Error::InvalidSpec(format!(
                "namespace {} is listed twice",
                proc_name(t)
            )));
        }
        p.types.push(t);
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                if !path.is_absolute() {
                    return Err(Error::InvalidSpec(format!(
                        "namespace path {} is not absolute",
                        path.display()
                    )));
                }
                p.joins.push((t, path.clone()))
            }
            _ if t == LinuxNamespaceType::User => p.new_user = true,
            _ => p.unshare |= flag(t),
        }
    }
    p.joins
        .sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if p.new_user && !maps {
        return Err(Error::InvalidSpec(
            "a new user namespace needs uidMappings and gidMappings".into(),
        ));
    }
    if maps && !p.has(LinuxNamespaceType::User) {
        return Err(Error::InvalidSpec(
            "uid/gid mappings need a user namespace".into(),
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|o| !o.is_empty())
        && !p.creates(LinuxNamespaceType::Time)
    {
        return Err(Error::InvalidSpec(
            "timeOffsets need a new time namespace".into(),
        ));
    }
    Ok(p)
}

/// Checks settings that need a private namespace.
pub fn validate_spec(spec: &Spec, p: &NsPlan) -> Result<()> {
    let uts = p.has(LinuxNamespaceType::Uts);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !uts {
        return Err(Error::InvalidSpec(
            "hostname needs a private uts namespace".into(),
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !uts {
        return Err(Error::InvalidSpec(
            "domainname needs a private uts namespace".into(),
        ));
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        let ipc = key.starts_with("fs.mqueue.")
            || matches!(
                key.as_str(),
                "kernel.msgmax"
                    | "kernel.msgmnb"
                    | "kernel.msgmni"
                    | "kernel.sem"
                    | "kernel.shmall"
                    | "kernel.shmmax"
                    | "kernel.shmmni"
                    | "kernel.shm_rmid_forced"
            );
        let ok = if ipc {
            p.has(LinuxNamespaceType::Ipc)
        } else if key.starts_with("net.") {
            p.has(LinuxNamespaceType::Network)
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            uts
        } else {
            false
        };
        if !ok {
            return Err(Error::InvalidSpec(format!(
                "sysctl {key} is not namespaced or its namespace is not private"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: &str) -> Linux {
        serde_json::from_str(json).expect("linux json")
    }

    #[test]
    fn new_and_joined() {
        let p = plan(&linux(
            r#"{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"},{"type":"mount"},
                {"type":"user","path":"/proc/1/ns/user"}]}"#,
        ))
        .expect("plan");
        assert_eq!(
            p.unshare,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert_eq!(p.joins[0].0, LinuxNamespaceType::User);
        assert!(!p.new_user);
        assert!(p.creates(LinuxNamespaceType::Pid));
        assert!(!p.creates(LinuxNamespaceType::Network));
    }

    #[test]
    fn invalid_namespace_settings() {
        assert!(plan(&linux(r#"{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#)).is_err());
        assert!(plan(&linux(r#"{"namespaces":[{"type":"user"}]}"#)).is_err());
        assert!(
            plan(&linux(
                r#"{"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#
            ))
            .is_err()
        );
        assert!(
            serde_json::from_str::<Linux>(r#"{"namespaces":[{"type":"bogus"}]}"#).is_err(),
            "unknown type is a parse error"
        );
    }

    #[test]
    fn sysctl_needs_namespace() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"sysctl":{"net.ipv4.ip_forward":"1"},"namespaces":[{"type":"pid"}]}}"#,
        )
        .expect("spec");
        let p = plan(spec.linux().as_ref().expect("linux")).expect("plan");
        assert!(validate_spec(&spec, &p).is_err());
    }
}
