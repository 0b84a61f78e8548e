//! Errors of the task domain, each with the containerd kind it travels as.

use berth_api::{ErrorKind, HasKind};

use crate::io::IoError;
use crate::mount::MountError;
use crate::runtime::RuntimeError;

/// What a task operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No Create yet (or the init was deleted).
    #[error("task {id} not found")]
    NotCreated {
        /// Container id.
        id: String,
    },
    /// Create after the container was deleted.
    #[error("task {id} was deleted")]
    Deleted {
        /// Container id.
        id: String,
    },
    /// A second Create.
    #[error("task {id} already exists")]
    AlreadyCreated {
        /// Container id.
        id: String,
    },
    /// Create for another container than the shim's.
    #[error("shim serves task {serves}, not {id}")]
    WrongTask {
        /// The shim's container id.
        serves: String,
        /// The requested id.
        id: String,
    },
    /// Unknown exec id.
    #[error("process {exec_id} of task {id} not found")]
    ProcessNotFound {
        /// Container id.
        id: String,
        /// Exec id.
        exec_id: String,
    },
    /// Exec with an id already in use.
    #[error("exec {exec_id} already exists in task {id}")]
    ExecExists {
        /// Container id.
        id: String,
        /// Exec id.
        exec_id: String,
    },
    /// A malformed id or spec.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The process is not in a state that allows the operation.
    #[error("cannot {op} process {process} of task {id}: it is {status}")]
    WrongState {
        /// Container id.
        id: String,
        /// Exec id or the container id for the init.
        process: String,
        /// The operation.
        op: &'static str,
        /// The current status.
        status: &'static str,
    },
    /// Signalling a process that already exited.
    #[error("process {process} of task {id} already finished")]
    Finished {
        /// Container id.
        id: String,
        /// Exec id or the container id for the init.
        process: String,
    },
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Stdio setup failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Rootfs (un)mount failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// A console socket failed.
    #[error("console of task {id}")]
    Console {
        /// Container id.
        id: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing or reading a bundle file failed.
    #[error("cannot write {path}")]
    File {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// kill(2) of an exec failed.
    #[error("cannot signal pid {pid}")]
    Signal {
        /// The pid.
        pid: u32,
        /// The errno.
        #[source]
        source: nix::errno::Errno,
    },
}

impl HasKind for TaskError {
    fn kind(&self) -> ErrorKind {
        match self {
            TaskError::NotCreated { .. }
            | TaskError::ProcessNotFound { .. }
            | TaskError::Finished { .. } => ErrorKind::NotFound,
            TaskError::AlreadyCreated { .. } | TaskError::ExecExists { .. } => {
                ErrorKind::AlreadyExists
            }
            TaskError::Invalid { .. } | TaskError::WrongTask { .. } => ErrorKind::InvalidArgument,
            TaskError::Deleted { .. } | TaskError::WrongState { .. } => {
                ErrorKind::FailedPrecondition
            }
            TaskError::Runtime(e) => e.kind(),
            TaskError::Io(e) => e.kind(),
            TaskError::Mount(e) => e.kind(),
            TaskError::Signal {
                source: nix::errno::Errno::ESRCH,
                ..
            } => ErrorKind::NotFound,
            TaskError::Signal {
                source: nix::errno::Errno::EINVAL,
                ..
            } => ErrorKind::InvalidArgument,
            TaskError::Console { .. } | TaskError::File { .. } | TaskError::Signal { .. } => {
                ErrorKind::Internal
            }
        }
    }
}
