//! Rendering drift for people and machines: human (grouped, most severe first, colour only on
//! a terminal), JSON (docs/diff.md) and Markdown; shared by `diff` and `lock`.

use super::render::{md_code, md_text, pretty};
use super::sarif;
use super::{ExitKind, FailOn, Format, Output};
use crate::core::diff::{Change, Class, Severity, Subject, Words, summary};
use crate::core::snapshot::ItemKind;
use crate::core::text::escape;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Decides the exit code and renders the changes in the format asked for. `located_in` is the
/// file SARIF results point into.
pub fn report(changes: Vec<Change>, fail_on: FailOn, located_in: PathBuf) -> Output {
    let exceeds = fail_on
        .threshold()
        .is_some_and(|t| changes.iter().any(|c| c.severity >= t));
    let code = exceeds.then_some(super::exit::Code::Drift);
    let exit = code.map_or(ExitKind::Clean, super::exit::Code::exit);
    Output::lazy(code, move |format| {
        Ok(match format {
            Format::Json => json_report(&changes, fail_on, exceeds),
            Format::Markdown => markdown(&changes, fail_on, exceeds),
            Format::Sarif => pretty(&sarif_report(&changes, &located_in, exit)),
            // Refused before any output by `check_format` (export only).
            Format::Human | Format::McpLock1 => human(&changes, fail_on, exceeds, use_color()),
        })
    })
}

/// Every change as a result of its class's rule, at the item's entry in the lockfile.
fn sarif_report(changes: &[Change], located_in: &Path, exit: ExitKind) -> Value {
    let rules: Vec<sarif::Rule> = Class::ALL
        .iter()
        .map(|class| {
            let (severity, help) = class.about();
            sarif::Rule {
                id: class.code().to_string(),
                summary: help.to_string(),
                help: format!(
                    "{help}. Usually {}; see the change classes in docs/diff.md.",
                    severity.as_str()
                ),
                level: sarif::Level::of(severity),
            }
        })
        .collect();
    let findings: Vec<sarif::Finding> = changes
        .iter()
        .map(|c| {
            let (section, kind, key) = match &c.subject {
                Subject::Server => (None, Value::Null, Value::Null),
                Subject::Item(kind, key) => (
                    Some((kind.field(), key.as_str())),
                    json!(kind_name(*kind)),
                    json!(key),
                ),
            };
            let mut logical = c.server.clone();
            if let Some((field, key)) = section {
                logical = format!("{logical}/{field}/{key}");
            }
            let mut message = format!(
                "{} {}: {}",
                c.severity.as_str(),
                subject_text(c),
                describe(c)
            );
            if !c.findings.is_empty() {
                message.push_str(&format!(" (gains {})", c.findings.join(", ")));
            }
            message.push_str(&format!(" in server {:?}", escape(&c.server)));
            let mut properties = serde_json::Map::new();
            properties.insert("severity".into(), json!(c.severity.as_str()));
            properties.insert("server".into(), json!(c.server));
            properties.insert("kind".into(), kind);
            properties.insert("item".into(), key);
            properties.insert("path".into(), json!(c.path));
            properties.insert("findings".into(), json!(c.findings));
            sarif::Finding {
                rule: c.class.code().to_string(),
                level: sarif::Level::of(c.severity),
                message,
                logical,
                pointer: sarif::entry_pointer(&c.server, section, &c.path),
                identity: vec![
                    "diff".into(),
                    c.class.code().into(),
                    c.server.clone(),
                    subject_text(c),
                    c.path.clone(),
                ],
                properties,
            }
        })
        .collect();
    sarif::log(
        "mcplock/diff/",
        &rules,
        &findings,
        Some(located_in),
        exit.code(),
    )
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
                "material": c.material(),
                "new": c.new,
                "old": c.old,
                "path": c.path,
                "server": c.server,
                "severity": c.severity.as_str(),
                "words": c.words.as_deref().map(words_json),
            })
        })
        .collect();
    // A refusal's code is added by Output::render, from the output's code.
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
