//! `mcplock policy` end to end: the examples of docs/policy.md, every fail-closed path, and
//! hostile policies that must end quickly with a clear error.

use crate::common::*;
use std::fs;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn locked(tools: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run_in(
        dir.path(),
        &[
            "lock",
            "--",
            fixture_bin(),
            "--tools",
            tools,
            "--prompts",
            "1",
            "--templates",
            "1",
            "--instructions",
            "Use the tools carefully.",
        ],
        T,
    )
    .expect_success();
    dir
}

fn check(dir: &tempfile::TempDir, policy: &str, extra: &[&str]) -> Run {
    fs::write(dir.path().join("policy.yaml"), policy).unwrap();
    let mut args = vec!["policy", "check", "--policy", "policy.yaml"];
    args.extend_from_slice(extra);
    run_in(dir.path(), &args, T)
}

/// Code blocks of docs/policy.md whose info string is `{lang} {key}=NAME`.
fn blocks(doc: &str, lang: &str, key: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    let opener = format!("```{lang} {key}=");
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix(&opener) {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            out.push((name.to_string(), body.join("\n") + "\n"));
        }
    }
    out
}

#[test]
fn every_example_in_the_docs_runs_as_documented() {
    let doc = fs::read_to_string(repo().join("docs/policy.md")).unwrap();
    let examples = blocks(&doc, "yaml", "example");
    let expectations = blocks(&doc, "text", "expect");
    assert!(examples.len() >= 4, "examples not found");
    let dir = locked("3");
    for (name, policy) in examples {
        let expect = &expectations
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no expect block for {name}"))
            .1;
        let run = check(&dir, &policy, &["--format", "json"]);
        assert!(run.code == 0 || run.code == 1, "{name}: {}", run.stderr);
        let report = run.json();
        for line in expect.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (id, status, count) = (parts[0], parts[1], parts[2].parse::<usize>().unwrap());
            let rule = report["rules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("{name}: no rule {id}"));
            let failures = rule["failures"].as_array().unwrap();
            let errored = failures.iter().any(|f| f["outcome"] == "error");
            let got = if errored {
                "ERROR"
            } else if failures.is_empty() {
                "pass"
            } else if rule["severity"] == "warn" {
                "warn"
            } else {
                "FAIL"
            };
            assert_eq!(
                (got, failures.len()),
                (status, count),
                "{name}/{id}: {rule}"
            );
        }
        let should_fail = expect.contains("FAIL") || expect.contains("ERROR");
        assert_eq!(run.code, i32::from(should_fail), "{name}: exit code");
    }
}

#[test]
fn presets_list_and_explain() {
    let dir = locked("3");
    let run = run_in(dir.path(), &["policy", "presets"], T);
    run.expect_success();
    assert!(run.stdout.contains("baseline") && run.stdout.contains("strict"));
    let run = run_in(dir.path(), &["policy", "explain", "--preset", "strict"], T);
    run.expect_success();
    assert!(
        run.stdout.contains("no-file-or-http-templates") && run.stdout.contains("expr:"),
        "{}",
        run.stdout
    );
    run_in(dir.path(), &["policy", "check", "--preset", "baseline"], T).expect_success();
    run_in(dir.path(), &["policy", "check", "--preset", "nope"], T)
        .expect_failure(2, "no preset \"nope\"");
    run_in(dir.path(), &["policy", "check"], T).expect_failure(2, "no policy given");
}

#[test]
fn explain_names_the_failing_items() {
    let dir = locked("2");
    fs::write(dir.path().join("p.yaml"), "name: p\nrules:\n  - id: not-tool-1\n    on: tool\n    expr: mcp.tool.name != 'tool_00001'\n    message: m\n    severity: error\n").unwrap();
    let run = run_in(dir.path(), &["policy", "explain", "--policy", "p.yaml"], T);
    run.expect_success();
    assert!(
        run.stdout.contains("mcplock-fixture/tool_00001: fails: m"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("tool_00000: fails"), "{}", run.stdout);
}

#[test]
fn fail_closed_paths() {
    let dir = locked("2");
    let rule = |expr: &str, severity: &str| {
        format!(
            "name: p\nrules:\n  - id: r\n    on: tool\n    expr: {expr:?}\n    message: m\n    severity: {severity}\n"
        )
    };
    // A clean false of a warn rule is only a warning...
    let run = check(&dir, &rule("false", "warn"), &[]);
    run.expect_success();
    assert!(run.stdout.contains("warn  r"), "{}", run.stdout);
    // ...but an error is a failure whatever the severity.
    let run = check(&dir, &rule("mcp.tool.nope", "warn"), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("ERROR r"), "{}", run.stdout);
    let run = check(&dir, &rule("mcp.tool.name", "warn"), &[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("not a boolean"), "{}", run.stdout);
    check(&dir, &rule("false", "error"), &[]).expect_failure(1, "");
    // Broken policies: exit 2 naming the line.
    check(&dir, &rule("mcp.tool.(", "error"), &[]).expect_failure(2, "does not compile");
    check(&dir, "name: p\nrules:\n  - id: r\n    expr: 'true'\n    message: m\n    severity: error\n    when: always\n", &[])
        .expect_failure(2, "when");
    check(&dir, "name: p\nrules:\n  - id: r\n    expr: 'true'\n    message: m\n    severity: error\n  - id: r\n    expr: 'true'\n    message: m\n    severity: error\n", &[])
        .expect_failure(2, "policy.yaml:7: duplicate rule id");
    check(
        &dir,
        "name: p\nrules:\n  - id: r\n    expr: 'true'\n    message: m\n    severity: critical\n",
        &[],
    )
    .expect_failure(2, "policy.yaml:3");
    // A server that cannot be scanned is an error, never an empty pass.
    let mut args = vec!["--"];
    args.extend([fixture_bin(), "--crash-on-page", "0"]);
    check(&dir, &rule("true", "error"), &args).expect_failure(3, "scan failed");
}

#[test]
fn hostile_policies_end_quickly_with_a_clear_error() {
    let dir = locked("400");
    let one = |expr: &str| {
        format!(
            "name: p\nrules:\n  - id: r\n    expr: {expr:?}\n    message: m\n    severity: error\n"
        )
    };
    let started = Instant::now();
    let deep = format!("{}true{}", "[".repeat(5000), "]".repeat(5000));
    check(&dir, &one(&deep), &[]).expect_failure(2, "nest");
    let megabyte = "true && ".repeat(131_072) + "true";
    check(&dir, &one(&megabyte), &[]).expect_failure(2, "bytes");
    // A cubic comprehension over 400 tools (64 million steps): the deadline ends it.
    let costly = "mcp.server.tools.all(a, mcp.server.tools.all(b, mcp.server.tools.all(c, a.name != '' || b.name != c.name)))";
    let run = check(&dir, &one(costly), &["--eval-timeout", "1"]);
    run.expect_failure(1, "did not finish within 1s");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "hostile cases took {:?}",
        started.elapsed()
    );
}

#[test]
fn json_report_fields() {
    let dir = locked("2");
    let run = run_in(
        dir.path(),
        &["policy", "check", "--preset", "strict", "--format", "json"],
        T,
    );
    run.expect_success();
    let report = run.json();
    assert_eq!(report["mcplockPolicy"], 1);
    assert_eq!(report["passed"], true);
    let first = &report["rules"][0];
    for field in [
        "id",
        "policy",
        "severity",
        "on",
        "message",
        "expr",
        "passed",
        "failsCheck",
        "evaluated",
        "failures",
    ] {
        assert!(first.get(field).is_some(), "missing {field}: {first}");
    }
}

#[test]
fn regression_issue_13_no_policy_aborts_mcplock() {
    let dir = locked("2");
    let one = |expr: &str| {
        format!(
            "name: p\nrules:\n  - id: r\n    expr: {expr:?}\n    message: m\n    severity: error\n"
        )
    };
    // A 2.7 KB chain of 1,400 terms used to overflow the evaluation thread's stack (exit 134).
    for chain in [
        vec!["1"; 1_400].join("*") + " > 0",
        vec!["true"; 1_400].join("=="),
        format!("[[1]]{} == 1", "[0]".repeat(1_400)),
    ] {
        for command in ["check", "explain"] {
            std::fs::write(dir.path().join("p.yaml"), one(&chain)).unwrap();
            let run = run_in(dir.path(), &["policy", command, "--policy", "p.yaml"], T);
            run.expect_failure(2, "operators, selections or indexes");
        }
    }
    // Nested maps that build strings: bounded in memory, not only in time.
    let list = format!(
        "[{}]",
        (0..100)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let big = "x".repeat(4_000);
    let grow = format!("{list}.map(a, {list}.map(b, {list}.map(c, '{big}' + '{big}'))).size() > 0");
    let run = check(
        &dir,
        &one(&grow),
        &["--eval-memory", "64MiB", "--eval-timeout", "60"],
    );
    run.expect_failure(1, "more than 64 MiB of memory");
}

#[test]
fn a_homoglyph_tool_in_another_server_is_named_as_a_look_alike() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two servers of one host: the second renames its tool to read_fіle (Cyrillic і).
    for (name, extra) in [
        ("files", vec![]),
        (
            "shadow",
            vec!["--rename-tool", "tool_00000", "read_f\u{456}le"],
        ),
    ] {
        let mut args = vec!["lock", "--name", name, "--", fixture_bin(), "--tools", "1"];
        if name == "files" {
            args.extend(["--rename-tool", "tool_00000", "read_file"]);
        }
        args.extend(extra);
        let run = run_in(d, &args, T);
        run.expect_success();
        if name == "shadow" {
            // lock says so at once, with the look-alike letter spelled out.
            assert!(
                run.stdout
                    .contains(r#"tool "read_f\u{0456}le" looks like "files/read_file""#),
                "{}",
                run.stdout
            );
        }
    }
    let run = run_in(
        d,
        &[
            "policy", "check", "--preset", "baseline", "--format", "json",
        ],
        T,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let rule = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "tool-name-is-not-confusable")
        .expect("the preset has the rule");
    let failures = rule["failures"].to_string();
    assert!(
        failures.contains("read_file") && failures.contains("read_f\u{456}le"),
        "both look-alikes are named: {failures}"
    );
}
