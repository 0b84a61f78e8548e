//! [`Exec`]: runs each runtime verb as a fresh helper process,
//! `/proc/self/exe runtime --root <root> <verb> …`, whose exit is collected by
//! the reaper (never by `Child::wait`).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::{ChildStdio, CreateOpts, ExecOpts, Runtime, RuntimeError};
use crate::reaper::Reaper;

/// Development override of the runtime program (e.g. `/usr/sbin/runc`, which
/// has the same CLI). Never set by berthd or by committed tests.
pub const RUNTIME_OVERRIDE_ENV: &str = "BERTH_SHIM_RUNTIME";

/// The runtime as a re-executed helper.
#[derive(Clone)]
pub struct Exec {
    program: PathBuf,
    prefix: Vec<OsString>,
    root: PathBuf,
    scratch: PathBuf,
    log: PathBuf,
    reaper: Reaper,
}

impl Exec {
    /// The runtime with state root `root` (`<state>/runtime/<ns>`); `scratch`
    /// is a directory for temporary request files and the runtime's
    /// [`super::LOG_FILE`] (the bundle).
    pub fn new(root: PathBuf, scratch: PathBuf, reaper: Reaper) -> Exec {
        let (program, prefix) = match std::env::var_os(RUNTIME_OVERRIDE_ENV) {
            Some(p) if !p.is_empty() => (PathBuf::from(p), Vec::new()),
            _ => (
                PathBuf::from("/proc/self/exe"),
                vec![OsString::from("runtime")],
            ),
        };
        Exec {
            program,
            prefix,
            root,
            log: scratch.join(super::LOG_FILE),
            scratch,
            reaper,
        }
    }

    fn command(&self, args: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix)
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json")
            .args(args);
        cmd
    }

    /// Runs one verb. With `stdio` the helper gets the process's stdio and
    /// its own output cannot be captured; otherwise stdout is returned. A
    /// failure is typed from the verb's last error record in the log (see
    /// [`super::log::failure`]), its message falling back to stderr.
    async fn run(
        &self,
        op: &'static str,
        id: &str,
        args: Vec<OsString>,
        stdio: Option<ChildStdio>,
        cwd: Option<&Path>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let mut cmd = self.command(&args);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let captured = stdio.is_none();
        match stdio {
            Some(s) => {
                cmd.stdin(stdio_of(s.stdin))
                    .stdout(stdio_of(s.stdout))
                    .stderr(stdio_of(s.stderr));
            }
            None => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
        }
        let spawn_err = |source| RuntimeError::Spawn {
            op,
            id: id.to_owned(),
            source,
        };
        let log_from = super::log::mark(&self.log);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        // Subscribe before the next await so the reaper cannot miss it.
        let exit = self.reaper.subscribe(child.id());
        drop(cmd);
        let output_err = |what: &str, source| RuntimeError::Output {
            op,
            id: id.to_owned(),
            what: what.to_owned(),
            source,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        if captured {
            let stdout = child.stdout.take().map(OwnedFd::from);
            let stderr = child.stderr.take().map(OwnedFd::from);
            let (a, b) = tokio::join!(read_all(stdout, &mut out), read_all(stderr, &mut err));
            a.map_err(|e| output_err("stdout", e))?;
            b.map_err(|e| output_err("stderr", e))?;
        }
        drop(child);
        let exit = exit
            .await
            .map_err(|_| output_err("exit", std::io::Error::other("reaper gone")))?;
        if exit.status != 0 {
            let record = super::log::last_error(&self.log, log_from);
            return Err(super::log::failure(
                op,
                id,
                exit.status,
                record,
                &String::from_utf8_lossy(&err),
            ));
        }
        Ok(out)
    }

    fn read_pid(op: &'static str, id: &str, path: &Path) -> Result<u32, RuntimeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RuntimeError::Output {
            op,
            id: id.to_owned(),
            what: path.display().to_string(),
            source,
        })?;
        text.trim().parse().map_err(|_| RuntimeError::Output {
            op,
            id: id.to_owned(),
            what: path.display().to_string(),
            source: std::io::Error::other(format!("not a pid: {text:?}")),
        })
    }
}

fn stdio_of(fd: Option<OwnedFd>) -> Stdio {
    fd.map_or_else(Stdio::null, Stdio::from)
}

async fn read_all(fd: Option<OwnedFd>, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let Some(fd) = fd else { return Ok(()) };
    let mut rx = pipe::Receiver::from_owned_fd(fd)?;
    rx.read_to_end(buf).await.map(|_| ())
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

impl Runtime for Exec {
    async fn create(&self, opts: CreateOpts) -> Result<u32, RuntimeError> {
        let mut args = vec![
            os("create"),
            os("--bundle"),
            os(&opts.bundle),
            os("--pid-file"),
            os(&opts.pid_file),
        ];
        if let Some(s) = &opts.console_socket {
            args.extend([os("--console-socket"), os(s)]);
        }
        if opts.no_pivot {
            args.push(os("--no-pivot"));
        }
        args.push(os(&opts.id));
        self.run(
            "create",
            &opts.id,
            args,
            Some(opts.stdio),
            Some(&opts.bundle),
        )
        .await?;
        Exec::read_pid("create", &opts.id, &opts.pid_file)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("start", id, vec![os("start"), os(id)], None, None)
            .await
            .map(drop)
    }

    async fn exec(&self, opts: ExecOpts) -> Result<u32, RuntimeError> {
        let mut args = vec![
            os("exec"),
            os("--process"),
            os(&opts.process_file),
            os("--pid-file"),
            os(&opts.pid_file),
            os("-d"),
        ];
        if let Some(s) = &opts.console_socket {
            args.extend([os("--console-socket"), os(s)]);
        }
        args.push(os(&opts.id));
        self.run("exec", &opts.id, args, Some(opts.stdio), None)
            .await?;
        Exec::read_pid("exec", &opts.id, &opts.pid_file)
    }

    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuntimeError> {
        let mut args = vec![os("kill")];
        if all {
            args.push(os("--all"));
        }
        args.extend([os(id), os(signal.to_string())]);
        self.run("kill", id, args, None, None).await.map(drop)
    }

    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut args = vec![os("delete")];
        if force {
            args.push(os("--force"));
        }
        args.push(os(id));
        self.run("delete", id, args, None, None).await.map(drop)
    }

    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("pause", id, vec![os("pause"), os(id)], None, None)
            .await
            .map(drop)
    }

    async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("resume", id, vec![os("resume"), os(id)], None, None)
            .await
            .map(drop)
    }

    async fn ps(&self, id: &str) -> Result<Vec<u32>, RuntimeError> {
        let args = vec![os("ps"), os("--format"), os("json"), os(id)];
        let out = self.run("ps", id, args, None, None).await?;
        serde_json::from_slice::<Option<Vec<u32>>>(&out)
            .map(Option::unwrap_or_default)
            .map_err(|source| RuntimeError::Parse {
                op: "ps",
                id: id.to_owned(),
                source,
            })
    }

    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let args = vec![os("events"), os("--stats"), os(id)];
        let out = self.run("events", id, args, None, None).await?;
        serde_json::from_slice(&out).map_err(|source| RuntimeError::Parse {
            op: "events",
            id: id.to_owned(),
            source,
        })
    }

    async fn update(&self, id: &str, resources_json: &[u8]) -> Result<(), RuntimeError> {
        let file = self
            .scratch
            .join(format!("update-{}.json", std::process::id()));
        std::fs::write(&file, resources_json).map_err(|source| RuntimeError::Output {
            op: "update",
            id: id.to_owned(),
            what: file.display().to_string(),
            source,
        })?;
        let args = vec![os("update"), os("--resources"), os(&file), os(id)];
        let res = self.run("update", id, args, None, None).await.map(drop);
        let _ = std::fs::remove_file(&file);
        res
    }
}
