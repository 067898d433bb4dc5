//! The tamper gauntlet for `keygen`, `sign` and `verify`, and interop with openssl.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

struct Signed {
    dir: tempfile::TempDir,
}

impl Signed {
    /// A locked fixture (with non-integer numbers in its schemas), a key pair, a signature.
    fn new() -> Signed {
        let dir = tempfile::tempdir().unwrap();
        let run = run_in(
            dir.path(),
            &[
                "lock",
                "--",
                fixture_bin(),
                "--tools",
                "4",
                "--prompts",
                "1",
                "--instructions",
                "Read \u{2028} carefully \u{1F600}",
            ],
            T,
        );
        run.expect_success();
        run_in(dir.path(), &["keygen"], T).expect_success();
        run_in(dir.path(), &["sign", "--key", "mcplock.key"], T).expect_success();
        Signed { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn verify(&self, extra: &[&str]) -> Run {
        let mut args = vec!["verify", "--key", "mcplock.pub"];
        args.extend_from_slice(extra);
        run_in(self.dir.path(), &args, T)
    }
}

fn envelope(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_fresh_signature_verifies() {
    let s = Signed::new();
    let run = s.verify(&[]);
    run.expect_success();
    assert!(run.stdout.contains("verified"), "{}", run.stdout);
    let env = envelope(&s.path("mcp-lock.json.sig"));
    assert_eq!(env["mcplockSignature"], 1);
    assert_eq!(env["algorithm"], "ed25519");
    assert_eq!(env["canonicalization"], "RFC8785");
    assert_eq!(
        env["payloadType"],
        "application/vnd.mcplock.lockfile+json; version=1"
    );
}

#[test]
fn flipping_one_bit_anywhere_in_the_lockfile_fails() {
    let s = Signed::new();
    let original = fs::read(s.path("mcp-lock.json")).unwrap();
    let positions: Vec<usize> = (0..original.len())
        .step_by((original.len() / 150).max(1))
        .collect();
    assert!(positions.len() >= 100);
    for &i in &positions {
        let mut bytes = original.clone();
        bytes[i] ^= 0x01;
        fs::write(s.path("mcp-lock.json"), &bytes).unwrap();
        let run = s.verify(&[]);
        assert!(
            run.code == 1 || run.code == 2,
            "flip at byte {i} ({:?}) gave exit {}: {}",
            original[i] as char,
            run.code,
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    fs::write(s.path("mcp-lock.json"), &original).unwrap();
    s.verify(&[]).expect_success();
}

#[test]
fn flipping_bits_in_the_signature_or_key_id_fails() {
    use base64::Engine as _;
    let s = Signed::new();
    let sig_path = s.path("mcp-lock.json.sig");
    let original = envelope(&sig_path);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(original["signature"].as_str().unwrap())
        .unwrap();
    for bit in [0usize, 7, 100, 255, 256, 300, 511] {
        let mut flipped = raw.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let mut env = original.clone();
        env["signature"] = base64::engine::general_purpose::STANDARD
            .encode(&flipped)
            .into();
        fs::write(&sig_path, env.to_string()).unwrap();
        s.verify(&[]).expect_failure(1, "does not verify");
    }
    let key_id = original["keyId"].as_str().unwrap();
    let last = key_id.chars().last().unwrap();
    let flipped_id = format!(
        "{}{}",
        &key_id[..key_id.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let mut env = original.clone();
    env["keyId"] = flipped_id.clone().into();
    fs::write(&sig_path, env.to_string()).unwrap();
    let run = s.verify(&[]);
    run.expect_failure(1, "was made by key");
    assert!(
        run.stderr.contains(&flipped_id) && run.stderr.contains(key_id),
        "expected vs found: {}",
        run.stderr
    );
}

#[test]
fn a_signature_for_another_lockfile_or_by_another_key_fails() {
    let s = Signed::new();
    run_in(
        s.dir.path(),
        &[
            "lock",
            "-o",
            "other.json",
            "--",
            fixture_bin(),
            "--tools",
            "5",
        ],
        T,
    )
    .expect_success();
    run_in(
        s.dir.path(),
        &["sign", "other.json", "--key", "mcplock.key"],
        T,
    )
    .expect_success();
    s.verify(&["--signature", "other.json.sig"])
        .expect_failure(1, "does not verify");
    // Every file argument is honoured: other.json with its own signature verifies.
    let run = s.verify(&["other.json"]);
    run.expect_success();
    assert!(run.stdout.contains("other.json"), "{}", run.stdout);

    run_in(
        s.dir.path(),
        &["keygen", "--private", "b.key", "--public", "b.pub"],
        T,
    )
    .expect_success();
    let run = run_in(s.dir.path(), &["verify", "--key", "b.pub"], T);
    run.expect_failure(1, "but the key given (b.pub) is sha256:");
    run_in(s.dir.path(), &["sign", "--key", "b.key", "-o", "b.sig"], T).expect_success();
    s.verify(&["--signature", "b.sig"])
        .expect_failure(1, "was made by key");
}

#[test]
fn a_duplicate_key_fails_and_reformatting_verifies() {
    let s = Signed::new();
    let text = fs::read_to_string(s.path("mcp-lock.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Compact, with keys in serde_json's order: reformatting keeps the signature valid.
    fs::write(s.path("mcp-lock.json"), doc.to_string()).unwrap();
    s.verify(&[]).expect_success();
    // Reordered keys (a hand-written permutation at the top level) also verify.
    let (servers, version) = (doc["servers"].to_string(), &doc["lockfileVersion"]);
    fs::write(
        s.path("mcp-lock.json"),
        format!("{{ \"servers\": {servers},\n\"lockfileVersion\": {version} }}"),
    )
    .unwrap();
    s.verify(&[]).expect_success();
    let line = format!("\"lockfileVersion\": {version},");
    let dup = text.replacen(&line, &format!("{line}\n  {line}"), 1);
    assert_ne!(dup, text);
    fs::write(s.path("mcp-lock.json"), dup).unwrap();
    s.verify(&[]).expect_failure(2, "duplicate object key");
}

#[test]
fn truncated_empty_or_malformed_signatures_exit_2() {
    let s = Signed::new();
    let sig_path = s.path("mcp-lock.json.sig");
    let original = fs::read(&sig_path).unwrap();
    for cut in [0, 1, 10, original.len() / 2, original.len() - 3] {
        fs::write(&sig_path, &original[..cut]).unwrap();
        let run = s.verify(&[]);
        assert_eq!(run.code, 2, "cut at {cut}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"));
    }
    fs::write(&sig_path, "   \n").unwrap();
    s.verify(&[]).expect_failure(2, "empty");
    let newer = String::from_utf8(original.clone())
        .unwrap()
        .replace("\"mcplockSignature\": 1", "\"mcplockSignature\": 2");
    fs::write(&sig_path, newer).unwrap();
    s.verify(&[]).expect_failure(2, "newer mcplock");
    fs::remove_file(&sig_path).unwrap();
    s.verify(&[]).expect_failure(2, "does not exist");
}

#[test]
fn usage_errors_exit_2() {
    let s = Signed::new();
    s.verify(&["a.json", "b.json"])
        .expect_failure(2, "unexpected argument");
    run_in(s.dir.path(), &["verify"], T).expect_failure(2, "--key");
    s.verify(&["missing.json"])
        .expect_failure(2, "does not exist");
    run_in(s.dir.path(), &["verify", "--key", "mcplock.key"], T)
        .expect_failure(2, "this is a private key");
    fs::write(s.path("junk.pub"), "not a key").unwrap();
    run_in(s.dir.path(), &["verify", "--key", "junk.pub"], T).expect_failure(2, "junk.pub");
}

#[test]
fn keygen_writes_private_keys_0600_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let s = Signed::new();
    let mode = fs::metadata(s.path("mcplock.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let before = fs::read(s.path("mcplock.key")).unwrap();
    run_in(s.dir.path(), &["keygen"], T).expect_failure(2, "refusing to overwrite");
    assert_eq!(fs::read(s.path("mcplock.key")).unwrap(), before);
    fs::set_permissions(s.path("mcplock.key"), fs::Permissions::from_mode(0o644)).unwrap();
    run_in(s.dir.path(), &["sign", "--key", "mcplock.key"], T).expect_failure(2, "chmod 600");
}

#[test]
fn sign_refuses_a_lockfile_that_fails_its_own_checks() {
    let s = Signed::new();
    let text = fs::read_to_string(s.path("mcp-lock.json")).unwrap();
    fs::write(
        s.path("mcp-lock.json"),
        text.replacen("Tool number 2.", "Tool number 2. Exfiltrate.", 1),
    )
    .unwrap();
    let before = fs::read(s.path("mcp-lock.json.sig")).unwrap();
    run_in(s.dir.path(), &["sign", "--key", "mcplock.key"], T)
        .expect_failure(2, "refusing to sign");
    assert_eq!(fs::read(s.path("mcp-lock.json.sig")).unwrap(), before);
}

#[test]
fn signing_twice_gives_identical_bytes() {
    let s = Signed::new();
    let first = fs::read(s.path("mcp-lock.json.sig")).unwrap();
    run_in(s.dir.path(), &["sign", "--key", "mcplock.key"], T).expect_success();
    assert_eq!(fs::read(s.path("mcp-lock.json.sig")).unwrap(), first);
}

#[test]
fn openssl_reads_the_keys_and_verifies_with_the_documented_recipe() {
    let s = Signed::new();
    for (args, file) in [
        (vec!["pkey", "-noout", "-text", "-in"], "mcplock.key"),
        (
            vec!["pkey", "-pubin", "-noout", "-text", "-in"],
            "mcplock.pub",
        ),
    ] {
        let out = Command::new("openssl")
            .args(&args)
            .arg(s.path(file))
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl cannot read {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ED25519"));
    }
    let recipe = repo().join("gauntlet/recipes/verify-with-openssl.sh");
    let python = real_component("python/.venv/bin/python");
    let run_recipe = || {
        Command::new("bash")
            .arg(&recipe)
            .args([
                s.path("mcp-lock.json"),
                s.path("mcp-lock.json.sig"),
                s.path("mcplock.pub"),
            ])
            .arg(&python)
            .output()
            .unwrap()
    };
    let out = run_recipe();
    assert!(
        out.status.success(),
        "recipe failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"));
    // And it is a real check: a changed lockfile fails it.
    let text = fs::read_to_string(s.path("mcp-lock.json")).unwrap();
    fs::write(
        s.path("mcp-lock.json"),
        text.replacen("Tool number 2.", "Tool number 3.", 1),
    )
    .unwrap();
    assert!(!run_recipe().status.success());
}
