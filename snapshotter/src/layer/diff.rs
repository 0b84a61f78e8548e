//! Writing a layer: the difference of two trees, or an overlay upper dir.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use super::compression::{HashingWriter, MEDIA_TYPE_LAYER, MEDIA_TYPE_LAYER_GZIP, STREAM_BUFFER};
use super::{LayerError, OPAQUE_WHITEOUT, WHITEOUT_PREFIX, xattr};

/// Compression of a written layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffCompression {
    /// Plain tar.
    None,
    /// gzip at the default level.
    Gzip,
}

/// What [`diff()`] and [`diff_overlay_upper`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diffed {
    /// Media type of the written blob.
    pub media_type: &'static str,
    /// `sha256:<hex>` of the bytes written to the output (compressed if gzip).
    pub digest: String,
    /// Bytes written to the output.
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed tar (the diff_id, containerd's
    /// `containerd.io/uncompressed` label).
    pub diff_id: String,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

/// Writes to `out` the layer that turns tree `lower` into tree `upper`:
/// added and changed entries (with their parent directories), a `.wh.<name>`
/// for each path gone. Both are complete trees (native snapshots, mounted
/// overlays). Hardlinked files inside the layer stay hardlinked.
pub fn diff(
    lower: &Path,
    upper: &Path,
    out: impl Write,
    compression: DiffCompression,
) -> Result<Diffed, LayerError> {
    let mut writer = LayerWriter::new(out, compression);
    walk_trees(&mut writer, lower, upper, Path::new(""), true)?;
    writer.finish()
}

/// Writes to `out` the layer an overlay upper directory holds: every entry,
/// char devices 0:0 as `.wh.<name>`, directories with
/// `trusted.overlay.opaque=y` followed by `.wh..wh..opq`. (Overlay
/// `redirect_dir`/`metacopy` uppers are not supported; berth mounts without them.)
pub fn diff_overlay_upper(
    upper: &Path,
    out: impl Write,
    compression: DiffCompression,
) -> Result<Diffed, LayerError> {
    let mut writer = LayerWriter::new(out, compression);
    walk_upper(&mut writer, upper, Path::new(""))?;
    writer.finish()
}

fn walk_trees<W: Write>(
    w: &mut LayerWriter<W>,
    lower: &Path,
    upper: &Path,
    rel: &Path,
    lower_is_dir: bool,
) -> Result<(), LayerError> {
    let upper_names = sorted_names(&upper.join(rel))?;
    let lower_names = if lower_is_dir {
        sorted_names(&lower.join(rel))?
    } else {
        Vec::new()
    };
    let present: HashSet<&OsString> = upper_names.iter().collect();
    for name in lower_names.iter().filter(|n| !present.contains(n)) {
        w.parents(upper, rel)?;
        w.whiteout(rel, name)?;
    }
    for name in &upper_names {
        let child = rel.join(name);
        let upper_path = upper.join(&child);
        let meta = lstat(&upper_path)?;
        let lower_meta = if lower_is_dir {
            fs::symlink_metadata(lower.join(&child)).ok()
        } else {
            None
        };
        let changed = match &lower_meta {
            None => true,
            Some(old) => differs(&meta, old, &upper_path, &lower.join(&child))?,
        };
        if changed {
            w.parents(upper, rel)?;
            w.entry(&upper_path, &child, &meta)?;
        }
        if meta.is_dir() {
            let lower_dir = lower_meta.is_some_and(|m| m.is_dir());
            walk_trees(w, lower, upper, &child, lower_dir)?;
        }
    }
    Ok(())
}

fn walk_upper<W: Write>(
    w: &mut LayerWriter<W>,
    upper: &Path,
    rel: &Path,
) -> Result<(), LayerError> {
    for name in sorted_names(&upper.join(rel))? {
        let child = rel.join(&name);
        let path = upper.join(&child);
        let meta = lstat(&path)?;
        w.parents(upper, rel)?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            w.whiteout(rel, &name)?;
            continue;
        }
        w.entry(&path, &child, &meta)?;
        if meta.is_dir() {
            let attrs = xattr::list(&path).map_err(LayerError::fs("list xattrs", &path))?;
            let opaque = attrs.iter().any(|(k, v)| {
                (k == xattr::OVERLAY_OPAQUE || k == "user.overlay.opaque") && v.as_slice() == b"y"
            });
            if opaque {
                w.marker(&child.join(OPAQUE_WHITEOUT))?;
            }
            walk_upper(w, upper, &child)?;
        }
    }
    Ok(())
}

/// Whether `new` differs from `old` in anything a layer carries.
fn differs(
    new: &Metadata,
    old: &Metadata,
    new_path: &Path,
    old_path: &Path,
) -> Result<bool, LayerError> {
    if new.file_type() != old.file_type()
        || new.mode() != old.mode()
        || new.uid() != old.uid()
        || new.gid() != old.gid()
        || new.mtime() != old.mtime()
        || new.mtime_nsec() != old.mtime_nsec()
        || new.rdev() != old.rdev()
        || (new.is_file() && new.len() != old.len())
    {
        return Ok(true);
    }
    let attrs = |p: &Path| xattr::list(p).map_err(LayerError::fs("list xattrs", p));
    if attrs(new_path)? != attrs(old_path)? {
        return Ok(true);
    }
    if new.file_type().is_symlink() {
        let link = |p: &Path| fs::read_link(p).map_err(LayerError::fs("read link", p));
        return Ok(link(new_path)? != link(old_path)?);
    }
    // Whole-second mtimes (a tree unpacked from tar) cannot tell a rewrite
    // within the same second: compare content then.
    if new.is_file() && new.mtime_nsec() == 0 {
        return Ok(!same_content(new_path, old_path)?);
    }
    Ok(false)
}

fn same_content(a: &Path, b: &Path) -> Result<bool, LayerError> {
    let mut fa = open_nofollow(a)?;
    let mut fb = open_nofollow(b)?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(LayerError::fs("read", a))?;
        let nb = read_full(&mut fb, &mut bb).map_err(LayerError::fs("read", b))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn open_nofollow(path: &Path) -> Result<File, LayerError> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(LayerError::fs("open", path))
}

fn lstat(path: &Path) -> Result<Metadata, LayerError> {
    fs::symlink_metadata(path).map_err(LayerError::fs("stat", path))
}

fn sorted_names(dir: &Path) -> Result<Vec<OsString>, LayerError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(LayerError::fs("read dir", dir))? {
        names.push(entry.map_err(LayerError::fs("read dir", dir))?.file_name());
    }
    names.sort();
    Ok(names)
}

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
struct LayerWriter<W: Write> {
    builder: tar::Builder<HashingWriter<io::BufWriter<Sink<W>>>>,
    media_type: &'static str,
    emitted_dirs: HashSet<PathBuf>,
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> LayerWriter<W> {
    fn new(out: W, compression: DiffCompression) -> Self {
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
    fn parents(&mut self, upper: &Path, dir: &Path) -> Result<(), LayerError> {
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

    fn whiteout(&mut self, dir: &Path, name: &OsStr) -> Result<(), LayerError> {
        let mut marker = OsString::from(WHITEOUT_PREFIX);
        marker.push(name);
        self.marker(&dir.join(marker))
    }

    /// An empty regular entry (whiteout or opaque marker).
    fn marker(&mut self, rel: &Path) -> Result<(), LayerError> {
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
    fn entry(&mut self, path: &Path, rel: &Path, meta: &Metadata) -> Result<(), LayerError> {
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

    fn finish(self) -> Result<Diffed, LayerError> {
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
