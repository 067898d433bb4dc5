//! `lock --registry-entry`: an MCP Registry entry read, its packages' `fileSha256` held to the
//! artifact the launch ran, and its record compared with the one the lock has.

use super::CliError;
use super::exit::{Code, fail};
use crate::core::artifact::{Artifact, Kind};
use crate::core::registry::Record;
use crate::core::text::escape;
use std::path::Path;

/// The entry at `path` (a `server.json`, or the registry API's answer for one server).
pub fn read_entry(path: Option<&Path>) -> Result<Option<Record>, CliError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let bytes = super::exit::read_input(path, 1 << 20, "the registry entry")?;
    let document = crate::core::json::parse_strict(&bytes).map_err(|e| {
        fail(
            Code::JsonInvalid,
            format!("{} is not strict JSON: {}", path.display(), e.message()),
        )
    })?;
    Record::from_server_json(&document).map(Some).map_err(|e| {
        fail(
            Code::PeerFileInvalid,
            format!(
                "{} is not an MCP Registry server.json entry mcplock can read: {e}",
                path.display()
            ),
        )
    })
}

/// Holds every `fileSha256` of a package the artifact is to the artifact's own bytes: a
/// mismatch is refused (`artifact-changed`); what cannot be checked is said in the notes.
pub fn check_files(
    record: Option<&Record>,
    entry: &crate::core::lockfile::ServerLock,
) -> Result<Vec<String>, CliError> {
    let Some(record) = record else {
        return Ok(Vec::new());
    };
    let artifact = entry.artifact.as_ref();
    let resolved = artifact.and_then(Artifact::resolved);
    let mut notes = Vec::new();
    let ran = resolved.map(|r| (r.kind, r.name.as_str(), r.version.as_deref()));
    let matching: Vec<_> = record
        .packages
        .iter()
        .filter(|p| match ran {
            Some((Kind::Npm, name, version)) => {
                p.registry_type == "npm" && p.identifier == name && p.version.as_deref() == version
            }
            Some((Kind::Pypi, name, version)) => {
                p.registry_type == "pypi" && p.identifier == name && p.version.as_deref() == version
            }
            Some((Kind::File, path, _)) => {
                let file = Path::new(path).file_name().and_then(|f| f.to_str());
                file.is_some_and(|f| p.identifier.rsplit('/').next() == Some(f))
            }
            _ => false,
        })
        .collect();
    if matching.is_empty() && !record.packages.is_empty() {
        notes.push(format!(
            "the registry entry {} names no package this launch runs ({}): its packages were recorded, not checked",
            escape(&record.name),
            resolved.map_or("nothing resolved".into(), |_| artifact.map(Artifact::describe).unwrap_or_default())
        ));
    }
    for package in matching {
        let (Some(expected), Some(resolved)) = (&package.file_sha256, resolved) else {
            continue;
        };
        let actual = match resolved.kind {
            Kind::Npm => crate::edge::artifact::npm_tarball_sha256(&resolved.digest),
            Kind::File => Ok(resolved.digest.clone()),
            _ => Err("mcplock does not keep this kind of package file".to_string()),
        };
        match actual {
            Ok(actual) if actual.strip_prefix("sha256:") == Some(expected.as_str()) => {
                notes.push(format!(
                    "the registry entry's fileSha256 of {} matches the package file run",
                    escape(&package.identifier)
                ))
            }
            Ok(actual) => {
                return Err(fail(
                    Code::ArtifactChanged,
                    format!(
                        "the registry entry {} says {} has fileSha256 {expected}, but the package file run has {}; nothing was written: check the entry against the package its registry serves, or lock without --registry-entry",
                        escape(&record.name),
                        escape(&package.identifier),
                        actual.trim_start_matches("sha256:")
                    ),
                ));
            }
            Err(why) => notes.push(format!(
                "the registry entry's fileSha256 of {} was not checked: {}",
                escape(&package.identifier),
                escape(&why)
            )),
        }
    }
    if record.withdrawn() {
        notes.push(registry_status_note(record));
    }
    Ok(notes)
}

/// What to say of an entry the registry has deprecated or deleted.
pub fn registry_status_note(record: &Record) -> String {
    format!(
        "the MCP Registry marks {} {} as {}",
        escape(&record.name),
        escape(&record.version),
        record.status.as_deref().unwrap_or("active")
    )
}
