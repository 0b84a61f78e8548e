//! The reference graph and its mark phase, free of storage: [`Graph`] is filled from the
//! metadata store by `gc::records` (and by hand in the tests), [`Graph::unreachable`] is
//! what the sweep removes.
//!
//! Labels that make references, as containerd's metadata GC reads them:
//!
//! | label | meaning |
//! |---|---|
//! | `containerd.io/gc.root` | the object is a root |
//! | `containerd.io/gc.ref.content[.<x>\|/<x>]` = digest | keeps that blob (same namespace) |
//! | `containerd.io/gc.ref.snapshot.<snapshotter>[/<x>]` = key | keeps that snapshot |

use std::collections::{BTreeSet, HashMap, HashSet};

/// Label marking an object as a GC root.
pub const LABEL_ROOT: &str = "containerd.io/gc.root";
/// Prefix of labels referencing content.
pub const LABEL_REF_CONTENT: &str = "containerd.io/gc.ref.content";
/// Prefix of labels referencing a snapshot; the snapshotter name follows.
pub const LABEL_REF_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot.";

/// One collectable object (or a root's target), always within a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Content {
        ns: String,
        digest: String,
    },
    Snapshot {
        ns: String,
        snapshotter: String,
        key: String,
    },
    Ingest {
        ns: String,
        reference: String,
    },
}

impl Node {
    pub fn content(ns: &str, digest: &str) -> Self {
        Node::Content {
            ns: ns.to_owned(),
            digest: digest.to_owned(),
        }
    }

    pub fn snapshot(ns: &str, snapshotter: &str, key: &str) -> Self {
        Node::Snapshot {
            ns: ns.to_owned(),
            snapshotter: snapshotter.to_owned(),
            key: key.to_owned(),
        }
    }

    pub fn ingest(ns: &str, reference: &str) -> Self {
        Node::Ingest {
            ns: ns.to_owned(),
            reference: reference.to_owned(),
        }
    }
}

/// The objects GC may remove, what each references, and the roots.
#[derive(Debug, Default, Clone)]
pub struct Graph {
    roots: Vec<Node>,
    objects: BTreeSet<Node>,
    refs: HashMap<Node, Vec<Node>>,
}

/// The references a label map makes from an object in namespace `ns`.
pub fn label_refs<'a>(
    ns: &str,
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<Node> {
    let mut out = Vec::new();
    for (k, v) in labels {
        if v.is_empty() {
            continue;
        }
        if let Some(rest) = k.strip_prefix(LABEL_REF_CONTENT) {
            if rest.is_empty() || rest.starts_with('.') || rest.starts_with('/') {
                out.push(Node::content(ns, v));
            }
        } else if let Some(rest) = k.strip_prefix(LABEL_REF_SNAPSHOT) {
            let snapshotter = rest.split('/').next().unwrap_or_default();
            if !snapshotter.is_empty() {
                out.push(Node::snapshot(ns, snapshotter, v));
            }
        }
    }
    out
}

/// Does this label map make its object a root?
pub fn is_root<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> bool {
    labels.into_iter().any(|(k, _)| k == LABEL_ROOT)
}

impl Graph {
    /// `node` must be kept whatever references it.
    pub fn add_root(&mut self, node: Node) {
        self.roots.push(node);
    }

    /// A root that is not itself collectable (an image, a container, a lease) and what
    /// it references.
    pub fn add_root_refs(&mut self, refs: impl IntoIterator<Item = Node>) {
        self.roots.extend(refs);
    }

    /// A collectable object and what it references.
    pub fn add_object(&mut self, node: Node, refs: Vec<Node>) {
        if !refs.is_empty() {
            self.refs.entry(node.clone()).or_default().extend(refs);
        }
        self.objects.insert(node);
    }

    /// Every node reachable from a root (roots included, even if not objects).
    pub fn mark(&self) -> HashSet<Node> {
        let mut seen: HashSet<Node> = HashSet::new();
        let mut stack: Vec<&Node> = self.roots.iter().collect();
        while let Some(n) = stack.pop() {
            if seen.contains(n) {
                continue;
            }
            seen.insert(n.clone());
            if let Some(children) = self.refs.get(n) {
                stack.extend(children.iter());
            }
        }
        seen
    }

    /// The objects no root reaches, sorted.
    pub fn unreachable(&self) -> Vec<Node> {
        let live = self.mark();
        self.objects
            .iter()
            .filter(|n| !live.contains(n))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_refs_follow_containerd_prefixes() {
        let l = labels(&[
            ("containerd.io/gc.ref.content", "sha256:a"),
            ("containerd.io/gc.ref.content.l.0", "sha256:b"),
            ("containerd.io/gc.ref.content/x", "sha256:c"),
            ("containerd.io/gc.ref.contentious", "sha256:no"),
            ("containerd.io/gc.ref.snapshot.overlayfs", "sha256:top"),
            ("containerd.io/gc.ref.snapshot.native/1", "k"),
            ("containerd.io/gc.ref.snapshot.", "nosnapshotter"),
            ("containerd.io/distribution.source.x", "repo"),
            ("containerd.io/gc.ref.content.empty", ""),
        ]);
        let mut got = label_refs("ns", &l);
        got.sort();
        assert_eq!(
            got,
            vec![
                Node::content("ns", "sha256:a"),
                Node::content("ns", "sha256:b"),
                Node::content("ns", "sha256:c"),
                Node::snapshot("ns", "native", "k"),
                Node::snapshot("ns", "overlayfs", "sha256:top"),
            ]
        );
        assert!(is_root(&labels(&[(LABEL_ROOT, "")])));
        assert!(!is_root(&labels(&[("containerd.io/gc.rooted", "x")])));
    }

    /// The shape `ctr images pull` leaves: image → index/manifest → config (→ top
    /// snapshot → parents) and layers.
    fn pulled(g: &mut Graph, ns: &str, image: bool) {
        let c = |d: &str| Node::content(ns, d);
        let s = |k: &str| Node::snapshot(ns, "overlayfs", k);
        if image {
            g.add_root_refs([c("manifest")]);
        }
        g.add_object(c("manifest"), vec![c("config"), c("layer0"), c("layer1")]);
        g.add_object(c("config"), vec![s("chain1")]);
        g.add_object(c("layer0"), vec![]);
        g.add_object(c("layer1"), vec![]);
        g.add_object(s("chain0"), vec![]);
        g.add_object(s("chain1"), vec![s("chain0")]);
    }

    #[test]
    fn an_image_keeps_its_whole_tree_and_only_it() {
        let mut g = Graph::default();
        pulled(&mut g, "a", true);
        pulled(&mut g, "b", false);
        g.add_object(Node::content("a", "stray"), vec![]);
        g.add_object(Node::ingest("a", "layer-x"), vec![]);
        let gone = g.unreachable();
        let mut expected = vec![Node::content("a", "stray"), Node::ingest("a", "layer-x")];
        for d in ["config", "layer0", "layer1", "manifest"] {
            expected.push(Node::content("b", d));
        }
        for k in ["chain0", "chain1"] {
            expected.push(Node::snapshot("b", "overlayfs", k));
        }
        expected.sort();
        assert_eq!(gone, expected);
    }

    #[test]
    fn containers_leases_and_root_labels_keep_objects() {
        let mut g = Graph::default();
        pulled(&mut g, "ns", false);
        // A container's snapshot keeps its parent chain, not the image's blobs.
        g.add_object(
            Node::snapshot("ns", "overlayfs", "ctr1"),
            vec![Node::snapshot("ns", "overlayfs", "chain1")],
        );
        g.add_root_refs([Node::snapshot("ns", "overlayfs", "ctr1")]);
        // A lease holds an ingest; a gc.root label holds layer1.
        g.add_object(Node::ingest("ns", "ref1"), vec![]);
        g.add_root_refs([Node::ingest("ns", "ref1")]);
        g.add_root(Node::content("ns", "layer1"));
        let gone = g.unreachable();
        let c = |d: &str| Node::content("ns", d);
        assert_eq!(gone, vec![c("config"), c("layer0"), c("manifest")]);
    }

    #[test]
    fn cycles_and_dangling_refs_terminate() {
        let mut g = Graph::default();
        let a = Node::content("ns", "a");
        let b = Node::content("ns", "b");
        g.add_object(a.clone(), vec![b.clone(), Node::content("ns", "missing")]);
        g.add_object(b.clone(), vec![a.clone()]);
        assert_eq!(g.unreachable(), vec![a.clone(), b.clone()]);
        g.add_root(b);
        assert!(g.unreachable().is_empty());
    }
}
