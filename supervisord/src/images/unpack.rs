//! The tee between a layer's download and its unpack: the download sends each batch
//! of bytes both into the ingest and here; [`TeeReader`] is the blocking reader the
//! layer apply (`berth_snapshotter::layer::apply`, on the directory Diff's
//! `plan_apply` names) consumes on its own thread.

use bytes::Bytes;
use std::io::{self, Read};
use tokio::sync::mpsc;

/// What a download hands the unpack through the tee.
#[derive(Debug)]
pub enum TeeMsg {
    /// The next bytes of the blob.
    Data(Bytes),
    /// The download resumed an ingest or found the blob: read the committed blob instead.
    UseBlob,
    /// The download failed; the apply must fail.
    Failed(String),
}

/// A blocking [`Read`] over the tee's messages (from a blocking thread only).
pub struct TeeReader {
    rx: mpsc::Receiver<TeeMsg>,
    chunk: Bytes,
}

impl TeeReader {
    /// `first` is a chunk already taken off `rx`.
    pub fn new(first: Bytes, rx: mpsc::Receiver<TeeMsg>) -> Self {
        Self { rx, chunk: first }
    }
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(TeeMsg::Data(b)) => self.chunk = b,
                Some(TeeMsg::Failed(why)) => return Err(io::Error::other(why)),
                Some(TeeMsg::UseBlob) => {
                    return Err(io::Error::other("download switched to the stored blob"));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tee_reader_yields_chunks_then_eof_or_error() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(TeeMsg::Data(Bytes::from_static(b"cd")))
            .expect("room");
        drop(tx);
        let mut r = TeeReader::new(Bytes::from_static(b"ab"), rx);
        let mut out = String::new();
        r.read_to_string(&mut out).expect("reads");
        assert_eq!(out, "abcd");

        let (tx, rx) = mpsc::channel(4);
        tx.try_send(TeeMsg::Failed("boom".into())).expect("room");
        let mut r = TeeReader::new(Bytes::new(), rx);
        let err = r.read(&mut [0u8; 4]).expect_err("fails");
        assert_eq!(err.to_string(), "boom");
    }
}
