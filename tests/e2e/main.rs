//! End-to-end tests: a real berthd driven by the real `ctr` (Debian's containerd 1.6
//! package) and by berth's client, as root, with real processes.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

mod daemon;
mod images;
mod namespaces;
mod pull;
mod run_image;
mod tasks;
