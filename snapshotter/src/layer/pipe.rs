//! Decompression and hashing on a second thread, so inflating the next
//! chunk overlaps with writing the previous one's files.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use super::LayerError;
use super::compression::{Compression, HashingReader, STREAM_BUFFER, decompress};

/// Chunks in flight between the threads (4 MiB at 256 KiB each).
const CHUNKS_IN_FLIGHT: usize = 16;

/// What the producer thread ends with: the digest and size of the whole
/// uncompressed stream, or `None` when the consumer stopped reading early.
pub(crate) type Hashed = Result<Option<(String, u64)>, LayerError>;

/// Starts a thread in `scope` that decompresses `reader`, hashes every
/// uncompressed byte to EOF and hands the bytes to the returned reader.
pub(crate) fn spawn<'scope, R: Read + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    reader: R,
    declared: Compression,
) -> (ChannelReader, ScopedJoinHandle<'scope, Hashed>) {
    let (tx, rx) = sync_channel(CHUNKS_IN_FLIGHT);
    let handle = scope.spawn(move || produce(reader, declared, tx));
    (
        ChannelReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        },
        handle,
    )
}

fn produce<R: Read>(
    reader: R,
    declared: Compression,
    tx: SyncSender<io::Result<Vec<u8>>>,
) -> Hashed {
    let stream = match decompress(reader, declared) {
        Ok(stream) => stream,
        Err(err) => {
            let _ = tx.send(Err(io::Error::other("layer stream unreadable")));
            return Err(err);
        }
    };
    let mut hashed = HashingReader::new(stream);
    loop {
        let mut chunk = vec![0u8; STREAM_BUFFER];
        let n = match hashed.read(&mut chunk) {
            Ok(0) => return Ok(Some(hashed.finish())),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                // The consumer gets a copy; the original explains the failure.
                let _ = tx.send(Err(io::Error::new(err.kind(), err.to_string())));
                return Err(LayerError::Read(err));
            }
        };
        chunk.truncate(n);
        if tx.send(Ok(chunk)).is_err() {
            return Ok(None);
        }
    }
}

/// The consumer end: reads the chunks in order; EOF when the producer is done.
pub(crate) struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(err)) => return Err(err),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
