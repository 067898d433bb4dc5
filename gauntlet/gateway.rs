//! The gateway, met by a real remote host: the official TypeScript SDK's Streamable HTTP client
//! connects through `mcplock gateway` to server-everything (stdio) as an agent with a token.

use crate::common::{everything_server, mcplock_bin, real_component, run_in};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running gateway, stopped when dropped.
struct Gateway {
    child: Child,
    url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the gateway on a free loopback port with `flags`; its address is read from its
/// stderr.
fn gateway(dir: &Path, flags: &[&str]) -> Gateway {
    let mut child = Command::new(mcplock_bin())
        .current_dir(dir)
        .args(["gateway", "--agents", "agents.json"])
        .args(["--listen", "127.0.0.1:0"])
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the gateway ended before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Gateway { child, url }
}

fn token(dir: &Path, agent: &str, grants: &[&str]) -> String {
    let mut args = vec![
        "--format",
        "json",
        "gateway",
        "token",
        "--agents",
        "agents.json",
    ];
    args.extend(["--agent", agent]);
    for grant in grants {
        args.extend(["--grant", grant]);
    }
    let run = run_in(dir, &args, Duration::from_secs(30));
    run.expect_success();
    run.json()["token"].as_str().unwrap().to_string()
}

fn client(url: &str, token: &str, calls: Value) -> Value {
    let out = Command::new("node")
        .arg(real_component("node/http_client.mjs"))
        .args([url, token, &calls.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_real_http_client_uses_a_locked_stdio_server_through_the_gateway_as_granted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = everything_server();
    let mut lock = vec!["lock", "--name", "everything", "--"];
    lock.extend(server.iter().map(String::as_str));
    run_in(d, &lock, Duration::from_secs(120)).expect_success();
    // The team's story: a key, the lock signed, the gateway enforcing the signed lock.
    let keygen = ["keygen", "--private", "team.key", "--public", "team.pub"];
    run_in(d, &keygen, Duration::from_secs(30)).expect_success();
    run_in(d, &["sign", "--key", "team.key"], Duration::from_secs(30)).expect_success();
    let full = token(d, "full", &["everything"]);
    let narrow = token(d, "narrow", &["everything/echo"]);
    let idle = token(d, "idle", &[]);
    let gw = gateway(d, &["--key", "team.pub"]);
    let url = format!("{}/servers/everything/mcp", gw.url);

    // The whole server: everything it locked, and a call answered as directly.
    let calls = json!([["echo", {"message": "through the gateway"}]]);
    let out = client(&url, &full, calls.clone());
    assert_eq!(out["server"], "mcp-servers/everything", "{out}");
    assert_eq!(out["session"], true, "{out}");
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"echo") && tools.len() > 3, "{out}");
    assert_eq!(
        out["calls"][0]["text"][0], "Echo: through the gateway",
        "{out}"
    );

    // One tool granted: only it is listed, and another tool's call is denied.
    let calls = json!([["echo", {"message": "x"}], ["get-sum", {"a": 1, "b": 2}]]);
    let out = client(&url, &narrow, calls);
    assert_eq!(out["tools"], json!(["echo"]), "{out}");
    assert_eq!(out["calls"][0]["text"][0], "Echo: x", "{out}");
    let denied = out["calls"][1]["error"].as_str().unwrap_or_default();
    assert!(denied.contains("mcplock denied"), "{out}");
    assert!(denied.contains("not in this agent's grant"), "{out}");

    // No grant, a wrong token, no token: refused before any session.
    for (who, token) in [
        ("idle", idle.as_str()),
        ("wrong", "mcpl_wrong"),
        ("none", ""),
    ] {
        let out = client(&url, token, json!([]));
        let error = out["connectError"].as_str().unwrap_or_default();
        assert!(!error.is_empty(), "{who}: {out}");
    }
    drop(gw);

    // Shadow mode lets drift through, never what the grant leaves out.
    let gw = gateway(d, &["--key", "team.pub", "--on-drift", "warn"]);
    let url = format!("{}/servers/everything/mcp", gw.url);
    let calls = json!([["get-sum", {"a": 1, "b": 2}]]);
    let out = client(&url, &narrow, calls);
    assert_eq!(out["tools"], json!(["echo"]), "{out}");
    let denied = out["calls"][0]["error"].as_str().unwrap_or_default();
    assert!(denied.contains("not in this agent's grant"), "{out}");
}

#[test]
fn refusals_say_why_in_http_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut lock = vec!["lock", "--name", "fixture", "--"];
    let fixture = [crate::common::fixture_bin(), "--tools", "2"];
    lock.extend(fixture);
    run_in(d, &lock, Duration::from_secs(60)).expect_success();
    let full = token(d, "full", &["fixture"]);
    let gw = gateway(d, &["--allow-unsigned"]);
    let url = format!("{}/servers/fixture/mcp", gw.url);
    let post = |headers: &[(&str, &str)], body: &str| -> (u16, Value, String) {
        let mut curl = Command::new("curl");
        curl.args([
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-D",
            "/dev/stderr",
            "-X",
            "POST",
            &url,
        ]);
        for (name, value) in headers {
            curl.args(["-H", &format!("{name}: {value}")]);
        }
        let out = curl.args(["--data-binary", body]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, status) = text.rsplit_once('\n').unwrap();
        let doc = serde_json::from_str(body).unwrap_or(Value::Null);
        (
            status.parse().unwrap(),
            doc,
            String::from_utf8_lossy(&out.stderr).to_lowercase(),
        )
    };
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let bearer = format!("Bearer {full}");
    let (status, doc, headers) = post(&[], init);
    assert_eq!(status, 401);
    assert_eq!(doc["error"]["data"]["reason"], "no-token", "{doc}");
    assert!(headers.contains("www-authenticate: bearer"), "{headers}");
    let (status, doc, _) = post(
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        init,
    );
    assert_eq!(status, 403);
    assert_eq!(doc["error"]["data"]["reason"], "origin", "{doc}");
    let (status, doc, _) = post(
        &[("Authorization", &bearer), ("Mcp-Session-Id", "0000")],
        init,
    );
    assert_eq!(status, 404);
    assert_eq!(doc["error"]["data"]["reason"], "session-not-found", "{doc}");
    let (status, doc, _) = post(
        &[("Authorization", &bearer)],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(doc["error"]["data"]["reason"], "no-session", "{doc}");
    let (status, doc, headers) = post(&[("Authorization", &bearer)], init);
    assert_eq!(status, 200, "{doc}");
    assert!(doc["result"]["serverInfo"].is_object(), "{doc}");
    assert!(headers.contains("mcp-session-id: "), "{headers}");
}
