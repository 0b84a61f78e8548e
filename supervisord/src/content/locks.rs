//! [`RefLocks`]: one writer per ingest ref at a time, held for the writer's lifetime.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::error::{ContentError, Result};

/// The set of refs a live writer holds. In memory only: after a restart every ingest on
/// disk is free to resume.
#[derive(Debug, Default, Clone)]
pub struct RefLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

/// Holding this means holding the ref; dropping it releases the ref.
#[derive(Debug)]
pub struct RefLockGuard {
    locks: RefLocks,
    key: String,
}

impl RefLocks {
    /// Take `key`, or fail at once with [`ContentError::Locked`] (containerd's
    /// Unavailable, which makes its client back off and retry).
    pub fn try_lock(&self, key: &str, reference: &str) -> Result<RefLockGuard> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(key.to_owned()) {
            return Err(ContentError::Locked {
                reference: reference.to_owned(),
            });
        }
        Ok(RefLockGuard {
            locks: self.clone(),
            key: key.to_owned(),
        })
    }

    /// Is `key` held right now?
    #[cfg(test)]
    pub fn is_locked(&self, key: &str) -> bool {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }
}

impl Drop for RefLockGuard {
    fn drop(&mut self) {
        self.locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_first_drops() {
        let locks = RefLocks::default();
        let g = locks.try_lock("k", "r").expect("first");
        assert!(matches!(
            locks.try_lock("k", "r"),
            Err(ContentError::Locked { .. })
        ));
        assert!(locks.try_lock("other", "r").is_ok());
        drop(g);
        assert!(!locks.is_locked("k"));
        assert!(locks.try_lock("k", "r").is_ok());
    }
}
