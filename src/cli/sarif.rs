//! SARIF 2.1.0 for code scanning: one rule per stable code with its level and help, results
//! located at the line of the lockfile that holds the item, and partial fingerprints built from
//! what a result is about (never from line numbers), so an alert survives unrelated edits.

use super::exit::CliError;
use crate::core::canonical::Digest;
use crate::core::diff::Severity;
use crate::core::findings;
use crate::core::locate::Located;
use crate::core::lockfile::ServerLock;
use crate::core::text::escape;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::Path;

/// The OASIS schema every log names (testdata/sarif holds a copy the tests validate against).
pub const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The partial fingerprint's name; its version changes only if what it hashes changes.
const FINGERPRINT: &str = "mcplockResult/v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Note,
}

impl Level {
    pub fn of(severity: Severity) -> Level {
        match severity {
            Severity::Critical => Level::Error,
            Severity::Moderate => Level::Warning,
            Severity::Info => Level::Note,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }

    /// GitHub's `security-severity` (9.0 and up is shown as critical, 4.0 to 6.9 as medium,
    /// below 4.0 as low).
    fn security_severity(self) -> &'static str {
        match self {
            Level::Error => "9.0",
            Level::Warning => "5.0",
            Level::Note => "2.0",
        }
    }
}

/// A rule: one stable code.
pub struct Rule {
    pub id: String,
    pub summary: String,
    pub help: String,
    pub level: Level,
}

/// One result.
pub struct Finding {
    pub rule: String,
    pub level: Level,
    pub message: String,
    /// What the result is about, by name: `server/tools/name`.
    pub logical: String,
    /// Where in the lockfile (JSON pointer tokens); the deepest that exists is used.
    pub pointer: Vec<String>,
    /// What identifies the result from one run to the next (its fingerprint's input).
    pub identity: Vec<String>,
    pub properties: Map<String, Value>,
}

/// The file results are located in.
struct Artifact<'a> {
    uri: String,
    located: Located<'a>,
}

/// The text of the file results are located in, as it is on disk now; `None` when it cannot
/// be read (results then carry their logical location only).
fn read_artifact(path: &Path) -> Option<String> {
    crate::edge::fs::read_bounded(path, super::files::MAX_LOCKFILE_BYTES)
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// The lockfile pointer of an item's or a server's entry.
pub fn entry_pointer(server: &str, section: Option<(&str, &str)>, path: &str) -> Vec<String> {
    let mut tokens = vec!["servers".to_string(), server.to_string()];
    if let Some((section, key)) = section {
        tokens.push(section.to_string());
        tokens.push(key.to_string());
        if !path.is_empty() {
            tokens.push("definition".into());
        }
    }
    tokens.extend(crate::core::json::pointer_tokens(path));
    tokens
}

/// A complete SARIF log of one run; results are located in the file `located_in` (the
/// lockfile), read as it is on disk now, or by name only without one.
pub fn log(
    automation: &str,
    rules: &[Rule],
    findings: &[Finding],
    located_in: Option<&Path>,
    exit_code: u8,
) -> Value {
    let text = located_in.and_then(read_artifact);
    let artifact = located_in
        .zip(text.as_deref())
        .map(|(path, text)| Artifact {
            uri: uri_of(path),
            located: Located::new(text),
        });
    let artifact = artifact.as_ref();
    let index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| result(f, index.get(f.rule.as_str()).copied(), artifact))
        .collect();
    let mut run = base_run(automation, rules.iter().map(rule).collect());
    run.insert("results".into(), Value::Array(results));
    run.insert(
        "invocations".into(),
        json!([{"executionSuccessful": true, "exitCode": exit_code}]),
    );
    document(run)
}

/// A SARIF log for a command that failed: no results, the failure as a notification with its
/// stable code, `executionSuccessful: false` (an upload then shows the run failed, not clean).
pub fn failed_run(error: &CliError) -> Value {
    let mut text = error.headline.clone();
    for line in &error.details {
        text.push('\n');
        text.push_str(line);
    }
    let mut run = base_run("mcplock/", Vec::new());
    run.insert("results".into(), json!([]));
    run.insert(
        "invocations".into(),
        json!([{
            "executionSuccessful": false,
            "exitCode": error.kind().code(),
            "toolExecutionNotifications": [{
                "level": "error",
                "message": {"text": text},
                "descriptor": {"id": error.code.as_str()},
            }],
        }]),
    );
    document(run)
}

fn document(run: Map<String, Value>) -> Value {
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [Value::Object(run)],
    })
}

fn base_run(automation: &str, rules: Vec<Value>) -> Map<String, Value> {
    let version = env!("CARGO_PKG_VERSION");
    let mut run = Map::new();
    run.insert(
        "tool".into(),
        json!({"driver": {
            "name": "mcplock",
            "version": version,
            "semanticVersion": version,
            "rules": rules,
        }}),
    );
    run.insert("automationDetails".into(), json!({"id": automation}));
    run.insert("columnKind".into(), json!("unicodeCodePoints"));
    run
}

fn rule(rule: &Rule) -> Value {
    json!({
        "id": rule.id,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.help},
        "help": {"text": rule.help},
        "defaultConfiguration": {"level": rule.level.as_str()},
        "properties": {
            "tags": ["security", "mcp"],
            "security-severity": rule.level.security_severity(),
        },
    })
}

fn result(finding: &Finding, rule_index: Option<usize>, artifact: Option<&Artifact>) -> Value {
    let mut location = Map::new();
    if let Some(artifact) = artifact {
        let tokens: Vec<&str> = finding.pointer.iter().map(String::as_str).collect();
        let mut physical = json!({"artifactLocation": {"uri": artifact.uri}});
        if let Some((at, _)) = artifact.located.find(&tokens) {
            physical["region"] = json!({"startLine": at.line, "startColumn": at.column});
        }
        location.insert("physicalLocation".into(), physical);
    }
    location.insert(
        "logicalLocations".into(),
        json!([{"fullyQualifiedName": finding.logical, "kind": "member"}]),
    );
    let mut out = json!({
        "ruleId": finding.rule,
        "level": finding.level.as_str(),
        "message": {"text": finding.message},
        "locations": [Value::Object(location)],
        "partialFingerprints": {FINGERPRINT: fingerprint(&finding.identity)},
        "properties": Value::Object(finding.properties.clone()),
    });
    if let Some(i) = rule_index {
        out["ruleIndex"] = json!(i);
    }
    out
}

/// The poisoning findings in servers' model-visible text (`scan`, `lock`): one rule per
/// finding code, each result at the text's place in the lockfile.
pub fn findings_log(
    automation: &str,
    servers: &[(&str, &ServerLock)],
    located_in: Option<&Path>,
    exit_code: u8,
) -> Value {
    let rules: Vec<Rule> = findings::CODES
        .iter()
        .map(|(code, about)| Rule {
            id: (*code).to_string(),
            summary: format!("Possible tool poisoning: {about}"),
            help: if *code == "content-hash-mismatch" {
                format!(
                    "The item {about}: what the server serves is not what it says it serves. Ask its publisher which is meant before locking it."
                )
            } else {
                format!(
                    "Model-visible text (a description, a title, the server's instructions) {about}. A deterministic string check: read the text, and lock the server only if it is meant to say this."
                )
            },
            level: Level::Error,
        })
        .collect();
    let mut results = Vec::new();
    for (server, entry) in servers {
        for found in findings::in_server(entry) {
            let section = found
                .item
                .as_ref()
                .map(|(k, key)| (k.field(), key.as_str()));
            let (logical, pointer) = match section {
                Some((field, key)) => (
                    format!("{server}/{field}/{key}"),
                    entry_pointer(server, section, &found.path),
                ),
                None => (
                    (*server).to_string(),
                    entry_pointer(server, None, &found.path),
                ),
            };
            let mut properties = Map::new();
            properties.insert("server".into(), json!(server));
            properties.insert("path".into(), json!(found.path));
            results.push(Finding {
                rule: found.code.to_string(),
                level: Level::Error,
                message: format!(
                    "{} in {} at {}",
                    found.code,
                    escape(&logical),
                    escape(&found.path)
                ),
                identity: vec![
                    "finding".into(),
                    found.code.into(),
                    logical.clone(),
                    found.path.clone(),
                ],
                logical,
                pointer,
                properties,
            });
        }
    }
    log(automation, &rules, &results, located_in, exit_code)
}

/// Hex SHA-256 of the parts, each length-prefixed so no two lists collide.
fn fingerprint(parts: &[String]) -> String {
    let mut bytes = Vec::new();
    for part in parts {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part.as_bytes());
    }
    let digest = Digest::of_bytes(&bytes).to_string();
    digest.trim_start_matches("sha256:").to_string()
}

/// A relative path stays relative (code scanning resolves it against the repository root);
/// an absolute one becomes a `file://` URI. Both percent-encoded.
pub fn uri_of(path: &Path) -> String {
    let text = path.to_string_lossy();
    let text = text.strip_prefix("./").unwrap_or(&text);
    let mut out = String::new();
    if path.is_absolute() {
        out.push_str("file://");
    }
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_or_file_and_percent_encoded() {
        assert_eq!(uri_of(Path::new("mcp-lock.json")), "mcp-lock.json");
        assert_eq!(uri_of(Path::new("./ci/a b.json")), "ci/a%20b.json");
        assert_eq!(uri_of(Path::new("/tmp/é.json")), "file:///tmp/%C3%A9.json");
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        let a = fingerprint(&["ab".into(), "c".into()]);
        let b = fingerprint(&["a".into(), "bc".into()]);
        assert_ne!(a, b);
        assert_eq!(a, fingerprint(&["ab".into(), "c".into()]));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn entry_pointers_reach_into_definitions() {
        assert_eq!(
            entry_pointer("s", Some(("tools", "t")), "/inputSchema/type"),
            [
                "servers",
                "s",
                "tools",
                "t",
                "definition",
                "inputSchema",
                "type"
            ]
        );
        assert_eq!(
            entry_pointer("s", Some(("tools", "t")), ""),
            ["servers", "s", "tools", "t"]
        );
        assert_eq!(
            entry_pointer("s", None, "/launch"),
            ["servers", "s", "launch"]
        );
    }
}
