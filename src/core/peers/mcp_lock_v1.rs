//! `mcp-lock/1`, ToolPin's draft vendor-neutral install lockfile (testdata/peers/README.md
//! names the spec and its commit): its digests, its checks, and the bytes its detached
//! signature covers. Everything here is checked byte for byte against the spec's published
//! vectors (`testdata/peers/toolpin-mcp-lock-1`).
//!
//! - a digest is `sha256-` and the standard, padded base64 of SHA-256 over RFC 8785 bytes (the
//!   same canonical form mcplock digests everything with, [`crate::core::canonical`]);
//! - an entry's `integrity` covers the entry without it;
//! - a surface hash covers the tools sorted by name, each reduced to the `coverage` fields it
//!   has;
//! - the whole-lock digest covers `{specVersion, entries, extensions}` (no timestamps);
//! - a signature envelope is signed (Ed25519) over its canonical form without `signature`, and
//!   names its key by the digest of the key's SubjectPublicKeyInfo.
//!
//! Duplicate member names, also ones equal after NFC, are refused by the strict parser
//! ([`crate::core::json::parse_strict`]) before anything here runs.

use crate::core::canonical::to_canonical;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The one `specVersion` this reads.
pub const SPEC_VERSION: u64 = 1;
/// An Ed25519 SubjectPublicKeyInfo (RFC 8410) before its 32 raw key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// Fields an entry must have.
const REQUIRED: [&str; 9] = [
    "name",
    "version",
    "client",
    "source",
    "target",
    "configDigest",
    "resolvedAt",
    "lockedAt",
    "integrity",
];
/// What a surface hash may cover.
const COVERABLE: [&str; 3] = ["name", "description", "inputSchema"];

/// `sha256-` + base64 (standard alphabet, padded) of SHA-256 over `bytes`.
pub fn digest_bytes(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The digest of `value`'s canonical form.
pub fn digest(value: &Value) -> String {
    digest_bytes(&to_canonical(value))
}

/// The canonical bytes an entry's `integrity` is the digest of: the entry without it.
pub fn integrity_payload(entry: &Map<String, Value>) -> Vec<u8> {
    let mut without = entry.clone();
    without.remove("integrity");
    to_canonical(&Value::Object(without))
}

/// The surface hash of `tools` over `coverage`: the tools sorted by name (UTF-16 code units),
/// each reduced to the covered fields it has.
pub fn surface_hash(tools: &[Map<String, Value>], coverage: &[&str]) -> String {
    let mut records: Vec<(Vec<u16>, Value)> = tools
        .iter()
        .map(|tool| {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
            let record: Map<String, Value> = coverage
                .iter()
                .filter_map(|field| tool.get(*field).map(|v| (field.to_string(), v.clone())))
                .collect();
            (name.encode_utf16().collect(), Value::Object(record))
        })
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    digest(&Value::Array(records.into_iter().map(|(_, r)| r).collect()))
}

/// The whole-lock digest: over `{specVersion, entries, extensions}` as they are (timestamps
/// left out, `extensions` only when present).
pub fn lock_digest(document: &Map<String, Value>) -> String {
    let kept: Map<String, Value> = ["specVersion", "entries", "extensions"]
        .into_iter()
        .filter_map(|k| document.get(k).map(|v| (k.to_string(), v.clone())))
        .collect();
    digest(&Value::Object(kept))
}

/// `sha256-` digest of an Ed25519 key's SubjectPublicKeyInfo (how an envelope names its key).
pub fn key_fingerprint(raw_key: &[u8; 32]) -> String {
    digest_bytes(&spki(raw_key))
}

/// An Ed25519 key's SubjectPublicKeyInfo (DER).
pub fn spki(raw_key: &[u8; 32]) -> Vec<u8> {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(raw_key);
    der
}

/// The raw key of an Ed25519 SubjectPublicKeyInfo, if it is one.
pub fn raw_key(spki: &[u8]) -> Option<[u8; 32]> {
    spki.strip_prefix(&ED25519_SPKI_PREFIX)?.try_into().ok()
}

/// The bytes an envelope's signature covers: its canonical form without `signature`. Refused
/// unless it is an `mcp-lock-signature` version 1 envelope by Ed25519.
pub fn signing_payload(envelope: &Map<String, Value>) -> Result<Vec<u8>, String> {
    let text = |k: &str| envelope.get(k).and_then(Value::as_str);
    if text("schema") != Some("mcp-lock-signature") {
        return Err("not an mcp-lock-signature envelope (\"schema\")".into());
    }
    if envelope.get("version").and_then(Value::as_u64) != Some(1) {
        return Err("an mcp-lock-signature envelope of another version".into());
    }
    if text("algorithm") != Some("ed25519") {
        return Err(format!(
            "signature algorithm {:?} is not ed25519 (refused)",
            envelope.get("algorithm")
        ));
    }
    let mut without = envelope.clone();
    without.remove("signature");
    Ok(to_canonical(&Value::Object(without)))
}

/// One rule a document breaks: its code (the spec's vectors name each) and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub code: String,
    pub at: String,
}

/// Every rule of the spec `document` breaks; empty when it is a valid `mcp-lock/1` lockfile.
pub fn validate(document: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut say = |code: &str, at: String| {
        out.push(Violation {
            code: code.to_string(),
            at,
        })
    };
    let Some(doc) = document.as_object() else {
        say("not-an-object", String::new());
        return out;
    };
    if doc.get("specVersion").and_then(Value::as_u64) != Some(SPEC_VERSION) {
        say("unsupported-spec-version", "/specVersion".into());
        return out;
    }
    let Some(entries) = doc.get("entries").and_then(Value::as_array) else {
        say("missing-field:entries", "/entries".into());
        return out;
    };
    let mut identities = std::collections::BTreeSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("/entries/{i}");
        let Some(entry) = entry.as_object() else {
            say("not-an-object", at);
            continue;
        };
        for violation in entry_violations(entry, &at) {
            say(&violation.code, violation.at);
        }
        let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
        let scope = entry
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("project");
        if !identities.insert((text("name").to_string(), text("client").to_string(), scope)) {
            say("duplicate-entry-identity", at);
        }
    }
    out
}

fn entry_violations(entry: &Map<String, Value>, at: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut say = |code: &str, place: &str| {
        out.push(Violation {
            code: code.to_string(),
            at: format!("{at}{place}"),
        })
    };
    for field in REQUIRED {
        if !entry.contains_key(field) {
            say(&format!("missing-field:{field}"), &format!("/{field}"));
        }
    }
    let digests = [
        ("/configDigest", entry.get("configDigest")),
        ("/integrity", entry.get("integrity")),
        (
            "/surface/hash",
            entry.get("surface").and_then(|s| s.get("hash")),
        ),
        (
            "/target/artifact/digest",
            entry
                .get("target")
                .and_then(|t| t.get("artifact"))
                .and_then(|a| a.get("digest")),
        ),
    ];
    for (place, value) in digests {
        if let Some(value) = value
            && !value.as_str().is_some_and(is_digest)
        {
            say("bad-digest-format", place);
        }
    }
    if let Some(target) = entry.get("target") {
        for (code, place) in target_violations(target) {
            say(code, place);
        }
    }
    if let Some(coverage) = entry.get("surface").and_then(|s| s.get("coverage"))
        && !valid_coverage(coverage)
    {
        say("surface-coverage-invalid", "/surface/coverage");
    }
    if let Some(Value::String(stored)) = entry.get("integrity")
        && is_digest(stored)
        && *stored != digest_bytes(&integrity_payload(entry))
    {
        say("integrity-mismatch", "/integrity");
    }
    out
}

fn target_violations(target: &Value) -> Vec<(&'static str, &'static str)> {
    let text = |k: &str| target.get(k).and_then(Value::as_str);
    let mut out = Vec::new();
    match text("type") {
        Some("remote") => {
            if !text("url").is_some_and(|u| u.starts_with("https://")) {
                out.push(("remote-url-not-https", "/target/url"));
            }
            let names = target.get("headerSecretNames").and_then(Value::as_array);
            if names.is_some_and(|n| !n.iter().all(|n| n.as_str().is_some_and(secret_name))) {
                out.push(("header-secret-not-a-name", "/target/headerSecretNames"));
            }
        }
        Some("package") => {
            let pinned = text("identifier").is_some_and(|id| {
                id.rsplit_once("@sha256:").is_some_and(|(_, hex)| {
                    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                })
            });
            if text("registryType") == Some("oci") && !pinned {
                out.push(("oci-mutable-identifier", "/target/identifier"));
            }
        }
        _ => out.push(("unknown-target-type", "/target/type")),
    }
    out
}

/// A surface's coverage: covered fields only, each once, `name` and `description` among them.
fn valid_coverage(coverage: &Value) -> bool {
    let Some(fields) = coverage.as_array() else {
        return false;
    };
    let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
    let once = fields
        .iter()
        .enumerate()
        .all(|(i, f)| !fields[..i].contains(f));
    fields.len() == coverage.as_array().map_or(0, Vec::len)
        && once
        && fields.iter().all(|f| COVERABLE.contains(f))
        && fields.contains(&"name")
        && fields.contains(&"description")
}

/// The spec's digest form, `^sha256-[A-Za-z0-9+/]+={0,2}$` (its examples' placeholders are not
/// all well-formed base64, so the form is checked, not the bytes).
fn is_digest(text: &str) -> bool {
    let Some(b64) = text.strip_prefix("sha256-") else {
        return false;
    };
    let body = b64.trim_end_matches('=');
    b64.len() - body.len() <= 2
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// An environment variable's name (`^[A-Z][A-Z0-9_]*$`), never a secret's value.
fn secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

pub mod export;

#[cfg(test)]
mod tests;
