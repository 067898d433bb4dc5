//! Hashing what runs by content: every file of a package directory, a dependency tree, a
//! site-packages, or the importable neighbours of a script, path and bytes, in a fixed order,
//! within one budget of files and bytes per artifact.
//!
//! A part's digest is `sha256:` over, for each file in byte order of its path relative to the
//! part's root: the path's length (u64, big-endian), the path, and the sha256 of its bytes.
//! Paths are relative, so the same files elsewhere give the same digest. A link to a file is
//! hashed as the file it names (that is what an import reads); a link to a directory, and
//! anything but a file or a directory (a FIFO would block a reader), is refused: its content
//! could not be pinned. Python bytecode (`.pyc`) is hashed without its source timestamp
//! (bytes 8..12 of a timestamp-based header): Python uses that field only to decide whether
//! the bytecode is stale, and it differs between two installs of the same wheel.

use crate::core::artifact::Part;
use crate::core::bundle::hex;
use sha2::{Digest as _, Sha256};
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

/// The most files, and bytes, hashed for one artifact (all its parts together).
pub const MAX_CONTENT_FILES: u64 = 100_000;
pub const MAX_CONTENT_BYTES: u64 = 2 << 30;

/// What is left to hash for one artifact.
pub struct Budget {
    files: u64,
    bytes: u64,
}

impl Budget {
    pub fn new() -> Budget {
        Budget {
            files: MAX_CONTENT_FILES,
            bytes: MAX_CONTENT_BYTES,
        }
    }

    fn take_file(&mut self, path: &Path) -> Result<(), String> {
        self.files = self.files.checked_sub(1).ok_or_else(|| {
            format!(
                "more than {MAX_CONTENT_FILES} files to pin by content (at {}): too large to pin; run the server from a directory or environment of its own",
                path.display()
            )
        })?;
        Ok(())
    }
}

/// The files of one part, each (path relative to the part's root, sha256 of its bytes).
#[derive(Default)]
pub struct Files {
    entries: Vec<(Vec<u8>, [u8; 32], u64)>,
    /// Each file is also written here, under its relative path, from the very bytes hashed.
    copy_to: Option<PathBuf>,
}

impl Files {
    /// Files that are copied, as they are hashed, under `root` (a directory only this
    /// process writes): the copy holds exactly the bytes the part's digest covers.
    pub fn copying_to(root: &Path) -> Files {
        Files {
            entries: Vec::new(),
            copy_to: Some(root.to_path_buf()),
        }
    }

    /// The part: its digest over the sorted entries, with counts.
    pub fn into_part(mut self) -> Part {
        self.entries.sort();
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        for (path, digest, size) in &self.entries {
            hasher.update((path.len() as u64).to_be_bytes());
            hasher.update(path);
            hasher.update(digest);
            bytes = bytes.saturating_add(*size);
        }
        Part {
            digest: format!("sha256:{}", hex(&hasher.finalize())),
            files: self.entries.len() as u64,
            bytes,
        }
    }

    /// Adds the file at `path` under the name `rel`.
    pub fn add_file(&mut self, path: &Path, rel: &Path, budget: &mut Budget) -> Result<(), String> {
        budget.take_file(path)?;
        let (digest, size) = match &self.copy_to {
            None => hash_file(path, budget)?,
            Some(root) => {
                let target = root.join(rel);
                let io = |e: std::io::Error| format!("{}: {e}", target.display());
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let mut copy = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(io)?;
                hash_file_into(path, budget, Some(&mut copy))?
            }
        };
        self.entries
            .push((rel.as_os_str().as_bytes().to_vec(), digest, size));
        Ok(())
    }

    /// Adds bytes already read under the name `rel`.
    pub fn add_bytes(
        &mut self,
        rel: &Path,
        bytes: &[u8],
        budget: &mut Budget,
    ) -> Result<(), String> {
        budget.take_file(rel)?;
        let size = bytes.len() as u64;
        budget.bytes = budget.bytes.checked_sub(size).ok_or_else(|| {
            format!("more than {MAX_CONTENT_BYTES} bytes to pin by content: too large to pin")
        })?;
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        self.entries
            .push((rel.as_os_str().as_bytes().to_vec(), digest, size));
        Ok(())
    }

    /// Adds every file under `root` (recursively), named relative to `root`, except the
    /// paths `skip` says to leave out (a skipped directory is not entered).
    pub fn add_tree(
        &mut self,
        root: &Path,
        skip: &dyn Fn(&Path) -> bool,
        budget: &mut Budget,
    ) -> Result<(), String> {
        let mut pending = vec![PathBuf::new()];
        while let Some(rel) = pending.pop() {
            let dir = root.join(&rel);
            let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
                let rel = rel.join(entry.file_name());
                if skip(&rel) {
                    continue;
                }
                let path = entry.path();
                match entry_kind(&path)? {
                    EntryKind::Dir => pending.push(rel),
                    EntryKind::File => self.add_file(&path, &rel, budget)?,
                }
            }
        }
        Ok(())
    }
}

enum EntryKind {
    Dir,
    File,
}

/// A directory (not through a link), or a file (through links).
fn entry_kind(path: &Path) -> Result<EntryKind, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        return Ok(EntryKind::Dir);
    }
    if meta.file_type().is_symlink() {
        let target = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if target.is_file() {
            return Ok(EntryKind::File);
        }
        return Err(format!(
            "{} is a link to a directory (or to something that is not a file): what runs through it is not pinned by content; install without links",
            path.display()
        ));
    }
    if meta.is_file() {
        return Ok(EntryKind::File);
    }
    Err(format!(
        "{} is neither a file nor a directory: it cannot be pinned by content",
        path.display()
    ))
}

/// The sha256 of a file's bytes (a `.pyc` without its source timestamp), and its size,
/// charged to the budget.
pub fn hash_file(path: &Path, budget: &mut Budget) -> Result<([u8; 32], u64), String> {
    hash_file_into(path, budget, None)
}

/// [`hash_file`], also writing every byte read to `copy` (the header of a `.pyc` as it is).
pub fn hash_file_into(
    path: &Path,
    budget: &mut Budget,
    mut copy: Option<&mut dyn std::io::Write>,
) -> Result<([u8; 32], u64), String> {
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let mut reader = file.take(budget.bytes.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    if path.extension().is_some_and(|x| x == "pyc") {
        let mut header = [0u8; 16];
        let n = read_full(&mut reader, &mut header).map_err(io)?;
        let timestamped = n == 16 && header[4..8] == [0, 0, 0, 0];
        if timestamped {
            hasher.update(&header[..8]);
            hasher.update(&header[12..]);
        } else {
            hasher.update(&header[..n]);
        }
        if let Some(copy) = copy.as_mut() {
            copy.write_all(&header[..n]).map_err(io)?;
        }
        size += n as u64;
    }
    size += match copy {
        None => std::io::copy(&mut reader, &mut hasher).map_err(io)?,
        Some(copy) => std::io::copy(
            &mut reader,
            &mut Tee {
                hasher: &mut hasher,
                copy,
            },
        )
        .map_err(io)?,
    };
    budget.bytes = budget.bytes.checked_sub(size).ok_or_else(|| {
        format!(
            "more than {MAX_CONTENT_BYTES} bytes to pin by content (at {}): too large to pin",
            path.display()
        )
    })?;
    Ok((hasher.finalize().into(), size))
}

/// Writes to the hasher and the copy alike.
struct Tee<'a> {
    hasher: &'a mut Sha256,
    copy: &'a mut dyn std::io::Write,
}

impl std::io::Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.copy.write_all(buf)?;
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.copy.flush()
    }
}

fn read_full(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// One file as a part of its own.
pub fn file_part(path: &Path, budget: &mut Budget) -> Result<Part, String> {
    let mut files = Files::default();
    let name = path.file_name().map_or_else(PathBuf::new, PathBuf::from);
    files.add_file(path, &name, budget)?;
    Ok(files.into_part())
}

/// Whether `name` can be a Python module or package name (an identifier).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Whether a top-level entry of a directory on `sys.path` can be imported from it ahead of
/// the standard library: `NAME.py`, `NAME.pyc`, `NAME.pyw`, an extension module
/// (`NAME.so`, `NAME.<tag>.so`), a regular package (a directory with `__init__`), or the
/// bytecode cache of the modules beside it (`__pycache__`).
pub fn python_importable(dir: &Path, name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        // Not UTF-8: no `import` statement can name it.
        return false;
    };
    let path = dir.join(name);
    if path.is_dir() {
        return is_identifier(name)
            && (name == "__pycache__"
                || std::fs::read_dir(&path).is_ok_and(|entries| {
                    entries.filter_map(Result::ok).any(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(|n| n.split('.').next() == Some("__init__"))
                    })
                }));
    }
    let stem = name.split('.').next().unwrap_or("");
    is_identifier(stem)
        && (name.ends_with(".py")
            || name.ends_with(".pyc")
            || name.ends_with(".pyw")
            || name.ends_with(".so"))
}

/// The part of `dir` that Python imports from when it is `sys.path[0]`: its importable
/// top-level entries (packages and `__pycache__` whole).
pub fn python_path_entry(dir: &Path, budget: &mut Budget) -> Result<Part, String> {
    python_path_entry_into(dir, budget, Files::default())
}

/// [`python_path_entry`], its files added to `files` (which may copy them).
pub fn python_path_entry_into(
    dir: &Path,
    budget: &mut Budget,
    mut files: Files,
) -> Result<Part, String> {
    let skip = |rel: &Path| {
        let mut components = rel.components();
        match (components.next(), components.next()) {
            (Some(top), None) => !python_importable(dir, top.as_os_str()),
            _ => false,
        }
    };
    files.add_tree(dir, &skip, budget)?;
    Ok(files.into_part())
}

/// Every file under `dir` but hidden entries (names starting with `.`: `.git`, `.venv`).
pub fn tree_part(dir: &Path, budget: &mut Budget) -> Result<Part, String> {
    tree_part_into(dir, budget, Files::default())
}

/// [`tree_part`], its files added to `files` (which may copy them).
pub fn tree_part_into(dir: &Path, budget: &mut Budget, mut files: Files) -> Result<Part, String> {
    let skip = |rel: &Path| {
        rel.file_name()
            .is_some_and(|n| n.as_bytes().first() == Some(&b'.'))
    };
    files.add_tree(dir, &skip, budget)?;
    Ok(files.into_part())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_part_names_its_files_and_bytes_and_nothing_else() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for root in [a.path(), b.path()] {
            fs::create_dir_all(root.join("pkg/sub")).unwrap();
            fs::write(root.join("pkg/sub/x.js"), "x").unwrap();
            fs::write(root.join("pkg/y.js"), "y").unwrap();
        }
        let part = |root: &Path| tree_part(root, &mut Budget::new()).unwrap();
        // Same files elsewhere: the same part.
        assert_eq!(part(a.path()), part(b.path()));
        assert_eq!((part(a.path()).files, part(a.path()).bytes), (2, 2));
        // A renamed file, an edited byte, an added file: another digest.
        fs::rename(b.path().join("pkg/y.js"), b.path().join("pkg/z.js")).unwrap();
        assert_ne!(part(a.path()).digest, part(b.path()).digest);
        fs::rename(b.path().join("pkg/z.js"), b.path().join("pkg/y.js")).unwrap();
        fs::write(b.path().join("pkg/y.js"), "Y").unwrap();
        assert_ne!(part(a.path()).digest, part(b.path()).digest);
        // Hidden entries are not part of a script's tree.
        fs::write(b.path().join("pkg/y.js"), "y").unwrap();
        fs::create_dir(b.path().join(".git")).unwrap();
        fs::write(b.path().join(".git/HEAD"), "ref").unwrap();
        assert_eq!(part(a.path()), part(b.path()));
        // A link to a directory cannot be pinned; a FIFO is never opened.
        std::os::unix::fs::symlink(a.path().join("pkg"), b.path().join("linked")).unwrap();
        let e = tree_part(b.path(), &mut Budget::new()).unwrap_err();
        assert!(e.contains("link to a directory"), "{e}");
    }

    #[test]
    fn the_budget_refuses_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "12345").unwrap();
        fs::write(dir.path().join("b"), "12345").unwrap();
        let mut budget = Budget {
            files: 1,
            bytes: 100,
        };
        let e = tree_part(dir.path(), &mut budget).unwrap_err();
        assert!(e.contains("more than 100000 files"), "{e}");
        let mut budget = Budget {
            files: 10,
            bytes: 7,
        };
        let e = tree_part(dir.path(), &mut budget).unwrap_err();
        assert!(e.contains("bytes to pin by content"), "{e}");
    }

    #[test]
    fn bytecode_is_hashed_without_its_source_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let pyc = dir.path().join("m.cpython-311.pyc");
        let header = |mtime: u8| {
            let mut h = vec![
                0xa7, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, mtime, 0, 0, 0, 9, 0, 0, 0,
            ];
            h.extend_from_slice(b"code");
            h
        };
        let hash = || hash_file(&pyc, &mut Budget::new()).unwrap();
        fs::write(&pyc, header(1)).unwrap();
        let first = hash();
        fs::write(&pyc, header(2)).unwrap();
        assert_eq!(hash(), first);
        let mut other = header(1);
        other.push(b'!');
        fs::write(&pyc, other).unwrap();
        assert_ne!(hash(), first);
    }

    #[test]
    fn python_imports_from_a_script_directory_only_what_can_be_imported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("server.py"), "").unwrap();
        let before = python_path_entry(d, &mut Budget::new()).unwrap();
        // Not importable: data, a hidden venv, a directory that is no regular package.
        fs::write(d.join("README.md"), "").unwrap();
        fs::create_dir_all(d.join(".venv/lib")).unwrap();
        fs::write(d.join(".venv/lib/x.py"), "").unwrap();
        fs::create_dir(d.join("data")).unwrap();
        fs::write(d.join("data/x.py"), "").unwrap();
        fs::write(d.join("my-notes.py"), "").unwrap();
        assert_eq!(python_path_entry(d, &mut Budget::new()).unwrap(), before);
        // Importable ahead of the standard library: a module, a package, bytecode.
        for add in [
            "json.py",
            "pkg/__init__.py",
            "__pycache__/json.cpython-311.pyc",
        ] {
            let path = d.join(add);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "import os").unwrap();
            assert_ne!(
                python_path_entry(d, &mut Budget::new()).unwrap(),
                before,
                "{add}"
            );
            fs::remove_file(&path).unwrap();
        }
    }
}
