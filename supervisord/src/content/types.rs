//! The content store's records as callers see them: [`Info`] of a committed blob and
//! [`Status`] of an ingest, with their filter adaptors and label rules.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use super::digest::Digest;
use super::error::{ContentError, Result};
use crate::filters::{self, Adaptor};

/// Labels of a blob (ordered, as containerd prints them).
pub type Labels = BTreeMap<String, String>;

/// containerd's limit on one label: key and value together.
pub const MAX_LABEL_SIZE: usize = 4096;

/// A committed blob as one namespace sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub digest: Digest,
    pub size: u64,
    /// When the blob was committed into this namespace.
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub labels: Labels,
}

/// An in-progress ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The caller's ref (not the backend's).
    pub reference: String,
    /// Bytes written so far: where the next write must start.
    pub offset: u64,
    /// Expected total size; 0 when unknown.
    pub total: u64,
    /// The digest the writer declared, when it declared one.
    pub expected: Option<Digest>,
    pub started_at: SystemTime,
    pub updated_at: SystemTime,
}

impl Adaptor for Info {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        match path.split_first() {
            Some((f, [])) if f == "digest" => Some(Cow::Borrowed(self.digest.as_str())),
            Some((f, [])) if f == "size" => Some(Cow::Owned(self.size.to_string())),
            Some((f, rest)) if f == "labels" => filters::label(&self.labels, rest),
            _ => None,
        }
    }
}

impl Adaptor for Status {
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
        match path {
            [f] if f == "ref" => Some(Cow::Borrowed(self.reference.as_str())),
            [f] if f == "expected" => self.expected.as_ref().map(|d| Cow::Borrowed(d.as_str())),
            _ => None,
        }
    }
}

/// Refuse labels containerd would refuse (key + value over [`MAX_LABEL_SIZE`]).
pub fn validate_labels(labels: &Labels) -> Result<()> {
    for (k, v) in labels {
        if k.len() + v.len() > MAX_LABEL_SIZE {
            return Err(ContentError::LabelTooLarge {
                key: k.clone(),
                max: MAX_LABEL_SIZE,
            });
        }
    }
    Ok(())
}

/// Apply containerd's content update rules to `current` labels:
/// no paths = replace the map; `labels` = replace the map; `labels.<key>` = set that
/// one key from `new` (an absent or empty value removes it); any other path is refused.
pub fn apply_label_update(
    digest: &Digest,
    current: &mut Labels,
    new: &Labels,
    paths: &[String],
) -> Result<()> {
    if paths.is_empty() {
        *current = new.clone();
    }
    for path in paths {
        if let Some(key) = path.strip_prefix("labels.") {
            match new.get(key).filter(|v| !v.is_empty()) {
                Some(v) => current.insert(key.to_owned(), v.clone()),
                None => current.remove(key),
            };
        } else if path == "labels" {
            *current = new.clone();
        } else {
            return Err(ContentError::InvalidField {
                digest: digest.to_string(),
                path: path.clone(),
            });
        }
    }
    current.retain(|_, v| !v.is_empty());
    validate_labels(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::Filter;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_paths_merge_single_keys_and_labels_replaces() {
        let d = Digest::of(b"x");
        let mut cur = labels(&[("a", "1"), ("b", "2")]);
        let new = labels(&[("b", "20"), ("c", "30")]);
        apply_label_update(&d, &mut cur, &new, &["labels.b".into(), "labels.a".into()])
            .expect("update");
        assert_eq!(cur, labels(&[("b", "20")]));
        apply_label_update(&d, &mut cur, &new, &["labels".into()]).expect("update");
        assert_eq!(cur, new);
        apply_label_update(&d, &mut cur, &labels(&[("z", "9")]), &[]).expect("update");
        assert_eq!(cur, labels(&[("z", "9")]));
        let err = apply_label_update(&d, &mut cur, &new, &["size".into()]).expect_err("size");
        assert!(matches!(err, ContentError::InvalidField { .. }), "{err}");
    }

    #[test]
    fn oversized_label_is_refused() {
        let d = Digest::of(b"x");
        let mut cur = Labels::new();
        let big = labels(&[("k", &"v".repeat(MAX_LABEL_SIZE))]);
        let err = apply_label_update(&d, &mut cur, &big, &[]).expect_err("too large");
        assert!(matches!(err, ContentError::LabelTooLarge { .. }), "{err}");
    }

    #[test]
    fn info_adaptor_answers_containerd_fields() {
        let info = Info {
            digest: Digest::of(b"x"),
            size: 1,
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
            labels: labels(&[("containerd.io/gc.ref.content.l.0", "y")]),
        };
        let hit = Filter::parse(r#"labels."containerd.io/gc.ref.content.l.0"==y"#).expect("parse");
        assert!(hit.matches(&info));
        let miss = Filter::parse(&format!("digest!={}", info.digest)).expect("parse");
        assert!(!miss.matches(&info));
    }
}
