//! Opening an audit log to append to it: one writer at a time. The log is locked exclusively
//! (an advisory `flock`, held for as long as the file stays open) before its chain is read, so
//! two proxies never both continue from the same head and fork the chain.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::path::Path;

/// Largest log read back to find its head.
pub const MAX_LOG_BYTES: u64 = 1 << 30;

/// Why a log cannot be appended to.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is being written by another mcplock process{holder}; one log takes one writer (give each proxy its own --audit file)"
    )]
    Busy { path: String, holder: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_LOG_BYTES} bytes; start a new log")]
    TooLarge { path: String },
}

/// The log, locked for this process, and every byte it held when it was opened.
pub struct Opened {
    pub file: File,
    pub existing: Vec<u8>,
}

/// Opens (creating it if needed) the log at `path` for appending, locked exclusively.
pub fn open_exclusive(path: &Path) -> Result<Opened, OpenError> {
    let shown = path.display().to_string();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|source| OpenError::Open {
            path: shown.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(OpenError::Busy {
                holder: holder_of(&file)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default(),
                path: shown,
            });
        }
        Err(TryLockError::Error(source)) => {
            return Err(OpenError::Open {
                path: shown,
                source,
            });
        }
    }
    let mut existing = Vec::new();
    (&file)
        .take(MAX_LOG_BYTES + 1)
        .read_to_end(&mut existing)
        .map_err(|source| OpenError::Read {
            path: shown.clone(),
            source,
        })?;
    if existing.len() as u64 > MAX_LOG_BYTES {
        return Err(OpenError::TooLarge { path: shown });
    }
    Ok(Opened { file, existing })
}

/// Whether another process holds the log's lock now (a live proxy writing it).
pub fn is_being_written(path: &Path) -> Option<String> {
    let file = File::open(path).ok()?;
    match file.try_lock_shared() {
        Err(TryLockError::WouldBlock) => Some(holder_of(&file).unwrap_or_default()),
        _ => None,
    }
}

/// The process holding a lock on `file`, from the kernel's table of locks (`/proc/locks`):
/// `pid N: its command line`. Best effort.
fn holder_of(file: &File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let inode = file.metadata().ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
        let at = fields.iter().position(|f| *f == "FLOCK")?;
        let pid = fields.get(at + 3)?;
        let device_inode = fields.get(at + 4)?;
        let lock_inode = device_inode.rsplit(':').next()?.parse::<u64>().ok()?;
        (lock_inode == inode).then(|| pid.to_string())
    })?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline: String = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some(if cmdline.is_empty() {
        format!("pid {pid}")
    } else {
        format!(
            "pid {pid}: {}",
            crate::core::text::summary_line(&cmdline, 120)
        )
    })
}

impl crate::core::code::Coded for OpenError {
    fn code(&self) -> crate::core::code::Code {
        use crate::core::code::Code;
        match self {
            // Another proxy holds the log: the arguments must give each its own.
            OpenError::Busy { .. } => Code::Usage,
            OpenError::Open { .. } | OpenError::Read { .. } | OpenError::TooLarge { .. } => {
                Code::WriteFailed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_26_a_second_writer_is_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let first = open_exclusive(&path).unwrap();
        let second = open_exclusive(&path)
            .err()
            .expect("a second writer is refused");
        let message = second.to_string();
        assert!(message.contains("another mcplock process"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(is_being_written(&path).is_some());
        drop(first);
        assert!(is_being_written(&path).is_none());
        assert!(open_exclusive(&path).is_ok());
    }
}
