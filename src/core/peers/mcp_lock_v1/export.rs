//! Our lock written as an `mcp-lock/1` document, as far as that format carries it; what it
//! cannot carry is named, server by server, never dropped silently.

use super::{digest, integrity_payload, surface_hash};
use crate::core::artifact::{Artifact, Kind};
use crate::core::launch::Launch;
use crate::core::lockfile::{Lockfile, ServerLock};
use serde_json::{Map, Value, json};

/// What an export needs besides the lock: the client the entries are for (the format names
/// one, our lock does not) and the time written as each entry's `resolvedAt` and `lockedAt`
/// (the format requires them, our lock records no time).
pub struct ExportOptions<'a> {
    pub client: &'a str,
    pub at: &'a str,
}

/// One server's part of an export: carried (with what of it was not), or left out and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Carried {
    Entry { server: String, lost: Vec<String> },
    LeftOut { server: String, why: String },
}

/// The document (entries in the lock's order) and what happened to each server.
pub fn export(lock: &Lockfile, options: &ExportOptions<'_>) -> (Value, Vec<Carried>) {
    let mut entries = Vec::new();
    let mut carried = Vec::new();
    for (name, server) in &lock.servers {
        match entry(name, server, options) {
            Ok((entry, lost)) => {
                entries.push(Value::Object(entry));
                carried.push(Carried::Entry {
                    server: name.clone(),
                    lost,
                });
            }
            Err(why) => carried.push(Carried::LeftOut {
                server: name.clone(),
                why,
            }),
        }
    }
    let document = json!({
        "entries": entries,
        "generatedAt": options.at,
        "specVersion": super::SPEC_VERSION,
        "updatedAt": options.at,
    });
    (document, carried)
}

fn entry(
    name: &str,
    server: &ServerLock,
    options: &ExportOptions<'_>,
) -> Result<(Map<String, Value>, Vec<String>), String> {
    let mut lost = lost_of(server);
    let target = target(server, &mut lost)?;
    let tools: Vec<Map<String, Value>> = server.tools.values().map(|d| d.to_map()).collect();
    let coverage = ["name", "description", "inputSchema"];
    if tools
        .iter()
        .any(|t| t.keys().any(|k| !coverage.contains(&k.as_str())))
    {
        lost.push(
            "what tools declare besides their name, description and inputSchema (annotations, outputSchema, title, _meta): the surface hash covers only those three".into(),
        );
    }
    let version = server
        .server_info
        .as_ref()
        .and_then(|i| i.get("version"))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or("unknown");
    let mut entry = Map::new();
    entry.insert("client".into(), json!(options.client));
    entry.insert(
        "configDigest".into(),
        json!(digest(&server.launch.to_json())),
    );
    entry.insert(
        "extensions".into(),
        json!({"dev.mcplock": {"digest": server.digest(name).to_string()}}),
    );
    entry.insert("lockedAt".into(), json!(options.at));
    entry.insert("name".into(), json!(name));
    entry.insert("resolvedAt".into(), json!(options.at));
    entry.insert("scope".into(), json!("project"));
    entry.insert("source".into(), json!({"registry": "manual"}));
    entry.insert(
        "surface".into(),
        json!({
            "coverage": coverage,
            "hash": surface_hash(&tools, &coverage),
            "toolCount": tools.len(),
        }),
    );
    entry.insert("target".into(), target);
    entry.insert("version".into(), json!(version));
    let integrity = super::digest_bytes(&integrity_payload(&entry));
    entry.insert("integrity".into(), json!(integrity));
    Ok((entry, lost))
}

/// What a server's target is in mcp-lock/1 terms: a remote server at an https URL, or a
/// package of a registry; anything else has no place there.
fn target(server: &ServerLock, lost: &mut Vec<String>) -> Result<Value, String> {
    match &server.launch {
        Launch::Http {
            url,
            header_names,
            context,
        } => {
            if !url.starts_with("https://") {
                return Err(format!(
                    "its URL is not https (mcp-lock/1 takes only https remotes): {}",
                    crate::core::launch::redact_url(url)
                ));
            }
            if !header_names.is_empty() {
                lost.push(format!(
                    "the names of the headers it is sent ({}): mcp-lock/1 names the environment variables holding them, which the lock does not record",
                    header_names.join(", ")
                ));
            }
            if let Some(context) = context {
                lost.push(format!("its credential context ({context})"));
            }
            if server.authorization.is_some() {
                lost.push(
                    "its OAuth authorization surface (issuer, authorization servers, scopes)"
                        .into(),
                );
            }
            Ok(json!({"transport": "streamable-http", "type": "remote", "url": url}))
        }
        Launch::Stdio { .. } => package(server.artifact.as_ref(), lost),
    }
}

fn package(artifact: Option<&Artifact>, lost: &mut Vec<String>) -> Result<Value, String> {
    let resolved = match artifact {
        Some(Artifact::Resolved(resolved)) => resolved,
        Some(Artifact::Unresolved { reason }) => {
            return Err(format!("what its command runs was not resolved ({reason})"));
        }
        None => return Err("the lock records no artifact for its command".into()),
    };
    let registry = match resolved.kind {
        Kind::Npm => "npm",
        Kind::Pypi => "pypi",
        Kind::Oci => "oci",
        Kind::File => {
            return Err(
                "it runs a file, not a registry's package (mcp-lock/1 locks packages and remotes)"
                    .into(),
            );
        }
    };
    let identifier = match resolved.kind {
        Kind::Oci => format!("{}@{}", resolved.name, resolved.digest),
        _ => resolved.name.clone(),
    };
    let mut target = json!({
        "identifier": identifier,
        "registryType": registry,
        "transport": "stdio",
        "type": "package",
    });
    if let Some(version) = &resolved.version {
        target["version"] = json!(version);
    }
    if resolved.content.is_some() {
        lost.push(
            "the digests of the files it runs (the package's content): mcp-lock/1 pins a package by name and version"
                .into(),
        );
    }
    if resolved.kind != Kind::Oci {
        lost.push(format!(
            "its registry digest ({}): mcp-lock/1 takes only sha256 digests of an artifact",
            resolved.digest.split('-').next().unwrap_or("digest")
        ));
    }
    Ok(target)
}

/// What of a server no mcp-lock/1 entry holds, whatever its target.
fn lost_of(server: &ServerLock) -> Vec<String> {
    let mut lost = Vec::new();
    let count = |n: usize, what: &str| (n > 0).then(|| format!("its {n} {what}"));
    lost.extend(count(server.prompts.len(), "prompts"));
    lost.extend(count(server.resource_templates.len(), "resource templates"));
    lost.extend(count(
        server.resources.as_ref().map_or(0, |r| r.len()),
        "static resources",
    ));
    if server.instructions.is_some() {
        lost.push("its instructions".into());
    }
    if !server.launch.env_keys().is_empty() {
        lost.push(format!(
            "the names of its environment variables ({})",
            server.launch.env_keys().join(", ")
        ));
    }
    lost
}
