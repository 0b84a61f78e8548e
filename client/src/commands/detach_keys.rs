//! The detach key sequence of `attach` (docker's `--detach-keys`, default
//! `ctrl-p,ctrl-q`): local input passes through unchanged until the
//! sequence arrives, which is not forwarded; the input then ends and the
//! caller is told, so it can leave the container running.

use std::io::Read;

use tokio::sync::oneshot;

/// docker's default.
pub const DEFAULT: &str = "ctrl-p,ctrl-q";

/// Parses `ctrl-p,ctrl-q` / `a,ctrl-@`: comma-separated keys, each a single
/// character or `ctrl-` plus one of `a`–`z`, `@`, `[`, `\`, `]`, `^`, `_`.
pub fn parse(spec: &str) -> Result<Vec<u8>, String> {
    let bad = |k: &str| format!("invalid detach key {k:?} (expected e.g. ctrl-p,ctrl-q)");
    spec.split(',')
        .map(|key| {
            if let Some(c) = key.strip_prefix("ctrl-") {
                match c.as_bytes() {
                    [b @ (b'a'..=b'z' | b'@' | b'[' | b'\\' | b']' | b'^' | b'_')] => {
                        Ok(b.to_ascii_uppercase() & 0x1f)
                    }
                    _ => Err(bad(key)),
                }
            } else {
                match key.as_bytes() {
                    [b] if b.is_ascii() => Ok(*b),
                    _ => Err(bad(key)),
                }
            }
        })
        .collect()
}

/// [`parse`] as a clap value parser that keeps the text.
pub fn checked(spec: &str) -> Result<String, String> {
    parse(spec).map(|_| spec.to_string())
}

/// Input that ends at the detach sequence.
pub struct DetachKeys<R> {
    inner: R,
    keys: Vec<u8>,
    /// How many keys of the sequence were just seen (held back).
    matched: usize,
    /// Bytes to hand out before reading more.
    pending: Vec<u8>,
    detached: Option<oneshot::Sender<()>>,
    done: bool,
}

impl<R: Read> DetachKeys<R> {
    /// Wraps `inner`; the receiver resolves when the sequence was typed.
    pub fn new(inner: R, keys: Vec<u8>) -> (DetachKeys<R>, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let reader = DetachKeys {
            inner,
            keys,
            matched: 0,
            pending: Vec::new(),
            detached: Some(tx),
            done: false,
        };
        (reader, rx)
    }

    /// Scans `input`, moving what is to be forwarded into `pending`.
    fn scan(&mut self, input: &[u8]) {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.done = true;
                    if let Some(tx) = self.detached.take() {
                        let _ = tx.send(());
                    }
                    return;
                }
            } else {
                // Not the sequence after all: release what was held back.
                self.pending.extend_from_slice(&self.keys[..self.matched]);
                self.matched = usize::from(b == self.keys[0]);
                if self.matched == 0 {
                    self.pending.push(b);
                }
            }
        }
    }
}

impl<R: Read> Read for DetachKeys<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.drain(..n);
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            let mut chunk = [0u8; 4096];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                // EOF: a partly typed sequence is input after all.
                self.pending.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                self.done = true;
                if self.pending.is_empty() {
                    return Ok(0);
                }
                continue;
            }
            if self.keys.is_empty() {
                self.pending.extend_from_slice(&chunk[..n]);
            } else {
                self.scan(&chunk[..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads everything, one inner read per chunk given.
    struct Chunks(Vec<Vec<u8>>);
    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let c = self.0.remove(0);
            buf[..c.len()].copy_from_slice(&c);
            Ok(c.len())
        }
    }

    fn through(chunks: &[&[u8]], keys: &str) -> (Vec<u8>, bool) {
        let inner = Chunks(chunks.iter().map(|c| c.to_vec()).collect());
        let (mut r, mut rx) = DetachKeys::new(inner, parse(keys).expect("keys"));
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        (out, rx.try_recv().is_ok())
    }

    #[test]
    fn keys_parse_like_docker() {
        assert_eq!(parse(DEFAULT), Ok(vec![0x10, 0x11]));
        assert_eq!(parse("a,ctrl-@,ctrl-_"), Ok(vec![b'a', 0, 0x1f]));
        assert!(parse("ctrl-1").is_err());
        assert!(parse("ab").is_err());
    }

    #[test]
    fn the_sequence_ends_input_and_is_not_forwarded() {
        let (out, detached) = through(&[b"ls\r\x10", b"\x11more"], DEFAULT);
        assert_eq!(out, b"ls\r");
        assert!(detached);
    }

    #[test]
    fn a_broken_sequence_is_forwarded() {
        // ctrl-p then x, ctrl-p ctrl-p ctrl-q (the first ctrl-p is input).
        let (out, detached) = through(&[b"\x10x", b"\x10\x10", b"\x11"], DEFAULT);
        assert_eq!(out, b"\x10x\x10");
        assert!(detached);
        let (out, detached) = through(&[b"a\x10"], DEFAULT);
        assert_eq!(out, b"a\x10", "a partial sequence at EOF is input");
        assert!(!detached);
    }
}
