//! Version: berth's version and build id.

use berth_api::containerd::services::version::v1::{VersionResponse, version_server::Version};
use tonic::{Request, Response, Status};

/// The version string `ctr version` shows as the server's.
pub const VERSION: &str = concat!("berth-", env!("CARGO_PKG_VERSION"));

/// A build id without git: `BERTH_BUILD_ID` at build time, else the crate name+version.
pub const REVISION: &str = match option_env!("BERTH_BUILD_ID") {
    Some(id) => id,
    None => concat!(env!("CARGO_PKG_NAME"), "-", env!("CARGO_PKG_VERSION")),
};

#[derive(Debug, Default, Clone)]
pub struct VersionService;

#[tonic::async_trait]
impl Version for VersionService {
    async fn version(&self, _req: Request<()>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: VERSION.to_owned(),
            revision: REVISION.to_owned(),
        }))
    }
}
