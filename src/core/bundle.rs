//! Audit bundles: what goes in one, the manifest that binds it, and its README (pure: the ZIP
//! itself is written and read at the edge, `edge::zip`).
//!
//! A bundle holds a signed lockfile, its signature, the signer's public key, a README.txt for
//! people, optionally a policy with its evaluation result, and `manifest.json`: the size and
//! sha256 of every other member plus a summary of what was approved. With a signed manifest
//! (`manifest.json.sig`, over the exact bytes of `manifest.json`) every byte is covered.

use crate::core::canonical::Digest;
use crate::core::json::parse_strict;
use crate::core::launch::Launch;
use crate::core::lockfile::Lockfile;
use crate::core::snapshot::ItemKind;
use crate::core::text::{escape, summary_line};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Format version of `manifest.json`.
pub const BUNDLE_VERSION: u64 = 1;

pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_SIG: &str = "manifest.json.sig";
pub const LOCKFILE: &str = "mcp-lock.json";
pub const LOCKFILE_SIG: &str = "mcp-lock.json.sig";
pub const PUBLIC_KEY: &str = "signer.pub";
pub const README: &str = "README.txt";
pub const POLICY: &str = "policy.yaml";
pub const POLICY_RESULT: &str = "policy-result.json";

/// Every name a bundle may hold; anything else is rejected.
pub const KNOWN_MEMBERS: [&str; 8] = [
    MANIFEST,
    MANIFEST_SIG,
    LOCKFILE,
    LOCKFILE_SIG,
    PUBLIC_KEY,
    README,
    POLICY,
    POLICY_RESULT,
];

/// The members every bundle must have (besides the manifest).
pub const REQUIRED_MEMBERS: [&str; 4] = [LOCKFILE, LOCKFILE_SIG, PUBLIC_KEY, README];

/// Why a bundle does not hold together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("manifest.json is not valid JSON: {0}")]
    ManifestJson(String),
    #[error("manifest.json is not an mcplock bundle manifest: {0}")]
    ManifestShape(String),
    #[error(
        "manifest.json has format version {0}, written by a newer mcplock; this one reads version 1: upgrade mcplock"
    )]
    NewerVersion(u64),
    #[error("member {0:?} is in the ZIP but not in manifest.json (a file was added after export)")]
    NotInManifest(String),
    #[error("member {0:?} is listed in manifest.json but missing from the ZIP")]
    Missing(String),
    #[error("member {name:?} is {actual} bytes, but manifest.json says {expected}")]
    SizeMismatch {
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error("member {0:?} does not match its sha256 in manifest.json (it changed after export)")]
    HashMismatch(String),
    #[error("the bundle has no {0} (every bundle carries it; re-export the bundle)")]
    Required(&'static str),
    #[error("{0} and {1} must come together")]
    Pair(&'static str, &'static str),
    #[error("manifest.json's summary does not match the lockfile: {0}")]
    SummaryMismatch(String),
}

/// One member's size and sha256, as the manifest records them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub size: u64,
    pub sha256: [u8; 32],
}

impl FileEntry {
    pub fn of(bytes: &[u8]) -> FileEntry {
        FileEntry {
            size: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }
}

/// What one server offers, in numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSummary {
    pub name: String,
    pub digest: String,
    pub tools: usize,
    pub prompts: usize,
    pub resource_templates: usize,
    /// `None` when static resources were not locked.
    pub resources: Option<usize>,
}

impl ServerSummary {
    /// As the manifest records it.
    pub fn to_json(&self) -> Value {
        json!({
            "digest": self.digest,
            "name": self.name,
            "prompts": self.prompts,
            "resourceTemplates": self.resource_templates,
            "resources": self.resources,
            "tools": self.tools,
        })
    }
}

/// The outcome of the policy evaluated at export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicySummary {
    pub passed: bool,
    pub rules: usize,
}

/// The manifest: format version, who signed the lockfile, every member, and a summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub mcplock_version: String,
    /// Key id of the lockfile's signer.
    pub signer: Digest,
    pub files: BTreeMap<String, FileEntry>,
    pub servers: Vec<ServerSummary>,
    pub policy: Option<PolicySummary>,
}

/// The summary of every server in a lockfile; `digest_of` gives each server's digest as the
/// lockfile records it (already checked by the strict read).
pub fn summarize(lockfile: &Lockfile, digest_of: impl Fn(&str) -> String) -> Vec<ServerSummary> {
    lockfile
        .servers
        .iter()
        .map(|(name, server)| ServerSummary {
            name: name.clone(),
            digest: digest_of(name),
            tools: server.tools.len(),
            prompts: server.prompts.len(),
            resource_templates: server.resource_templates.len(),
            resources: server.resources.as_ref().map(BTreeMap::len),
        })
        .collect()
}

/// The digest a lockfile document records for a server (empty if none).
/// The digest each server's entry records, by server name.
pub fn recorded_digests(document: &Value) -> BTreeMap<String, String> {
    document
        .get("servers")
        .and_then(Value::as_object)
        .map(|servers| {
            servers
                .keys()
                .map(|name| (name.clone(), recorded_digest(document, name)))
                .collect()
        })
        .unwrap_or_default()
}

fn recorded_digest(document: &Value, server: &str) -> String {
    document
        .get("servers")
        .and_then(|s| s.get(server))
        .and_then(|s| s.get("digest"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Manifest {
    pub fn to_json(&self) -> Value {
        let files: Map<String, Value> = self
            .files
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    json!({"sha256": hex(&f.sha256), "size": f.size}),
                )
            })
            .collect();
        let servers: Vec<Value> = self.servers.iter().map(ServerSummary::to_json).collect();
        let policy = self.policy.map_or(
            Value::Null,
            |p| json!({"passed": p.passed, "rules": p.rules}),
        );
        json!({
            "files": files,
            "mcplockBundle": BUNDLE_VERSION,
            "mcplockVersion": self.mcplock_version,
            "signer": self.signer.to_string(),
            "summary": {"policy": policy, "servers": servers},
        })
    }

    /// The manifest as written: pretty JSON, sorted keys, final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(&self.to_json()).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Reads a manifest strictly: exactly the documented fields, of the documented types.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let value = parse_strict(bytes).map_err(|e| BundleError::ManifestJson(e.to_string()))?;
        let shape = |m: String| BundleError::ManifestShape(m);
        let top = value
            .as_object()
            .ok_or_else(|| shape("expected a JSON object".into()))?;
        match top.get("mcplockBundle").and_then(Value::as_u64) {
            Some(BUNDLE_VERSION) => {}
            Some(v) if v > BUNDLE_VERSION => return Err(BundleError::NewerVersion(v)),
            _ => return Err(shape("no \"mcplockBundle\": 1".into())),
        }
        exact_keys(
            top,
            &[
                "files",
                "mcplockBundle",
                "mcplockVersion",
                "signer",
                "summary",
            ],
            "",
        )
        .map_err(shape)?;
        let mcplock_version = str_field(top, "mcplockVersion", "").map_err(shape)?;
        let signer = Digest::parse(&str_field(top, "signer", "").map_err(shape)?)
            .ok_or_else(|| shape("signer is not sha256:<64 hex digits>".into()))?;
        let files_obj = top
            .get("files")
            .and_then(Value::as_object)
            .ok_or_else(|| shape("files is not an object".into()))?;
        let mut files = BTreeMap::new();
        for (name, entry) in files_obj {
            let place = format!("files[{name:?}]");
            if !KNOWN_MEMBERS.contains(&name.as_str()) || name == MANIFEST || name == MANIFEST_SIG {
                return Err(shape(format!("{place} is not a member a manifest lists")));
            }
            let obj = entry
                .as_object()
                .ok_or_else(|| shape(format!("{place} is not an object")))?;
            exact_keys(obj, &["sha256", "size"], &place).map_err(shape)?;
            let size = obj
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| shape(format!("{place}.size is not a non-negative integer")))?;
            let sha256 = unhex(&str_field(obj, "sha256", &place).map_err(shape)?)
                .ok_or_else(|| shape(format!("{place}.sha256 is not 64 lowercase hex digits")))?;
            files.insert(name.clone(), FileEntry { size, sha256 });
        }
        let summary = top
            .get("summary")
            .and_then(Value::as_object)
            .ok_or_else(|| shape("summary is not an object".into()))?;
        exact_keys(summary, &["policy", "servers"], "summary").map_err(shape)?;
        let policy = match summary.get("policy") {
            Some(Value::Null) => None,
            Some(Value::Object(p)) => {
                exact_keys(p, &["passed", "rules"], "summary.policy").map_err(shape)?;
                Some(PolicySummary {
                    passed: p
                        .get("passed")
                        .and_then(Value::as_bool)
                        .ok_or_else(|| shape("summary.policy.passed is not a boolean".into()))?,
                    rules: count(p, "rules", "summary.policy").map_err(shape)?,
                })
            }
            _ => return Err(shape("summary.policy is not an object or null".into())),
        };
        let servers = summary
            .get("servers")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("summary.servers is not an array".into()))?
            .iter()
            .enumerate()
            .map(|(i, s)| server_summary(s, &format!("summary.servers[{i}]")))
            .collect::<Result<Vec<_>, String>>()
            .map_err(shape)?;
        Ok(Manifest {
            mcplock_version,
            signer,
            files,
            servers,
            policy,
        })
    }

    /// Checks the members against the manifest: every member listed, every listed member
    /// present, sizes and hashes equal, the required members there, and optional ones paired.
    /// `members` excludes the manifest and its signature.
    pub fn check_members<'a>(
        &self,
        members: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), BundleError> {
        let mut seen = Vec::new();
        for (name, bytes) in members {
            let expected = self
                .files
                .get(name)
                .ok_or_else(|| BundleError::NotInManifest(name.to_string()))?;
            let actual = FileEntry::of(bytes);
            if actual.size != expected.size {
                return Err(BundleError::SizeMismatch {
                    name: name.to_string(),
                    expected: expected.size,
                    actual: actual.size,
                });
            }
            if actual.sha256 != expected.sha256 {
                return Err(BundleError::HashMismatch(name.to_string()));
            }
            seen.push(name);
        }
        if let Some(missing) = self.files.keys().find(|k| !seen.contains(&k.as_str())) {
            return Err(BundleError::Missing(missing.clone()));
        }
        if let Some(required) = REQUIRED_MEMBERS.iter().find(|r| !seen.contains(r)) {
            return Err(BundleError::Required(required));
        }
        if seen.contains(&POLICY) != seen.contains(&POLICY_RESULT) {
            return Err(BundleError::Pair(POLICY, POLICY_RESULT));
        }
        if seen.contains(&POLICY) != self.policy.is_some() {
            return Err(BundleError::SummaryMismatch(
                "summary.policy and the policy members disagree".into(),
            ));
        }
        Ok(())
    }

    /// Checks the summary against what the lockfile itself says.
    pub fn check_summary(&self, actual: &[ServerSummary]) -> Result<(), BundleError> {
        if self.servers.len() != actual.len() {
            return Err(BundleError::SummaryMismatch(format!(
                "it lists {} server(s), the lockfile has {}",
                self.servers.len(),
                actual.len()
            )));
        }
        for (claimed, real) in self.servers.iter().zip(actual) {
            if claimed != real {
                return Err(BundleError::SummaryMismatch(format!(
                    "server {:?} is summarized as {:?} with {} (digest {}), the lockfile says {} (digest {})",
                    real.name,
                    claimed.name,
                    counts_text(claimed),
                    claimed.digest,
                    counts_text(real),
                    real.digest
                )));
            }
        }
        Ok(())
    }
}

fn server_summary(value: &Value, place: &str) -> Result<ServerSummary, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{place} is not an object"))?;
    exact_keys(
        obj,
        &[
            "digest",
            "name",
            "prompts",
            "resourceTemplates",
            "resources",
            "tools",
        ],
        place,
    )?;
    Ok(ServerSummary {
        name: str_field(obj, "name", place)?,
        digest: str_field(obj, "digest", place)?,
        tools: count(obj, "tools", place)?,
        prompts: count(obj, "prompts", place)?,
        resource_templates: count(obj, "resourceTemplates", place)?,
        resources: match obj.get("resources") {
            Some(Value::Null) => None,
            _ => Some(count(obj, "resources", place)?),
        },
    })
}

fn exact_keys(obj: &Map<String, Value>, keys: &[&str], place: &str) -> Result<(), String> {
    let at = |k: &str| {
        if place.is_empty() {
            k.to_string()
        } else {
            format!("{place}.{k}")
        }
    };
    if let Some(k) = obj.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(format!("unknown field {}", at(k)));
    }
    if let Some(k) = keys.iter().find(|k| !obj.contains_key(**k)) {
        return Err(format!("missing field {}", at(k)));
    }
    Ok(())
}

fn str_field(obj: &Map<String, Value>, key: &str, place: &str) -> Result<String, String> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{place}{}{key} is not a string", dot(place)))
}

fn count(obj: &Map<String, Value>, key: &str, place: &str) -> Result<usize, String> {
    obj.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{place}{}{key} is not a count", dot(place)))
}

fn dot(place: &str) -> &'static str {
    if place.is_empty() { "" } else { "." }
}

fn counts_text(s: &ServerSummary) -> String {
    let mut out = format!(
        "{} tool(s), {} prompt(s), {} resource template(s)",
        s.tools, s.prompts, s.resource_templates
    );
    if let Some(r) = s.resources {
        let _ = write!(out, ", {r} resource(s)");
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// The largest inflated size a member may have in a bundle read (beyond it: a zip bomb).
pub fn member_cap(name: &str, max_lockfile_bytes: u64) -> u64 {
    match name {
        LOCKFILE => max_lockfile_bytes,
        // The README and policy result grow with the number of items.
        README | POLICY_RESULT => 64 << 20,
        MANIFEST | POLICY => 1 << 20,
        _ => 64 << 10,
    }
}

/// Why a member name is refused. Names come from a hostile ZIP: only a fixed set of plain
/// file names is accepted, so traversal, absolute paths, backslashes and look-alikes all fail.
pub fn check_member_name(raw: &[u8]) -> Result<&'static str, String> {
    let shown = escape(&String::from_utf8_lossy(raw));
    let text = std::str::from_utf8(raw).map_err(|_| format!("{shown:?} is not UTF-8"))?;
    if text.starts_with('/') || text.get(1..2) == Some(":") {
        return Err(format!("{shown:?} is an absolute path"));
    }
    if text.contains('\\') {
        return Err(format!("{shown:?} contains a backslash"));
    }
    if text.split('/').any(|part| part == "..") {
        return Err(format!(
            "{shown:?} climbs out of the bundle (path traversal)"
        ));
    }
    if text.contains('/') {
        return Err(format!(
            "{shown:?} is in a directory; a bundle holds only top-level files"
        ));
    }
    KNOWN_MEMBERS
        .into_iter()
        .find(|known| *known == text)
        .ok_or_else(|| format!("{shown:?} is not a member an mcplock bundle holds"))
}

/// What README.txt is made from.
pub struct ReadmeInput<'a> {
    pub lockfile: &'a Lockfile,
    pub servers: &'a [ServerSummary],
    pub signer: Digest,
    pub manifest_signed: bool,
    pub policy: Option<PolicySummary>,
}

/// The longest one-line description in README.txt.
const README_DESCRIPTION_CHARS: usize = 100;

/// README.txt: what was approved, for a person, and how to check it. Untrusted text (names,
/// descriptions) is escaped and cut to one line.
pub fn readme(input: &ReadmeInput) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "mcplock approval bundle");
    let _ = writeln!(out, "=======================");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "This bundle records which MCP servers were approved and exactly what each one offers an\nAI agent: every tool, prompt and resource template, pinned by sha256 digest in {LOCKFILE}\nand signed. Anything a server offers that is not pinned here was not approved."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "Lockfile signed by key: {}", input.signer);
    let _ = writeln!(
        out,
        "Manifest signed:        {}",
        if input.manifest_signed {
            "yes (manifest.json.sig covers every byte of this bundle)"
        } else {
            "no (only the lockfile is signed; the other files are covered by hashes only)"
        }
    );
    let policy = match input.policy {
        Some(p) if p.passed => format!("passed ({} rule(s) in {POLICY})", p.rules),
        Some(p) => format!("FAILED ({} rule(s) in {POLICY})", p.rules),
        None => "none evaluated".into(),
    };
    let _ = writeln!(out, "Policy:                 {policy}");
    for summary in input.servers {
        let _ = writeln!(out);
        let title = format!("Server {:?}", escape(&summary.name));
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "{}", "-".repeat(title.chars().count()));
        let _ = writeln!(out, "digest: {}", summary.digest);
        let Some(server) = input.lockfile.servers.get(&summary.name) else {
            continue;
        };
        let _ = writeln!(out, "launch: {}", server.launch.describe());
        match &server.launch {
            Launch::Stdio { env_keys, .. } if !env_keys.is_empty() => {
                let _ = writeln!(
                    out,
                    "env:    {} (names only; values are never recorded)",
                    env_keys.join(", ")
                );
            }
            Launch::Http { header_names, .. } if !header_names.is_empty() => {
                let _ = writeln!(
                    out,
                    "headers: {} (names only; values are never recorded)",
                    header_names.join(", ")
                );
            }
            _ => {}
        }
        let _ = writeln!(
            out,
            "protocol version: {}",
            escape(&server.protocol_version)
        );
        let _ = writeln!(out, "{}", counts_text(summary));
        for kind in ItemKind::ALL {
            let Some(items) = server.items(kind).filter(|i| !i.is_empty()) else {
                continue;
            };
            let _ = writeln!(out, "\n{}s:", kind.noun());
            for (key, def) in items {
                let def = def.to_map();
                let description = def
                    .get("description")
                    .and_then(Value::as_str)
                    .map(|d| summary_line(d, README_DESCRIPTION_CHARS))
                    .unwrap_or_default();
                if description.is_empty() {
                    let _ = writeln!(out, "  {}", escape(key));
                } else {
                    let _ = writeln!(out, "  {} - {description}", escape(key));
                }
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "How to verify this bundle");
    let _ = writeln!(out, "-------------------------");
    let _ = writeln!(
        out,
        "With mcplock, and the signer's public key obtained from the signer (not from this bundle):\n\n    mcplock bundle verify approval.zip --key signer.pub\n\nWithout mcplock: unzip the bundle, check each file's sha256 against manifest.json\n(sha256sum), then check {MANIFEST_SIG} and {LOCKFILE_SIG} with openssl as described in\nmcplock's docs/bundle.md. Key id {} is the sha256 of the key's DER\nSubjectPublicKeyInfo: `openssl pkey -pubin -in signer.pub -outform DER | sha256sum`.",
        input.signer
    );
    out
}

impl crate::core::code::Coded for BundleError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::BundleInvalid
    }
}

#[cfg(test)]
mod tests;
