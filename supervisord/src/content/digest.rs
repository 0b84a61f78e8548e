//! [`Digest`]: a validated `sha256:<64 lower-case hex>` content address.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use super::error::ContentError;

/// The only algorithm berth stores (containerd's canonical one).
pub const ALGORITHM: &str = "sha256";
const HEX_LEN: usize = 64;

/// A content digest, always `sha256:` followed by 64 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parse and validate `sha256:<hex>`; anything else is an invalid argument.
    pub fn parse(s: &str) -> Result<Self, ContentError> {
        let invalid = || ContentError::InvalidDigest {
            digest: s.to_owned(),
        };
        let (algorithm, hex) = s.split_once(':').ok_or_else(invalid)?;
        if algorithm != ALGORITHM
            || hex.len() != HEX_LEN
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid());
        }
        Ok(Self(s.to_owned()))
    }

    /// The digest of a finished SHA-256 state.
    pub fn from_sha256(hasher: Sha256) -> Self {
        Self(format!("{ALGORITHM}:{}", hex::encode(hasher.finalize())))
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(data);
        Self::from_sha256(h)
    }

    /// The hex part (the blob's file name).
    pub fn hex(&self) -> &str {
        &self.0[ALGORITHM.len() + 1..]
    }

    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = ContentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_and_rejects_others() {
        let d = Digest::of(b"hello");
        assert_eq!(
            d.as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Digest::parse(d.as_str()).expect("valid"), d);
        assert_eq!(d.hex().len(), 64);
        for bad in [
            "",
            "sha256:",
            "sha512:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
            "sha256:../../../../etc/passwd",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
