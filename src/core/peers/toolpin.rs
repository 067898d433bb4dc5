//! ToolPin's own lockfile (`lockfileVersion: 2`, ToolPin 0.5.4's `dist/plan.js` and
//! `dist/signing.js`): the projection of an entry its `integrity` covers, the whole-lock digest
//! (`toolpin lock digest`) and the bytes its detached Ed25519 signature (`toolpin lock sign`,
//! `dev.toolpin.lock-signature` version 2) covers. Digests are `sha256-` and padded base64 over
//! the canonical form, as in mcp-lock/1 ([`super::mcp_lock_v1::digest`]).

use super::mcp_lock_v1::digest;
use serde_json::{Map, Value};

/// `value` with only `fields`, those absent left out (JavaScript drops `undefined`).
fn pick(value: Option<&Value>, fields: &[&str]) -> Option<Value> {
    let object = value?.as_object()?;
    Some(Value::Object(
        fields
            .iter()
            .filter_map(|f| object.get(*f).map(|v| (f.to_string(), v.clone())))
            .collect(),
    ))
}

/// ToolPin's `normalizeCapabilityManifest`.
fn manifest(value: Option<&Value>) -> Option<Value> {
    let mut base = pick(
        value,
        &[
            "version",
            "serverName",
            "serverVersion",
            "registrySource",
            "packageTypes",
            "transports",
            "remoteHosts",
            "secrets",
        ],
    )?;
    for (member, fields) in [
        (
            "toolDescriptionHash",
            &["algorithm", "value", "toolCount"][..],
        ),
        (
            "toolSurfaceHash",
            &["algorithm", "coverage", "value", "toolCount"][..],
        ),
        ("toolManifestHash", &["algorithm", "value", "toolCount"][..]),
    ] {
        let present = value.and_then(|m| m.get(member)).filter(|v| truthy(v));
        if let (Some(hash), Value::Object(out)) = (present, &mut base)
            && let Some(hash) = pick(Some(hash), fields)
        {
            out.insert(member.into(), hash);
        }
    }
    Some(base)
}

fn truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
        && value.as_str() != Some("")
        && value.as_f64() != Some(0.0)
}

/// What an entry's `integrity` is the digest of (ToolPin's `integrityPayload`).
pub fn integrity_payload(entry: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            out.insert(key.to_string(), value);
        }
    };
    for key in ["name", "version", "client"] {
        put(key, entry.get(key).cloned());
    }
    put(
        "scope",
        Some(
            entry
                .get("scope")
                .cloned()
                .unwrap_or_else(|| "project".into()),
        ),
    );
    for key in ["selectedTarget", "trust", "config", "notes"] {
        put(key, entry.get(key).cloned());
    }
    put(
        "capabilityManifest",
        manifest(entry.get("capabilityManifest")),
    );
    for key in ["resolvedAt", "lockedAt", "resolved", "original"] {
        put(key, entry.get(key).cloned());
    }
    let locked = entry.get("locked");
    let mut inner = Map::new();
    for key in ["selectedTarget", "config"] {
        if let Some(v) = locked.and_then(|l| l.get(key)) {
            inner.insert(key.into(), v.clone());
        }
    }
    if let Some(m) = manifest(locked.and_then(|l| l.get("capabilityManifest"))) {
        inner.insert("capabilityManifest".into(), m);
    }
    put("locked", Some(Value::Object(inner)));
    Value::Object(out)
}

/// An entry's integrity as ToolPin computes it.
pub fn integrity(entry: &Map<String, Value>) -> String {
    digest(&integrity_payload(entry))
}

/// `toolpin lock digest`: over the version and every entry's integrity payload.
pub fn lock_digest(document: &Map<String, Value>) -> String {
    let servers: Map<String, Value> = document
        .get("servers")
        .and_then(Value::as_object)
        .map(|s| {
            s.iter()
                .filter_map(|(k, e)| Some((k.clone(), integrity_payload(e.as_object()?))))
                .collect()
        })
        .unwrap_or_default();
    let mut payload = Map::new();
    if let Some(version) = document.get("lockfileVersion") {
        payload.insert("lockfileVersion".into(), version.clone());
    }
    payload.insert("servers".into(), Value::Object(servers));
    digest(&Value::Object(payload))
}

/// The bytes a `dev.toolpin.lock-signature` version 2 envelope's signature covers: its canonical
/// form without `signature`. Refused unless it is that envelope, by Ed25519.
pub fn signing_payload(envelope: &Map<String, Value>) -> Result<Vec<u8>, String> {
    if envelope.get("schema").and_then(Value::as_str) != Some("dev.toolpin.lock-signature")
        || envelope.get("version").and_then(Value::as_u64) != Some(2)
    {
        return Err("not a ToolPin lock signature (dev.toolpin.lock-signature version 2)".into());
    }
    if envelope.get("algorithm").and_then(Value::as_str) != Some("ed25519") {
        return Err("its algorithm is not ed25519 (refused)".into());
    }
    let kept: Map<String, Value> = [
        "schema",
        "version",
        "algorithm",
        "lockfileDigest",
        "policyDigest",
        "publicKeyFingerprint",
        "signedAt",
    ]
    .into_iter()
    .filter_map(|k| envelope.get(k).map(|v| (k.to_string(), v.clone())))
    .collect();
    Ok(crate::core::canonical::to_canonical(&Value::Object(kept)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/peers/toolpin-v2-sample/mcp-lock.json"
        );
        crate::core::json::parse_strict(&std::fs::read(path).unwrap()).unwrap()
    }

    /// ToolPin's own lockfile: each entry's integrity recomputes, and the whole-lock digest is
    /// the one `toolpin lock digest` (0.5.4) prints for it.
    #[test]
    fn the_sample_recomputes_as_toolpin_computes_it() {
        let document = sample();
        let servers = document["servers"].as_object().unwrap();
        assert_eq!(servers.len(), 2);
        for entry in servers.values() {
            let entry = entry.as_object().unwrap();
            assert_eq!(Some(integrity(entry).as_str()), entry["integrity"].as_str());
        }
        assert_eq!(
            lock_digest(document.as_object().unwrap()),
            "sha256-NGuALxjfpKDfcBT0SY2zkdHGSZOgZAwdNvwgNlJ5n0I="
        );
    }

    #[test]
    fn any_change_to_an_entry_changes_its_integrity() {
        let document = sample();
        let entry = document["servers"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap();
        let mut changed = entry.as_object().unwrap().clone();
        changed["config"]["mcp_servers"]["@proofofwork-agency/contextrelay"]["command"] =
            "sh".into();
        assert_ne!(integrity(&changed), integrity(entry.as_object().unwrap()));
    }
}
