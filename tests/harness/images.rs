//! OCI test images built from the host's static busybox, once per test process, and
//! pushed to a [`Registry`] with `skopeo`.
//!
//! - `busybox`: one layer: `/bin/busybox`, a symlink per applet, `/etc/passwd`,
//!   `/etc/group`, the usual empty directories; `Cmd ["sh"]`, `PATH`.
//! - `multilayer`: four layers: the busybox layer, data files, a directory later made
//!   opaque plus `/etc/motd`, and a layer with whiteouts (`data/.wh.random-2.bin`,
//!   `etc/.wh.motd`) and an opaque marker (`opt/olddir/.wh..wh..opq`).
//!
//! Each image is an OCI layout (gzip layers) in one temp dir per process, removed at
//! exit; [`Layer`] keeps what each layer holds so tests can compute the expected tree.
//!
//! ```text
//! <tmp>/berth-images-<pid>/
//!   policy.json            skopeo's accept-anything policy
//!   busybox/  multilayer/  OCI layouts: oci-layout, index.json, blobs/sha256/<hex>
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

use crate::registry::Registry;

/// The static busybox the images are built from (apt package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";
const MTIME: u64 = 1_700_000_000;
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One entry of a layer, as written to its tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
    /// `<dir>/.wh.<name>`: deletes `<dir>/<name>` of the layers below.
    Whiteout {
        path: String,
    },
    /// `<dir>/.wh..wh..opq`: hides everything the layers below had in `<dir>`.
    Opaque {
        dir: String,
    },
}

/// A built layer.
#[derive(Debug, Clone)]
pub struct Layer {
    pub entries: Vec<Entry>,
    /// `sha256:` of the gzip blob.
    pub digest: String,
    pub size: u64,
    /// `sha256:` of the uncompressed tar (the config's diff_id).
    pub diff_id: String,
    /// The gzip blob.
    pub blob: Vec<u8>,
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: &'static str,
    pub layout: PathBuf,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<Layer>,
}

/// A file tree as tests compare it: path (no leading `/`) → node.
pub type Tree = BTreeMap<String, Node>;

/// One node of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

impl Image {
    /// ChainIDs of the layers, bottom first (the last is the top snapshot's name).
    pub fn chain_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in &self.layers {
            let next = match out.last() {
                None => l.diff_id.clone(),
                Some(prev) => sha256(format!("{prev} {}", l.diff_id).as_bytes()),
            };
            out.push(next);
        }
        out
    }

    /// The tree the top snapshot must hold: the layers applied in order, whiteouts and
    /// opaque directories honoured.
    pub fn expected_tree(&self) -> Tree {
        let mut tree = Tree::new();
        for layer in &self.layers {
            let under = |t: &mut Tree, dir: &str| {
                let prefix = format!("{dir}/");
                t.retain(|k, _| !k.starts_with(&prefix));
            };
            for e in &layer.entries {
                match e {
                    Entry::Opaque { dir } => under(&mut tree, dir),
                    Entry::Whiteout { path } => {
                        tree.remove(path);
                        under(&mut tree, path);
                    }
                    _ => {}
                }
            }
            for e in &layer.entries {
                match e {
                    Entry::Dir { path, .. } => {
                        tree.insert(path.clone(), Node::Dir);
                    }
                    Entry::File { path, data, .. } => {
                        tree.insert(path.clone(), Node::File(data.clone()));
                    }
                    Entry::Symlink { path, target } => {
                        tree.insert(path.clone(), Node::Symlink(target.clone()));
                    }
                    Entry::Whiteout { .. } | Entry::Opaque { .. } => {}
                }
            }
        }
        tree
    }

    /// Push to `registry` as `<addr>/<name>:latest`; returns that reference.
    pub fn push(&self, registry: &Registry) -> Result<String> {
        let reference = format!("{}/{}:latest", registry.addr(), self.name);
        let policy = self
            .layout
            .parent()
            .context("layout has a parent")?
            .join("policy.json");
        let out = Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", self.layout.display()))
            .arg(format!("docker://{reference}"))
            .output()
            .context("run skopeo (apt package skopeo)")?;
        ensure!(
            out.status.success(),
            "skopeo copy to {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(reference)
    }
}

/// Reads the tree under `root` (not following symlinks); `root` itself is not listed.
pub fn read_tree(root: &Path) -> Result<Tree> {
    fn walk(root: &Path, rel: &str, out: &mut Tree) -> Result<()> {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = entry.file_type()?;
            if ft.is_dir() {
                out.insert(path.clone(), Node::Dir);
                walk(root, &path, out)?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(entry.path())?;
                out.insert(path, Node::Symlink(target.to_string_lossy().into_owned()));
            } else if ft.is_file() {
                out.insert(path, Node::File(std::fs::read(entry.path())?));
            } else {
                bail!(
                    "unexpected file type at {path}: char={}",
                    ft.is_char_device()
                );
            }
        }
        Ok(())
    }
    let mut out = Tree::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

/// The images of this test process.
#[derive(Debug)]
pub struct Images {
    pub busybox: Image,
    pub multilayer: Image,
}

static IMAGES: OnceLock<Images> = OnceLock::new();
static BUILD_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_build_dir() {
    if let Some(dir) = BUILD_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The images, built on first use (panics with the reason when they cannot be).
pub fn images() -> &'static Images {
    IMAGES.get_or_init(|| build().expect("build the test images"))
}

fn build() -> Result<Images> {
    let dir = std::env::temp_dir().join(format!("berth-images-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    if BUILD_DIR.set(dir.clone()).is_ok() {
        // SAFETY: `remove_build_dir` is a plain `extern "C" fn()` that only reads a
        // static set above and removes files; it is safe to run at process exit.
        unsafe { libc::atexit(remove_build_dir) };
    }
    std::fs::write(
        dir.join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )?;
    let base = busybox_layer()?;
    let busybox = write_layout(&dir, "busybox", vec![base.clone()])?;
    let multilayer = write_layout(
        &dir,
        "multilayer",
        vec![
            base,
            build_layer(data_entries())?,
            build_layer(opaque_base_entries())?,
            build_layer(whiteout_entries())?,
        ],
    )?;
    Ok(Images {
        busybox,
        multilayer,
    })
}

fn dir(path: &str, mode: u32) -> Entry {
    Entry::Dir {
        path: path.into(),
        mode,
    }
}

fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
    Entry::File {
        path: path.into(),
        mode: 0o644,
        data: data.into(),
    }
}

fn busybox_layer() -> Result<Layer> {
    let bin = std::fs::read(BUSYBOX).with_context(|| format!("read {BUSYBOX} (busybox-static)"))?;
    let list = Command::new(BUSYBOX).arg("--list").output()?;
    ensure!(list.status.success(), "busybox --list failed");
    let mut entries = vec![dir("bin", 0o755)];
    entries.push(Entry::File {
        path: "bin/busybox".into(),
        mode: 0o755,
        data: bin,
    });
    let mut applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
        .map(str::to_owned)
        .collect();
    applets.sort();
    for a in applets {
        entries.push(Entry::Symlink {
            path: format!("bin/{a}"),
            target: "busybox".into(),
        });
    }
    for (d, mode) in [
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("proc", 0o755),
        ("root", 0o700),
        ("sys", 0o755),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("var", 0o755),
        ("var/log", 0o755),
        ("var/run", 0o755),
    ] {
        entries.push(dir(d, mode));
    }
    entries.push(file(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    ));
    entries.push(file("etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"));
    build_layer(entries)
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn data_entries() -> Vec<Entry> {
    let mut e = vec![dir("data", 0o755)];
    for i in 1..=4 {
        e.push(file(
            &format!("data/random-{i}.bin"),
            noise(1000 + i, 256 << 10),
        ));
    }
    e.push(file("data/keep.txt", "this file survives all layers\n"));
    e
}

fn opaque_base_entries() -> Vec<Entry> {
    vec![
        dir("etc", 0o755),
        file("etc/motd", "motd from layer 2 (deleted in layer 3)\n"),
        dir("opt", 0o755),
        dir("opt/olddir", 0o755),
        file("opt/olddir/a", "old a\n"),
        dir("opt/olddir/sub", 0o755),
        file("opt/olddir/sub/b", "old b\n"),
        dir("usr/share", 0o755),
        file(
            "usr/share/words.txt",
            "container snapshot overlay layer\n".repeat(2000),
        ),
    ]
}

fn whiteout_entries() -> Vec<Entry> {
    vec![
        dir("data", 0o755),
        Entry::Whiteout {
            path: "data/random-2.bin".into(),
        },
        dir("etc", 0o755),
        Entry::Whiteout {
            path: "etc/motd".into(),
        },
        file("etc/multilayer-release", "multilayer 1\n"),
        dir("opt", 0o755),
        dir("opt/olddir", 0o755),
        Entry::Opaque {
            dir: "opt/olddir".into(),
        },
        file("opt/olddir/c", "new c (only file visible in /opt/olddir)\n"),
    ]
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn build_layer(entries: Vec<Entry>) -> Result<Layer> {
    let mut b = tar::Builder::new(Vec::new());
    for e in &entries {
        match e {
            Entry::Dir { path, mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Entry::File { path, mode, data } => {
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())?;
            }
            Entry::Symlink { path, target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, path, target)?;
            }
            Entry::Whiteout { path } => {
                let (d, name) = path.rsplit_once('/').unwrap_or(("", path));
                let wh = if d.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{d}/.wh.{name}")
                };
                let mut h = header(tar::EntryType::Regular, 0o644, 0);
                b.append_data(&mut h, wh, std::io::empty())?;
            }
            Entry::Opaque { dir } => {
                let mut h = header(tar::EntryType::Regular, 0o644, 0);
                b.append_data(&mut h, format!("{dir}/.wh..wh..opq"), std::io::empty())?;
            }
        }
    }
    let tar = b.into_inner()?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)?;
    let blob = gz.finish()?;
    Ok(Layer {
        entries,
        digest: sha256(&blob),
        size: blob.len() as u64,
        diff_id: sha256(&tar),
        blob,
    })
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn put_blob(layout: &Path, data: &[u8]) -> Result<(String, u64)> {
    let digest = sha256(data);
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::write(&path, data)?;
    Ok((digest, data.len() as u64))
}

fn write_layout(dir: &Path, name: &'static str, layers: Vec<Layer>) -> Result<Image> {
    let layout = dir.join(name);
    std::fs::create_dir_all(layout.join("blobs/sha256"))?;
    std::fs::set_permissions(&layout, std::fs::Permissions::from_mode(0o755))?;
    for l in &layers {
        put_blob(&layout, &l.blob)?;
    }
    let config = serde_json::json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    });
    let (config_digest, config_size) = put_blob(&layout, &serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": l.digest, "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let (manifest_digest, manifest_size) = put_blob(&layout, &serde_json::to_vec(&manifest)?)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(Image {
        name,
        layout,
        manifest_digest,
        config_digest,
        layers,
    })
}
