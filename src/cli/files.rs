//! Reading the files a command is given and guarding the ones it writes: shared services.

use super::CliError;
use super::exit::{Code, fail, read_input};
use crate::core::json::parse_strict;
use crate::edge::fs::same_file;
use serde_json::Value;
use std::path::Path;

/// Largest lockfile mcplock reads (and so writes).
pub const MAX_LOCKFILE_BYTES: u64 = 512 << 20;

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
