//! Label rules: containerd's size limit and its update semantics.

use crate::error::{Error, Result};
use crate::snapshotter::Labels;

/// containerd's limit on a label's key plus value.
const MAX_LABEL_SIZE: usize = 4096;

pub(super) fn check_labels(labels: &Labels) -> Result<()> {
    for (k, v) in labels {
        if k.len() + v.len() > MAX_LABEL_SIZE {
            return Err(Error::invalid(format!(
                "label {k:?}: key and value longer than {MAX_LABEL_SIZE} bytes"
            )));
        }
    }
    Ok(())
}

/// containerd's update rule for labels (empty values delete).
pub(super) fn apply_update(labels: &mut Labels, new: &Labels, fieldpaths: &[String]) -> Result<()> {
    let replace = |labels: &mut Labels| {
        *labels = new
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    };
    if fieldpaths.is_empty() {
        replace(labels);
        return Ok(());
    }
    for path in fieldpaths {
        if let Some(k) = path.strip_prefix("labels.") {
            match new.get(k).filter(|v| !v.is_empty()) {
                Some(v) => labels.insert(k.to_owned(), v.clone()),
                None => labels.remove(k),
            };
        } else if path == "labels" {
            replace(labels);
        } else {
            return Err(Error::invalid(format!(
                "cannot update field {path:?} of a snapshot"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // unwrap is fine in tests (house rule)
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn update_paths_follow_containerd() {
        let mut l = labels(&[("a", "1"), ("b", "2")]);
        apply_update(
            &mut l,
            &labels(&[("b", "3"), ("c", "4")]),
            &["labels.b".into()],
        )
        .unwrap();
        assert_eq!(l, labels(&[("a", "1"), ("b", "3")]));
        apply_update(&mut l, &labels(&[]), &["labels.a".into()]).unwrap();
        assert_eq!(l, labels(&[("b", "3")]));
        apply_update(&mut l, &labels(&[("x", "9"), ("y", "")]), &[]).unwrap();
        assert_eq!(l, labels(&[("x", "9")]));
        apply_update(&mut l, &labels(&[("z", "1")]), &["labels".into()]).unwrap();
        assert_eq!(l, labels(&[("z", "1")]));
        let err = apply_update(&mut l, &labels(&[]), &["parent".into()]).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        assert_eq!(l, labels(&[("z", "1")]));
    }

    #[test]
    fn oversized_labels_are_invalid() {
        assert!(check_labels(&labels(&[("k", &"v".repeat(4095))])).is_ok());
        let err = check_labels(&labels(&[("k", &"v".repeat(4096))])).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
    }
}
