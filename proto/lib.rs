//! berth-api: berth's wire contract.
//!
//! Generated protobuf messages plus tonic servers and clients for
//!
//! * containerd's v1 gRPC API, wire-identical to containerd 1.7.0 (same
//!   packages, names, field numbers), so the real `ctr` can talk to berthd;
//! * berth's own shim API (`berth.shim.v1.Shim`, gRPC between berthd and
//!   berth-shim) and image transfer extension (`berth.images.v1.Transfer`);
//!
//! and the few helpers every side of the wire shares: the one
//! [`ErrorKind`] <-> gRPC code map, the metadata keys, and containerd's
//! `Any` type-URL rules.
//!
//! Every service trait is generated with default methods that return
//! `Unimplemented`, so a server implements only the RPCs it has built.
//!
//! ```text
//! proto/
//!   lib.rs            this file: the generated module tree
//!   error.rs          ErrorKind, HasKind, status()
//!   metadata.rs       containerd-namespace / containerd-lease keys
//!   any.rs            pack / unpack with containerd type URLs
//!   transport.rs      gRPC channels over a unix socket
//!   containerd/       containerd's API (types, events, services/*/v1, runc options)
//!   io/containerd/    cgroups v1 and v2 Metrics
//!   google/rpc/       google.rpc.Status
//!   berth/            berth.shim.v1, berth.images.v1
//!   tests/            wire_compat: cross-check against Debian's containerd protos
//! ```
//!
//! Module paths follow the protobuf packages: package
//! `containerd.services.namespaces.v1` is
//! [`containerd::services::namespaces::v1`], its server trait is
//! `namespaces_server::Namespaces` and its client
//! `namespaces_client::NamespacesClient`.

pub mod any;
pub mod error;
pub mod metadata;
mod status;
pub mod transport;

pub use error::{ErrorKind, HasKind, status};

/// The encoded `google.protobuf.FileDescriptorSet` of every .proto in this
/// crate, imports (well-known types) included.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/berth_api_descriptor.bin"));

/// Includes the code prost generated for one protobuf package.
///
/// Generated code is not ours to restyle, so clippy and rustc style lints
/// are allowed on the include modules only.
macro_rules! generated {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// containerd's API.
pub mod containerd {
    /// Shared types: Mount, Descriptor, Platform, Metric.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod types {
        generated!("containerd.types");
    }

    /// Event payloads published on the event exchange (image events live
    /// in [`services::images::v1`]).
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod events {
        generated!("containerd.events");
    }

    /// `containerd.v1.types`: task Status, Process, ProcessInfo.
    pub mod v1 {
        #[allow(clippy::all, clippy::pedantic, missing_docs)]
        pub mod types {
            generated!("containerd.v1.types");
        }
    }

    /// `containerd.runc.v1`: runc shim options.
    pub mod runc {
        #[allow(clippy::all, clippy::pedantic, missing_docs)]
        pub mod v1 {
            generated!("containerd.runc.v1");
        }
    }

    /// The gRPC services, one module per `containerd.services.<x>.v1`.
    pub mod services {
        pub mod containers {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.containers.v1");
            }
        }
        pub mod content {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.content.v1");
            }
        }
        pub mod diff {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.diff.v1");
            }
        }
        pub mod events {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.events.v1");
            }
            /// The forward-only twin containerd serves to its shims.
            pub mod ttrpc {
                #[allow(clippy::all, clippy::pedantic, missing_docs)]
                pub mod v1 {
                    generated!("containerd.services.events.ttrpc.v1");
                }
            }
        }
        pub mod images {
            /// The Images service and the image event payloads.
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.images.v1");
            }
        }
        pub mod introspection {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.introspection.v1");
            }
        }
        pub mod leases {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.leases.v1");
            }
        }
        pub mod namespaces {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.namespaces.v1");
            }
        }
        pub mod snapshots {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.snapshots.v1");
            }
        }
        pub mod tasks {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.tasks.v1");
            }
        }
        pub mod version {
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("containerd.services.version.v1");
            }
        }
    }
}

/// `io.containerd.*`: the cgroup metrics payloads of Tasks.Metrics.
pub mod io {
    pub mod containerd {
        pub mod cgroups {
            /// cgroup v1 `Metrics` (`io.containerd.cgroups.v1.Metrics`).
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v1 {
                generated!("io.containerd.cgroups.v1");
            }
            /// cgroup v2 `Metrics` (`io.containerd.cgroups.v2.Metrics`).
            #[allow(clippy::all, clippy::pedantic, missing_docs)]
            pub mod v2 {
                generated!("io.containerd.cgroups.v2");
            }
        }
    }
}

/// `google.rpc`: the gRPC error model.
pub mod google {
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod rpc {
        generated!("google.rpc");
    }
}

/// berth's own services.
pub mod berth {
    /// `berth.shim.v1.Shim`: berthd -> berth-shim.
    pub mod shim {
        /// The bundle file in which berth-shim keeps its init's latest `State`
        /// answer (`v1::StateResponse`, protobuf-encoded), rewritten at every status
        /// change of the init and removed at its Delete. berthd reads it at a restart:
        /// every task's status without a round trip per shim.
        pub const INIT_STATE_FILE: &str = "init.state";

        #[allow(clippy::all, clippy::pedantic, missing_docs)]
        pub mod v1 {
            generated!("berth.shim.v1");
        }
    }
    /// `berth.images.v1.Transfer`: daemon-side pull, push, import, export.
    pub mod images {
        #[allow(clippy::all, clippy::pedantic, missing_docs)]
        pub mod v1 {
            generated!("berth.images.v1");
        }
    }
}

#[cfg(test)]
mod descriptor_tests;
