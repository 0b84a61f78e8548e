//! A process's State answer, for the State RPC and for the init's
//! [`crate::paths::INIT_STATE`] file: berthd reads that file at a restart, so it
//! knows every task's status without asking each shim. The file is rewritten (no
//! fsync: it lives in the volatile state dir) under the lifecycle lock after every
//! status change of the init, and removed when the init is deleted.

use berth_api::berth::shim::v1 as pb;
use berth_api::containerd::v1::types::Status as PbStatus;
use prost::Message;

use super::{ProcState, Status, Task};
use crate::events::timestamp;
use crate::runtime::Runtime;

fn pb_status(s: Status) -> i32 {
    let status = match s {
        Status::Created => PbStatus::Created,
        Status::Running => PbStatus::Running,
        Status::Paused => PbStatus::Paused,
        Status::Stopped => PbStatus::Stopped,
    };
    status as i32
}

impl<R: Runtime> Task<R> {
    /// The State answer for process `exec_id` ("" = init).
    pub fn state_answer(&self, exec_id: &str) -> Result<pb::StateResponse, super::TaskError> {
        self.state_of(exec_id).map(|s| self.answer(s))
    }

    fn answer(&self, s: ProcState) -> pb::StateResponse {
        pb::StateResponse {
            id: self.cfg.id.clone(),
            bundle: self.cfg.bundle.display().to_string(),
            pid: s.pid,
            status: pb_status(s.status),
            stdin: s.stdio.stdin,
            stdout: s.stdio.stdout,
            stderr: s.stdio.stderr,
            terminal: s.stdio.terminal,
            exit_status: s.exit.map_or(0, |e| e.status),
            exited_at: s.exit.map(|e| timestamp(e.at)),
            exec_id: s.exec_id,
        }
    }

    /// Rewrites the init's state file; call with the lifecycle lock held, after
    /// the change. Without an init (deleted) the file is removed.
    pub(super) fn save_init_state(&self) {
        let path = self.cfg.bundle.join(crate::paths::INIT_STATE);
        let result = match self.state_of("") {
            Ok(s) => crate::paths::write_atomic(&path, &self.answer(s).encode_to_vec()),
            Err(_) => match std::fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            },
        };
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "cannot save the init's state");
        }
    }
}
