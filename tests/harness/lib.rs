//! Test harness: starts berthd on temporary paths and cleans up on drop.
