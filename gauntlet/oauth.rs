//! The gateway as an OAuth resource server, against a real authorization server nobody here
//! wrote (panva's oidc-provider, a certified OpenID Provider, installed from npm): its access
//! tokens for this gateway are accepted for the agents their clients are; expired ones, ones for
//! another audience or from another issuer are refused with the challenge the spec names; and no
//! token ever reaches the upstream (its own request log) or any file or line the gateway writes.

use crate::common::gw::*;
use crate::common::{real_component, run_in};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// This gateway's resource identifier in the tests.
const AUDIENCE: &str = "https://gw.example/mcp";

/// oidc-provider on 127.0.0.1 with `clients` ([id, secret, ttl]), stopped when dropped.
struct AuthServer {
    child: Child,
    issuer: String,
}

impl AuthServer {
    fn start(clients: &[(&str, &str, u64)]) -> AuthServer {
        let clients: Vec<Value> = (clients.iter())
            .map(|(id, secret, ttl)| json!({"id": id, "secret": secret, "ttl": ttl}))
            .collect();
        let mut child = Command::new("node")
            .arg(real_component("node/oauth_server.mjs"))
            .arg(json!({"clients": clients}).to_string())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let issuer = lines
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
            .expect("the authorization server did not start");
        AuthServer { child, issuer }
    }

    /// An access token for `resource` by client credentials, as a machine agent gets one.
    fn token(&self, (id, secret): (&str, &str), resource: &str) -> String {
        let out = Command::new("curl")
            .args(["-s", "-X", "POST", &format!("{}/token", self.issuer)])
            .args(["-d", "grant_type=client_credentials", "-d", "scope=mcp"])
            .args([
                "-d",
                &format!("client_id={id}"),
                "-d",
                &format!("client_secret={secret}"),
            ])
            .args(["-d", &format!("resource={resource}")])
            .output()
            .unwrap();
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_string()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An initialize POSTed with `token` to `url`: (status, the WWW-Authenticate line, body).
fn initialize(url: &str, token: &str) -> (u16, String, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let rest = url.trim_start_matches("http://");
    let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let auth = format!("Bearer {token}");
    let base = format!("http://{address}");
    let headers = [("Authorization", auth.as_str())];
    let (status, head, body) = exchange(&base, "POST", path, &headers, &body.to_string());
    let challenge = (head.lines())
        .find(|l| l.starts_with("www-authenticate:"))
        .unwrap_or_default()
        .to_string();
    (status, challenge, body)
}

/// `mcplock gateway subject`: the OAuth client `subject` made agent `agent`, granted `server`.
fn make_agent(d: &Path, agent: &str, subject: &str, server: &str) {
    let args = [
        "gateway",
        "subject",
        "--agents",
        "agents.json",
        "--agent",
        agent,
    ];
    let args = [&args[..], &["--subject", subject, "--grant", server]].concat();
    run_in(d, &args, Duration::from_secs(30)).expect_success();
}

/// Every file under `dir`, read as text.
fn every_file(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.push_str(&every_file(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

#[test]
fn the_gateway_takes_an_issuers_access_tokens_for_its_agents_and_never_passes_them_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = AuthServer::start(&[
        ("ci", "ci-secret", 300),
        ("intern", "intern-secret", 300),
        ("brief", "brief-secret", 3),
    ]);
    let other = AuthServer::start(&[("ci", "ci-secret", 300)]);
    // The upstream: a remote server that logs every request's Authorization header.
    let log = d.join("upstream.jsonl");
    let upstream = crate::common::remote::hostile_http_logged("tools", &log);
    run_in(
        d,
        &["lock", "--name", "remote", "--url", &upstream.url("/mcp")],
        Duration::from_secs(60),
    )
    .expect_success();
    std::fs::remove_file(&log).ok();
    for (agent, subject) in [("ci-bot", "ci"), ("brief-bot", "brief")] {
        make_agent(d, agent, subject, "remote");
    }
    let flags = [
        "--allow-unsigned",
        "--oauth-issuer",
        &issuer.issuer,
        "--oauth-audience",
        AUDIENCE,
        "--oauth-scope",
        "mcp",
        "--oauth-leeway",
        "0",
        "--audit",
        "audit.jsonl",
    ];
    let gw = gateway(d, &flags);
    let url = format!("{}/servers/remote/mcp", gw.url);

    // A valid token for this gateway: the real client lists and calls as agent ci-bot.
    let valid = issuer.token(("ci", "ci-secret"), AUDIENCE);
    let out = client(&url, &valid, json!([["tool_00000", {}]]));
    assert_eq!(out["calls"][0]["text"], json!(["tool_00000 done"]), "{out}");

    // Refused, each with the challenge that points to the resource metadata.
    // A token taken while valid (and remembered as verified) is refused once it expires.
    let expiring = issuer.token(("brief", "brief-secret"), AUDIENCE);
    let (status, _, body) = initialize(&url, &expiring);
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(4_500));
    let cases = [
        ("expired", expiring.clone(), "ExpiredSignature"),
        (
            "another audience",
            issuer.token(("ci", "ci-secret"), "https://other.example/mcp"),
            "InvalidAudience",
        ),
        (
            "another issuer",
            other.token(("ci", "ci-secret"), AUDIENCE),
            "InvalidIssuer",
        ),
        (
            "not a JWT",
            "mcpl_not-a-token".to_string(),
            "not one of this gateway's",
        ),
    ];
    for (what, token, says) in &cases {
        let (status, challenge, body) = initialize(&url, token);
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains(says), "{what}: {body}");
        assert!(
            challenge.contains(
                "resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\""
            ),
            "{what}: {challenge}"
        );
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
        if !token.starts_with("mcpl_") {
            // The refusal says where a good token comes from.
            let from = format!("get one for {AUDIENCE} from {}", issuer.issuer);
            assert!(body.contains(&from), "{what}: {body}");
        }
    }
    // A valid token whose client is no agent: forbidden, naming the command.
    let intern = issuer.token(("intern", "intern-secret"), AUDIENCE);
    let (status, _, body) = initialize(&url, &intern);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("mcplock gateway subject"), "{body}");

    // The metadata that tells a client where to get a token.
    let prm = Command::new("curl")
        .args([
            "-s",
            &format!("{}/.well-known/oauth-protected-resource/mcp", gw.url),
        ])
        .output()
        .unwrap();
    let prm: Value = serde_json::from_slice(&prm.stdout).unwrap();
    assert_eq!(prm["resource"], AUDIENCE);
    assert_eq!(prm["authorization_servers"], json!([issuer.issuer]));

    // No token went upstream, and none is in any file or line the gateway wrote.
    let upstream_log = std::fs::read_to_string(&log).unwrap();
    assert!(upstream_log.contains("tools/call"), "{upstream_log}");
    for line in upstream_log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        assert!(
            entry["headers"].get("authorization").is_none(),
            "a token went upstream: {line}"
        );
    }
    let written = every_file(d) + &gw.said();
    for token in [&valid, &expiring, &intern] {
        assert!(!written.contains(token.as_str()), "a token was written");
    }
}

#[test]
fn a_server_protected_by_the_sdks_auth_is_locked_and_served_with_the_gateways_own_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = AuthServer::start(&[("gateway", "gw-secret", 300), ("ci", "ci-secret", 300)]);
    let protected = crate::common::remote::python_protected(&issuer.issuer);
    let url = protected.url("/mcp");
    // Without a token: refused, and the refusal shows where a token comes from.
    let lock = ["lock", "--name", "catalog", "--url", &url];
    let refused = run_in(d, &lock, Duration::from_secs(60));
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("401 Unauthorized") && refused.stderr.contains("resource_metadata"),
        "{}",
        refused.stderr
    );
    // The gateway's own client gets a token for the server (client credentials, RFC 8707) and
    // locks it with that token from the environment.
    let own = issuer.token(("gateway", "gw-secret"), &url);
    let env = [("UPSTREAM_TOKEN", own.as_str())];
    let lock = [&lock[..], &["--bearer-env", "UPSTREAM_TOKEN"]].concat();
    crate::common::run_in_env(d, &lock, &env, Duration::from_secs(60)).expect_success();
    make_agent(d, "ci-bot", "ci", "catalog");
    let flags = [
        "--allow-unsigned",
        "--oauth-issuer",
        &issuer.issuer,
        "--oauth-audience",
        AUDIENCE,
        "--upstream-header",
        "catalog=Authorization: Bearer ${UPSTREAM_TOKEN}",
    ];
    let gw = gateway_env(d, &flags, &env);
    // The agent comes with its own token, for the gateway; the server gets the gateway's.
    let agent = issuer.token(("ci", "ci-secret"), AUDIENCE);
    let out = client(
        &format!("{}/servers/catalog/mcp", gw.url),
        &agent,
        json!([["lookup", {"term": "x"}]]),
    );
    assert_eq!(out["calls"][0]["text"], json!(["x: found"]), "{out}");
    // The agent's token is for the gateway only: the server itself refuses it.
    let (status, _, _) = initialize(&url, &agent);
    assert_eq!(status, 401);
    let written = every_file(d) + &gw.said();
    assert!(
        !written.contains(&own) && !written.contains(&agent),
        "a token was written"
    );
}
