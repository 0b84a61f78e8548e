//! Test harness for berth's end-to-end tests.
//!
//! It starts a real `berthd` on a private root, state dir and socket, waits until it
//! answers, and on drop stops it and removes everything it made. Each test uses its own
//! namespace ([`unique_name`]), so tests run in parallel and beside another containerd
//! or berthd on the same host.
//!
//! Layout of one daemon's temporary tree:
//!
//! ```text
//! <tmp>/berth-e2e-XXXX/
//!   root/            --root   (metadata, content, snapshots)
//!   state/           --state  (bundles, shim sockets)
//!   berthd.sock      --address
//!   berthd.log       the daemon's stdout and stderr
//! ```

mod daemon;
mod grpc;
pub mod images;
mod root;
mod tools;

pub use berth_test_support::registry::{self, Registry};
pub use daemon::Berthd;
pub use grpc::{block_on, channel, in_ns};
pub use images::{Image, Images, images};
pub use root::{is_ci, require_root};
pub use tools::{Output, bin_path, ctr, ctr_ok, unique_name};
