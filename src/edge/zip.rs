//! ZIP archives: written deterministically, read as hostile input.
//!
//! Writing: entries sorted by name, every timestamp 1980-01-01 00:00:00, mode 0644 regular
//! file, Deflate at level 9, no extra fields, no comments. Nothing from the machine (clock,
//! umask, file modes, paths) reaches the bytes.
//!
//! Reading: the archive must start at offset 0 with no comment, have local and central headers
//! that agree, no overlapping entries, no duplicate names, a bounded number of entries, only
//! regular unencrypted files stored or deflated, and decompress within a cap (checked on the
//! bytes actually inflated, not on the sizes the archive claims).

use std::io::{Cursor, Read, Write};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// Deflate level of every member (fixed: it is part of what makes the bytes reproducible).
const DEFLATE_LEVEL: i64 = 9;
const FILE_MODE: u32 = 0o644;

/// Why an archive is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZipReadError {
    /// Not a ZIP archive at all (or one too damaged to list).
    #[error("not a readable ZIP archive: {0}")]
    Unreadable(String),
    /// A ZIP archive that breaks a rule.
    #[error("{0}")]
    Rejected(String),
}

/// Bounds on what a hostile archive may make us do.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    pub max_entries: usize,
    /// Largest inflated size of one member.
    pub max_member_bytes: u64,
    /// Largest inflated size of all members together.
    pub max_total_bytes: u64,
}

/// Writes `members` (name, bytes) as a deterministic ZIP archive.
pub fn write_deterministic(members: &[(&str, &[u8])]) -> Result<Vec<u8>, String> {
    let mut sorted: Vec<&(&str, &[u8])> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(DEFLATE_LEVEL))
        .last_modified_time(DateTime::default())
        .unix_permissions(FILE_MODE);
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in sorted {
        writer
            .start_file(*name, options)
            .map_err(|e| format!("cannot add {name} to the archive: {e}"))?;
        writer
            .write_all(bytes)
            .map_err(|e| format!("cannot add {name} to the archive: {e}"))?;
    }
    let cursor = writer
        .finish()
        .map_err(|e| format!("cannot finish the archive: {e}"))?;
    Ok(cursor.into_inner())
}

/// One member as read: its raw name and inflated bytes.
pub struct Member {
    pub name: Vec<u8>,
    pub bytes: Vec<u8>,
}

/// Reads every member of an untrusted archive, in archive order, enforcing the rules above.
/// Member names are returned raw: judging them is the caller's business.
pub fn read_hostile(bytes: &[u8], limits: ReadLimits) -> Result<Vec<Member>, ZipReadError> {
    let reject = |m: String| ZipReadError::Rejected(m);
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ZipReadError::Unreadable(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(reject(format!(
            "the archive has {} entries; a bundle has at most {}",
            archive.len(),
            limits.max_entries
        )));
    }
    if archive.offset() != 0 {
        return Err(reject(format!(
            "{} unexplained bytes precede the archive",
            archive.offset()
        )));
    }
    if !archive.comment().is_empty() {
        return Err(reject(
            "the archive has a comment, which nothing covers".into(),
        ));
    }
    if archive.has_duplicate_names() {
        return Err(reject(
            "the archive holds two entries with the same name".into(),
        ));
    }
    archive
        .validate_header_consistency()
        .map_err(|e| reject(format!("the archive's headers disagree: {e}")))?;

    let mut members = Vec::with_capacity(archive.len());
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let mut file = archive
            .by_index(index)
            .map_err(|e| reject(format!("entry #{index} cannot be read: {e}")))?;
        let name = file.name_raw().to_vec();
        let shown = || crate::core::text::escape(&String::from_utf8_lossy(&name));
        if file.encrypted() {
            return Err(reject(format!("{:?} is encrypted", shown())));
        }
        if file.is_symlink() {
            return Err(reject(format!("{:?} is a symbolic link", shown())));
        }
        if file.is_dir() {
            return Err(reject(format!("{:?} is a directory", shown())));
        }
        if let Some(mode) = file.unix_mode() {
            const S_IFMT: u32 = 0o170000;
            const S_IFREG: u32 = 0o100000;
            if mode & S_IFMT != S_IFREG && mode & S_IFMT != 0 {
                return Err(reject(format!(
                    "{:?} is not a regular file (mode {mode:o})",
                    shown()
                )));
            }
        }
        if !matches!(
            file.compression(),
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(reject(format!(
                "{:?} uses compression {}; a bundle uses only stored or deflate",
                shown(),
                file.compression()
            )));
        }
        let budget = limits
            .max_member_bytes
            .min(limits.max_total_bytes.saturating_sub(total));
        if file.size() > budget {
            return Err(reject(format!(
                "{:?} inflates to {} bytes, over the limit of {budget} (a zip bomb?)",
                shown(),
                file.size()
            )));
        }
        // The claimed size may lie: read at most one byte past the budget to find out.
        let mut data = Vec::new();
        (&mut file)
            .take(budget.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| reject(format!("{:?} cannot be inflated: {e}", shown())))?;
        if data.len() as u64 > budget {
            return Err(reject(format!(
                "{:?} inflates past the limit of {budget} bytes (a zip bomb?)",
                shown()
            )));
        }
        total += data.len() as u64;
        members.push(Member { name, bytes: data });
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ReadLimits = ReadLimits {
        max_entries: 16,
        max_member_bytes: 1 << 20,
        max_total_bytes: 2 << 20,
    };

    #[test]
    fn writing_is_deterministic_and_order_independent() {
        let a = write_deterministic(&[("b.txt", b"two"), ("a.txt", b"one")]).unwrap();
        let b = write_deterministic(&[("a.txt", b"one"), ("b.txt", b"two")]).unwrap();
        assert_eq!(a, b);
        let members = read_hostile(&a, LIMITS).unwrap();
        let names: Vec<&[u8]> = members.iter().map(|m| m.name.as_slice()).collect();
        assert_eq!(names, [b"a.txt".as_slice(), b"b.txt"]);
        assert_eq!(members[1].bytes, b"two");
    }

    #[test]
    fn written_entries_carry_fixed_metadata() {
        let bytes = write_deterministic(&[("a.txt", b"hello")]).unwrap();
        let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
        let file = archive.by_index(0).unwrap();
        assert_eq!(file.unix_mode(), Some(0o100644));
        assert_eq!(file.last_modified(), Some(DateTime::default()));
        assert_eq!(file.compression(), CompressionMethod::Deflated);
        assert!(file.extra_data().is_none_or(|e| e.is_empty()));
    }

    #[test]
    fn a_member_over_the_cap_is_refused_before_and_while_inflating() {
        let big = vec![b'a'; (2 << 20) + 10];
        let bytes = write_deterministic(&[("big", &big)]).unwrap();
        let err = read_hostile(&bytes, LIMITS).err().unwrap();
        assert!(err.to_string().contains("zip bomb"), "{err}");
    }

    #[test]
    fn garbage_is_unreadable_not_rejected() {
        assert!(matches!(
            read_hostile(b"not a zip at all", LIMITS),
            Err(ZipReadError::Unreadable(_))
        ));
    }
}
