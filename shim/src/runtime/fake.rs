//! A recording fake runtime for unit tests: no process is created; pids are
//! made up and exits are injected through the reaper by the test.

use std::sync::Mutex;

use super::{CreateOpts, ExecOpts, Runtime, RuntimeError};

/// Records every verb as `"verb id [extra]"` and hands out pids 1000, 1001, …
#[derive(Default)]
pub struct Fake {
    /// The calls so far.
    pub calls: Mutex<Vec<String>>,
    next_pid: Mutex<u32>,
    /// Verbs that fail.
    pub fail: Mutex<Vec<&'static str>>,
    /// What `ps` answers.
    pub pids: Mutex<Vec<u32>>,
    /// The stdio handed to create/exec, kept so tests can write as the process.
    pub stdio: Mutex<Vec<super::ChildStdio>>,
}

impl Fake {
    fn call(&self, op: &'static str, what: String) -> Result<(), RuntimeError> {
        self.calls
            .lock()
            .expect("fake lock")
            .push(format!("{op} {what}"));
        if self.fail.lock().expect("fake lock").contains(&op) {
            return Err(RuntimeError::Failed {
                op,
                id: what,
                status: 1,
                message: "injected failure".into(),
            });
        }
        Ok(())
    }

    fn pid(&self) -> u32 {
        let mut n = self.next_pid.lock().expect("fake lock");
        if *n == 0 {
            *n = 1000;
        }
        *n += 1;
        *n - 1
    }

    /// The recorded calls.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("fake lock").clone()
    }
}

impl Runtime for Fake {
    async fn create(&self, opts: CreateOpts) -> Result<u32, RuntimeError> {
        self.call("create", opts.id.clone())?;
        self.stdio.lock().expect("fake lock").push(opts.stdio);
        Ok(self.pid())
    }
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.call("start", id.to_owned())
    }
    async fn exec(&self, opts: ExecOpts) -> Result<u32, RuntimeError> {
        let spec = std::fs::read_to_string(&opts.process_file).unwrap_or_default();
        self.call("exec", format!("{} {spec}", opts.id))?;
        self.stdio.lock().expect("fake lock").push(opts.stdio);
        Ok(self.pid())
    }
    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        self.call("kill", format!("{id} {signal} {all}"))
    }
    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        self.call("delete", format!("{id} {force}"))
    }
    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.call("pause", id.to_owned())
    }
    async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.call("resume", id.to_owned())
    }
    async fn ps(&self, id: &str) -> Result<Vec<u32>, RuntimeError> {
        self.call("ps", id.to_owned())?;
        Ok(self.pids.lock().expect("fake lock").clone())
    }
    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        self.call("events", id.to_owned())?;
        Ok(serde_json::json!({"type": "stats", "id": id, "data": {
            "cpu": {"usage": {"total": 5, "kernel": 2, "user": 3, "percpu": [4, 1]}},
            "memory": {"cache": 7, "usage": {"usage": 100, "limit": 200, "max": 150, "failcnt": 1}},
            "pids": {"current": 2, "limit": 0}
        }}))
    }
    async fn update(&self, id: &str, resources_json: &[u8]) -> Result<(), RuntimeError> {
        self.call(
            "update",
            format!("{id} {}", String::from_utf8_lossy(resources_json)),
        )
    }
}
