//! Driving a foreground process: start it after its Wait is in flight (or
//! join it, for `attach`), forward signals, follow window resizes, close
//! stdin at EOF, and collect its exit status once its output has drained.

use std::time::Duration;

use berth_client::cio::Attached;
use berth_client::{Client, Error};
use tokio::signal::unix::{SignalKind, signal};

use super::exit::{CliError, start_failure_code};
use super::tty;

/// How long output may keep draining after the process exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// SIGWINCH, SIGINT and SIGTERM, caught from before anything is created:
/// a signal that arrives while the container is being set up is queued and
/// forwarded once the process runs, instead of killing berthctl and leaving
/// the container and its FIFOs behind.
pub struct Signals {
    winch: Option<tokio::signal::unix::Signal>,
    sigint: Option<tokio::signal::unix::Signal>,
    sigterm: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts catching the signals.
    pub fn catch() -> Signals {
        Signals {
            winch: signal(SignalKind::window_change()).ok(),
            sigint: signal(SignalKind::interrupt()).ok(),
            sigterm: signal(SignalKind::terminate()).ok(),
        }
    }
}

/// How [`follow`] treats the process.
#[derive(Debug, Clone, Copy)]
pub struct Follow {
    /// Start it first (`run`, `exec`); `attach` joins a running one.
    pub start: bool,
    /// It has a terminal: follow window resizes.
    pub tty: bool,
    /// Send CloseIO when the local input ends (`run`, `exec`); `attach`
    /// leaves the process's stdin open for the next client.
    pub close_stdin_at_eof: bool,
}

/// Starts process `exec_id` of `id` (empty: the init) and runs it to its
/// end; returns its exit status (truncated to a byte, as a shell would).
pub async fn drive(
    signals: Signals,
    client: &Client,
    id: &str,
    exec_id: &str,
    attached: Attached,
    tty: bool,
) -> Result<u8, CliError> {
    let how = Follow {
        start: true,
        tty,
        close_stdin_at_eof: true,
    };
    Ok(follow(signals, client, id, exec_id, attached, how)
        .await?
        .drain()
        .await)
}

/// A process that exited, whose output may still be draining.
pub struct Exited {
    /// Its exit status, truncated to a byte as a shell would.
    pub status: u8,
    output: Attached,
}

impl Exited {
    /// Waits until the output is copied (bounded); returns the status.
    /// The task can be deleted meanwhile: the shim flushed the output into
    /// the FIFOs before it reported the exit.
    pub async fn drain(self) -> u8 {
        self.output.wait_output(OUTPUT_GRACE).await;
        self.status
    }
}

/// Follows process `exec_id` of `id` to its exit (starting it first when
/// asked): forwards SIGINT/SIGTERM, window sizes, the end of input.
pub async fn follow(
    signals: Signals,
    client: &Client,
    id: &str,
    exec_id: &str,
    mut attached: Attached,
    how: Follow,
) -> Result<Exited, CliError> {
    let tty = how.tty;
    let Signals {
        mut winch,
        mut sigint,
        mut sigterm,
    } = signals;
    let waiter = {
        let (client, id, exec_id) = (client.clone(), id.to_string(), exec_id.to_string());
        tokio::spawn(async move { client.wait_task(&id, &exec_id).await })
    };
    if how.start
        && let Err(e) = client.start_task(id, exec_id).await
    {
        waiter.abort();
        return Err(CliError {
            code: start_failure_code(&e),
            message: super::exit::sentence(&e),
        });
    }
    if tty {
        resize(client, id, exec_id).await;
    }
    // Resolves once the input reached EOF; never without input (a dropped
    // sender means no input was attached).
    let stdin_eof = attached.stdin_eof();
    let stdin_done = async move {
        let reached = match stdin_eof {
            Some(rx) => rx.await.is_ok(),
            None => false,
        };
        if !reached {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(stdin_done);
    let mut stdin_open = how.close_stdin_at_eof;
    let mut waiter = waiter;
    let status = loop {
        tokio::select! {
            done = &mut waiter => {
                break done.map_err(|e| CliError::usage(format!("waiting for the process failed: {e}")))??;
            }
            Some(()) = recv(&mut winch) => {
                if tty {
                    resize(client, id, exec_id).await;
                }
            }
            Some(()) = recv(&mut sigint) => forward(client, id, exec_id, libc::SIGINT).await,
            Some(()) = recv(&mut sigterm) => forward(client, id, exec_id, libc::SIGTERM).await,
            () = &mut stdin_done, if stdin_open => {
                stdin_open = false;
                if let Err(e) = client.close_stdin(id, exec_id).await {
                    tracing::debug!(error = %e, "close stdin");
                }
            }
        }
    };
    Ok(Exited {
        status: (status.exit_status & 0xff) as u8,
        output: attached,
    })
}

async fn recv(sig: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn forward(client: &Client, id: &str, exec_id: &str, sig: i32) {
    match client.kill_task(id, exec_id, sig as u32, false).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => tracing::warn!(error = %e, signal = sig, "cannot forward signal"),
    }
}

async fn resize(client: &Client, id: &str, exec_id: &str) {
    if let Some((cols, rows)) = tty::window_size() {
        let r: Result<(), Error> = client
            .resize_pty(id, exec_id, u32::from(cols), u32::from(rows))
            .await;
        if let Err(e) = r {
            tracing::debug!(error = %e, "resize");
        }
    }
}
