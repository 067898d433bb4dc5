//! The MCP servers agent hosts already run: where each host keeps its config, what each config
//! declares, and how an entry becomes an endpoint mcplock can scan, lock or proxy.
//!
//! Secrets stay where they are: env values and header values are read into memory to reach the
//! server and are never written, printed or logged; only their names are recorded.

pub mod formats;
pub mod rewrite;
#[cfg(test)]
mod tests;

use crate::transport::Endpoint;
use crate::transport::http::{HttpEndpoint, check_url};
use crate::transport::stdio::ServerCommand;
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
                Ok(declared) => found.extend(declared.into_iter().map(|declared| Found {
                    file: one.clone(),
                    declared,
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
/// `${workspaceFolder}` and `${userHome}` expanded. A placeholder that only the host can fill
/// (VS Code's `${input:...}` prompts) or a variable that is not set makes the entry unusable,
/// with the reason.
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
                .map(|(k, v)| Ok((k.clone(), expand(v)?)))
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
            let url = check_url(&expand(url)?, false).map_err(|e| e.to_string())?;
            let mut headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), expand(v)?)))
                .collect::<Result<_, String>>()?;
            if let Some(var) = bearer_env {
                let token = lookup(var)
                    .ok_or_else(|| format!("its bearer token variable {var} is not set"))?;
                headers.push(("Authorization".into(), format!("Bearer {token}")));
            }
            Ok(Endpoint::Http(HttpEndpoint {
                url,
                headers,
                extra_roots: None,
            }))
        }
    }
}

/// What a lock records for an entry (argv and env names, or URL and header names), without
/// reading any env or header value: an entry whose values only the host can fill still has a
/// launch to compare with the lock.
pub fn recorded_launch(
    spec: &Spec,
    lookup: &dyn Fn(&str) -> Option<String>,
    workspace: &Path,
    home: &Path,
) -> Result<crate::core::launch::Launch, String> {
    let names_only = match spec {
        Spec::Stdio {
            command,
            args,
            env,
            cwd,
        } => Spec::Stdio {
            command: command.clone(),
            args: args.clone(),
            env: env
                .iter()
                .map(|(k, _)| (k.clone(), String::new()))
                .collect(),
            cwd: cwd.clone(),
        },
        Spec::Http {
            url,
            headers,
            bearer_env,
        } => {
            let mut headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, _)| (k.clone(), String::new()))
                .collect();
            if bearer_env.is_some() {
                headers.push(("Authorization".into(), String::new()));
            }
            Spec::Http {
                url: url.clone(),
                headers,
                bearer_env: None,
            }
        }
    };
    resolve(&names_only, lookup, workspace, home).map(|e| e.launch())
}

fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    workspace: &Path,
    home: &Path,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "an unclosed ${ in a value".to_string())?;
        let name = &after[..end];
        let value = match name {
            "workspaceFolder" => workspace.to_string_lossy().into_owned(),
            "userHome" => home.to_string_lossy().into_owned(),
            _ if name.starts_with("input:") => {
                return Err(format!(
                    "it uses ${{{name}}}, which the host asks the user for when it starts the server; mcplock cannot answer that prompt"
                ));
            }
            _ => {
                let (var, default) = match name.split_once(":-") {
                    Some((var, default)) => (var, Some(default)),
                    None => (name, None),
                };
                let var = var.strip_prefix("env:").unwrap_or(var);
                if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "it uses ${{{name}}}, a placeholder mcplock does not know"
                    ));
                }
                match (lookup(var), default) {
                    (Some(value), _) => value,
                    (None, Some(default)) => default.to_string(),
                    (None, None) => {
                        return Err(format!("it uses ${{{var}}}, which is not set"));
                    }
                }
            }
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
