//! berth-client: the Rust client library (not built yet).
