//! A recording [`CgroupManager`] for tests of the logic above the cgroup layer.

use std::cell::RefCell;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use super::{CgroupError, CgroupManager, Stats};

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeCall {
    Apply(Option<LinuxResources>),
    Update(LinuxResources),
    AddTask(i32),
    Freeze(bool),
    Remove,
}

/// Records every call; `pids` returns the tasks added; the plan is validated like v1.
#[derive(Debug, Default)]
pub struct Fake {
    pub calls: RefCell<Vec<FakeCall>>,
    frozen: RefCell<bool>,
}

impl Fake {
    /// The calls so far.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.calls.borrow().clone()
    }
}

impl CgroupManager for Fake {
    fn apply(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        if let Some(r) = resources {
            super::plan::v1(r)?;
        }
        self.calls
            .borrow_mut()
            .push(FakeCall::Apply(resources.cloned()));
        Ok(())
    }
    fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        super::plan::v1(resources)?;
        self.calls
            .borrow_mut()
            .push(FakeCall::Update(resources.clone()));
        Ok(())
    }
    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        self.calls.borrow_mut().push(FakeCall::AddTask(pid));
        Ok(())
    }
    fn self_join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Ok(self
            .calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                FakeCall::AddTask(p) => Some(*p),
                _ => None,
            })
            .collect())
    }
    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        *self.frozen.borrow_mut() = frozen;
        self.calls.borrow_mut().push(FakeCall::Freeze(frozen));
        Ok(())
    }
    fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(*self.frozen.borrow())
    }
    fn stats(&self) -> Result<Stats, CgroupError> {
        Ok(Stats::default())
    }
    fn remove(&self) -> Result<(), CgroupError> {
        self.calls.borrow_mut().push(FakeCall::Remove);
        Ok(())
    }
    fn dirs(&self) -> Vec<(String, PathBuf)> {
        Vec::new()
    }
}
