//! End-to-end tests (as root, real processes).
