//! What `create` will do, computed from the bundle before anything exists on the host:
//! namespaces, the process (identity, capability sets, rlimits, seccomp), the rootfs
//! (mounts, devices, paths), hooks and the cgroup. Pure, so it is unit-tested.

use std::path::PathBuf;

use oci_spec::runtime::{Hook, LinuxIdMapping, LinuxNamespaceType, LinuxResources};

use super::CreateOptions;
use crate::cgroups;
use crate::error::{Error, Result};
use crate::namespaces::{self, NsPlan};
use crate::process::{self, ProcessPlan};
use crate::rootfs::{RootfsPlan, devices, mounts};
use crate::spec::Bundle;

/// The plan of one container.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub ns: NsPlan,
    pub process: ProcessPlan,
    /// `cgroup_dirs` and `cgroup2_host` are filled in once the cgroup exists.
    pub rootfs: RootfsPlan,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub time_offsets: Vec<(String, i64, u32)>,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub cgroup_path: PathBuf,
    pub resources: Option<LinuxResources>,
}

/// Plans container `id` of bundle `b`.
pub fn plan(b: &Bundle, id: &str, opts: &CreateOptions) -> Result<ContainerPlan> {
    let spec = &b.spec;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("linux section is missing".into()))?;
    let ns = namespaces::plan(linux)?;
    namespaces::validate_spec(spec, &ns)?;
    // Without a mount namespace the container shares the host's mounts: nothing can be
    // mounted (it would change the host), the process is only chrooted into the rootfs.
    let chroot_only = !ns.has(LinuxNamespaceType::Mount);
    if chroot_only && spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        tracing::warn!(
            id,
            "no mount namespace: mounts, devices and masked paths are not applied"
        );
    }
    let process_spec = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("process is missing".into()))?;
    let pplan = process::plan(process_spec, linux.seccomp().as_ref())?;
    if pplan.terminal && opts.console_socket.is_none() {
        return Err(Error::InvalidSpec(
            "process.terminal needs --console-socket".into(),
        ));
    }
    let mut mount_ops = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let mut op = mounts::plan(m)?;
        if op.kind == mounts::Kind::Bind
            && let Some(src) = &op.source
            && src.is_relative()
        {
            op.source = Some(b.dir.join(src));
        }
        mount_ops.push(op);
    }
    let root_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => None,
        Some(p) => Some(mounts::propagation_of(p).ok_or_else(|| {
            Error::InvalidSpec(format!("rootfsPropagation {p:?} is not a propagation mode"))
        })?),
    };
    let devices = devices::plan(linux.devices().as_deref().unwrap_or(&[]))?;
    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctl.sort();
    let mut time_offsets = Vec::new();
    for (clock, off) in linux.time_offsets().iter().flatten() {
        time_offsets.push((
            clock.clone(),
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0),
        ));
    }
    let hooks_cfg = spec.hooks().clone().unwrap_or_default();
    let prestart = hooks_cfg.prestart().clone().unwrap_or_default();
    let create_runtime = hooks_cfg.create_runtime().clone().unwrap_or_default();
    let cgroup_path = cgroups::container_path(linux.cgroups_path().as_deref(), id);

    if let Some(m) = linux.resources().as_ref().and_then(|r| *r.memory())
        && (m.kernel().is_some() || m.kernel_tcp().is_some())
    {
        tracing::warn!(
            id,
            "memory.kernel and memory.kernelTCP are deprecated and ignored"
        );
    }
    let root_cfg = spec.root().as_ref();
    Ok(ContainerPlan {
        process: pplan,
        rootfs: RootfsPlan {
            rootfs: b.rootfs.clone(),
            mounts: mount_ops,
            devices,
            cgroup_dirs: Vec::new(),
            cgroup2_host: false,
            new_cgroupns: ns.creates(LinuxNamespaceType::Cgroup),
            in_userns: ns.has(LinuxNamespaceType::User),
            no_pivot: opts.no_pivot,
            chroot_only,
            root_propagation,
            readonly: root_cfg.and_then(|r| r.readonly()).unwrap_or(false),
            masked: linux
                .masked_paths()
                .iter()
                .flatten()
                .map(PathBuf::from)
                .collect(),
            readonly_paths: linux
                .readonly_paths()
                .iter()
                .flatten()
                .map(PathBuf::from)
                .collect(),
            sysctl,
        },
        ns,
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
        time_offsets,
        uid_mappings: linux.uid_mappings().clone().unwrap_or_default(),
        gid_mappings: linux.gid_mappings().clone().unwrap_or_default(),
        prestart,
        create_runtime,
        create_container: hooks_cfg.create_container().clone().unwrap_or_default(),
        start_container: hooks_cfg.start_container().clone().unwrap_or_default(),
        cgroup_path,
        resources: linux.resources().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::mount::MsFlags;

    fn bundle(spec: serde_json::Value) -> (tempfile::TempDir, Bundle) {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(t.path().join("rootfs")).expect("mkdir");
        std::fs::write(t.path().join("config.json"), spec.to_string()).expect("write");
        let b = crate::spec::load(t.path()).expect("load");
        (t, b)
    }

    #[test]
    fn default_spec_plan() {
        let mut s = crate::default_spec::spec(false);
        s["process"]["terminal"] = serde_json::json!(false);
        s["mounts"].as_array_mut().expect("mounts").push(serde_json::json!(
            {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "rprivate"]}
        ));
        s["linux"]["devices"] =
            serde_json::json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
        s["linux"]["cgroupsPath"] = serde_json::json!("pod/c1");
        let (t, b) = bundle(s);
        let p = plan(&b, "c1", &CreateOptions::default()).expect("plan");

        // Namespaces: everything new, no user namespace.
        assert!(!p.ns.new_user && p.ns.joins.is_empty());
        assert!(p.ns.creates(LinuxNamespaceType::Network));
        // Mounts in spec order; the relative bind source is resolved in the bundle.
        let dests: Vec<_> = p
            .rootfs
            .mounts
            .iter()
            .map(|m| m.dest.display().to_string())
            .collect();
        assert_eq!(dests[..3], ["/proc", "/dev", "/dev/pts"]);
        let data = p.rootfs.mounts.last().expect("bind");
        assert_eq!(
            data.source.as_deref(),
            Some(t.path().join("data").as_path())
        );
        assert_eq!(data.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(data.remount, MsFlags::MS_RDONLY);
        assert_eq!(
            data.propagation,
            vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]
        );
        // Devices: the defaults plus the spec's.
        assert!(
            p.rootfs
                .devices
                .iter()
                .any(|d| d.path.ends_with("fuse") && d.major == 10)
        );
        assert_eq!(p.rootfs.devices.len(), 7);
        // Capabilities: runc's default three in bounding/effective/permitted.
        let caps = p.process.caps.expect("caps");
        let want = (1 << 29) | (1 << 5) | (1 << 10); // AUDIT_WRITE, KILL, NET_BIND_SERVICE
        assert_eq!(
            (caps.bounding, caps.effective, caps.permitted),
            (want, want, want)
        );
        assert_eq!(caps.inheritable, 0);
        assert!(p.process.no_new_privileges);
        // Paths, root, cgroup.
        assert!(p.rootfs.readonly);
        assert!(p.rootfs.masked.contains(&PathBuf::from("/proc/kcore")));
        assert_eq!(p.cgroup_path, PathBuf::from("/berth/pod/c1"));
        assert_eq!(p.hostname.as_deref(), Some("berth"));
        assert!(!p.rootfs.chroot_only);
    }

    #[test]
    fn refused_plans() {
        let mut s = crate::default_spec::spec(false);
        assert!(
            plan(&bundle(s.clone()).1, "x", &CreateOptions::default()).is_err(),
            "terminal without a console socket"
        );
        s["process"]["terminal"] = serde_json::json!(false);
        s["linux"]["rootfsPropagation"] = serde_json::json!("sideways");
        assert!(plan(&bundle(s.clone()).1, "x", &CreateOptions::default()).is_err());
        s["linux"]["rootfsPropagation"] = serde_json::json!("rshared");
        s["linux"]["sysctl"] = serde_json::json!({"kernel.panic": "1"});
        assert!(
            plan(&bundle(s).1, "x", &CreateOptions::default()).is_err(),
            "not namespaced"
        );
    }
}
