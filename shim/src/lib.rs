//! berth-shim: the per-task shim that parents a container.
//!
//! One detached process per task. berthd runs `berth-shim start`, which binds
//! the shim socket and re-execs the binary as the long-lived `serve` process:
//! a child subreaper running a current-thread tokio runtime that serves
//! `berth.shim.v1.Shim` over gRPC. The container's processes are created by
//! re-executing the binary once more as `berth-shim runtime create|exec …`
//! (the embedded runtime's runc CLI) so nothing ever forks from the server;
//! the verbs that fork nothing (start, kill, delete, pause, ...) run in the
//! server through the runtime library (runtime/embedded.rs).
//!
//! ```text
//! src/
//!   main.rs        dispatch: runtime | start | serve | delete | --version
//!   cli.rs         the shared flags (--namespace --id --bundle --address --state)
//!   paths.rs       bundle file names, socket path, atomic writes
//!   start.rs       `start`: bind, re-exec `serve` with the listener on fd 3
//!   serve.rs       `serve`: subreaper, runtime, tonic server, shutdown
//!   delete.rs      `delete`: dead-shim cleanup, prints a DeleteResponse
//!   service.rs     the gRPC adapter (proto <-> task domain)
//!   task/          the task domain: init + execs, state machine, lifecycle
//!   reaper.rs      the one owner of waitpid
//!   runtime/       Runtime trait, Exec (re-exec runtime CLI), Embedded, Fake
//!   io/            FIFOs, log files, container.log, console socket, copies
//!   mount.rs       rootfs mounts (Mounter trait, Linux, Fake)
//!   events.rs      ordered event queue forwarded to berthd with retry
//!   oom.rs         OOM watch (v1 eventfd, v2 memory.events)
//!   metrics.rs     runtime stats JSON -> io.containerd.cgroups.v1/v2.Metrics
//!   trim.rs        drops start-up pages from the serving shim's memory map
//! ```
//!
//! The bundle, as berthd creates it and the shim fills it (see [`paths`]):
//!
//! ```text
//! <state>/tasks/<ns>/<id>/    the bundle (berthd creates and removes it)
//!   config.json               the OCI spec (berthd)
//!   rootfs/                   the Create mounts are mounted here (shim)
//!   address                   unix:///<socket> (shim start)
//!   shim.pid                  the serving shim's pid (shim start)
//!   shim.log                  the shim's own tracing log
//!   init.pid                  the container init pid (runtime --pid-file)
//!   init.state                the init's latest State answer (protobuf), for berthd's restart
//!   log.json                  the runtime's --log, JSON lines (see runtime::log)
//!   container.log             init output, JSON lines, bounded (see io::log)
//!   container.log.1           the previous container.log after rotation
//!   exec-<exec id>.json/.pid  an exec's process spec and pid (while starting)
//! <state>/s/<hash>.sock       the shim socket; <hash>-<n>.pty console sockets
//! <state>/runtime/<ns>/       the runtime's state root (--root)
//! ```

pub mod cli;
pub mod delete;
pub mod events;
pub mod io;
pub mod metrics;
pub mod mount;
pub mod oom;
pub mod paths;
pub mod reaper;
pub mod runtime;
pub mod serve;
pub mod service;
pub mod start;
pub mod task;
pub mod trim;

/// Whether a root-only test may run: true as root; without root false, or a
/// panic under `CI=true` (a root-only test must not silently pass there).
#[cfg(test)]
pub(crate) fn have_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "this test needs root (CI=true)"
    );
    false
}

/// The version reported by `--version` and `Connect`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
