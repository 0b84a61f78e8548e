//! The container's root filesystem, set up by the init process inside its new mount
//! namespace: [`prepare`] (propagation, rootfs bind, mounts, devices, /dev links) runs
//! before the createRuntime/createContainer hooks, [`finish`] (pivot_root, root
//! propagation, sysctls, masked and read-only paths, read-only root) after them.
//!
//! Every destination is resolved with [`paths::secure_join`], so a symlink in the image
//! never points a mount outside the rootfs. Errors are plain messages: this code runs in
//! the child between fork and exec and reports over the sync socket.

pub mod devices;
pub mod mounts;
pub mod paths;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, makedev, mknod};

use devices::DeviceNode;
use mounts::{Kind, MountOp};

/// Everything the rootfs setup needs, computed in the parent.
#[derive(Debug, Clone)]
pub struct RootfsPlan {
    pub rootfs: PathBuf,
    pub mounts: Vec<MountOp>,
    pub devices: Vec<DeviceNode>,
    /// (hierarchy name, host dir) of the container's cgroup, for `cgroup` mounts.
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    pub cgroup2_host: bool,
    pub new_cgroupns: bool,
    pub in_userns: bool,
    pub no_pivot: bool,
    /// No mount namespace: only chroot into the rootfs, mount nothing.
    pub chroot_only: bool,
    pub root_propagation: Option<MsFlags>,
    pub readonly: bool,
    pub masked: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub sysctl: Vec<(String, String)>,
}

type R = std::result::Result<(), String>;

fn m(
    src: Option<&Path>,
    dst: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> R {
    mount(src, dst, fstype, flags, data).map_err(|e| {
        format!(
            "mount {} on {} ({}): {e}",
            src.map(|s| s.display().to_string()).unwrap_or_default(),
            dst.display(),
            fstype.unwrap_or("")
        )
    })
}

/// The flags of an existing mount that a bind remount must keep (locked in user ns).
fn locked_flags(p: &Path) -> MsFlags {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let mut f = MsFlags::empty();
    if let Ok(s) = statvfs(p) {
        let fl = s.flags();
        for (a, b) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if fl.contains(a) {
                f |= b;
            }
        }
    }
    f
}

fn bind_remount(dst: &Path, flags: MsFlags) -> R {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    if mount(None::<&str>, dst, None::<&str>, base | flags, None::<&str>).is_ok() {
        return Ok(());
    }
    m(None, dst, None, base | flags | locked_flags(dst), None)
}

fn mkdir_all(p: &Path) -> R {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))
}

fn touch(p: &Path) -> R {
    if let Some(parent) = p.parent() {
        mkdir_all(parent)?;
    }
    if p.exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .map(|_| ())
        .map_err(|e| format!("create {}: {e}", p.display()))
}

fn resolve(rootfs: &Path, dest: &Path) -> std::result::Result<PathBuf, String> {
    paths::secure_join(rootfs, dest).map_err(|e| format!("resolving {}: {e}", dest.display()))
}

fn mount_cgroup(plan: &RootfsPlan, op: &MountOp, dst: &Path) -> R {
    let ro = op.flags.contains(MsFlags::MS_RDONLY);
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mkdir_all(dst)?;
    if plan.cgroup2_host {
        if plan.new_cgroupns {
            return m(
                Some(Path::new("cgroup2")),
                dst,
                Some("cgroup2"),
                op.flags | base,
                None,
            );
        }
        let host = &plan.cgroup_dirs.first().ok_or("no cgroup directory")?.1;
        m(
            Some(host),
            dst,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        return bind_remount(dst, op.flags | base);
    }
    m(
        Some(Path::new("tmpfs")),
        dst,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )?;
    for (name, host) in &plan.cgroup_dirs {
        let sub = name.strip_prefix("name=").unwrap_or(name);
        let target = dst.join(sub);
        mkdir_all(&target)?;
        if plan.new_cgroupns {
            let opts = if name.starts_with("name=") {
                format!("none,{name}")
            } else {
                name.clone()
            };
            let f = base
                | if ro {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                };
            m(
                Some(Path::new("cgroup")),
                &target,
                Some("cgroup"),
                f,
                Some(&opts),
            )?;
        } else {
            m(
                Some(host),
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            let f = base
                | if ro {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                };
            bind_remount(&target, f)?;
        }
        if sub.contains(',') {
            for part in sub.split(',') {
                let link = dst.join(part);
                if !link.exists() {
                    symlink(sub, &link).map_err(|e| format!("symlink {}: {e}", link.display()))?;
                }
            }
        }
    }
    if ro {
        bind_remount(dst, base | MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

fn mount_one(plan: &RootfsPlan, op: &MountOp) -> R {
    let dst = resolve(&plan.rootfs, &op.dest)?;
    match op.kind {
        Kind::Bind => {
            let src = op.source.as_deref().ok_or("bind mount without source")?;
            if src.is_dir() {
                mkdir_all(&dst)?;
            } else {
                touch(&dst)?;
            }
            m(Some(src), &dst, None, op.flags, None)?;
            if !op.remount.is_empty() {
                bind_remount(&dst, op.remount)?;
            }
        }
        Kind::Cgroup => mount_cgroup(plan, op, &dst)?,
        Kind::Other => {
            mkdir_all(&dst)?;
            let data = (!op.data.is_empty()).then_some(op.data.as_str());
            let r = m(
                op.source.as_deref(),
                &dst,
                op.fstype.as_deref(),
                op.flags,
                data,
            );
            if let Err(e) = r {
                // sysfs cannot be mounted in a user ns without its own net ns: bind it.
                if op.fstype.as_deref() == Some("sysfs") && plan.in_userns {
                    m(
                        Some(Path::new("/sys")),
                        &dst,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                    )?;
                    bind_remount(&dst, op.flags)?;
                } else {
                    return Err(e);
                }
            }
        }
    }
    for p in &op.propagation {
        m(None, &dst, None, *p, None)?;
    }
    Ok(())
}

fn make_device(plan: &RootfsPlan, d: &DeviceNode) -> R {
    let dst = resolve(&plan.rootfs, &d.path)?;
    if let Some(parent) = dst.parent() {
        mkdir_all(parent)?;
    }
    let _ = std::fs::remove_file(&dst);
    if plan.in_userns {
        touch(&dst)?;
        return m(Some(&d.path), &dst, None, MsFlags::MS_BIND, None);
    }
    mknod(
        &dst,
        d.kind,
        Mode::from_bits_truncate(d.mode),
        makedev(d.major, d.minor),
    )
    .map_err(|e| format!("mknod {}: {e}", dst.display()))?;
    nix::unistd::chown(&dst, Some(d.uid.into()), Some(d.gid.into()))
        .map_err(|e| format!("chown {}: {e}", dst.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(d.mode))
        .map_err(|e| format!("chmod {}: {e}", dst.display()))
}

/// Mounts, devices and /dev links, before the hooks that need the environment.
pub fn prepare(plan: &RootfsPlan) -> R {
    if plan.chroot_only {
        return Ok(());
    }
    m(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    m(
        Some(&plan.rootfs),
        &plan.rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    m(None, &plan.rootfs, None, MsFlags::MS_PRIVATE, None)?;
    for op in &plan.mounts {
        mount_one(plan, op)?;
    }
    let dev = resolve(&plan.rootfs, Path::new("/dev"))?;
    mkdir_all(&dev)?;
    for d in &plan.devices {
        make_device(plan, d)?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let p = dev.join(link);
        if std::fs::symlink_metadata(&p).is_err() {
            symlink(target, &p).map_err(|e| format!("symlink {}: {e}", p.display()))?;
        }
    }
    let ptmx = dev.join("ptmx");
    if dev.join("pts/ptmx").exists() {
        let _ = std::fs::remove_file(&ptmx);
        symlink("pts/ptmx", &ptmx).map_err(|e| format!("symlink {}: {e}", ptmx.display()))?;
    }
    Ok(())
}

fn pivot(rootfs: &Path) -> R {
    use nix::fcntl::{OFlag, open};
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).map_err(|e| format!("open /: {e}"))?;
    let new = open(rootfs, flags, Mode::empty()).map_err(|e| format!("open rootfs: {e}"))?;
    nix::unistd::fchdir(&new).map_err(|e| format!("fchdir rootfs: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    nix::unistd::fchdir(&old).map_err(|e| format!("fchdir old root: {e}"))?;
    m(
        None,
        Path::new("."),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("unmount old root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    drop(old);
    drop(new);
    Ok(())
}

fn move_root(rootfs: &Path) -> R {
    nix::unistd::chdir(rootfs).map_err(|e| format!("chdir rootfs: {e}"))?;
    m(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// Switches root and applies the settings that need the final root.
pub fn finish(plan: &RootfsPlan) -> R {
    if plan.chroot_only {
        nix::unistd::chroot(&plan.rootfs).map_err(|e| format!("chroot: {e}"))?;
        return nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"));
    }
    if plan.no_pivot {
        move_root(&plan.rootfs)?;
    } else {
        pivot(&plan.rootfs)?;
    }
    if let Some(p) = plan.root_propagation {
        m(None, Path::new("/"), None, p, None)?;
    }
    apply_sysctl(&plan.sysctl)?;
    for p in &plan.masked {
        mask_path(p)?;
    }
    for p in &plan.readonly_paths {
        readonly_path(p)?;
    }
    if plan.readonly {
        bind_remount(Path::new("/"), MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

/// Writes sysctls under /proc/sys (inside the container).
pub fn apply_sysctl(list: &[(String, String)]) -> R {
    for (k, v) in list {
        let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&p, v).map_err(|e| format!("sysctl {k}={v}: {e}"))?;
    }
    Ok(())
}

fn mask_path(p: &Path) -> R {
    match std::fs::metadata(p) {
        Err(_) => Ok(()),
        Ok(md) if md.is_dir() => m(
            Some(Path::new("tmpfs")),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        ),
        Ok(_) => m(
            Some(Path::new("/dev/null")),
            p,
            None,
            MsFlags::MS_BIND,
            None,
        ),
    }
}

fn readonly_path(p: &Path) -> R {
    if std::fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    m(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    bind_remount(
        p,
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )
}
