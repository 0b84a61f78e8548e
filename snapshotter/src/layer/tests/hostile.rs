//! Hostile layers: each is refused or confined, and no host file changes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::util::{Layer, Node, snapshot};
use crate::layer::{LayerError, WhiteoutMode, apply};

/// `<tmp>/outer/{sentinel, a/b/target}`: the target sits three levels below
/// `outer`, so `../../..` from inside the target reaches the sentinel.
struct Host {
    dir: tempfile::TempDir,
    before: BTreeMap<PathBuf, Node>,
}

const SENTINEL: &[u8] = b"host secret\n";

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("a/b/target")).expect("target");
        let sentinel = dir.path().join("sentinel");
        fs::write(&sentinel, SENTINEL).expect("sentinel");
        let old = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &sentinel,
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .expect("age the sentinel");
        let before = snapshot(dir.path(), Some(&dir.path().join("a/b/target")));
        Self { dir, before }
    }

    fn target(&self) -> PathBuf {
        self.dir.path().join("a/b/target")
    }

    /// The sentinel path as the layer sees it from `/`.
    fn sentinel(&self) -> PathBuf {
        self.dir.path().join("sentinel")
    }

    fn apply(
        &self,
        layer: &mut Layer,
        mode: WhiteoutMode,
    ) -> Result<crate::layer::Applied, LayerError> {
        apply(layer.finish().as_slice(), "", &self.target(), mode)
    }

    /// Nothing outside the target changed: same paths, content, mtimes, modes.
    fn assert_untouched(&self) {
        let after = snapshot(self.dir.path(), Some(&self.target()));
        assert_eq!(self.before, after, "host tree outside the target changed");
        let meta = fs::metadata(self.sentinel()).expect("sentinel");
        assert_eq!(meta.mtime(), 1_000_000_000);
        assert_eq!(meta.nlink(), 1, "no hardlink to the sentinel was made");
        assert_eq!(fs::read(self.sentinel()).expect("sentinel"), SENTINEL);
    }
}

#[test]
fn dotdot_escape_is_refused() {
    let host = Host::new();
    for mode in [WhiteoutMode::Delete, WhiteoutMode::Overlay] {
        let err = host.apply(
            Layer::new().file("../../../sentinel", b"pwned", 0o644),
            mode,
        );
        assert!(matches!(err, Err(LayerError::Escape { .. })), "{err:?}");
        let err = host.apply(
            Layer::new().file("x/../../../../sentinel", b"pwned", 0o644),
            mode,
        );
        assert!(matches!(err, Err(LayerError::Escape { .. })), "{err:?}");
    }
    host.assert_untouched();
}

#[test]
fn absolute_names_are_confined() {
    let host = Host::new();
    let abs = host.sentinel();
    let name = abs.to_str().expect("utf-8 temp path");
    host.apply(
        Layer::new().file(name, b"pwned", 0o644),
        WhiteoutMode::Delete,
    )
    .expect("confined");
    let confined = host.target().join(abs.strip_prefix("/").expect("absolute"));
    assert_eq!(fs::read(confined).expect("written inside"), b"pwned");
    host.assert_untouched();
}

#[test]
fn writes_through_a_symlink_to_root_are_confined() {
    let host = Host::new();
    let abs_dir = host.dir.path().to_str().expect("utf-8").to_owned();
    host.apply(
        Layer::new().link("root", EntryType::Symlink, "/").file(
            &format!("root{abs_dir}/sentinel"),
            b"pwned",
            0o644,
        ),
        WhiteoutMode::Delete,
    )
    .expect("confined");
    let confined = host
        .target()
        .join(host.sentinel().strip_prefix("/").expect("absolute"));
    assert_eq!(fs::read(confined).expect("written inside"), b"pwned");
    host.assert_untouched();
}

#[test]
fn writes_through_a_relative_symlink_out_are_confined() {
    let host = Host::new();
    host.apply(
        Layer::new()
            .link("up", EntryType::Symlink, "../../..")
            .file("up/sentinel", b"pwned", 0o644)
            .dir("up/newdir/", 0o755)
            .file("up/newdir/f", b"pwned", 0o644),
        WhiteoutMode::Delete,
    )
    .expect("confined");
    // `../../..` from the target's root is the root itself.
    assert_eq!(
        fs::read(host.target().join("sentinel")).expect("inside"),
        b"pwned"
    );
    assert!(host.target().join("newdir/f").exists());
    host.assert_untouched();
}

#[test]
fn a_symlink_planted_by_a_lower_layer_is_replaced_not_followed() {
    let host = Host::new();
    let sentinel = host.sentinel();
    host.apply(
        Layer::new().link(
            "passwd",
            EntryType::Symlink,
            sentinel.to_str().expect("utf-8"),
        ),
        WhiteoutMode::Delete,
    )
    .expect("lower");
    host.apply(
        Layer::new().file("passwd", b"pwned", 0o644),
        WhiteoutMode::Delete,
    )
    .expect("upper");
    assert_eq!(
        fs::read(host.target().join("passwd")).expect("file"),
        b"pwned"
    );
    host.assert_untouched();
}

#[test]
fn hardlinks_to_host_files_are_refused() {
    let host = Host::new();
    let sentinel = host.sentinel();
    let abs = sentinel.to_str().expect("utf-8");
    let err = host.apply(
        Layer::new().link("h", EntryType::Link, "../../../sentinel"),
        WhiteoutMode::Delete,
    );
    assert!(matches!(err, Err(LayerError::Escape { .. })), "{err:?}");
    let err = host.apply(
        Layer::new().link("h", EntryType::Link, abs),
        WhiteoutMode::Delete,
    );
    assert!(matches!(err, Err(LayerError::LinkTarget { .. })), "{err:?}");
    let err = host.apply(
        Layer::new()
            .link("up", EntryType::Symlink, "../../..")
            .link("h", EntryType::Link, "up/sentinel"),
        WhiteoutMode::Delete,
    );
    assert!(matches!(err, Err(LayerError::LinkTarget { .. })), "{err:?}");
    // A hardlink to a symlink that points out links the symlink itself.
    host.apply(
        Layer::new()
            .link("s", EntryType::Symlink, abs)
            .link("h2", EntryType::Link, "s"),
        WhiteoutMode::Delete,
    )
    .expect("link to symlink");
    assert!(
        fs::symlink_metadata(host.target().join("h2"))
            .expect("h2")
            .file_type()
            .is_symlink()
    );
    host.assert_untouched();
}

#[test]
fn whiteouts_of_dot_dotdot_and_outside_are_refused_or_confined() {
    let host = Host::new();
    for mode in [WhiteoutMode::Delete, WhiteoutMode::Overlay] {
        for name in [".wh..", ".wh...", "d/.wh...", ".wh."] {
            let err = host.apply(Layer::new().dir("d/", 0o755).file(name, b"", 0o644), mode);
            assert!(
                matches!(err, Err(LayerError::InvalidWhiteout { .. })),
                "{name}: {err:?}"
            );
        }
        let err = host.apply(Layer::new().file("../../../.wh.sentinel", b"", 0o644), mode);
        assert!(matches!(err, Err(LayerError::Escape { .. })), "{err:?}");
        let err = host.apply(Layer::new().file("../../../.wh..wh..opq", b"", 0o644), mode);
        assert!(matches!(err, Err(LayerError::Escape { .. })), "{err:?}");
    }
    // Through a symlink out: confined, deletes only inside.
    host.apply(
        Layer::new()
            .link("up", EntryType::Symlink, "../../..")
            .file("up/.wh.sentinel", b"", 0o644)
            .file("up/.wh..wh..opq", b"", 0o644),
        WhiteoutMode::Delete,
    )
    .expect("confined");
    assert!(host.target().exists());
    host.assert_untouched();
}

#[test]
fn device_nodes_are_confined_to_the_target() {
    let host = Host::new();
    let root = nix::unistd::geteuid().is_root();
    host.apply(
        Layer::new()
            .node("dev/null", EntryType::Char, 1, 3)
            .node("../../../dev/sda", EntryType::Block, 8, 0)
            .file("x", b"", 0o644),
        WhiteoutMode::Delete,
    )
    .expect_err("the escaping one is refused");
    host.apply(
        Layer::new().node("/dev/null2", EntryType::Char, 1, 3),
        WhiteoutMode::Delete,
    )
    .expect("confined");
    let node = host.target().join("dev/null2");
    if root {
        let meta = fs::symlink_metadata(&node).expect("created inside");
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), libc::makedev(1, 3));
    } else {
        assert!(!node.exists(), "without root devices are skipped");
    }
    assert!(!Path::new("/dev/null2").exists());
    host.assert_untouched();
}

#[test]
fn dangling_symlink_parents_are_followed_inside_the_root() {
    let host = Host::new();
    host.apply(
        Layer::new()
            .link("var/run", EntryType::Symlink, "/run")
            .file("var/run/pid", b"1", 0o644)
            .link("out", EntryType::Symlink, "../../../../nowhere/deeper")
            .file("out/f", b"pwned", 0o644),
        WhiteoutMode::Delete,
    )
    .expect("confined");
    assert_eq!(
        fs::read(host.target().join("run/pid")).expect("run/pid"),
        b"1"
    );
    // `..` above the root stays at the root, as in a chroot.
    assert_eq!(
        fs::read(host.target().join("nowhere/deeper/f")).expect("f"),
        b"pwned"
    );
    assert!(!host.dir.path().join("nowhere").exists());
    let err = host.apply(
        Layer::new()
            .link("loop", EntryType::Symlink, "loop")
            .file("loop/f", b"", 0o644),
        WhiteoutMode::Delete,
    );
    assert!(matches!(err, Err(LayerError::Fs { .. })), "{err:?}");
    host.assert_untouched();
}
