//! Keyless signing and Sigstore verification: real public-good bundles, and a local test
//! instance (test CA, CT log and Rekor keys, mock Fulcio and Rekor on 127.0.0.1) so the whole
//! sign/verify path runs offline, checked against sigstore-python's verifier too.

use crate::common::*;
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

// ---- the local test instance -----------------------------------------------------------

const LOCAL_IDENTITY: &str =
    "https://github.com/mcplock/test/.github/workflows/sign.yml@refs/heads/main";
const WORKFLOW_REF: &str = "mcplock/test/.github/workflows/sign.yml@refs/heads/main";

fn local(name: &str) -> PathBuf {
    repo().join("testdata/sigstore/local").join(name)
}

fn python() -> String {
    real_component("python/.venv/bin/python")
}

/// Mock Fulcio and Rekor on 127.0.0.1, stopped (stdin closed, then killed) when dropped.
struct MockServices {
    child: std::process::Child,
    url: String,
}

impl MockServices {
    fn start(extra: &[&str]) -> MockServices {
        use std::io::BufRead;
        let mut child = std::process::Command::new(python())
            .arg(repo().join("testdata/sigstore/mock_services.py"))
            .arg("--instance")
            .arg(local(""))
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mock_services.py");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("mock services said {line:?}"))
            .trim()
            .to_string();
        MockServices {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for MockServices {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn github_token() -> String {
    let out = std::process::Command::new(python())
        .arg(repo().join("testdata/sigstore/make_token.py"))
        .args(["--github-workflow-ref", WORKFLOW_REF])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A locked fixture server in a fresh directory.
fn locked() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run_in(
        dir.path(),
        &["lock", "--", fixture_bin(), "--tools", "3"],
        T,
    )
    .expect_success();
    dir
}

const T: std::time::Duration = std::time::Duration::from_secs(60);

fn sign_keyless(dir: &std::path::Path, services: &MockServices, token: &str) -> Run {
    let root = local("trusted_root.json");
    run_in(
        dir,
        &[
            "sign",
            "--sigstore",
            "--identity-token",
            token,
            "--fulcio-url",
            &services.url,
            "--rekor-url",
            &services.url,
            "--trusted-root",
            root.to_str().unwrap(),
        ],
        T,
    )
}

fn verify_keyless(dir: &std::path::Path, extra: &[&str]) -> Run {
    let root = local("trusted_root.json");
    let mut args = vec![
        "verify",
        "--bundle",
        "mcp-lock.json.sigstore.json",
        "--trusted-root",
        root.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_in(dir, &args, T)
}

#[test]
fn keyless_sign_and_verify_run_end_to_end_against_the_local_instance() {
    let services = MockServices::start(&[]);
    let dir = locked();
    let run = sign_keyless(dir.path(), &services, &github_token());
    run.expect_success();
    assert!(run.stdout.contains(LOCAL_IDENTITY), "{}", run.stdout);
    let bundle: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("mcp-lock.json.sigstore.json")).unwrap())
            .unwrap();
    assert_eq!(
        bundle["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let ok = verify_keyless(
        dir.path(),
        &[
            "--identity",
            LOCAL_IDENTITY,
            "--issuer",
            GITHUB_ISSUER,
            "--format",
            "json",
        ],
    );
    ok.expect_success();
    assert_eq!(ok.json()["identity"], LOCAL_IDENTITY);
    assert_eq!(ok.json()["verified"], true);
    let anchored = verify_keyless(
        dir.path(),
        &[
            "--identity-regexp",
            r"https://github\.com/mcplock/test/\.github/workflows/[a-z]+\.yml@refs/heads/main",
            "--issuer",
            GITHUB_ISSUER,
        ],
    );
    anchored.expect_success();

    // Every negative case names the check that failed.
    for (extra, code, needle) in [
        (
            vec![
                "--identity",
                "https://github.com/mcplock/other/.github/workflows/sign.yml@refs/heads/main",
                "--issuer",
                GITHUB_ISSUER,
            ],
            1,
            "identity check failed",
        ),
        (
            vec![
                "--identity",
                LOCAL_IDENTITY,
                "--issuer",
                "https://accounts.google.com",
            ],
            1,
            "issuer check failed",
        ),
        (
            vec![
                "--identity-regexp",
                "https://github.com/mcplock/test",
                "--issuer",
                GITHUB_ISSUER,
            ],
            1,
            "identity check failed",
        ),
        (
            vec![
                "--identity-regexp",
                ".*sign\\.yml",
                "--issuer",
                GITHUB_ISSUER,
            ],
            1,
            "identity check failed",
        ),
    ] {
        verify_keyless(dir.path(), &extra).expect_failure(code, needle);
    }
    // An untrusted CA: the public-good root does not know the test CA.
    run_in(
        dir.path(),
        &[
            "verify",
            "--bundle",
            "mcp-lock.json.sigstore.json",
            "--identity",
            LOCAL_IDENTITY,
            "--issuer",
            GITHUB_ISSUER,
        ],
        T,
    )
    .expect_failure(1, "check failed");
    // A tampered bundle.
    let text = fs::read_to_string(dir.path().join("mcp-lock.json.sigstore.json")).unwrap();
    let sig = bundle["messageSignature"]["signature"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('M') { "N" } else { "M" },
        &sig[1..]
    );
    fs::write(
        dir.path().join("tampered.json"),
        text.replace(sig, &flipped),
    )
    .unwrap();
    let root = local("trusted_root.json");
    run_in(
        dir.path(),
        &[
            "verify",
            "--bundle",
            "tampered.json",
            "--trusted-root",
            root.to_str().unwrap(),
            "--identity",
            LOCAL_IDENTITY,
            "--issuer",
            GITHUB_ISSUER,
        ],
        T,
    )
    .expect_failure(1, "check failed");
    // A bundle for other bytes: the lockfile changed after signing.
    run_in(
        dir.path(),
        &["lock", "--update", "--", fixture_bin(), "--tools", "4"],
        T,
    )
    .expect_success();
    verify_keyless(
        dir.path(),
        &["--identity", LOCAL_IDENTITY, "--issuer", GITHUB_ISSUER],
    )
    .expect_failure(1, "check failed");
}

#[test]
fn sigstore_python_verifies_what_mcplock_signs() {
    let services = MockServices::start(&[]);
    let dir = locked();
    sign_keyless(dir.path(), &services, &github_token()).expect_success();
    let canonical = run_in(dir.path(), &["canonical", "mcp-lock.json"], T);
    canonical.expect_success();
    fs::write(dir.path().join("canonical.json"), &canonical.stdout).unwrap();
    let sigstore_cli = real_component("python/.venv/bin/sigstore");
    let check = |identity: &str, file: &str| {
        std::process::Command::new(&sigstore_cli)
            .arg("--trust-config")
            .arg(local("trust_config.json"))
            .args([
                "verify",
                "identity",
                "--offline",
                "--bundle",
                "mcp-lock.json.sigstore.json",
            ])
            .args([
                "--cert-identity",
                identity,
                "--cert-oidc-issuer",
                GITHUB_ISSUER,
                file,
            ])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = check(LOCAL_IDENTITY, "canonical.json");
    assert!(
        out.status.success(),
        "sigstore-python rejected it: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A real check: another identity, or the pretty file rather than the canonical bytes, fail.
    assert!(
        !check(
            "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main",
            "canonical.json"
        )
        .status
        .success()
    );
    assert!(!check(LOCAL_IDENTITY, "mcp-lock.json").status.success());
}

/// Writes `mcp-lock.json.sigstore.json` over `canonical.json`, made offline by the local
/// instance, with `fault` injected.
fn generate_bundle(dir: &std::path::Path, fault: Option<&str>) {
    let out = std::process::Command::new(python())
        .arg(repo().join("testdata/sigstore/local_instance.py"))
        .arg("bundle")
        .arg(local(""))
        .arg(dir.join("canonical.json"))
        .arg(dir.join("mcp-lock.json.sigstore.json"))
        .args(["--identity", LOCAL_IDENTITY, "--issuer", GITHUB_ISSUER])
        .args(fault.map(|f| ["--fault", f]).iter().flatten())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_certificate_expired_at_signing_time_is_never_written_or_accepted() {
    // The mock issues certificates that expired an hour before they are logged.
    let services = MockServices::start(&["--not-before-offset", "-3600"]);
    let dir = locked();
    let run = sign_keyless(dir.path(), &services, &github_token());
    run.expect_failure(2, "does not verify");
    assert!(!dir.path().join("mcp-lock.json.sigstore.json").exists());

    // And a bundle made that way (offline, for this lockfile's bytes) fails verification.
    let canonical = run_in(dir.path(), &["canonical"], T);
    fs::write(dir.path().join("canonical.json"), &canonical.stdout).unwrap();
    for (fault, needle) in [
        ("expired", "signed time check failed"),
        ("untrusted-ca", "certificate chain check failed"),
        ("bad-set", "transparency log check failed"),
        ("bad-checkpoint", "transparency log check failed"),
        ("bad-inclusion-proof", "transparency log check failed"),
        ("bad-sct", "SCT check failed"),
        ("tampered", "check failed"),
    ] {
        generate_bundle(dir.path(), Some(fault));
        verify_keyless(
            dir.path(),
            &["--identity", LOCAL_IDENTITY, "--issuer", GITHUB_ISSUER],
        )
        .expect_failure(1, needle);
    }
    // The same generator without a fault makes a bundle that verifies: the faults are real.
    generate_bundle(dir.path(), None);
    verify_keyless(
        dir.path(),
        &["--identity", LOCAL_IDENTITY, "--issuer", GITHUB_ISSUER],
    )
    .expect_success();
}

#[test]
fn regression_issue_13_a_log_time_slightly_ahead_of_this_clock_verifies() {
    // The log's clock is 2 s ahead of ours (as if this machine ran 2 s behind): both the
    // signer's own check and a later verify wait for the local clock, then check everything.
    let services = MockServices::start(&["--integrated-time-offset", "2"]);
    let dir = locked();
    sign_keyless(dir.path(), &services, &github_token()).expect_success();
    verify_keyless(
        dir.path(),
        &["--identity", LOCAL_IDENTITY, "--issuer", GITHUB_ISSUER],
    )
    .expect_success();
    // Far beyond the documented skew: refused as before, and nothing is written.
    let services = MockServices::start(&["--integrated-time-offset", "600"]);
    let dir = locked();
    let run = sign_keyless(dir.path(), &services, &github_token());
    run.expect_failure(2, "in the future");
    assert!(!dir.path().join("mcp-lock.json.sigstore.json").exists());
}
