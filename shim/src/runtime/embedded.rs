//! [`Embedded`]: the runtime verbs that never fork run in the shim itself, through
//! the `berth_runtime` library; `create` and `exec`, which fork the container's
//! processes, stay with the re-executed helper ([`Exec`]).
//!
//! Why: a verb as a helper costs a process start (exec of the shim binary, page
//! faults, the runtime's start-up) of 3–5 ms, and `start` is on the path of every
//! `ctr run`. In-process, `start` is a connect, a one-byte write and a read until the
//! init has exec'd; `delete` of a stopped container is rmdirs and unlinks.
//!
//! Two rules keep this safe in the serving shim:
//! - No verb here waits for a child: the [`crate::reaper::Reaper`] owns `waitpid`.
//!   The library's verbs other than `create`/`exec` only signal, poll `/proc` (a
//!   zombie counts as gone) and touch cgroup and state files — except hooks, which
//!   it spawns and waits for, each for up to its timeout: in the shim that would
//!   reap children behind the reaper's back and stall every RPC meanwhile. So a
//!   container whose spec has poststart or poststop hooks keeps `start` and
//!   `delete` on the helper (decided from `config.json` at create; the other verbs
//!   run no hooks).
//! - Each verb blocks the (single-threaded) shim while it runs; all are short (a
//!   `delete` of a running container waits for its SIGKILLed init, which the
//!   kernel makes quick; a zombie does not count).

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

/// Does `config.json` in `bundle` ask for poststart or poststop hooks? An
/// unreadable spec counts as yes (the helper path is always correct).
pub fn has_later_hooks(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read(bundle.join(crate::paths::CONFIG)) else {
        return true;
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return true;
    };
    ["poststart", "poststop"].iter().any(|k| {
        spec.get("hooks")
            .and_then(|h| h.get(k))
            .and_then(|l| l.as_array())
            .is_some_and(|l| !l.is_empty())
    })
}

/// The [`RuntimeError`] of a failed in-process verb: the library's kind picks the
/// variant, as the helper's log record's kind does (see `log::failure`).
pub fn failure(op: &'static str, id: &str, e: berth_runtime::Error) -> RuntimeError {
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
        if has_later_hooks(&opts.bundle) {
            self.hooks.store(true, Ordering::SeqCst);
        }
        self.exec.create(opts).await
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
    fn only_poststart_or_poststop_hooks_send_verbs_to_the_helper() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |v: serde_json::Value| {
            std::fs::write(dir.path().join("config.json"), v.to_string()).expect("write")
        };
        assert!(has_later_hooks(dir.path()), "no config.json: helper");
        write(serde_json::json!({"ociVersion": "1.0.2"}));
        assert!(!has_later_hooks(dir.path()));
        write(serde_json::json!({"hooks": {"prestart": [{"path": "/x"}], "poststop": []}}));
        assert!(
            !has_later_hooks(dir.path()),
            "create-time hooks run in the helper"
        );
        write(serde_json::json!({"hooks": {"poststop": [{"path": "/x"}]}}));
        assert!(has_later_hooks(dir.path()));
        write(serde_json::json!({"hooks": {"poststart": [{"path": "/x"}]}}));
        assert!(has_later_hooks(dir.path()));
        std::fs::write(dir.path().join("config.json"), "{not json").expect("write");
        assert!(has_later_hooks(dir.path()), "unreadable spec: helper");
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
