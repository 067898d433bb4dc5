//! What mcplock tolerates, and only that: lists a server advertises but does not serve, human
//! lines on stdout, servers that differ from start to start, and legacy servers that ignore the
//! `server/discover` probe. Each is recorded or reported exactly; nothing that could hide a
//! change is let through.

use crate::common::*;
use serde_json::{Value, json};
use std::fs;
use std::path::Path;
use std::time::Duration;

/// `mcplock <args> -- <fixture> <flags>` in `dir`.
fn mcplock_in(dir: &Path, args: &[&str], fixture_flags: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--");
    all.push(fixture_bin());
    all.extend_from_slice(fixture_flags);
    run_in(dir, &all, Duration::from_secs(60))
}

fn lockfile(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("mcp-lock.json")).unwrap()).unwrap()
}

/// Writes the fixture's flags to `dir/flags` (one per line): the command line stays the same
/// while the server's behaviour changes, as an agent host would see it.
fn set_flags(dir: &Path, flags: &[&str]) -> String {
    let path = dir.join("flags");
    fs::write(&path, flags.join("\n")).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn every_list_kind_advertised_but_unserved_is_recorded_with_its_code() {
    for (method, field) in [
        ("tools/list", "tools"),
        ("prompts/list", "prompts"),
        ("resources/templates/list", "resourceTemplates"),
        ("resources/list", "resources"),
    ] {
        for code in ["-32601", "-32602"] {
            let flags = [
                "--tools",
                "1",
                "--templates",
                "1",
                "--resources",
                "1",
                "--prompts",
                "1",
                "--unserved",
                method,
                "--unserved-code",
                code,
            ];
            let run = scan_fixture(&["--format", "json"], &flags);
            run.expect_success();
            let snap = run.json();
            let code: i64 = code.parse().unwrap();
            assert_eq!(snap["unserved"], json!({field: {"code": code}}), "{method}");
            assert_eq!(snap[field], Value::Null, "{method}");
            let human = scan_fixture(&[], &flags);
            human.expect_success();
            assert!(
                human
                    .stdout
                    .contains(&format!("{method} answered error {code}")),
                "{}",
                human.stdout
            );

            let dir = tempfile::tempdir().unwrap();
            mcplock_in(dir.path(), &["lock", "--resources"], &flags).expect_success();
            let doc = lockfile(dir.path());
            // `unserved` needs version 2; the recorded artifact's content makes it 5.
            assert_eq!(doc["lockfileVersion"], 5);
            let entry = &doc["servers"]["mcplock-fixture"];
            assert_eq!(entry["unserved"], json!({field: {"code": code}}));
            assert_eq!(
                entry[field],
                json!({}),
                "{method}: no items, never invented"
            );
            // Locking again is byte-identical and passes --check.
            let before = fs::read(dir.path().join("mcp-lock.json")).unwrap();
            mcplock_in(dir.path(), &["lock", "--resources", "--check"], &flags).expect_success();
            assert_eq!(fs::read(dir.path().join("mcp-lock.json")).unwrap(), before);
        }
    }
}

#[test]
fn any_other_error_on_a_list_still_fails_the_scan() {
    let run = scan_fixture(
        &[],
        &[
            "--unserved",
            "resources/templates/list",
            "--unserved-code",
            "-32603",
        ],
    );
    run.expect_failure(
        3,
        "resources/templates/list: the server answered with error -32603",
    );
    // An invalid-params error on a later page (a cursor the server refuses) is not "unserved":
    // the first page was served, so the list is incomplete.
    let run = scan_fixture(&[], &["--tools", "10", "--page-size", "2", "--bad-cursor"]);
    run.expect_failure(3, "tools/list: the server answered with error -32602");
}

#[test]
fn a_list_that_starts_being_served_is_critical_drift() {
    let dir = tempfile::tempdir().unwrap();
    let flags = set_flags(
        dir.path(),
        &["--tools", "1", "--unserved", "resources/templates/list"],
    );
    mcplock_in(dir.path(), &["lock"], &["--flags-file", &flags]).expect_success();
    set_flags(dir.path(), &["--tools", "1", "--templates", "2"]);
    let run = run_in(
        dir.path(),
        &["diff", "--format", "json", "--fail-on", "critical"],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let classes: Vec<(&str, &str)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["class"].as_str().unwrap(),
                c["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        classes.contains(&("list-served", "critical")),
        "{classes:?}"
    );
    assert_eq!(
        classes
            .iter()
            .filter(|c| **c == ("item-added", "critical"))
            .count(),
        2,
        "{classes:?}"
    );
    // And back: a served list that stops being served.
    mcplock_in(dir.path(), &["lock", "--update"], &["--flags-file", &flags]).expect_success();
    set_flags(
        dir.path(),
        &["--tools", "1", "--unserved", "resources/templates/list"],
    );
    let run = run_in(
        dir.path(),
        &["diff", "--format", "json"],
        Duration::from_secs(60),
    );
    let report = run.json();
    let classes: Vec<&str> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert!(classes.contains(&"list-unserved"), "{classes:?}");
    assert!(classes.contains(&"item-removed"), "{classes:?}");
}

#[test]
fn human_lines_on_stdout_are_skipped_reported_and_in_no_digest() {
    let banners = [
        "--era",
        "legacy",
        "--tools",
        "2",
        "--stdout-banner",
        "--banner-before",
        "initialize",
        "--banner-before",
        "tools/list",
    ];
    let run = scan_fixture(&["--format", "json"], &banners);
    run.expect_success();
    let snap = run.json();
    // One before the first message, one before the answer to initialize, one before tools/list.
    assert_eq!(snap["tolerated"], json!({"stdoutNonJsonLines": 3}));
    let human = scan_fixture(&[], &banners);
    human.expect_success();
    assert!(
        human.stdout.contains(
            "skipped 3 line(s) (84 bytes) the server wrote to stdout that are not JSON: \"Fixture server starting\", \"[fixture] handling initialize\", \"[fixture] handling tools/list\""
        ),
        "{}",
        human.stdout
    );

    // The same server with and without banners locks to the same bytes: both locks run the
    // same argv (a flags file at the same relative path), one quiet, one noisy.
    let quiet = tempfile::tempdir().unwrap();
    let noisy = tempfile::tempdir().unwrap();
    set_flags(quiet.path(), &["--era", "legacy", "--tools", "2"]);
    set_flags(noisy.path(), &banners);
    let lock = |dir: &Path| {
        let run = run_in(
            dir,
            &["lock", "--", fixture_bin(), "--flags-file", "flags"],
            Duration::from_secs(60),
        );
        run.expect_success();
        run
    };
    lock(quiet.path());
    let noisy_run = lock(noisy.path());
    assert!(
        noisy_run.stdout.contains("note: skipped 3 line(s)"),
        "{}",
        noisy_run.stdout
    );
    assert_eq!(
        fs::read(quiet.path().join("mcp-lock.json")).unwrap(),
        fs::read(noisy.path().join("mcp-lock.json")).unwrap()
    );
}

#[test]
fn strict_stdout_and_the_noise_budget_refuse() {
    scan_fixture(&["--strict-stdout"], &["--stdout-banner"])
        .expect_failure(3, "Fixture server starting");
    scan_fixture(&["--strict-stdout"], &["--banner-before", "tools/list"])
        .expect_failure(3, "not valid JSON-RPC");
    scan_fixture(&[], &["--banner-lines", "100"]).expect_success();
    scan_fixture(&[], &["--banner-lines", "101"]).expect_failure(3, "non-JSON text to stdout");
}

#[test]
fn garbage_instead_of_an_answer_still_fails() {
    // The answer never comes: a timeout, with the skipped line shown so the cause is visible.
    let run = scan_fixture(&["--timeout", "1"], &["--garbage-on", "tools/list"]);
    run.expect_failure(3, "tools/list: no answer within 1s");
    assert!(
        run.stderr.contains("\"this is not json\""),
        "{}",
        run.stderr
    );
}

#[test]
fn a_server_that_differs_between_starts_is_named_not_locked() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("starts").to_string_lossy().into_owned();
    let flags = ["--tools", "2", "--per-start-order", counter.as_str()];
    let run = mcplock_in(dir.path(), &["lock", "--repeat", "3"], &flags);
    run.expect_failure(3, "server \"mcplock-fixture\" is not deterministic: tool \"tool_00000\" /description differ between starts");
    assert!(
        run.stderr
            .contains("tool \"tool_00000\" /description differs between start 1 and start 2, 3"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("mcp-lock.json").exists());
    let run = mcplock_in(
        dir.path(),
        &["scan", "--repeat", "2", "--format", "json"],
        &flags,
    );
    run.expect_failure(3, "not deterministic");
    assert_eq!(run.json()["error"]["exitCode"], 3);

    let run = mcplock_in(
        dir.path(),
        &["lock", "--repeat", "2", "--accept-unstable"],
        &flags,
    );
    run.expect_success();
    assert!(
        run.stdout.contains("is not deterministic")
            && run
                .stdout
                .contains("kept the first scan as --accept-unstable asked"),
        "{}",
        run.stdout
    );
    assert!(dir.path().join("mcp-lock.json").exists());
    // Re-scanning it shows drift; diff hints at --repeat rather than blaming the server.
    let run = run_in(dir.path(), &["diff"], Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--repeat"), "{}", run.stderr);

    mcplock_in(
        dir.path(),
        &["scan", "--accept-unstable"],
        &["--tools", "1"],
    )
    .expect_failure(2, "--repeat");
}

#[test]
fn repeat_compares_what_the_lock_pins() {
    // Static resources that change between starts matter only when they are locked.
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("starts").to_string_lossy().into_owned();
    let flags = [
        "--tools",
        "1",
        "--resources",
        "2",
        "--per-start-order",
        counter.as_str(),
        "--per-start-in",
        "resources",
    ];
    mcplock_in(dir.path(), &["lock", "--repeat", "2"], &flags).expect_success();
    mcplock_in(
        dir.path(),
        &["lock", "--repeat", "2", "--resources", "-o", "r.json"],
        &flags,
    )
    .expect_failure(3, "resource \"fixture://resources/00000\" /description");
    mcplock_in(dir.path(), &["scan", "--repeat", "2"], &flags)
        .expect_failure(3, "not deterministic");
}

#[test]
fn a_deterministic_server_passes_repeat() {
    let run = scan_fixture(&["--repeat", "3"], &["--tools", "4", "--prompts", "2"]);
    run.expect_success();
    assert!(
        run.stdout
            .contains("started the server 3 times: it offered exactly the same each time"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_legacy_server_silent_on_discover_costs_only_the_probe_bound() {
    // Before the probe had its own bound it waited 10 s, longer than this whole scan may take.
    let run = scan_fixture(
        &["--scan-timeout", "8"],
        &["--era", "legacy", "--silent-on", "server/discover"],
    );
    run.expect_success();
    assert!(
        run.stdout
            .contains("server/discover got no answer within 2s (--probe-timeout), initialize did"),
        "{}",
        run.stdout
    );
    let run = scan_fixture(
        &["--probe-timeout", "0.5", "--format", "json"],
        &["--era", "legacy", "--silent-on", "server/discover"],
    );
    run.expect_success();
    assert_eq!(run.json()["era"], "legacy");
}

#[test]
fn a_modern_server_slower_than_the_probe_bound_is_still_modern() {
    // Every answer takes 1.5 s; the probe bound is 0.3 s, so initialize is sent meanwhile.
    // The server answers in order, so discovery decides.
    for era in ["modern", "dual"] {
        let run = scan_fixture(
            &["--probe-timeout", "0.3", "--format", "json"],
            &["--era", era, "--delay-ms", "1500", "--tools", "1"],
        );
        run.expect_success();
        assert_eq!(run.json()["era"], "modern", "{era}");
    }
}

#[test]
fn where_the_lock_records_the_generation_no_probe_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let flags = set_flags(dir.path(), &["--era", "legacy", "--tools", "2"]);
    mcplock_in(dir.path(), &["lock"], &["--flags-file", &flags]).expect_success();
    // From now on the fixture exits 44 if it is sent server/discover.
    set_flags(
        dir.path(),
        &["--era", "legacy", "--tools", "2", "--fail-on-discover"],
    );
    let run = mcplock_in(dir.path(), &["lock", "--check"], &["--flags-file", &flags]);
    run.expect_success();
    let run = run_in(dir.path(), &["diff"], Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Without a lock entry to go by, auto probes (and this fixture refuses that).
    mcplock_in(dir.path(), &["scan"], &["--flags-file", &flags])
        .expect_failure(3, "exit status: 44");
}

#[test]
fn regression_issue_13_budgets_per_scan_name_their_flag() {
    scan_fixture(
        &["--max-total-items", "5"],
        &["--tools", "3", "--prompts", "3"],
    )
    .expect_failure(3, "--max-total-items");
    scan_fixture(
        &["--max-total-items", "6"],
        &["--tools", "3", "--prompts", "3"],
    )
    .expect_success();
    // Many small pages, each far under the per-message cap, add up.
    scan_fixture(
        &["--max-scan-bytes", "64KiB"],
        &["--tools", "400", "--page-size", "10"],
    )
    .expect_failure(3, "--max-scan-bytes");
    scan_fixture(&["--max-scan-bytes", "64KiB"], &["--tools", "10"]).expect_success();
}
