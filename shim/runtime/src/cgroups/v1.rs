//! cgroup v1: one directory per mounted hierarchy (`/sys/fs/cgroup/<controllers>`),
//! also on hybrid hosts, whose cgroup2 mount is left alone.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{
    CgroupError, CgroupManager, Stats, plan, procs_recursive, read_file, remove_dir, stats, under,
    write_file,
};

/// One v1 hierarchy: its mount point and the controllers (or `name=`) attached to it.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
}

impl Hierarchy {
    fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }
    fn name(&self) -> String {
        self.controllers.join(",")
    }
}

/// The v1 manager of one container cgroup.
#[derive(Debug, Clone)]
pub struct V1 {
    path: PathBuf,
    hierarchies: Vec<Hierarchy>,
}

impl V1 {
    /// A manager over explicit hierarchies (tests use temp dirs).
    pub fn new(hierarchies: Vec<Hierarchy>, path: &Path) -> Self {
        V1 {
            path: path.to_path_buf(),
            hierarchies,
        }
    }

    /// The hierarchies mounted on this host (from `/proc/self/mountinfo`).
    pub fn from_host(path: &Path) -> Result<Self, CgroupError> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| CgroupError::io("reading", "/proc/self/mountinfo", e))?;
        Ok(V1::new(parse_mountinfo(&info), path))
    }

    fn dir_of(&self, h: &Hierarchy) -> PathBuf {
        under(&h.mount, &self.path)
    }

    fn hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.has(controller))
    }

    fn controller_dir(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchy(controller).map(|h| self.dir_of(h))
    }

    fn create(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let dir = self.dir_of(h);
            if h.has("cpuset") {
                create_cpuset(&h.mount, &dir)?;
            } else {
                std::fs::create_dir_all(&dir).map_err(|e| CgroupError::io("creating", &dir, e))?;
            }
        }
        Ok(())
    }

    fn write_plan(&self, writes: &[plan::Write]) -> Result<(), CgroupError> {
        let mut i = 0;
        while i < writes.len() {
            let wr = &writes[i];
            let dir = self.controller_dir(wr.controller).ok_or_else(|| {
                CgroupError::Unsupported(format!(
                    "controller {} is not mounted (needed for {})",
                    wr.controller, wr.file
                ))
            })?;
            match write_file(&dir, &wr.file, &wr.value) {
                Ok(()) => {}
                // Raising the memory limit above memory+swap: write memsw first.
                Err(CgroupError::Io { source, .. })
                    if wr.file == "memory.limit_in_bytes"
                        && source.raw_os_error() == Some(libc::EINVAL)
                        && writes
                            .get(i + 1)
                            .is_some_and(|n| n.file == "memory.memsw.limit_in_bytes") =>
                {
                    let next = &writes[i + 1];
                    write_file(&dir, &next.file, &next.value)?;
                    write_file(&dir, &wr.file, &wr.value)?;
                    i += 1;
                }
                Err(e) => return Err(e),
            }
            i += 1;
        }
        Ok(())
    }
}

/// Creates `dir` below a cpuset mount, copying cpus and mems down so tasks can join.
fn create_cpuset(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(mount).unwrap_or(dir);
    let mut cur = mount.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        if !cur.exists() {
            std::fs::create_dir(&cur).map_err(|e| CgroupError::io("creating", &cur, e))?;
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = read_file(&cur, f).unwrap_or_default();
            if mine.trim().is_empty() {
                let theirs = read_file(&parent, f)?;
                write_file(&cur, f, theirs.trim())?;
            }
        }
    }
    Ok(())
}

/// The v1 hierarchies in a mountinfo text.
pub(crate) fn parse_mountinfo(info: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        if r.next() != Some("cgroup") {
            continue;
        }
        let opts = r.nth(1).unwrap_or("");
        let Some(mount) = left.split(' ').nth(4) else {
            continue;
        };
        let known = [
            "cpu",
            "cpuacct",
            "cpuset",
            "memory",
            "devices",
            "freezer",
            "net_cls",
            "net_prio",
            "blkio",
            "perf_event",
            "hugetlb",
            "pids",
            "rdma",
            "misc",
        ];
        let controllers: Vec<String> = opts
            .split(',')
            .filter(|o| known.contains(o) || o.starts_with("name="))
            .map(str::to_owned)
            .collect();
        if !controllers.is_empty() {
            out.push(Hierarchy {
                mount: PathBuf::from(mount),
                controllers,
            });
        }
    }
    out
}

impl CgroupManager for V1 {
    fn apply(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        let writes = match resources {
            Some(r) => plan::v1(r)?,
            None => Vec::new(),
        };
        self.create()?;
        self.write_plan(&writes)
    }

    fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let writes = plan::v1(resources)?;
        self.write_plan(&writes)
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            write_file(&self.dir_of(h), "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| self.dir_of(h).join("tasks"))
            .collect()
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let h = self
            .hierarchy("pids")
            .or_else(|| self.hierarchy("memory"))
            .or_else(|| self.hierarchies.first())
            .ok_or_else(|| CgroupError::Unsupported("no cgroup hierarchy mounted".into()))?;
        let mut out = Vec::new();
        procs_recursive(&self.dir_of(h), &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self
            .controller_dir("freezer")
            .ok_or_else(|| CgroupError::Unsupported("freezer is not mounted".into()))?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..1000 {
            write_file(&dir, "freezer.state", want)?;
            if read_file(&dir, "freezer.state")?.trim() == want {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Unsupported(format!(
            "freezer did not reach {want} in {}",
            dir.display()
        )))
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.controller_dir("freezer") {
            Some(dir) => Ok(read_file(&dir, "freezer.state")?.trim() == "FROZEN"),
            None => Ok(false),
        }
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        if let Some(d) = self.controller_dir("cpuacct") {
            stats::v1_cpu(&d, &mut s)?;
        }
        if let Some(d) = self.controller_dir("cpu") {
            stats::v1_throttling(&d, &mut s);
        }
        if let Some(d) = self.controller_dir("memory") {
            stats::v1_memory(&d, &mut s)?;
        }
        if let Some(d) = self.controller_dir("pids") {
            stats::pids(&d, &mut s)?;
        }
        if let Some(d) = self.controller_dir("blkio") {
            stats::v1_blkio(&d, &mut s);
        }
        if let Some(d) = self.controller_dir("hugetlb") {
            stats::v1_hugetlb(&d, &mut s);
        }
        Ok(s)
    }

    fn remove(&self) -> Result<(), CgroupError> {
        let mut first = None;
        for h in &self.hierarchies {
            let dir = self.dir_of(h);
            let stop = under(&h.mount, Path::new("/").join(super::BERTH_PARENT).as_path());
            let stop = if dir.starts_with(&stop) {
                stop
            } else {
                dir.parent().unwrap_or(&dir).to_path_buf()
            };
            if let Err(e) = remove_dir(&dir, &stop) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        self.hierarchies
            .iter()
            .map(|h| (h.name(), self.dir_of(h)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_hierarchies() {
        let h = parse_mountinfo(INFO);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].controllers, vec!["name=systemd"]);
        assert_eq!(h[1].mount, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(h[1].has("cpuacct") && h[1].has("cpu"));
    }

    fn fake_host(root: &Path) -> Vec<Hierarchy> {
        let mut hs = Vec::new();
        for c in [
            "cpu,cpuacct",
            "cpuset",
            "memory",
            "pids",
            "devices",
            "freezer",
        ] {
            let m = root.join(c);
            std::fs::create_dir_all(&m).expect("mkdir");
            hs.push(Hierarchy {
                mount: m,
                controllers: c.split(',').map(str::to_owned).collect(),
            });
        }
        std::fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").expect("write");
        std::fs::write(root.join("cpuset/cpuset.mems"), "0\n").expect("write");
        hs
    }

    #[test]
    fn apply_writes_plan_into_each_hierarchy() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let v1 = V1::new(fake_host(tmp.path()), Path::new("/berth/a/c1"));
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1048576},"pids":{"limit":10},"cpu":{"shares":100}}"#,
        )
        .expect("json");
        v1.apply(Some(&r)).expect("apply");
        let read = |p: &str| std::fs::read_to_string(tmp.path().join(p)).expect(p);
        assert_eq!(read("memory/berth/a/c1/memory.limit_in_bytes"), "1048576");
        assert_eq!(read("pids/berth/a/c1/pids.max"), "10");
        assert_eq!(read("cpu,cpuacct/berth/a/c1/cpu.shares"), "100");
        assert_eq!(read("cpuset/berth/a/cpuset.cpus"), "0-1", "copied down");
        assert_eq!(read("cpuset/berth/a/c1/cpuset.mems"), "0");
        v1.add_task(42).expect("add");
        assert_eq!(read("devices/berth/a/c1/cgroup.procs"), "42");
    }

    #[test]
    fn missing_controller_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let v1 = V1::new(fake_host(tmp.path()), Path::new("/x"));
        let r: LinuxResources = serde_json::from_str(r#"{"network":{"classID":5}}"#).expect("json");
        assert!(matches!(
            v1.apply(Some(&r)),
            Err(CgroupError::Unsupported(_))
        ));
    }
}
