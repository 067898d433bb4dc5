//! `lock --check`, `diff` (relaunch and offline) and `verify` agree, with each other and with
//! an RFC 8785 implementation nobody here wrote, on whether a server changed: real definitions
//! (testdata/listings) are mutated at random and served by the fixture (`--listing`), and every
//! command must say "changed" exactly when the canonical forms differ.

use crate::common::mutate::mutate;
use crate::common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::Path;
use std::time::Duration;

/// Deterministic cases: enough to cover every mutation kind on every item kind, few enough to
/// keep the suite quick (each case starts mcplock six times).
const CASES: u64 = 40;

fn definitions() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for file in ["everything", "python-sdk", "sqlite", "tailwind"] {
        let path = repo().join(format!("testdata/listings/{file}.json"));
        let listing: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        for kind in ["tools", "prompts", "resourceTemplates"] {
            for item in listing[kind].as_array().into_iter().flatten() {
                out.push((kind, item.clone()));
            }
        }
    }
    out
}

/// splitmix64: the case's seeds, reproducible from its number.
fn seed(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Every integer written as a double (`10` as `10.0`): the same RFC 8785 numbers.
fn respelled(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| value.clone(), Value::Number),
        Value::Array(a) => Value::Array(a.iter().map(respelled).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), respelled(v))).collect())
        }
        _ => value.clone(),
    }
}

fn canonical(value: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).unwrap()
}

fn mcplock(dir: &Path, args: &[&str]) -> Run {
    run_in(dir, args, Duration::from_secs(60))
}

fn with_fixture<'a>(args: &[&'a str], listing: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--", fixture_bin(), "--listing", listing]);
    all
}

/// Exit 0 or 1 (anything else fails the test), as "unchanged".
fn unchanged(run: &Run, what: &str) -> bool {
    assert!(
        run.code == 0 || run.code == 1,
        "{what}: exit {}\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    run.code == 0
}

#[test]
fn lock_check_diff_and_verify_agree_on_mutated_real_definitions() {
    let pool = definitions();
    assert!(pool.len() > 30, "too few recorded definitions");
    let leaves = [
        Value::Null,
        json!(1),
        json!(1.5),
        json!("1"),
        json!([]),
        json!({}),
        json!(true),
        json!({"type": "string"}),
    ];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    mcplock(d, &["keygen"]).expect_success();
    let listing = d.join("listing.json").to_string_lossy().into_owned();
    let (mut same, mut changed) = (0, 0);
    for case in 0..CASES {
        let s = seed(case);
        let (kind, original) = &pool[(s % pool.len() as u64) as usize];
        let key_field = if *kind == "resourceTemplates" {
            "uriTemplate"
        } else {
            "name"
        };
        // One to three mutations; every fourth case only respells numbers or reorders keys.
        let mut mutated = original.clone();
        for round in 0..=(s >> 60) % 3 {
            let leaf = &leaves[((s >> (8 * round)) % leaves.len() as u64) as usize];
            mutated = mutate(&mutated, seed(s ^ round), leaf);
        }
        if case % 4 == 0 {
            mutated = respelled(original);
        }
        if !mutated.is_object() {
            continue;
        }
        mutated[key_field] = original[key_field].clone();
        let expect_same = canonical(original) == canonical(&mutated);

        for file in ["mcp-lock.json", "mcp-lock.json.sig", "b.json"] {
            let _ = fs::remove_file(d.join(file));
        }
        fs::write(&listing, json!({ *kind: [original] }).to_string()).unwrap();
        mcplock(d, &with_fixture(&["lock", "--name", "s"], &listing)).expect_success();
        mcplock(d, &["sign", "--key", "mcplock.key"]).expect_success();

        fs::write(&listing, json!({ *kind: [mutated] }).to_string()).unwrap();
        let check = mcplock(
            d,
            &with_fixture(&["lock", "--check", "--name", "s"], &listing),
        );
        let relaunch = mcplock(d, &["diff", "--fail-on", "info"]);
        mcplock(
            d,
            &with_fixture(&["lock", "--name", "s", "-o", "b.json"], &listing),
        )
        .expect_success();
        let offline = mcplock(d, &["diff", "mcp-lock.json", "b.json", "--fail-on", "info"]);
        let verify = mcplock(
            d,
            &[
                "verify",
                "b.json",
                "--key",
                "mcplock.pub",
                "--signature",
                "mcp-lock.json.sig",
            ],
        );
        let verdicts = [
            ("lock --check", unchanged(&check, "lock --check")),
            ("diff (relaunch)", unchanged(&relaunch, "diff")),
            ("diff OLD NEW", unchanged(&offline, "diff OLD NEW")),
            ("verify", unchanged(&verify, "verify")),
        ];
        for (what, verdict) in verdicts {
            assert_eq!(
                verdict,
                expect_same,
                "case {case}: {what} says {} but the canonical forms {}\nold: {original}\nnew: {mutated}\n{}",
                if verdict { "unchanged" } else { "changed" },
                if expect_same { "are equal" } else { "differ" },
                offline.stdout
            );
        }
        if expect_same {
            same += 1;
        } else {
            changed += 1;
        }
    }
    // The cases must exercise both answers, or the test proves nothing.
    assert!(same >= 5 && changed >= 15, "same {same}, changed {changed}");
}
