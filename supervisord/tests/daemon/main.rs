//! In-process daemon tests: berthd's server on a temp unix socket, driven by tonic
//! clients generated from berth-api. One test binary (one link on 2 cores).

mod errors;
mod every_rpc;
mod semantics;
mod transport;

use std::path::PathBuf;
use std::time::Duration;

use berth_api::transport::{connect_unix, unix_endpoint};
use berth_supervisord::config::{Config, LogFormat};
use berth_supervisord::server::{Daemon, ServerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Request;
use tonic::transport::Channel;

/// Upper bound for any single call in these tests: a hang is a failure, not a wait.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The namespace the tests work in.
pub const NS: &str = "berth-test";

/// A berthd serving on a temp socket; stopped (and its dirs removed) on drop.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

pub fn config_in(dir: &std::path::Path) -> Config {
    Config {
        root: dir.join("root"),
        state: dir.join("state"),
        address: dir.join("berthd.sock"),
        log_level: "info".into(),
        log_format: LogFormat::Text,
        ..Config::default()
    }
}

impl TestDaemon {
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berthd-test")
            .tempdir()
            .expect("tempdir");
        Self::start_in(dir).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> Self {
        let config = config_in(dir.path());
        let socket = config.address.clone();
        let daemon = Daemon::bind(config).expect("berthd binds");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon.serve(async {
            let _ = rx.await;
        }));
        Self {
            dir,
            socket,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn channel(&self) -> Channel {
        connect(self.socket.clone()).await
    }

    /// Graceful stop; returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task")
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A gRPC channel over the unix socket at `path`.
pub async fn connect(path: PathBuf) -> Channel {
    connect_unix(unix_endpoint().connect_timeout(CALL_TIMEOUT), path)
        .await
        .expect("connect to berthd")
}

/// A request carrying the test namespace.
pub fn ns<T>(msg: T) -> Request<T> {
    with_ns(NS, msg)
}

/// A request carrying namespace `namespace`.
pub fn with_ns<T>(namespace: &str, msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        berth_api::metadata::NAMESPACE_HEADER,
        namespace.parse().expect("ascii namespace"),
    );
    req
}

/// Await `fut` with [`CALL_TIMEOUT`]; a timeout fails the test.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {CALL_TIMEOUT:?}"))
}
