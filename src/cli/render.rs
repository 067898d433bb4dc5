//! Rendering a snapshot for people and for machines.

use crate::core::snapshot::{ItemKind, Snapshot};
use crate::core::text::{escape, summary_line};
use crate::mcp::scan::Scanned;
use serde_json::Value;
use std::fmt::Write;

const NAME_WIDTH: usize = 32;
const DESCRIPTION_CHARS: usize = 72;

pub fn json(snapshot: &Snapshot) -> String {
    snapshot.to_json_pretty()
}

pub fn human(scanned: &Scanned) -> String {
    let s = &scanned.snapshot;
    let mut out = header(s);
    for kind in ItemKind::ALL {
        out.push('\n');
        listing(&mut out, s, kind);
    }
    if !scanned.notes.is_empty() {
        out.push_str("\nnotes\n");
        for note in &scanned.notes {
            let _ = writeln!(out, "  - {}", escape(note));
        }
    }
    out
}

/// What the server says of itself, what was declared to it, and how it was reached.
fn header(s: &Snapshot) -> String {
    let mut out = String::new();
    let info = |key: &str| {
        s.server_info
            .as_ref()
            .and_then(|i| i.get(key))
            .and_then(Value::as_str)
            .map(escape)
    };
    let name = s.server_name().map_or("(unnamed)".to_string(), escape);
    let version = info("version").unwrap_or_default();
    let title = info("title").map(|t| format!(" ({t})")).unwrap_or_default();
    let _ = writeln!(out, "server        {name} {version}{title}");
    let era = match s.era {
        crate::core::snapshot::Era::Legacy => "initialize handshake",
        crate::core::snapshot::Era::Modern => "stateless",
    };
    let _ = writeln!(out, "protocol      {} ({era})", s.protocol_version);
    match &s.launch {
        Some(launch @ crate::core::launch::Launch::Stdio { .. }) => {
            let _ = writeln!(out, "command       {}", launch.describe());
        }
        Some(launch @ crate::core::launch::Launch::Http { .. }) => {
            let _ = writeln!(out, "url           {}", launch.describe());
        }
        None => {}
    }
    if let Some(artifact) = &s.artifact {
        let _ = writeln!(out, "runs          {}", escape(&artifact.describe()));
    }
    let declared: Vec<&str> = s.client_capabilities.keys().map(String::as_str).collect();
    let _ = writeln!(
        out,
        "declared      {}",
        if declared.is_empty() {
            "no client capabilities".to_string()
        } else {
            declared.join(", ")
        }
    );
    let _ = writeln!(out, "capabilities  {}", capabilities(s).join(" "));
    match &s.instructions {
        None => {
            let _ = writeln!(out, "instructions  none");
        }
        Some(text) => {
            let _ = writeln!(
                out,
                "instructions  {} chars: {}",
                text.chars().count(),
                summary_line(text, DESCRIPTION_CHARS)
            );
        }
    }
    out
}

/// Each capability, with the flags set in it: `tools(listChanged)`.
fn capabilities(s: &Snapshot) -> Vec<String> {
    s.capabilities
        .iter()
        .map(|(k, v)| {
            let flags: Vec<String> = v
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, f)| f.as_bool() == Some(true))
                        .map(|(f, _)| escape(f))
                        .collect()
                })
                .unwrap_or_default();
            if flags.is_empty() {
                escape(k)
            } else {
                format!("{}({})", escape(k), flags.join(","))
            }
        })
        .collect()
}

/// One kind's listing: a line per item with its key and a summary of its description.
fn listing(out: &mut String, s: &Snapshot, kind: ItemKind) {
    let heading = match kind {
        ItemKind::Tool => "tools",
        ItemKind::Prompt => "prompts",
        ItemKind::ResourceTemplate => "resource templates",
        ItemKind::Resource => "resources",
    };
    if let Some(code) = s.unserved(kind) {
        let _ = writeln!(
            out,
            "{heading}: advertised but not served ({} answered error {code})",
            kind.list_method()
        );
        return;
    }
    let Some(items) = s.items(kind) else {
        let _ = writeln!(out, "{heading}: not offered");
        return;
    };
    let _ = writeln!(out, "{heading} ({})", items.len());
    for (key, item) in items {
        let item = item.to_map();
        let description = item
            .get("description")
            .and_then(Value::as_str)
            .or_else(|| item.get("title").and_then(Value::as_str))
            .or_else(|| item.get("name").and_then(Value::as_str))
            .unwrap_or("");
        let key = escape(key);
        let pad = NAME_WIDTH.saturating_sub(key.chars().count());
        let _ = writeln!(
            out,
            "  {key}{}  {}",
            " ".repeat(pad),
            summary_line(description, DESCRIPTION_CHARS)
        );
    }
}

/// Pretty-printed JSON with a final newline (every `--format json` document).
pub fn pretty(value: &Value) -> String {
    // Serializing a Value cannot fail: its keys are strings and its numbers finite.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Text for Markdown: control characters made visible, Markdown's own characters escaped.
pub fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in escape(text).chars() {
        if "\\`*_[]<>|#~".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Inline code that no backtick in the text can close early.
pub fn md_code(text: &str) -> String {
    let text = escape(text);
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    format!("{fence} {text} {fence}")
}

/// A failure as Markdown (for a job summary or a pull-request comment): the headline with its
/// stable code, then the details as a code block (they may quote what a server sent).
pub fn markdown_error(error: &super::CliError) -> String {
    let mut out = format!(
        "**mcplock: {}** (`{}`, exit {})\n",
        md_text(&error.headline),
        error.code.as_str(),
        error.kind().code()
    );
    if !error.details.is_empty() {
        let body: Vec<String> = error.details.iter().map(|d| escape(d)).collect();
        let body = body.join("\n");
        let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
        out.push_str(&format!("\n{fence}\n{body}\n{fence}\n"));
    }
    out
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}
