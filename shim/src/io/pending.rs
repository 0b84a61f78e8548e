//! [`PendingIo`]: a process's pipes while the runtime's create/exec runs.

use std::fs::File;
use std::sync::Mutex;

use tokio::net::unix::pipe;

use super::ProcIo;
use super::copy::{self, LogTap, Sink};

/// The pipes of a process without a terminal whose runtime call (create or
/// exec) has not returned yet: targets open, nothing copied. The process's
/// output waits in the pipes. [`PendingIo::start`] starts the copies once the
/// call succeeded; dropping it instead closes the pipes unread, so what a
/// failing runtime printed on the process's stderr reaches the client only
/// once, in the error (containerd's order: copy after create).
pub struct PendingIo {
    pub(super) outputs: Vec<(pipe::Receiver, Option<Sink>, Option<LogTap>)>,
    pub(super) input: Option<(pipe::Receiver, pipe::Sender)>,
    pub(super) stdin_keep: Option<File>,
}

impl PendingIo {
    /// Starts the copies (needs the tokio runtime): output buffered in the
    /// pipes since the process was created is copied first.
    pub fn start(self) -> ProcIo {
        let outputs = self
            .outputs
            .into_iter()
            .map(|(rx, sink, tap)| tokio::spawn(copy::copy_out(rx, sink, tap)))
            .collect();
        let input = self
            .input
            .map(|(fifo, tx)| tokio::spawn(copy::copy_in(fifo, tx)));
        ProcIo {
            stdin_keep: Mutex::new(self.stdin_keep),
            master: None,
            outputs: Mutex::new(outputs),
            input: Mutex::new(input),
        }
    }
}
