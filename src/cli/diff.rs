//! `mcplock diff`: what changed, graded by severity.

use super::exit::usage;
use super::locked::{entry_for, load_lockfile, protocol_like, relaunch_locked};
use super::scan::{pretty, scan_server};
use super::{CliError, DiffArgs, DiffFormat, ExitKind, FailOn, Format, Output};
use crate::core::diff::{Change, DiffLimits, Severity, Subject, Words, diff_with, summary};
use crate::core::json::parse_strict;
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::snapshot::{ItemKind, Snapshot};
use crate::core::text::escape;
use crate::edge::fs::read_bounded;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::locked::MAX_LOCKFILE_BYTES;

pub async fn run(args: DiffArgs) -> Result<Output, CliError> {
    let (old, new) = match (&args.old, &args.new) {
        (Some(old), Some(new)) => {
            if !args.server.server.is_empty() {
                return Err(usage(
                    "give either two files (OLD NEW) or a server after `--`, not both",
                ));
            }
            // Two large lockfiles take a while each to read and check: read them side by side.
            let name = args.name.as_deref();
            let (a, b) = std::thread::scope(|scope| {
                let a = scope.spawn(|| read_side(old, name));
                let b = read_side(new, name);
                (a.join(), b)
            });
            let a = a.map_err(|_| usage("internal error while reading the old side"))?;
            let ((mut a, a_snapshot), (mut b, b_snapshot)) = (a?, b?);
            // A snapshot lists static resources whenever the server offers them; a lockfile
            // holds them only when locked with --resources. Compare like with like.
            if b_snapshot {
                drop_unlocked_resources(&a, &mut b);
            }
            if a_snapshot {
                drop_unlocked_resources(&b, &mut a);
            }
            (a, b)
        }
        (Some(_), None) => {
            return Err(usage(
                "give two files to compare (OLD NEW), or none to compare the lockfile with live servers",
            ));
        }
        _ => live(&args).await?,
    };
    let limits = DiffLimits {
        max_text_diff_words: args.max_text_diff_words,
    };
    let changes = diff_with(&old, &new, limits);
    if args.old.is_none() && !changes.is_empty() {
        // Drift against a live server is drift, whatever its cause; but a server that differs
        // from itself between starts shows up here too, and only a repeated scan tells.
        eprintln!(
            "mcplock: hint: if this server changes between starts (descriptions built from an unordered set, say), `mcplock scan --repeat 3 -- CMD` shows what differs"
        );
    }
    // The process ends after the report: skip freeing two large lockfiles piece by piece.
    std::mem::forget((old, new));
    Ok(report(&changes, args.fail_on, args.format))
}

/// Leaves static resources out of `snapshot`'s servers where `lock` did not lock them.
fn drop_unlocked_resources(lock: &Lockfile, snapshot: &mut Lockfile) {
    for (name, entry) in &mut snapshot.servers {
        if lock
            .servers
            .get(name)
            .is_some_and(|l| l.resources.is_none())
        {
            entry.resources = None;
            entry.unserved.remove(&ItemKind::Resource);
        }
    }
}

/// Reads a lockfile or a `scan --format json` snapshot as a lockfile; true for a snapshot.
fn read_side(path: &Path, name: Option<&str>) -> Result<(Lockfile, bool), CliError> {
    let bytes = read_bounded(path, MAX_LOCKFILE_BYTES)
        .map_err(|e| usage(e.to_string()))?
        .ok_or_else(|| usage(format!("{} does not exist", path.display())))?;
    let value = parse_strict(&bytes)
        .map_err(|e| usage(format!("{} is not valid JSON: {e}", path.display())))?;
    if value.get("lockfileVersion").is_some() {
        return Lockfile::from_owned_value(value)
            .map(|lock| (lock, false))
            .map_err(|e| usage(format!("{} is not a valid lockfile: {e}", path.display())));
    }
    if value.get("mcplockSnapshot").is_some() {
        let snapshot = Snapshot::from_json(&value)
            .map_err(|e| usage(format!("{} is not a valid snapshot: {e}", path.display())))?;
        let name = name
            .map(str::to_owned)
            .or_else(|| snapshot.server_name().map(str::to_owned))
            .ok_or_else(|| usage(format!("{} names no server; pass --name", path.display())))?;
        let with_resources = snapshot.items(ItemKind::Resource).is_some()
            || snapshot.unserved(ItemKind::Resource).is_some();
        let entry = ServerLock::from_snapshot(snapshot, with_resources).map_err(|e| {
            usage(format!(
                "{}: {e} (take snapshots with `mcplock scan --format json`)",
                path.display()
            ))
        })?;
        return Ok((
            Lockfile {
                servers: BTreeMap::from([(name, entry)]),
            },
            true,
        ));
    }
    Err(usage(format!(
        "{} is neither an mcplock lockfile nor a scan snapshot",
        path.display()
    )))
}

/// The lockfile against live servers: the one after `--`, or every locked server relaunched.
async fn live(args: &DiffArgs) -> Result<(Lockfile, Lockfile), CliError> {
    if args.server.server.is_empty() {
        return relaunch_locked(
            &args.lockfile,
            args.name.as_deref(),
            &args.server,
            &args.trust,
        )
        .await;
    }
    args.trust.only_for_relaunch()?;
    let locked = load_lockfile(&args.lockfile)?.ok_or_else(|| {
        usage(format!(
            "{} does not exist; lock first (`mcplock lock -- CMD`), or compare two files",
            args.lockfile.display()
        ))
    })?;
    let mut old = Lockfile::default();
    let mut new = Lockfile::default();
    {
        let mut server_args = args.server.clone();
        let known = entry_for(&locked, args.name.as_deref(), &server_args.command()?);
        server_args.protocol = protocol_like(server_args.protocol, known);
        let scanned = scan_server(&server_args, Format::Human).await?;
        let name = match args.name.clone() {
            Some(n) => n,
            None => pick_server(&locked, scanned.snapshot.server_name())?,
        };
        let entry = locked.servers.get(&name).ok_or_else(|| {
            usage(format!(
                "{} locks no server {name:?} (it locks: {})",
                args.lockfile.display(),
                server_list(&locked)
            ))
        })?;
        let live = ServerLock::from_snapshot(scanned.snapshot, entry.resources.is_some())
            .map_err(|e| CliError::new(ExitKind::Server, e.to_string()))?;
        old.servers.insert(name.clone(), entry.clone());
        new.servers.insert(name, live);
    }
    Ok((old, new))
}

fn pick_server(locked: &Lockfile, reported: Option<&str>) -> Result<String, CliError> {
    if let Some(name) = reported
        && locked.servers.contains_key(name)
    {
        return Ok(name.to_string());
    }
    if locked.servers.len() == 1
        && let Some(name) = locked.servers.keys().next()
    {
        return Ok(name.clone());
    }
    Err(usage(format!(
        "which locked server is this? pass --name (the lockfile locks: {})",
        server_list(locked)
    )))
}

fn server_list(locked: &Lockfile) -> String {
    let names: Vec<String> = locked.servers.keys().map(|n| escape(n)).collect();
    names.join(", ")
}

/// Renders the changes and decides the exit code.
pub fn report(changes: &[Change], fail_on: FailOn, format: DiffFormat) -> Output {
    let exceeds = fail_on
        .threshold()
        .is_some_and(|t| changes.iter().any(|c| c.severity >= t));
    let stdout = match format {
        DiffFormat::Json => json_report(changes, fail_on, exceeds),
        DiffFormat::Markdown => markdown(changes, fail_on, exceeds),
        DiffFormat::Human => human(changes, fail_on, exceeds, use_color()),
    };
    Output {
        stdout,
        exit: if exceeds {
            ExitKind::No
        } else {
            ExitKind::Clean
        },
    }
}

fn use_color() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

fn kind_name(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Tool => "tool",
        ItemKind::Prompt => "prompt",
        ItemKind::ResourceTemplate => "resource-template",
        ItemKind::Resource => "resource",
    }
}

fn words_json(words: &[Words]) -> Value {
    Value::Array(
        words
            .iter()
            .map(|w| match w {
                Words::Equal(t) => json!({"op": "equal", "text": t}),
                Words::Delete(t) => json!({"op": "delete", "text": t}),
                Words::Insert(t) => json!({"op": "insert", "text": t}),
            })
            .collect(),
    )
}

fn json_report(changes: &[Change], fail_on: FailOn, exceeds: bool) -> String {
    let [info, moderate, critical] = summary(changes);
    let items: Vec<Value> = changes
        .iter()
        .map(|c| {
            let (kind, item) = match &c.subject {
                Subject::Server => (Value::Null, Value::Null),
                Subject::Item(kind, key) => (json!(kind_name(*kind)), json!(key)),
            };
            json!({
                "class": c.class.code(),
                "findings": c.findings,
                "item": item,
                "kind": kind,
                "new": c.new,
                "old": c.old,
                "path": c.path,
                "server": c.server,
                "severity": c.severity.as_str(),
                "words": c.words.as_deref().map(words_json),
            })
        })
        .collect();
    pretty(&json!({
        "changes": items,
        "exceedsThreshold": exceeds,
        "failOn": fail_on.as_str(),
        "mcplockDiff": 1,
        "summary": {"critical": critical, "info": info, "moderate": moderate},
    }))
}

/// Changes grouped by server, most severe first.
fn grouped(changes: &[Change]) -> BTreeMap<&str, Vec<&Change>> {
    let mut groups: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in changes {
        groups.entry(c.server.as_str()).or_default().push(c);
    }
    for list in groups.values_mut() {
        // Stable: within a severity the diff's own order (subject, path, class) is kept.
        list.sort_by_key(|c| std::cmp::Reverse(c.severity));
    }
    groups
}

fn subject_text(c: &Change) -> String {
    match &c.subject {
        Subject::Server => "server".to_string(),
        Subject::Item(kind, key) => format!("{} {:?}", kind_name(*kind), escape(key)),
    }
}

fn describe(c: &Change) -> String {
    let what = c.class.code().replace('-', " ");
    if c.path.is_empty() {
        what
    } else {
        format!("{} {what}", escape(&c.path))
    }
}

fn short(value: &Value) -> String {
    let text = escape(&value.to_string());
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(117).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn totals(changes: &[Change], fail_on: FailOn, exceeds: bool) -> String {
    let [info, moderate, critical] = summary(changes);
    let verdict = match (fail_on.threshold(), exceeds) {
        (None, _) => "not failing on any drift (--fail-on never)".to_string(),
        (Some(t), true) => format!("drift at or above {} (exit 1)", t.as_str()),
        (Some(t), false) => format!("nothing at or above {} (exit 0)", t.as_str()),
    };
    format!(
        "{} change(s): {critical} critical, {moderate} moderate, {info} info; {verdict}",
        changes.len()
    )
}

/// The human report.
pub fn human(changes: &[Change], fail_on: FailOn, exceeds: bool, color: bool) -> String {
    if changes.is_empty() {
        return "no drift: the servers offer exactly what is locked\n".to_string();
    }
    let mut out = human_body(changes, color);
    let _ = writeln!(out, "\n{}", totals(changes, fail_on, exceeds));
    out
}

/// The changes, grouped by server, most severe first (also what `lock` prints for drift it
/// refuses or accepts).
pub fn human_body(changes: &[Change], color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    for (server, list) in grouped(changes) {
        let _ = writeln!(out, "server {:?}", escape(server));
        for c in list {
            let label = match c.severity {
                Severity::Critical => paint("1;31", "CRITICAL"),
                Severity::Moderate => paint("33", "MODERATE"),
                Severity::Info => paint("2", "INFO    "),
            };
            let _ = writeln!(out, "  {label}  {}: {}", subject_text(c), describe(c));
            if !c.findings.is_empty() {
                let _ = writeln!(
                    out,
                    "            poisoning findings: {}",
                    c.findings.join(", ")
                );
            }
            if let Some(words) = &c.words {
                let mut line = String::new();
                for w in words {
                    match w {
                        Words::Equal(t) => line.push_str(&escape(t)),
                        Words::Delete(t) => {
                            line.push_str(&paint("31", &format!("[-{}-]", escape(t))))
                        }
                        Words::Insert(t) => {
                            line.push_str(&paint("32", &format!("{{+{}+}}", escape(t))))
                        }
                    }
                }
                let _ = writeln!(out, "            {line}");
            } else if c.old.is_some() || c.new.is_some() {
                let side = |v: &Option<Value>| v.as_ref().map_or("(absent)".to_string(), short);
                let _ = writeln!(out, "            {} -> {}", side(&c.old), side(&c.new));
            }
        }
    }
    out
}

fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in escape(text).chars() {
        if "\\`*_[]<>|#~".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn md_code(text: &str) -> String {
    let text = escape(text);
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    format!("{fence} {text} {fence}")
}

fn markdown(changes: &[Change], fail_on: FailOn, exceeds: bool) -> String {
    let mut out = String::from("### mcplock diff\n\n");
    if changes.is_empty() {
        out.push_str("No drift: the servers offer exactly what is locked.\n");
        return out;
    }
    let _ = writeln!(out, "{}\n", md_text(&totals(changes, fail_on, exceeds)));
    for (server, list) in grouped(changes) {
        let _ = writeln!(out, "#### Server {}\n", md_code(server));
        for c in list {
            let subject = match &c.subject {
                Subject::Server => "server".to_string(),
                Subject::Item(kind, key) => format!("{} {}", kind_name(*kind), md_code(key)),
            };
            let at = if c.path.is_empty() {
                String::new()
            } else {
                format!(" at {}", md_code(&c.path))
            };
            let _ = writeln!(
                out,
                "- **{}** · {subject} · {}{at}",
                c.severity.as_str(),
                md_code(c.class.code())
            );
            if !c.findings.is_empty() {
                let _ = writeln!(out, "  - poisoning findings: {}", c.findings.join(", "));
            }
            if let Some(words) = &c.words {
                let mut line = String::new();
                for w in words {
                    match w {
                        Words::Equal(t) => line.push_str(&md_text(t)),
                        Words::Delete(t) if !t.trim().is_empty() => {
                            let _ = write!(line, "~~{}~~", md_text(t.trim()));
                            if t.ends_with(char::is_whitespace) {
                                line.push(' ');
                            }
                        }
                        Words::Insert(t) if !t.trim().is_empty() => {
                            let _ = write!(line, "**{}**", md_text(t.trim()));
                            if t.ends_with(char::is_whitespace) {
                                line.push(' ');
                            }
                        }
                        Words::Delete(t) | Words::Insert(t) => line.push_str(&md_text(t)),
                    }
                }
                let _ = writeln!(out, "  - {line}");
            } else if c.old.is_some() || c.new.is_some() {
                let side = |v: &Option<Value>| {
                    v.as_ref()
                        .map_or("(absent)".to_string(), |v| md_code(&short(v)))
                };
                let _ = writeln!(out, "  - {} → {}", side(&c.old), side(&c.new));
            }
        }
        out.push('\n');
    }
    out
}
