//! The MCP servers agent hosts already run: where each host keeps its config, what each config
//! declares, and how an entry becomes an endpoint mcplock can scan, lock or proxy.
//!
//! Secrets stay where they are: env values and header values are read into memory to reach the
//! server and are never written, printed or logged; only their names are recorded.

pub mod formats;
pub mod patch;
pub mod pin;
pub mod rewrite;
#[cfg(test)]
mod tests;
mod toml_entries;

use crate::core::launch::{Launch, Piece, pieces, redact_url, url_credential};
use crate::transport::Endpoint;
use crate::transport::http::{HttpEndpoint, check_url};
use crate::transport::process::ServerCommand;
pub use formats::{Declared, Spec};
use std::path::{Path, PathBuf};

/// The hosts whose configs mcplock reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    VsCode,
    Windsurf,
    Gemini,
    Codex,
    Continue,
}

impl Host {
    pub const ALL: [Host; 8] = [
        Host::ClaudeDesktop,
        Host::ClaudeCode,
        Host::Cursor,
        Host::VsCode,
        Host::Windsurf,
        Host::Gemini,
        Host::Codex,
        Host::Continue,
    ];

    /// The name used on the command line (`--host`).
    pub fn id(self) -> &'static str {
        match self {
            Host::ClaudeDesktop => "claude-desktop",
            Host::ClaudeCode => "claude-code",
            Host::Cursor => "cursor",
            Host::VsCode => "vscode",
            Host::Windsurf => "windsurf",
            Host::Gemini => "gemini",
            Host::Codex => "codex",
            Host::Continue => "continue",
        }
    }

    pub fn parse(id: &str) -> Option<Host> {
        Host::ALL.into_iter().find(|h| h.id() == id)
    }

    /// The config files this host documents, user scope first, for a user whose home is
    /// `home` working in the project directory `project`.
    pub fn locations(self, home: &Path, project: &Path) -> Vec<ConfigFile> {
        let user = |p: PathBuf| ConfigFile::new(self, Scope::User, p);
        let in_project = |p: PathBuf| ConfigFile::new(self, Scope::Project, p);
        let app_support = if cfg!(target_os = "macos") {
            home.join("Library/Application Support")
        } else {
            home.join(".config")
        };
        match self {
            Host::ClaudeDesktop => {
                vec![user(app_support.join("Claude/claude_desktop_config.json"))]
            }
            Host::ClaudeCode => vec![
                user(home.join(".claude.json")),
                in_project(project.join(".mcp.json")),
            ],
            Host::Cursor => vec![
                user(home.join(".cursor/mcp.json")),
                in_project(project.join(".cursor/mcp.json")),
            ],
            Host::VsCode => vec![
                user(app_support.join("Code/User/mcp.json")),
                user(app_support.join("Code/User/settings.json")),
                in_project(project.join(".vscode/mcp.json")),
            ],
            Host::Windsurf => vec![user(home.join(".codeium/windsurf/mcp_config.json"))],
            Host::Gemini => vec![
                user(home.join(".gemini/settings.json")),
                in_project(project.join(".gemini/settings.json")),
            ],
            Host::Codex => vec![user(home.join(".codex/config.toml"))],
            Host::Continue => vec![
                user(home.join(".continue/config.yaml")),
                in_project(project.join(".continue/mcpServers")),
            ],
        }
    }
}

/// Whose config it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The user's own, for every project.
    User,
    /// The project's, usually checked in.
    Project,
    /// The user's, for one project (Claude Code's `projects` entries).
    Local,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Project => "project",
            Scope::Local => "local",
        }
    }
}

/// A config file a host reads (or a folder of them, for Continue's `mcpServers/`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigFile {
    pub host: Host,
    pub scope: Scope,
    pub path: PathBuf,
}

impl ConfigFile {
    pub fn new(host: Host, scope: Scope, path: PathBuf) -> ConfigFile {
        ConfigFile { host, scope, path }
    }
}

/// One server found in a config file.
#[derive(Clone, Debug)]
pub struct Found {
    pub file: ConfigFile,
    pub declared: Declared,
}

/// A config file that exists but cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub file: ConfigFile,
    pub reason: String,
}

/// Reads every config of `hosts` that exists (or only `config`, read as the one host given):
/// the servers they declare, and the files that could not be read. A missing file is not an
/// error: most users run few hosts.
pub fn discover(
    hosts: &[Host],
    config: Option<&Path>,
    home: &Path,
    project: &Path,
) -> (Vec<Found>, Vec<Unreadable>) {
    let files: Vec<ConfigFile> = match (config, hosts) {
        (Some(path), [host]) => vec![ConfigFile::new(*host, Scope::User, path.to_path_buf())],
        _ => hosts
            .iter()
            .flat_map(|h| h.locations(home, project))
            .collect(),
    };
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for file in files {
        let paths = if file.path.is_dir() {
            // A folder of YAML files (Continue's mcpServers/), in name order.
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&file.path)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                        .collect()
                })
                .unwrap_or_default();
            paths.sort();
            paths
        } else {
            vec![file.path.clone()]
        };
        for path in paths {
            let one = ConfigFile::new(file.host, file.scope, path.clone());
            let text = match crate::edge::fs::read_bounded(&path, formats::MAX_CONFIG_BYTES) {
                Ok(Some(bytes)) => match String::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(_) => {
                        unreadable.push(Unreadable {
                            file: one,
                            reason: "not UTF-8".into(),
                        });
                        continue;
                    }
                },
                Ok(None) => continue,
                Err(e) => {
                    unreadable.push(Unreadable {
                        file: one,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            match formats::parse(file.host, file.scope, &text) {
                // What `wrap` wrote is read as what it means: the server behind the proxy.
                Ok(declared) => found.extend(declared.into_iter().map(|mut declared| {
                    declared.proxied = declared
                        .spec
                        .as_ref()
                        .ok()
                        .and_then(formats::proxied_lockfile);
                    declared.spec = declared.spec.map(formats::behind_proxy);
                    Found {
                        file: one.clone(),
                        declared,
                    }
                })),
                Err(e) => unreadable.push(Unreadable {
                    file: one,
                    reason: e.to_string(),
                }),
            }
        }
    }
    (found, unreadable)
}

/// The endpoint an entry names, with `${VAR}` (also `${env:VAR}`, `${VAR:-default}`),
/// `${workspaceFolder}` and `${userHome}` expanded: what mcplock starts or reaches. A
/// placeholder that only the host can fill (VS Code's `${input:...}` prompts) or a variable that
/// is not set makes the entry unusable, with the reason; so does a URL that carries credentials
/// (they belong in a header from the environment). No reason holds an expanded value.
pub fn resolve(
    spec: &Spec,
    lookup: &dyn Fn(&str) -> Option<String>,
    workspace: &Path,
    home: &Path,
) -> Result<Endpoint, String> {
    let expand = |text: &str| expand(text, lookup, workspace, home);
    match spec {
        Spec::Stdio {
            command,
            args,
            env,
            cwd,
        } => Ok(Endpoint::Stdio(ServerCommand {
            program: expand(command)?,
            args: args.iter().map(|a| expand(a)).collect::<Result<_, _>>()?,
            env: env
                .iter()
                .map(|(k, v)| {
                    let value = expand(v)?;
                    crate::edge::secrets::remember_named(k, &value);
                    Ok((k.clone(), value))
                })
                .collect::<Result<_, String>>()?,
            // A relative directory is the workspace's (as the hosts that take one read it).
            cwd: match cwd {
                Some(dir) => Some(workspace.join(expand(dir)?)),
                None => None,
            },
        })),
        Spec::Http {
            url,
            headers,
            bearer_env,
        } => {
            refuse_credentials(url)?;
            let expanded = expand(url)?;
            if url_credential(&expanded).is_some() {
                return Err(format!(
                    "its URL {} expands to one that carries credentials; {URL_FIX}",
                    redact_url(url)
                ));
            }
            let url = checked_url(url, &expanded)?;
            let mut headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), secret(expand(v)?))))
                .collect::<Result<_, String>>()?;
            if let Some(var) = bearer_env {
                let token = lookup(var)
                    .map(secret)
                    .ok_or_else(|| format!("its bearer token variable {var} is not set"))?;
                headers.push(("Authorization".into(), format!("Bearer {token}")));
            }
            Ok(Endpoint::Http(HttpEndpoint {
                url,
                headers,
                extra_roots: None,
                context: None,
                oauth: None,
            }))
        }
    }
}

/// What to do about a URL that carries credentials.
pub const URL_FIX: &str = "pass the credential as a header from the environment instead (the entry's headers with a ${env:VAR} value, or Codex's bearer_token_env_var; on the command line --bearer-env VAR or --header 'Name: ${VAR}')";

/// Refuses a URL (as written) with credentials in its user info or its query, naming the fix.
fn refuse_credentials(url: &str) -> Result<(), String> {
    match url_credential(url) {
        Some(what) => Err(format!(
            "its URL {} must not carry credentials (it carries {what}); {URL_FIX}",
            redact_url(url)
        )),
        None => Ok(()),
    }
}

/// The expanded URL checked as an MCP endpoint; a refusal names the URL as written (its
/// placeholders, never what they expanded to).
fn checked_url(written: &str, expanded: &str) -> Result<reqwest::Url, String> {
    use crate::transport::http::SetupError;
    check_url(expanded, false).map_err(|e| {
        let why = match e {
            SetupError::NotAUrl { reason, .. } => format!("is not a URL ({reason})"),
            SetupError::Scheme(_) => "is not http:// or https://".to_string(),
            SetupError::Credentials(_) => format!("carries credentials; {URL_FIX}"),
            SetupError::Insecure(_) => {
                "is plain http:// to a host that is not loopback; use https://".to_string()
            }
            other => other.to_string(),
        };
        format!("its URL {} {why}", redact_url(written))
    })
}

/// What a lock records for an entry: the command and arguments (or the URL) as the config
/// wrote them, `${workspaceFolder}` and `${userHome}` expanded (they say where the code is) and
/// every environment placeholder (`${VAR}`, `${env:VAR}`, `${VAR:-default}`) and `${input:ID}`
/// kept as written, so no value behind one reaches the lock; env and header names; the working
/// directory expanded. Reads no env or header value: an entry whose values only the host can
/// fill still has a launch to compare with the lock.
pub fn recorded_launch(
    spec: &Spec,
    lookup: &dyn Fn(&str) -> Option<String>,
    workspace: &Path,
    home: &Path,
) -> Result<Launch, String> {
    let template = |text: &str| template(text, workspace, home);
    match spec {
        Spec::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut env_keys: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
            env_keys.sort();
            env_keys.dedup();
            let cwd = match cwd {
                Some(dir) => Some(
                    workspace
                        .join(expand(dir, lookup, workspace, home)?)
                        .display()
                        .to_string(),
                ),
                None => None,
            };
            Ok(Launch::Stdio {
                command: template(command)?,
                args: args.iter().map(|a| template(a)).collect::<Result<_, _>>()?,
                env_keys,
                cwd,
            })
        }
        Spec::Http {
            url,
            headers,
            bearer_env,
        } => {
            refuse_credentials(url)?;
            let written = template(url)?;
            // A URL without placeholders is recorded as mcplock reaches it (normalized).
            let url = if written.contains("${") {
                written
            } else {
                checked_url(&written, &written)?.to_string()
            };
            let mut header_names: Vec<String> = headers
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect();
            if bearer_env.is_some() {
                header_names.push("authorization".into());
            }
            header_names.sort();
            header_names.dedup();
            Ok(Launch::Http {
                url,
                header_names,
                context: None,
            })
        }
    }
}

/// A value as a lock records it (see [`recorded_launch`]).
fn template(text: &str, workspace: &Path, home: &Path) -> Result<String, String> {
    let mut out = String::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::WorkspaceFolder => out.push_str(&workspace.to_string_lossy()),
            Piece::UserHome => out.push_str(&home.to_string_lossy()),
            Piece::Env { written, .. } | Piece::Input { written } => out.push_str(written),
        }
    }
    Ok(out)
}

/// A header value or bearer token of a config: remembered as secret (never printed), and
/// returned.
fn secret(value: String) -> String {
    crate::edge::secrets::remember(&value);
    value
}

fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    workspace: &Path,
    home: &Path,
) -> Result<String, String> {
    let mut out = String::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::WorkspaceFolder => out.push_str(&workspace.to_string_lossy()),
            Piece::UserHome => out.push_str(&home.to_string_lossy()),
            Piece::Input { written } => {
                return Err(format!(
                    "it uses {written}, which the host asks the user for when it starts the server; mcplock cannot answer that prompt"
                ));
            }
            Piece::Env { var, default, .. } => match (lookup(var), default) {
                (Some(value), _) => {
                    // What a secret placeholder expands to is never printed or written.
                    crate::edge::secrets::remember_named(var, &value);
                    out.push_str(&value);
                }
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(format!("it uses ${{{var}}}, which is not set")),
            },
        }
    }
    Ok(out)
}
