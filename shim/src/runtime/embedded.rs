//! [`Embedded`]: the runtime verbs run in the shim itself, through the
//! `berth_runtime` library; `exec`, and `create` where it cannot run here, go to the
//! re-executed helper ([`Exec`]).
//!
//! Why: a verb as a helper costs a process start (exec of the shim binary, page
//! faults, the runtime's start-up) and exit of 3–5 ms, and `create` and `start` are on
//! the path of every `ctr run`. In-process, `start` is a connect, a one-byte write and
//! a read until the init has exec'd; `delete` of a stopped container is rmdirs and
//! unlinks; `create` forks the intermediate from the shim itself.
//!
//! Rules that keep this safe in the serving shim:
//! - Only `create` forks, and only while the shim is single-threaded (checked in
//!   `/proc/self/status` each time: a terminal's console thread, say, sends it to
//!   the helper). The intermediate it forks gets the container's stdio as fds 0–2
//!   first thing (`CreateOptions::stdio`) and closes every other descriptor it
//!   inherited from the shim (its sockets, its log).
//! - Nothing here waits for a child the [`crate::reaper::Reaper`] could want: the
//!   library's `create` waits only for its own intermediate, synchronously, before
//!   the reaper (same thread) runs again, and the init cannot exit before `start`.
//!   The verbs other than `create`/`exec` only signal, poll `/proc` (a zombie counts
//!   as gone) and touch cgroup and state files — except hooks, which the library
//!   spawns and waits for, each for up to its timeout: in the shim that would reap
//!   children behind the reaper's back and stall every RPC meanwhile. So a
//!   container whose spec has hooks the runtime runs itself (prestart,
//!   createRuntime) is created by the helper, and one with poststart or poststop
//!   hooks keeps `start` and `delete` on the helper (decided from `config.json` at
//!   create; the other verbs run no hooks).
//! - Each verb blocks the (single-threaded) shim while it runs; all are short (a
//!   `create` is 5–10 ms; a `delete` of a running container waits for its SIGKILLed
//!   init, which the kernel makes quick; a zombie does not count).

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_runtime::RuntimeRoot;

use super::exec::RUNTIME_OVERRIDE_ENV;
use super::{CreateOpts, Exec, ExecOpts, Runtime, RuntimeError};

/// In-process verbs with [`Exec`] for the forking ones.
#[derive(Clone)]
pub struct Embedded {
    exec: Exec,
    root: Arc<RuntimeRoot>,
    /// Another runtime program was set ([`RUNTIME_OVERRIDE_ENV`]): its state is not
    /// this library's, every verb goes to it.
    other_program: bool,
    /// A created container's spec has hooks `start` or `delete` would run.
    hooks: Arc<AtomicBool>,
}

impl Embedded {
    /// Verbs on state root `root` (the same `--root` `exec` passes its helper).
    pub fn new(exec: Exec, root: &Path) -> Embedded {
        Embedded {
            exec,
            root: Arc::new(RuntimeRoot::new(root)),
            other_program: std::env::var_os(RUNTIME_OVERRIDE_ENV).is_some_and(|p| !p.is_empty()),
            hooks: Arc::new(AtomicBool::new(false)),
        }
    }

    /// May a verb that never runs hooks run here?
    fn in_process(&self) -> bool {
        !self.other_program
    }

    /// May `start`/`delete` (which run poststart/poststop hooks) run here?
    fn hook_verbs_in_process(&self) -> bool {
        self.in_process() && !self.hooks.load(Ordering::SeqCst)
    }
}

/// The hooks of a spec that decide where verbs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecHooks {
    /// prestart or createRuntime: run by the runtime's `create` itself.
    pub at_create: bool,
    /// poststart or poststop: run by `start` and `delete`.
    pub later: bool,
}

impl SpecHooks {
    /// The hooks `config.json` in `bundle` asks for. An unreadable spec counts as
    /// every hook (the helper path is always correct).
    pub fn of_bundle(bundle: &Path) -> SpecHooks {
        let all = SpecHooks {
            at_create: true,
            later: true,
        };
        let Ok(text) = std::fs::read(bundle.join(crate::paths::CONFIG)) else {
            return all;
        };
        let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&text) else {
            return all;
        };
        let any = |keys: &[&str]| {
            keys.iter().any(|k| {
                spec.get("hooks")
                    .and_then(|h| h.get(k))
                    .and_then(|l| l.as_array())
                    .is_some_and(|l| !l.is_empty())
            })
        };
        SpecHooks {
            at_create: any(&["prestart", "createRuntime"]),
            later: any(&["poststart", "poststop"]),
        }
    }
}

/// Is this process single-threaded (`Threads:` in `/proc/self/status`)? Unknown
/// counts as no.
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .is_some_and(|n| n.trim() == "1")
    })
}

/// `create` in this process: the container's stdio (`/dev/null` for a missing one)
/// go to the library, which installs them in the intermediate.
fn create_here(root: &RuntimeRoot, opts: CreateOpts) -> Result<u32, RuntimeError> {
    let id = opts.id.as_str();
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| RuntimeError::Output {
            op: "create",
            id: id.to_owned(),
            what: "/dev/null".into(),
            source,
        })?;
    let fd = |f: &Option<std::os::fd::OwnedFd>| {
        f.as_ref()
            .map_or_else(|| null.as_raw_fd(), |f| f.as_raw_fd())
    };
    let o = berth_runtime::CreateOptions {
        pid_file: Some(opts.pid_file.clone()),
        console_socket: None,
        preserve_fds: 0,
        no_pivot: opts.no_pivot,
        stdio: Some([
            fd(&opts.stdio.stdin),
            fd(&opts.stdio.stdout),
            fd(&opts.stdio.stderr),
        ]),
    };
    let pid =
        berth_runtime::create(root, id, &opts.bundle, &o).map_err(|e| failure("create", id, e))?;
    u32::try_from(pid).map_err(|_| RuntimeError::Output {
        op: "create",
        id: id.to_owned(),
        what: "init pid".into(),
        source: std::io::Error::other(format!("not a pid: {pid}")),
    })
}

/// The [`RuntimeError`] of a failed in-process verb: the library's kind picks the
/// variant, as the helper's log record's kind does (see `log::failure`).
/// Logged in the shim's log, where the helper's failures are in the runtime log.
pub fn failure(op: &'static str, id: &str, e: berth_runtime::Error) -> RuntimeError {
    tracing::warn!(op, id, error = %e, "runtime verb failed");
    RuntimeError::of_kind(op, id, Some(e.kind()), &e.to_string()).unwrap_or_else(|| {
        RuntimeError::InProcess {
            op,
            id: id.to_owned(),
            source: e,
        }
    })
}

impl Runtime for Embedded {
    async fn create(&self, opts: CreateOpts) -> Result<u32, RuntimeError> {
        let hooks = SpecHooks::of_bundle(&opts.bundle);
        if hooks.later {
            self.hooks.store(true, Ordering::SeqCst);
        }
        if !self.in_process()
            || hooks.at_create
            || opts.console_socket.is_some()
            || !single_threaded()
        {
            return self.exec.create(opts).await;
        }
        create_here(&self.root, opts)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.hook_verbs_in_process() {
            return self.exec.start(id).await;
        }
        berth_runtime::start(&self.root, id).map_err(|e| failure("start", id, e))
    }

    async fn exec(&self, opts: ExecOpts) -> Result<u32, RuntimeError> {
        self.exec.exec(opts).await
    }

    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        if !self.in_process() {
            return self.exec.kill(id, signal, all).await;
        }
        let sig =
            berth_runtime::parse_signal(&signal.to_string()).map_err(|e| failure("kill", id, e))?;
        berth_runtime::kill(&self.root, id, sig, all).map_err(|e| failure("kill", id, e))
    }

    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        if !self.hook_verbs_in_process() {
            return self.exec.delete(id, force).await;
        }
        berth_runtime::delete(&self.root, id, force).map_err(|e| failure("delete", id, e))
    }

    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.in_process() {
            return self.exec.pause(id).await;
        }
        berth_runtime::pause(&self.root, id).map_err(|e| failure("pause", id, e))
    }

    async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.in_process() {
            return self.exec.resume(id).await;
        }
        berth_runtime::resume(&self.root, id).map_err(|e| failure("resume", id, e))
    }

    async fn ps(&self, id: &str) -> Result<Vec<u32>, RuntimeError> {
        if !self.in_process() {
            return self.exec.ps(id).await;
        }
        let pids = berth_runtime::ps(&self.root, id).map_err(|e| failure("ps", id, e))?;
        Ok(pids
            .into_iter()
            .filter_map(|p| u32::try_from(p).ok())
            .collect())
    }

    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        if !self.in_process() {
            return self.exec.stats(id).await;
        }
        let s = berth_runtime::stats(&self.root, id).map_err(|e| failure("events", id, e))?;
        // The helper's `events --stats` line, so both paths feed the same decoder.
        Ok(serde_json::json!({"type": "stats", "id": id, "data": s}))
    }

    async fn update(&self, id: &str, resources_json: &[u8]) -> Result<(), RuntimeError> {
        if !self.in_process() {
            return self.exec.update(id, resources_json).await;
        }
        let res: oci_spec::runtime::LinuxResources = serde_json::from_slice(resources_json)
            .map_err(|source| RuntimeError::Parse {
                op: "update",
                id: id.to_owned(),
                source,
            })?;
        berth_runtime::update(&self.root, id, &res).map_err(|e| failure("update", id, e))
    }
}

#[cfg(test)]
mod tests {
    use berth_api::{ErrorKind, HasKind};

    use super::*;

    #[test]
    fn hooks_decide_which_verbs_go_to_the_helper() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |v: serde_json::Value| {
            std::fs::write(dir.path().join("config.json"), v.to_string()).expect("write")
        };
        let hooks = |at_create, later| SpecHooks { at_create, later };
        assert_eq!(
            SpecHooks::of_bundle(dir.path()),
            hooks(true, true),
            "no config.json"
        );
        write(serde_json::json!({"ociVersion": "1.0.2"}));
        assert_eq!(SpecHooks::of_bundle(dir.path()), hooks(false, false));
        write(serde_json::json!({"hooks": {"prestart": [{"path": "/x"}], "poststop": []}}));
        assert_eq!(SpecHooks::of_bundle(dir.path()), hooks(true, false));
        write(serde_json::json!({"hooks": {"createRuntime": [{"path": "/x"}]}}));
        assert_eq!(SpecHooks::of_bundle(dir.path()), hooks(true, false));
        write(serde_json::json!({"hooks": {"createContainer": [{"path": "/x"}]}}));
        assert_eq!(
            SpecHooks::of_bundle(dir.path()),
            hooks(false, false),
            "run inside the container's init, not by the runtime's process"
        );
        write(serde_json::json!({"hooks": {"poststop": [{"path": "/x"}]}}));
        assert_eq!(SpecHooks::of_bundle(dir.path()), hooks(false, true));
        write(serde_json::json!({"hooks": {"poststart": [{"path": "/x"}]}}));
        assert_eq!(SpecHooks::of_bundle(dir.path()), hooks(false, true));
        std::fs::write(dir.path().join("config.json"), "{not json").expect("write");
        assert_eq!(
            SpecHooks::of_bundle(dir.path()),
            hooks(true, true),
            "unreadable spec"
        );
    }

    #[test]
    fn the_test_harness_is_not_single_threaded() {
        // The check that keeps `create` from forking a threaded shim: here (the test
        // harness runs this on a thread of its own) it must say no.
        let t = std::thread::spawn(single_threaded);
        assert!(!t.join().expect("join"));
    }

    #[test]
    fn a_missing_or_unusable_command_keeps_its_variant_and_code() {
        let exec = |errno| berth_runtime::Error::Exec {
            id: "c1".into(),
            source: berth_runtime::ExecError {
                command: "nosuchcmd".into(),
                errno,
                searched_path: true,
            },
        };
        let e = failure("start", "c1", exec(nix::errno::Errno::ENOENT));
        assert!(matches!(
            &e,
            RuntimeError::ExecutableNotFound { op: "start", .. }
        ));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("executable file not found"), "{e}");
        let e = failure("start", "c1", exec(nix::errno::Errno::EACCES));
        assert!(matches!(
            &e,
            RuntimeError::NotExecutable { op: "start", .. }
        ));
    }

    #[test]
    fn library_errors_keep_their_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::new(dir.path());
        let e = berth_runtime::kill(&root, "nope", berth_runtime::Signal::SIGTERM, false)
            .expect_err("no such container");
        let e = failure("kill", "nope", e);
        assert!(matches!(&e, RuntimeError::InProcess { op: "kill", id, .. } if id == "nope"));
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
