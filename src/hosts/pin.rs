//! Pinning a host's floating launches in its config: the `args` of each entry named rewritten to
//! the exact version that ran (`npx -y pkg` to `npx -y pkg@1.2.3`), through the same byte-range
//! rewriting as `wrap`. A wrapped entry keeps its proxy flags: only the server's arguments
//! after `--` change.

use super::Host;
use super::formats::{FormatError, runs_the_proxy};
use super::patch::Edit;
use super::rewrite::{edit, parse, readable, render_yaml_item, server_maps, yaml_segments};
use jsonc_parser::ast::Value as Ast;
use jsonc_parser::common::Ranged;
use serde_json::{Map, Value, json};

pub use super::rewrite::Pins;

/// What pinning a file did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pinned {
    pub text: String,
    /// Where the text changed (what the user is shown).
    pub edits: Vec<Edit>,
    /// The entries rewritten.
    pub pinned: Vec<String>,
    /// Entries named but left as they were, and why.
    pub skipped: Vec<(String, String)>,
}

/// An entry's whole `args` once pinned: `pinned` itself, or for an entry that runs `mcplock
/// proxy`, its flags up to `--` and the program behind them, then `pinned`.
fn full_args(command: &str, current: &[Value], pinned: &[String]) -> Result<Vec<String>, String> {
    let current: Vec<&str> = current
        .iter()
        .map(|a| a.as_str().ok_or("an argument is not a string"))
        .collect::<Result<_, _>>()?;
    if !runs_the_proxy(command, current.first().copied()) {
        return Ok(pinned.to_vec());
    }
    let at = current
        .iter()
        .position(|a| *a == "--")
        .ok_or("it runs mcplock proxy with no `--` before the server's command")?;
    let program = current
        .get(at + 1)
        .ok_or("it runs mcplock proxy with no server command after `--`")?;
    let mut out: Vec<String> = current[..=at].iter().map(|a| a.to_string()).collect();
    out.push(program.to_string());
    out.extend(pinned.iter().cloned());
    Ok(out)
}

/// A JSON array of strings written like the one it replaces: on one line when that was, else
/// one item per line indented from the line it starts on.
fn render_array(items: &[String], replaced: &str, text: &str, at: usize) -> String {
    if !replaced.contains('\n') {
        let items: Vec<String> = items.iter().map(|a| json!(a).to_string()).collect();
        return format!("[{}]", items.join(", "));
    }
    let indent = super::rewrite::indent_at(text, at);
    serde_json::to_string_pretty(items)
        .unwrap_or_default()
        .replace('\n', &format!("\n{indent}"))
}

/// A JSON-family config with each entry `pins` names given its pinned `args`.
pub fn pin_json(host: Host, text: &str, pins: &Pins) -> Result<Pinned, FormatError> {
    readable(host, text)?;
    let Some(Ast::Object(top)) = parse(text)? else {
        return Err(FormatError("the file is not a JSON object".into()));
    };
    let mut out = Pinned::default();
    for (path, servers) in server_maps(host, &top) {
        // Claude Code's per-project maps sit at projects.PROJECT.mcpServers.
        let project = (path.len() == 3).then(|| path[1].clone());
        for prop in &servers.properties {
            let name = prop.name.as_str().to_string();
            let Some(pinned) = pins.get(&(name.clone(), project.clone())) else {
                continue;
            };
            let Ast::Object(entry) = &prop.value else {
                out.skipped.push((name, "not an object".into()));
                continue;
            };
            let Some(args) = entry.get("args") else {
                out.skipped.push((name, "it has no args to pin".into()));
                continue;
            };
            let command = match entry.get("command").map(|c| Value::from(c.value.clone())) {
                Some(Value::String(c)) => c,
                _ => String::new(),
            };
            let current = match Value::from(args.value.clone()) {
                Value::Array(items) => items,
                _ => {
                    out.skipped.push((name, "its args are not a list".into()));
                    continue;
                }
            };
            match full_args(&command, &current, pinned) {
                Ok(full) => {
                    let range = args.value.range();
                    let replaced = &text[range.start..range.end];
                    let rendered = render_array(&full, replaced, text, args.range.start);
                    out.edits.push(edit(range.start, range.end, rendered));
                    out.pinned.push(name);
                }
                Err(why) => out.skipped.push((name, why)),
            }
        }
    }
    out.text = super::patch::apply(text, &mut out.edits);
    Ok(out)
}

/// Codex's TOML with each `[mcp_servers.NAME]` that `pins` names given its pinned `args` (the
/// document edited in place: everything else keeps its text).
pub fn pin_toml(text: &str, pins: &Pins) -> Result<Pinned, FormatError> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| FormatError(format!("not valid TOML: {e}")))?;
    let mut out = Pinned::default();
    for ((name, _), pinned) in pins {
        let Some(table) = doc
            .get_mut("mcp_servers")
            .and_then(|s| s.get_mut(name))
            .and_then(|t| t.as_table_like_mut())
        else {
            out.skipped.push((name.clone(), "not a table".into()));
            continue;
        };
        let command = table
            .get("command")
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .to_string();
        let Some(current) = table.get("args").and_then(|a| a.as_array()) else {
            out.skipped
                .push((name.clone(), "it has no args list to pin".into()));
            continue;
        };
        let current: Vec<Value> = current
            .iter()
            .map(|v| v.as_str().map_or(Value::Null, |s| json!(s)))
            .collect();
        match full_args(&command, &current, pinned) {
            Ok(full) => {
                let array: toml_edit::Array = full.iter().map(String::as_str).collect();
                if let Some(args) = table.get_mut("args") {
                    *args = toml_edit::value(array);
                }
                out.pinned.push(name.clone());
            }
            Err(why) => out.skipped.push((name.clone(), why)),
        }
    }
    out.text = doc.to_string();
    if out.text != text {
        out.edits.push(edit(0, text.len(), out.text.clone()));
    }
    Ok(out)
}

/// Continue's YAML with each item `pins` names rewritten with its pinned `args` (the item in
/// YAML flow style, as `wrap` writes it).
pub fn pin_yaml(text: &str, pins: &Pins) -> Result<Pinned, FormatError> {
    readable(Host::Continue, text)?;
    let mut out = Pinned::default();
    for item in yaml_segments(text)? {
        let Some(name) = item.fields.get("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(pinned) = pins.get(&(name.to_string(), None)) else {
            continue;
        };
        let command = item
            .fields
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(Value::Array(current)) = item.fields.get("args") else {
            out.skipped
                .push((name.to_string(), "it has no args list to pin".into()));
            continue;
        };
        match full_args(command, current, pinned) {
            Ok(full) => {
                let mut fields: Map<String, Value> = item.fields.clone();
                fields.insert("args".into(), json!(full));
                let indent = text[item.start..].len() - text[item.start..].trim_start().len();
                let rendered = render_yaml_item(name, &item.order, &fields, indent);
                out.edits.push(edit(item.start, item.end, rendered));
                out.pinned.push(name.to_string());
            }
            Err(why) => out.skipped.push((name.to_string(), why)),
        }
    }
    out.text = super::patch::apply(text, &mut out.edits);
    Ok(out)
}

/// Pins the servers of one config file of `host`.
pub fn pin_file(host: Host, text: &str, pins: &Pins) -> Result<Pinned, FormatError> {
    match host {
        Host::Codex => pin_toml(text, pins),
        Host::Continue => pin_yaml(text, pins),
        host => pin_json(host, text, pins),
    }
}

/// The original text `wrap` recorded for an entry (what `unwrap` puts back), with its args
/// pinned as well, so unwrapping a pinned entry keeps the pin; `None` when it cannot be read
/// as an entry of that host.
pub fn pin_original(host: Host, original: &str, key: &str, pinned: &[String]) -> Option<String> {
    let pins: Pins = [((key.to_string(), None), pinned.to_vec())].into();
    // The entry's text alone is not a config: it is put in the smallest config that holds
    // it, pinned there, and taken back out.
    let (before, after, host) = match host {
        Host::Codex => (String::new(), String::new(), Host::Codex),
        Host::Continue => ("mcpServers:\n".to_string(), String::new(), Host::Continue),
        _ => (
            format!("{{\"mcpServers\": {{{}: ", json!(key)),
            "}}".to_string(),
            Host::Cursor,
        ),
    };
    let whole = format!("{before}{original}{after}");
    let done = pin_file(host, &whole, &pins).ok()?;
    if done.pinned.len() != 1 {
        return None;
    }
    done.text
        .strip_prefix(&before)?
        .strip_suffix(&after)
        .map(str::to_owned)
}
