//! The content and snapshot labels containerd's pull writes, so GC, `ctr` and a later
//! `ctr run` see a berth pull exactly like their own.

use crate::content::Labels;

use super::oci::{Descriptor, Manifest};
use super::reference::host_without_port;

/// Prefix of a GC reference from one blob to another (`.m.<i>`, `.config`, `.l.<i>`).
pub const GC_REF_CONTENT: &str = "containerd.io/gc.ref.content";
/// Prefix of a GC reference from a blob to a snapshot (`.<snapshotter>`).
pub const GC_REF_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot";
/// The diff_id of a layer blob, set once the unpack verified it.
pub const UNCOMPRESSED: &str = "containerd.io/uncompressed";
/// Prefix of the label naming where a blob came from (`.<registry host>` = repositories).
pub const DISTRIBUTION_SOURCE: &str = "containerd.io/distribution.source";
/// A lease label: the lease expires (and stops protecting) at this RFC 3339 time.
pub const GC_EXPIRE: &str = "containerd.io/gc.expire";

/// An index's references to the manifests that were fetched (`m.<i>`, numbered in the
/// order of the fetched list, as containerd's children handler does after filtering).
pub fn index_labels(fetched: &[&Descriptor]) -> Labels {
    fetched
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("{GC_REF_CONTENT}.m.{i}"), d.digest.clone()))
        .collect()
}

/// A manifest's references to its config and layers.
pub fn manifest_labels(manifest: &Manifest) -> Labels {
    let mut labels = Labels::new();
    labels.insert(
        format!("{GC_REF_CONTENT}.config"),
        manifest.config.digest.clone(),
    );
    for (i, layer) in manifest.layers.iter().enumerate() {
        labels.insert(format!("{GC_REF_CONTENT}.l.{i}"), layer.digest.clone());
    }
    labels
}

/// The distribution-source label for a blob fetched from `registry`/`repository`,
/// merged with the value the blob already has (comma-separated, no duplicates).
pub fn distribution_source(
    registry: &str,
    repository: &str,
    existing: Option<&str>,
) -> (String, String) {
    let key = format!("{DISTRIBUTION_SOURCE}.{}", host_without_port(registry));
    let mut repos: Vec<&str> = existing
        .map(|v| v.split(',').filter(|r| !r.is_empty()).collect())
        .unwrap_or_default();
    if !repos.contains(&repository) {
        repos.push(repository);
    }
    (key, repos.join(","))
}

/// The label on an image config naming its unpacked top snapshot.
pub fn snapshot_ref(snapshotter: &str, chain_id: &str) -> (String, String) {
    (
        format!("{GC_REF_SNAPSHOT}.{snapshotter}"),
        chain_id.to_owned(),
    )
}

/// Update paths (`labels.<k>`) for a per-label merge of `labels`.
pub fn paths(labels: &Labels) -> Vec<String> {
    labels.keys().map(|k| format!("labels.{k}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(d: &str) -> Descriptor {
        Descriptor {
            digest: d.into(),
            ..Descriptor::default()
        }
    }

    #[test]
    fn gc_references_as_containerd() {
        let m = Manifest {
            media_type: String::new(),
            config: desc("sha256:c"),
            layers: vec![desc("sha256:l0"), desc("sha256:l1")],
        };
        let labels = manifest_labels(&m);
        assert_eq!(labels["containerd.io/gc.ref.content.config"], "sha256:c");
        assert_eq!(labels["containerd.io/gc.ref.content.l.0"], "sha256:l0");
        assert_eq!(labels["containerd.io/gc.ref.content.l.1"], "sha256:l1");
        assert_eq!(labels.len(), 3);
        let d = desc("sha256:m");
        let labels = index_labels(&[&d]);
        assert_eq!(labels["containerd.io/gc.ref.content.m.0"], "sha256:m");
        assert_eq!(
            paths(&labels),
            vec!["labels.containerd.io/gc.ref.content.m.0".to_owned()]
        );
    }

    #[test]
    fn distribution_source_merges_repositories() {
        let (k, v) = distribution_source("127.0.0.1:5000", "busybox", None);
        assert_eq!(k, "containerd.io/distribution.source.127.0.0.1");
        assert_eq!(v, "busybox");
        let (_, v) = distribution_source("127.0.0.1:5000", "other", Some("busybox"));
        assert_eq!(v, "busybox,other");
        let (_, v) = distribution_source("127.0.0.1:5000", "busybox", Some("a,busybox"));
        assert_eq!(v, "a,busybox");
        let (k, v) = snapshot_ref("overlayfs", "sha256:top");
        assert_eq!(k, "containerd.io/gc.ref.snapshot.overlayfs");
        assert_eq!(v, "sha256:top");
    }
}
