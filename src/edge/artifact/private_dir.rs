//! The directory a locked launch is copied into and run from. It is removed when its value is
//! dropped; a process that is killed (SIGKILL, an out-of-memory kill) cannot do that, and a copy
//! of a virtual environment is a hundred megabytes, so every directory holds an advisory lock
//! (`flock`) for as long as its process lives — the kernel releases it however the process
//! ends — and each new one first removes the directories of processes that are gone.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const PREFIX: &str = "mcplock-run-";
/// Inside each directory; locked by its process for as long as it lives.
const OWNER: &str = ".mcplock-run.lock";
/// A directory without its lock file (made by a process killed before it took the lock, or by
/// a version of mcplock that took none) is left alone until it is this old.
const UNLOCKED_GRACE: Duration = Duration::from_secs(3600);
/// At most this many left-over directories are removed by one start, so a start stays quick
/// whatever was left behind.
const SWEEP_AT_MOST: usize = 16;

/// A new directory only this process can read or write, removed when dropped.
pub struct PrivateDir {
    dir: tempfile::TempDir,
    _owner: File,
}

impl PrivateDir {
    /// In `$XDG_RUNTIME_DIR` (the user's own, in memory on a desktop: copying a package tree
    /// there is about ten times faster than onto a disk) when there is one, else in the system's
    /// temporary directory; left-overs of dead processes there are removed first.
    pub fn new() -> Result<PrivateDir, String> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute() && dir.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        sweep(&base, SystemTime::now());
        PrivateDir::new_in(&base)
    }

    fn new_in(base: &Path) -> Result<PrivateDir, String> {
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(base)
            .map_err(|e| {
                format!(
                    "cannot make a private directory to run from in {}: {e}",
                    base.display()
                )
            })?;
        let owner = dir.path().join(OWNER);
        let file = File::create_new(&owner)
            .map_err(|e| format!("cannot create {}: {e}", owner.display()))?;
        file.try_lock()
            .map_err(|e| format!("cannot lock {}: {e}", owner.display()))?;
        Ok(PrivateDir { dir, _owner: file })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes (at most [`SWEEP_AT_MOST`]) directories of ours in `base` whose process is gone.
/// Best effort: what cannot be read or removed is left for a later start.
fn sweep(base: &Path, now: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if removed == SWEEP_AT_MOST {
            break;
        }
        let name = entry.file_name();
        let is_ours = name.to_str().is_some_and(|n| n.starts_with(PREFIX));
        // Not followed: a link named like ours is not ours.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_ours
            && is_dir
            && abandoned(&entry.path(), now)
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Whether no living process holds `dir`: its lock file can be locked, or it has none and is
/// older than [`UNLOCKED_GRACE`].
fn abandoned(dir: &Path, now: SystemTime) -> bool {
    match File::open(dir.join(OWNER)) {
        Ok(file) => match file.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock | TryLockError::Error(_)) => false,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > UNLOCKED_GRACE),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_swept_once_its_process_is_gone_and_never_while_it_lives() {
        let base = tempfile::tempdir().unwrap();
        let alive = PrivateDir::new_in(base.path()).unwrap();
        let dead = PrivateDir::new_in(base.path()).unwrap();
        std::fs::write(dead.path().join("copy"), "a copied file").unwrap();
        let dead_path = dead.path().to_path_buf();
        // A killed process: its lock released, its directory left behind.
        let PrivateDir { dir, _owner } = dead;
        drop(_owner);
        let _ = dir.keep();
        // Someone else's directory and a young one without a lock are not touched.
        std::fs::create_dir(base.path().join("other-dir")).unwrap();
        let young = base.path().join(format!("{PREFIX}young"));
        std::fs::create_dir(&young).unwrap();

        assert_eq!(sweep(base.path(), SystemTime::now()), 1);
        assert!(!dead_path.exists());
        assert!(alive.path().join(OWNER).exists());
        assert!(base.path().join("other-dir").exists());
        assert!(young.exists());
        // An hour later the one without a lock goes too; the living one still stays.
        let later = SystemTime::now() + UNLOCKED_GRACE + Duration::from_secs(1);
        assert_eq!(sweep(base.path(), later), 1);
        assert!(!young.exists());
        assert!(alive.path().exists());
        let path = alive.path().to_path_buf();
        drop(alive);
        assert!(!path.exists());
    }
}
