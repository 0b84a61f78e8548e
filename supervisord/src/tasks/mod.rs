//! Tasks: the running processes of containers, each parented by its own `berth-shim`.
//!
//! berthd never runs containers itself. For each task it writes a bundle, starts a shim
//! (`berth-shim start`), and from then on talks to that shim over its unix socket
//! (`berth.shim.v1.Shim`). The shim publishes the task's events to berthd's
//! `Events.Forward`; berthd keeps a table of tasks per (namespace, container id).
//!
//! ```text
//! mod.rs            this overview, the error type
//! bundle.rs         bundle directories (layout below), socket and runtime paths
//! shim.rs           the `ShimApi` trait (one shim connection) and its gRPC client
//! shim_manager.rs   the `Launcher` trait: start / connect / clean up shims (real binary)
//! manager.rs        the task table and every Tasks operation
//! fields.rs         the fields filters see (Tasks.List, Tasks.Metrics)
//! recovery.rs       restart recovery and dead-shim handling
//! ```
//!
//! `<state>` (berthd's `--state`, default `/run/berth`):
//!
//! ```text
//! <state>/
//! ├── tasks/<namespace>/<id>/   a task's bundle, mode 0700 (see bundle.rs)
//! │   ├── config.json           the container's spec bytes, exactly as stored
//! │   ├── rootfs/               the shim mounts the Create rootfs mounts here
//! │   ├── address               unix:///<socket>   (written by the shim)
//! │   ├── shim.pid              the long-lived shim's pid (shim)
//! │   ├── shim.log              the shim's own log (shim)
//! │   ├── init.pid              the container init pid (runtime)
//! │   ├── log.json              the runtime's --log (JSON lines), passed by the shim
//! │   └── container.log         the init's output, JSON lines, bounded (shim)
//! ├── runtime/<namespace>/      the runtime's state root (`--root` of the runtime)
//! └── s/<16 hex>.sock           shim sockets: sha256("<namespace>/<id>"), first 16 hex
//! ```

pub mod bundle;
pub mod fields;
pub mod manager;
pub mod recovery;
pub mod shim;
pub mod shim_manager;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod manager_tests;

use std::path::PathBuf;

use berth_api::{ErrorKind, HasKind};

pub use bundle::Bundle;
pub use manager::{CreateTask, Exit, ProcessState, TaskManager};
pub use shim::{GrpcShim, ShimApi};
pub use shim_manager::{Launcher, ShimProcesses};

/// Runtime names whose tasks berth runs (containerd's runc names alias berth's runtime).
pub const RUNTIMES: [&str; 3] = ["io.containerd.runc.v2", "io.containerd.runc.v1", "berth"];

/// Errors of the task layer. Each carries the task (namespace/id) it is about.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{what} {id:?}: not found")]
    NotFound { what: &'static str, id: String },
    #[error("{what} {id:?}: already exists")]
    AlreadyExists { what: &'static str, id: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("container {id:?}")]
    Metadata {
        id: String,
        #[source]
        source: crate::metadata::Error,
    },
    #[error("shim of task {id:?}: {op}: {}", .source.message())]
    Shim {
        id: String,
        op: &'static str,
        #[source]
        source: tonic::Status,
    },
    #[error("start shim for task {id:?}: {reason}")]
    ShimStart { id: String, reason: String },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TaskError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }

    pub(crate) fn shim(id: &str, op: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        let id = id.to_owned();
        move |source| Self::Shim { id, op, source }
    }
}

impl HasKind for TaskError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            Self::NotImplemented(_) => ErrorKind::NotImplemented,
            Self::Metadata { source, .. } => source.kind(),
            // The shim's own codes pass through (NotFound exec, AlreadyExists, ...).
            Self::Shim { source, .. } => source.kind(),
            Self::ShimStart { .. } | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::{Code, Status};

    use super::*;
    use crate::services::status;

    /// A shim's failure reaches the client through the Tasks adapter with the
    /// shim's code and message (a missing command is NotFound, berthctl's 127),
    /// prefixed with the task, the shim's status said once.
    #[test]
    fn shim_errors_keep_their_code_and_message() {
        let msg = "OCI runtime create failed: unable to start container process: \
                   exec: \"nosuchcmd\": executable file not found in $PATH";
        let e = TaskError::shim("c1", "create")(Status::not_found(msg));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let st = status(e);
        assert_eq!(st.code(), Code::NotFound);
        assert_eq!(st.message(), format!("shim of task \"c1\": create: {msg}"));
        for code in [
            Code::Internal,
            Code::FailedPrecondition,
            Code::AlreadyExists,
        ] {
            let st = status(TaskError::shim("c1", "start")(Status::new(code, "x")));
            assert_eq!(st.code(), code);
            assert_eq!(st.message(), "shim of task \"c1\": start: x");
        }
    }
}
