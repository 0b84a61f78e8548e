//! The daemon: take the root lock, open the metadata store, bind the socket, serve every
//! containerd v1 service over h2c gRPC, and shut down gracefully.
//!
//! [`Daemon::bind`] does everything that can fail at start-up and leaves a bound socket,
//! so a caller (main, or a test) knows the daemon answers once it returns;
//! [`Daemon::serve`] runs until its shutdown future resolves, lets in-flight RPCs finish
//! (at most [`SHUTDOWN_GRACE`]), and removes the socket file.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api::berth::images::v1::transfer_server::TransferServer;
use berth_api::containerd::services::{
    containers::v1::containers_server::ContainersServer,
    content::v1::content_server::ContentServer, diff::v1::diff_server::DiffServer,
    events::v1::events_server::EventsServer, images::v1::images_server::ImagesServer,
    introspection::v1::introspection_server::IntrospectionServer,
    leases::v1::leases_server::LeasesServer, namespaces::v1::namespaces_server::NamespacesServer,
    snapshots::v1::snapshots_server::SnapshotsServer, tasks::v1::tasks_server::TasksServer,
    version::v1::version_server::VersionServer,
};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use crate::config::Config;
use crate::deferred::deferred;
use crate::events::Exchange;
use crate::gc::hooks::WithGc;
use crate::lock::{LockError, RootLock};
use crate::metadata::{self, Db};
use crate::services::introspection::{self, IntrospectionService, PluginInfo};
use crate::services::transfer::TransferService;
use crate::services::{
    containers::ContainersService, content::ContentService, diff::DiffService,
    events::EventsService, images::ImagesService, leases::LeasesService,
    namespaces::NamespacesService, snapshots::SnapshotsService, tasks::TasksService,
    version::VersionService,
};

/// Largest gRPC message in either direction, as containerd's clients use.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// How long in-flight RPCs may run on after shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The metadata directory under the root.
pub const METADATA_DIR: &str = "metadata";

/// Start-up and serving failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("open metadata store")]
    Metadata(#[from] metadata::Error),
    #[error("open content store")]
    Content(#[from] crate::content::ContentError),
    #[error("open snapshotters")]
    Snapshots(#[from] crate::snapshots::SnapshotError),
    #[error("open differ")]
    Diff(#[from] crate::diff::DiffError),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    #[error("serve gRPC")]
    Serve(#[source] tonic::transport::Error),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ServerError {
    let path = path.to_owned();
    move |source| ServerError::Io { what, path, source }
}

/// Removes the socket file when dropped.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.0)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), %error, "cannot remove socket");
        }
    }
}

/// berth's plugins, as `Introspection.Plugins` lists them.
pub fn plugins() -> Vec<PluginInfo> {
    const GRPC: &str = "io.containerd.grpc.v1";
    vec![
        PluginInfo::ok("io.containerd.metadata.v1", "redb", &[]),
        PluginInfo::ok("io.containerd.event.v1", "exchange", &[]),
        PluginInfo::ok(GRPC, "version", &[]),
        PluginInfo::ok(GRPC, "introspection", &[]),
        PluginInfo::ok(GRPC, "namespaces", &["io.containerd.metadata.v1"]),
        PluginInfo::ok(GRPC, "leases", &["io.containerd.metadata.v1"]),
        PluginInfo::ok(GRPC, "images", &["io.containerd.metadata.v1"]),
        PluginInfo::ok(GRPC, "containers", &["io.containerd.metadata.v1"]),
        PluginInfo::ok(GRPC, "events", &["io.containerd.event.v1"]),
        PluginInfo::ok("io.containerd.content.v1", "content", &[]),
        PluginInfo::ok(
            GRPC,
            "content",
            &["io.containerd.content.v1", "io.containerd.metadata.v1"],
        ),
        PluginInfo::ok("io.containerd.snapshotter.v1", "overlayfs", &[]),
        PluginInfo::ok("io.containerd.snapshotter.v1", "native", &[]),
        PluginInfo::ok(GRPC, "snapshots", &["io.containerd.snapshotter.v1"]),
        PluginInfo::ok(GRPC, "diff", &["io.containerd.content.v1"]),
        PluginInfo::ok(
            "io.containerd.gc.v1",
            "scheduler",
            &["io.containerd.metadata.v1"],
        ),
        PluginInfo::ok(GRPC, "tasks", &["io.containerd.metadata.v1"]),
    ]
}

/// A started daemon: lock held, store open, socket bound.
#[derive(Debug)]
pub struct Daemon {
    config: Config,
    _lock: RootLock,
    db: Db,
    events: Exchange,
    uuid: String,
    listener: UnixListener,
    socket: SocketFile,
}

impl Daemon {
    /// Prepare everything and bind the socket. Must run inside a tokio runtime.
    pub fn bind(config: Config) -> Result<Self, ServerError> {
        for dir in [&config.root, &config.state] {
            std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        let lock = RootLock::acquire(&config.root)?;
        let db = Db::open(&config.root.join(METADATA_DIR))?;
        let uuid = introspection::load_or_create_uuid(&config.root)
            .map_err(io_err("read or create uuid in", &config.root))?;
        let (listener, socket) = bind_socket(&config.address)?;
        tracing::info!(
            address = %config.address.display(),
            root = %config.root.display(),
            state = %config.state.display(),
            version = crate::services::version::VERSION,
            "berthd serving"
        );
        Ok(Self {
            config,
            _lock: lock,
            db,
            events: Exchange::new(),
            uuid,
            listener,
            socket,
        })
    }

    pub fn address(&self) -> &Path {
        &self.config.address
    }

    /// The metadata store (for the services other engineers add).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The event exchange.
    pub fn events(&self) -> &Exchange {
        &self.events
    }

    /// Serve until `shutdown` resolves, then stop accepting, end event subscriptions,
    /// let in-flight RPCs finish (up to [`SHUTDOWN_GRACE`]) and remove the socket.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let Self {
            config,
            db,
            events,
            uuid,
            listener,
            socket,
            ..
        } = self;
        // Tasks: reconnect to the shims before answering (the socket already queues).
        let tasks = crate::tasks::TaskManager::new(
            db.clone(),
            events.clone(),
            config.state.clone(),
            std::sync::Arc::new(crate::tasks::ShimProcesses::new(
                crate::tasks::ShimProcesses::default_binary(),
                &config.address,
                &config.state,
            )),
        );
        // Images: content, snapshots and the differ open on a blocking thread (their
        // databases' recovery after a kill -9 waits on the disk) while the tasks recover;
        // the services that need them are registered now and wait for them (deferred.rs),
        // the others serve as soon as the tasks are back.
        let (root, store_db) = (config.root.clone(), db.clone());
        let opened_at = std::time::Instant::now();
        let stores = tokio::task::spawn_blocking(move || -> Result<_, ServerError> {
            let content = crate::content::LocalStore::open(&root, store_db.clone())?;
            let snapshots = crate::snapshots::Snapshotters::open(&root, store_db)?;
            let differ = crate::diff::Differ::open(&root, content.clone())?;
            Ok((content, snapshots, differ))
        });
        let deletes = crate::gc::hooks::delete_events(&events);
        tasks.watch_exit_events();
        tasks.recover().await;
        let m = MAX_MESSAGE_SIZE;
        macro_rules! svc {
            ($server:ident, $impl:expr) => {
                $server::new($impl)
                    .max_decoding_message_size(m)
                    .max_encoding_message_size(m)
            };
        }
        let (leases_svc, leases_open) = deferred();
        let (content_svc, content_open) = deferred();
        let (images_svc, images_open) = deferred();
        let (transfer_svc, transfer_open) = deferred();
        let (diff_svc, diff_open) = deferred();
        let (snapshots_svc, snapshots_open) = deferred();
        let router = Server::builder()
            .layer(crate::oversize::OversizeLayer)
            .trace_fn(|req| {
                tracing::info_span!(
                    "rpc",
                    path = %req.uri().path(),
                    ns = tracing::field::Empty,
                    id = tracing::field::Empty
                )
            })
            .add_service(svc!(VersionServer, VersionService))
            .add_service(svc!(
                IntrospectionServer,
                IntrospectionService::new(uuid, plugins())
            ))
            .add_service(svc!(
                NamespacesServer,
                NamespacesService::new(db.clone(), events.clone())
            ))
            .add_service(leases_svc)
            .add_service(content_svc)
            .add_service(images_svc)
            .add_service(transfer_svc)
            .add_service(diff_svc)
            .add_service(snapshots_svc)
            .add_service(svc!(
                ContainersServer,
                ContainersService::new(db.clone(), events.clone())
            ))
            .add_service(svc!(TasksServer, TasksService::new(tasks)))
            .add_service(svc!(EventsServer, EventsService::new(events.clone())));

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let incoming = UnixListenerStream::new(listener);
        let mut server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        }));
        tokio::pin!(shutdown);
        let opened = async {
            stores.await.map_err(|e| ServerError::Io {
                what: "open stores",
                path: config.root.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
        };
        tokio::pin!(opened);
        // Dropped on an early return, so that waiting calls get `Unavailable` at once.
        let openers = (
            leases_open,
            content_open,
            images_open,
            transfer_open,
            diff_open,
            snapshots_open,
        );
        let (content, snapshots, differ) = tokio::select! {
            res = &mut server => {
                drop(socket);
                return flatten(res);
            }
            () = &mut shutdown => {
                // Shut down before the stores opened: the deferred services answer
                // Unavailable to whoever still waits.
                tracing::info!("shutting down before the stores opened");
                drop(openers);
                events.close();
                let _ = stop_tx.send(());
                let res = finish(server).await;
                // The opening thread holds the metadata store: let it end and drop what
                // it opened, so the root can be opened again once serve() returns.
                let _ = opened.await;
                drop(socket);
                return res;
            }
            res = &mut opened => match res {
                Ok(stores) => stores,
                Err(e) => {
                    drop(openers);
                    let _ = stop_tx.send(());
                    let _ = finish(server).await;
                    drop(socket);
                    return Err(e);
                }
            },
        };
        tracing::info!(
            elapsed_ms = opened_at.elapsed().as_secs_f64() * 1e3,
            "stores open"
        );
        // The collector runs once now.
        let collector = crate::gc::Collector::new(db.clone(), content.clone(), snapshots.clone());
        let (gc, gc_task) = crate::gc::spawn(collector);
        let gc_watch = crate::gc::hooks::watch_deletes(deletes, gc.clone());
        let (leases_open, content_open, images_open, transfer_open, diff_open, snapshots_open) =
            openers;
        leases_open.open(svc!(
            LeasesServer,
            WithGc::new(LeasesService::new(db.clone()), gc.clone())
        ));
        content_open.open(svc!(
            ContentServer,
            ContentService::new(content.clone(), events.clone())
        ));
        images_open.open(svc!(
            ImagesServer,
            WithGc::new(ImagesService::new(db.clone(), events.clone()), gc.clone())
        ));
        transfer_open.open(svc!(
            TransferServer,
            TransferService::new(crate::images::Transfer::new(
                content.clone(),
                db.clone(),
                snapshots.clone(),
                differ.clone(),
                config.registry.clone(),
            ))
        ));
        diff_open.open(svc!(DiffServer, DiffService::new(differ)));
        snapshots_open.open(svc!(
            SnapshotsServer,
            SnapshotsService::new(snapshots, events.clone(), gc.clone())
        ));

        tokio::select! {
            res = &mut server => {
                drop(socket);
                return flatten(res);
            }
            () = &mut shutdown => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
        events.close();
        let _ = stop_tx.send(());
        let res = finish(server).await;
        drop(socket);
        // The collector holds the database open: let it end (every GC handle gone: the
        // services' with the server task, the watcher's with the closed exchange) so the
        // root can be opened again as soon as serve() returns.
        drop(gc);
        if tokio::time::timeout(SHUTDOWN_GRACE, async {
            let _ = gc_watch.await;
            let _ = gc_task.await;
        })
        .await
        .is_err()
        {
            tracing::warn!("garbage collector still running at shutdown");
        }
        tracing::info!("berthd stopped");
        res
    }
}

/// Let in-flight RPCs of a stopping server finish, up to [`SHUTDOWN_GRACE`].
async fn finish(
    mut server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
) -> Result<(), ServerError> {
    match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        Ok(res) => flatten(res),
        Err(_) => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still running; stopping");
            server.abort();
            Ok(())
        }
    }
}

fn flatten(
    res: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> Result<(), ServerError> {
    match res {
        Ok(r) => r.map_err(ServerError::Serve),
        Err(e) => Err(ServerError::Io {
            what: "server task",
            path: PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Bind the unix socket: remove a stale socket file first, then mode 0660, owner root.
fn bind_socket(path: &Path) -> Result<(UnixListener, SocketFile), ServerError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("create socket directory", parent))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // The root lock is ours, but another daemon may serve this address from
            // another root: only a socket nobody answers on is stale.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServerError::Io {
                    what: "address in use by a running server:",
                    path: path.to_owned(),
                    source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
                });
            }
            std::fs::remove_file(path).map_err(io_err("remove stale socket", path))?;
        }
        Ok(_) => {
            return Err(ServerError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect socket path", path)(e)),
    }
    let listener = UnixListener::bind(path).map_err(io_err("bind socket", path))?;
    let guard = SocketFile(path.to_owned());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io_err("chmod socket", path))?;
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(path, Some(0.into()), Some(0.into()))
            .map_err(|e| io_err("chown socket", path)(std::io::Error::from(e)))?;
    }
    Ok((listener, guard))
}
