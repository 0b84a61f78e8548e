//! Talking gRPC to a test daemon directly, for what `ctr` does not show (exact codes).

use std::path::PathBuf;

use tonic::transport::Channel;

/// A gRPC channel over the unix socket at `path`.
pub async fn channel(path: PathBuf) -> Channel {
    berth_api::transport::connect_unix(berth_api::transport::unix_endpoint(), path)
        .await
        .expect("connect to berthd")
}

/// A request carrying namespace `ns` in containerd's metadata header.
pub fn in_ns<T>(ns: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        berth_api::metadata::NAMESPACE_HEADER,
        ns.parse().expect("namespace names are valid header values"),
    );
    req
}

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(f)
}
