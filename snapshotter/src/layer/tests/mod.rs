//! Tests of layer apply and diff on temp dirs (root-only cases follow the CI rule).

mod apply_tests;
mod diff_tests;
mod hostile;
mod overlay_mount;
mod util;
