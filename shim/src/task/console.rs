//! Terminals: console sockets and receiving the pty master while the
//! runtime creates the process.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use super::{CONSOLE_WAIT, Task, TaskError};
use crate::io::console::ConsoleSocket;
use crate::runtime::{Runtime, RuntimeError};

impl<R: Runtime> Task<R> {
    pub(super) fn console_socket(&self) -> Result<ConsoleSocket, TaskError> {
        let n = self.console_seq.fetch_add(1, Ordering::SeqCst);
        let path = self
            .cfg
            .console_dir
            .join(format!("{}-{n}.pty", self.cfg.console_prefix));
        ConsoleSocket::bind(&path).map_err(|source| TaskError::Console {
            id: self.cfg.id.clone(),
            source,
        })
    }

    /// Runs a create/exec runtime call that sends a pty master to `sock`.
    pub(super) async fn with_console(
        &self,
        call: impl Future<Output = Result<u32, RuntimeError>>,
        sock: &ConsoleSocket,
    ) -> Result<(u32, OwnedFd), TaskError> {
        let console_err = |source| TaskError::Console {
            id: self.cfg.id.clone(),
            source,
        };
        let recv = sock.receive();
        tokio::pin!(recv);
        tokio::pin!(call);
        let mut master = None;
        let pid = loop {
            tokio::select! {
                r = &mut recv, if master.is_none() => master = Some(r.map_err(console_err)?),
                res = &mut call => break res?,
            }
        };
        let master = match master {
            Some(m) => m,
            None => tokio::time::timeout(CONSOLE_WAIT, recv)
                .await
                .map_err(|_| console_err(std::io::Error::other("runtime sent no pty")))?
                .map_err(console_err)?,
        };
        Ok((pid, master))
    }
}
