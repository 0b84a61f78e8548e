//! `berthd`: parse flags and config, install the log subscriber, run the daemon until
//! SIGTERM or SIGINT.

use std::process::ExitCode;

use anyhow::Context;
use berth_supervisord::config::{Args, Config, LogFormat};
use berth_supervisord::server::Daemon;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Environment switch for span timings in the log (see `init_tracing`).
const SPAN_TIMES_ENV: &str = "BERTHD_SPAN_TIMES";

fn main() -> ExitCode {
    match start() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain on one line, no backtrace: this is for operators (the
            // subscriber may not exist yet when configuration fails).
            eprintln!("berthd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start() -> anyhow::Result<()> {
    let config = Config::from_args(Args::parse()).context("load configuration")?;
    init_tracing(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start async runtime")?;
    runtime.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let daemon = Daemon::bind(config).context("start berthd")?;
    let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "shutdown requested"),
        }
    };
    daemon.serve(shutdown).await.context("serve")
}

/// A bare level applies to berth; the HTTP/2 stack stays at `warn` unless named.
fn filter_directives(level: &str) -> String {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        format!("{level},h2=warn,hyper=warn,hyper_util=warn,tower=warn")
    } else {
        level.to_owned()
    }
}

fn init_tracing(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter_directives(&config.log_level))
        .with_context(|| format!("invalid --log-level {:?}", config.log_level))?;
    // `BERTHD_SPAN_TIMES=1`: one line per closed span (each RPC) with its busy and idle
    // time, for profiling; off by default (a line per RPC).
    let spans = if std::env::var_os(SPAN_TIMES_ENV).is_some_and(|v| v == "1") {
        FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
