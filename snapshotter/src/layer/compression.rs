//! Layer media types, compression detection and the hashing stream wrappers.

use std::io::{self, BufReader, Read, Write};

use sha2::{Digest, Sha256};

use super::LayerError;

/// Media type of an uncompressed OCI layer (what `Diff.Apply` reports back).
pub const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer.
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker schema 2 layer media type (always gzip).
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Read buffer for the compressed input and the decompressed stream.
pub(crate) const STREAM_BUFFER: usize = 256 * 1024;

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (RFC 1952), possibly multi-member.
    Gzip,
    /// zstd frames.
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares. An empty media type, a
    /// foreign (non-OCI, non-Docker) one, or a nondistributable variant falls
    /// back to [`Compression::None`]; the stream's magic bytes decide in the
    /// end (see [`Compression::sniff`]). Unknown `+suffix` compressions and
    /// encrypted layers are refused.
    pub fn from_media_type(media_type: &str) -> Result<Self, LayerError> {
        let unsupported = || LayerError::UnsupportedMediaType {
            media_type: media_type.to_owned(),
        };
        if media_type == MEDIA_TYPE_DOCKER_LAYER_GZIP
            || media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        {
            return Ok(Self::Gzip);
        }
        if media_type.contains("+encrypted") {
            return Err(unsupported());
        }
        match media_type.rsplit_once('+') {
            None => Ok(Self::None),
            Some((_, "gzip")) => Ok(Self::Gzip),
            Some((_, "zstd")) => Ok(Self::Zstd),
            Some(_) => Err(unsupported()),
        }
    }

    /// The compression the first bytes of a stream show (`None` when neither
    /// gzip nor zstd magic is present: a tar header starts with a file name).
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&GZIP_MAGIC) {
            Self::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Self::Zstd
        } else {
            Self::None
        }
    }
}

/// Wraps `reader` in the decompressor its magic bytes call for. The magic wins
/// over `declared` (registries and `docker save` mislabel layers); a mismatch
/// is logged.
pub(crate) fn decompress<'r, R: Read + 'r>(
    reader: R,
    declared: Compression,
) -> Result<Box<dyn Read + 'r>, LayerError> {
    let mut input = BufReader::with_capacity(STREAM_BUFFER, reader);
    let mut head = Vec::with_capacity(ZSTD_MAGIC.len());
    // A short first read is possible on pipes; read until four bytes or EOF.
    while head.len() < ZSTD_MAGIC.len() {
        let mut byte = [0u8; 4];
        let want = ZSTD_MAGIC.len() - head.len();
        let n = input.read(&mut byte[..want]).map_err(LayerError::Read)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&byte[..n]);
    }
    let actual = Compression::sniff(&head);
    if actual != declared {
        tracing::warn!(
            ?declared,
            ?actual,
            "layer compression differs from its media type"
        );
    }
    let stream = io::Cursor::new(head).chain(input);
    Ok(match actual {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(stream)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(stream).map_err(LayerError::Read)?)
        }
    })
}

/// Counts and sha256-hashes every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// `("sha256:<hex>", byte count)` of everything read so far.
    pub(crate) fn finish(self) -> (String, u64) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.bytes,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Counts and sha256-hashes every byte written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer plus `("sha256:<hex>", byte count)` of what was written.
    pub(crate) fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
