//! The client side of FIFO I/O, as ctr's `cio`.
//!
//! The client makes the FIFOs, sends their paths in Tasks.Create /
//! Tasks.Exec, and opens its ends: stdin for writing, stdout and stderr for
//! reading. The shim opens the other ends. Each end is opened and copied on
//! its own thread, because opening a FIFO blocks until its peer opens it.
//!
//! ```text
//! <base>/                  /run/berth/fifo (or $TMPDIR/berth-fifo), 0700
//!   <random>/              one set, 0700, removed on drop (unless kept)
//!     <id>-stdin
//!     <id>-stdout
//!     <id>-stderr
//! ```
//!
//! A set can outlive its client ([`FifoSet::keep`], for a detached process
//! that is attached to later): the shim holds its own ends open, so output
//! waits in the FIFO (up to the pipe buffer, then the process blocks on
//! write, as with containerd) and input can be written by whoever attaches
//! next. [`FifoSet::existing`] reopens such a set (ctr's `tasks attach`);
//! [`remove_kept`] deletes it once the task is gone.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::Mode;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// Where FIFO sets are made by default.
pub const DEFAULT_FIFO_DIR: &str = "/run/berth/fifo";

/// The FIFO paths of one process.
#[derive(Debug)]
pub struct FifoSet {
    /// The set's own dir, removed on drop; `None` when not owned.
    dir: Option<PathBuf>,
    /// Path of stdin, `None` when the process gets no stdin.
    pub stdin: Option<PathBuf>,
    /// Path of stdout.
    pub stdout: PathBuf,
    /// Path of stderr (sent even with a terminal, as ctr).
    pub stderr: PathBuf,
    /// A terminal merges stderr into stdout.
    pub terminal: bool,
    /// Reopened from a running process ([`FifoSet::existing`]): its shim
    /// already holds every end, so opening the outputs does not wait on it.
    reopened: bool,
}

/// The base directory for FIFO sets: `/run/berth/fifo` when it can be
/// created, else a `berth-fifo` dir under the temp dir.
pub fn default_base() -> PathBuf {
    let run = PathBuf::from(DEFAULT_FIFO_DIR);
    if make_private_dir(&run).is_ok() {
        return run;
    }
    std::env::temp_dir().join("berth-fifo")
}

fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

impl FifoSet {
    /// Makes a new set for process `id` in a fresh private dir under `base`.
    pub fn new(base: &Path, id: &str, stdin: bool, terminal: bool) -> Result<FifoSet> {
        make_private_dir(base).map_err(|e| Error::io("cannot create fifo dir", base, e))?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let dir = base.join(&name[..16]);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("cannot create fifo dir", &dir, e))?;
        let set = FifoSet {
            stdin: stdin.then(|| dir.join(format!("{id}-stdin"))),
            stdout: dir.join(format!("{id}-stdout")),
            stderr: dir.join(format!("{id}-stderr")),
            dir: Some(dir),
            terminal,
            reopened: false,
        };
        for path in set.stdin.iter().chain([&set.stdout, &set.stderr]) {
            nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
                .map_err(|e| Error::io("cannot create fifo", path, e.into()))?;
        }
        Ok(set)
    }

    /// The FIFOs of a process that already has them (the `stdin`,
    /// `stdout`, `stderr` and `terminal` of its Tasks.Get answer), to attach
    /// to; an empty `stdin` means the process has none. Each path must be a
    /// FIFO. The set is not removed on drop: it belongs to the process.
    pub fn existing(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Result<FifoSet> {
        let fifo = |p: &str| -> Result<PathBuf> {
            let path = PathBuf::from(p);
            let meta = std::fs::metadata(&path)
                .map_err(|e| Error::io("cannot attach to fifo", &path, e))?;
            if !std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) {
                return Err(Error::InvalidArgument(format!(
                    "{} is not a fifo",
                    path.display()
                )));
            }
            Ok(path)
        };
        if stdout.is_empty() {
            return Err(Error::InvalidArgument(
                "the process has no stdout fifo".to_string(),
            ));
        }
        Ok(FifoSet {
            dir: None,
            stdin: (!stdin.is_empty()).then(|| fifo(stdin)).transpose()?,
            stdout: fifo(stdout)?,
            stderr: if stderr.is_empty() || terminal {
                PathBuf::from(stderr)
            } else {
                fifo(stderr)?
            },
            terminal,
            reopened: true,
        })
    }

    /// Leaves the set on disk when dropped (the process outlives this
    /// client); [`remove_kept`] removes it later.
    pub fn keep(&mut self) {
        self.dir = None;
    }

    /// The (stdin, stdout, stderr) strings for a Tasks request.
    pub fn paths(&self) -> (String, String, String) {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        (
            self.stdin.as_deref().map(s).unwrap_or_default(),
            s(&self.stdout),
            s(&self.stderr),
        )
    }

    /// Starts copying: `input` into stdin (if the set has one), stdout and
    /// stderr (unless a terminal) into `out` and `err`.
    pub fn attach(
        &self,
        input: Option<Box<dyn Read + Send>>,
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
    ) -> Attached {
        let (done_tx, done_rx) = mpsc::channel(2);
        // Attaching to a running process, input goes in only once every
        // output FIFO is open for reading: the process may answer and exit at
        // once, and what it wrote into a FIFO nobody had opened yet is gone
        // when the shim closes its end. (A new set needs no such wait: its
        // process starts only after Tasks.Create has opened every end.)
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let mut outputs = 1;
        spawn_reader(self.stdout.clone(), out, done_tx.clone(), opened_tx.clone());
        if !self.terminal {
            outputs += 1;
            spawn_reader(self.stderr.clone(), err, done_tx, opened_tx);
        }
        let (eof_tx, eof_rx) = oneshot::channel();
        if let (Some(path), Some(input)) = (self.stdin.clone(), input) {
            let wait_for = if self.reopened { outputs } else { 0 };
            spawn_writer(path, input, eof_tx, opened_rx, wait_for);
        }
        Attached {
            outputs,
            done: done_rx,
            stdin_eof: Some(eof_rx),
            paths: [self.stdout.clone(), self.stderr.clone()],
        }
    }
}

impl Drop for FifoSet {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir
            && let Err(e) = std::fs::remove_dir_all(dir)
        {
            tracing::debug!(dir = %dir.display(), error = %e, "fifo dir not removed");
        }
    }
}

/// Whether a process's stdout string names no FIFO: empty (the shim keeps
/// the output in the container log) or a `file://` log.
pub fn is_log_target(stdout: &str) -> bool {
    stdout.is_empty() || stdout.starts_with("file://")
}

/// Removes a kept set under `base` given its stdout path (from Tasks.Get):
/// the FIFO's directory, when it is a direct child of `base` and holds
/// nothing but FIFOs (a set made by [`FifoSet::new`]); anything else is
/// left alone. Returns whether a set was removed.
pub fn remove_kept(base: &Path, stdout: &str) -> bool {
    let path = Path::new(stdout);
    let Some(dir) = path
        .parent()
        .filter(|d| path.is_absolute() && d.parent() == Some(base))
    else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut any = false;
    for entry in entries {
        let is_fifo = entry
            .and_then(|e| e.file_type())
            .is_ok_and(|t| std::os::unix::fs::FileTypeExt::is_fifo(&t));
        if !is_fifo {
            return false;
        }
        any = true;
    }
    any && std::fs::remove_dir_all(dir).is_ok()
}

fn spawn_reader(
    path: PathBuf,
    mut out: Box<dyn Write + Send>,
    done: mpsc::Sender<()>,
    opened: std::sync::mpsc::Sender<()>,
) {
    std::thread::spawn(move || {
        let fifo = OpenOptions::new().read(true).open(&path);
        // Sent whether or not the open worked: the writer must not wait forever.
        let _ = opened.send(());
        drop(opened);
        if let Ok(mut fifo) = fifo {
            let mut buf = [0u8; 32 << 10];
            loop {
                match fifo.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                            break;
                        }
                    }
                }
            }
        }
        let _ = done.blocking_send(());
    });
}

fn spawn_writer(
    path: PathBuf,
    mut input: Box<dyn Read + Send>,
    eof: oneshot::Sender<()>,
    outputs_opened: std::sync::mpsc::Receiver<()>,
    outputs: usize,
) {
    std::thread::spawn(move || {
        for _ in 0..outputs {
            // Err: every reader is gone, which also means they got past open.
            if outputs_opened.recv().is_err() {
                break;
            }
        }
        if let Ok(mut fifo) = OpenOptions::new().write(true).open(&path) {
            let _ = std::io::copy(&mut input, &mut fifo);
        }
        let _ = eof.send(());
    });
}

/// The copies of one attached FIFO set.
pub struct Attached {
    outputs: usize,
    done: mpsc::Receiver<()>,
    stdin_eof: Option<oneshot::Receiver<()>>,
    paths: [PathBuf; 2],
}

impl Attached {
    /// Resolves when the input reached EOF and was written (never, without
    /// input). The caller then sends Tasks.CloseIO.
    pub fn stdin_eof(&mut self) -> Option<oneshot::Receiver<()>> {
        self.stdin_eof.take()
    }

    /// Waits until stdout and stderr reached EOF (the shim closed them after
    /// the process exited), at most `grace`; then unblocks any copy still
    /// waiting for its peer, so nothing is left hanging. Returns whether
    /// the copies finished by themselves.
    pub async fn wait_output(mut self, grace: Duration) -> bool {
        let all = async {
            for _ in 0..self.outputs {
                if self.done.recv().await.is_none() {
                    break;
                }
            }
        };
        if tokio::time::timeout(grace, all).await.is_ok() {
            return true;
        }
        tracing::debug!("output copies did not finish; releasing fifos");
        for path in &self.paths {
            release(path);
        }
        false
    }
}

/// Opens `path` as a writer for a moment so a reader blocked in open()
/// returns and then sees EOF.
pub fn release(path: &Path) {
    let _ = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn copies_both_ways_like_a_shim_peer() {
        let base = tempfile::tempdir().expect("tmp");
        let set = FifoSet::new(base.path(), "c1", true, false).expect("fifos");
        let (stdin, stdout, stderr) = set.paths();
        assert!(stdin.ends_with("/c1-stdin") && stdout.ends_with("/c1-stdout"));
        let (out, err) = (Sink::default(), Sink::default());
        let mut attached = set.attach(
            Some(Box::new(std::io::Cursor::new(b"ping\n".to_vec()))),
            Box::new(out.clone()),
            Box::new(err.clone()),
        );
        let eof = attached.stdin_eof().expect("stdin");
        // The peer: read stdin, write both outputs, close.
        let peer = std::thread::spawn(move || {
            let mut input = String::new();
            std::fs::File::open(&stdin)
                .and_then(|mut f| f.read_to_string(&mut input))
                .expect("read stdin");
            std::fs::write(&stdout, format!("got {input}")).expect("stdout");
            std::fs::write(&stderr, b"warn\n").expect("stderr");
        });
        eof.await.expect("stdin eof");
        assert!(attached.wait_output(Duration::from_secs(10)).await);
        peer.join().expect("peer");
        assert_eq!(out.0.lock().expect("lock").as_slice(), b"got ping\n");
        assert_eq!(err.0.lock().expect("lock").as_slice(), b"warn\n");
        let dir = set.dir.clone().expect("owned");
        drop(set);
        assert!(!dir.exists(), "fifo dir removed on drop");
    }

    #[tokio::test]
    async fn a_kept_set_is_reattached_then_removed() {
        let base = tempfile::tempdir().expect("tmp");
        let mut set = FifoSet::new(base.path(), "c3", true, false).expect("fifos");
        set.keep();
        let (stdin, stdout, stderr) = set.paths();
        drop(set);
        assert!(Path::new(&stdout).exists(), "kept set survives drop");

        // The process side (the shim) holds the FIFOs; a new client
        // reopens them from the paths Tasks.Get reports.
        let again = FifoSet::existing(&stdin, &stdout, &stderr, false).expect("existing");
        let out = Sink::default();
        let mut attached = again.attach(
            Some(Box::new(std::io::Cursor::new(b"hi\n".to_vec()))),
            Box::new(out.clone()),
            Box::new(Sink::default()),
        );
        let eof = attached.stdin_eof().expect("stdin");
        let kept = stdout.clone();
        // Like a shim, the peer holds its output ends before the process
        // reads its input (the attach writes input only after both outputs
        // are open for reading).
        let peer = std::thread::spawn(move || {
            use std::io::Write as _;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .open(&stdout)
                .expect("stdout");
            let err = std::fs::OpenOptions::new()
                .write(true)
                .open(&stderr)
                .expect("stderr");
            let mut input = String::new();
            std::fs::File::open(&stdin)
                .and_then(|mut f| f.read_to_string(&mut input))
                .expect("read stdin");
            write!(out, "again {input}").expect("write stdout");
            drop((out, err));
        });
        eof.await.expect("stdin eof");
        assert!(attached.wait_output(Duration::from_secs(10)).await);
        peer.join().expect("peer");
        assert_eq!(out.0.lock().expect("lock").as_slice(), b"again hi\n");
        drop(again);
        assert!(
            Path::new(&kept).exists(),
            "an existing set is not removed on drop"
        );
        assert!(
            !remove_kept(Path::new("/elsewhere"), &kept),
            "only under its base"
        );
        assert!(remove_kept(base.path(), &kept));
        assert!(!Path::new(&kept).exists());
    }

    #[test]
    fn existing_refuses_non_fifos_and_remove_kept_spares_other_dirs() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = tmp.path().join("container.log");
        std::fs::write(&file, b"x").expect("file");
        let f = file.to_str().expect("utf8");
        let err = FifoSet::existing("", f, f, false).expect_err("a log file");
        assert_eq!(err.kind(), berth_api::ErrorKind::InvalidArgument);
        assert!(FifoSet::existing("", "", "", false).is_err(), "no stdout");
        let base = tmp.path().parent().expect("parent");
        assert!(!remove_kept(base, f), "a dir holding a regular file");
        assert!(file.exists());
        assert!(!remove_kept(Path::new(""), "relative/path"));
    }

    #[tokio::test]
    async fn wait_output_releases_a_peer_that_never_opened() {
        let base = tempfile::tempdir().expect("tmp");
        let set = FifoSet::new(base.path(), "c2", false, true).expect("fifos");
        let attached = set.attach(None, Box::new(Sink::default()), Box::new(Sink::default()));
        // No peer ever opens stdout: the copy must be released, not hang.
        assert!(!attached.wait_output(Duration::from_millis(50)).await);
    }
}
