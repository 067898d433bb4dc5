//! Keyless signing and Sigstore verification: real public-good bundles, and a local test
//! instance (test CA, CT log and Rekor keys, mock Fulcio and Rekor on 127.0.0.1) so the whole
//! sign/verify path runs offline, checked against sigstore-python's verifier too.

mod common;

use common::*;
use mcplock::crypto::sigstore::{IdentityRule, SigstoreError, trusted_root, verify};
use std::fs;
use std::path::PathBuf;

fn public_good(name: &str) -> PathBuf {
    repo().join("testdata/sigstore/public-good").join(name)
}

const COSIGN_IDENTITY: &str = "w.vollprecht@gmail.com";
const COSIGN_ISSUER: &str = "https://github.com/login/oauth";
const WHEEL_IDENTITY: &str =
    "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

struct Real {
    bundle: String,
    artifact: Vec<u8>,
}

fn cosign_blob() -> Real {
    Real {
        bundle: fs::read_to_string(public_good("cosign-v3-blob.sigstore.json")).unwrap(),
        artifact: fs::read(public_good("cosign-v3-blob.txt")).unwrap(),
    }
}

fn failed_check(result: Result<mcplock::crypto::sigstore::Verified, SigstoreError>) -> String {
    match result {
        Err(SigstoreError::Failed { check, detail }) => format!("{check}: {detail}"),
        other => panic!("expected a failed check, got {other:?}"),
    }
}

#[test]
fn real_public_good_bundles_verify_with_the_built_in_trust_root() {
    let root = trusted_root(None).unwrap();
    let real = cosign_blob();
    let verified = verify(
        &root,
        &real.bundle,
        &real.artifact,
        &IdentityRule::Exact(COSIGN_IDENTITY.into()),
        COSIGN_ISSUER,
    )
    .unwrap();
    assert_eq!(verified.identity, COSIGN_IDENTITY);
    assert_eq!(verified.issuer, COSIGN_ISSUER);
    assert!(verified.signed_at.starts_with("2025-12-03"), "{verified:?}");

    // A v0.2 bundle from a GitHub Actions release workflow (PyPI's rfc8785 wheel).
    let wheel = fs::read(public_good("rfc8785-0.1.2-py3-none-any.whl")).unwrap();
    let bundle =
        fs::read_to_string(public_good("rfc8785-0.1.2-py3-none-any.whl.sigstore")).unwrap();
    let rule = IdentityRule::pattern(
        r"https://github\.com/trailofbits/rfc8785\.py/\.github/workflows/release\.yml@refs/tags/v.*",
    )
    .unwrap();
    let verified = verify(&root, &bundle, &wheel, &rule, GITHUB_ISSUER).unwrap();
    assert_eq!(verified.identity, WHEEL_IDENTITY);
}

#[test]
fn real_bundles_fail_each_check_for_its_own_reason() {
    let root = trusted_root(None).unwrap();
    let real = cosign_blob();
    let exact = IdentityRule::Exact(COSIGN_IDENTITY.into());

    let wrong_identity = IdentityRule::Exact("someone@else.example".into());
    let why = failed_check(verify(
        &root,
        &real.bundle,
        &real.artifact,
        &wrong_identity,
        COSIGN_ISSUER,
    ));
    assert!(why.starts_with("identity:"), "{why}");

    let why = failed_check(verify(
        &root,
        &real.bundle,
        &real.artifact,
        &exact,
        GITHUB_ISSUER,
    ));
    assert!(why.starts_with("issuer:"), "{why}");

    // A pattern that matches only part of the identity is not a match.
    for substring in [
        "vollprecht",
        "w\\.vollprecht@gmail",
        "gmail\\.com",
        ".*@gmail",
    ] {
        let rule = IdentityRule::pattern(substring).unwrap();
        let why = failed_check(verify(
            &root,
            &real.bundle,
            &real.artifact,
            &rule,
            COSIGN_ISSUER,
        ));
        assert!(why.starts_with("identity:"), "{substring}: {why}");
    }
    let whole = IdentityRule::pattern(r"w\.vollprecht@gmail\.com").unwrap();
    assert!(verify(&root, &real.bundle, &real.artifact, &whole, COSIGN_ISSUER).is_ok());

    let mut other = real.artifact.clone();
    other.push(b'\n');
    let why = failed_check(verify(&root, &real.bundle, &other, &exact, COSIGN_ISSUER));
    assert!(
        why.starts_with("artifact:") || why.starts_with("signature:"),
        "{why}"
    );

    // A tampered signature.
    let bundle: serde_json::Value = serde_json::from_str(&real.bundle).unwrap();
    let signature = bundle["messageSignature"]["signature"].as_str().unwrap();
    let mut chars: Vec<char> = signature.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    let tampered = real
        .bundle
        .replace(signature, &chars.into_iter().collect::<String>());
    assert!(verify(&root, &tampered, &real.artifact, &exact, COSIGN_ISSUER).is_err());

    // Not a bundle at all: malformed input, not a failed check.
    assert!(matches!(
        verify(
            &root,
            "{\"mediaType\": 1}",
            &real.artifact,
            &exact,
            COSIGN_ISSUER
        ),
        Err(SigstoreError::Malformed(_))
    ));
}

#[test]
fn verify_cli_requires_an_identity_and_an_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = public_good("cosign-v3-blob.sigstore.json");
    let bundle = bundle.to_str().unwrap();
    let run = run_in(
        dir.path(),
        &["verify", "--bundle", bundle],
        std::time::Duration::from_secs(30),
    );
    run.expect_failure(2, "needs --identity");
    let run = run_in(
        dir.path(),
        &["verify", "--bundle", bundle, "--identity", COSIGN_IDENTITY],
        std::time::Duration::from_secs(30),
    );
    run.expect_failure(2, "needs --issuer");
    let run = run_in(
        dir.path(),
        &[
            "verify",
            "--bundle",
            bundle,
            "--identity-regexp",
            "(",
            "--issuer",
            COSIGN_ISSUER,
        ],
        std::time::Duration::from_secs(30),
    );
    run.expect_failure(2, "not a valid regular expression");
}
