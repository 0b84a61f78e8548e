//! berth-runtime: berth's embedded OCI runtime (Linux, synchronous, no async runtime and
//! no protobuf types), and the runc-compatible CLI `berth-runc` over it.
//!
//! # Layout
//! ```text
//! lib.rs            this API
//! cli.rs            berth-runc's command line (cli_main)
//! log.rs            `--log-format json`: runc's JSON log lines (+ berth's typed fields)
//! container/        one file per verb: create, start, kill, delete, exec, query (state,
//!                   list, ps, pause, resume, stats, update); plan.rs: what create does,
//!                   computed (and unit-tested) before anything exists
//! process/          the container process: plan (parent) and apply (child); the fork
//!                   sequence of create (process/create.rs draws it) and of exec
//! state.rs          <root>/<id>/state.json (the on-disk layout is drawn there)
//! spec.rs           bundle + config.json loading and checks
//! namespaces.rs     create/join plan and namespace-dependent validation
//! rootfs/           mounts, devices, pivot_root, masked/read-only paths (paths.rs: no
//!                   symlink ever leads a mount out of the rootfs)
//! cgroups/          CgroupManager: V1 (hybrid too), V2, Fake; plan.rs (resources ->
//!                   writes); stats.rs (Stats); devices_v2.rs (v2 eBPF device program)
//! capabilities.rs   the five sets
//! seccomp.rs        OCI profile -> stacked seccompiler BPF filters
//! hooks.rs tty.rs sync.rs security.rs default_spec.rs features.rs
//! ```
//!
//! # Library API (used by berth-shim)
//! `create` and `exec` fork: call them from a **single-threaded** process only. The
//! shim calls `create` from its serving process (one thread, its async runtime
//! current-thread, checked before each call) and re-execs itself into a helper for
//! `exec` and whenever that does not hold.
//! - [`cli_main`]`(args) -> i32`: exactly `berth-runc`.
//! - [`create`]`(&RuntimeRoot, id, bundle, &CreateOptions) -> Result<i32>`: the init's
//!   host pid. The init's stdio are `CreateOptions::stdio`, or else the caller's fds
//!   0, 1, 2. The caller's process ends up the init's grandparent: once `create`
//!   returns, the init has been reparented to the nearest `PR_SET_CHILD_SUBREAPER`
//!   ancestor (the shim) or pid 1.
//! - [`start`], [`state`] -> [`State`], [`kill`]`(root, id, Signal, all)`,
//!   [`delete`]`(root, id, force)`, [`list`].
//! - [`exec`]`(root, id, &ExecOptions) -> Result<i32>`: pid of the new process once it
//!   has exec'd (reparented like init). Call [`reexec_sealed`] first in a helper that
//!   runs exec (CVE-2019-5736 class).
//! - [`pause`], [`resume`], [`ps`]` -> Vec<i32>`, [`stats`]` -> Stats`,
//!   [`update`]`(root, id, &LinuxResources)`.
//! - Errors: [`Error`] with [`Error::kind`] -> [`ErrorKind`]; a command that cannot be
//!   executed is [`Error::Exec`] carrying an [`ExecError`] (command, errno), kind
//!   `ExecutableNotFound` or `NotExecutable`. berth-runc writes a failure's kind (and
//!   errno) on its `--log` line ([`log::Record`]).

pub mod capabilities;
pub mod cgroups;
mod cli;
pub mod container;
pub mod default_spec;
mod error;
pub mod features;
pub mod hooks;
pub mod log;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod state;
pub mod sync;
pub mod tty;

pub use cgroups::Stats;
pub use cli::cli_main;
pub use container::create::create;
pub use container::delete::delete;
pub use container::exec::exec;
pub use container::kill::{kill, parse_signal};
pub use container::query::{list, pause, ps, resume, state, stats, update};
pub use container::start::start;
pub use container::{CreateOptions, ExecOptions};
pub use error::{Error, ErrorKind, ExecError, Result};
pub use nix::sys::signal::Signal;
pub use security::reexec_sealed;
pub use state::{RuntimeRoot, State, Status};
