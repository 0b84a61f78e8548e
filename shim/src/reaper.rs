//! The reaper: the one owner of `waitpid` in the serving shim.
//!
//! The shim is a child subreaper, so the container init, every exec and
//! every runtime helper it spawns end up as its children. Nothing else in the
//! process may wait for a child (no `Child::wait`, no `tokio::process`): on
//! SIGCHLD the reaper collects every exited child with
//! `waitpid(-1, WNOHANG)` and hands each exit to whoever subscribed to that
//! pid. An exit that arrives before its subscription (a process that dies
//! before its pid file is read) is buffered and handed over at subscribe
//! time, so spawn/exit races cannot lose an exit. Exits nobody claims
//! (orphans reparented to the subreaper) are kept in a bounded buffer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::sync::oneshot;

/// How many unclaimed exits are remembered.
const UNCLAIMED_CAP: usize = 1024;

/// An exit as the shim reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, or 128 + signal for a process killed by a signal
    /// (the runc shim's convention).
    pub status: u32,
    /// When the reaper collected it.
    pub at: SystemTime,
}

impl Exit {
    /// An exit with `status`, now.
    pub fn now(status: u32) -> Exit {
        Exit {
            status,
            at: SystemTime::now(),
        }
    }
}

/// The exit status of a wait status; `None` for stops and continues.
pub fn exit_status(ws: WaitStatus) -> Option<u32> {
    match ws {
        WaitStatus::Exited(_, code) => Some(code as u32),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as u32),
        _ => None,
    }
}

#[derive(Default)]
struct Inner {
    waiters: HashMap<u32, oneshot::Sender<Exit>>,
    unclaimed: HashMap<u32, Exit>,
    order: VecDeque<u32>,
}

/// Cheap handle on the shared reaper state.
#[derive(Clone, Default)]
pub struct Reaper {
    inner: Arc<Mutex<Inner>>,
}

impl Reaper {
    /// A reaper with no subscriptions.
    pub fn new() -> Reaper {
        Reaper::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The exit of `pid`, delivered once. Subscribe right after spawning
    /// (before the next await); an exit reaped earlier is handed over at once.
    pub fn subscribe(&self, pid: u32) -> oneshot::Receiver<Exit> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        if let Some(exit) = inner.unclaimed.remove(&pid) {
            inner.order.retain(|p| *p != pid);
            let _ = tx.send(exit);
        } else {
            inner.waiters.insert(pid, tx);
        }
        rx
    }

    /// Hands `exit` of `pid` to its subscriber, or buffers it.
    pub fn dispatch(&self, pid: u32, exit: Exit) {
        let mut inner = self.lock();
        if let Some(tx) = inner.waiters.remove(&pid) {
            if tx.send(exit).is_err() {
                tracing::debug!(pid, "exit subscriber gone");
            }
            return;
        }
        tracing::debug!(pid, status = exit.status, "unclaimed exit");
        if inner.unclaimed.insert(pid, exit).is_none() {
            inner.order.push_back(pid);
        }
        while inner.order.len() > UNCLAIMED_CAP {
            if let Some(old) = inner.order.pop_front() {
                inner.unclaimed.remove(&old);
            }
        }
    }

    /// Collects every exited child (`waitpid(-1, WNOHANG)` until nothing is
    /// left) and dispatches the exits. Returns how many were reaped.
    pub fn reap_all(&self) -> usize {
        let mut n = 0;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return n,
                Ok(ws) => {
                    let (Some(pid), Some(status)) = (ws.pid(), exit_status(ws)) else {
                        continue;
                    };
                    n += 1;
                    self.dispatch(pid.as_raw() as u32, Exit::now(status));
                }
                Err(nix::errno::Errno::EINTR) => continue,
                // ECHILD: no children at all.
                Err(_) => return n,
            }
        }
    }

    /// Reaps on every SIGCHLD until the process exits. Spawn it before the
    /// first child is created.
    pub async fn run(self, mut sigchld: tokio::signal::unix::Signal) {
        // Children that exited before the handler was installed.
        self.reap_all();
        while sigchld.recv().await.is_some() {
            self.reap_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn statuses_follow_the_runc_shim() {
        let pid = Pid::from_raw(7);
        assert_eq!(exit_status(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            exit_status(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_status(WaitStatus::Stopped(pid, Signal::SIGSTOP)), None);
    }

    #[test]
    fn exit_before_subscribe_is_not_lost() {
        let r = Reaper::new();
        r.dispatch(42, Exit::now(5));
        let mut rx = r.subscribe(42);
        assert_eq!(rx.try_recv().expect("buffered exit").status, 5);
        // Handed over once: a later subscriber of a reused pid waits.
        let mut again = r.subscribe(42);
        assert!(again.try_recv().is_err());
    }

    #[test]
    fn exit_after_subscribe_is_delivered() {
        let r = Reaper::new();
        let mut rx = r.subscribe(9);
        assert!(rx.try_recv().is_err());
        r.dispatch(9, Exit::now(0));
        assert_eq!(rx.try_recv().expect("exit").status, 0);
    }

    #[test]
    fn unclaimed_buffer_is_bounded() {
        let r = Reaper::new();
        for pid in 0..(UNCLAIMED_CAP as u32 + 10) {
            r.dispatch(pid, Exit::now(1));
        }
        assert!(r.lock().unclaimed.len() <= UNCLAIMED_CAP);
        // The oldest were dropped, the newest kept.
        assert!(r.subscribe(0).try_recv().is_err());
        assert!(r.subscribe(UNCLAIMED_CAP as u32 + 9).try_recv().is_ok());
    }
}
