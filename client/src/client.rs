//! [`Client`]: the connection to berthd and one accessor per service.

use std::path::{Path, PathBuf};

use berth_api::berth::images::v1::transfer_client::TransferClient;
use berth_api::containerd::services::containers::v1::containers_client::ContainersClient;
use berth_api::containerd::services::content::v1::content_client::ContentClient;
use berth_api::containerd::services::diff::v1::diff_client::DiffClient;
use berth_api::containerd::services::events::v1::events_client::EventsClient;
use berth_api::containerd::services::images::v1::images_client::ImagesClient;
use berth_api::containerd::services::introspection::v1::introspection_client::IntrospectionClient;
use berth_api::containerd::services::leases::v1::leases_client::LeasesClient;
use berth_api::containerd::services::namespaces::v1::namespaces_client::NamespacesClient;
use berth_api::containerd::services::snapshots::v1::snapshots_client::SnapshotsClient;
use berth_api::containerd::services::tasks::v1::tasks_client::TasksClient;
use berth_api::containerd::services::version::v1::version_client::VersionClient;
use berth_api::metadata::{LEASE_HEADER, NAMESPACE_HEADER};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::error::{Error, Result};

/// Default socket path of berthd.
pub const DEFAULT_ADDRESS: &str = "/run/berth/berthd.sock";
/// Default namespace.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Environment variable naming the socket.
pub const ADDRESS_ENV: &str = "BERTH_ADDRESS";
/// Environment variable naming the namespace.
pub const NAMESPACE_ENV: &str = "BERTH_NAMESPACE";
/// Default snapshotter, as containerd's on Linux.
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";
/// Largest message sent or accepted (containerd's 16 MiB).
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// The channel every service client runs over: namespace and lease are
/// added to each request.
pub type Transport = InterceptedService<Channel, CallMetadata>;

/// Adds `containerd-namespace` (and `containerd-lease` when set) to every
/// request.
#[derive(Clone, Debug)]
pub struct CallMetadata {
    namespace: AsciiMetadataValue,
    lease: Option<AsciiMetadataValue>,
}

impl Interceptor for CallMetadata {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let meta = req.metadata_mut();
        meta.insert(NAMESPACE_HEADER, self.namespace.clone());
        if let Some(lease) = &self.lease {
            meta.insert(LEASE_HEADER, lease.clone());
        }
        Ok(req)
    }
}

fn ascii(what: &'static str, value: &str) -> Result<AsciiMetadataValue> {
    MetadataValue::try_from(value).map_err(|_| Error::InvalidMetadata {
        what,
        value: value.to_string(),
    })
}

/// A connection to berthd in one namespace.
///
/// Cheap to clone; clones share the connection.
///
/// ```no_run
/// # async fn demo() -> berth_client::Result<()> {
/// use berth_client::Client;
///
/// let client = Client::connect("/run/berth/berthd.sock").await?.with_namespace("demo")?;
/// let version = client.version_info().await?;
/// println!("berthd {}", version.version);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    address: PathBuf,
    namespace: String,
    meta: CallMetadata,
}

macro_rules! accessor {
    ($(#[$doc:meta])* $name:ident -> $client:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> $client<Transport> {
            $client::with_interceptor(self.channel.clone(), self.meta.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE)
        }
    };
}

impl Client {
    /// Connects to berthd's unix socket at `address` (in namespace
    /// `default`).
    pub async fn connect(address: impl AsRef<Path>) -> Result<Client> {
        let address = address.as_ref().to_path_buf();
        let path = address.clone();
        let channel =
            berth_api::transport::connect_unix(berth_api::transport::unix_endpoint(), path)
                .await
                .map_err(|source| Error::Connect {
                    address: address.clone(),
                    source,
                })?;
        Ok(Client {
            channel,
            address,
            namespace: DEFAULT_NAMESPACE.to_string(),
            meta: CallMetadata {
                namespace: AsciiMetadataValue::from_static(DEFAULT_NAMESPACE),
                lease: None,
            },
        })
    }

    /// Connects to the socket named by `BERTH_ADDRESS`, or the default one,
    /// in the namespace named by `BERTH_NAMESPACE`, or `default`.
    pub async fn from_env() -> Result<Client> {
        let address = std::env::var_os(ADDRESS_ENV)
            .map_or_else(|| PathBuf::from(DEFAULT_ADDRESS), PathBuf::from);
        let client = Client::connect(address).await?;
        match std::env::var(NAMESPACE_ENV) {
            Ok(ns) if !ns.is_empty() => client.with_namespace(&ns),
            _ => Ok(client),
        }
    }

    /// The same connection in namespace `namespace`.
    pub fn with_namespace(mut self, namespace: &str) -> Result<Client> {
        self.meta.namespace = ascii("namespace", namespace)?;
        self.namespace = namespace.to_string();
        Ok(self)
    }

    /// The same connection with every call attached to lease `lease`
    /// (`None` detaches).
    pub fn with_lease(mut self, lease: Option<&str>) -> Result<Client> {
        self.meta.lease = lease.map(|l| ascii("lease", l)).transpose()?;
        Ok(self)
    }

    /// The namespace calls are made in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The socket path this client is connected to.
    pub fn address(&self) -> &Path {
        &self.address
    }

    accessor!(
        /// `containerd.services.version.v1.Version`.
        version -> VersionClient
    );
    accessor!(
        /// `containerd.services.introspection.v1.Introspection`.
        introspection -> IntrospectionClient
    );
    accessor!(
        /// `containerd.services.namespaces.v1.Namespaces`.
        namespaces -> NamespacesClient
    );
    accessor!(
        /// `containerd.services.images.v1.Images`.
        images -> ImagesClient
    );
    accessor!(
        /// `containerd.services.content.v1.Content`.
        content -> ContentClient
    );
    accessor!(
        /// `containerd.services.containers.v1.Containers`.
        containers -> ContainersClient
    );
    accessor!(
        /// `containerd.services.tasks.v1.Tasks`.
        tasks -> TasksClient
    );
    accessor!(
        /// `containerd.services.events.v1.Events`.
        events -> EventsClient
    );
    accessor!(
        /// `containerd.services.leases.v1.Leases`.
        leases -> LeasesClient
    );
    accessor!(
        /// `containerd.services.diff.v1.Diff`.
        diff -> DiffClient
    );
    accessor!(
        /// `berth.images.v1.Transfer`: daemon-side pull, push, import, export.
        transfer -> TransferClient
    );

    /// `containerd.services.snapshots.v1.Snapshots`, bound to one
    /// snapshotter: every request is sent with `snapshotter` set by the
    /// caller; this returns the raw client plus the name for convenience.
    pub fn snapshots(&self, snapshotter: &str) -> Snapshots {
        Snapshots {
            name: snapshotter.to_string(),
            client: SnapshotsClient::with_interceptor(self.channel.clone(), self.meta.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        }
    }

    /// berthd's version and revision.
    pub async fn version_info(
        &self,
    ) -> Result<berth_api::containerd::services::version::v1::VersionResponse> {
        Ok(self
            .version()
            .version(())
            .await
            .map_err(Error::at("Version.Version"))?
            .into_inner())
    }
}

/// A Snapshots client and the snapshotter it talks to.
#[derive(Clone, Debug)]
pub struct Snapshots {
    /// The snapshotter name to put in every request.
    pub name: String,
    /// The raw client.
    pub client: SnapshotsClient<Transport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_added_to_every_request() {
        let mut meta = CallMetadata {
            namespace: ascii("namespace", "ns1").expect("ascii"),
            lease: Some(ascii("lease", "l1").expect("ascii")),
        };
        let req = meta.call(tonic::Request::new(())).expect("intercept");
        assert_eq!(berth_api::metadata::namespace(req.metadata()), Some("ns1"));
        assert_eq!(berth_api::metadata::lease(req.metadata()), Some("l1"));
    }

    #[test]
    fn non_ascii_namespaces_are_refused() {
        let err = ascii("namespace", "ns\n").expect_err("newline");
        assert_eq!(err.kind(), berth_api::ErrorKind::InvalidArgument);
    }
}
