//! The conformance suite every [`Snapshotter`] backend runs.
//!
//! Each case gets a factory `make(root)` and a fresh temporary directory; it calls
//! `make(&root)` (again, after dropping the snapshotter, to check persistence) and
//! checks containerd's semantics. Cases that mount need root: without it they return
//! early, unless `CI=true`, where they panic. Mounts are unmounted on drop, before the
//! temporary directory goes.
//!
//! In a backend's tests, either `run_all(make)` or, for one `#[test]` per case:
//! ```ignore
//! berth_snapshotter::snapshotter_conformance!(|root: &std::path::Path| {
//!     Box::new(MyBackend::open(root).expect("open")) as Box<dyn Snapshotter>
//! });
//! ```

mod metadata;
mod mounted;

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, Result};
use crate::mount::{Mount, MountGuard};
use crate::snapshotter::{Labels, Snapshotter};

/// Builds (or reopens) a snapshotter rooted at the given directory.
pub type Factory<'a> = &'a dyn Fn(&Path) -> Box<dyn Snapshotter>;

/// One case: its factory and a scratch directory of its own.
pub type CaseFn = fn(Factory<'_>, &Scratch);

/// Every case, by name.
pub const CASES: &[(&str, CaseFn)] = &[
    ("chain_metadata", metadata::chain_metadata),
    ("error_codes", metadata::error_codes),
    ("labels_update", metadata::labels_update),
    ("remove_rules", metadata::remove_rules),
    ("walk_filters", metadata::walk_filters),
    ("reopen_persists", metadata::reopen_persists),
    ("concurrent_prepares", metadata::concurrent_prepares),
    (
        "layers_visible_through_mounts",
        mounted::layers_visible_through_mounts,
    ),
    ("deep_chain_mounts", mounted::deep_chain_mounts),
    ("usage_measures_layer", mounted::usage_measures_layer),
    (
        "cleanup_keeps_referenced",
        mounted::cleanup_keeps_referenced,
    ),
    ("reopen_keeps_files", mounted::reopen_keeps_files),
];

/// Runs every case, each in a fresh temporary directory.
pub fn run_all(make: impl Fn(&Path) -> Box<dyn Snapshotter>) {
    for (name, _) in CASES {
        run_case(name, &make);
    }
}

/// Runs the case called `name` in a fresh temporary directory.
pub fn run_case(name: &str, make: &dyn Fn(&Path) -> Box<dyn Snapshotter>) {
    let (_, case) = CASES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no conformance case {name:?}"));
    let scratch = Scratch::new(name);
    case(make, &scratch);
}

/// One `#[test]` per conformance case for a backend: pass the factory expression.
#[macro_export]
macro_rules! snapshotter_conformance {
    ($make:expr) => {
        $crate::snapshotter_conformance!(@cases $make;
            chain_metadata, error_codes, labels_update, remove_rules, walk_filters,
            reopen_persists, concurrent_prepares, layers_visible_through_mounts,
            deep_chain_mounts, usage_measures_layer, cleanup_keeps_referenced,
            reopen_keeps_files);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_case(stringify!($case), &$make);
            }
        )*
    };
}

/// A case's temporary directory: `root()` for the snapshotter, `target()` for mounts.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(case: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("snap-{case}-"))
            .tempdir()
            .expect("create a temporary directory");
        Scratch { dir }
    }

    /// The snapshotter root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A fresh, empty directory to mount on.
    pub fn target(&self, name: &str) -> PathBuf {
        let t = self.dir.path().join("mnt").join(name);
        std::fs::create_dir_all(&t).expect("create a mount target");
        t
    }
}

/// Whether the case may mount. Without root: false, or a panic under `CI=true`.
pub fn have_root(case: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("conformance case {case} needs root (CI=true)");
    }
    eprintln!("skipping conformance case {case}: needs root");
    false
}

/// Mounts `mounts` on a fresh target; unmounted when the guard drops.
pub(crate) fn mount_on(scratch: &Scratch, name: &str, mounts: &[Mount]) -> MountGuard {
    MountGuard::mount(mounts, &scratch.target(name))
        .unwrap_or_else(|e| panic!("mount {mounts:?}: {e:?}"))
}

pub(crate) fn kind_of<T: Debug>(r: Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
