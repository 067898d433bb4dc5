//! Reading the files a command is given and guarding the ones it writes: shared services. The
//! lockfile service lives here: reading one strictly, reading and verifying one side by side
//! (`verify_lockfile`), writing one, and where its signatures sit.

use super::CliError;
use super::exit::{Code, fail, read_input};
use crate::core::json::parse_strict;
use crate::core::lockfile::{Checked, Lockfile};
use crate::core::signature::{Covered, frame_value, header_room, put_header};
use crate::edge::fs::{DirLock, FsError, Staged, lock_directory_of, remove_stale_temps, same_file};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Largest lockfile mcplock reads (and so writes).
pub const MAX_LOCKFILE_BYTES: u64 = 512 << 20;

/// Reads and strictly checks a lockfile; `Ok(None)` when it does not exist.
pub fn load_lockfile(path: &Path) -> Result<Option<Lockfile>, CliError> {
    let bytes = crate::edge::fs::read_bounded(path, MAX_LOCKFILE_BYTES)?;
    bytes
        .map(|b| {
            Lockfile::parse_owned(b).map_err(|e| {
                fail(
                    Code::LockfileInvalid,
                    format!("{} is not a valid lockfile: {e}", path.display()),
                )
            })
        })
        .transpose()
}

/// Reads the lockfile at `path` for `verify`: `check` judges its signature over what it covers
/// while, side by side, the lockfile's own strict checks run (each takes a while on a large
/// file). A file in the form mcplock writes is canonicalized in one pass without building its
/// definitions; anything else is parsed strictly, which also says what is wrong with it.
/// Returns what `check` returned and what the strict read found per server.
pub fn verify_lockfile<T: Send>(
    path: &Path,
    check: impl FnOnce(Covered<'_>) -> Result<T, CliError> + Send,
) -> Result<(T, Checked), CliError> {
    let text = super::exit::read_input(path, MAX_LOCKFILE_BYTES, "lockfile")?;
    let (signed, counts) = match Lockfile::stream_text(&text, header_room()) {
        Some(mut streamed) => {
            drop(text);
            let start = put_header(&mut streamed.canonical);
            std::thread::scope(|scope| {
                let strict = scope.spawn(|| Lockfile::check_streamed(&streamed));
                let covered = Covered::in_frame(&streamed.canonical, start);
                (check(covered), strict.join())
            })
        }
        None => {
            let document = parse_lockfile_json(path, &text)?;
            drop(text);
            let (buffer, start) = frame_value(&document);
            std::thread::scope(|scope| {
                let strict = scope.spawn(|| Lockfile::check_value(&document));
                (check(Covered::in_frame(&buffer, start)), strict.join())
            })
        }
    };
    let signed = signed?;
    let counts = counts
        .map_err(|_| fail(Code::Internal, "internal error while reading the lockfile"))?
        .map_err(|e| {
            fail(
                Code::LockfileRejected,
                format!(
                    "the signature holds, but {} fails its own checks: {e}",
                    path.display()
                ),
            )
        })?;
    Ok((signed, counts))
}

/// Where `sign --key` writes a lockfile's signature (and `verify` looks for it).
pub fn default_signature_path(lockfile: &Path) -> PathBuf {
    let mut name = lockfile.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Where keyless `sign` writes a lockfile's Sigstore bundle (and `verify` looks for it).
pub fn default_bundle_path(lockfile: &Path) -> PathBuf {
    let mut name = lockfile.as_os_str().to_owned();
    name.push(".sigstore.json");
    PathBuf::from(name)
}

/// A lockfile held for a rewrite: the directory's lock taken (another writer waits, so no
/// entry is lost), the temporaries of writers killed before `started` removed, and the file read
/// as it is now. The one way a command rewrites a lockfile.
pub struct Update {
    _guard: DirLock,
    path: PathBuf,
    /// The lockfile as it is now (`None`: it does not exist yet).
    pub current: Option<Lockfile>,
}

/// Takes `path`'s lockfile for a rewrite ([`Update`]).
pub fn update(path: &Path, started: std::time::SystemTime) -> Result<Update, CliError> {
    let guard = lock_directory_of(path)?;
    remove_stale_temps(path, started);
    Ok(Update {
        _guard: guard,
        path: path.to_path_buf(),
        current: load_lockfile(path)?,
    })
}

impl Update {
    /// Writes `lockfile` in place of the one read ([`write_lockfile`]), still under the lock;
    /// returns the notes naming the signatures the rewrite made stale.
    pub fn write(&self, lockfile: &Lockfile) -> Result<Vec<String>, CliError> {
        write_lockfile(&self.path, lockfile)?;
        Ok(stale_signatures(&self.path))
    }
}

/// Writes a lockfile atomically, unless it holds a value mcplock knows to be secret (a server
/// that echoes its credentials into what it lists): a lockfile is signed and committed.
pub fn write_lockfile(path: &Path, lockfile: &Lockfile) -> Result<(), CliError> {
    let failed = |e: FsError| fail(Code::WriteFailed, e.to_string());
    let mut staged = Staged::bounded(path, MAX_LOCKFILE_BYTES).map_err(failed)?;
    // Written as it is made and read back in chunks: a large lockfile is never held whole.
    if let Err(e) = lockfile.write_pretty(&mut staged) {
        // A limit passed comes back inside the writer's error; anything else is the disk's.
        let message = match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<FsError>())
        {
            Some(fs) => fs.to_string(),
            None => format!("cannot write {}: {e}", path.display()),
        };
        return Err(fail(Code::WriteFailed, message));
    }
    let echoed = staged
        .reread()
        .and_then(|file| {
            crate::edge::secrets::read_contains_secret(file).map_err(|source| FsError::Read {
                path: path.into(),
                source,
            })
        })
        .map_err(failed)?;
    if echoed {
        return Err(fail(
            Code::LockfileRejected,
            format!(
                "refusing to write {}: what the server offers holds the value of a header or environment variable it was given (it echoes its credentials); nothing was written: see where with `mcplock scan`, and revoke the credential",
                path.display()
            ),
        ));
    }
    staged.commit().map_err(failed)
}

/// What to say after `path` was rewritten while a signature of the old file sits beside it:
/// that signature no longer holds, and every proxy and `verify` will refuse the lockfile until
/// it is signed again.
pub fn stale_signatures(path: &Path) -> Vec<String> {
    let shown = path.display();
    let mut out = Vec::new();
    let sig = default_signature_path(path);
    if sig.exists() {
        out.push(format!(
            "{} signed {shown} before this change and no longer holds: every proxy and `verify` refuse {shown} until you re-sign it (`mcplock sign --key PRIVATE {shown}`)",
            sig.display()
        ));
    }
    let bundle = default_bundle_path(path);
    if bundle.exists() {
        out.push(format!(
            "{} signed {shown} before this change and no longer holds: re-sign it (`mcplock sign --sigstore {shown}`)",
            bundle.display()
        ));
    }
    out
}

/// A lockfile's bytes, strictly parsed (not yet checked as a lockfile).
pub fn read_lockfile_json(path: &Path) -> Result<Value, CliError> {
    let bytes = read_input(path, MAX_LOCKFILE_BYTES, "lockfile")?;
    parse_lockfile_json(path, &bytes)
}

/// Parses the text of the lockfile at `path` strictly.
pub fn parse_lockfile_json(path: &Path, bytes: &[u8]) -> Result<Value, CliError> {
    parse_strict(bytes).map_err(|e| {
        fail(
            Code::JsonInvalid,
            format!("{} is not valid JSON: {e}", path.display()),
        )
    })
}

/// An output that is one of the command's inputs would destroy it: refuse before writing.
pub fn refuse_overwriting_inputs(output: &Path, inputs: &[&Path]) -> Result<(), CliError> {
    match inputs.iter().find(|input| same_file(output, input)) {
        Some(input) => Err(fail(
            Code::Usage,
            format!(
                "the output {} is the input {}; writing it would destroy that input (choose another -o)",
                output.display(),
                input.display()
            ),
        )),
        None => Ok(()),
    }
}
