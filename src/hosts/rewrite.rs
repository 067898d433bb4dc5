//! Rewriting a host's config so its servers run through `mcplock proxy`, and back.
//!
//! Only the text of each wrapped entry changes: everything else in the file (other settings,
//! comments, key order, spacing) keeps its bytes. Each entry's original text is kept so
//! `unwrap` puts exactly that text back; a file wrapped and unwrapped with nothing else changed
//! is byte-identical to the original.

use super::Host;
use super::formats::FormatError;
use jsonc_parser::ast::{Object, Value as Ast};
use jsonc_parser::common::Ranged;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// How a wrapped entry starts the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    /// The mcplock to run (an absolute path: hosts do not share the user's PATH).
    pub mcplock: String,
    /// The signature check: `--key PUB`, or `--bundle B --identity I --issuer O`, or
    /// `--allow-unsigned`.
    pub trust: Vec<String>,
    pub lockfile: String,
}

/// An entry's place in the file (the keys leading to it) and its text before wrapping.
pub type Originals = BTreeMap<Vec<String>, String>;

/// What wrapping a file did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wrapped {
    pub text: String,
    /// The entries wrapped now, with their original text.
    pub originals: Originals,
    /// Entries left as they were, and why (already wrapped, disabled, not wrappable).
    pub skipped: Vec<(String, String)>,
}

/// Env variables a wrapped remote entry passes its header values in (the proxy reads
/// `${VAR}` in `--header`), so no value is on a command line.
pub const HEADER_ENV_PREFIX: &str = "MCPLOCK_HEADER_";

const OPTIONS: jsonc_parser::ParseOptions = jsonc_parser::ParseOptions {
    allow_comments: true,
    allow_loose_object_property_names: false,
    allow_trailing_commas: true,
    allow_missing_commas: false,
    allow_single_quoted_strings: false,
    allow_hexadecimal_numbers: false,
    allow_unary_plus_numbers: false,
};

/// The paths (from the top) of the objects that hold a host's servers.
fn server_maps<'a, 'b>(host: Host, top: &'b Object<'a>) -> Vec<(Vec<String>, &'b Object<'a>)> {
    let object = |o: &'b Object<'a>, key: &str| -> Option<&'b Object<'a>> {
        match o.get(key).map(|p| &p.value) {
            Some(Ast::Object(inner)) => Some(inner),
            _ => None,
        }
    };
    let mut maps = Vec::new();
    match host {
        Host::VsCode => {
            if let Some(servers) = object(top, "servers") {
                maps.push((vec!["servers".to_string()], servers));
            }
            if let Some(servers) = object(top, "mcp").and_then(|m| object(m, "servers")) {
                maps.push((vec!["mcp".into(), "servers".into()], servers));
            }
        }
        _ => {
            if let Some(servers) = object(top, "mcpServers") {
                maps.push((vec!["mcpServers".to_string()], servers));
            }
            if host == Host::ClaudeCode
                && let Some(projects) = object(top, "projects")
            {
                for project in &projects.properties {
                    if let Ast::Object(p) = &project.value
                        && let Some(servers) = object(p, "mcpServers")
                    {
                        let path = vec![
                            "projects".to_string(),
                            project.name.as_str().to_string(),
                            "mcpServers".to_string(),
                        ];
                        maps.push((path, servers));
                    }
                }
            }
        }
    }
    maps
}

/// True for an entry that already runs through `mcplock proxy`.
pub fn is_wrapped(entry: &Map<String, Value>) -> bool {
    let command = entry.get("command").and_then(Value::as_str).unwrap_or("");
    let program = std::path::Path::new(command)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    program.starts_with("mcplock")
        && entry
            .get("args")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            == Some("proxy")
}

/// The wrapped form of one entry, or why it stays as it is.
fn wrap_entry(
    host: Host,
    name: &str,
    entry: &Map<String, Value>,
    settings: &ProxySettings,
) -> Result<Map<String, Value>, String> {
    if is_wrapped(entry) {
        return Err("already runs through mcplock proxy".into());
    }
    if entry.get("disabled").and_then(Value::as_bool) == Some(true)
        || entry.get("enabled").and_then(Value::as_bool) == Some(false)
    {
        return Err("disabled".into());
    }
    if entry.get("cwd").is_some_and(|c| !c.is_null()) {
        return Err("sets a working directory (cwd), which mcplock does not record yet".into());
    }
    let url_keys: &[&str] = match host {
        Host::Windsurf => &["serverUrl", "url"],
        Host::Gemini => &["httpUrl", "url"],
        _ => &["url"],
    };
    let mut wrapped = entry.clone();
    let mut args: Vec<Value> = vec![json!("proxy")];
    args.extend(settings.trust.iter().map(|t| json!(t)));
    args.extend([
        json!("--lockfile"),
        json!(settings.lockfile),
        json!("--name"),
        json!(name),
    ]);
    match (
        entry.get("command"),
        url_keys.iter().find_map(|k| entry.get(*k)),
    ) {
        (Some(Value::String(command)), None) => {
            args.push(json!("--"));
            args.push(json!(command));
            match entry.get("args") {
                None | Some(Value::Null) => {}
                Some(Value::Array(original)) => args.extend(original.iter().cloned()),
                Some(_) => return Err("args is not an array".into()),
            }
        }
        (None, Some(Value::String(url))) => {
            args.push(json!("--url"));
            args.push(json!(url));
            let mut env = match entry.get("env") {
                Some(Value::Object(env)) => env.clone(),
                _ => Map::new(),
            };
            if let Some(Value::Object(headers)) = entry.get("headers") {
                for (i, (header, value)) in headers.iter().enumerate() {
                    let var = format!("{HEADER_ENV_PREFIX}{i}");
                    args.push(json!("--header"));
                    args.push(json!(format!("{header}: ${{{var}}}")));
                    env.insert(var, value.clone());
                }
            }
            for key in url_keys {
                wrapped.remove(*key);
            }
            wrapped.remove("headers");
            if !env.is_empty() {
                wrapped.insert("env".into(), Value::Object(env));
            }
            if wrapped.contains_key("type") {
                wrapped.insert("type".into(), json!("stdio"));
            }
        }
        _ => return Err("has neither one command nor one URL".into()),
    }
    wrapped.insert("command".into(), json!(settings.mcplock));
    wrapped.insert("args".into(), Value::Array(args));
    Ok(wrapped)
}

/// Renders a value in 2-space pretty JSON, its later lines indented like the line it starts
/// on in `text`.
fn render(value: &Value, text: &str, at: usize) -> String {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent: String = text[line_start..at]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    pretty.replace('\n', &format!("\n{indent}"))
}

fn parse(text: &str) -> Result<Option<Ast<'_>>, FormatError> {
    jsonc_parser::parse_to_ast(text, &Default::default(), &OPTIONS)
        .map(|r| r.value)
        .map_err(|e| FormatError(format!("not valid JSON: {e}")))
}

/// Wraps every server entry of a JSON-family config that can be wrapped.
pub fn wrap_json(host: Host, text: &str, settings: &ProxySettings) -> Result<Wrapped, FormatError> {
    let Some(Ast::Object(top)) = parse(text)? else {
        return Err(FormatError("the file is not a JSON object".into()));
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut out = Wrapped::default();
    for (path, servers) in server_maps(host, &top) {
        for prop in &servers.properties {
            let name = prop.name.as_str().to_string();
            let value: Value = prop.value.clone().into();
            let Value::Object(entry) = &value else {
                out.skipped.push((name, "not an object".into()));
                continue;
            };
            match wrap_entry(host, &name, entry, settings) {
                Ok(wrapped) => {
                    let range = prop.value.range();
                    let mut at = path.clone();
                    at.push(name);
                    out.originals
                        .insert(at, text[range.start..range.end].to_string());
                    edits.push((
                        range.start,
                        range.end,
                        render(&Value::Object(wrapped), text, prop.range.start),
                    ));
                }
                Err(why) => out.skipped.push((name, why)),
            }
        }
    }
    out.text = apply(text, edits);
    Ok(out)
}

/// Puts back the original text of every wrapped entry `originals` knows; returns the text and
/// the number of entries restored, or names the wrapped entries it has no original for.
pub fn unwrap_json(
    host: Host,
    text: &str,
    originals: &Originals,
) -> Result<(String, usize), FormatError> {
    let Some(Ast::Object(top)) = parse(text)? else {
        return Err(FormatError("the file is not a JSON object".into()));
    };
    let mut edits = Vec::new();
    let mut unknown = Vec::new();
    for (path, servers) in server_maps(host, &top) {
        for prop in &servers.properties {
            let value: Value = prop.value.clone().into();
            let Value::Object(entry) = &value else {
                continue;
            };
            if !is_wrapped(entry) {
                continue;
            }
            let mut at = path.clone();
            at.push(prop.name.as_str().to_string());
            match originals.get(&at) {
                Some(original) => {
                    let range = prop.value.range();
                    edits.push((range.start, range.end, original.clone()));
                }
                None => unknown.push(at.join(".")),
            }
        }
    }
    if !unknown.is_empty() {
        return Err(FormatError(format!(
            "no original is kept for the wrapped entries {}; edit them by hand",
            unknown.join(", ")
        )));
    }
    let restored = edits.len();
    Ok((apply(text, edits), restored))
}

/// Replaces byte ranges (which do not overlap), from the last to the first.
fn apply(text: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    edits.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
    let mut out = text.to_string();
    for (start, end, replacement) in edits {
        out.replace_range(start..end, &replacement);
    }
    out
}
