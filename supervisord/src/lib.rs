//! berth-supervisord: `berthd`, berth's supervisor daemon. It serves containerd's v1 gRPC
//! API on a unix socket so the real `ctr` (and containerd's clients) work against it.
//!
//! ```text
//! config.rs       flags + TOML file -> Config
//! server.rs       the daemon: lock, metadata, socket, every service, shutdown
//! oversize.rs     a >16 MiB request answers ResourceExhausted, as containerd
//! lock.rs         one berthd per root (flock on <root>/berthd.lock)
//! error.rs        an error and its causes as one message (gRPC status text, logs)
//! identifiers.rs  containerd's identifier and label rules
//! filters.rs      containerd's filter grammar
//! snapshots/      namespaced snapshots over the snapshotter backends (layout there)
//! diff/           Diff.Apply / Diff.Diff: layers between the content store and mounts
//! gc/             garbage collection of content, snapshots and ingests
//! images/         image transfer: pull (streaming unpack), push, import/export
//! metadata/       the redb store: namespaces, images, containers, leases, content,
//!                 snapshot records, what GC reads (layout drawn in metadata/mod.rs)
//! events/         the event exchange (an owned handle)
//! services/       gRPC adapters only: proto <-> domain, error mapping
//! tasks/          task manager, shims, bundles, restart recovery (layout in tasks/mod.rs)
//! ```
//!
//! `<root>` (default `/var/lib/berth`):
//!
//! ```text
//! <root>/
//! ├── berthd.lock        flock held by the running berthd
//! ├── uuid               this installation's UUID (Introspection.Server)
//! └── metadata/meta.redb the metadata store
//! ```

pub mod config;
pub mod content;
pub mod deferred;
pub mod diff;
pub mod error;
pub mod events;
pub mod filters;
pub mod gc;
pub mod identifiers;
pub mod images;
pub mod lock;
pub mod metadata;
pub mod oversize;
pub mod server;
pub mod services;
pub mod snapshots;
pub mod tasks;
