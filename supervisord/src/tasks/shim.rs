//! One connection to one shim: the [`ShimApi`] trait the task manager calls (faked in
//! unit tests) and [`GrpcShim`], its gRPC implementation over the shim's unix socket.
//!
//! Errors are the shim's `tonic::Status` as received: its codes carry the kinds
//! (NotFound process, AlreadyExists exec, FailedPrecondition, ...). A transport failure
//! (the shim is gone) arrives as `Unavailable` / `Unknown`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api::berth::shim::v1 as pb;
use berth_api::berth::shim::v1::shim_client::ShimClient;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

/// How long connecting to a shim socket may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The RPCs of `berth.shim.v1.Shim` that berthd uses. Implementations attach the
/// namespace themselves.
#[tonic::async_trait]
pub trait ShimApi: Send + Sync + std::fmt::Debug {
    async fn create(&self, req: pb::CreateRequest) -> Result<pb::CreateResponse, Status>;
    async fn start(&self, req: pb::StartRequest) -> Result<pb::StartResponse, Status>;
    async fn delete(&self, req: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status>;
    async fn exec(&self, req: pb::ExecRequest) -> Result<(), Status>;
    async fn state(&self, req: pb::StateRequest) -> Result<pb::StateResponse, Status>;
    async fn pids(&self, req: pb::PidsRequest) -> Result<pb::PidsResponse, Status>;
    async fn kill(&self, req: pb::KillRequest) -> Result<(), Status>;
    async fn pause(&self, req: pb::PauseRequest) -> Result<(), Status>;
    async fn resume(&self, req: pb::ResumeRequest) -> Result<(), Status>;
    async fn wait(&self, req: pb::WaitRequest) -> Result<pb::WaitResponse, Status>;
    async fn stats(&self, req: pb::StatsRequest) -> Result<pb::StatsResponse, Status>;
    async fn update(&self, req: pb::UpdateRequest) -> Result<(), Status>;
    async fn resize_pty(&self, req: pb::ResizePtyRequest) -> Result<(), Status>;
    async fn close_io(&self, req: pb::CloseIoRequest) -> Result<(), Status>;
    async fn connect(&self, req: pb::ConnectRequest) -> Result<pb::ConnectResponse, Status>;
    async fn shutdown(&self, req: pb::ShutdownRequest) -> Result<(), Status>;
}

/// A gRPC connection to one shim, namespace attached to every call.
#[derive(Debug, Clone)]
pub struct GrpcShim {
    namespace: String,
    client: ShimClient<Channel>,
}

/// The socket path in a shim address (`unix:///path` or a bare path).
pub fn socket_of(address: &str) -> PathBuf {
    PathBuf::from(address.strip_prefix("unix://").unwrap_or(address))
}

impl GrpcShim {
    /// Connect to the shim serving `address` (`unix:///path`); fails at once when nobody
    /// listens there.
    pub async fn connect(namespace: &str, address: &str) -> Result<Self, tonic::transport::Error> {
        let path = socket_of(address);
        let channel = Self::channel(&path).await?;
        Ok(Self {
            namespace: namespace.to_owned(),
            client: ShimClient::new(channel)
                .max_decoding_message_size(crate::server::MAX_MESSAGE_SIZE),
        })
    }

    /// A connection to `address` that dials only at the first call (restart recovery:
    /// a hundred shims cost no round trip before serving).
    pub fn connect_lazy(namespace: &str, address: &str) -> Self {
        let path = socket_of(address);
        let channel = berth_api::transport::connect_unix_lazy(Self::endpoint(), path);
        Self {
            namespace: namespace.to_owned(),
            client: ShimClient::new(channel)
                .max_decoding_message_size(crate::server::MAX_MESSAGE_SIZE),
        }
    }

    fn endpoint() -> Endpoint {
        berth_api::transport::unix_endpoint().connect_timeout(CONNECT_TIMEOUT)
    }

    async fn channel(path: &Path) -> Result<Channel, tonic::transport::Error> {
        berth_api::transport::connect_unix(Self::endpoint(), path).await
    }

    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Ok(v) = self.namespace.parse() {
            req.metadata_mut()
                .insert(berth_api::metadata::NAMESPACE_HEADER, v);
        }
        req
    }
}

macro_rules! forward {
    ($self:ident, $method:ident, $req:ident) => {
        $self
            .client
            .clone()
            .$method($self.req($req))
            .await
            .map(tonic::Response::into_inner)
    };
}

#[tonic::async_trait]
impl ShimApi for GrpcShim {
    async fn create(&self, req: pb::CreateRequest) -> Result<pb::CreateResponse, Status> {
        forward!(self, create, req)
    }
    async fn start(&self, req: pb::StartRequest) -> Result<pb::StartResponse, Status> {
        forward!(self, start, req)
    }
    async fn delete(&self, req: pb::DeleteRequest) -> Result<pb::DeleteResponse, Status> {
        forward!(self, delete, req)
    }
    async fn exec(&self, req: pb::ExecRequest) -> Result<(), Status> {
        forward!(self, exec, req)
    }
    async fn state(&self, req: pb::StateRequest) -> Result<pb::StateResponse, Status> {
        forward!(self, state, req)
    }
    async fn pids(&self, req: pb::PidsRequest) -> Result<pb::PidsResponse, Status> {
        forward!(self, pids, req)
    }
    async fn kill(&self, req: pb::KillRequest) -> Result<(), Status> {
        forward!(self, kill, req)
    }
    async fn pause(&self, req: pb::PauseRequest) -> Result<(), Status> {
        forward!(self, pause, req)
    }
    async fn resume(&self, req: pb::ResumeRequest) -> Result<(), Status> {
        forward!(self, resume, req)
    }
    async fn wait(&self, req: pb::WaitRequest) -> Result<pb::WaitResponse, Status> {
        forward!(self, wait, req)
    }
    async fn stats(&self, req: pb::StatsRequest) -> Result<pb::StatsResponse, Status> {
        forward!(self, stats, req)
    }
    async fn update(&self, req: pb::UpdateRequest) -> Result<(), Status> {
        forward!(self, update, req)
    }
    async fn resize_pty(&self, req: pb::ResizePtyRequest) -> Result<(), Status> {
        forward!(self, resize_pty, req)
    }
    async fn close_io(&self, req: pb::CloseIoRequest) -> Result<(), Status> {
        forward!(self, close_io, req)
    }
    async fn connect(&self, req: pb::ConnectRequest) -> Result<pb::ConnectResponse, Status> {
        forward!(self, connect, req)
    }
    async fn shutdown(&self, req: pb::ShutdownRequest) -> Result<(), Status> {
        forward!(self, shutdown, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_of_strips_the_scheme() {
        assert_eq!(
            socket_of("unix:///run/berth/s/ab.sock"),
            PathBuf::from("/run/berth/s/ab.sock")
        );
        assert_eq!(socket_of("/plain.sock"), PathBuf::from("/plain.sock"));
    }

    #[tokio::test]
    async fn connect_fails_fast_without_a_listener() {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = format!("unix://{}", dir.path().join("none.sock").display());
        let t0 = std::time::Instant::now();
        assert!(GrpcShim::connect("ns", &addr).await.is_err());
        assert!(t0.elapsed() < CONNECT_TIMEOUT, "refused, not timed out");
    }
}
