//! A process's stdio, by containerd's rules (containerd-api.md §6.3):
//!
//! * a FIFO path: stdout/stderr are opened read-write (our keep-alive read
//!   handle: writes never EPIPE after the client left, they block when the
//!   FIFO is full); stdin is opened for reading plus our own writer, held
//!   until CloseIO, so the process sees EOF only after CloseIO;
//! * `file://PATH` or an absolute path that is not a FIFO: append to a log
//!   file (stdout/stderr only);
//! * empty: null (the process reads EOF; output is still copied into
//!   container.log when it is kept);
//! * `binary://` is not supported.
//!
//! The process writes into pipes the shim copies (or, with a terminal, a pty
//! whose master the runtime sends over a console socket). The copies start
//! only after the runtime's create/exec succeeded (containerd's order): the
//! runtime is given the process's stdio, so on failure its own message is
//! in the pipes, and they are closed unread ([`PendingIo`]); the error
//! carries the message. A pty master is only read once the call returned,
//! and the runtime of a terminal process gets /dev/null. [`ProcIo::drain`]
//! waits for the copies to reach EOF (bounded) before the exit is reported,
//! and then closes every handle on the targets, so exec clients never hang.

pub mod console;
pub mod copy;
pub mod log;
mod pending;

use std::fs::{File, OpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::{ErrorKind, HasKind};
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

use crate::runtime::ChildStdio;
use copy::{LogTap, Sink};
use log::{ContainerLog, Stream};
pub use pending::PendingIo;

/// The stdio a client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    /// stdin FIFO, or empty.
    pub stdin: String,
    /// stdout FIFO / log URI, or empty.
    pub stdout: String,
    /// stderr FIFO / log URI, or empty (ignored with a terminal).
    pub stderr: String,
    /// Whether the process has a terminal.
    pub terminal: bool,
}

impl StdioPaths {
    /// Whether init output should also go to container.log: when stdout is
    /// a FIFO or null (a log file already keeps it).
    pub fn wants_container_log(&self) -> bool {
        matches!(target(&self.stdout), Ok(Target::Null | Target::Fifo(_)))
    }
}

/// Why stdio could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The URI is not one the shim understands.
    #[error("unsupported stdio {uri:?}")]
    Unsupported {
        /// The URI.
        uri: String,
    },
    /// Opening a FIFO, file or pipe failed.
    #[error("cannot open stdio {path}")]
    Open {
        /// What was opened.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for IoError {
    fn kind(&self) -> ErrorKind {
        match self {
            IoError::Unsupported { .. } => ErrorKind::InvalidArgument,
            IoError::Open { .. } => ErrorKind::Internal,
        }
    }
}

/// What a stdio string designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing.
    Null,
    /// An existing FIFO.
    Fifo(PathBuf),
    /// A log file (appended).
    File(PathBuf),
}

/// Classifies a stdio string.
pub fn target(uri: &str) -> Result<Target, IoError> {
    if uri.is_empty() {
        return Ok(Target::Null);
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return Ok(Target::File(PathBuf::from(path)));
    }
    if uri.starts_with('/') {
        let path = PathBuf::from(uri);
        let is_fifo = std::fs::metadata(&path)
            .map(|m| m.file_type().is_fifo())
            .unwrap_or(false);
        return Ok(if is_fifo {
            Target::Fifo(path)
        } else {
            Target::File(path)
        });
    }
    Err(IoError::Unsupported {
        uri: uri.to_owned(),
    })
}

fn open_err(path: &Path) -> impl FnOnce(std::io::Error) -> IoError + '_ {
    move |source| IoError::Open {
        path: path.display().to_string(),
        source,
    }
}

fn open_sink(uri: &str) -> Result<Option<Sink>, IoError> {
    match target(uri)? {
        Target::Null => Ok(None),
        Target::Fifo(p) => pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&p)
            .map(|s| Some(Sink::Fifo(s)))
            .map_err(open_err(&p)),
        Target::File(p) => {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(open_err(dir))?;
            }
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(&p)
                .map(|f| Some(Sink::File(f)))
                .map_err(open_err(&p))
        }
    }
}

/// The stdin FIFO opened for reading, plus our writer that keeps it open.
fn open_stdin(uri: &str) -> Result<Option<(pipe::Receiver, File)>, IoError> {
    match target(uri)? {
        Target::Null => Ok(None),
        Target::Fifo(p) => {
            let rx = pipe::OpenOptions::new()
                .open_receiver(&p)
                .map_err(open_err(&p))?;
            let keep = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&p)
                .map_err(open_err(&p))?;
            Ok(Some((rx, keep)))
        }
        Target::File(_) => Err(IoError::Unsupported {
            uri: uri.to_owned(),
        }),
    }
}

fn pipe_pair(what: &str) -> Result<(OwnedFd, OwnedFd), IoError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| IoError::Open {
        path: format!("{what} pipe"),
        source: e.into(),
    })
}

/// The live stdio of one process.
pub struct ProcIo {
    stdin_keep: Mutex<Option<File>>,
    master: Option<OwnedFd>,
    outputs: Mutex<Vec<JoinHandle<()>>>,
    input: Mutex<Option<JoinHandle<()>>>,
}

/// Opens container.log for `bundle` when `paths` want it.
pub fn container_log(bundle: &Path, paths: &StdioPaths) -> Option<Arc<Mutex<ContainerLog>>> {
    if !paths.wants_container_log() {
        return None;
    }
    let path = bundle.join(crate::paths::CONTAINER_LOG);
    match ContainerLog::open(&path) {
        Ok(l) => Some(Arc::new(Mutex::new(l))),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot open container log");
            None
        }
    }
}

impl ProcIo {
    /// Pipes for a process without a terminal: opens the targets and the
    /// pipes, and returns the process's ends. Nothing is copied before
    /// [`PendingIo::start`].
    pub fn pipes(
        paths: &StdioPaths,
        log: Option<Arc<Mutex<ContainerLog>>>,
    ) -> Result<(PendingIo, ChildStdio), IoError> {
        let stdout_sink = open_sink(&paths.stdout)?;
        let stderr_sink = open_sink(&paths.stderr)?;
        let stdin = open_stdin(&paths.stdin)?;
        let mut child = ChildStdio::default();
        let mut outputs = Vec::new();
        let tap = |s: Stream| -> Option<LogTap> { log.clone().map(|l| (l, s)) };
        for (sink, stream) in [(stdout_sink, Stream::Stdout), (stderr_sink, Stream::Stderr)] {
            if sink.is_none() && log.is_none() {
                continue;
            }
            let (r, w) = pipe_pair("output")?;
            let rx = pipe::Receiver::from_owned_fd(r).map_err(|source| IoError::Open {
                path: "output pipe".into(),
                source,
            })?;
            outputs.push((rx, sink, tap(stream)));
            match stream {
                Stream::Stdout => child.stdout = Some(w),
                Stream::Stderr => child.stderr = Some(w),
            }
        }
        let mut input = None;
        let mut stdin_keep = None;
        if let Some((fifo, writer)) = stdin {
            let (r, w) = pipe_pair("stdin")?;
            let tx = pipe::Sender::from_owned_fd(w).map_err(|source| IoError::Open {
                path: "stdin pipe".into(),
                source,
            })?;
            input = Some((fifo, tx));
            stdin_keep = Some(writer);
            child.stdin = Some(r);
        }
        Ok((
            PendingIo {
                outputs,
                input,
                stdin_keep,
            },
            child,
        ))
    }

    /// A process with a terminal: copies master -> stdout and stdin -> master.
    pub fn terminal(
        master: OwnedFd,
        paths: &StdioPaths,
        log: Option<Arc<Mutex<ContainerLog>>>,
    ) -> Result<ProcIo, IoError> {
        let sink = open_sink(&paths.stdout)?;
        let stdin = open_stdin(&paths.stdin)?;
        let pty_err = |source| IoError::Open {
            path: "pty master".into(),
            source,
        };
        let reader = console::Pty::new(&master).map_err(pty_err)?;
        let outputs = vec![tokio::spawn(copy::copy_out(
            reader,
            sink,
            log.map(|l| (l, Stream::Stdout)),
        ))];
        let mut input = None;
        let mut keep = None;
        if let Some((fifo, writer)) = stdin {
            let writer_pty = console::Pty::new(&master).map_err(pty_err)?;
            input = Some(tokio::spawn(copy::copy_in(fifo, writer_pty)));
            keep = Some(writer);
        }
        Ok(ProcIo {
            stdin_keep: Mutex::new(keep),
            master: Some(master),
            outputs: Mutex::new(outputs),
            input: Mutex::new(input),
        })
    }

    /// CloseIO: drops our stdin writer; the process sees EOF once the
    /// client's writer is closed too.
    pub fn close_stdin(&self) {
        if let Ok(mut k) = self.stdin_keep.lock() {
            k.take();
        }
    }

    /// Sets the terminal size; a process without a terminal ignores it.
    pub fn resize(&self, width: u16, height: u16) -> Result<(), IoError> {
        match &self.master {
            Some(m) => console::resize(m, width, height).map_err(|source| IoError::Open {
                path: "pty master".into(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Waits (at most `limit`) until the output copies reached EOF, then
    /// closes every handle: output targets, stdin copy and writer.
    pub async fn drain(&self, limit: Duration) {
        let outputs: Vec<_> = self
            .outputs
            .lock()
            .map(|mut o| std::mem::take(&mut *o))
            .unwrap_or_default();
        let aborts: Vec<_> = outputs.iter().map(|h| h.abort_handle()).collect();
        let all = futures_join_all(outputs);
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(?limit, "output not drained in time, closing it");
            for a in aborts {
                a.abort();
            }
        }
        self.close();
    }

    /// Closes every handle at once (no draining).
    pub fn close(&self) {
        if let Ok(mut o) = self.outputs.lock() {
            for h in o.drain(..) {
                h.abort();
            }
        }
        if let Ok(mut i) = self.input.lock()
            && let Some(h) = i.take()
        {
            h.abort();
        }
        self.close_stdin();
    }
}

impl Drop for ProcIo {
    fn drop(&mut self) {
        self.close();
    }
}

async fn futures_join_all(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

#[cfg(test)]
mod tests;
