//! berth-client: the Rust client library of berthd, and the `berthctl`
//! command built on it.
//!
//! A [`Client`] is one connection to berthd's unix socket in one
//! namespace. It hands out the raw tonic client of every service
//! (`client.images()`, `client.tasks()`, …) and adds helpers for the flows
//! that take many calls: pulling an image, creating a container from an
//! image, running its task with FIFO I/O, and watching events.
//!
//! ```text
//! src/
//!   lib.rs         this overview
//!   client.rs      Client: connect, namespace/lease interceptor, accessors
//!   error.rs       Error and its kind()
//!   image.rs       manifest / config / chain IDs from the content store
//!   spec/          OCI spec generation (containerd's defaults, users,
//!                  host devices and capabilities for privileged containers)
//!   container.rs   create a container from an image (with its task in one
//!                  flow: `create_container_with_task`), delete it
//!   rootfs.rs      reading /etc/passwd and /etc/group from snapshot mounts
//!   task.rs        task lifecycle: create, start, wait, kill, exec, delete
//!   cio.rs         the client side of FIFO I/O (as ctr's cio), kept sets
//!                  and re-attaching to them (`Client::attach_fifos`)
//!   pull.rs        Transfer.Pull with a progress callback
//!   events.rs      Events.Subscribe and envelope → JSON
//!   main.rs, cli.rs, commands/   the berthctl binary (not part of the library)
//! ```
//!
//! Every error is an [`Error`]; [`Error::kind`] maps gRPC codes through
//! berth-api's single table, so callers match kinds, not messages.
//!
//! ```no_run
//! # async fn demo() -> berth_client::Result<()> {
//! use berth_client::Client;
//!
//! let client = Client::from_env().await?;
//! let images = client.list_images(vec![]).await?;
//! for image in images {
//!     println!("{}", image.name);
//! }
//! # Ok(())
//! # }
//! ```

pub mod cio;
pub mod client;
pub mod container;
pub mod error;
pub mod events;
pub mod image;
pub mod pull;
pub mod rootfs;
pub mod spec;
pub mod task;

pub use client::{Client, DEFAULT_ADDRESS, DEFAULT_NAMESPACE, DEFAULT_SNAPSHOTTER};
pub use error::{Error, Result};
