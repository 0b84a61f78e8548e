//! One process of a task (the init or an exec): its status, exit and stdio.

use std::sync::Arc;

use tokio::sync::watch;

use crate::io::{ProcIo, StdioPaths};
use crate::reaper::Exit;

/// Lifecycle of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, not started (an exec has no pid yet).
    Created,
    /// Running.
    Running,
    /// Frozen (init only).
    Paused,
    /// Exited; the exit is kept until Delete.
    Stopped,
}

impl Status {
    /// Lower-case name, as ctr prints it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }

    /// Whether Delete may remove it.
    pub fn can_delete(self) -> bool {
        matches!(self, Status::Created | Status::Stopped)
    }

    /// Whether it still runs (or is frozen).
    pub fn is_alive(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// A process record.
pub struct Proc {
    /// Its pid (0 for an exec before Start).
    pub pid: u32,
    /// Its status.
    pub status: Status,
    /// Its exit, once it exited.
    pub exit: Option<Exit>,
    /// The stdio it was given.
    pub stdio: StdioPaths,
    /// Live stdio handles (from Create / exec Start until exit).
    pub io: Option<Arc<ProcIo>>,
    /// An exec's OCI process JSON.
    pub spec: Vec<u8>,
    exit_tx: watch::Sender<Option<Exit>>,
}

impl Proc {
    /// A new, created process.
    pub fn new(pid: u32, stdio: StdioPaths, spec: Vec<u8>) -> Proc {
        Proc {
            pid,
            status: Status::Created,
            exit: None,
            stdio,
            io: None,
            spec,
            exit_tx: watch::channel(None).0,
        }
    }

    /// Records the exit and wakes every waiter.
    pub fn set_exited(&mut self, exit: Exit) {
        self.status = Status::Stopped;
        self.exit = Some(exit);
        self.exit_tx.send_replace(Some(exit));
    }

    /// A receiver that sees the exit.
    pub fn waiter(&self) -> watch::Receiver<Option<Exit>> {
        self.exit_tx.subscribe()
    }
}

/// A snapshot of a process for State.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcState {
    /// Exec id, empty for the init.
    pub exec_id: String,
    /// Pid (0 before start for an exec).
    pub pid: u32,
    /// Status.
    pub status: Status,
    /// Stdio paths.
    pub stdio: StdioPaths,
    /// The exit, when stopped.
    pub exit: Option<Exit>,
}
