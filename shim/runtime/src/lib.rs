//! berth-runtime: the embedded OCI runtime (not built yet).
