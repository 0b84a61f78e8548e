//! Loading a bundle's `config.json` and checking what the runtime relies on.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// The bundle's config file name.
pub const CONFIG_FILE: &str = "config.json";

/// A loaded bundle: absolute bundle dir, the spec, the absolute rootfs.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Loads and checks `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Bundle> {
    let real = std::fs::canonicalize(bundle).map_err(|e| Error::io("opening bundle", bundle, e))?;
    // The bundle path as given (made absolute), like runc reports it to hooks and `state`.
    let dir = std::path::absolute(bundle).map_err(|e| Error::io("opening bundle", bundle, e))?;
    let path = real.join(CONFIG_FILE);
    let data = std::fs::read(&path).map_err(|e| Error::LoadSpec {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let spec: Spec = serde_json::from_slice(&data).map_err(|e| Error::LoadSpec {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let rootfs = check(&real, &spec)?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Checks the spec against the bundle; returns the absolute rootfs.
pub fn check(dir: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("root is missing".into()))?;
    let rel = root.path();
    let joined = if rel.is_absolute() {
        rel.clone()
    } else {
        dir.join(rel)
    };
    let rootfs = std::fs::canonicalize(&joined)
        .map_err(|e| Error::InvalidSpec(format!("root {}: {e}", joined.display())))?;
    if !rel.is_absolute() && !rootfs.starts_with(dir) {
        return Err(Error::InvalidSpec(format!(
            "relative root {} leaves the bundle {}",
            rel.display(),
            dir.display()
        )));
    }
    if !rootfs.is_dir() {
        return Err(Error::InvalidSpec(format!(
            "root {} is not a directory",
            rootfs.display()
        )));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("process is missing".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::InvalidSpec("process.args is empty".into()));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::InvalidSpec(format!(
            "process.cwd {} is not absolute",
            process.cwd().display()
        )));
    }
    if spec.linux().is_none() {
        return Err(Error::InvalidSpec("linux section is missing".into()));
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(Error::InvalidSpec(format!(
                "mount destination {} is not absolute",
                m.destination().display()
            )));
        }
    }
    Ok(rootfs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(t.path().join("rootfs")).expect("mkdir");
        std::fs::write(t.path().join(CONFIG_FILE), config).expect("write");
        t
    }

    const OK: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},"linux":{}}"#;

    #[test]
    fn loads_relative_root() {
        let t = bundle_with(OK);
        let b = load(t.path()).expect("load");
        assert!(b.rootfs.ends_with("rootfs") && b.rootfs.is_absolute());
    }

    #[test]
    fn bad_bundles() {
        let t = tempfile::tempdir().expect("tempdir");
        assert!(
            matches!(load(t.path()), Err(Error::LoadSpec { .. })),
            "missing config"
        );
        let t = bundle_with("not json {");
        assert!(matches!(load(t.path()), Err(Error::LoadSpec { .. })));
        let t = bundle_with(&OK.replace(r#""path":"rootfs""#, r#""path":"../""#));
        assert!(
            matches!(load(t.path()), Err(Error::InvalidSpec(_))),
            "root outside bundle"
        );
        let t = bundle_with(&OK.replace(r#""cwd":"/""#, r#""cwd":"rel""#));
        assert!(load(t.path()).is_err());
    }
}
