//! Resolving a path inside the rootfs without ever leaving it: `..` stops at the root and
//! symlinks are read and re-resolved relative to the root (like `chroot` would).

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Resolves `unsafe_path` as if `root` were `/`. Missing trailing components are kept
/// lexically; the result always starts with `root`.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> std::io::Result<PathBuf> {
    let mut pending: Vec<OsString> = components(unsafe_path);
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            _ => resolved.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let t = tempfile::tempdir().expect("tempdir");
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b")).expect("mkdir");
        symlink("/etc", r.join("abs")).expect("symlink");
        symlink("../../../../..", r.join("a/up")).expect("symlink");
        symlink("b", r.join("a/rel")).expect("symlink");
        assert_eq!(
            secure_join(r, Path::new("/abs/passwd")).expect("j"),
            r.join("etc/passwd")
        );
        assert_eq!(
            secure_join(r, Path::new("/a/up/x")).expect("j"),
            r.join("x")
        );
        assert_eq!(
            secure_join(r, Path::new("/../../x")).expect("j"),
            r.join("x")
        );
        assert_eq!(
            secure_join(r, Path::new("a/rel/c")).expect("j"),
            r.join("a/b/c")
        );
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let t = tempfile::tempdir().expect("tempdir");
        symlink("loop", t.path().join("loop")).expect("symlink");
        assert!(secure_join(t.path(), Path::new("/loop")).is_err());
    }
}
