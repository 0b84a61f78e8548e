//! berth-snapshotter: snapshotters and layer apply (not built yet).
pub mod layer;
