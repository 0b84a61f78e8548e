//! A recording fake of a shim and of the launcher, for the manager's unit tests.
//!
//! [`FakeShim`] keeps processes like the real shim does (created → running → stopped,
//! exit statuses until Delete). [`FakeLauncher`] hands out fake shims, can "kill" one
//! (every call then fails `Unavailable` and its death watch fires) and records cleanups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_api::berth::shim::v1 as pb;
use berth_api::containerd::v1::types::{ProcessInfo, Status as PStatus};
use prost_types::Timestamp;
use tokio::sync::watch;
use tonic::Status;

use super::TaskError;
use super::bundle::Bundle;
use super::shim::ShimApi;
use super::shim_manager::{Connected, Launcher};

#[derive(Debug, Clone)]
pub struct FakeProc {
    pub pid: u32,
    pub status: PStatus,
    pub exit: Option<(u32, Timestamp)>,
    pub stdio: (String, String, String, bool),
}

#[derive(Debug, Default)]
pub struct ShimState {
    pub procs: HashMap<String, FakeProc>,
    pub calls: Vec<String>,
    pub create: Option<pb::CreateRequest>,
    pub next_pid: u32,
    pub fail_create: Option<Status>,
    /// Calls fail (transport broken).
    pub dead: bool,
    /// The process is gone too (attach fails).
    pub gone: bool,
    /// The shim dies when Delete is called.
    pub die_at_delete: bool,
    pub shut_down: bool,
}

#[derive(Debug)]
pub struct FakeShim {
    pub state: Mutex<ShimState>,
    exits: watch::Sender<u64>,
}

impl FakeShim {
    pub fn new(first_pid: u32) -> Self {
        Self {
            state: Mutex::new(ShimState {
                next_pid: first_pid,
                ..ShimState::default()
            }),
            exits: watch::channel(0).0,
        }
    }

    pub fn st(&self) -> MutexGuard<'_, ShimState> {
        self.state.lock().expect("fake shim lock")
    }

    /// The process `exec_id` ("" = init) exits with `status`.
    pub fn exit(&self, exec_id: &str, status: u32) {
        {
            let mut st = self.st();
            let p = st.procs.get_mut(exec_id).expect("process exists");
            p.status = PStatus::Stopped;
            p.exit = Some((
                status,
                Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 7,
                },
            ));
        }
        self.exits.send_modify(|n| *n += 1);
    }

    pub fn calls(&self) -> Vec<String> {
        self.st().calls.clone()
    }

    fn enter(&self, call: &str) -> Result<MutexGuard<'_, ShimState>, Status> {
        let mut st = self.st();
        if st.dead {
            return Err(Status::unavailable("transport error: connection refused"));
        }
        st.calls.push(call.to_owned());
        Ok(st)
    }

    fn kill_dead(&self) {
        self.st().dead = true;
        self.exits.send_modify(|n| *n += 1);
    }
}

fn missing(exec_id: &str) -> Status {
    Status::not_found(format!("process {exec_id:?} not found"))
}

#[tonic::async_trait]
impl ShimApi for FakeShim {
    async fn create(&self, req: pb::CreateRequest) -> Result<pb::CreateResponse, Status> {
        let mut st = self.enter("create")?;
        if let Some(e) = st.fail_create.take() {
            return Err(e);
        }
        let pid = st.next_pid;
        st.next_pid += 1;
        st.procs.insert(
            String::new(),
            FakeProc {
                pid,
                status: PStatus::Created,
                exit: None,
                stdio: (
                    req.stdin.clone(),
                    req.stdout.clone(),
                    req.stderr.clone(),
                    req.terminal,
                ),
            },
        );
        st.create = Some(req);
        Ok(pb::CreateResponse { pid })
    }
    async fn start(&self, req: pb::StartRequest) -> Result<pb::StartResponse, Status> {
        let mut st = self.enter("start")?;
        let p = st
            .procs
            .get_mut(&req.exec_id)
            .ok_or_else(|| missing(&req.exec_id))?;
        if p.status != PStatus::Created {
            return Err(Status::failed_precondition("process already started"));
        }
        p.status = PStatus::Running;
        Ok(pb::StartResponse { pid: p.pid })
    }
    async fn delete(&self, req: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        if self.st().die_at_delete {
            self.kill_dead();
        }
        let mut st = self.enter("delete")?;
        let p = st
            .procs
            .get(&req.exec_id)
            .ok_or_else(|| missing(&req.exec_id))?;
        if matches!(p.status, PStatus::Running | PStatus::Paused) {
            return Err(Status::failed_precondition("process is running"));
        }
        let p = st
            .procs
            .remove(&req.exec_id)
            .ok_or_else(|| missing(&req.exec_id))?;
        let (exit_status, at) = p.exit.unwrap_or((0, Timestamp::default()));
        Ok(pb::DeleteResponse {
            pid: p.pid,
            exit_status,
            exited_at: Some(at),
        })
    }
    async fn exec(&self, req: pb::ExecRequest) -> Result<(), Status> {
        let mut st = self.enter("exec")?;
        if st.procs.contains_key(&req.exec_id) {
            return Err(Status::already_exists(format!(
                "exec {:?} exists",
                req.exec_id
            )));
        }
        let pid = st.next_pid;
        st.next_pid += 1;
        st.procs.insert(
            req.exec_id.clone(),
            FakeProc {
                pid,
                status: PStatus::Created,
                exit: None,
                stdio: (req.stdin, req.stdout, req.stderr, req.terminal),
            },
        );
        Ok(())
    }
    async fn state(&self, req: pb::StateRequest) -> Result<pb::StateResponse, Status> {
        let st = self.enter("state")?;
        let p = st
            .procs
            .get(&req.exec_id)
            .ok_or_else(|| missing(&req.exec_id))?;
        Ok(pb::StateResponse {
            id: req.id,
            bundle: String::new(),
            pid: p.pid,
            status: p.status as i32,
            stdin: p.stdio.0.clone(),
            stdout: p.stdio.1.clone(),
            stderr: p.stdio.2.clone(),
            terminal: p.stdio.3,
            exit_status: p.exit.map_or(0, |e| e.0),
            exited_at: p.exit.map(|e| e.1),
            exec_id: req.exec_id,
        })
    }
    async fn pids(&self, _req: pb::PidsRequest) -> Result<pb::PidsResponse, Status> {
        let st = self.enter("pids")?;
        let mut processes: Vec<ProcessInfo> = st
            .procs
            .values()
            .filter(|p| p.status == PStatus::Running)
            .map(|p| ProcessInfo {
                pid: p.pid,
                info: None,
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        Ok(pb::PidsResponse { processes })
    }
    async fn kill(&self, req: pb::KillRequest) -> Result<(), Status> {
        let st = self.enter(&format!("kill {} {}", req.signal, req.all))?;
        let p = st
            .procs
            .get(&req.exec_id)
            .ok_or_else(|| missing(&req.exec_id))?;
        if p.status == PStatus::Stopped {
            return Err(Status::not_found("process already finished"));
        }
        Ok(())
    }
    async fn pause(&self, _req: pb::PauseRequest) -> Result<(), Status> {
        let mut st = self.enter("pause")?;
        let p = st.procs.get_mut("").ok_or_else(|| missing(""))?;
        p.status = PStatus::Paused;
        Ok(())
    }
    async fn resume(&self, _req: pb::ResumeRequest) -> Result<(), Status> {
        let mut st = self.enter("resume")?;
        let p = st.procs.get_mut("").ok_or_else(|| missing(""))?;
        p.status = PStatus::Running;
        Ok(())
    }
    async fn wait(&self, req: pb::WaitRequest) -> Result<pb::WaitResponse, Status> {
        let mut rx = self.exits.subscribe();
        loop {
            {
                let st = self.enter("wait")?;
                let p = st
                    .procs
                    .get(&req.exec_id)
                    .ok_or_else(|| missing(&req.exec_id))?;
                if let Some((status, at)) = p.exit {
                    return Ok(pb::WaitResponse {
                        exit_status: status,
                        exited_at: Some(at),
                    });
                }
            }
            if rx.changed().await.is_err() {
                return Err(Status::unavailable("shim gone"));
            }
        }
    }
    async fn stats(&self, req: pb::StatsRequest) -> Result<pb::StatsResponse, Status> {
        let _st = self.enter("stats")?;
        let m = berth_api::io::containerd::cgroups::v1::Metrics::default();
        let _ = req;
        Ok(pb::StatsResponse {
            stats: Some(berth_api::any::pack(&m)),
        })
    }
    async fn update(&self, _req: pb::UpdateRequest) -> Result<(), Status> {
        self.enter("update").map(drop)
    }
    async fn resize_pty(&self, req: pb::ResizePtyRequest) -> Result<(), Status> {
        self.enter(&format!("resize {}x{}", req.width, req.height))
            .map(drop)
    }
    async fn close_io(&self, _req: pb::CloseIoRequest) -> Result<(), Status> {
        self.enter("close_io").map(drop)
    }
    async fn connect(&self, _req: pb::ConnectRequest) -> Result<pb::ConnectResponse, Status> {
        let st = self.enter("connect")?;
        let task_pid = st.procs.get("").map_or(0, |p| p.pid);
        Ok(pb::ConnectResponse {
            shim_pid: 1,
            task_pid,
            version: "fake".into(),
        })
    }
    async fn shutdown(&self, _req: pb::ShutdownRequest) -> Result<(), Status> {
        let mut st = self.enter("shutdown")?;
        st.shut_down = true;
        Ok(())
    }
}

/// Hands out [`FakeShim`]s keyed by (namespace, id).
#[derive(Debug, Default)]
pub struct FakeLauncher {
    pub shims: Mutex<HashMap<(String, String), Arc<FakeShim>>>,
    pub cleanups: Mutex<Vec<(String, String)>>,
    /// The next started shim fails Create with this.
    pub fail_next_create: Mutex<Option<Status>>,
}

impl FakeLauncher {
    pub fn shim(&self, ns: &str, id: &str) -> Arc<FakeShim> {
        self.shims
            .lock()
            .expect("launcher lock")
            .get(&(ns.to_owned(), id.to_owned()))
            .cloned()
            .expect("shim started")
    }

    /// The shim dies: calls fail, its death watch fires.
    pub fn kill_shim(&self, ns: &str, id: &str) {
        self.shim(ns, id).kill_dead();
    }

    pub fn cleanups(&self) -> Vec<(String, String)> {
        self.cleanups.lock().expect("cleanup lock").clone()
    }
}

#[tonic::async_trait]
impl Launcher for FakeLauncher {
    async fn start(&self, bundle: &Bundle) -> Result<Connected, TaskError> {
        let shim = Arc::new(FakeShim::new(1000));
        if let Some(e) = self.fail_next_create.lock().expect("lock").take() {
            shim.st().fail_create = Some(e);
        }
        self.shims
            .lock()
            .expect("launcher lock")
            .insert((bundle.namespace.clone(), bundle.id.clone()), shim.clone());
        Ok(Connected {
            shim,
            shim_pid: 4242,
            task_pid: 0,
        })
    }

    async fn connect(&self, bundle: &Bundle) -> Result<Connected, TaskError> {
        let shim = self
            .shims
            .lock()
            .expect("launcher lock")
            .get(&(bundle.namespace.clone(), bundle.id.clone()))
            .cloned();
        match shim {
            Some(s) if !s.st().dead => {
                let task_pid = s.st().procs.get("").map_or(0, |p| p.pid);
                Ok(Connected {
                    shim: s,
                    shim_pid: 4242,
                    task_pid,
                })
            }
            _ => Err(TaskError::ShimStart {
                id: bundle.id.clone(),
                reason: "connection refused".into(),
            }),
        }
    }

    fn attach(&self, bundle: &Bundle) -> Result<Connected, TaskError> {
        let shim = self
            .shims
            .lock()
            .expect("launcher lock")
            .get(&(bundle.namespace.clone(), bundle.id.clone()))
            .cloned();
        match shim {
            // A shim process that is alive but does not answer still attaches.
            Some(s) if !s.st().gone => Ok(Connected {
                shim: s,
                shim_pid: 4242,
                task_pid: 0,
            }),
            _ => Err(TaskError::ShimStart {
                id: bundle.id.clone(),
                reason: "no shim process".into(),
            }),
        }
    }

    async fn cleanup(&self, bundle: &Bundle) -> Result<pb::DeleteResponse, TaskError> {
        self.cleanups
            .lock()
            .expect("cleanup lock")
            .push((bundle.namespace.clone(), bundle.id.clone()));
        Ok(pb::DeleteResponse {
            pid: 0,
            exit_status: 137,
            exited_at: Some(Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
        })
    }

    fn is_alive(&self, bundle: &Bundle, _shim_pid: u32) -> bool {
        self.shims
            .lock()
            .expect("launcher lock")
            .get(&(bundle.namespace.clone(), bundle.id.clone()))
            .is_some_and(|s| !s.st().dead)
    }

    async fn exited(&self, bundle: &Bundle, _shim_pid: u32) {
        let shim = self
            .shims
            .lock()
            .expect("launcher lock")
            .get(&(bundle.namespace.clone(), bundle.id.clone()))
            .cloned();
        let Some(shim) = shim else { return };
        let mut rx = shim.exits.subscribe();
        while !shim.st().dead {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}
