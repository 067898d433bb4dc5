//! Remote servers over Streamable HTTP: real servers nobody here wrote (the official
//! "everything" server on the TypeScript SDK, and a server on the official Python SDK), started
//! on 127.0.0.1 by the tests, scanned, locked, re-checked and diffed through `--url`.

use crate::common::remote::{everything_http, hostile_http, python_http};
use crate::common::*;
use serde_json::{Value, json};
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn locked(dir: &std::path::Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("mcp-lock.json")).unwrap()).unwrap()
}

#[test]
fn the_everything_server_over_streamable_http_locks_twice_byte_identically_and_rechecks() {
    let server = everything_http("streamableHttp");
    let url = server.url("/mcp");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scan = run_in(d, &["scan", "--format", "json", "--url", &url], T);
    scan.expect_success();
    let snapshot = scan.json();
    assert_eq!(snapshot["launch"], json!({"headerNames": [], "url": url}));
    assert_eq!(
        snapshot["era"], "legacy",
        "a session-based (2025-11-25) server"
    );
    let tools = names(&snapshot["tools"]);
    assert!(
        tools.contains(&"echo".to_string()) && tools.len() > 5,
        "{tools:?}"
    );

    run_in(d, &["lock", "--url", &url], T).expect_success();
    let first = fs::read(d.join("mcp-lock.json")).unwrap();
    let doc = locked(d);
    assert_eq!(doc["lockfileVersion"], 3, "a remote server needs version 3");
    let name = doc["servers"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert_eq!(doc["servers"][&name]["launch"]["url"], json!(url));
    fs::remove_file(d.join("mcp-lock.json")).unwrap();
    run_in(d, &["lock", "--url", &url], T).expect_success();
    assert_eq!(
        fs::read(d.join("mcp-lock.json")).unwrap(),
        first,
        "same server, same bytes"
    );

    // Re-checked by reconnecting to the recorded URL, and diffed against it: no drift.
    run_in(d, &["lock", "--check"], T).expect_success();
    let diff = run_in(d, &["diff"], T);
    diff.expect_success();
    assert!(
        diff.stderr.contains(&format!("relaunching {name}: {url}")),
        "{}",
        diff.stderr
    );
}

#[test]
fn the_python_sdk_server_over_http_speaks_both_generations() {
    let server = python_http("streamable-http");
    let url = server.url("/mcp");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // By default the probe finds the stateless 2026-07-28 protocol (no session, headers
    // mirrored from the body); asked for 2025-11-25 the same server runs a session.
    let modern = run_in(d, &["scan", "--format", "json", "--url", &url], T);
    modern.expect_success();
    let modern = modern.json();
    assert_eq!(
        (modern["era"].clone(), modern["protocolVersion"].clone()),
        (json!("modern"), json!("2026-07-28"))
    );
    let legacy = run_in(
        d,
        &[
            "scan",
            "--format",
            "json",
            "--protocol",
            "2025-11-25",
            "--url",
            &url,
        ],
        T,
    );
    legacy.expect_success();
    let legacy = legacy.json();
    assert_eq!(legacy["era"], "legacy");
    // The same tools either way, and the same as over stdio.
    let stdio = run_in(d, &["scan", "--format", "json", "--"], T);
    assert_eq!(stdio.code, 2, "no server given is a usage error");
    let argv: Vec<String> = python_server();
    let mut over_stdio = vec!["scan", "--format", "json", "--protocol", "2025-11-25", "--"];
    over_stdio.extend(argv.iter().map(String::as_str));
    let over_stdio = run_in(d, &over_stdio, T);
    over_stdio.expect_success();
    assert_eq!(modern["tools"], legacy["tools"]);
    assert_eq!(legacy["tools"], over_stdio.json()["tools"]);

    // A file with the same server over stdio (version 5: its artifact's content is recorded) takes the
    // remote one beside it; the local entry keeps its digest, and a remote server has no
    // artifact (nothing of it runs here).
    let mut lock_stdio = vec!["lock", "--name", "local", "--"];
    lock_stdio.extend(argv.iter().map(String::as_str));
    run_in(d, &lock_stdio, T).expect_success();
    assert_eq!(locked(d)["lockfileVersion"], 5);
    let local = locked(d)["servers"]["local"]["digest"].clone();
    run_in(d, &["lock", "--name", "remote", "--url", &url], T).expect_success();
    assert_eq!(locked(d)["lockfileVersion"], 5);
    assert_eq!(locked(d)["servers"]["remote"].get("artifact"), None);
    assert_eq!(locked(d)["servers"]["local"]["digest"], local);
    let first = fs::read(d.join("mcp-lock.json")).unwrap();
    run_in(d, &["lock", "--check"], T).expect_success();
    assert_eq!(fs::read(d.join("mcp-lock.json")).unwrap(), first);
}

#[test]
fn bad_remote_endpoints_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Refused before anything is sent.
    run_in(d, &["scan", "--url", "http://mcp.example.com/mcp"], T)
        .expect_failure(2, "plain http:// is allowed only to a loopback address");
    run_in(
        d,
        &["scan", "--url", "https://user:pw@mcp.example.com/mcp"],
        T,
    )
    .expect_failure(2, "must not carry credentials");
    run_in(
        d,
        &[
            "scan",
            "--url",
            "https://mcp.example.com/mcp",
            "--bearer-env",
            "MCPLOCK_NO_SUCH_VAR",
        ],
        T,
    )
    .expect_failure(2, "MCPLOCK_NO_SUCH_VAR is not set");
    run_in(
        d,
        &[
            "scan",
            "--url",
            "https://mcp.example.com/mcp",
            "--header",
            "X-Key: ${MCPLOCK_NO_SUCH_VAR}",
        ],
        T,
    )
    .expect_failure(2, "uses ${MCPLOCK_NO_SUCH_VAR}, which is not set");
    run_in(d, &["scan", "--header", "X-Key: 1", "--", "true"], T)
        .expect_failure(2, "pass its --url");
    // Nothing listening; a path that is not the endpoint.
    let port = crate::common::remote::free_port();
    let nothing = format!("http://127.0.0.1:{port}/mcp");
    run_in(d, &["scan", "--url", &nothing], T).expect_failure(3, "cannot connect");
    let server = python_http("streamable-http");
    run_in(d, &["scan", "--url", &server.url("/elsewhere")], T).expect_failure(
        3,
        "is neither a Streamable HTTP endpoint (POST answered HTTP 404 Not Found)",
    );
}

/// Runs the Python SDK host (`proxy_client.py`) over stdio against `argv` with `calls`.
fn python_host(dir: &std::path::Path, calls: Value, argv: &[&str]) -> (Value, String) {
    let out = std::process::Command::new(real_component("python/.venv/bin/python"))
        .current_dir(dir)
        .arg(real_component("python/proxy_client.py"))
        .arg(calls.to_string())
        .arg("--")
        .args(argv)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the host printed no report ({e}):\n{stdout}\n{stderr}"));
    (report, stderr)
}

#[test]
fn a_stdio_host_reaches_a_remote_server_through_the_proxy_with_every_check() {
    let server = everything_http("streamableHttp");
    let url = server.url("/mcp");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_in(d, &["lock", "--url", &url], T).expect_success();
    let proxy = |extra: &[&str]| -> Vec<String> {
        let mut argv: Vec<String> = vec![
            mcplock_bin().into(),
            "proxy".into(),
            "--allow-unsigned".into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv
    };
    let argv = proxy(&["--audit", "audit.jsonl", "--url", &url]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (seen, stderr) = python_host(
        d,
        json!([["echo", {"message": "hi"}], ["get-sum", {"a": 2, "b": 3}], ["get-sum", {"a": "two", "b": 3}]]),
        &argv,
    );
    assert_eq!(seen["server"], "mcp-servers/everything", "{seen}\n{stderr}");
    assert!(
        seen["tools"].as_array().is_some_and(|t| t.len() > 5),
        "{seen}"
    );
    assert_eq!(seen["calls"][0]["text"], json!(["Echo: hi"]), "{seen}");
    assert!(
        seen["calls"][1]["text"][0]
            .as_str()
            .is_some_and(|t| t.contains('5')),
        "{seen}"
    );
    let denied = seen["calls"][2]["error"].as_str().unwrap_or_default();
    assert!(denied.contains("outside the locked inputSchema"), "{seen}");
    let log = fs::read_to_string(d.join("audit.jsonl")).unwrap();
    run_in(d, &["audit", "verify", "audit.jsonl"], T).expect_success();
    assert!(
        log.contains("\"decision\":\"forward\"") && log.contains("\"item\":\"echo\""),
        "{log}"
    );

    // A URL other than the locked one is refused before anything is sent.
    let other = server.url("/other");
    let argv = proxy(&["--url", &other]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = std::process::Command::new(real_component("python/.venv/bin/python"))
        .current_dir(d)
        .arg(real_component("python/proxy_client.py"))
        .args(["[]", "--"])
        .args(&argv)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the host session succeeded");
    assert!(
        stderr.contains("mcplock proxy refused to start the server")
            && stderr.contains("locks no server"),
        "{stderr}"
    );
}

#[test]
fn legacy_http_sse_servers_are_found_by_the_fallback_and_locked_and_proxied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (server, kind) in [
        (everything_http("sse"), "everything"),
        (python_http("sse"), "python"),
    ] {
        let url = server.url("/sse");
        let _ = fs::remove_file(d.join("mcp-lock.json"));
        let scan = run_in(d, &["scan", "--format", "json", "--url", &url], T);
        scan.expect_success();
        assert!(!names(&scan.json()["tools"]).is_empty(), "{kind}");
        run_in(d, &["lock", "--url", &url], T).expect_success();
        let first = fs::read(d.join("mcp-lock.json")).unwrap();
        run_in(d, &["lock", "--url", &url], T).expect_success();
        assert_eq!(fs::read(d.join("mcp-lock.json")).unwrap(), first, "{kind}");
        run_in(d, &["lock", "--check"], T).expect_success();
        if kind == "everything" {
            let argv = [
                mcplock_bin(),
                "proxy",
                "--allow-unsigned",
                "--url",
                url.as_str(),
            ];
            let (seen, stderr) = python_host(d, json!([["echo", {"message": "over sse"}]]), &argv);
            assert_eq!(
                seen["calls"][0]["text"],
                json!(["Echo: over sse"]),
                "{seen}\n{stderr}"
            );
        }
    }
}

#[test]
fn hostile_http_servers_each_fail_with_a_clear_error_and_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, &[&str], &str); 6] = [
        ("endless-sse", &["--timeout", "2"], "no answer within 2s"),
        ("huge-event", &[], "larger than the 16777216-byte cap"),
        ("wrong-id", &[], "not its response"),
        ("redirect", &[], "another origin, which is not followed"),
        ("session-expires", &[], "the server ended the session"),
        ("html", &[], "answered with text/html, not JSON-RPC"),
    ];
    for (mode, flags, needle) in cases {
        let server = hostile_http(mode, &[]);
        let url = server.url("/mcp");
        let mut args = vec!["scan", "--url", url.as_str()];
        args.extend_from_slice(flags);
        let run = run_in(d, &args, T);
        run.expect_failure(3, needle);
        assert_eq!(
            run.stderr
                .lines()
                .filter(|l| l.starts_with("mcplock: error:"))
                .count(),
            1,
            "{mode}: one error line\n{}",
            run.stderr
        );
    }
}

#[test]
fn credentials_reach_the_server_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = hostile_http("auth", &[]);
    let url = server.url("/mcp");
    // Without them: the 401 names its challenge and the fix.
    run_in(d, &["scan", "--url", &url], T).expect_failure(3, "pass --bearer-env VAR");
    // With them, from the environment: locked, and the token is nowhere but on the wire.
    let lock = |extra: &[&str]| {
        let mut args = vec!["lock", "--url", url.as_str()];
        args.extend_from_slice(extra);
        let child = std::process::Command::new(mcplock_bin())
            .current_dir(d)
            .args(&args)
            .env("MCPLOCK_TEST_TOKEN", "s3cret-token")
            .output()
            .unwrap();
        (
            child.status.code(),
            String::from_utf8_lossy(&child.stdout).into_owned()
                + &String::from_utf8_lossy(&child.stderr),
        )
    };
    let (code, output) = lock(&["--bearer-env", "MCPLOCK_TEST_TOKEN"]);
    assert_eq!(code, Some(0), "{output}");
    let file = fs::read_to_string(d.join("mcp-lock.json")).unwrap();
    assert!(
        !file.contains("s3cret") && !output.contains("s3cret"),
        "{file}\n{output}"
    );
    assert_eq!(
        locked(d)["servers"]["hostile-auth"]["launch"],
        json!({"headerNames": ["authorization"], "url": url})
    );
    // The same credentials as a header with ${VAR}: the same entry (header names are
    // recorded in one spelling).
    let (code, output) = lock(&[
        "--check",
        "--header",
        "AUTHORIZATION: Bearer ${MCPLOCK_TEST_TOKEN}",
    ]);
    assert_eq!(code, Some(0), "{output}");
    // Re-checked without them: refused before anything is sent, naming what is missing.
    run_in(d, &["lock", "--check"], T)
        .expect_failure(2, "was locked with the headers [authorization]");
}

#[test]
fn tls_to_a_private_ca_is_trusted_only_with_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tls = tempfile::tempdir().unwrap();
    let server = crate::common::remote::hostile_https("tools", tls.path());
    let url = format!("https://127.0.0.1:{}/mcp", server.port);
    run_in(d, &["scan", "--url", &url], T).expect_failure(3, "for a private CA pass --cacert FILE");
    let ca = tls.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let scan = run_in(
        d,
        &["scan", "--format", "json", "--cacert", ca, "--url", &url],
        T,
    );
    scan.expect_success();
    assert_eq!(scan.json()["launch"]["url"], json!(url));
    // A file with no certificate in it is refused before anything is sent.
    fs::write(d.join("empty.pem"), "not a certificate\n").unwrap();
    run_in(d, &["scan", "--cacert", "empty.pem", "--url", &url], T).expect_failure(2, "--cacert");
}

#[test]
fn a_remote_rug_pull_is_denied_through_the_proxy_from_the_moment_it_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = hostile_http("rug-pull", &[]);
    let url = server.url("/mcp");
    run_in(d, &["lock", "--url", &url], T).expect_success();
    // The first call's answer comes as an event stream that announces list_changed first;
    // from then on tool_00000's description is poisoned. A raw host waits for the proxy's
    // list_changed (sent once its own re-listing is checked) before calling again: a call made
    // during that one round trip is denied as not listed, which would make this test a race.
    use std::io::{BufRead, Write};
    let mut proxy = std::process::Command::new(mcplock_bin())
        .current_dir(d)
        .args([
            "proxy",
            "--allow-unsigned",
            "--audit",
            "audit.jsonl",
            "--url",
            url.as_str(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut to_proxy = proxy.stdin.take().unwrap();
    let mut from_proxy = std::io::BufReader::new(proxy.stdout.take().unwrap()).lines();
    let mut send = |v: Value| {
        writeln!(to_proxy, "{v}")
            .and_then(|()| to_proxy.flush())
            .unwrap()
    };
    let mut next = || -> Value {
        serde_json::from_str(&from_proxy.next().expect("a line from the proxy").unwrap()).unwrap()
    };
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}),
    );
    assert!(next()["result"].is_object());
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!(next()["result"]["tools"].as_array().map(Vec::len), Some(3));
    let call = |id: i64, tool: &str| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"path": "a"}}});
    send(call(2, "tool_00000"));
    let answered = next();
    assert_eq!(
        answered["result"]["content"][0]["text"], "tool_00000 done",
        "{answered}"
    );
    let told = next();
    assert_eq!(told["method"], "notifications/tools/list_changed", "{told}");
    send(call(3, "tool_00000"));
    let denied = next();
    assert!(
        denied["error"]["message"]
            .as_str()
            .is_some_and(|e| e.contains("mcplock denied")),
        "the drifted tool is denied: {denied}"
    );
    send(call(4, "tool_00001"));
    let other = next();
    assert_eq!(
        other["result"]["content"][0]["text"], "tool_00001 done",
        "{other}"
    );
    drop(to_proxy);
    let _ = proxy.wait();
    let log = fs::read_to_string(d.join("audit.jsonl")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("\"item\":\"tool_00000\"")
            && l.contains("\"reason\":\"drifted\"")
            && l.contains("\"decision\":\"withhold\"")),
        "{log}"
    );
}

#[test]
fn the_http_session_follows_the_protocol_from_initialize_to_delete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("requests.jsonl");
    let server = crate::common::remote::hostile_http_logged("tools", &log);
    run_in(d, &["scan", "--url", &server.url("/mcp")], T).expect_success();
    let requests: Vec<Value> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let session = json!("hostile-session-1");
    let version = json!("2025-11-25");
    let find = |http: &str, method: Value| {
        requests
            .iter()
            .find(|r| r["http"] == http && r["method"] == method)
            .unwrap_or_else(|| panic!("no {http} {method}: {requests:?}"))
    };
    // The probe and initialize carry no session; every later request carries it and the
    // negotiated version; the session is ended with DELETE.
    assert_eq!(
        find("POST", json!("server/discover"))["headers"].get("mcp-session-id"),
        None
    );
    assert_eq!(
        find("POST", json!("initialize"))["headers"].get("mcp-session-id"),
        None
    );
    for (http, method) in [
        ("POST", json!("notifications/initialized")),
        ("POST", json!("tools/list")),
        ("GET", Value::Null),
        ("DELETE", Value::Null),
    ] {
        let headers = &find(http, method.clone())["headers"];
        assert_eq!(
            (&headers["mcp-session-id"], &headers["mcp-protocol-version"]),
            (&session, &version),
            "{http} {method}: {requests:?}"
        );
    }
    // The session ends with DELETE after every message was posted. (The GET stream is opened
    // beside the exchanges, on a connection of its own: on a loaded machine the server may log
    // it after the DELETE, which it then answers with 404.)
    let delete = requests
        .iter()
        .position(|r| r["http"] == "DELETE")
        .unwrap_or_else(|| panic!("no DELETE: {requests:?}"));
    assert!(
        requests[delete..].iter().all(|r| r["http"] != "POST"),
        "{requests:?}"
    );
}

#[test]
fn issue_26_a_token_the_server_echoes_back_is_printed_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = hostile_http("echo-auth", &[]);
    let url = server.url("/mcp");
    let token = "tok-9f8e7d6c5b4a";
    let env = [("MCPLOCK_TEST_TOKEN", token)];
    let bearer = ["--bearer-env", "MCPLOCK_TEST_TOKEN"];
    let header = ["--header", "X-Api-Key: ${MCPLOCK_TEST_TOKEN}"];
    let cases: [(&[&str], &[&str]); 4] = [
        (&["scan", "--url", &url], &bearer),
        (&["scan", "--format", "json", "--url", &url], &bearer),
        (&["lock", "--url", &url], &header),
        (
            &[
                "policy", "check", "--preset", "baseline", "--format", "sarif", "--url", &url,
            ],
            &bearer,
        ),
    ];
    for (command, credentials) in cases {
        let args = [command, credentials].concat();
        let run = run_in_env(d, &args, &env, T);
        assert_ne!(run.code, 0, "{args:?}");
        let seen = format!("{}\n{}", run.stdout, run.stderr);
        // The server did echo it (the refusal quotes its challenge), and it was cleaned.
        assert!(seen.contains("[redacted]"), "{args:?}: {seen}");
        assert!(
            !seen.contains("9f8e7d6c"),
            "{args:?} printed the token:\n{seen}"
        );
    }
    assert!(!d.join("mcp-lock.json").exists());
}
