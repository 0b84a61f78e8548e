//! The copy loops between the container's pipes (or pty) and its stdio
//! targets (FIFOs, log files, container.log).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;

use super::log::{ContainerLog, Stream};

/// Where output goes.
pub enum Sink {
    /// A FIFO opened read-write: never EPIPE, blocks when full (containerd's
    /// keep-alive read handle).
    Fifo(pipe::Sender),
    /// An append-only log file.
    File(std::fs::File),
}

impl Sink {
    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Fifo(s) => s.write_all(data).await,
            Sink::File(f) => std::io::Write::write_all(f, data),
        }
    }
}

/// The shared container log and the stream a copy feeds.
pub type LogTap = (Arc<Mutex<ContainerLog>>, Stream);

/// Copies `src` into `sink` and the log tap until EOF. A failing sink is
/// dropped (and logged) so the container never blocks on a dead target.
pub async fn copy_out<R: AsyncRead + Unpin>(
    mut src: R,
    mut sink: Option<Sink>,
    log: Option<LogTap>,
) {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(error = %e, "output read ended");
                break;
            }
        };
        if let Some(s) = sink.as_mut()
            && let Err(e) = s.write_all(&buf[..n]).await
        {
            tracing::warn!(error = %e, "stdio target write failed, target dropped");
            sink = None;
        }
        if let Some((log, stream)) = &log
            && let Ok(mut l) = log.lock()
        {
            l.write(*stream, &buf[..n]);
        }
    }
    if let Some((log, stream)) = &log
        && let Ok(mut l) = log.lock()
    {
        l.flush(*stream);
    }
}

/// Copies the stdin FIFO into the container until EOF (which needs our own
/// FIFO writer closed by CloseIO), then closes the container's stdin.
pub async fn copy_in<W: AsyncWrite + Unpin>(mut src: pipe::Receiver, mut dst: W) {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(error = %e, "stdin read ended");
                break;
            }
        };
        if let Err(e) = dst.write_all(&buf[..n]).await {
            tracing::debug!(error = %e, "container stdin closed");
            break;
        }
    }
    let _ = dst.shutdown().await;
}
