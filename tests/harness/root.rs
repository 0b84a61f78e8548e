//! The root rule: a test that needs root and cannot get it fails under `CI=true`.

/// True when running under CI (`CI=true`).
pub fn is_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Returns true when the test may go on as root. Without root it returns false, so the
/// caller can return early — except under `CI=true`, where it panics: a root test never
/// silently passes in CI.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !is_ci(),
        "{test}: needs root, and CI=true forbids skipping it"
    );
    eprintln!("{test}: skipped, needs root");
    false
}
