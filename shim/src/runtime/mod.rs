//! How the shim drives the OCI runtime: the [`Runtime`] role with the
//! [`Exec`] backend (re-executing this binary as `berth-shim runtime …`, the
//! embedded runtime's runc-compatible CLI), the [`Embedded`] backend the shim
//! serves with (the verbs in-process, `create` too while the shim is
//! single-threaded; `exec` and the cases its module doc lists through [`Exec`])
//! and, for unit tests, a recording `Fake`.
//!
//! Contract of every method: it returns once the runtime command finished.
//! `create` and `exec` return the pid of the process they created (read from
//! the pid file); that process is then a child of the shim (subreaper) and
//! its exit reaches the [`crate::reaper::Reaper`]. The runtime helper's own
//! exit is collected by the reaper as well.
//!
//! Errors: every command gets `--log <bundle>/log.json --log-format json`
//! ([`LOG_FILE`]); on failure the command's last error record (see [`log`])
//! gives the message and, from berth's runtime, its kind: a command that does
//! not exist is [`RuntimeError::ExecutableNotFound`] (gRPC `NotFound`), one
//! that cannot be executed [`RuntimeError::NotExecutable`].

mod embedded;
mod exec;
#[cfg(test)]
pub mod fake;
pub mod log;

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use berth_api::{ErrorKind, HasKind};

pub use embedded::Embedded;
pub use exec::Exec;

/// The runtime's log in the bundle (runc's JSON lines).
pub const LOG_FILE: &str = "log.json";

/// The stdio the created process gets; `None` is `/dev/null`.
#[derive(Debug, Default)]
pub struct ChildStdio {
    /// Read end the process reads from.
    pub stdin: Option<OwnedFd>,
    /// Write end of stdout.
    pub stdout: Option<OwnedFd>,
    /// Write end of stderr.
    pub stderr: Option<OwnedFd>,
}

/// `create` of the init process.
#[derive(Debug)]
pub struct CreateOpts {
    /// Container id.
    pub id: String,
    /// Bundle (cwd of the runtime, holds config.json).
    pub bundle: PathBuf,
    /// Where the runtime writes the init pid.
    pub pid_file: PathBuf,
    /// Console socket receiving the pty master (terminal containers).
    pub console_socket: Option<PathBuf>,
    /// runc's `--no-pivot`.
    pub no_pivot: bool,
    /// The container's stdio (ignored with a terminal).
    pub stdio: ChildStdio,
}

/// `exec` of an additional process (detached).
#[derive(Debug)]
pub struct ExecOpts {
    /// Container id.
    pub id: String,
    /// The OCI process JSON file.
    pub process_file: PathBuf,
    /// Where the runtime writes the exec's pid.
    pub pid_file: PathBuf,
    /// Console socket for a terminal exec.
    pub console_socket: Option<PathBuf>,
    /// The exec's stdio (ignored with a terminal).
    pub stdio: ChildStdio,
}

/// Why a runtime command failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The helper could not be started.
    #[error("cannot spawn runtime {op} for {id}")]
    Spawn {
        /// The runtime verb.
        op: &'static str,
        /// Container id.
        id: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The helper ran and failed.
    #[error("runtime {op} of {id} failed with status {status}: {message}")]
    Failed {
        /// The runtime verb.
        op: &'static str,
        /// Container id.
        id: String,
        /// Its exit status.
        status: u32,
        /// What it printed on stderr (trimmed).
        message: String,
    },
    /// The container's command does not exist (ENOENT: not in `$PATH`, no
    /// such file). docker's exit code 127.
    #[error("OCI runtime {op} failed: {message}")]
    ExecutableNotFound {
        /// The runtime verb (`create`, `start`, `exec`).
        op: &'static str,
        /// Container id.
        id: String,
        /// The runtime's message (runc's wording).
        message: String,
    },
    /// The container's command exists but cannot be executed (EACCES,
    /// EISDIR, ENOEXEC, ...). docker's exit code 126.
    #[error("OCI runtime {op} failed: {message}")]
    NotExecutable {
        /// The runtime verb.
        op: &'static str,
        /// Container id.
        id: String,
        /// The runtime's message.
        message: String,
    },
    /// Reading the helper's output or pid file failed.
    #[error("cannot read {what} of runtime {op} for {id}")]
    Output {
        /// The runtime verb.
        op: &'static str,
        /// Container id.
        id: String,
        /// What was being read.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An in-process verb ([`Embedded`]) failed.
    #[error("runtime {op} of {id} failed: {source}")]
    InProcess {
        /// The runtime verb.
        op: &'static str,
        /// Container id.
        id: String,
        /// The library's error.
        #[source]
        source: berth_runtime::Error,
    },
    /// The helper's output is not what its CLI promises.
    #[error("unexpected output of runtime {op} for {id}")]
    Parse {
        /// The runtime verb.
        op: &'static str,
        /// Container id.
        id: String,
        /// The decoder's complaint.
        #[source]
        source: serde_json::Error,
    },
}

impl RuntimeError {
    /// The variant of a failure whose runtime error kind says what went wrong with the
    /// container's command; `None` for every other kind (the caller's generic variant).
    /// The one place a runtime kind picks a variant, for the helper's log records
    /// (`log::failure`) and the in-process verbs (`embedded::failure`).
    fn of_kind(
        op: &'static str,
        id: &str,
        kind: Option<berth_runtime::ErrorKind>,
        message: &str,
    ) -> Option<RuntimeError> {
        let (id, message) = (id.to_owned(), message.to_owned());
        match kind? {
            berth_runtime::ErrorKind::ExecutableNotFound => {
                Some(RuntimeError::ExecutableNotFound { op, id, message })
            }
            berth_runtime::ErrorKind::NotExecutable => {
                Some(RuntimeError::NotExecutable { op, id, message })
            }
            _ => None,
        }
    }
}

impl HasKind for RuntimeError {
    /// A missing command is `NotFound` (the client's 127; containerd sends
    /// `Unknown` for every runc failure, and ctr prints the message and exits
    /// 1 either way). Everything else, a command that cannot be executed
    /// included, is `Internal`: berth-api has no permission-denied kind.
    fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::ExecutableNotFound { .. } => ErrorKind::NotFound,
            RuntimeError::NotExecutable { .. }
            | RuntimeError::Spawn { .. }
            | RuntimeError::Failed { .. }
            | RuntimeError::InProcess { .. }
            | RuntimeError::Output { .. }
            | RuntimeError::Parse { .. } => ErrorKind::Internal,
        }
    }
}

/// The OCI runtime, as the shim uses it (runc's CLI verbs).
pub trait Runtime: Send + Sync + 'static {
    /// `create --bundle B --pid-file P [--console-socket S] [--no-pivot] ID`;
    /// returns the init pid.
    fn create(&self, opts: CreateOpts) -> impl Future<Output = Result<u32, RuntimeError>> + Send;
    /// `start ID`.
    fn start(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// `exec -d --process F --pid-file P [--console-socket S] ID`; returns
    /// the exec's pid.
    fn exec(&self, opts: ExecOpts) -> impl Future<Output = Result<u32, RuntimeError>> + Send;
    /// `kill ID SIG [--all]`.
    fn kill(
        &self,
        id: &str,
        signal: u32,
        all: bool,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// `delete [--force] ID`.
    fn delete(
        &self,
        id: &str,
        force: bool,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// `pause ID`.
    fn pause(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// `resume ID`.
    fn resume(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
    /// `ps --format json ID`: the pids in the container's cgroup.
    fn ps(&self, id: &str) -> impl Future<Output = Result<Vec<u32>, RuntimeError>> + Send;
    /// `events --stats ID`: runc's stats JSON.
    fn stats(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<serde_json::Value, RuntimeError>> + Send;
    /// `update --resources F ID` with LinuxResources JSON.
    fn update(
        &self,
        id: &str,
        resources_json: &[u8],
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
}
