//! Per-blob progress of a transfer, sent as it happens.

use tokio::sync::mpsc;

/// Where one blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStatus {
    Waiting,
    Downloading,
    Downloaded,
    Unpacking,
    Done,
    /// Already present locally; nothing transferred.
    Exists,
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobProgress {
    pub digest: String,
    pub media_type: String,
    /// Bytes done so far.
    pub offset: u64,
    /// Expected size; 0 when unknown.
    pub total: u64,
    pub status: BlobStatus,
}

/// Where progress goes; a closed receiver is ignored (the client went away).
#[derive(Debug, Clone)]
pub struct Progress(Option<mpsc::UnboundedSender<BlobProgress>>);

impl Progress {
    pub fn new(tx: mpsc::UnboundedSender<BlobProgress>) -> Self {
        Self(Some(tx))
    }

    /// Progress nobody listens to.
    pub fn none() -> Self {
        Self(None)
    }

    pub fn send(
        &self,
        digest: &str,
        media_type: &str,
        offset: u64,
        total: u64,
        status: BlobStatus,
    ) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(BlobProgress {
                digest: digest.to_owned(),
                media_type: media_type.to_owned(),
                offset,
                total,
                status,
            });
        }
    }
}
