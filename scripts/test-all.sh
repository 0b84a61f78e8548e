#!/usr/bin/env bash
# test-all.sh: every check and test of berth, as CI runs them. Run as root.
#   1. installs the Debian packages the tests need (scripts/packages.sh)
#   2. the gate: cargo fmt --check, clippy -D warnings
#   3. builds every binary (the end-to-end tests run them)
#   4. runs every test (unit, in-process daemon, end-to-end with the real ctr)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/packages.sh
echo "== fmt" >&2
cargo fmt --all --check
echo "== clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== build" >&2
cargo build --workspace --bins
echo "== test" >&2
cargo test --workspace --no-fail-fast
