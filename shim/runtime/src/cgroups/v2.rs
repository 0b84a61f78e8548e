//! cgroup v2: one directory in the unified hierarchy; controllers are enabled in every
//! ancestor's `cgroup.subtree_control`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{
    CgroupError, CgroupManager, Stats, plan, procs_recursive, read_file, remove_dir, stats, under,
    write_file,
};

/// The v2 manager of one container cgroup.
#[derive(Debug, Clone)]
pub struct V2 {
    root: PathBuf,
    path: PathBuf,
}

impl V2 {
    /// A manager for `path` below the unified mount `root`.
    pub fn new(root: &Path, path: &Path) -> Self {
        V2 {
            root: root.to_path_buf(),
            path: path.to_path_buf(),
        }
    }

    fn dir(&self) -> PathBuf {
        under(&self.root, &self.path)
    }

    fn create(&self) -> Result<(), CgroupError> {
        let dir = self.dir();
        let rel = dir.strip_prefix(&self.root).unwrap_or(&dir).to_path_buf();
        let mut cur = self.root.clone();
        for comp in rel.components() {
            let avail = read_file(&cur, "cgroup.controllers").unwrap_or_default();
            let enable: Vec<String> = avail.split_whitespace().map(|c| format!("+{c}")).collect();
            if !enable.is_empty() {
                // Best effort per controller: a busy or threaded parent may refuse one.
                for e in &enable {
                    let _ = write_file(&cur, "cgroup.subtree_control", e);
                }
            }
            cur.push(comp);
            if !cur.exists() {
                std::fs::create_dir(&cur).map_err(|e| CgroupError::io("creating", &cur, e))?;
            }
        }
        Ok(())
    }

    fn write_plan(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        let dir = self.dir();
        if let Some(devs) = res.devices() {
            let mut all = devs.clone();
            // The devices every container gets (see plan::DEFAULT_DEVICE_RULES).
            all.extend(super::devices_v2::default_rules());
            super::devices_v2::attach(&super::devices_v2::program(&all)?, &dir)?;
        }
        for w in plan::v2(res)? {
            write_file(&dir, &w.file, &w.value)?;
        }
        Ok(())
    }
}

impl CgroupManager for V2 {
    fn apply(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        if let Some(r) = resources {
            plan::v2(r)?;
        }
        self.create()?;
        match resources {
            Some(r) => self.write_plan(r),
            None => Ok(()),
        }
    }

    fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        self.write_plan(resources)
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        write_file(&self.dir(), "cgroup.procs", &pid.to_string())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        vec![self.dir().join("cgroup.procs")]
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        procs_recursive(&self.dir(), &mut out)?;
        out.sort_unstable();
        Ok(out)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.dir();
        write_file(&dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        for _ in 0..1000 {
            let events = read_file(&dir, "cgroup.events")?;
            let is = events.lines().any(|l| l.trim() == "frozen 1");
            if is == frozen {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Unsupported(format!(
            "cgroup {} did not reach frozen={frozen}",
            dir.display()
        )))
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(read_file(&self.dir(), "cgroup.freeze")?.trim() == "1")
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let dir = self.dir();
        let mut s = Stats::default();
        stats::v2_cpu(&dir, &mut s)?;
        stats::v2_memory(&dir, &mut s);
        stats::pids(&dir, &mut s)?;
        stats::v2_io(&dir, &mut s);
        stats::v2_hugetlb(&dir, &mut s);
        Ok(s)
    }

    fn remove(&self) -> Result<(), CgroupError> {
        let dir = self.dir();
        let stop = under(
            &self.root,
            Path::new("/").join(super::BERTH_PARENT).as_path(),
        );
        let stop = if dir.starts_with(&stop) {
            stop
        } else {
            dir.parent().unwrap_or(&dir).to_path_buf()
        };
        remove_dir(&dir, &stop)
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        vec![(String::new(), self.dir())]
    }
}
