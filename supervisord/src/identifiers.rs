//! Identifier and label validation, with containerd's rules and messages.
//!
//! Namespaces, container ids, lease ids and snapshotter keys of berth objects follow
//! containerd's identifier rule: `^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`, at most 76
//! characters. Labels: key and value together at most 4096 bytes.

use std::sync::LazyLock;

use regex::Regex;

/// Longest accepted identifier, in bytes (containerd 1.6).
pub const MAX_LENGTH: usize = 76;

/// Longest label key plus value, in bytes.
pub const MAX_LABEL_SIZE: usize = 4096;

/// The pattern as containerd prints it in its error messages.
pub const PATTERN: &str = r"^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$";

static IDENTIFIER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(PATTERN).expect("identifier pattern is a valid regex"));

/// Why an identifier or label was refused. Every variant is an invalid argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidIdentifier {
    #[error("identifier must not be empty")]
    Empty,
    #[error("identifier {0:?} greater than maximum length ({MAX_LENGTH} characters)")]
    TooLong(String),
    #[error("identifier {0:?} must match {PATTERN}")]
    Pattern(String),
    #[error("label key and value greater than maximum size ({MAX_LABEL_SIZE} bytes), key: {0}")]
    LabelTooLarge(String),
    #[error("empty label key")]
    EmptyLabelKey,
}

/// Check `s` against containerd's identifier rule.
pub fn validate(s: &str) -> Result<(), InvalidIdentifier> {
    if s.is_empty() {
        return Err(InvalidIdentifier::Empty);
    }
    if s.len() > MAX_LENGTH {
        return Err(InvalidIdentifier::TooLong(s.to_owned()));
    }
    if !IDENTIFIER.is_match(s) {
        return Err(InvalidIdentifier::Pattern(s.to_owned()));
    }
    Ok(())
}

/// Check one label (containerd `labels.Validate`).
pub fn validate_label(key: &str, value: &str) -> Result<(), InvalidIdentifier> {
    if key.is_empty() {
        return Err(InvalidIdentifier::EmptyLabelKey);
    }
    if key.len() + value.len() > MAX_LABEL_SIZE {
        return Err(InvalidIdentifier::LabelTooLarge(key.to_owned()));
    }
    Ok(())
}

/// Check every label of a map.
pub fn validate_labels<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), InvalidIdentifier> {
    labels
        .into_iter()
        .try_for_each(|(k, v)| validate_label(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_containerd_identifiers() {
        for ok in [
            "default",
            "k8s.io",
            "a",
            "A-b_c.d9",
            "team1",
            &"x".repeat(76),
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_identifiers_with_containerd_messages() {
        assert_eq!(validate(""), Err(InvalidIdentifier::Empty));
        assert_eq!(
            validate(&"x".repeat(77)),
            Err(InvalidIdentifier::TooLong("x".repeat(77)))
        );
        for bad in ["Bad..Name", "-a", "a-", ".a", "a b", "a/b", "é", "a__"] {
            assert_eq!(
                validate(bad),
                Err(InvalidIdentifier::Pattern(bad.into())),
                "{bad}"
            );
        }
        let msg = validate("Bad..Name").expect_err("invalid").to_string();
        assert_eq!(
            msg,
            r#"identifier "Bad..Name" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"#
        );
    }

    #[test]
    fn labels_are_bounded() {
        assert!(validate_label("k", "v").is_ok());
        assert!(validate_label("k", &"v".repeat(4095)).is_ok());
        assert_eq!(
            validate_label("k", &"v".repeat(4096)),
            Err(InvalidIdentifier::LabelTooLarge("k".into()))
        );
        assert_eq!(
            validate_label("", "v"),
            Err(InvalidIdentifier::EmptyLabelKey)
        );
    }
}
