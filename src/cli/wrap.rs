//! `mcplock wrap` and `mcplock unwrap`: a host's config rewritten so its servers run through
//! `mcplock proxy`, and back, with the backup and the record of each entry's original text.

use super::exit::{Code, fail, read_input};
use super::hosts::{selected, shown};
use super::locked::load_lockfile;
use super::render::pretty;
use super::{CliError, ExitKind, HostArgs, Output, UnwrapArgs, WrapArgs};
use crate::core::text::escape;
use crate::hosts::patch::Edit;
use crate::hosts::rewrite::{self, Originals, ProxySettings};
use crate::hosts::{ConfigFile, Host, Spec};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;

/// A path as a wrapped entry records it: absolute (a host starts the proxy from anywhere).
fn absolute(p: &std::path::Path) -> Result<String, CliError> {
    std::path::absolute(p)
        .map(|a| a.display().to_string())
        .map_err(|e| fail(Code::Usage, format!("{}: {e}", p.display())))
}

/// The proxy flags `wrap` writes into every entry: only what differs from the proxy's
/// defaults, paths absolute (a host starts the proxy from anywhere).
fn proxy_options(args: &WrapArgs) -> Result<Vec<String>, CliError> {
    let mut options = Vec::new();
    fn value(v: &impl clap::ValueEnum) -> String {
        v.to_possible_value()
            .map(|p| p.get_name().to_string())
            .unwrap_or_default()
    }
    if args.on_drift != super::OnDriftArg::Withhold {
        options.extend(["--on-drift".to_string(), value(&args.on_drift)]);
    }
    if args.on_response_finding != super::OnResponseArg::Warn {
        options.extend([
            "--on-response-finding".to_string(),
            value(&args.on_response_finding),
        ]);
    }
    for policy in &args.policies {
        if !policy.is_file() {
            return Err(fail(
                Code::InputMissing,
                format!("--policy {}: no such file", policy.display()),
            ));
        }
        options.extend(["--policy".to_string(), absolute(policy)?]);
    }
    for preset in &args.presets {
        options.extend(["--preset".to_string(), preset.clone()]);
    }
    Ok(options)
}

/// The config files of the selected hosts that exist (the files of Continue's folder one by
/// one), or the one --config names.
fn config_files(args: &HostArgs) -> Result<Vec<ConfigFile>, CliError> {
    let hosts = selected(args)?;
    if let Some(config) = &args.config {
        if !config.is_file() {
            return Err(fail(
                Code::HostConfigInvalid,
                format!("--config {}: no such file", config.display()),
            ));
        }
        return Ok(vec![ConfigFile::new(
            hosts[0],
            crate::hosts::Scope::User,
            config.clone(),
        )]);
    }
    let (home, project) = super::hosts::home_and_project()?;
    let mut files = Vec::new();
    for host in hosts {
        for file in host.locations(&home, &project) {
            if file.path.is_dir() {
                let mut inside: Vec<PathBuf> = std::fs::read_dir(&file.path)
                    .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                    .unwrap_or_default();
                inside.retain(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"));
                inside.sort();
                files.extend(
                    inside
                        .into_iter()
                        .map(|p| ConfigFile::new(host, file.scope, p)),
                );
            } else if file.path.is_file() {
                files.push(file);
            }
        }
    }
    Ok(files)
}

fn read_text(path: &std::path::Path) -> Result<String, CliError> {
    let bytes = read_input(path, crate::hosts::formats::MAX_CONFIG_BYTES, "config")?;
    String::from_utf8(bytes).map_err(|_| {
        fail(
            Code::InputUnreadable,
            format!("{} is not UTF-8", path.display()),
        )
    })
}

fn sidecar(path: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

const RECORD: &str = ".mcplock-wrap.json";
const BACKUP: &str = ".mcplock-backup";

fn read_record(path: &std::path::Path) -> Result<Originals, CliError> {
    let record = sidecar(path, RECORD);
    let Some(bytes) = crate::edge::fs::read_bounded(&record, 64 << 20)
        .map_err(|e| fail(Code::InputUnreadable, e.to_string()))?
    else {
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
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
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
    crate::edge::fs::write_atomic(path, bytes).map_err(|e| fail(Code::WriteFailed, e.to_string()))
}

fn write_record(path: &std::path::Path, originals: &Originals) -> Result<(), CliError> {
    let record = sidecar(path, RECORD);
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
struct Change {
    text: String,
    edits: Vec<Edit>,
    summary: String,
}

impl Change {
    /// A change of the whole text (what a test rewrites).
    #[cfg(test)]
    fn whole(old: &str, text: &str, summary: &str) -> Change {
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
fn rewrite_file(
    file: &ConfigFile,
    dry_run: bool,
    transform: impl FnOnce(&str) -> Result<Change, CliError>,
    before_write: impl FnOnce(&str) -> Result<(), CliError>,
) -> Result<String, CliError> {
    rewrite_checked(file, dry_run, transform, before_write, same_servers)
}

/// [`rewrite_file`] with the check of the new text given (`unwrap` tells a user's edit from a
/// rewriting error).
fn rewrite_checked(
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

fn rewrite_error(file: &ConfigFile, e: crate::hosts::formats::FormatError) -> CliError {
    fail(
        Code::HostConfigInvalid,
        format!("{}: {e}", file.path.display()),
    )
}

/// How every wrapped entry starts the proxy: this mcplock, the signature check, the lockfile
/// and the proxy's options, paths absolute.
fn proxy_settings(args: &WrapArgs) -> Result<ProxySettings, CliError> {
    let mut trust: Vec<String> = Vec::new();
    if let Some(key) = &args.check.key {
        trust.extend(["--key".to_string(), absolute(key)?]);
        if let Some(signature) = &args.check.signature {
            trust.extend(["--signature".to_string(), absolute(signature)?]);
        }
    } else if let Some(bundle) = &args.check.bundle {
        trust.extend(["--bundle".to_string(), absolute(bundle)?]);
        if let Some(identity) = &args.check.identity {
            trust.extend(["--identity".to_string(), identity.clone()]);
        }
        if let Some(re) = &args.check.identity_regexp {
            trust.extend(["--identity-regexp".to_string(), re.clone()]);
        }
        if let Some(issuer) = &args.check.issuer {
            trust.extend(["--issuer".to_string(), issuer.clone()]);
        }
    } else if args.allow_unsigned {
        trust.push("--allow-unsigned".into());
    } else {
        return Err(fail(
            Code::Usage,
            "say how the proxy checks the lockfile: --key PUBLIC, --bundle with --identity and --issuer, or --allow-unsigned",
        ));
    }
    let mcplock = std::env::current_exe()
        .map_err(|e| {
            fail(
                Code::Usage,
                format!("cannot find the mcplock executable: {e}"),
            )
        })?
        .display()
        .to_string();
    Ok(ProxySettings {
        mcplock,
        trust,
        lockfile: absolute(&args.lockfile)?,
        options: proxy_options(args)?,
        audit_dir: match &args.audit {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    fail(Code::WriteFailed, format!("--audit {}: {e}", dir.display()))
                })?;
                Some(absolute(dir)?)
            }
            None => None,
        },
    })
}

pub fn wrap(args: WrapArgs) -> Result<Output, CliError> {
    let settings = proxy_settings(&args)?;
    let lockfile = load_lockfile(&args.lockfile)?;
    let files = config_files(&args.hosts)?;
    if files.is_empty() {
        return Err(fail(
            Code::HostConfigInvalid,
            "no config file of that host here (docs/hosts.md lists where each host keeps it; --config names one)",
        ));
    }
    let mut stdout = String::new();
    let mut warnings = Vec::new();
    let mut written = Vec::new();
    for file in &files {
        let wrapped_now: std::cell::RefCell<Option<Originals>> = std::cell::RefCell::new(None);
        let out = rewrite_file(
            file,
            args.dry_run,
            |text| {
                let result = match file.host {
                    Host::Codex => rewrite::wrap_toml(text, &settings),
                    Host::Continue => rewrite::wrap_yaml(text, &settings),
                    host => rewrite::wrap_json(host, text, &settings),
                }
                .map_err(|e| rewrite_error(file, e))?;
                let mut summary = format!("{} server(s) wrapped", result.originals.len());
                for (name, why) in &result.skipped {
                    let _ = write!(summary, "; {} left as it is: {}", escape(name), escape(why));
                }
                *wrapped_now.borrow_mut() = Some(result.originals);
                Ok(Change {
                    text: result.text,
                    edits: result.edits,
                    summary,
                })
            },
            |before| {
                let originals = wrapped_now.borrow().clone().unwrap_or_default();
                save_undo(&file.path, before, originals)
            },
        )
        .map_err(|e| after_written(e, &written, "wrapped", "unwrap"))?;
        stdout.push_str(&out);
        let Some(originals) = wrapped_now.into_inner() else {
            continue;
        };
        if !args.dry_run && !originals.is_empty() {
            written.push(file.path.display().to_string());
        }
        for path in originals.keys() {
            let name = path.last().map(String::as_str).unwrap_or_default();
            if lockfile
                .as_ref()
                .is_none_or(|l| !l.servers.contains_key(name))
            {
                warnings.push(format!(
                    "{} is not locked in {}: the host cannot start it through the proxy until you lock it (mcplock lock --host {})",
                    escape(name),
                    args.lockfile.display(),
                    file.host.id()
                ));
            }
        }
    }
    for warning in warnings {
        eprintln!("mcplock: warning: {warning}");
    }
    Ok(Output::text(ExitKind::Clean, stdout))
}

/// A refusal of one file that comes after others were rewritten says which were (a partial
/// run is never presented as nothing done).
fn after_written(mut error: CliError, written: &[String], done: &str, undo: &str) -> CliError {
    if !written.is_empty() {
        error.headline = format!(
            "{} (already {done} before this file: {}; `mcplock {undo}` with the same host undoes it)",
            error.headline,
            written.join(", ")
        );
    }
    error
}

/// Unwrapping restores each entry's text from before the wrap; an entry edited since (a
/// rotated token in its env, an argument added) would lose the edit. Refused, naming what
/// was edited (names, never values), unless `force`; the restored text must still parse.
fn edits_kept(file: &ConfigFile, before: &str, after: &str, force: bool) -> Result<(), CliError> {
    let edited = rewrite::differing(file.host, file.scope, before, after).map_err(|e| {
        fail(
            Code::HostConfigInvalid,
            format!(
                "refusing to write {}: the unwrapped text would not read as the host reads it ({e}); nothing was written",
                file.path.display()
            ),
        )
    })?;
    if edited.is_empty() || force {
        return Ok(());
    }
    let named: Vec<String> = edited
        .iter()
        .map(|(server, what)| format!("{} ({})", escape(server), escape(&what.join(", "))))
        .collect();
    Err(fail(
        Code::ConfigChangedUnderUs,
        format!(
            "{}: edited since it was wrapped: {}; unwrapping would undo that. Make the same edit to the entry's original later, or rerun with --force to restore the original as it was",
            file.path.display(),
            named.join("; ")
        ),
    ))
}

/// What undoes a wrap, saved before the config changes: the file as it was before mcplock
/// first wrapped it (never overwritten), and each entry's original text in the record.
fn save_undo(path: &std::path::Path, before: &str, originals: Originals) -> Result<(), CliError> {
    if originals.is_empty() {
        return Ok(());
    }
    let backup = sidecar(path, BACKUP);
    if !backup.exists() && read_record(path)?.is_empty() {
        write_private(&backup, before.as_bytes())?;
    }
    let mut record = read_record(path)?;
    record.extend(originals);
    write_record(path, &record)
}

fn unwrap_text(
    file: &ConfigFile,
    text: &str,
    originals: &Originals,
) -> Result<rewrite::Restored, crate::hosts::formats::FormatError> {
    match file.host {
        Host::Codex => rewrite::unwrap_toml(text, originals),
        Host::Continue => rewrite::unwrap_yaml(text, originals),
        host => rewrite::unwrap_json(host, text, originals),
    }
}

pub fn unwrap(args: UnwrapArgs) -> Result<Output, CliError> {
    let files = config_files(&args.hosts)?;
    let mut stdout = String::new();
    let mut any = false;
    let mut written = Vec::new();
    for file in &files {
        let record = read_record(&file.path)?;
        if record.is_empty() {
            continue;
        }
        any = true;
        let mut count = 0;
        let force = args.force;
        let out = rewrite_checked(
            file,
            args.dry_run,
            |text| {
                let restored =
                    unwrap_text(file, text, &record).map_err(|e| rewrite_error(file, e))?;
                count = restored.count;
                Ok(Change {
                    summary: format!("{count} server(s) unwrapped"),
                    text: restored.text,
                    edits: restored.edits,
                })
            },
            |_| Ok(()),
            |file, before, after| edits_kept(file, before, after, force),
        )
        .map_err(|e| after_written(e, &written, "unwrapped", "wrap"))?;
        stdout.push_str(&out);
        if !args.dry_run && count > 0 {
            written.push(file.path.display().to_string());
            // Every wrapped entry is restored: the record has served its purpose.
            write_record(&file.path, &Originals::new())?;
        }
    }
    if !any {
        // Nothing wrapped is not a failure: the configs are as unwrap would leave them.
        stdout.push_str("nothing to unwrap: no config of that host has a wrap record (FILE.mcplock-wrap.json)\n");
    }
    Ok(Output::text(ExitKind::Clean, stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Issue 27: unwrapping an entry edited since it was wrapped (a rotated token) would undo
    /// the edit: refused, naming the edit without its value, unless --force.
    #[test]
    fn issue_27_unwrap_keeps_an_edit_made_to_a_wrapped_entry_unless_forced() {
        let file = ConfigFile::new(
            Host::ClaudeDesktop,
            crate::hosts::Scope::User,
            std::path::PathBuf::from("c.json"),
        );
        let original = "{\"mcpServers\": {\"s\": {\"command\": \"srv\", \"env\": {\"API_TOKEN\": \"old-token-1\"}}}}\n";
        let settings = ProxySettings {
            mcplock: "/usr/bin/mcplock".into(),
            trust: vec!["--allow-unsigned".into()],
            lockfile: "/l.json".into(),
            options: Vec::new(),
            audit_dir: None,
        };
        let wrapped = rewrite::wrap_json(Host::ClaudeDesktop, original, &settings).unwrap();
        let edited = wrapped.text.replace("old-token-1", "new-token-2");
        assert_ne!(edited, wrapped.text);
        let restored = rewrite::unwrap_json(Host::ClaudeDesktop, &edited, &wrapped.originals)
            .unwrap()
            .text;
        let refused = edits_kept(&file, &edited, &restored, false).unwrap_err();
        assert!(
            refused.headline.contains("env API_TOKEN"),
            "{}",
            refused.headline
        );
        assert!(
            !refused.headline.contains("new-token-2") && !refused.headline.contains("old-token-1"),
            "{}",
            refused.headline
        );
        edits_kept(&file, &edited, &restored, true).unwrap();
        // Not edited: unwrapped without a word.
        let clean = rewrite::unwrap_json(Host::ClaudeDesktop, &wrapped.text, &wrapped.originals)
            .unwrap()
            .text;
        edits_kept(&file, &wrapped.text, &clean, false).unwrap();
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
