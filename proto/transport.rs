//! gRPC over a unix socket: the one connector berthd, berth-shim, the client library
//! and the tests dial with.
//!
//! tonic's [`Endpoint`] needs a URI; it is never used, the connector dials the socket.

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// An endpoint for unix-socket connections; set timeouts on it before connecting.
pub fn unix_endpoint() -> Endpoint {
    Endpoint::from_static("http://unix.socket.invalid")
}

/// Dials `path` now through `endpoint`; fails at once when nobody listens there.
pub async fn connect_unix(
    endpoint: Endpoint,
    path: impl Into<PathBuf>,
) -> Result<Channel, tonic::transport::Error> {
    let path = path.into();
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
}

/// A channel that dials `path` at its first call, and again after a failed one.
pub fn connect_unix_lazy(endpoint: Endpoint, path: impl Into<PathBuf>) -> Channel {
    let path = path.into();
    endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { UnixStream::connect(path).await.map(TokioIo::new) }
    }))
}
