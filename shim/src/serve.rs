//! `berth-shim serve …`: the long-lived shim. Started by `start` with the
//! bound listener on fd 3, stdio on /dev/null (stderr appended to shim.log
//! for panics). Makes its own session, becomes the child subreaper, then runs
//! everything on one current-thread tokio runtime: the reaper, the event
//! forwarder and the tonic server. Once ready, after the init's Start and
//! after each later burst of RPCs it drops the clean pages that work left
//! mapped ([`crate::trim`]). Exits after Shutdown (or SIGTERM), flushing
//! events (bounded) and removing its socket.

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use anyhow::Context;
use berth_api::berth::shim::v1::shim_server::ShimServer;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;

use crate::cli::ShimArgs;
use crate::events::Publisher;
use crate::paths;
use crate::reaper::Reaper;
use crate::runtime::{Embedded, Exec};
use crate::service::ShimService;
use crate::task::{Task, TaskConfig};

/// The inherited listener.
pub const LISTENER_FD: i32 = 3;
/// Env var naming the fd on which `serve` reports readiness to `start`.
pub const READY_FD_ENV: &str = "BERTH_SHIM_READY_FD";
/// Env var with the shim's log level (error, warn, info, debug, trace).
pub const LOG_LEVEL_ENV: &str = "BERTH_SHIM_LOG";
/// How long output may take to drain after an exit.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// How long in-flight calls may take after Shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long queued events may take to reach berthd at exit.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

fn init_logging(args: &ShimArgs) {
    let level = std::env::var(LOG_LEVEL_ENV)
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let path = args.bundle.join(paths::SHIM_LOG);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    if let Ok(file) = file {
        tracing_subscriber::fmt()
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .with_max_level(level)
            .init();
    }
}

/// Runs the server until Shutdown. Must be called before any thread exists.
pub fn serve(args: ShimArgs) -> anyhow::Result<()> {
    // Take the inherited descriptors before anything else can open fds.
    // SAFETY: `start` passes the bound listener as fd 3 and nothing else in
    // this fresh process owns it.
    let listener = unsafe { OwnedFd::from_raw_fd(LISTENER_FD) };
    let ready = std::env::var(READY_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map(|fd| {
            // SAFETY: `start` passes the readiness pipe under this number;
            // it is ours alone.
            unsafe { OwnedFd::from_raw_fd(fd) }
        });
    // SAFETY: removing our own variable in the single-threaded start-up.
    unsafe { std::env::remove_var(READY_FD_ENV) };
    // Inherited without close-on-exec: keep them out of runtime helpers.
    for fd in std::iter::once(&listener).chain(ready.as_ref()) {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .context("FD_CLOEXEC on an inherited fd")?;
    }
    init_logging(&args);
    // `start` spawns us without forking (posix_spawn): the new session is
    // ours to make. Fails only for a group leader, i.e. when run by hand.
    if let Err(e) = nix::unistd::setsid() {
        tracing::warn!(error = %e, "setsid");
    }
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("tokio runtime")?;
    let res = rt.block_on(run(args, listener, ready));
    if let Err(e) = &res {
        tracing::error!(error = %format!("{e:#}"), "shim failed");
    }
    res
}

async fn run(args: ShimArgs, listener: OwnedFd, ready: Option<OwnedFd>) -> anyhow::Result<()> {
    let std_listener = std::os::unix::net::UnixListener::from(listener);
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(std_listener).context("listener fd 3")?;
    let socket = paths::socket_path(&args.state, &args.namespace, &args.id);

    let reaper = Reaper::new();
    tokio::spawn(reaper.clone().run(signal(SignalKind::child())?));
    let (publisher, forwarder) = Publisher::new(&args.namespace);
    tokio::spawn(forwarder.run(args.address.clone()));

    let cfg = TaskConfig {
        namespace: args.namespace.clone(),
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        console_dir: socket
            .parent()
            .map(ToOwned::to_owned)
            .unwrap_or_else(|| args.state.clone()),
        console_prefix: socket
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "shim".into()),
        drain_limit: DRAIN_LIMIT,
        watch_oom: true,
        trim_after_start: true,
    };
    let runtime_root = paths::runtime_root(&args.state, &args.namespace);
    let runtime = Embedded::new(
        Exec::new(runtime_root.clone(), args.bundle.clone(), reaper.clone()),
        &runtime_root,
    );
    let task = Task::new(
        cfg,
        runtime,
        reaper,
        publisher.clone(),
        Box::new(crate::mount::Linux),
    );
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let service = ShimService::new(task, stop_tx.clone(), crate::metrics::unified_host());

    let mut term = signal(SignalKind::terminate())?;
    let mut stop_for_server = stop_rx.clone();
    let stopped = async move {
        tokio::select! {
            _ = stop_for_server.wait_for(|s| *s) => {}
            _ = term.recv() => {
                tracing::info!("SIGTERM");
                stop_tx.send_replace(true);
            }
        }
    };
    let activity = crate::trim::Activity::default();
    tokio::spawn(activity.clone().trim_when_quiet(crate::trim::QUIET));
    let shim = ShimServer::with_interceptor(service, move |req| {
        activity.touch();
        Ok(req)
    });
    let server = tonic::transport::Server::builder()
        .add_service(shim)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stopped);
    tokio::pin!(server);
    tracing::info!(pid = std::process::id(), socket = %socket.display(), "serving");
    if let Some(fd) = ready {
        let _ = nix::unistd::write(&fd, b"ok");
    }
    // After readiness: `start` and berthd need not wait for it.
    crate::trim::clean_file_pages();
    tokio::select! {
        r = &mut server => r.context("server")?,
        _ = async {
            let _ = stop_rx.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("connections still open after shutdown grace"),
    }
    if !publisher.flush(FLUSH_LIMIT).await {
        tracing::warn!("exiting with undelivered events");
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!("exit");
    Ok(())
}
