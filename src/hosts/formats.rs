//! Reading the MCP server entries of each host's config format: pure functions from a file's
//! text to the servers it declares, as written (placeholders unexpanded, secrets in memory only).

use super::{Host, Scope};
use serde_json::{Map, Value};

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// One server as a host's config declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    /// The server's key in the config (the name the host shows).
    pub key: String,
    pub scope: Scope,
    /// For Claude Code's per-project entries in `~/.claude.json`: the project directory.
    pub project: Option<String>,
    /// The host will not start it (`disabled: true`, `enabled = false`).
    pub disabled: bool,
    /// What to run or reach, or why the entry cannot be used.
    pub spec: Result<Spec, String>,
    /// For an entry `wrap` rewrote, the lockfile its `mcplock proxy` enforces (`spec` is
    /// then the server behind the proxy; see [`behind_proxy`]).
    pub proxied: Option<String>,
}

/// What an entry says to run or reach. Values are as written: `${...}` not yet expanded.
#[derive(Clone, PartialEq, Eq)]
pub enum Spec {
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        /// The directory to run it in (relative to the workspace when relative).
        cwd: Option<String>,
    },
    Http {
        url: String,
        headers: Vec<(String, String)>,
        /// Environment variable holding a bearer token (Codex `bearer_token_env_var`).
        bearer_env: Option<String>,
    },
}

impl std::fmt::Debug for Spec {
    /// Names only: env and header values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spec::Stdio {
                command,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env_keys", &env.iter().map(|(k, _)| k).collect::<Vec<_>>())
                .field("cwd", cwd)
                .finish(),
            Spec::Http {
                url,
                headers,
                bearer_env,
            } => f
                .debug_struct("Http")
                .field("url", url)
                .field(
                    "header_names",
                    &headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                )
                .field("bearer_env", bearer_env)
                .finish(),
        }
    }
}

/// Why a config file cannot be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct FormatError(pub String);

/// Whether `command args...` runs mcplock's proxy: the program is mcplock itself (named
/// `mcplock`, or this very executable), given `proxy` first. Decided by what runs, not by a
/// name that merely starts like it (a server called `mcplock-helper` is a server).
pub fn runs_the_proxy(command: &str, first: Option<&str>) -> bool {
    if first != Some("proxy") {
        return false;
    }
    let path = std::path::Path::new(command);
    let named = path
        .file_name()
        .is_some_and(|n| n == "mcplock" || n == "mcplock.exe");
    named
        || std::env::current_exe()
            .ok()
            .zip(std::fs::canonicalize(path).ok())
            .is_some_and(|(me, it)| std::fs::canonicalize(me).is_ok_and(|me| me == it))
}

/// The lockfile a wrapped entry's proxy enforces (its `--lockfile`, else the proxy's
/// default); `None` for an entry that does not run `mcplock proxy`.
pub fn proxied_lockfile(spec: &Spec) -> Option<String> {
    let Spec::Stdio { command, args, .. } = spec else {
        return None;
    };
    if !runs_the_proxy(command, args.first().map(String::as_str)) {
        return None;
    }
    let flags = args.iter().take_while(|a| *a != "--");
    let mut lockfile = None;
    let mut previous: Option<&String> = None;
    for arg in flags {
        if let Some(path) = arg.strip_prefix("--lockfile=") {
            lockfile = Some(path.to_string());
        } else if previous.is_some_and(|p| p == "--lockfile") {
            lockfile = Some(arg.clone());
        }
        previous = Some(arg);
    }
    Some(lockfile.unwrap_or_else(|| "mcp-lock.json".to_string()))
}

/// What mcplock wrote means what it wraps: `mcplock proxy … -- CMD ARGS` is the command `CMD
/// ARGS` (its env and cwd kept), `mcplock proxy … --url URL --header 'Name: ${VAR}'
/// [--bearer-env VAR]` is that URL with each header's value taken from the entry's env var
/// `VAR` (where `wrap` moved it). Any other entry is returned as it is.
pub fn behind_proxy(spec: Spec) -> Spec {
    let Spec::Stdio {
        command,
        args,
        env,
        cwd,
    } = &spec
    else {
        return spec;
    };
    if !runs_the_proxy(command, args.first().map(String::as_str)) {
        return spec;
    }
    if let Some(at) = args.iter().position(|a| a == "--") {
        return match args[at + 1..].split_first() {
            Some((inner, rest)) => Spec::Stdio {
                command: inner.clone(),
                args: rest.to_vec(),
                env: env.clone(),
                cwd: cwd.clone(),
            },
            None => spec,
        };
    }
    let (mut url, mut headers, mut bearer_env) = (None, Vec::new(), None);
    let mut flags = args.iter().skip(1);
    while let Some(flag) = flags.next() {
        match flag.as_str() {
            "--url" => url = flags.next().cloned(),
            "--bearer-env" => bearer_env = flags.next().cloned(),
            "--header" => {
                if let Some((name, value)) = flags.next().and_then(|h| h.split_once(':')) {
                    let value = value.trim();
                    let from_env = value
                        .strip_prefix("${")
                        .and_then(|v| v.strip_suffix('}'))
                        .and_then(|var| env.iter().find(|(k, _)| k == var));
                    let value = from_env.map_or(value, |(_, v)| v.as_str());
                    headers.push((name.trim().to_string(), value.to_string()));
                }
            }
            _ => {}
        }
    }
    match url {
        Some(url) => Spec::Http {
            url,
            headers,
            bearer_env,
        },
        None => spec,
    }
}

/// The servers a config file of `host` declares, as written (a wrapped entry runs `mcplock
/// proxy`; [`crate::hosts::discover`] reads it as the server behind the proxy).
pub fn parse(host: Host, scope: Scope, text: &str) -> Result<Vec<Declared>, FormatError> {
    match host {
        Host::Codex => codex(text, scope),
        Host::Continue => continue_yaml(text, scope),
        _ => {
            let doc = jsonc(text)?;
            match host {
                Host::VsCode => {
                    // A workspace mcp.json has `servers`; a user settings.json has them under `mcp`.
                    let servers = doc
                        .get("servers")
                        .or_else(|| doc.get("mcp").and_then(|m| m.get("servers")));
                    json_servers(host, servers, scope, None)
                }
                Host::ClaudeCode => claude_code(&doc, scope),
                _ => json_servers(host, doc.get("mcpServers"), scope, None),
            }
        }
    }
}

/// What the JSON family of configs may hold: comments and trailing commas (VS Code's files are
/// JSONC; the others are plain JSON, which this reads the same).
pub const JSONC: jsonc_parser::ParseOptions = jsonc_parser::ParseOptions {
    allow_comments: true,
    allow_loose_object_property_names: false,
    allow_trailing_commas: true,
    allow_missing_commas: false,
    allow_single_quoted_strings: false,
    allow_hexadecimal_numbers: false,
    allow_unary_plus_numbers: false,
};

/// A JSON-family config. A key given twice in one object is refused: hosts and mcplock could
/// then read different servers (one takes the first, another the last), and a rewrite could
/// change the copy the host does not read.
fn jsonc(text: &str) -> Result<Value, FormatError> {
    if let Ok(parsed) = jsonc_parser::parse_to_ast(text, &Default::default(), &JSONC)
        && let Some(value) = &parsed.value
        && let Some(key) = duplicate_key(value)
    {
        return Err(FormatError(format!(
            "the key {key:?} is given twice in one object; a host may read the other copy than mcplock does: remove one"
        )));
    }
    match jsonc_parser::parse_to_serde_value(text, &JSONC) {
        Ok(Some(value @ Value::Object(_))) => Ok(value),
        Ok(Some(_)) => Err(FormatError("the file is not a JSON object".into())),
        Ok(None) => Ok(Value::Object(Map::new())),
        Err(e) => Err(FormatError(format!("not valid JSON: {e}"))),
    }
}

/// The first key found twice in one object, at any depth (walked without recursion).
fn duplicate_key(value: &jsonc_parser::ast::Value<'_>) -> Option<String> {
    use jsonc_parser::ast::Value as Ast;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Ast::Object(object) => {
                let mut seen = std::collections::HashSet::new();
                for prop in &object.properties {
                    if !seen.insert(prop.name.as_str()) {
                        return Some(prop.name.as_str().to_string());
                    }
                    stack.push(&prop.value);
                }
            }
            Ast::Array(array) => stack.extend(array.elements.iter()),
            _ => {}
        }
    }
    None
}

/// Claude Code's `.mcp.json` (project scope) or `~/.claude.json`: user-scope `mcpServers`,
/// and per-project (local scope) `projects.{dir}.mcpServers`.
fn claude_code(doc: &Value, scope: Scope) -> Result<Vec<Declared>, FormatError> {
    let mut out = json_servers(Host::ClaudeCode, doc.get("mcpServers"), scope, None)?;
    if let Some(Value::Object(projects)) = doc.get("projects") {
        for (dir, project) in projects {
            out.extend(json_servers(
                Host::ClaudeCode,
                project.get("mcpServers"),
                Scope::Local,
                Some(dir.clone()),
            )?);
        }
    }
    Ok(out)
}

fn json_servers(
    host: Host,
    servers: Option<&Value>,
    scope: Scope,
    project: Option<String>,
) -> Result<Vec<Declared>, FormatError> {
    let servers = match servers {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(servers)) => servers,
        Some(_) => {
            return Err(FormatError(
                "the servers field is not an object of named servers".into(),
            ));
        }
    };
    Ok(servers
        .iter()
        .map(|(key, entry)| Declared {
            key: key.clone(),
            scope,
            project: project.clone(),
            disabled: entry.get("disabled").and_then(Value::as_bool) == Some(true)
                || entry.get("enabled").and_then(Value::as_bool) == Some(false),
            proxied: None,
            spec: entry
                .as_object()
                .ok_or_else(|| "the entry is not an object".to_string())
                .and_then(|e| json_spec(host, e)),
        })
        .collect())
}

/// One JSON entry: a command, or a URL under the name this host uses for it.
fn json_spec(host: Host, entry: &Map<String, Value>) -> Result<Spec, String> {
    let url_keys: &[&str] = match host {
        Host::Windsurf => &["serverUrl", "url"],
        Host::Gemini => &["httpUrl", "url"],
        _ => &["url"],
    };
    let url = url_keys.iter().find_map(|k| entry.get(*k));
    match (entry.get("command"), url) {
        (Some(_), Some(_)) => Err("it has both a command and a URL".into()),
        (Some(command), None) => Ok(Spec::Stdio {
            command: text(command, "command")?,
            args: match entry.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => texts(v, "args")?,
            },
            env: pairs(entry.get("env"), "env")?,
            cwd: match entry.get("cwd") {
                None | Some(Value::Null) => None,
                Some(cwd) => Some(text(cwd, "cwd")?),
            },
        }),
        (None, Some(url)) => Ok(Spec::Http {
            url: text(url, "url")?,
            headers: pairs(entry.get("headers"), "headers")?,
            bearer_env: None,
        }),
        (None, None) => Err("it has neither a command nor a URL".into()),
    }
}

fn text(value: &Value, field: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{field} is not a string"))
}

fn texts(value: &Value, field: &str) -> Result<Vec<String>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{field} is not an array of strings"))?
        .iter()
        .map(|v| text(v, field))
        .collect()
}

fn pairs(value: Option<&Value>, field: &str) -> Result<Vec<(String, String)>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), text(v, &format!("{field}.{k}"))?)))
            .collect(),
        Some(_) => Err(format!("{field} is not an object of strings")),
    }
}

/// Codex's `config.toml`: `[mcp_servers.NAME]` tables.
fn codex(text: &str, scope: Scope) -> Result<Vec<Declared>, FormatError> {
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| FormatError(format!("not valid TOML: {e}")))?;
    let Some(servers) = doc.get("mcp_servers") else {
        return Ok(Vec::new());
    };
    let servers = servers
        .as_table_like()
        .ok_or_else(|| FormatError("mcp_servers is not a table".into()))?;
    Ok(servers
        .iter()
        .map(|(key, item)| {
            let table = item.as_table_like();
            let disabled = table
                .and_then(|t| t.get("enabled"))
                .and_then(|v| v.as_bool())
                == Some(false);
            Declared {
                key: key.to_string(),
                scope,
                project: None,
                disabled,
                proxied: None,
                spec: table
                    .ok_or_else(|| "the entry is not a table".to_string())
                    .and_then(codex_spec),
            }
        })
        .collect())
}

fn codex_spec(table: &dyn toml_edit::TableLike) -> Result<Spec, String> {
    let string = |key: &str| -> Result<Option<String>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| format!("{key} is not a string")),
        }
    };
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match table.get(key) {
            None => Ok(Vec::new()),
            Some(item) => item
                .as_array()
                .ok_or_else(|| format!("{key} is not an array of strings"))?
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{key} is not an array of strings"))
                })
                .collect(),
        }
    };
    let map = |key: &str| -> Result<Vec<(String, String)>, String> {
        match table.get(key) {
            None => Ok(Vec::new()),
            Some(item) => item
                .as_table_like()
                .ok_or_else(|| format!("{key} is not a table of strings"))?
                .iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|s| (k.to_string(), s.to_string()))
                        .ok_or_else(|| format!("{key}.{k} is not a string"))
                })
                .collect(),
        }
    };
    match (string("command")?, string("url")?) {
        (Some(_), Some(_)) => Err("it has both a command and a URL".into()),
        (Some(command), None) => Ok(Spec::Stdio {
            command,
            args: strings("args")?,
            env: map("env")?,
            cwd: string("cwd")?,
        }),
        (None, Some(url)) => {
            let mut headers = map("http_headers")?;
            // Headers whose value Codex reads from an environment variable.
            for (name, var) in map("env_http_headers")? {
                headers.push((name, format!("${{{var}}}")));
            }
            Ok(Spec::Http {
                url,
                headers,
                bearer_env: string("bearer_token_env_var")?,
            })
        }
        (None, None) => Err("it has neither a command nor a URL".into()),
    }
}

/// Continue's YAML: `mcpServers` is a list of `{name, command, args, env}` or
/// `{name, type, url}` blocks.
fn continue_yaml(text: &str, scope: Scope) -> Result<Vec<Declared>, FormatError> {
    // Continue's YAML parser refuses a key given twice in one map: so does this reader.
    let doc: Value = marked_yaml::from_yaml_with_options(
        0,
        text,
        marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true),
    )
    .map_err(|e| FormatError(format!("not valid YAML: {e}")))?;
    let servers = match doc.get("mcpServers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(FormatError("mcpServers is not a list".into())),
    };
    // A server is known by its name (the lock's key, the proxy's --name): two of one name
    // would be one lock entry for two launches.
    let mut names = std::collections::BTreeSet::new();
    for name in servers
        .iter()
        .filter_map(|e| e.get("name").and_then(Value::as_str))
    {
        if !names.insert(name) {
            return Err(FormatError(format!(
                "two mcpServers items are named {:?}; give each server a name of its own",
                crate::core::text::escape(name)
            )));
        }
    }
    Ok(servers
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let key = entry
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("#{}", i + 1));
            Declared {
                key,
                scope,
                project: None,
                disabled: false,
                proxied: None,
                spec: entry
                    .as_object()
                    .ok_or_else(|| "the entry is not a map".to_string())
                    .and_then(|e| {
                        if e.get("name").and_then(Value::as_str).is_none() {
                            Err("it has no name".to_string())
                        } else {
                            json_spec(Host::Continue, e)
                        }
                    }),
            }
        })
        .collect())
}

impl crate::core::code::Coded for FormatError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::HostConfigInvalid
    }
}
