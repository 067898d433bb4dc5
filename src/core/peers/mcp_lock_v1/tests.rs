//! The spec's published vectors and conformance fixtures, byte for byte
//! (testdata/peers/toolpin-mcp-lock-1: source, commit and licence in its SOURCE.txt).

use super::*;
use crate::core::json::parse_strict;

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/peers/toolpin-mcp-lock-1/test/fixtures/spec/",
            $path
        ))
    };
}

fn vectors() -> Value {
    parse_strict(fixture!("vectors.json")).unwrap()
}

fn object(value: &Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn canonicalization_vectors() {
    for case in vectors()["canonicalization"].as_array().unwrap() {
        let canonical = to_canonical(&case["input"]);
        assert_eq!(
            String::from_utf8(canonical).unwrap(),
            case["canonical"].as_str().unwrap()
        );
    }
}

#[test]
fn surface_hash_vector_and_its_order_and_change() {
    let v = vectors();
    let tools: Vec<Map<String, Value>> = v["surface"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(object)
        .collect();
    let coverage: Vec<&str> = v["surface"]["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let expected = v["surface"]["hash"].as_str().unwrap();
    assert_eq!(surface_hash(&tools, &coverage), expected);
    let reversed: Vec<_> = tools.iter().rev().cloned().collect();
    assert_eq!(surface_hash(&reversed, &coverage), expected);
    let mut changed = tools.clone();
    changed[0]["inputSchema"]["properties"]["sql"]["type"] = Value::from("number");
    assert_ne!(surface_hash(&changed, &coverage), expected);
}

#[test]
fn entry_integrity_vector() {
    let v = vectors();
    let lock = parse_strict(fixture!("positive/minimal-package.json")).unwrap();
    let entry = object(&lock["entries"][0]);
    let payload = integrity_payload(&entry);
    assert_eq!(
        String::from_utf8(payload.clone()).unwrap(),
        v["entryIntegrity"]["canonicalPayload"].as_str().unwrap()
    );
    assert_eq!(
        digest_bytes(&payload),
        v["entryIntegrity"]["integrity"].as_str().unwrap()
    );
    assert_eq!(entry["integrity"], v["entryIntegrity"]["integrity"]);
}

#[test]
fn whole_lock_digest_vector() {
    let v = vectors();
    let lock = parse_strict(fixture!("positive/remote-with-surface.json")).unwrap();
    assert_eq!(
        lock_digest(lock.as_object().unwrap()),
        v["wholeLockDigest"]["digest"].as_str().unwrap()
    );
}

#[test]
fn signature_vector_verifies_and_is_reproduced_by_the_published_test_key() {
    use ed25519_dalek::{Signer, Verifier};
    let v = vectors();
    let sig = &v["signature"];
    let spki_der = base64::engine::general_purpose::STANDARD
        .decode(sig["publicKeySpkiDerBase64"].as_str().unwrap())
        .unwrap();
    let raw = raw_key(&spki_der).unwrap();
    let envelope = object(&sig["envelope"]);
    assert_eq!(
        key_fingerprint(&raw),
        envelope["publicKeyFingerprint"].as_str().unwrap()
    );
    assert_eq!(spki(&raw), spki_der);
    assert_eq!(
        digest(&serde_json::json!({"example": "policy"})),
        envelope["policyDigest"].as_str().unwrap()
    );
    let payload = signing_payload(&envelope).unwrap();
    assert_eq!(
        String::from_utf8(payload.clone()).unwrap(),
        sig["signingPayloadCanonical"].as_str().unwrap()
    );
    let signature: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(envelope["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw).unwrap();
    let signature = ed25519_dalek::Signature::from_bytes(&signature);
    assert!(key.verify(&payload, &signature).is_ok());
    // The spec's test key (a published seed) signs the same bytes to the same signature.
    let signer = ed25519_dalek::SigningKey::from_bytes(b"mcp-lock-spec-v1 test-vector-key");
    assert_eq!(signer.verifying_key().to_bytes(), raw);
    assert_eq!(signer.sign(&payload), signature);
    // What is signed is bound: another time or another lockfile no longer verifies.
    for (field, other) in [
        ("signedAt", "2026-07-07T12:00:02.000Z"),
        (
            "lockfileDigest",
            "sha256-98i+Y+3pR+JCE5zLtf5guj6A3s6mn5BL7jKHBwqUEV4=",
        ),
    ] {
        let mut tampered = envelope.clone();
        tampered[field] = Value::from(other);
        let payload = signing_payload(&tampered).unwrap();
        assert!(key.verify(&payload, &signature).is_err(), "{field}");
    }
    let mut other_algorithm = envelope.clone();
    other_algorithm["algorithm"] = Value::from("rsa");
    assert!(signing_payload(&other_algorithm).is_err());
}

#[test]
fn every_valid_fixture_is_valid() {
    for bytes in [
        &fixture!("positive/empty-lock.json")[..],
        fixture!("positive/minimal-package.json"),
        fixture!("positive/remote-with-surface.json"),
        fixture!("positive/unknown-optional-member.json"),
    ] {
        let lock = parse_strict(bytes).unwrap();
        assert_eq!(validate(&lock), Vec::<Violation>::new(), "{lock}");
    }
}

#[test]
fn each_invalid_fixture_breaks_exactly_the_rule_it_is_named_after() {
    let cases: [(&str, &[u8]); 10] = [
        (
            "unsupported-spec-version",
            fixture!("negative/unsupported-spec-version.json"),
        ),
        (
            "missing-field:integrity",
            fixture!("negative/missing-field-integrity.json"),
        ),
        (
            "bad-digest-format",
            fixture!("negative/bad-digest-format.json"),
        ),
        (
            "remote-url-not-https",
            fixture!("negative/remote-url-not-https.json"),
        ),
        (
            "duplicate-entry-identity",
            fixture!("negative/duplicate-entry-identity.json"),
        ),
        (
            "integrity-mismatch",
            fixture!("negative/integrity-mismatch.json"),
        ),
        (
            "surface-coverage-invalid",
            fixture!("negative/surface-coverage-invalid.json"),
        ),
        (
            "header-secret-not-a-name",
            fixture!("negative/header-secret-not-a-name.json"),
        ),
        (
            "unknown-target-type",
            fixture!("negative/unknown-target-type.json"),
        ),
        (
            "oci-mutable-identifier",
            fixture!("negative/oci-mutable-identifier.json"),
        ),
    ];
    for (code, bytes) in cases {
        let lock = parse_strict(bytes).unwrap();
        let codes: Vec<String> = validate(&lock).into_iter().map(|v| v.code).collect();
        assert_eq!(codes, [code], "{code}");
    }
}

#[test]
fn member_names_equal_after_nfc_are_refused_by_the_parser() {
    let refused = parse_strict(fixture!("negative/nfc-duplicate-key.json")).unwrap_err();
    assert!(refused.to_string().contains("NFC"), "{refused}");
}

mod properties {
    use super::super::export::{ExportOptions, export};
    use super::*;
    use crate::core::snapshot::{ItemKind, Launch};
    use crate::core::testkit::{any_json, mutate, real_definitions, server_lock};
    use proptest::prelude::*;

    /// One exported entry, of a remote server offering the real servers' first tools.
    fn exported_entry() -> Value {
        let tools: Vec<Value> = real_definitions()
            .iter()
            .filter(|(kind, _)| *kind == ItemKind::Tool)
            .take(5)
            .map(|(_, d)| Value::Object(d.clone()))
            .collect();
        let mut server = server_lock(tools);
        server.launch = Launch::Http {
            url: "https://mcp.example.com/mcp".into(),
            header_names: vec![],
            context: None,
        };
        let lock = crate::core::lockfile::Lockfile {
            servers: [("s".to_string(), server)].into(),
            approvals: vec![],
            registry: Default::default(),
        };
        let options = ExportOptions {
            client: "generic",
            at: "2026-12-08T10:00:00Z",
        };
        export(&lock, &options).0["entries"][0].clone()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// An exported entry is valid, and any change to it that changes its canonical form
        /// (anything but its integrity) is caught: the check fails closed.
        #[test]
        fn any_change_to_an_exported_entry_is_caught(seed in any::<u64>(), leaf in any_json()) {
            static ENTRY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
            let entry = ENTRY.get_or_init(exported_entry);
            let document = |entry: Value| serde_json::json!({"specVersion": 1, "entries": [entry]});
            prop_assert_eq!(validate(&document(entry.clone())), Vec::<Violation>::new());
            let mut body = entry.as_object().unwrap().clone();
            let integrity = body.remove("integrity").unwrap();
            let mutated = mutate(&Value::Object(body.clone()), seed, &leaf);
            let Value::Object(mut changed) = mutated else {
                return Ok(());
            };
            changed.insert("integrity".into(), integrity);
            let same = to_canonical(&Value::Object(body)) == {
                let mut without = changed.clone();
                without.remove("integrity");
                to_canonical(&Value::Object(without))
            };
            let violations = validate(&document(Value::Object(changed)));
            prop_assert_eq!(same, violations.is_empty(), "{:?}", violations);
        }
    }
}
