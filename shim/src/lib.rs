//! berth-shim: the per-task shim (not built yet).
