//! Path resolution confined to a target root, and the fd-relative primitives
//! apply builds on.
//!
//! Every directory is opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
//! relative to an fd of the root: the kernel resolves `..` and symlinks
//! (absolute or relative) as if the root were `/`, atomically, so neither a
//! symlink an earlier entry planted nor a concurrent rename can lead outside.
//! The last component of an entry is never resolved: it is created, inspected
//! or removed with `*at` calls relative to its parent's fd, without following.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// How often `openat2` is retried when the kernel reports a concurrent
/// rename (`EAGAIN`) during an in-root resolution.
const RESOLVE_RETRIES: usize = 16;
/// Mode of parent directories a layer implies but does not list.
const IMPLIED_DIR_MODE: u32 = 0o755;
/// Dangling symlinks followed while creating one parent path (Linux's own
/// limit for symlinks in a path is 40).
const MAX_DANGLING_HOPS: usize = 40;

/// `name` as a path relative to the root: a leading `/` is dropped (confined,
/// as if the root were `/`), `.` and empty components vanish, `..` pops a
/// component. `None` when `..` would climb above the root.
pub(crate) fn normalize(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(part) => out.push(part),
        }
    }
    Some(out)
}

/// The last component of a normalized non-empty path and its parent.
pub(crate) fn split(rel: &Path) -> (&Path, &OsStr) {
    let base = rel.file_name().unwrap_or(OsStr::new(""));
    (rel.parent().unwrap_or(Path::new("")), base)
}

/// An open target root.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens `path` (which must be a directory) as the root of all resolution.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { fd })
    }

    /// The directory `rel` resolved inside the root, as an `O_PATH` fd usable
    /// as the `dirfd` of `*at` calls.
    pub(crate) fn dir(&self, rel: &Path) -> io::Result<OwnedFd> {
        resolve(self.fd.as_fd(), rel)
    }

    /// Like [`Root::dir`], creating missing components (mode 0755, owned by
    /// the caller). Each prefix is resolved from the root again, so a symlink
    /// among the components is confined exactly as in [`Root::dir`]. A
    /// dangling symlink among them is followed (in the root) and its missing
    /// target created, as containerd does (`var/run -> /run` without `/run`).
    pub(crate) fn dir_create(&self, rel: &Path) -> io::Result<OwnedFd> {
        match self.dir(rel) {
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
            other => return other,
        }
        let mut wanted = rel.to_owned();
        for _ in 0..MAX_DANGLING_HOPS {
            match self.create_walk(&wanted)? {
                Walk::Done(fd) => return Ok(fd),
                Walk::Dangling(next) => wanted = next,
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    /// One pass of [`Root::dir_create`]: creates components until done or
    /// until a dangling symlink, whose substitute path it returns.
    fn create_walk(&self, wanted: &Path) -> io::Result<Walk> {
        let mut current = resolve(self.fd.as_fd(), Path::new(""))?;
        let mut prefix = PathBuf::new();
        let components: Vec<&OsStr> = wanted.iter().collect();
        for (index, component) in components.iter().enumerate() {
            let parent = prefix.clone();
            prefix.push(component);
            current = match resolve(self.fd.as_fd(), &prefix) {
                Ok(fd) => fd,
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                    match mkdirat(
                        &current,
                        *component,
                        Mode::from_bits_truncate(IMPLIED_DIR_MODE),
                    ) {
                        Ok(()) => {}
                        Err(Errno::EEXIST) => {
                            // Exists but does not resolve: a dangling symlink.
                            let target = nix::fcntl::readlinkat(&current, *component)?;
                            let rest: PathBuf = components[index + 1..].iter().collect();
                            // An absolute target restarts at the root; a
                            // relative one at the link's directory. `..` is
                            // left to openat2, which knows the real parents.
                            return Ok(Walk::Dangling(parent.join(target).join(rest)));
                        }
                        Err(err) => return Err(err.into()),
                    }
                    resolve(self.fd.as_fd(), &prefix)?
                }
                Err(err) => return Err(err),
            };
        }
        Ok(Walk::Done(current))
    }
}

/// Outcome of one [`Root::create_walk`].
enum Walk {
    Done(OwnedFd),
    Dangling(PathBuf),
}

/// `openat2` of directory `rel` below `root` with the root as `/`.
fn resolve(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut attempt = 0;
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN) if attempt < RESOLVE_RETRIES => attempt += 1,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<FileStat>> {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::ENOENT) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Whether a stat describes a directory.
pub(crate) fn is_dir(stat: &FileStat) -> bool {
    stat.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Opens directory `name` in `dir` for reading, refusing to follow a symlink.
pub(crate) fn open_subdir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Removes `name` in `dir` and, if it is a directory, everything below it;
/// nothing is followed. A missing `name` is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let Some(stat) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if is_dir(&stat) {
        let sub = open_subdir(dir, name)?;
        for child in child_names(sub.as_fd())? {
            remove_all_at(sub.as_fd(), &child)?;
        }
        ignore_missing(unlinkat(dir, name, UnlinkatFlags::RemoveDir))
    } else {
        ignore_missing(unlinkat(dir, name, UnlinkatFlags::NoRemoveDir))
    }
}

/// Removes everything below directory `dir` (at `rel`) except the paths in
/// `keep` (and what lies below a kept directory that is itself kept): the
/// opaque-directory rule for a tree without overlay.
pub(crate) fn retain_at(
    dir: BorrowedFd<'_>,
    rel: &Path,
    keep: &HashSet<PathBuf>,
) -> io::Result<()> {
    for child in child_names(dir)? {
        let child_rel = rel.join(&child);
        if !keep.contains(&child_rel) {
            remove_all_at(dir, &child)?;
            continue;
        }
        if let Some(stat) = lstat_at(dir, &child)?
            && is_dir(&stat)
        {
            let sub = open_subdir(dir, &child)?;
            retain_at(sub.as_fd(), &child_rel, keep)?;
        }
    }
    Ok(())
}

/// The names in directory `dir` (an fd opened for reading), without `.`/`..`.
pub(crate) fn child_names(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    let dup = dir.try_clone_to_owned()?;
    // A duplicated fd shares the directory offset: rewind before listing.
    nix::unistd::lseek(&dup, 0, nix::unistd::Whence::SeekSet)?;
    let mut listing = nix::dir::Dir::from_fd(dup)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

fn ignore_missing(result: nix::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Creates a node of type `kind` (char, block, fifo) named `name` in `dir`.
pub(crate) fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: SFlag,
    dev: libc::dev_t,
) -> io::Result<()> {
    Ok(nix::sys::stat::mknodat(
        dir,
        name,
        kind,
        Mode::from_bits_truncate(0o600),
        dev,
    )?)
}
