//! Reading the lockfile a command stands on, and finding a server's entry in it.

use super::{CliError, ExitKind};
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::edge::fs::read_bounded;
use crate::mcp::{ProtocolChoice, ProtocolVersion};
use crate::transport::stdio::ServerCommand;
use std::path::Path;

/// Largest lockfile mcplock reads.
pub const MAX_LOCKFILE_BYTES: u64 = 512 << 20;

/// Reads and strictly checks a lockfile; `Ok(None)` when it does not exist.
pub fn load_lockfile(path: &Path) -> Result<Option<Lockfile>, CliError> {
    let bytes = read_bounded(path, MAX_LOCKFILE_BYTES)
        .map_err(|e| CliError::new(ExitKind::Usage, e.to_string()))?;
    bytes
        .map(|b| {
            Lockfile::parse(&b).map_err(|e| {
                CliError::new(
                    ExitKind::Usage,
                    format!("{} is not a valid lockfile: {e}", path.display()),
                )
            })
        })
        .transpose()
}

/// The entry a live server will be held against, found before it is started: the one named
/// `name`, else the only entry locked with exactly this argv and these env names.
pub fn entry_for<'a>(
    lockfile: &'a Lockfile,
    name: Option<&str>,
    cmd: &ServerCommand,
) -> Option<&'a ServerLock> {
    if let Some(name) = name {
        return lockfile.servers.get(name);
    }
    let mut env_keys: Vec<&str> = cmd.env.iter().map(|(k, _)| k.as_str()).collect();
    env_keys.sort_unstable();
    env_keys.dedup();
    let mut matching = lockfile.servers.values().filter(|s| {
        s.launch.command == cmd.program
            && s.launch.args == cmd.args
            && s.launch
                .env_keys
                .iter()
                .map(String::as_str)
                .eq(env_keys.iter().copied())
    });
    let first = matching.next()?;
    matching.next().is_none().then_some(first)
}

/// `auto` becomes the era the lock recorded (no probe); an explicit `--protocol` is kept.
pub fn protocol_like(choice: ProtocolChoice, entry: Option<&ServerLock>) -> ProtocolChoice {
    match (
        choice,
        entry.and_then(|e| ProtocolVersion::parse(&e.protocol_version)),
    ) {
        (ProtocolChoice::Auto, Some(v)) => ProtocolChoice::Recorded(v),
        (choice, _) => choice,
    }
}
