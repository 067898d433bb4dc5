//! Scans of real MCP servers nobody here wrote: the TypeScript SDK's server-everything (npm),
//! a server on the official Python SDK (PyPI `mcp` 2.x), tailwindcss-mcp-server (npm; prints
//! banners on stdout) and mcp-server-sqlite (PyPI; advertises resources without a templates
//! handler). Installed by testdata/servers/install.sh; a missing one fails the test.

use crate::common::*;
use serde_json::json;

fn scan_real(flags: &[&str], server: &[String]) -> Run {
    let mut args = vec!["scan"];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend(server.iter().map(String::as_str));
    run(&args)
}

#[test]
fn everything_server_over_the_legacy_handshake() {
    let run = scan_real(&["--format", "json"], &everything_server());
    run.expect_success();
    let snap = run.json();
    assert_eq!(snap["era"], "legacy");
    assert_eq!(snap["protocolVersion"], "2025-11-25");
    assert_eq!(snap["serverInfo"]["name"], "mcp-servers/everything");
    assert_eq!(snap["clientCapabilities"], json!({}));
    let tools = names(&snap["tools"]);
    assert_eq!(tools.len(), 13, "{tools:?}");
    for expected in [
        "echo",
        "get-sum",
        "get-tiny-image",
        "trigger-long-running-operation",
    ] {
        assert!(
            tools.contains(&expected.to_string()),
            "{expected} missing from {tools:?}"
        );
    }
    // Nothing that needs a client capability is offered when none is declared.
    assert!(!tools.contains(&"get-roots-list".to_string()));
    let get_sum = snap["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "get-sum")
        .unwrap();
    assert_eq!(get_sum["inputSchema"]["properties"]["a"]["type"], "number");
    assert_eq!(get_sum["inputSchema"]["required"], json!(["a", "b"]));
    assert_eq!(names(&snap["prompts"]).len(), 4);
    assert_eq!(snap["resourceTemplates"].as_array().unwrap().len(), 2);
    assert_eq!(snap["resources"].as_array().unwrap().len(), 7);
    assert!(
        snap["instructions"]
            .as_str()
            .unwrap()
            .contains("Everything Server")
    );
}

#[test]
fn everything_server_offers_more_to_a_more_capable_client() {
    let run = scan_real(
        &[
            "--format",
            "json",
            "--declare",
            "roots,sampling,elicitation",
        ],
        &everything_server(),
    );
    run.expect_success();
    let snap = run.json();
    assert_eq!(
        snap["clientCapabilities"],
        json!({"roots": {}, "sampling": {}, "elicitation": {}})
    );
    let tools = names(&snap["tools"]);
    for extra in [
        "get-roots-list",
        "trigger-sampling-request",
        "trigger-elicitation-request",
    ] {
        assert!(
            tools.contains(&extra.to_string()),
            "{extra} missing from {tools:?}"
        );
    }
}

#[test]
fn python_sdk_server_over_the_stateless_protocol() {
    let run = scan_real(&["--format", "json"], &python_server());
    run.expect_success();
    let snap = run.json();
    assert_eq!(snap["era"], "modern");
    assert_eq!(snap["protocolVersion"], "2026-07-28");
    assert_eq!(snap["serverInfo"]["name"], "mcplock-python-peer");
    assert_eq!(snap["serverInfo"]["version"], "1.2.3");
    assert_eq!(names(&snap["tools"]), ["add", "delete_file", "read_file"]);
    let read_file = &snap["tools"][2];
    assert_eq!(read_file["title"], "Read a file");
    assert_eq!(read_file["annotations"]["readOnlyHint"], true);
    assert_eq!(read_file["inputSchema"]["required"], json!(["path"]));
    assert_eq!(
        read_file["inputSchema"]["properties"]["max_bytes"]["default"],
        4096
    );
    assert_eq!(snap["tools"][1]["annotations"]["destructiveHint"], true);
    assert_eq!(names(&snap["prompts"]), ["review"]);
    assert_eq!(
        snap["resourceTemplates"][0]["uriTemplate"],
        "users://{user_id}/profile"
    );
    assert_eq!(snap["resources"][0]["uri"], "config://app");
    assert!(
        snap["instructions"]
            .as_str()
            .unwrap()
            .contains("delete_file")
    );
}

#[test]
fn python_sdk_server_over_the_legacy_handshake() {
    let run = scan_real(
        &["--format", "json", "--protocol", "2025-11-25"],
        &python_server(),
    );
    run.expect_success();
    let snap = run.json();
    assert_eq!(snap["era"], "legacy");
    assert_eq!(snap["protocolVersion"], "2025-11-25");
    assert_eq!(names(&snap["tools"]), ["add", "delete_file", "read_file"]);
}

#[test]
fn scanning_twice_gives_identical_bytes() {
    let first = scan_real(&["--format", "json"], &python_server());
    let second = scan_real(&["--format", "json"], &python_server());
    first.expect_success();
    second.expect_success();
    assert_eq!(first.stdout, second.stdout);
}

#[test]
fn a_real_server_that_prints_banners_on_stdout_is_read_and_the_banners_reported() {
    let run = scan_real(&["--format", "json"], &tailwind_server());
    run.expect_success();
    let snap = run.json();
    assert_eq!(snap["tolerated"], json!({"stdoutNonJsonLines": 2}));
    assert_eq!(snap["era"], "legacy");
    assert_eq!(snap["serverInfo"]["name"], "tailwindcss-server");
    let tools = names(&snap["tools"]);
    assert_eq!(tools.len(), 8, "{tools:?}");
    assert!(
        tools.contains(&"search_tailwind_docs".to_string()),
        "{tools:?}"
    );
    let human = scan_real(&[], &tailwind_server());
    human.expect_success();
    assert!(
        human.stdout.contains(
            "\"DocumentationScraperService initialized\", \"UtilityMapperService initialized\""
        ),
        "{}",
        human.stdout
    );
    scan_real(&["--strict-stdout"], &tailwind_server())
        .expect_failure(3, "DocumentationScraperService initialized");
}

#[test]
fn a_real_server_without_a_templates_handler_is_read_and_the_gap_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = sqlite_server(&dir.path().join("db.sqlite"));
    let run = scan_real(&["--format", "json"], &server);
    run.expect_success();
    let snap = run.json();
    assert!(
        snap["capabilities"]["resources"].is_object(),
        "{}",
        snap["capabilities"]
    );
    assert_eq!(
        snap["unserved"],
        json!({"resourceTemplates": {"code": -32601}})
    );
    assert_eq!(snap["resourceTemplates"], serde_json::Value::Null);
    assert_eq!(
        names(&snap["tools"]),
        [
            "append_insight",
            "create_table",
            "describe_table",
            "list_tables",
            "read_query",
            "write_query"
        ]
    );
    assert_eq!(names(&snap["prompts"]), ["mcp-demo"]);
    assert_eq!(snap["resources"][0]["uri"], "memo://insights");
}
