//! Reading and writing files without losing what a user had.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is larger than {limit} bytes; refusing to read it", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already exists; refusing to overwrite it (move it away or choose another path)", path.display())]
    Exists { path: PathBuf },
    #[error("{} would be {size} bytes, more than the {limit} bytes mcplock reads back; refusing to write it", path.display())]
    WouldBeTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error(
        "private key {} is readable by group or others (mode {mode:04o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("{} changed while mcplock was rewriting it; nothing was written, run the command again", path.display())]
    Changed { path: PathBuf },
}

/// Creates `path` with `bytes`, failing if it exists (never overwrites). `mode` is applied at
/// creation, so a secret is never readable by others, not even for a moment.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let wrap = |source| FsError::Write {
        path: path.into(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                FsError::Exists { path: path.into() }
            } else {
                wrap(e)
            }
        })?;
    file.write_all(bytes).map_err(wrap)?;
    file.sync_all().map_err(wrap)
}

/// Reads a private key file, refusing one that group or others may read (checked on the open
/// file, so it cannot change between check and read). The bytes are zeroized when dropped.
pub fn read_secret(path: &Path, limit: u64) -> Result<zeroize::Zeroizing<Vec<u8>>, FsError> {
    use std::os::unix::fs::PermissionsExt;
    let read_err = |source| FsError::Read {
        path: path.into(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mode = file.metadata().map_err(read_err)?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FsError::InsecurePermissions {
            path: path.into(),
            mode,
        });
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(FsError::TooLarge {
            path: path.into(),
            limit,
        });
    }
    Ok(bytes)
}

/// Reads a whole file, refusing one larger than `limit` bytes: by its size before reading
/// anything, and again while reading (a file may grow, or report no size). `Ok(None)` when it
/// does not exist.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FsError::Read {
                path: path.into(),
                source,
            });
        }
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return Err(FsError::TooLarge {
            path: path.into(),
            limit,
        });
    }
    // Sized once (the reader below cannot see the file's size through `take`): a large file is
    // then read without the buffer being reallocated and copied as it grows.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| FsError::Read {
            path: path.into(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(FsError::TooLarge {
            path: path.into(),
            limit,
        });
    }
    Ok(Some(bytes))
}

/// The file a path names once symbolic links are followed; the last target need not exist yet
/// (a link to a lockfile not written so far).
fn through_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    // The kernel's own limit on links followed in one lookup.
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// An exclusive advisory lock (flock) on the directory that holds a file, released on drop.
/// Writers of a file in that directory that take it one after another never lose each
/// other's updates, and no lock file is left behind.
pub struct DirLock {
    _dir: File,
}

/// Takes [`DirLock`] on the directory of `path` (links followed), waiting for other holders.
pub fn lock_directory_of(path: &Path) -> Result<DirLock, FsError> {
    let resolved = through_links(path).map_err(|source| FsError::Write {
        path: path.into(),
        source,
    })?;
    let dir = match resolved.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let wrap = |source| FsError::Write {
        path: dir.clone(),
        source,
    };
    let handle = File::open(&dir).map_err(wrap)?;
    handle.lock().map_err(wrap)?;
    Ok(DirLock { _dir: handle })
}

/// Removes the temporary files [`write_atomic`] leaves when killed mid-write
/// (`.NAME.*.tmp` beside `path`) that are older than `before`. Call it holding [`DirLock`], so
/// no writer that takes the lock is using one.
pub fn remove_stale_temps(path: &Path, before: std::time::SystemTime) {
    let Ok(resolved) = through_links(path) else {
        return;
    };
    let Some(name) = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return;
    };
    let dir = match resolved.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let ours = file_name.starts_with(&prefix) && file_name.ends_with(".tmp");
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < before);
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if ours && stale && regular {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// True when `a` and `b` both exist and are the same file (links followed), so that writing
/// one would destroy the other.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// [`write_atomic`], refusing `bytes` longer than `limit` (what the matching reader accepts), so
/// nothing is written that every later command would refuse.
pub fn write_atomic_bounded(path: &Path, bytes: &[u8], limit: u64) -> Result<(), FsError> {
    if bytes.len() as u64 > limit {
        return Err(FsError::WouldBeTooLarge {
            path: path.into(),
            size: bytes.len() as u64,
            limit,
        });
    }
    write_atomic(path, bytes)
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same directory is written,
/// flushed to disk and renamed over the target, then the directory is synced. A reader (or a
/// crash at any moment) sees the old file or the new one, never a mix. An existing file's
/// permissions are kept. A symbolic link is written through: its target is replaced and the
/// link stays (a dangling link is an error).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let mut staged = Staged::new(path)?;
    staged.write_all(bytes)?;
    staged.commit()
}

/// [`write_atomic`] for a file only its owner may read or write (0600, whatever it was).
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    use std::os::unix::fs::PermissionsExt;
    let mut staged = Staged::new(path)?;
    staged
        .tmp
        .as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|source| FsError::Write {
            path: path.into(),
            source,
        })?;
    staged.write_all(bytes)?;
    staged.commit()
}

/// A replacement of a file being written (see [`write_atomic`]): written piece by piece, read
/// back if the writer wants to check it, then committed. Dropped without a commit, it leaves
/// the file as it was and removes the temporary file.
pub struct Staged {
    path: PathBuf,
    dir: PathBuf,
    tmp: tempfile::NamedTempFile,
    written: u64,
    limit: u64,
    /// The replaced file's owner (user, group), kept on the replacement.
    owner: Option<(u32, u32)>,
}

impl Staged {
    pub fn new(path: &Path) -> Result<Staged, FsError> {
        Staged::bounded(path, u64::MAX)
    }

    /// A replacement that refuses to grow past `limit` bytes (what mcplock reads back).
    pub fn bounded(path: &Path, limit: u64) -> Result<Staged, FsError> {
        let wrap = |source| FsError::Write {
            path: path.into(),
            source,
        };
        let resolved = through_links(path).map_err(wrap)?;
        let dir = match resolved.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = resolved
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let metadata = fs::metadata(&resolved).ok();
        let existing = metadata.as_ref().map(|m| m.permissions());
        let owner = metadata.as_ref().map(|m| {
            use std::os::unix::fs::MetadataExt as _;
            (m.uid(), m.gid())
        });
        // A new file gets 0666 less the umask, like any file the user creates; an existing
        // file keeps its mode.
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            fs::Permissions::from_mode(0o666)
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(mode)
            .tempfile_in(&dir)
            .map_err(wrap)?;
        if let Some(permissions) = existing {
            tmp.as_file().set_permissions(permissions).map_err(wrap)?;
        }
        Ok(Staged {
            path: resolved,
            dir,
            tmp,
            written: 0,
            limit,
            owner,
        })
    }

    fn fault(&self, source: std::io::Error) -> FsError {
        FsError::Write {
            path: self.path.clone(),
            source,
        }
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), FsError> {
        self.written += bytes.len() as u64;
        if self.written > self.limit {
            return Err(FsError::WouldBeTooLarge {
                path: self.path.clone(),
                size: self.written,
                limit: self.limit,
            });
        }
        self.tmp.write_all(bytes).map_err(|e| self.fault(e))
    }

    /// What was written so far, read from the start.
    pub fn reread(&self) -> Result<File, FsError> {
        self.tmp.reopen().map_err(|e| self.fault(e))
    }

    /// Puts the replacement in place (durably).
    pub fn commit(self) -> Result<(), FsError> {
        self.prepare()?;
        let path = self.path.clone();
        self.tmp.persist(&path).map_err(|e| FsError::Write {
            path: path.clone(),
            source: e.error,
        })?;
        sync_dir(&self.dir, &path)
    }

    /// The replacement's owner and contents made durable, ready to take the file's place.
    fn prepare(&self) -> Result<(), FsError> {
        // The replacement keeps the replaced file's owner (root rewriting a user's config must
        // not leave it root's). Only root may give a file away: for anyone else this is a
        // no-op on their own file, and fails harmlessly on another's.
        if let Some((uid, gid)) = self.owner {
            let _ = std::os::unix::fs::fchown(self.tmp.as_file(), Some(uid), Some(gid));
        }
        self.tmp.as_file().sync_all().map_err(|e| self.fault(e))
    }

    /// Puts the replacement in place only if the file still holds `expected`
    /// ([`FsError::Changed`] otherwise). Where the system swaps two files atomically (Linux's
    /// RENAME_EXCHANGE), this is decided at the rename itself: the replacement and the file
    /// are swapped, the file swapped out is compared with `expected` and swapped back when it
    /// differs, so an edit saved before the swap is never lost. Elsewhere the file is compared
    /// just before the rename.
    pub fn commit_if_unchanged(self, expected: &[u8]) -> Result<(), FsError> {
        self.prepare()?;
        let holds_expected = |path: &Path| -> Result<bool, FsError> {
            let limit = expected.len() as u64 + 1;
            Ok(read_bounded(path, limit)
                .or_else(|e| match e {
                    FsError::TooLarge { .. } => Ok(None),
                    e => Err(e),
                })?
                .is_some_and(|bytes| bytes == expected))
        };
        if swap(self.tmp.path(), &self.path).is_ok() {
            // The file as it was is now at the temporary path (removed when `self` drops).
            if holds_expected(self.tmp.path())? {
                return sync_dir(&self.dir, &self.path);
            }
            swap(self.tmp.path(), &self.path).map_err(|e| self.fault(e))?;
            return Err(FsError::Changed { path: self.path });
        }
        if !holds_expected(&self.path)? {
            return Err(FsError::Changed { path: self.path });
        }
        self.commit()
    }
}

fn sync_dir(dir: &Path, path: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| FsError::Write {
            path: path.into(),
            source,
        })
}

/// Exchanges two paths atomically, where the system can.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn swap(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn swap(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// A [`Staged`] replacement as an `io::Write` (a limit passed is an error of kind `Other`
/// carrying the [`FsError`]).
impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Staged::write_all(self, buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

impl crate::core::code::Coded for FsError {
    fn code(&self) -> crate::core::code::Code {
        use crate::core::code::Code;
        match self {
            FsError::Read { .. } | FsError::TooLarge { .. } => Code::InputUnreadable,
            FsError::Write { .. } | FsError::WouldBeTooLarge { .. } => Code::WriteFailed,
            FsError::Exists { .. } => Code::OutputExists,
            FsError::InsecurePermissions { .. } => Code::KeyInvalid,
            FsError::Changed { .. } => Code::ConfigChangedUnderUs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 27: a replacement takes the file's place only if the file still holds what was
    /// read; an edit saved meanwhile stays, and no temporary file is left either way.
    #[test]
    fn a_replacement_is_committed_only_over_the_text_it_was_made_from() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "read").unwrap();
        let mut staged = Staged::new(&path).unwrap();
        staged.write_all(b"rewritten").unwrap();
        // Another program saves the file after mcplock read it.
        fs::write(&path, "edited").unwrap();
        let error = staged.commit_if_unchanged(b"read").unwrap_err();
        assert!(matches!(error, FsError::Changed { .. }), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "edited");
        let mut staged = Staged::new(&path).unwrap();
        staged.write_all(b"rewritten").unwrap();
        staged.commit_if_unchanged(b"edited").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "rewritten");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    /// Issue 27: a config rewritten by root keeps its owner (as root, the file is given to
    /// another user first; as anyone else, their own file stays theirs).
    #[test]
    fn a_replaced_file_keeps_its_owner() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_atomic(&path, b"{}\n").unwrap();
        // Giving the file away succeeds only with the privilege to (root).
        let root = std::os::unix::fs::chown(&path, Some(12345), Some(12346)).is_ok();
        let (uid, gid) = if root {
            (12345, 12346)
        } else {
            let m = fs::metadata(&path).unwrap();
            (m.uid(), m.gid())
        };
        write_atomic(&path, b"{\"a\": 1}\n").unwrap();
        let m = fs::metadata(&path).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid));
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\": 1}\n");
    }

    #[test]
    fn writes_replaces_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp-lock.json");
        write_atomic(&path, b"one\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\n");
        let fresh = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(fresh & 0o600, 0o600, "{fresh:o}");
        assert_eq!(fresh & 0o111, 0, "{fresh:o}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind");
    }

    #[test]
    fn secrets_are_created_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_new(&path, b"secret", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            write_new(&path, b"other", 0o600),
            Err(FsError::Exists { .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        assert_eq!(read_secret(&path, 100).unwrap().as_slice(), b"secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret(&path, 100).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn regression_issue_13_a_symlinked_file_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.json");
        let link = dir.path().join("mcp-lock.json");
        fs::write(&target, b"old\n").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new\n").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&target).unwrap(), b"new\n");
        // A link to a file not written yet: the file is created, the link kept.
        let fresh = dir.path().join("fresh");
        std::os::unix::fs::symlink("later.json", &fresh).unwrap();
        write_atomic(&fresh, b"x").unwrap();
        assert_eq!(fs::read(dir.path().join("later.json")).unwrap(), b"x");
        // A link into a directory that does not exist cannot be written.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere/x"), &dangling).unwrap();
        assert!(write_atomic(&dangling, b"x").is_err());
        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &looped).unwrap();
        assert!(write_atomic(&looped, b"x").is_err());
        assert!(same_file(&link, &target));
        assert!(!same_file(&link, &dangling));
        assert!(matches!(
            write_atomic_bounded(&target, b"0123", 3),
            Err(FsError::WouldBeTooLarge { size: 4, .. })
        ));
        assert_eq!(fs::read(&target).unwrap(), b"new\n");
    }

    #[test]
    fn stale_temporary_files_are_removed_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp-lock.json");
        let stale = dir.path().join(".mcp-lock.json.abc123.tmp");
        let other = dir.path().join(".other.json.abc123.tmp");
        fs::write(&stale, b"half").unwrap();
        fs::write(&other, b"not ours").unwrap();
        let _lock = lock_directory_of(&path).unwrap();
        // Written before "now": stale.
        remove_stale_temps(
            &path,
            std::time::SystemTime::now() + std::time::Duration::from_secs(5),
        );
        assert!(!stale.exists());
        assert!(other.exists());
        fs::write(&stale, b"in flight").unwrap();
        remove_stale_temps(
            &path,
            std::time::SystemTime::now() - std::time::Duration::from_secs(60),
        );
        assert!(stale.exists(), "a temp file newer than the run was removed");
    }

    #[test]
    fn bounded_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(read_bounded(&path, 10).unwrap().is_none());
        fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap().unwrap().len(), 10);
        assert!(matches!(
            read_bounded(&path, 9),
            Err(FsError::TooLarge { .. })
        ));
    }
}
