//! `mcplock scan` against the scriptable fixture server: complete listings over pages, both
//! protocol generations, and every hostile mode ending in a clear error and the right exit code,
//! never a hang or a panic.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn json_scan(fixture_flags: &[&str]) -> Value {
    let run = scan_fixture(&["--format", "json"], fixture_flags);
    run.expect_success();
    run.json()
}

#[test]
fn follows_every_page_of_every_kind() {
    let snap = json_scan(&[
        "--tools",
        "120",
        "--prompts",
        "5",
        "--templates",
        "4",
        "--resources",
        "6",
        "--page-size",
        "7",
    ]);
    let tools = names(&snap["tools"]);
    assert_eq!(tools.len(), 120);
    assert_eq!(tools.first().unwrap(), "tool_00000");
    assert_eq!(tools.last().unwrap(), "tool_00119");
    assert_eq!(names(&snap["prompts"]).len(), 5);
    assert_eq!(snap["resourceTemplates"].as_array().unwrap().len(), 4);
    assert_eq!(snap["resources"].as_array().unwrap().len(), 6);
}

#[test]
fn keeps_every_field_as_served() {
    let snap = json_scan(&["--tools", "2"]);
    let tool = &snap["tools"][1];
    assert_eq!(tool["name"], "tool_00001");
    assert_eq!(tool["title"], "Tool 1");
    assert_eq!(
        tool["inputSchema"]["properties"]["ratio"]["maximum"],
        json!(1.5)
    );
    assert_eq!(tool["outputSchema"]["properties"]["ok"]["type"], "boolean");
    assert_eq!(tool["annotations"]["readOnlyHint"], true);
    assert_eq!(tool["icons"][0]["sizes"], json!(["16x16"]));
    assert_eq!(tool["_meta"]["com.example/index"], 1);
    assert_eq!(tool["x-fixture-unknown"], json!({"kept": true}));
}

#[test]
fn asks_only_for_what_is_advertised() {
    // The fixture exits 42 if asked for a list it did not advertise.
    let snap = json_scan(&["--tools", "2"]);
    assert_eq!(snap["prompts"], Value::Null);
    assert_eq!(snap["resourceTemplates"], Value::Null);
    assert_eq!(snap["resources"], Value::Null);
    assert_eq!(
        snap["capabilities"],
        json!({"tools": {"listChanged": true}})
    );
}

#[test]
fn speaks_the_stateless_protocol_to_a_modern_server() {
    let snap = json_scan(&[
        "--era",
        "modern",
        "--tools",
        "30",
        "--page-size",
        "4",
        "--instructions",
        "be careful",
    ]);
    assert_eq!(snap["era"], "modern");
    assert_eq!(snap["protocolVersion"], "2026-07-28");
    assert_eq!(snap["serverInfo"]["name"], "mcplock-fixture");
    assert_eq!(snap["instructions"], "be careful");
    assert_eq!(names(&snap["tools"]).len(), 30);
    // Envelope fields never leak into items.
    for tool in snap["tools"].as_array().unwrap() {
        for field in ["ttlMs", "cacheScope", "resultType", "nextCursor"] {
            assert!(tool.get(field).is_none(), "{field} leaked into {tool}");
        }
    }
}

#[test]
fn falls_back_to_the_handshake_for_a_legacy_server() {
    let run = scan_fixture(&[], &["--era", "legacy"]);
    run.expect_success();
    assert!(
        run.stdout.contains("2025-11-25 (initialize handshake)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("legacy server: server/discover answered error -32601"),
        "{}",
        run.stdout
    );
}

#[test]
fn accepts_older_legacy_versions_under_auto_only() {
    let snap = json_scan(&["--era", "legacy", "--legacy-version", "2024-11-05"]);
    assert_eq!(snap["protocolVersion"], "2024-11-05");
    let run = scan_fixture(
        &["--protocol", "2025-11-25"],
        &["--era", "legacy", "--legacy-version", "2024-11-05"],
    );
    run.expect_failure(3, "does not speak 2025-11-25");
}

#[test]
fn rejects_a_version_it_does_not_speak() {
    let run = scan_fixture(&[], &["--era", "legacy", "--legacy-version", "2099-01-01"]);
    run.expect_failure(3, "no protocol version in common");
    let run = scan_fixture(&["--protocol", "2026-07-28"], &["--era", "legacy"]);
    run.expect_failure(3, "does not speak 2026-07-28");
}

#[test]
fn a_notification_before_each_response_changes_nothing() {
    let snap = json_scan(&[
        "--notify-before-response",
        "--tools",
        "40",
        "--page-size",
        "9",
    ]);
    assert_eq!(names(&snap["tools"]).len(), 40);
}

#[test]
fn answers_requests_the_server_sends_mid_scan() {
    // The fixture checks our answers (ping -> {}, roots/list -> no roots, other -> -32601)
    // and exits 43 if any is wrong.
    let run = scan_fixture(
        &[],
        &["--era", "legacy", "--server-requests", "--tools", "3"],
    );
    run.expect_success();
    assert!(
        run.stdout.contains("answered 3 request(s) the server sent"),
        "{}",
        run.stdout
    );
}

#[test]
fn drains_a_stderr_flood() {
    let run = scan_fixture(
        &["--format", "json"],
        &["--stderr-flood", "8000000", "--tools", "5"],
    );
    run.expect_success();
    assert_eq!(names(&run.json()["tools"]).len(), 5);
}

#[test]
fn lists_again_when_the_server_says_its_list_changed() {
    let run = scan_fixture(&[], &["--list-changed-during-list", "1", "--tools", "4"]);
    run.expect_success();
    assert!(run.stdout.contains("listed again"), "{}", run.stdout);
}

#[test]
fn tolerates_and_reports_an_error_with_a_null_id() {
    let run = scan_fixture(&[], &["--era", "legacy", "--null-id-error"]);
    run.expect_success();
    assert!(
        run.stdout.contains("error response without an id"),
        "{}",
        run.stdout
    );
}

#[test]
fn garbage_on_stdout_is_a_protocol_error_under_strict_stdout() {
    // Without --strict-stdout a human line is skipped (gauntlet/tolerance.rs); the answer it
    // replaced still never comes.
    scan_fixture(&["--strict-stdout"], &["--garbage-on", "tools/list"])
        .expect_failure(3, "not valid JSON-RPC");
    scan_fixture(&["--strict-stdout"], &["--stdout-banner"])
        .expect_failure(3, "Fixture server starting");
    scan_fixture(&["--timeout", "1"], &["--garbage-on", "tools/list"])
        .expect_failure(3, "no answer within 1s");
}

#[test]
fn an_oversize_message_is_refused() {
    let run = scan_fixture(
        &["--max-message-size", "1MiB"],
        &["--oversize-on", "tools/list", "--oversize-bytes", "3000000"],
    );
    run.expect_failure(3, "larger than the 1048576-byte cap");
}

#[test]
fn invalid_utf8_is_an_error_not_a_hang() {
    scan_fixture(&[], &["--invalid-utf8-on", "tools/list"]).expect_failure(3, "not valid UTF-8");
}

#[test]
fn a_lone_surrogate_escape_is_an_error() {
    scan_fixture(&[], &["--lone-surrogate-on", "tools/list"]).expect_failure(3, "surrogate");
}

#[test]
fn a_crash_mid_pagination_fails_with_the_servers_stderr() {
    let run = scan_fixture(
        &[],
        &["--tools", "50", "--page-size", "10", "--crash-on-page", "2"],
    );
    run.expect_failure(3, "closed its output");
    assert!(run.stderr.contains("crashing on page 2"), "{}", run.stderr);
    assert!(run.stderr.contains("exit status: 7"), "{}", run.stderr);
}

#[test]
fn silence_times_out() {
    let run = scan_fixture(&["--timeout", "1"], &["--silent-on", "tools/list"]);
    run.expect_failure(3, "tools/list: no answer within 1s");
    let run = scan_fixture(
        &["--scan-timeout", "1"],
        &["--delay-ms", "400", "--tools", "50", "--page-size", "5"],
    );
    run.expect_failure(3, "longer than 1s");
}

#[test]
fn a_cursor_loop_is_caught() {
    scan_fixture(&[], &["--cursor-loop", "--tools", "10", "--page-size", "3"])
        .expect_failure(3, "a second time");
}

#[test]
fn page_and_item_caps_are_errors_not_truncation() {
    scan_fixture(
        &["--max-pages", "10"],
        &["--tools", "100", "--page-size", "1"],
    )
    .expect_failure(3, "more than 10 pages");
    scan_fixture(&["--max-items", "10"], &["--tools", "20"])
        .expect_failure(3, "more than 10 items");
}

#[test]
fn duplicate_names_are_rejected() {
    scan_fixture(
        &[],
        &["--duplicate-tool", "--tools", "5", "--page-size", "2"],
    )
    .expect_failure(3, "two tools with name \"tool_00000\"");
}

#[test]
fn responses_to_unknown_ids_and_duplicates_are_protocol_errors() {
    scan_fixture(&[], &["--unknown-id-response"]).expect_failure(3, "never sent");
    scan_fixture(&[], &["--duplicate-response-on", "tools/list"]).expect_failure(3, "twice");
}

#[test]
fn stops_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let run = scan_fixture(&[], &["--spawn-grandchild", pidfile.to_str().unwrap()]);
    run.expect_success();
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let proc_dir = format!("/proc/{pid}");
    let gone = (0..100).any(|_| {
        let alive = std::fs::read_to_string(format!("{proc_dir}/stat"))
            .map(|stat| !stat.contains(") Z "))
            .unwrap_or(false);
        if alive {
            std::thread::sleep(Duration::from_millis(20));
        }
        !alive
    });
    assert!(gone, "the server's child {pid} survived the scan");
}

#[test]
fn escalates_to_kill_when_the_server_ignores_eof_and_term() {
    let script = format!("trap '' TERM; exec {} --ignore-stdin-close", fixture_bin());
    let run = run(&["scan", "--", "sh", "-c", &script]);
    run.expect_success();
    assert!(
        run.stdout.contains("stopped it with KILL"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_missing_program_is_a_server_error() {
    run(&["scan", "--", "/nonexistent/mcp-server"]).expect_failure(3, "no such program");
}

#[test]
fn usage_errors_exit_2() {
    run(&["scan"]).expect_failure(2, "no server given; put its command after `--`");
    run(&["scan", "--bogus", "--", "x"]).expect_failure(2, "--bogus");
    run(&["scan", "--protocol", "1999-01-01", "--", "x"])
        .expect_failure(2, "unknown protocol version");
    run(&["scan", "--timeout", "0", "--", "x"]).expect_failure(2, "seconds");
}

#[test]
fn help_teaches_the_exit_codes() {
    let run = run(&["scan", "--help"]);
    run.expect_success();
    assert!(run.stdout.contains("Exit codes"));
    assert!(
        run.stdout
            .contains("mcplock scan -- npx -y @modelcontextprotocol/server-everything")
    );
}

#[test]
fn a_broken_pipe_exits_0() {
    let script = format!(
        "set -o pipefail; {} scan -- {} --tools 3000 | head -c 10 >/dev/null",
        mcplock_bin(),
        fixture_bin()
    );
    let status = std::process::Command::new("bash")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn human_output_escapes_terminal_control_characters() {
    let run = scan_fixture(
        &[],
        &[
            "--tools",
            "1",
            "--description-suffix",
            "\u{1b}]0;pwned\u{7}\u{202e}",
        ],
    );
    run.expect_success();
    assert!(
        !run.stdout.contains('\u{1b}'),
        "raw escape reached the terminal"
    );
    assert!(
        !run.stdout.contains('\u{202e}'),
        "raw bidi override reached the terminal"
    );
    // The description's first line is "Tool number 0." — the suffix lands on the second line,
    // so check the JSON output carries it verbatim and the instructions path escapes too.
    let run = scan_fixture(&[], &["--tools", "1", "--instructions", "hi\u{1b}[2Jthere"]);
    run.expect_success();
    assert!(run.stdout.contains("hi\\e[2Jthere"), "{}", run.stdout);
}

#[test]
fn json_mode_reports_errors_as_json_too() {
    let run = scan_fixture(
        &["--format", "json", "--strict-stdout"],
        &["--garbage-on", "tools/list"],
    );
    run.expect_failure(3, "not valid JSON-RPC");
    let doc = run.json();
    assert_eq!(doc["error"]["exitCode"], 3);
}
