//! The tar writer behind diff: entries from files on disk, whiteout
//! markers, parent directories once, hardlinks kept, both digests.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use super::compression::{HashingWriter, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP, STREAM_BUFFER};
use super::diff::{DiffCompression, Diffed, lstat, open_nofollow};
use super::{LayerError, WHITEOUT_PREFIX, xattr};

/// The compressed (or not) output, hashed as written.
enum Sink<W: Write> {
    Plain(HashingWriter<W>),
    Gzip(Box<GzEncoder<HashingWriter<W>>>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
        }
    }
}

/// A tar builder plus what it already wrote.
pub(super) struct LayerWriter<W: Write> {
    builder: tar::Builder<HashingWriter<io::BufWriter<Sink<W>>>>,
    media_type: &'static str,
    emitted_dirs: HashSet<PathBuf>,
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> LayerWriter<W> {
    pub(super) fn new(out: W, compression: DiffCompression) -> Self {
        let (sink, media_type) = match compression {
            DiffCompression::None => (Sink::Plain(HashingWriter::new(out)), MEDIA_TYPE_LAYER),
            DiffCompression::Gzip => (
                Sink::Gzip(Box::new(GzEncoder::new(
                    HashingWriter::new(out),
                    flate2::Compression::default(),
                ))),
                MEDIA_TYPE_LAYER_GZIP,
            ),
        };
        let buffered = io::BufWriter::with_capacity(STREAM_BUFFER, sink);
        let mut builder = tar::Builder::new(HashingWriter::new(buffered));
        builder.mode(tar::HeaderMode::Complete);
        builder.follow_symlinks(false);
        Self {
            builder,
            media_type,
            emitted_dirs: HashSet::new(),
            links: HashMap::new(),
        }
    }

    /// Emits the directories from the root down to `dir` (inclusive) that are
    /// not in the layer yet, with their metadata from `upper`.
    pub(super) fn parents(&mut self, upper: &Path, dir: &Path) -> Result<(), LayerError> {
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty() && !self.emitted_dirs.contains(*a))
            .map(Path::to_owned)
            .collect();
        for ancestor in missing.iter().rev() {
            let path = upper.join(ancestor);
            let meta = lstat(&path)?;
            self.entry(&path, ancestor, &meta)?;
        }
        Ok(())
    }

    pub(super) fn whiteout(&mut self, dir: &Path, name: &OsStr) -> Result<(), LayerError> {
        let mut marker = OsString::from(WHITEOUT_PREFIX);
        marker.push(name);
        self.marker(&dir.join(marker))
    }

    /// An empty regular entry (whiteout or opaque marker).
    pub(super) fn marker(&mut self, rel: &Path) -> Result<(), LayerError> {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(0);
        header.set_mtime(0);
        self.builder
            .append_data(&mut header, rel, io::empty())
            .map_err(LayerError::Write)
    }

    /// The tar entry for `path` (at `rel` in the layer).
    pub(super) fn entry(
        &mut self,
        path: &Path,
        rel: &Path,
        meta: &Metadata,
    ) -> Result<(), LayerError> {
        let kind = meta.file_type();
        if kind.is_socket() {
            tracing::debug!(path = %path.display(), "socket not representable in a layer, skipped");
            return Ok(());
        }
        let mut header = Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        header.set_size(0);
        let attrs: Vec<(String, Vec<u8>)> = xattr::list(path)
            .map_err(LayerError::fs("list xattrs", path))?
            .into_iter()
            .filter(|(k, _)| !xattr::is_overlay_private(k.as_bytes()))
            .filter_map(|(k, v)| {
                Some((
                    format!("SCHILY.xattr.{}", String::from_utf8(k.into_vec()).ok()?),
                    v,
                ))
            })
            .collect();
        if !attrs.is_empty() {
            self.builder
                .append_pax_extensions(attrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(LayerError::Write)?;
        }
        let write = LayerError::Write;
        if kind.is_dir() {
            header.set_entry_type(EntryType::Directory);
            self.emitted_dirs.insert(rel.to_owned());
            self.builder
                .append_data(&mut header, rel, io::empty())
                .map_err(write)
        } else if kind.is_symlink() {
            header.set_entry_type(EntryType::Symlink);
            let target = fs::read_link(path).map_err(LayerError::fs("read link", path))?;
            self.builder
                .append_link(&mut header, rel, target)
                .map_err(write)
        } else if kind.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    header.set_entry_type(EntryType::Link);
                    let first = first.clone();
                    return self
                        .builder
                        .append_link(&mut header, rel, first)
                        .map_err(write);
                }
                self.links.insert(key, rel.to_owned());
            }
            header.set_entry_type(EntryType::Regular);
            header.set_size(meta.len());
            let file = open_nofollow(path)?;
            let mut data = file.take(meta.len());
            self.builder
                .append_data(&mut header, rel, &mut data)
                .map_err(write)?;
            if data.limit() != 0 {
                return Err(LayerError::Fs {
                    op: "read (file shrank while diffing)",
                    path: path.to_owned(),
                    source: io::Error::from(io::ErrorKind::UnexpectedEof),
                });
            }
            Ok(())
        } else {
            let entry_type = if kind.is_char_device() {
                EntryType::Char
            } else if kind.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            header.set_entry_type(entry_type);
            if entry_type != EntryType::Fifo {
                let rdev = meta.rdev();
                header.set_device_major(libc::major(rdev)).map_err(write)?;
                header.set_device_minor(libc::minor(rdev)).map_err(write)?;
            }
            self.builder
                .append_data(&mut header, rel, io::empty())
                .map_err(write)
        }
    }

    pub(super) fn finish(self) -> Result<Diffed, LayerError> {
        let hashed = self.builder.into_inner().map_err(LayerError::Write)?;
        let (buffered, diff_id, uncompressed_size) = hashed.finish();
        let sink = buffered
            .into_inner()
            .map_err(|e| LayerError::Write(e.into_error()))?;
        let out = match sink {
            Sink::Plain(w) => w,
            Sink::Gzip(encoder) => encoder.finish().map_err(LayerError::Write)?,
        };
        let (mut out, digest, size) = out.finish();
        out.flush().map_err(LayerError::Write)?;
        Ok(Diffed {
            media_type: self.media_type,
            digest,
            size,
            diff_id,
            uncompressed_size,
        })
    }
}
