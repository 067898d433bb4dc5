//! Rewriting a host's config so its servers run through `mcplock proxy`, and back.
//!
//! Only the text of each wrapped entry changes: everything else in the file (other settings,
//! comments, key order, spacing) keeps its bytes. Each entry's original text is kept so
//! `unwrap` puts exactly that text back; a file wrapped and unwrapped with nothing else changed
//! is byte-identical to the original.

use super::Host;
use super::formats::FormatError;
use super::patch::Edit;
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
    /// More proxy flags, the same for every entry (`--on-drift block`, `--policy FILE`).
    pub options: Vec<String>,
    /// A directory where each entry gets an audit log of its own.
    pub audit_dir: Option<String>,
}

/// The audit log of the server `name` in `dir`: its name when that is a plain file name, else
/// a plain form of it with a digest of the name (so two names never share a log).
pub fn audit_log_name(dir: &str, name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = if plain == name && !name.starts_with('.') {
        name.to_string()
    } else {
        let digest = crate::core::canonical::Digest::of_bytes(name.as_bytes()).to_string();
        let short = digest.strip_prefix("sha256:").unwrap_or(&digest);
        format!("{}-{}", plain.trim_start_matches('.'), &short[..12])
    };
    format!("{}/{file}.audit.jsonl", dir.trim_end_matches('/'))
}

/// An entry's place in the file (the keys leading to it) and its text before wrapping.
pub type Originals = BTreeMap<Vec<String>, String>;

/// What wrapping a file did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wrapped {
    pub text: String,
    /// Where the text changed (what the user is shown).
    pub edits: Vec<Edit>,
    /// The entries wrapped now, with their original text.
    pub originals: Originals,
    /// Entries left as they were, and why (already wrapped, disabled, not wrappable).
    pub skipped: Vec<(String, String)>,
}

/// Env variables a wrapped remote entry passes its header values in (the proxy reads
/// `${VAR}` in `--header`), so no value is on a command line.
pub const HEADER_ENV_PREFIX: &str = "MCPLOCK_HEADER_";

/// The arguments each server is to run with (after its program), by config key and project
/// (Claude Code's per-project entries).
pub type Pins = BTreeMap<(String, Option<String>), Vec<String>>;

/// The servers a config's text declares as the host reads them: (key, project, disabled, what
/// runs behind any proxy), in order.
type Servers = Vec<(String, Option<String>, bool, Result<super::Spec, String>)>;

fn servers_of(host: Host, scope: super::Scope, text: &str) -> Result<Servers, String> {
    let declared = super::formats::parse(host, scope, text).map_err(|e| e.0)?;
    let mut out: Servers = declared
        .into_iter()
        .map(|d| {
            (
                d.key,
                d.project,
                d.disabled,
                d.spec.map(super::formats::behind_proxy),
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    Ok(out)
}

/// Whether `after` (a rewrite of `before`) reads, as the host reads it, as the same servers
/// each running what it ran before (a wrapped entry as the server behind the proxy): the check
/// every rewrite passes before it may replace a config. The error says what differs.
pub fn reads_the_same(
    host: Host,
    scope: super::Scope,
    before: &str,
    after: &str,
) -> Result<(), String> {
    reads_as(host, scope, before, after, &Pins::new())
}

/// [`reads_the_same`], except that each server `pins` names runs with the arguments it gives.
pub fn reads_as(
    host: Host,
    scope: super::Scope,
    before: &str,
    after: &str,
    pins: &Pins,
) -> Result<(), String> {
    let mut was = servers_of(host, scope, before)
        .map_err(|e| format!("it does not read before the change ({e})"))?;
    for (key, project, _, spec) in &mut was {
        if let (Some(pinned), Ok(super::Spec::Stdio { args, .. })) =
            (pins.get(&(key.clone(), project.clone())), spec.as_mut())
        {
            args.clone_from(pinned);
        }
    }
    let now = servers_of(host, scope, after)
        .map_err(|e| format!("the rewritten text would not read as the host reads it ({e})"))?;
    if was.len() != now.len() {
        return Err(format!(
            "the rewritten text would declare {} server(s), not {}",
            now.len(),
            was.len()
        ));
    }
    match was.iter().zip(&now).find(|(a, b)| a != b) {
        Some((a, b)) => Err(format!(
            "server {:?} would read differently after the rewrite ({})",
            crate::core::text::escape(&a.0),
            differences(&a.3, &b.3).join(", ")
        )),
        None => Ok(()),
    }
}

/// The servers whose reading differs between `before` and `after` (same keys), each with what
/// differs, by name (never a value: env and header values may be secrets).
pub fn differing(
    host: Host,
    scope: super::Scope,
    before: &str,
    after: &str,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let was = servers_of(host, scope, before)?;
    let now = servers_of(host, scope, after)?;
    let now: BTreeMap<_, _> = now.iter().map(|b| ((&b.0, &b.1), b)).collect();
    Ok(was
        .iter()
        .filter_map(|a| {
            let b = *now.get(&(&a.0, &a.1))?;
            (a != b).then(|| (a.0.clone(), differences(&a.3, &b.3)))
        })
        .collect())
}

/// What differs between two readings of one entry, by name.
fn differences(a: &Result<super::Spec, String>, b: &Result<super::Spec, String>) -> Vec<String> {
    use super::Spec;
    let named = |x: &[(String, String)], y: &[(String, String)], what: &str| -> Vec<String> {
        let names: std::collections::BTreeSet<&String> =
            x.iter().chain(y).map(|(k, _)| k).collect();
        names
            .into_iter()
            .filter(|k| {
                x.iter().find(|(n, _)| n == *k).map(|(_, v)| v)
                    != y.iter().find(|(n, _)| n == *k).map(|(_, v)| v)
            })
            .map(|k| format!("{what} {k}"))
            .collect()
    };
    match (a, b) {
        (
            Ok(Spec::Stdio {
                command,
                args,
                env,
                cwd,
            }),
            Ok(Spec::Stdio {
                command: c2,
                args: a2,
                env: e2,
                cwd: w2,
            }),
        ) => {
            let mut out = Vec::new();
            if command != c2 {
                out.push("command".to_string());
            }
            if args != a2 {
                out.push("arguments".to_string());
            }
            out.extend(named(env, e2, "env"));
            if cwd != w2 {
                out.push("cwd".to_string());
            }
            out
        }
        (
            Ok(Spec::Http {
                url,
                headers,
                bearer_env,
            }),
            Ok(Spec::Http {
                url: u2,
                headers: h2,
                bearer_env: b2,
            }),
        ) => {
            let mut out = Vec::new();
            if url != u2 {
                out.push("url".to_string());
            }
            out.extend(named(headers, h2, "header"));
            if bearer_env != b2 {
                out.push("bearer token variable".to_string());
            }
            out
        }
        _ => vec!["what it runs".to_string()],
    }
}

/// The paths (from the top) of the objects that hold a host's servers.
pub(super) fn server_maps<'a, 'b>(
    host: Host,
    top: &'b Object<'a>,
) -> Vec<(Vec<String>, &'b Object<'a>)> {
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
    let first = entry
        .get("args")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str);
    super::formats::runs_the_proxy(command, first)
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
    let url_keys: &[&str] = match host {
        Host::Windsurf => &["serverUrl", "url"],
        Host::Gemini => &["httpUrl", "url"],
        _ => &["url"],
    };
    let mut wrapped = entry.clone();
    let mut args: Vec<Value> = vec![json!("proxy")];
    args.extend(settings.trust.iter().map(|t| json!(t)));
    args.extend(settings.options.iter().map(|o| json!(o)));
    if let Some(dir) = &settings.audit_dir {
        args.extend([json!("--audit"), json!(audit_log_name(dir, name))]);
    }
    // `--name=NAME` in one argument: a name that starts with `-` is never read as a flag.
    args.extend([
        json!("--lockfile"),
        json!(settings.lockfile),
        json!(format!("--name={name}")),
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
            // On the proxy's command line, any local user could read it (issue 26).
            if let Some(what) = crate::core::launch::url_credential(url) {
                return Err(format!(
                    "its URL must not carry credentials (it carries {what}); {}, then wrap again",
                    super::URL_FIX
                ));
            }
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

/// An entry's fields in the order a user wrote them (`order`), the fields wrapping added after
/// them (command, args, env, then the rest by name).
pub(super) fn in_order<'m>(
    order: &[String],
    entry: &'m Map<String, Value>,
) -> Vec<(&'m String, &'m Value)> {
    let mut fields: Vec<(&String, &Value)> = order
        .iter()
        .filter_map(|k| entry.get_key_value(k.as_str()))
        .collect();
    let added = |k: &str| ["command", "args", "env"].iter().position(|x| *x == k);
    let mut rest: Vec<(&String, &Value)> =
        entry.iter().filter(|(k, _)| !order.contains(k)).collect();
    rest.sort_by_key(|(k, _)| (added(k).unwrap_or(usize::MAX), k.as_str()));
    fields.extend(rest);
    fields
}

/// The blanks that start the line holding byte `at` of `text`.
pub(super) fn indent_at(text: &str, at: usize) -> String {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..at]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// Renders an entry as a 2-space pretty JSON object, fields in `order`, its later lines
/// indented like the line it starts on in `text`.
fn render(order: &[String], entry: &Map<String, Value>, text: &str, at: usize) -> String {
    let indent = indent_at(text, at);
    let fields: Vec<String> = in_order(order, entry)
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::to_string_pretty(v).unwrap_or_default();
            format!("  {}: {}", json!(k), value.replace('\n', "\n  "))
        })
        .collect();
    let pretty = if fields.is_empty() {
        "{}".to_string()
    } else {
        format!("{{\n{}\n}}", fields.join(",\n"))
    };
    pretty.replace('\n', &format!("\n{indent}"))
}

pub(super) fn parse(text: &str) -> Result<Option<Ast<'_>>, FormatError> {
    jsonc_parser::parse_to_ast(text, &Default::default(), &super::formats::JSONC)
        .map(|r| r.value)
        .map_err(|e| FormatError(format!("not valid JSON: {e}")))
}

/// Refuses a file the host's own reader would refuse (a key given twice, two servers of one
/// name): only what reads one way is rewritten.
pub(super) fn readable(host: Host, text: &str) -> Result<(), FormatError> {
    super::formats::parse(host, super::Scope::User, text).map(drop)
}

/// The keys of a JSON object in the order they are written.
fn keys_of(value: &Ast<'_>) -> Vec<String> {
    match value {
        Ast::Object(o) => o
            .properties
            .iter()
            .map(|p| p.name.as_str().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Wraps every server entry of a JSON-family config that can be wrapped.
pub fn wrap_json(host: Host, text: &str, settings: &ProxySettings) -> Result<Wrapped, FormatError> {
    readable(host, text)?;
    let Some(Ast::Object(top)) = parse(text)? else {
        return Err(FormatError("the file is not a JSON object".into()));
    };
    let mut edits: Vec<Edit> = Vec::new();
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
                    edits.push(edit(
                        range.start,
                        range.end,
                        render(&keys_of(&prop.value), &wrapped, text, prop.range.start),
                    ));
                }
                Err(why) => out.skipped.push((name, why)),
            }
        }
    }
    out.text = super::patch::apply(text, &mut edits);
    out.edits = edits;
    Ok(out)
}

/// Puts back the original text of every wrapped entry `originals` knows; returns the text and
/// the number of entries restored, or names the wrapped entries it has no original for.
pub fn unwrap_json(host: Host, text: &str, originals: &Originals) -> Result<Restored, FormatError> {
    let Some(Ast::Object(top)) = parse(text)? else {
        return Err(FormatError("the file is not a JSON object".into()));
    };
    let mut edits: Vec<Edit> = Vec::new();
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
                    edits.push(edit(range.start, range.end, original.clone()));
                }
                None => unknown.push(at.join(".")),
            }
        }
    }
    restore(text, edits, &unknown)
}

/// What unwrapping a file did.
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    pub text: String,
    /// Where the text changed (what the user is shown).
    pub edits: Vec<Edit>,
    /// How many entries were restored.
    pub count: usize,
}

/// The text with every original put back, or the wrapped entries that have none (then nothing
/// is changed: a half-restored file would be neither the original nor the wrapped one).
fn restore(text: &str, mut edits: Vec<Edit>, unknown: &[String]) -> Result<Restored, FormatError> {
    if !unknown.is_empty() {
        return Err(FormatError(format!(
            "no original is kept for the wrapped entries {}; edit them by hand",
            unknown.join(", ")
        )));
    }
    Ok(Restored {
        text: super::patch::apply(text, &mut edits),
        count: edits.len(),
        edits,
    })
}

pub(super) fn edit(start: usize, end: usize, text: impl Into<String>) -> Edit {
    Edit {
        start,
        end,
        text: text.into(),
    }
}

/// Codex's config: every `[mcp_servers.NAME]` table wrapped.
pub fn wrap_toml(text: &str, settings: &ProxySettings) -> Result<Wrapped, FormatError> {
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| FormatError(format!("not valid TOML: {e}")))?;
    let mut out = Wrapped::default();
    let mut edits: Vec<Edit> = Vec::new();
    for (key, range) in &super::toml_entries::entries(text)? {
        let Some(table) = doc
            .get("mcp_servers")
            .and_then(|s| s.get(key))
            .and_then(|t| t.as_table_like())
        else {
            out.skipped.push((key.clone(), "not a table".into()));
            continue;
        };
        let entry = toml_to_json(table);
        match (wrap_codex(key, &entry, settings), range.as_ref()) {
            (Ok(wrapped), Ok(range)) => {
                out.originals.insert(
                    vec!["mcp_servers".into(), key.clone()],
                    text[range.clone()].to_string(),
                );
                let order: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
                edits.push(edit(
                    range.start,
                    range.end,
                    render_toml(key, &order, &wrapped),
                ));
            }
            (Err(why), _) => out.skipped.push((key.clone(), why)),
            (_, Err(why)) => out.skipped.push((key.clone(), why.clone())),
        }
    }
    out.text = super::patch::apply(text, &mut edits);
    out.edits = edits;
    Ok(out)
}

/// Codex's config: the original text of every wrapped table put back.
pub fn unwrap_toml(text: &str, originals: &Originals) -> Result<Restored, FormatError> {
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| FormatError(format!("not valid TOML: {e}")))?;
    let mut edits: Vec<Edit> = Vec::new();
    let mut unknown = Vec::new();
    for (key, range) in super::toml_entries::entries(text)? {
        let Some(table) = doc
            .get("mcp_servers")
            .and_then(|s| s.get(&key))
            .and_then(|t| t.as_table_like())
        else {
            continue;
        };
        if !is_wrapped(&toml_to_json(table)) {
            continue;
        }
        match (
            originals.get(&vec!["mcp_servers".to_string(), key.clone()]),
            range,
        ) {
            (Some(original), Ok(range)) => {
                edits.push(edit(range.start, range.end, original.clone()))
            }
            (None, _) => unknown.push(format!("mcp_servers.{key}")),
            (Some(_), Err(why)) => {
                return Err(FormatError(format!(
                    "mcp_servers.{key} cannot be put back: {why}"
                )));
            }
        }
    }
    restore(text, edits, &unknown)
}

fn toml_to_json(table: &dyn toml_edit::TableLike) -> Map<String, Value> {
    fn value(item: &toml_edit::Item) -> Value {
        if let Some(s) = item.as_str() {
            return json!(s);
        }
        if let Some(b) = item.as_bool() {
            return json!(b);
        }
        if let Some(i) = item.as_integer() {
            return json!(i);
        }
        if let Some(array) = item.as_array() {
            return Value::Array(
                array
                    .iter()
                    .map(|v| value(&toml_edit::Item::Value(v.clone())))
                    .collect(),
            );
        }
        if let Some(t) = item.as_table_like() {
            return Value::Object(toml_to_json(t));
        }
        Value::Null
    }
    table
        .iter()
        .map(|(k, item)| (k.to_string(), value(item)))
        .collect()
}

fn wrap_codex(
    name: &str,
    entry: &Map<String, Value>,
    settings: &ProxySettings,
) -> Result<Map<String, Value>, String> {
    // (wrap_entry refuses what is wrapped already or disabled.)
    // The TOML names, moved to the JSON-family shape wrap_entry knows.
    let mut shaped = entry.clone();
    let mut extra_args: Vec<Value> = Vec::new();
    if let Some(Value::Object(headers)) = shaped.remove("http_headers") {
        shaped.insert("headers".into(), Value::Object(headers));
    }
    if let Some(Value::Object(from_env)) = shaped.remove("env_http_headers") {
        for (header, var) in from_env {
            let var = var.as_str().unwrap_or_default();
            extra_args.extend([json!("--header"), json!(format!("{header}: ${{{var}}}"))]);
        }
    }
    if let Some(Value::String(var)) = shaped.remove("bearer_token_env_var") {
        extra_args.extend([json!("--bearer-env"), json!(var)]);
    }
    let mut wrapped = wrap_entry(Host::Codex, name, &shaped, settings)?;
    if let Some(Value::Array(args)) = wrapped.get_mut("args") {
        args.extend(extra_args);
    }
    Ok(wrapped)
}

/// A `[mcp_servers.NAME]` table in TOML, values as TOML basic strings, arrays and inline
/// tables.
fn render_toml(name: &str, order: &[String], entry: &Map<String, Value>) -> String {
    fn value(v: &Value) -> String {
        match v {
            Value::String(s) => toml_edit::Value::from(s.as_str())
                .to_string()
                .trim()
                .to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => format!(
                "[{}]",
                items.iter().map(value).collect::<Vec<_>>().join(", ")
            ),
            Value::Object(map) => format!(
                "{{ {} }}",
                map.iter()
                    .map(|(k, v)| format!("{} = {}", key(k), value(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Null => "\"\"".into(),
        }
    }
    fn key(k: &str) -> String {
        toml_edit::Key::new(k).display_repr().to_string()
    }
    let mut out = format!("[mcp_servers.{}]\n", key(name));
    for (k, v) in in_order(order, entry) {
        out.push_str(&format!("{} = {}\n", key(k), value(v)));
    }
    out
}

/// One item of a YAML list: its fields, their order, and where its text starts and ends.
pub(super) struct YamlItem {
    pub(super) fields: Map<String, Value>,
    /// The item's keys in the order they are written.
    pub(super) order: Vec<String>,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Continue: the items of the top-level `mcpServers:` list, each from its `- ` line to its last
/// line of content (deeper-indented lines; blank and comment lines after it belong to what
/// follows). The key of an item is its `name`, read from the item.
pub(super) fn yaml_segments(text: &str) -> Result<Vec<YamlItem>, FormatError> {
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut in_list = false;
    let mut list_indent: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let indent = line.len() - line.trim_start().len();
        let content = !trimmed.is_empty() && !trimmed.starts_with('#');
        if !in_list {
            if indent == 0 && (trimmed == "mcpServers:" || trimmed.starts_with("mcpServers: #")) {
                in_list = true;
            }
        } else if content {
            let item_start = trimmed.starts_with("- ") || trimmed == "-";
            match list_indent {
                _ if indent == 0 && !item_start => in_list = false,
                None if item_start => {
                    list_indent = Some(indent);
                    items.push((offset, offset + line.len()));
                }
                Some(at) if item_start && indent == at => items.push((offset, offset + line.len())),
                Some(at) if indent > at => {
                    if let Some(last) = items.last_mut() {
                        last.1 = offset + line.len();
                    }
                }
                _ => in_list = false,
            }
        }
        offset += line.len();
    }
    items
        .into_iter()
        .map(|(start, end)| {
            // The item alone, under a key, is a one-element YAML list (a YAML document must
            // be a mapping for this reader).
            let alone = format!("item:\n{}", &text[start..end]);
            let parsed: Value = marked_yaml::from_yaml_with_options(
                0,
                &alone,
                marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true),
            )
            .map_err(|e| FormatError(format!("not valid YAML: {e}")))?;
            let order = yaml_keys(&alone);
            match parsed.get("item").cloned() {
                Some(Value::Array(mut one)) if one.len() == 1 => match one.pop() {
                    Some(Value::Object(fields)) => Ok(YamlItem {
                        fields,
                        order,
                        start,
                        end,
                    }),
                    _ => Err(FormatError("an mcpServers item is not a map".into())),
                },
                _ => Err(FormatError("an mcpServers item is not one map".into())),
            }
        })
        .collect()
}

/// The keys of the one item under `item:` in `alone`, in the order they are written.
fn yaml_keys(alone: &str) -> Vec<String> {
    let node = marked_yaml::parse_yaml_with_options(
        0,
        alone,
        marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true),
    );
    node.ok()
        .as_ref()
        .and_then(|n| n.as_mapping())
        .and_then(|m| m.get_sequence("item"))
        .and_then(|s| s.get_mapping(0))
        .map(|m| m.keys().map(|k| k.as_str().to_string()).collect())
        .unwrap_or_default()
}

/// Continue's YAML: every item of `mcpServers` wrapped (its text replaced by an item in YAML
/// flow style, which the original text replaces again on unwrap).
pub fn wrap_yaml(text: &str, settings: &ProxySettings) -> Result<Wrapped, FormatError> {
    let declared = super::formats::parse(Host::Continue, super::Scope::User, text)?;
    let items = yaml_segments(text)?;
    let mut out = Wrapped::default();
    // A server the host reads that is not an item of a block list under `mcpServers:` (flow
    // style, a quoted key, an anchor) has no text mcplock can replace: named, not skipped
    // in silence.
    let segmented: std::collections::BTreeSet<&str> = items
        .iter()
        .filter_map(|i| i.fields.get("name").and_then(Value::as_str))
        .collect();
    for d in declared
        .iter()
        .filter(|d| !segmented.contains(d.key.as_str()))
    {
        out.skipped.push((
            d.key.clone(),
            "it is not written as an item of a block list under `mcpServers:`; write it so to wrap it".into(),
        ));
    }
    let mut edits: Vec<Edit> = Vec::new();
    for YamlItem {
        fields: item,
        order,
        start,
        end,
    } in items
    {
        let Some(name) = item.get("name").and_then(Value::as_str).map(str::to_owned) else {
            out.skipped.push(("(no name)".into(), "has no name".into()));
            continue;
        };
        let mut shaped = item.clone();
        // YAML scalars arrive as strings; Continue's `disabled: true` too.
        if shaped.get("disabled").and_then(Value::as_str) == Some("true") {
            shaped.insert("disabled".into(), json!(true));
        }
        match wrap_entry(Host::Continue, &name, &shaped, settings) {
            Ok(mut wrapped) => {
                if wrapped.get("type").is_some() {
                    wrapped.remove("type");
                }
                out.originals.insert(
                    vec!["mcpServers".into(), name.clone()],
                    text[start..end].to_string(),
                );
                let indent = text[start..].len() - text[start..].trim_start().len();
                edits.push(edit(
                    start,
                    end,
                    render_yaml_item(&name, &order, &wrapped, indent),
                ));
            }
            Err(why) => out.skipped.push((name, why)),
        }
    }
    out.text = super::patch::apply(text, &mut edits);
    out.edits = edits;
    Ok(out)
}

/// Continue's YAML: the original text of every wrapped item put back.
pub fn unwrap_yaml(text: &str, originals: &Originals) -> Result<Restored, FormatError> {
    readable(Host::Continue, text)?;
    let mut edits: Vec<Edit> = Vec::new();
    let mut unknown = Vec::new();
    for YamlItem {
        fields: item,
        start,
        end,
        ..
    } in yaml_segments(text)?
    {
        if !is_wrapped(&item) {
            continue;
        }
        let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
        match originals.get(&vec!["mcpServers".to_string(), name.to_string()]) {
            Some(original) => edits.push(edit(start, end, original.clone())),
            None => unknown.push(format!("mcpServers.{name}")),
        }
    }
    restore(text, edits, &unknown)
}

/// One list item: `name` first, then every other field, values in JSON flow style (valid
/// YAML).
pub(super) fn render_yaml_item(
    name: &str,
    order: &[String],
    entry: &Map<String, Value>,
    indent: usize,
) -> String {
    let pad = " ".repeat(indent);
    let mut out = format!("{pad}- name: {}\n", json!(name));
    for (k, v) in in_order(order, entry) {
        if k == "name" {
            continue;
        }
        out.push_str(&format!("{pad}  {}: {}\n", json!(k), v));
    }
    out
}
