//! Containers from images: snapshot, spec, record — and their removal.

use std::collections::HashMap;

use berth_api::any::{SPEC_TYPE_URL, pack, pack_json};
use berth_api::containerd::runc::v1::Options as RuncOptions;
use berth_api::containerd::services::containers::v1::container::Runtime;
use berth_api::containerd::services::containers::v1::{
    Container, CreateContainerRequest, DeleteContainerRequest, GetContainerRequest,
    ListContainersRequest,
};
use berth_api::containerd::services::leases::v1::{
    CreateRequest as LeaseCreateRequest, DeleteRequest as LeaseDeleteRequest,
};
use berth_api::containerd::services::snapshots::v1::{
    MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
};
use berth_api::containerd::types::Mount;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::spec::{self, SpecOptions};

/// Label giving a lease its expiry time (RFC 3339), as containerd.
pub const GC_EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// The runtime every container is created with.
pub const DEFAULT_RUNTIME: &str = "io.containerd.runc.v2";

/// What to create.
#[derive(Debug, Clone)]
pub struct NewContainer {
    /// Container ID (also the snapshot key).
    pub id: String,
    /// Image name as stored.
    pub image: String,
    /// Snapshotter holding the image's layers.
    pub snapshotter: String,
    /// Labels on top of the image's.
    pub labels: HashMap<String, String>,
    /// Spec options on top of the image config.
    pub spec: SpecOptions,
}

/// What [`Client::create_container_with_task`] made.
#[derive(Debug)]
pub struct WithTask {
    /// The container record.
    pub container: Container,
    /// The init pid of its created task, or why the task was not created.
    pub task: Result<u32>,
}

impl Client {
    /// Creates container `new.id` from an image, as `ctr run` does: prepare
    /// a snapshot on the image's top chain ID, build an OCI spec from the
    /// image config (users resolved in the snapshot's /etc files), and
    /// store the record with runtime `io.containerd.runc.v2`.
    ///
    /// Like ctr, the snapshot and record are made under a short-lived lease,
    /// so berthd's garbage collector cannot take the fresh snapshot before
    /// the container record references it. On failure after the snapshot
    /// was prepared, the snapshot is removed.
    ///
    /// ```no_run
    /// # async fn demo(client: berth_client::Client) -> berth_client::Result<()> {
    /// use berth_client::container::NewContainer;
    /// use berth_client::spec::SpecOptions;
    ///
    /// let created = client
    ///     .create_container(NewContainer {
    ///         id: "web".into(),
    ///         image: "docker.io/library/busybox:latest".into(),
    ///         snapshotter: berth_client::DEFAULT_SNAPSHOTTER.into(),
    ///         labels: Default::default(),
    ///         spec: SpecOptions { args: vec!["sleep".into(), "60".into()], ..Default::default() },
    ///     })
    ///     .await?;
    /// println!("created {}", created.id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_container(&self, new: NewContainer) -> Result<Container> {
        let (image, lease) = tokio::join!(self.resolve_image(&new.image), self.create_lease());
        let lease = lease?;
        let created = match image {
            Ok(image) => self.create_under(&lease, new, &image).await,
            Err(e) => Err(e),
        };
        self.release_lease(&lease).await;
        created.map(|(container, _)| container)
    }

    /// Creates container `new.id` from an already resolved image (as
    /// [`Client::create_container`]) and then its task on the fresh rootfs
    /// with `stdio`, as `ctr run` does, in as few round trips as the
    /// dependencies allow: the lease is released while the task is being
    /// created, and the rootfs mounts come from Snapshots.Prepare rather
    /// than being asked for again. An error means no container was made;
    /// when only the task failed, the container is left in place (the
    /// caller decides whether to remove it) and [`WithTask::task`] holds
    /// the error.
    ///
    /// ```no_run
    /// # async fn demo(client: berth_client::Client) -> berth_client::Result<()> {
    /// use berth_client::container::NewContainer;
    /// use berth_client::task::Stdio;
    ///
    /// let image = client.resolve_image("docker.io/library/busybox:latest").await?;
    /// let new = NewContainer {
    ///     id: "job".into(),
    ///     image: image.image.name.clone(),
    ///     snapshotter: berth_client::DEFAULT_SNAPSHOTTER.into(),
    ///     labels: Default::default(),
    ///     spec: Default::default(),
    /// };
    /// let made = client.create_container_with_task(new, &image, Stdio::Null).await?;
    /// let pid = made.task?;
    /// client.start_task(&made.container.id, "").await?;
    /// println!("{} runs as pid {pid}", made.container.id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_container_with_task(
        &self,
        new: NewContainer,
        image: &crate::image::ResolvedImage,
        stdio: crate::task::Stdio<'_>,
    ) -> Result<WithTask> {
        let lease = self.create_lease().await?;
        self.create_container_with_task_under(&lease, new, image, stdio)
            .await
    }

    /// [`Client::create_container_with_task`] under `lease`, made by the
    /// caller with [`Client::create_lease`] (e.g. while the image was being
    /// resolved); the lease is deleted here, in every case.
    pub async fn create_container_with_task_under(
        &self,
        lease: &str,
        new: NewContainer,
        image: &crate::image::ResolvedImage,
        stdio: crate::task::Stdio<'_>,
    ) -> Result<WithTask> {
        let (container, rootfs) = match self.create_under(lease, new, image).await {
            Ok(created) => created,
            Err(e) => {
                self.release_lease(lease).await;
                return Err(e);
            }
        };
        let (task, ()) = tokio::join!(
            self.create_task_on(&container.id, rootfs, stdio),
            self.release_lease(lease)
        );
        Ok(WithTask { container, task })
    }

    /// Snapshot and record under `lease`; the record and its rootfs mounts.
    async fn create_under(
        &self,
        lease: &str,
        new: NewContainer,
        image: &crate::image::ResolvedImage,
    ) -> Result<(Container, Vec<Mount>)> {
        self.clone()
            .with_lease(Some(lease))?
            .create_leased(new, image)
            .await
    }

    /// Deletes `lease`; a failure is logged (the lease expires by itself).
    pub async fn release_lease(&self, lease: &str) {
        if let Err(e) = self.delete_lease(lease).await {
            tracing::warn!(lease = %lease, error = %e, "lease not deleted; it expires in a day");
        }
    }

    /// A lease that expires on its own after a day.
    pub async fn create_lease(&self) -> Result<String> {
        let id = format!("berth-client-{}", uuid::Uuid::new_v4().simple());
        let expire = std::time::SystemTime::now() + std::time::Duration::from_secs(24 * 3600);
        let labels = HashMap::from([(
            GC_EXPIRE_LABEL.to_string(),
            humantime::format_rfc3339_seconds(expire).to_string(),
        )]);
        self.leases()
            .create(LeaseCreateRequest {
                id: id.clone(),
                labels,
            })
            .await
            .map_err(Error::at("Leases.Create"))?;
        Ok(id)
    }

    /// Deletes a lease (what it protected becomes collectable).
    pub async fn delete_lease(&self, id: &str) -> Result<()> {
        self.leases()
            .delete(LeaseDeleteRequest {
                id: id.to_string(),
                sync: false,
            })
            .await
            .map_err(Error::at("Leases.Delete"))?;
        Ok(())
    }

    async fn create_leased(
        &self,
        new: NewContainer,
        image: &crate::image::ResolvedImage,
    ) -> Result<(Container, Vec<Mount>)> {
        let snaps = self.snapshots(&new.snapshotter);
        let mounts = snaps
            .client
            .clone()
            .prepare(PrepareSnapshotRequest {
                snapshotter: new.snapshotter.clone(),
                key: new.id.clone(),
                parent: image.chain_id(),
                labels: HashMap::new(),
            })
            .await
            .map_err(Error::at("Snapshots.Prepare"))?
            .into_inner()
            .mounts;
        match self.create_record(&new, &image.config, &mounts).await {
            Ok(container) => Ok((container, mounts)),
            Err(e) => {
                let _ = self.remove_snapshot(&new.snapshotter, &new.id).await;
                Err(e)
            }
        }
    }

    async fn create_record(
        &self,
        new: &NewContainer,
        config: &oci_spec::image::ImageConfiguration,
        mounts: &[Mount],
    ) -> Result<Container> {
        let users = crate::rootfs::user_db(mounts);
        let generated = spec::generate(self.namespace(), &new.id, config, &users, &new.spec)?;
        let mut labels: HashMap<String, String> = generated.labels.into_iter().collect();
        labels.extend(new.labels.clone());
        let spec_json = serde_json::to_vec(&generated.spec).map_err(|source| Error::Parse {
            what: "generated spec".into(),
            source,
        })?;
        let container = Container {
            id: new.id.clone(),
            labels,
            image: new.image.clone(),
            runtime: Some(Runtime {
                name: DEFAULT_RUNTIME.to_string(),
                options: Some(pack(&RuncOptions::default())),
            }),
            spec: Some(pack_json(SPEC_TYPE_URL, spec_json)),
            snapshotter: new.snapshotter.clone(),
            snapshot_key: new.id.clone(),
            ..Container::default()
        };
        self.containers()
            .create(CreateContainerRequest {
                container: Some(container),
            })
            .await
            .map_err(Error::at("Containers.Create"))?
            .into_inner()
            .container
            .ok_or(Error::Truncated("Containers.Create"))
    }

    /// Gets a container record.
    pub async fn get_container(&self, id: &str) -> Result<Container> {
        self.containers()
            .get(GetContainerRequest { id: id.to_string() })
            .await
            .map_err(Error::at("Containers.Get"))?
            .into_inner()
            .container
            .ok_or(Error::Truncated("Containers.Get"))
    }

    /// Lists container records matching `filters` (empty: all).
    pub async fn list_containers(&self, filters: Vec<String>) -> Result<Vec<Container>> {
        Ok(self
            .containers()
            .list(ListContainersRequest { filters })
            .await
            .map_err(Error::at("Containers.List"))?
            .into_inner()
            .containers)
    }

    /// The mounts of a container's rootfs snapshot.
    pub async fn snapshot_mounts(&self, snapshotter: &str, key: &str) -> Result<Vec<Mount>> {
        Ok(self
            .snapshots(snapshotter)
            .client
            .mounts(MountsRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
            })
            .await
            .map_err(Error::at("Snapshots.Mounts"))?
            .into_inner()
            .mounts)
    }

    /// Removes a snapshot; a missing one is not an error.
    pub async fn remove_snapshot(&self, snapshotter: &str, key: &str) -> Result<()> {
        match self
            .snapshots(snapshotter)
            .client
            .remove(RemoveSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::rpc("Snapshots.Remove", s)),
        }
    }

    /// Deletes a container record and its snapshot (the task must be gone).
    pub async fn delete_container(&self, id: &str) -> Result<()> {
        let container = self.get_container(id).await?;
        self.remove_container(&container).await
    }

    /// Deletes the record of `container` (as read or created) and its
    /// snapshot, both at once; the task must be gone.
    pub async fn remove_container(&self, container: &Container) -> Result<()> {
        let snapshot = async {
            if container.snapshot_key.is_empty() {
                return Ok(());
            }
            self.remove_snapshot(&container.snapshotter, &container.snapshot_key)
                .await
        };
        let record = async {
            self.containers()
                .delete(DeleteContainerRequest {
                    id: container.id.clone(),
                })
                .await
                .map_err(Error::at("Containers.Delete"))
        };
        let (snapshot, record) = tokio::join!(snapshot, record);
        snapshot?;
        record?;
        Ok(())
    }
}

/// The OCI spec stored in a container record, parsed.
pub fn container_spec(container: &Container) -> Result<serde_json::Value> {
    let any = container
        .spec
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument(format!("container {} has no spec", container.id)))?;
    serde_json::from_slice(&any.value).map_err(|source| Error::Parse {
        what: format!("spec of container {}", container.id),
        source,
    })
}
