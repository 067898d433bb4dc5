//! Rewriting a host's config safely, for every command that changes one (`wrap`, `unwrap`,
//! `lock --host --pin`): the change is checked to read as intended, shown as a diff with every
//! secret value masked, heeds a signal up to its last safe point, and replaces the file only if
//! it still holds the text that was read.

use super::CliError;
use super::exit::{Code, fail, read_input};
use super::hosts::shown;
use super::render::pretty;
use crate::hosts::patch::Edit;
use crate::hosts::rewrite::Originals;
use crate::hosts::{ConfigFile, Spec, rewrite};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;

pub(super) fn read_text(path: &std::path::Path) -> Result<String, CliError> {
    let bytes = read_input(path, crate::hosts::formats::MAX_CONFIG_BYTES, "config")?;
    String::from_utf8(bytes).map_err(|_| {
        fail(
            Code::InputUnreadable,
            format!("{} is not UTF-8", path.display()),
        )
    })
}

/// The values a diff of this config must not show: every env and header value of its entries.
fn secrets_in(file: &ConfigFile, texts: &[&str]) -> Vec<String> {
    let mut secrets = Vec::new();
    for text in texts {
        if let Ok(declared) = crate::hosts::formats::parse(file.host, file.scope, text) {
            for d in declared {
                match d.spec {
                    Ok(Spec::Stdio { env, .. }) => secrets.extend(env.into_iter().map(|(_, v)| v)),
                    Ok(Spec::Http { headers, .. }) => {
                        secrets.extend(headers.into_iter().map(|(_, v)| v))
                    }
                    Err(_) => {}
                }
            }
        }
    }
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// A unified diff of a config's rewrite, secret values masked.
fn masked_diff(file: &ConfigFile, old: &str, change: &Change) -> String {
    let shown = file.path.display().to_string();
    let diff = crate::hosts::patch::unified_diff(old, &change.edits, &shown);
    let secrets = secrets_in(file, &[old, &change.text]);
    // Every value in one pass (a replace per value is quadratic in a config of many servers);
    // the longest first, so a value that contains another is masked whole.
    let masked = match aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(&secrets)
    {
        Ok(matcher) => matcher.replace_all(&diff, &vec!["<value hidden>"; secrets.len()]),
        // Too many values to build a matcher: show no lines rather than a value.
        Err(_) => format!(
            "{shown}: {} line(s) changed (not shown)\n",
            diff.lines().count()
        ),
    };
    // A URL's password and credential query values, wherever a line shows one.
    crate::core::launch::redact_urls_in(&masked)
}

/// A config's new text, where it changed, and the line that sums it up.
pub(super) struct Change {
    pub(super) text: String,
    pub(super) edits: Vec<Edit>,
    pub(super) summary: String,
}

impl Change {
    /// A change of the whole text (what a test rewrites).
    #[cfg(test)]
    pub(super) fn whole(old: &str, text: &str, summary: &str) -> Change {
        Change {
            text: text.into(),
            edits: vec![Edit {
                start: 0,
                end: old.len(),
                text: text.into(),
            }],
            summary: summary.into(),
        }
    }
}

/// Rewrites `file` by `transform`, after checking that the new text reads, as the host reads
/// it, as the same servers (a wrapped entry as the server behind the proxy): a rewrite that
/// would break the file or change what runs is never written. `before_write` runs (with the
/// text as it was) just before the file is replaced: what undoes the change (the backup, the
/// record) is on disk before the change is. The file is replaced only if it still holds the
/// text that was read, decided at the rename (no concurrent edit is lost).
pub(super) fn rewrite_file(
    file: &ConfigFile,
    dry_run: bool,
    transform: impl FnOnce(&str) -> Result<Change, CliError>,
    before_write: impl FnOnce(&str) -> Result<(), CliError>,
) -> Result<String, CliError> {
    rewrite_checked(file, dry_run, transform, before_write, same_servers)
}

/// [`rewrite_file`] with the check of the new text given (`unwrap` tells a user's edit from a
/// rewriting error).
pub(super) fn rewrite_checked(
    file: &ConfigFile,
    dry_run: bool,
    transform: impl FnOnce(&str) -> Result<Change, CliError>,
    before_write: impl FnOnce(&str) -> Result<(), CliError>,
    check: impl FnOnce(&ConfigFile, &str, &str) -> Result<(), CliError>,
) -> Result<String, CliError> {
    let before = read_text(&file.path)?;
    let change = transform(&before)?;
    let mut out = String::new();
    if change.text == before {
        let _ = writeln!(out, "{}: {}", shown(file), change.summary);
        return Ok(out);
    }
    check(file, &before, &change.text)?;
    out.push_str(&masked_diff(file, &before, &change));
    let _ = writeln!(out, "{}: {}", shown(file), change.summary);
    if dry_run {
        return Ok(out);
    }
    let written = |e: crate::edge::fs::FsError| match e {
        crate::edge::fs::FsError::Changed { .. } => fail(Code::ConfigChangedUnderUs, e.to_string()),
        e => fail(Code::WriteFailed, e.to_string()),
    };
    // The last moment a signal is heeded: what follows takes milliseconds, and the process
    // waits for it, so a stop never leaves a temporary file or half the undo behind.
    super::interrupt::check(&file.path)?;
    before_write(&before)?;
    let mut staged = crate::edge::fs::Staged::new(&file.path).map_err(written)?;
    staged.write_all(change.text.as_bytes()).map_err(written)?;
    staged
        .commit_if_unchanged(before.as_bytes())
        .map_err(written)?;
    Ok(out)
}

/// The rewritten text must read as the same servers, each running what it ran before.
fn same_servers(file: &ConfigFile, before: &str, after: &str) -> Result<(), CliError> {
    rewrite::reads_the_same(file.host, file.scope, before, after).map_err(|why| {
        fail(
            Code::HostConfigInvalid,
            format!(
                "refusing to write {}: {why}; nothing was written (this is a bug in mcplock's rewriting of this layout: please report it with the file's shape)",
                file.path.display()
            ),
        )
    })
}

pub(super) fn rewrite_error(file: &ConfigFile, e: crate::hosts::formats::FormatError) -> CliError {
    fail(
        Code::HostConfigInvalid,
        format!("{}: {e}", file.path.display()),
    )
}

/// A refusal of one file that comes after others were rewritten says which were (a partial
/// run is never presented as nothing done).
pub(super) fn after_written(
    mut error: CliError,
    written: &[String],
    done: &str,
    undo: &str,
) -> CliError {
    if !written.is_empty() {
        error.headline = format!(
            "{} (already {done} before this file: {}; `mcplock {undo}` with the same host undoes it)",
            error.headline,
            written.join(", ")
        );
    }
    error
}

/// Where the backup (`suffix` [`BACKUP`]) or the wrap record ([`RECORD`]) of a config lives:
/// beside a user's config; for a project's config (which a team commits, while the record
/// holds the env values the entries held) in the user's state directory
/// (`$XDG_STATE_HOME/mcplock/wrap`, else `~/.local/state/mcplock/wrap`), named by a digest of
/// the config's absolute path, so nothing of them lands in the project.
pub(super) fn side_file(file: &ConfigFile, suffix: &str) -> Result<PathBuf, CliError> {
    if file.scope != crate::hosts::Scope::Project {
        let mut name = file.path.as_os_str().to_owned();
        name.push(suffix);
        return Ok(PathBuf::from(name));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .ok_or_else(|| {
            fail(
                Code::HostConfigInvalid,
                "neither XDG_STATE_HOME nor HOME is set: nowhere to keep a project config's wrap record",
            )
        })?;
    let absolute = std::path::absolute(&file.path).map_err(|e| {
        fail(
            Code::HostConfigInvalid,
            format!("{}: {e}", file.path.display()),
        )
    })?;
    let digest = crate::core::canonical::Digest::of_bytes(absolute.as_os_str().as_encoded_bytes())
        .to_string();
    let short = digest.strip_prefix("sha256:").unwrap_or(&digest);
    let name = file
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(state
        .join("mcplock/wrap")
        .join(format!("{}-{name}{suffix}", &short[..16])))
}

pub(super) const RECORD: &str = ".mcplock-wrap.json";
pub(super) const BACKUP: &str = ".mcplock-backup";

pub(super) fn read_record(file: &ConfigFile) -> Result<Originals, CliError> {
    let record = side_file(file, RECORD)?;
    let Some(bytes) = crate::edge::fs::read_bounded(&record, 64 << 20)? else {
        return Ok(Originals::new());
    };
    let doc: Value = crate::core::json::parse_strict(&bytes).map_err(|e| {
        fail(
            Code::HostConfigInvalid,
            format!("{}: {e}", record.display()),
        )
    })?;
    let bad = || {
        fail(
            Code::HostConfigInvalid,
            format!("{} is not an mcplock wrap record", record.display()),
        )
    };
    if doc.get("mcplockWrap") != Some(&json!(1)) {
        return Err(bad());
    }
    let mut originals = Originals::new();
    for entry in doc
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(bad)?
    {
        let path: Vec<String> = entry
            .get("path")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .map(|p| p.as_str().map(str::to_owned).ok_or_else(bad))
            .collect::<Result<_, _>>()?;
        let text = entry.get("text").and_then(Value::as_str).ok_or_else(bad)?;
        originals.insert(path, text.to_string());
    }
    Ok(originals)
}

/// Writes a file only its owner may read (the record holds what the config held: env values
/// and header values).
pub(super) fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let failed = |e: std::io::Error| {
        fail(
            Code::WriteFailed,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(failed)?;
    }
    // A file others could read is made private before what it will hold is written.
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    }
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                fail(
                    Code::WriteFailed,
                    format!("cannot create {}: {e}", path.display()),
                )
            })?;
    }
    Ok(crate::edge::fs::write_atomic(path, bytes)?)
}

pub(super) fn write_record(file: &ConfigFile, originals: &Originals) -> Result<(), CliError> {
    let record = side_file(file, RECORD)?;
    if originals.is_empty() {
        if record.exists() {
            std::fs::remove_file(&record).map_err(|e| {
                fail(
                    Code::WriteFailed,
                    format!("cannot remove {}: {e}", record.display()),
                )
            })?;
        }
        return Ok(());
    }
    let entries: Vec<Value> = originals
        .iter()
        .map(|(path, text)| json!({"path": path, "text": text}))
        .collect();
    let mut bytes = pretty(&json!({"mcplockWrap": 1, "entries": entries})).into_bytes();
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    write_private(&record, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ExitKind;
    use crate::hosts::Host;

    #[test]
    fn a_config_changed_while_it_is_rewritten_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        std::fs::write(&path, "{\"mcpServers\": {}}\n").unwrap();
        let file = ConfigFile::new(Host::Cursor, crate::hosts::Scope::User, path.clone());
        // Another program writes the file between mcplock's read and its write.
        let error = rewrite_file(
            &file,
            false,
            |old| {
                std::fs::write(&path, "{\"mcpServers\": {\"new\": {}}}\n").unwrap();
                Ok(Change::whole(
                    old,
                    "{\"rewritten\": true}\n",
                    "1 server(s) wrapped",
                ))
            },
            |_| Ok(()),
        )
        .unwrap_err();
        assert_eq!(error.kind(), ExitKind::No);
        assert!(
            error
                .headline
                .contains("changed while mcplock was rewriting it"),
            "{}",
            error.headline
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"mcpServers\": {\"new\": {}}}\n",
            "the other program's write is kept"
        );
        // Unchanged meanwhile: written; a dry run writes nothing.
        std::fs::write(&path, "{\"mcpServers\": {}}\n").unwrap();
        let out = rewrite_file(
            &file,
            true,
            |old| Ok(Change::whole(old, "{}\n", "dry")),
            |_| Ok(()),
        )
        .unwrap();
        assert!(out.contains("+{}"), "{out}");
        assert_ne!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        rewrite_file(
            &file,
            false,
            |old| Ok(Change::whole(old, "{}\n", "done")),
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
    }

    /// Issue 27: a rewrite is re-read as the host reads it before it replaces the file: text
    /// that would not parse, or a server that would run something else, is never written, and
    /// what undoes the change is written before the change.
    #[test]
    fn issue_27_a_rewrite_that_reads_otherwise_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        let original = "{\"mcpServers\": {\"a\": {\"command\": \"srv\", \"args\": [\"x\"]}}}\n";
        std::fs::write(&path, original).unwrap();
        let file = ConfigFile::new(Host::Cursor, crate::hosts::Scope::User, path.clone());
        for (bad, why) in [
            ("{\"mcpServers\": {\"a\": ", "would not read"),
            (
                "{\"mcpServers\": {\"a\": {\"command\": \"evil\"}}}\n",
                "read differently",
            ),
            ("{\"mcpServers\": {}}\n", "declare 0 server(s)"),
        ] {
            let mut undone = false;
            let error = rewrite_file(
                &file,
                false,
                |old| Ok(Change::whole(old, bad, "x")),
                |_| {
                    undone = true;
                    Ok(())
                },
            )
            .unwrap_err();
            assert!(error.headline.contains(why), "{bad}: {}", error.headline);
            assert!(!undone, "nothing to undo when nothing is written");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
        }
        // Written: the undo step ran first.
        let wrapped = "{\"mcpServers\": {\"a\": {\"command\": \"/usr/bin/mcplock\", \"args\": [\"proxy\", \"--allow-unsigned\", \"--\", \"srv\", \"x\"]}}}\n";
        let mut order = Vec::new();
        rewrite_file(
            &file,
            false,
            |old| Ok(Change::whole(old, wrapped, "1")),
            |_| {
                order.push(std::fs::read_to_string(&path).unwrap());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            order,
            [original],
            "undo saved while the file was still the original"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), wrapped);
    }
}
