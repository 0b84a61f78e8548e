//! The stored form of one snapshot.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::snapshotter::{Info, Kind, Labels, Usage};

/// One row of the `snapshots` table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Record {
    /// Names the snapshot's directory.
    pub id: u64,
    pub kind: Kind,
    /// The committed parent's name, or empty.
    pub parent: String,
    pub created_ns: u64,
    pub updated_ns: u64,
    pub labels: Labels,
    /// Usage of the layer, recorded at commit (zero before).
    pub size: u64,
    pub inodes: u64,
}

impl Record {
    pub(crate) fn new(id: u64, kind: Kind, parent: &str, labels: Labels) -> Self {
        let now = now_ns();
        Record {
            id,
            kind,
            parent: parent.to_owned(),
            created_ns: now,
            updated_ns: now,
            labels,
            size: 0,
            inodes: 0,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // A struct of strings, integers and a string map always serialises.
        serde_json::to_vec(self).expect("record serialises to json")
    }

    pub(crate) fn decode(key: &str, bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
            key: key.to_owned(),
            source,
        })
    }

    pub(crate) fn info(&self, name: &str) -> Info {
        Info {
            name: name.to_owned(),
            parent: self.parent.clone(),
            kind: self.kind,
            created_at: from_ns(self.created_ns),
            updated_at: from_ns(self.updated_ns),
            labels: self.labels.clone(),
        }
    }

    pub(crate) fn usage(&self) -> Usage {
        Usage {
            size: self.size,
            inodes: self.inodes,
        }
    }
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_ns() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn from_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}
