//! Test images built in Rust: gzip layers from entry lists, written as an OCI layout
//! directory (and tarred for import), reproducibly.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::images::oci::{self, chain_ids, sha256_digest};

/// One entry of a test layer.
#[derive(Debug, Clone)]
pub enum E {
    Dir(&'static str),
    File(&'static str, Vec<u8>),
    /// `.wh.<name>` in the directory of `path`.
    Whiteout(&'static str),
    /// `.wh..wh..opq` in directory `path`.
    Opaque(&'static str),
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Built {
    pub dir: PathBuf,
    pub index_digest: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<String>,
    pub diff_ids: Vec<String>,
    pub chains: Vec<String>,
}

impl Built {
    /// Path of a blob in the layout.
    pub fn blob(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// An uncompressed tar of `entries`.
pub fn layer_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(p) => b
                .append_data(
                    &mut header(tar::EntryType::Directory, 0o755, 0),
                    p,
                    std::io::empty(),
                )
                .expect("dir"),
            E::File(p, data) => b
                .append_data(
                    &mut header(tar::EntryType::Regular, 0o644, data.len() as u64),
                    p,
                    data.as_slice(),
                )
                .expect("file"),
            E::Whiteout(p) => {
                let path = Path::new(p);
                let name = format!(".wh.{}", path.file_name().expect("name").to_string_lossy());
                let full = path
                    .parent()
                    .map_or(PathBuf::from(&name), |d| d.join(&name));
                b.append_data(
                    &mut header(tar::EntryType::Regular, 0o644, 0),
                    full,
                    std::io::empty(),
                )
                .expect("whiteout");
            }
            E::Opaque(d) => b
                .append_data(
                    &mut header(tar::EntryType::Regular, 0o644, 0),
                    Path::new(d).join(".wh..wh..opq"),
                    std::io::empty(),
                )
                .expect("opaque"),
        }
    }
    b.into_inner().expect("tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn put(dir: &Path, data: &[u8]) -> String {
    let d = sha256_digest(data);
    std::fs::write(
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:")),
        data,
    )
    .expect("blob");
    d
}

/// Writes an OCI layout at `dir` with one image (tag `latest`, linux/amd64, in an
/// index) made of `layers`.
pub fn build_layout(dir: &Path, layers: &[Vec<E>]) -> Built {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    let mut descs = Vec::new();
    let mut digests = Vec::new();
    let mut diff_ids = Vec::new();
    for entries in layers {
        let tar = layer_tar(entries);
        diff_ids.push(sha256_digest(&tar));
        let gz = gzip(&tar);
        let d = put(dir, &gz);
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d, "size": gz.len()}));
        digests.push(d);
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).expect("json");
    let config_digest = put(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": oci::MEDIA_TYPE_OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = put(dir, &manifest);
    // The nested index (what a registry serves as the tag's root).
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::MEDIA_TYPE_OCI_INDEX,
        "manifests": [{"mediaType": oci::MEDIA_TYPE_OCI_MANIFEST, "digest": manifest_digest,
            "size": manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}}],
    });
    let index = serde_json::to_vec(&index).expect("json");
    let index_digest = put(dir, &index);
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": oci::MEDIA_TYPE_OCI_INDEX, "digest": index_digest,
            "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&top).expect("json"),
    )
    .expect("index");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    Built {
        dir: dir.to_owned(),
        index_digest,
        manifest_digest,
        config_digest,
        chains: chain_ids(&diff_ids),
        layers: digests,
        diff_ids,
    }
}

/// The layout directory as a tar archive (for Import).
pub fn tar_layout(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).expect("tar layout");
    b.into_inner().expect("tar")
}

/// Pseudo-random bytes (incompressible), reproducible.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
