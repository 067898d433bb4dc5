//! Reading the files a command is given and guarding the ones it writes: shared services.

use super::CliError;
use super::exit::{Code, fail, read_input};
use crate::core::json::parse_strict;
use crate::edge::fs::same_file;
use serde_json::Value;
use std::path::Path;

/// Largest lockfile mcplock reads (and so writes).
pub const MAX_LOCKFILE_BYTES: u64 = 512 << 20;

/// Writes a lockfile atomically, unless it holds a value mcplock knows to be secret (a server
/// that echoes its credentials into what it lists): a lockfile is signed and committed.
pub fn write_lockfile(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    if crate::edge::secrets::contains_secret(bytes) {
        return Err(fail(
            Code::LockfileRejected,
            format!(
                "refusing to write {}: what the server offers holds the value of a header or environment variable it was given (it echoes its credentials); nothing was written: see where with `mcplock scan`, and revoke the credential",
                path.display()
            ),
        ));
    }
    crate::edge::fs::write_atomic_bounded(path, bytes, MAX_LOCKFILE_BYTES)
        .map_err(|e| fail(Code::WriteFailed, e.to_string()))
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
