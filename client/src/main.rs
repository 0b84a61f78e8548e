//! `berthctl`: the everyday command for berthd (docker/nerdctl-like verbs).
//!
//! Exit codes follow docker: 125 when berthctl or berthd fails (usage,
//! connection, RPC errors), 126 when the container command cannot be
//! invoked, 127 when it is not found; otherwise `run`/`exec` return the
//! process's exit status.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => commands::exit::USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing();
    // One thread: every command is a short sequence of RPCs on one
    // connection, and blocking copies run on their own threads; a
    // current-thread runtime spares the worker threads and the cross-thread
    // wake-ups on every call.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthctl: cannot start the async runtime: {e}");
            return ExitCode::from(commands::exit::USAGE);
        }
    };
    let code = match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berthctl: {}", e.message);
            e.code
        }
    };
    // Blocking stdin copies may still be parked in read(); don't wait.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Logs go to stderr, quiet unless `BERTH_LOG` asks (e.g. `BERTH_LOG=debug`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
