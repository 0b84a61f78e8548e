//! OOM watch of a container's memory cgroup, publishing `/tasks/oom`:
//! cgroup v1 through an eventfd registered on `memory.oom_control` via
//! `cgroup.event_control`; cgroup v2 by polling the `oom_kill` counter of
//! `memory.events` (every [`V2_POLL`]).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api::containerd::events::TaskOom;
use nix::sys::eventfd::{EfdFlags, EventFd};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use crate::events::{Publisher, topic};

/// Poll interval of `memory.events` on cgroup v2.
pub const V2_POLL: Duration = Duration::from_secs(1);

/// Where a process's memory cgroup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryCgroup {
    /// A v1 memory controller directory.
    V1(PathBuf),
    /// A v2 (unified) directory with memory accounting.
    V2(PathBuf),
}

/// The memory cgroup from `/proc/<pid>/cgroup` and `mountinfo` text.
pub fn find(proc_cgroup: &str, mountinfo: &str) -> Option<MemoryCgroup> {
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.split(',').any(|c| c == "memory") {
            let mount = mount_point(mountinfo, |fs, opts| {
                fs == "cgroup" && opts.split(',').any(|o| o == "memory")
            })?;
            return Some(MemoryCgroup::V1(join(&mount, path)));
        }
        if ctrls.is_empty() {
            unified = Some(path.to_owned());
        }
    }
    let path = unified?;
    let mount = mount_point(mountinfo, |fs, _| fs == "cgroup2")?;
    Some(MemoryCgroup::V2(join(&mount, &path)))
}

fn join(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

/// The mount point of the first mountinfo line whose fs type and super
/// options match.
fn mount_point(mountinfo: &str, want: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let (Some(fs), Some(_src), Some(opts)) = (post.next(), post.next(), post.next()) else {
            continue;
        };
        if want(fs, opts)
            && let Some(mp) = pre.split(' ').nth(4)
        {
            return Some(PathBuf::from(mp));
        }
    }
    None
}

/// The `oom_kill` count in `memory.events` text.
pub fn oom_kills(memory_events: &str) -> u64 {
    memory_events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Starts watching the memory cgroup of `pid`; `None` when there is none
/// (or no memory accounting).
pub fn watch(pid: u32, container_id: String, events: Publisher) -> Option<JoinHandle<()>> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    match find(&cg, &mi)? {
        MemoryCgroup::V1(dir) => match register_v1(&dir) {
            Ok((efd, oom)) => Some(tokio::spawn(watch_v1(dir, efd, oom, container_id, events))),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch oom");
                None
            }
        },
        MemoryCgroup::V2(dir) => {
            let file = dir.join("memory.events");
            let start = oom_kills(&std::fs::read_to_string(&file).ok()?);
            Some(tokio::spawn(watch_v2(file, start, container_id, events)))
        }
    }
}

fn register_v1(dir: &Path) -> std::io::Result<(AsyncFd<EventFd>, File)> {
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
    let oom = File::open(dir.join("memory.oom_control"))?;
    std::fs::write(
        dir.join("cgroup.event_control"),
        format!("{} {}", efd.as_raw_fd(), oom.as_raw_fd()),
    )?;
    // SAFETY: the AsyncFd owns the EventFd, whose fd stays open and
    // unchanged until the AsyncFd is dropped.
    let efd = unsafe { AsyncFd::register(efd) }?;
    Ok((efd, oom))
}

async fn watch_v1(
    dir: PathBuf,
    efd: AsyncFd<EventFd>,
    _oom: File,
    container_id: String,
    events: Publisher,
) {
    loop {
        let Ok(mut guard) = efd.readable().await else {
            return;
        };
        match guard.try_io(|fd| fd.get_ref().read().map_err(std::io::Error::from)) {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_would_block) => continue,
        }
        // The eventfd also fires when the cgroup is removed.
        if !dir.join("memory.oom_control").exists() {
            return;
        }
        tracing::info!(id = %container_id, "oom");
        events.publish(
            topic::OOM,
            &TaskOom {
                container_id: container_id.clone(),
            },
        );
    }
}

async fn watch_v2(file: PathBuf, mut seen: u64, container_id: String, events: Publisher) {
    let mut tick = tokio::time::interval(V2_POLL);
    loop {
        tick.tick().await;
        let Ok(text) = std::fs::read_to_string(&file) else {
            return;
        };
        let now = oom_kills(&text);
        if now > seen {
            tracing::info!(id = %container_id, kills = now - seen, "oom");
            events.publish(
                topic::OOM,
                &TaskOom {
                    container_id: container_id.clone(),
                },
            );
            seen = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 20 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn finds_v1_memory_cgroup_on_hybrid_host() {
        let cg = "12:cpu,cpuacct:/default/c1\n9:memory:/default/c1\n0::/default/c1\n";
        assert_eq!(
            find(cg, MOUNTINFO),
            Some(MemoryCgroup::V1("/sys/fs/cgroup/memory/default/c1".into()))
        );
    }

    #[test]
    fn finds_v2_cgroup_on_unified_host() {
        let mi = "26 1 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        assert_eq!(
            find("0::/default/c2\n", mi),
            Some(MemoryCgroup::V2("/sys/fs/cgroup/default/c2".into()))
        );
        assert_eq!(find("", mi), None);
    }

    #[test]
    fn counts_oom_kills() {
        assert_eq!(oom_kills("low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n"), 1);
        assert_eq!(oom_kills("low 0\n"), 0);
    }
}
