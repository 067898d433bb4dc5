//! ZIP archives: written deterministically, read as hostile input.
//!
//! Writing: entries sorted by name, every timestamp 1980-01-01 00:00:00, mode 0644 regular
//! file, Deflate at level 9, no extra fields, no comments. Nothing from the machine (clock,
//! umask, file modes, paths) reaches the bytes.
//!
//! Reading: the archive must start at offset 0 with no comment, have local and central headers
//! that agree, no overlapping entries, no duplicate names, a bounded number of entries sorted by
//! name, only regular unencrypted files with exactly the metadata written above, and decompress
//! within a cap (checked on the bytes actually inflated, not on the sizes the archive claims).

use std::io::{Cursor, Read, Write};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// Deflate level of every member (fixed: it is part of what makes the bytes reproducible).
const DEFLATE_LEVEL: i64 = 9;
const FILE_MODE: u32 = 0o644;
/// What the zip crate records for a deflated, non-zip64 member written on Unix.
const CANONICAL_MADE_BY: (u8, u8) = (2, 0);
const CANONICAL_NEEDED: u16 = 20;

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
    /// Largest inflated size of all members together.
    pub max_total_bytes: u64,
    /// Judges a raw member name before anything is inflated: the largest inflated size that
    /// member may have, or why the name is refused.
    pub admit: fn(&[u8]) -> Result<u64, String>,
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
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| ZipReadError::Unreadable(e.to_string()))?;
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
    check_end_record(bytes, archive.len(), archive.central_directory_start()).map_err(reject)?;
    archive
        .validate_header_consistency()
        .map_err(|e| reject(format!("the archive's headers disagree: {e}")))?;

    let mut members = Vec::with_capacity(archive.len());
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        // Judge the entry from its headers alone (the raw reader works even for an entry that
        // cannot be decrypted or inflated), then inflate it under a budget.
        let (name, claimed) = {
            let file = archive
                .by_index_raw(index)
                .map_err(|e| reject(format!("entry #{index} cannot be read: {e}")))?;
            let name = file.name_raw().to_vec();
            let shown = crate::core::text::escape(&String::from_utf8_lossy(&name));
            check_kind(&file, &shown).map_err(reject)?;
            (limits.admit)(&name).map_err(reject)?;
            check_canonical(&file, &shown).map_err(reject)?;
            (name, file.size())
        };
        let shown = crate::core::text::escape(&String::from_utf8_lossy(&name));
        if let Some(previous) = members.last().map(|m: &Member| &m.name)
            && *previous >= name
        {
            return Err(reject(format!(
                "{shown:?} is out of order; a bundle's entries are sorted by name"
            )));
        }
        let member_cap = (limits.admit)(&name).map_err(reject)?;
        let budget = member_cap.min(limits.max_total_bytes.saturating_sub(total));
        if claimed > budget {
            return Err(reject(format!(
                "{shown:?} inflates to {claimed} bytes, over the limit of {budget} (a zip bomb?)"
            )));
        }
        let file = archive
            .by_index(index)
            .map_err(|e| reject(format!("{shown:?} cannot be read: {e}")))?;
        // The claimed size may lie: read at most one byte past the budget to find out.
        let mut data = Vec::new();
        file.take(budget.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| reject(format!("{shown:?} cannot be inflated: {e}")))?;
        if data.len() as u64 > budget {
            return Err(reject(format!(
                "{shown:?} inflates past the limit of {budget} bytes (a zip bomb?)"
            )));
        }
        total += data.len() as u64;
        members.push(Member { name, bytes: data });
    }
    check_exact_layout(bytes, &members).map_err(reject)?;
    Ok(members)
}

/// Every byte of the archive must be what `write_deterministic` writes for these members:
/// the archive is written again from the inflated members and must come out identical. A stub
/// glued in front with shifted offsets, junk between members or before the central directory,
/// fields or flags only a local header carries, other version, host, attribute or disk fields,
/// and Deflate streams other than the writer's own (another encoding of the same content, or
/// stray bits after the last block) are all refused. This ties a bundle to the compressor's
/// exact output (zlib-rs, level 9); testdata/bundles holds a golden bundle whose test fails
/// if a dependency update ever changes it.
fn check_exact_layout(bytes: &[u8], members: &[Member]) -> Result<(), String> {
    let entries: Vec<(&str, &[u8])> = members
        .iter()
        .map(|m| {
            std::str::from_utf8(&m.name)
                .map(|name| (name, m.bytes.as_slice()))
                .map_err(|_| "a member name is not UTF-8".to_string())
        })
        .collect::<Result<_, _>>()?;
    let own = write_deterministic(&entries)?;
    if own != bytes {
        let at = own
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(own.len().min(bytes.len()));
        return Err(format!(
            "byte {at} is not what mcplock writes for these members ({} bytes, {} expected): extra, moved or altered bytes",
            bytes.len(),
            own.len()
        ));
    }
    Ok(())
}

/// The end-of-central-directory record must be the archive's last 22 bytes and agree exactly
/// with the central directory the reader found: readers that locate the directory differently
/// (from this record, or by scanning) then all see the same archive.
fn check_end_record(bytes: &[u8], entries: usize, directory_start: u64) -> Result<(), String> {
    const SIZE: usize = 22;
    let bad = |what: &str| Err(format!("the end-of-central-directory record {what}"));
    let Some(start) = bytes.len().checked_sub(SIZE) else {
        return bad("is missing");
    };
    let record = &bytes[start..];
    let u16_at = |i: usize| u16::from_le_bytes([record[i], record[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([record[i], record[i + 1], record[i + 2], record[i + 3]]);
    if record[..4] != *b"PK\x05\x06" {
        return bad("is not at the end of the file");
    }
    if u16_at(4) != 0 || u16_at(6) != 0 {
        return bad("names another disk");
    }
    let count = u16::try_from(entries).unwrap_or(u16::MAX);
    if u16_at(8) != count || u16_at(10) != count {
        return bad("counts other entries than the central directory holds");
    }
    let (size, offset) = (u64::from(u32_at(12)), u64::from(u32_at(16)));
    if offset != directory_start || offset + size != start as u64 {
        return bad("does not locate the central directory where it is");
    }
    if u16_at(20) != 0 {
        return bad("carries a comment");
    }
    Ok(())
}

/// Only regular, unencrypted files.
fn check_kind<R: Read>(file: &zip::read::ZipFile<'_, R>, shown: &str) -> Result<(), String> {
    if file.encrypted() {
        return Err(format!("{shown:?} is encrypted"));
    }
    if file.is_symlink() {
        return Err(format!("{shown:?} is a symbolic link"));
    }
    if file.is_dir() {
        return Err(format!("{shown:?} is a directory"));
    }
    Ok(())
}

/// Exactly the metadata [`write_deterministic`] writes: nothing in the headers can vary
/// while the members stay the same (what a hash of the members cannot cover).
fn check_canonical<R: Read>(file: &zip::read::ZipFile<'_, R>, shown: &str) -> Result<(), String> {
    let odd = |what: String| {
        Err(format!(
            "{shown:?} is not in the canonical form mcplock writes: {what}"
        ))
    };
    if file.compression() != CompressionMethod::Deflated {
        return odd(format!("compression {}", file.compression()));
    }
    // The high half is the Unix mode (a regular file, 0644); the low half the MS-DOS
    // attributes, none set.
    if file.external_attributes() != (0o100000 | FILE_MODE) << 16 {
        return odd(format!(
            "external attributes {:#010x}",
            file.external_attributes()
        ));
    }
    if file.last_modified() != Some(DateTime::default()) {
        return odd("a timestamp other than 1980-01-01 00:00:00".into());
    }
    if file.flags().as_u16() != 0 {
        return odd(format!(
            "general-purpose flags {:#06x}",
            file.flags().as_u16()
        ));
    }
    if file.extra_data().is_some_and(|e| !e.is_empty()) || !file.comment().is_empty() {
        return odd("extra fields or a comment".into());
    }
    // The host system (the high byte of "version made by"; found missing by fuzzing).
    if file.system() != zip::System::Unix {
        return odd(format!("made on host system {:?}", file.system()));
    }
    if file.version_made_by() != CANONICAL_MADE_BY || file.version_needed() != CANONICAL_NEEDED {
        return odd(format!(
            "version made by {:?}, needed {}",
            file.version_made_by(),
            file.version_needed()
        ));
    }
    Ok(())
}

impl crate::core::code::Coded for ZipReadError {
    fn code(&self) -> crate::core::code::Code {
        // The only archives mcplock reads are audit bundles.
        crate::core::code::Code::BundleInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ReadLimits = ReadLimits {
        max_entries: 16,
        max_total_bytes: 2 << 20,
        admit: |name| {
            if name.starts_with(b"bad") {
                Err("bad name".into())
            } else {
                Ok(1 << 20)
            }
        },
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
        let big = vec![b'a'; (1 << 20) + 10];
        let bytes = write_deterministic(&[("big", &big)]).unwrap();
        let err = read_hostile(&bytes, LIMITS).err().unwrap();
        assert!(err.to_string().contains("zip bomb"), "{err}");
    }

    #[test]
    fn names_are_judged_before_inflating() {
        let bytes = write_deterministic(&[("bad.txt", b"x")]).unwrap();
        assert_eq!(
            read_hostile(&bytes, LIMITS).err(),
            Some(ZipReadError::Rejected("bad name".into()))
        );
    }

    #[test]
    fn garbage_is_unreadable_not_rejected() {
        assert!(matches!(
            read_hostile(b"not a zip at all", LIMITS),
            Err(ZipReadError::Unreadable(_))
        ));
    }
}
