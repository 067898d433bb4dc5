//! Fuzzing the trust-boundary parsers on stable Rust: proptest drives byte-level mutations of
//! real inputs from testdata (and random bytes) into every parser that reads something
//! untrusted. Each harness asserts that the parser answers (accepts or refuses) without a
//! panic, and where it accepts, that what it accepted holds its invariants.
//!
//! `cargo test --test gauntlet fuzz::` runs a bounded number of cases per harness. For a long run:
//!   MCPLOCK_FUZZ_CASES=200000 cargo test --release --test gauntlet fuzz:: -- --nocapture
//! which prints each harness's cases per second. Figures are in docs/benchmarks.md.

use mcplock::core::bundle::{KNOWN_MEMBERS, Manifest, check_member_name, member_cap};
use mcplock::core::canonical::{canonicalize, to_canonical};
use mcplock::core::json::parse_strict;
use mcplock::core::jsonrpc::classify;
use mcplock::core::lockfile::Lockfile;
use mcplock::core::policy::{EVAL_STACK_BYTES, PRESETS, compile, parse_policy};
use mcplock::core::signature::Envelope;
use mcplock::core::snapshot::Snapshot;
use mcplock::edge::zip::{ReadLimits, read_hostile, write_deterministic};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::fs;
use std::time::Instant;

/// Cases per harness: `MCPLOCK_FUZZ_CASES`, else a number that keeps `cargo test` quick.
fn cases() -> u32 {
    std::env::var("MCPLOCK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn read_dir(dir: &str, suffix: &str) -> Vec<Vec<u8>> {
    let dir = crate::common::repo().join(dir);
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    paths.sort();
    paths.iter().map(|p| fs::read(p).unwrap()).collect()
}

/// One lockfile per recorded real listing, written by mcplock itself.
fn lockfile_seeds() -> Vec<Vec<u8>> {
    read_dir("testdata/listings", ".json")
        .iter()
        .map(|bytes| {
            let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            let mut snapshot = Snapshot::from_json(&value).unwrap();
            snapshot.launch = Some(mcplock::core::snapshot::Launch::Stdio {
                command: "server".into(),
                args: vec!["--stdio".into()],
                env_keys: vec!["TOKEN".into()],
                cwd: None,
            });
            let entry = mcplock::core::lockfile::ServerLock::from_snapshot(snapshot, true).unwrap();
            Lockfile {
                servers: [("s".to_string(), entry)].into_iter().collect(),
                approvals: Vec::new(),
                registry: Default::default(),
            }
            .to_pretty()
        })
        .collect()
}

/// Byte-level edits of a seed: flip, insert, delete, duplicate a range, or append junk.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((0u8..5, any::<usize>(), any::<u8>(), 1usize..48), 0..6),
        prop::collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(move |(i, edits, junk)| {
            let mut bytes = seeds[i].clone();
            for (op, at, byte, len) in edits {
                let at = if bytes.is_empty() {
                    0
                } else {
                    at % bytes.len()
                };
                let end = (at + len).min(bytes.len());
                match op {
                    0 if !bytes.is_empty() => bytes[at] ^= byte.max(1),
                    1 => bytes.insert(at, byte),
                    2 => {
                        bytes.drain(at..end);
                    }
                    3 => {
                        let copy = bytes[at..end].to_vec();
                        bytes.splice(at..at, copy);
                    }
                    _ => bytes.extend_from_slice(&junk),
                }
            }
            bytes
        })
}

/// Runs `check` over `cases()` mutated inputs on a thread with room for deep recursion, and
/// reports the rate and how many inputs were accepted (`check` returns whether the input got
/// past the reader to the invariant). A harness that accepts nothing never checks its
/// invariant: that fails.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8]) -> bool + Send + 'static) {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let name = name.to_string();
    std::thread::Builder::new()
        .stack_size(EVAL_STACK_BYTES)
        .spawn(move || {
            let cases = cases();
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            let started = Instant::now();
            let accepted = std::sync::atomic::AtomicU32::new(0);
            let strategy = prop_oneof![
                9 => mutated(seeds),
                1 => prop::collection::vec(any::<u8>(), 0..256),
            ];
            runner
                .run(&strategy, |bytes| {
                    if check(&bytes) {
                        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let secs = started.elapsed().as_secs_f64();
            let accepted = accepted.into_inner();
            println!(
                "fuzz {name}: {cases} cases in {secs:.2}s ({:.0} cases/s), {accepted} accepted",
                f64::from(cases) / secs
            );
            assert!(
                accepted > 0,
                "fuzz {name}: no input of {cases} was accepted, so the invariant was never checked"
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn fuzz_strict_json_and_canonicalization() {
    let mut seeds = read_dir("testdata/jcs", ".json");
    seeds.extend(read_dir("testdata/listings", ".json"));
    fuzz("json+jcs", seeds, |bytes| {
        let parsed = parse_strict(bytes);
        let canonical = canonicalize(bytes);
        assert_eq!(parsed.is_ok(), canonical.is_ok());
        if let (Ok(value), Ok(canonical)) = (parsed, canonical) {
            // Canonical output is itself canonical, and the same value's.
            assert_eq!(canonicalize(&canonical).unwrap(), canonical);
            assert_eq!(to_canonical(&value), canonical);
            return true;
        }
        false
    });
}

#[test]
fn fuzz_lockfile_read() {
    fuzz("lockfile", lockfile_seeds(), |bytes| {
        if let Ok(lock) = Lockfile::parse(bytes) {
            // Whatever is accepted writes back to a file that reads as the same lockfile.
            let again = Lockfile::parse(&lock.to_pretty()).expect("rewritten lockfile reads");
            assert_eq!(again, lock);
            return true;
        }
        false
    });
}

#[test]
fn fuzz_snapshot_read() {
    fuzz(
        "snapshot",
        read_dir("testdata/listings", ".json"),
        |bytes| {
            if let Ok(value) = parse_strict(bytes)
                && let Ok(snapshot) = Snapshot::from_json(&value)
            {
                assert_eq!(Snapshot::from_json(&snapshot.to_json()).unwrap(), snapshot);
                return true;
            }
            false
        },
    );
}

#[test]
fn fuzz_jsonrpc_classification() {
    let seeds: Vec<Vec<u8>> = [
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","inputSchema":{"type":"object"}}]}}"#,
        r#"{"jsonrpc":"2.0","id":"s1","method":"ping"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
        r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found","data":{"x":1}}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no"}}"#,
        r#"[{"jsonrpc":"2.0","id":3,"result":{}}]"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("jsonrpc", seeds, |bytes| {
        let _ = mcplock::transport::conn::is_human_line(bytes);
        parse_strict(bytes).map(classify).is_ok_and(|c| c.is_ok())
    });
}

const LIMITS: ReadLimits = ReadLimits {
    max_entries: 16,
    max_total_bytes: 8 << 20,
    admit: |name| {
        let name = check_member_name(name)?;
        Ok(member_cap(name, 4 << 20))
    },
};

#[test]
fn fuzz_zip_reader() {
    let members: Vec<(&str, Vec<u8>)> = KNOWN_MEMBERS
        .iter()
        .map(|name| (*name, format!("{name} contents\n").repeat(20).into_bytes()))
        .collect();
    let entries: Vec<(&str, &[u8])> = members.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let seeds = vec![
        write_deterministic(&entries).unwrap(),
        write_deterministic(&entries[..2]).unwrap(),
    ];
    fuzz("zip", seeds, |bytes| {
        if let Ok(members) = read_hostile(bytes, LIMITS) {
            // Accepted means: exactly the archive mcplock would write for these members.
            let entries: Vec<(&str, &[u8])> = members
                .iter()
                .map(|m| (std::str::from_utf8(&m.name).unwrap(), m.bytes.as_slice()))
                .collect();
            let own = write_deterministic(&entries).unwrap();
            if own != bytes {
                let at = own
                    .iter()
                    .zip(bytes)
                    .position(|(a, b)| a != b)
                    .unwrap_or(own.len().min(bytes.len()));
                let window = |b: &[u8]| b[at.saturating_sub(8)..(at + 8).min(b.len())].to_vec();
                panic!(
                    "an archive other than mcplock's own was accepted: byte {at} of {} (own {}): {:?} vs {:?}",
                    bytes.len(),
                    own.len(),
                    window(bytes),
                    window(&own)
                );
            }
            return true;
        }
        false
    });
}

#[test]
fn fuzz_bundle_manifest() {
    // (The seed used to hold "sha256": "00", which no manifest accepts: the harness never got
    // past the reader until it counted what it accepted.)
    let seed = format!(
        r#"{{"files":{{"README.txt":{{"sha256":"{zeros}","size":1}}}},"mcplockBundle":1,"mcplockVersion":"0.1.0","signer":"sha256:{zeros}","summary":{{"policy":null,"servers":[]}}}}"#,
        zeros = "0".repeat(64)
    );
    Manifest::parse(seed.as_bytes()).expect("the seed is a manifest");
    fuzz("manifest", vec![seed.into_bytes()], |bytes| {
        let Ok(manifest) = Manifest::parse(bytes) else {
            return false;
        };
        // What is accepted writes back to bytes that read as the same manifest.
        let again = Manifest::parse(&manifest.to_bytes()).expect("rewritten manifest reads");
        assert_eq!(again.to_bytes(), manifest.to_bytes());
        true
    });
}

#[test]
fn fuzz_policy_yaml_and_cel() {
    let mut seeds: Vec<Vec<u8>> = PRESETS
        .iter()
        .map(|(_, _, t)| t.as_bytes().to_vec())
        .collect();
    seeds.push(
        b"name: p\nrules:\n  - id: r\n    on: tool\n    expr: \"mcp.tool.name.matches('^[a-z_]+$') && size(mcp.tool.description) < 2048\"\n    message: m\n    severity: error\n".to_vec(),
    );
    fuzz("policy", seeds, |bytes| {
        if let Ok(text) = std::str::from_utf8(bytes)
            && let Ok(policy) = parse_policy("fuzz.yaml", text)
        {
            return compile(policy.rules).is_ok();
        }
        false
    });
}

#[test]
fn fuzz_signature_envelope() {
    let key = mcplock::crypto::ed25519::PrivateKey::generate().unwrap();
    let envelope = Envelope {
        key_id: key.public().key_id().unwrap(),
        signature: key.sign(b"payload"),
    };
    fuzz("envelope", vec![envelope.to_pretty()], |bytes| {
        Envelope::parse(bytes).is_ok()
    });
}

#[test]
fn fuzz_sigstore_bundle() {
    let mut seeds = read_dir("testdata/sigstore/local/bundles", ".json");
    seeds.extend(read_dir("testdata/sigstore/public-good", ".json"));
    let root = mcplock::crypto::sigstore::trusted_root(None).unwrap();
    let rule = mcplock::crypto::sigstore::IdentityRule::Exact("x@example.com".into());
    fuzz("sigstore", seeds, move |bytes| {
        // Reaching verification is the point: a bundle that parses and is then refused
        // (wrong artifact, wrong identity) got past the reader.
        std::str::from_utf8(bytes).is_ok_and(|text| {
            matches!(
                mcplock::crypto::sigstore::verify(&root, text, b"artifact", &rule, "https://x"),
                Ok(_) | Err(mcplock::crypto::sigstore::SigstoreError::Failed { .. })
            )
        })
    });
}
