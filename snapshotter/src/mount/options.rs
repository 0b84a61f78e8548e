//! Mount options: `MS_*` flag names, filesystem data, overlay lowerdir compaction.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

pub(super) struct ParsedOptions {
    pub(super) flags: MsFlags,
    pub(super) propagation: MsFlags,
    pub(super) data: Vec<String>,
}

pub(super) fn parse_options(options: &[String]) -> ParsedOptions {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for opt in options {
        let (clear, flag) = match opt.as_str() {
            "defaults" => (false, MsFlags::empty()),
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "bind" => (false, MsFlags::MS_BIND),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            "suid" => (true, MsFlags::MS_NOSUID),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "dev" => (true, MsFlags::MS_NODEV),
            "nodev" => (false, MsFlags::MS_NODEV),
            "exec" => (true, MsFlags::MS_NOEXEC),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "async" => (true, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (false, MsFlags::MS_DIRSYNC),
            "remount" => (false, MsFlags::MS_REMOUNT),
            "mand" => (false, MsFlags::MS_MANDLOCK),
            "nomand" => (true, MsFlags::MS_MANDLOCK),
            "atime" => (true, MsFlags::MS_NOATIME),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "diratime" => (true, MsFlags::MS_NODIRATIME),
            "nodiratime" => (false, MsFlags::MS_NODIRATIME),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "norelatime" => (true, MsFlags::MS_RELATIME),
            "strictatime" => (false, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
            other => {
                let prop = match other {
                    "private" => MsFlags::MS_PRIVATE,
                    "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                    "shared" => MsFlags::MS_SHARED,
                    "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
                    "slave" => MsFlags::MS_SLAVE,
                    "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    "unbindable" => MsFlags::MS_UNBINDABLE,
                    "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
                    _ => {
                        data.push(other.to_owned());
                        MsFlags::empty()
                    }
                };
                propagation |= prop;
                continue;
            }
        };
        if clear {
            flags.remove(flag);
        } else {
            flags.insert(flag);
        }
    }
    ParsedOptions {
        flags,
        propagation,
        data,
    }
}

pub(super) fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
}

/// Rewrites `lowerdir=` to paths relative to the lowerdirs' common directory and
/// returns that directory, or `None` (nothing changed) when there is no useful one.
pub(super) fn compact_lowerdir(data: &mut [String]) -> Option<PathBuf> {
    let opt = data.iter_mut().find(|o| o.starts_with("lowerdir="))?;
    let dirs: Vec<&Path> = opt["lowerdir=".len()..].split(':').map(Path::new).collect();
    if dirs.len() < 2 || !dirs.iter().all(|d| d.is_absolute()) {
        return None;
    }
    let mut common: PathBuf = dirs[0].parent()?.to_path_buf();
    while !dirs.iter().all(|d| d.starts_with(&common)) {
        common = common.parent()?.to_path_buf();
    }
    // Relative to "/" would gain nothing.
    common.parent()?;
    let rel: Vec<String> = dirs
        .iter()
        .map(|d| d.strip_prefix(&common).map(|r| r.display().to_string()))
        .collect::<Result<_, _>>()
        .ok()?;
    *opt = format!("lowerdir={}", rel.join(":"));
    Some(common)
}
