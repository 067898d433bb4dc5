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
        AuthServer::with(&json!({"clients": clients}))
    }

    /// With the whole configuration `oauth_server.mjs` takes.
    fn with(config: &Value) -> AuthServer {
        let mut child = Command::new("node")
            .arg(real_component("node/oauth_server.mjs"))
            .arg(config.to_string())
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

/// A machine client and its secret, registered with every authorization server of these tests.
const BOT: (&str, &str) = ("ci-bot", "bot-s3cret-value-4711");

fn bot_env() -> [(&'static str, &'static str); 1] {
    [("BOT_SECRET", BOT.1)]
}

/// `mcplock ARGS --url URL` by client credentials as [`BOT`].
fn as_bot(d: &Path, args: &[&str], url: &str) -> crate::common::Run {
    let args = [
        args,
        &[
            "--url",
            url,
            "--oauth-client-id",
            BOT.0,
            "--oauth-client-secret-env",
            "BOT_SECRET",
        ],
    ]
    .concat();
    crate::common::run_in_env(d, &args, &bot_env(), Duration::from_secs(60))
}

/// Runs `mcplock ARGS` that logs a person in: the URL it prints is opened by `browser.py`
/// (which logs in as `login` on the authorization server's own pages); what mcplock printed
/// (stdout, stderr) and its exit code.
fn with_browser_login(d: &Path, args: &[&str], login: &str) -> (i32, String, String) {
    let mut child = Command::new(crate::common::mcplock_bin())
        .current_dir(d)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("mcplock printed no URL to log in at: {said}");
        };
        said.push_str(&line);
        said.push('\n');
        if let Some(url) = line.trim().strip_prefix("http://") {
            break format!("http://{url}");
        }
    };
    // Something else on this machine answers the redirect first, with a forged state: refused,
    // and the person's login goes on.
    let redirect = reqwest::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let base = redirect.trim_end_matches("/callback");
    let (status, _, _) = exchange(base, "GET", "/callback?code=forged&state=forged", &[], "");
    assert_eq!(status, 400);
    let browser = Command::new(real_component("python/.venv/bin/python"))
        .args([&real_component("python/browser.py"), &url, login])
        .output()
        .unwrap();
    assert!(
        browser.status.success(),
        "the browser's login failed: {}{}",
        String::from_utf8_lossy(&browser.stdout),
        String::from_utf8_lossy(&browser.stderr)
    );
    for line in lines.map_while(Result::ok) {
        said.push_str(&line);
        said.push('\n');
    }
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), out.join().unwrap(), said)
}

#[test]
fn a_server_behind_oauth_is_locked_by_a_machine_and_checked_by_a_persons_browser_login() {
    let port = crate::common::infra::free_port();
    let auth = AuthServer::with(&json!({"clients": [
        {"id": BOT.0, "secret": BOT.1, "ttl": 300},
        {"id": "mcplock-cli", "redirect": format!("http://127.0.0.1:{port}/callback")},
    ]}));
    let server = crate::common::remote::python_protected(&auth.issuer);
    let url = server.url("/mcp");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Without credentials, the refusal names what to pass.
    let refused = run_in(d, &["scan", "--url", &url], Duration::from_secs(60));
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("--oauth-client-id"),
        "{}",
        refused.stderr
    );

    let machine = as_bot(d, &["lock", "--name", "catalog"], &url);
    machine.expect_success();
    let lock: Value =
        serde_json::from_slice(&std::fs::read(d.join("mcp-lock.json")).unwrap()).unwrap();
    assert_eq!(lock["lockfileVersion"], 6);
    let entry = &lock["servers"]["catalog"];
    assert_eq!(
        entry["authorization"],
        json!({
            "authorizationServers": [auth.issuer],
            "issuer": auth.issuer,
            "resource": url,
            "scopesSupported": ["mcp"],
        })
    );
    assert!(entry["tools"]["lookup"].is_object(), "{entry}");

    // A person checks what the machine locked, logging in in a browser (PKCE, loopback).
    let port = port.to_string();
    let (code, out, said) = with_browser_login(
        d,
        &[
            "lock",
            "--check",
            "--name",
            "catalog",
            "--url",
            &url,
            "--oauth-client-id",
            "mcplock-cli",
            "--oauth-redirect-port",
            &port,
            "--oauth-scope",
            "openid",
            "--oauth-scope",
            "mcp",
        ],
        "alice",
    );
    assert_eq!(code, 0, "{out}{said}");
    assert!(said.contains("open this URL in a browser"), "{said}");

    // No token and no secret in any file or anything printed.
    let everything = format!(
        "{}{}{}{}{out}{said}",
        every_file(d),
        machine.stdout,
        machine.stderr,
        refused.stderr
    );
    assert!(!everything.contains("eyJ"), "a JWT was written or printed");
    assert!(
        !everything.contains(BOT.1),
        "the client secret was written or printed"
    );
}

#[test]
fn an_authorization_server_swapped_behind_the_same_url_is_critical_drift_and_is_asked_for_nothing()
{
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut swap = Swap::locked(d, 300);
    // The team signs what it approved; the proxy enforces only a lock that verifies.
    run_in(d, &["keygen"], Duration::from_secs(30)).expect_success();
    run_in(
        d,
        &["sign", "--key", "mcplock.key"],
        Duration::from_secs(30),
    )
    .expect_success();
    let (honest, swapped, url) = (
        swap.honest.issuer.clone(),
        swap.other.issuer.clone(),
        swap.url(),
    );

    // Through the proxy, a host reaches the server by the bot's OAuth token and calls a tool.
    let host = proxied(
        d,
        &url,
        &[
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"lookup","arguments":{"term":"tea"}}}"#,
        ],
    );
    assert!(host.0.contains("tea: found"), "{host:?}");

    // The same URL, now naming another authorization server.
    swap.swap();
    let diff = as_bot(d, &["diff", "--name", "catalog"], &url);
    assert_eq!(diff.code, 1, "{}{}", diff.stdout, diff.stderr);
    assert!(diff.stderr.contains("critical drift"), "{}", diff.stderr);
    assert!(
        diff.stderr.contains(&honest) && diff.stderr.contains(&swapped),
        "{}",
        diff.stderr
    );
    // Relaunched from the lock (`lock --check` with no server given): the same drift.
    let args = [
        "lock",
        "--check",
        "--oauth-client-id",
        BOT.0,
        "--oauth-client-secret-env",
        "BOT_SECRET",
    ];
    let relaunched = crate::common::run_in_env(d, &args, &bot_env(), Duration::from_secs(60));
    assert_eq!(
        relaunched.code, 1,
        "{}{}",
        relaunched.stdout, relaunched.stderr
    );
    assert!(
        relaunched.stderr.contains("critical drift"),
        "{}",
        relaunched.stderr
    );
    let (answers, said) = proxied(d, &url, &[]);
    assert!(said.contains("not the one locked"), "{answers}{said}");
    assert!(!answers.contains("\"result\""), "{answers}");
    // Locking it again without --update: the same drift, nothing written.
    let before = std::fs::read(d.join("mcp-lock.json")).unwrap();
    let again = as_bot(d, &["lock", "--name", "catalog"], &url);
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("critical drift"), "{}", again.stderr);
    assert_eq!(std::fs::read(d.join("mcp-lock.json")).unwrap(), before);
    // Nothing, not even its metadata, was asked of the swapped authorization server.
    let asked = swap.asked_of_other();
    assert!(asked.is_empty(), "the swapped server was asked: {asked}");
    // Accepted on purpose, the lock records the other issuer; its signature no longer holds,
    // and the proxy says how to sign it again; signed again, the host is served.
    let accepted = as_bot(d, &["lock", "--name", "catalog", "--update"], &url);
    accepted.expect_success();
    let lock: Value =
        serde_json::from_slice(&std::fs::read(d.join("mcp-lock.json")).unwrap()).unwrap();
    assert_eq!(
        lock["servers"]["catalog"]["authorization"]["issuer"],
        swapped.as_str()
    );
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"lookup","arguments":{"term":"tea"}}}"#;
    let (answers, said) = proxied(d, &url, &[call]);
    assert!(!answers.contains("tea: found"), "{answers}");
    assert!(said.contains("mcplock sign"), "{}{said}", accepted.stderr);
    run_in(
        d,
        &["sign", "--key", "mcplock.key"],
        Duration::from_secs(30),
    )
    .expect_success();
    let (answers, said) = proxied(d, &url, &[call]);
    assert!(answers.contains("tea: found"), "{answers}{said}");
}

/// The protected server on a port of its own trusting `honest`, locked in `dir` as `catalog`
/// by [`BOT`] (tokens living `ttl` seconds); [`Swap::swap`] starts it again on the same port
/// trusting `other`, which logs every request it gets.
struct Swap {
    honest: AuthServer,
    other: AuthServer,
    other_log: std::path::PathBuf,
    server: Option<crate::common::remote::HttpServerProcess>,
    port: u16,
}

impl Swap {
    fn locked(dir: &Path, ttl: u64) -> Swap {
        let bot = json!({"id": BOT.0, "secret": BOT.1, "ttl": ttl});
        let other_log = dir.join("swapped-requests.log");
        let mut swap = Swap {
            honest: AuthServer::with(&json!({"clients": [bot]})),
            other: AuthServer::with(&json!({"clients": [bot], "log": other_log})),
            other_log,
            server: None,
            port: crate::common::infra::free_port(),
        };
        swap.server = Some(crate::common::remote::python_protected_at(
            &swap.honest.issuer,
            swap.port,
        ));
        as_bot(dir, &["lock", "--name", "catalog"], &swap.url()).expect_success();
        swap
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn swap(&mut self) {
        drop(self.server.take());
        self.server = Some(crate::common::remote::python_protected_at(
            &self.other.issuer,
            self.port,
        ));
    }

    /// What the other authorization server was asked, a line each.
    fn asked_of_other(&self) -> String {
        std::fs::read_to_string(&self.other_log).unwrap_or_default()
    }
}

/// A host's session through `mcplock proxy --url URL` by the bot's OAuth: initialize, then
/// `requests`; what the host read and what the proxy said.
fn proxied(d: &Path, url: &str, requests: &[&str]) -> (String, String) {
    proxied_with(d, url, &["--key", "mcplock.pub"], requests)
}

fn proxied_with(d: &Path, url: &str, extra: &[&str], requests: &[&str]) -> (String, String) {
    use std::io::Write;
    let mut child = Command::new(crate::common::mcplock_bin())
        .current_dir(d)
        .envs(bot_env())
        .args(["proxy", "--url", url])
        .args(extra)
        .args([
            "--oauth-client-id",
            BOT.0,
            "--oauth-client-secret-env",
            "BOT_SECRET",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut answers = String::new();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#).unwrap();
    if let Some(Ok(line)) = lines.next() {
        answers.push_str(&line);
        if line.contains("\"result\"") {
            writeln!(
                stdin,
                r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
            )
            .unwrap();
            writeln!(stdin, r#"{{"jsonrpc":"2.0","id":9,"method":"tools/list"}}"#).unwrap();
            // A tool is called once it was listed; the call (id 2) is answered last.
            let mut wait_for = |id: &str| {
                for line in lines.by_ref().map_while(Result::ok) {
                    answers.push_str(&line);
                    if line.contains(id) {
                        break;
                    }
                }
            };
            wait_for("\"id\":9");
            for request in requests {
                writeln!(stdin, "{request}").unwrap();
            }
            if !requests.is_empty() {
                wait_for("\"id\":2");
            }
        }
    }
    drop(stdin);
    let _ = child.wait();
    let said = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
    (answers, said)
}

#[test]
fn a_server_offering_an_admin_credential_more_is_locked_per_context_and_the_difference_shown() {
    let admin = ("ops-admin", "admin-s3cret-value-0815");
    let auth = AuthServer::with(&json!({
        "clients": [
            {"id": BOT.0, "secret": BOT.1, "ttl": 300},
            {"id": admin.0, "secret": admin.1, "ttl": 300},
        ],
        "scopes": ["admin"],
    }));
    let server = crate::common::remote::python_protected(&auth.issuer);
    let url = server.url("/mcp");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    as_bot(d, &["lock", "--context", "user"], &url).expect_success();
    let as_admin = [
        "lock",
        "--context",
        "admin",
        "--url",
        &url,
        "--oauth-client-id",
        admin.0,
        "--oauth-client-secret-env",
        "ADMIN_SECRET",
        "--oauth-scope",
        "mcp",
        "--oauth-scope",
        "admin",
    ];
    let env = [("ADMIN_SECRET", admin.1)];
    crate::common::run_in_env(d, &as_admin, &env, Duration::from_secs(60)).expect_success();

    let lock: Value =
        serde_json::from_slice(&std::fs::read(d.join("mcp-lock.json")).unwrap()).unwrap();
    let tools = |name: &str| -> Vec<String> {
        let entry = &lock["servers"][name];
        assert_eq!(entry["launch"]["url"], url.as_str(), "{lock}");
        entry["tools"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(tools("mcplock-protected-peer.user"), ["lookup"]);
    assert_eq!(
        tools("mcplock-protected-peer.admin"),
        ["lookup", "purge_catalog"]
    );
    assert_eq!(
        lock["servers"]["mcplock-protected-peer.admin"]["launch"]["context"],
        "admin"
    );
    // Version 6, with its authorization surfaces and contexts, is what the schema documents.
    assert_eq!(lock["lockfileVersion"], 6);
    crate::common::assert_valid_against(
        &crate::common::repo().join("docs/lockfile.schema.json"),
        &d.join("mcp-lock.json"),
        None,
    );

    // Signed and verified like any lockfile (the verifier's streaming reader knows version 6).
    run_in(d, &["keygen"], Duration::from_secs(30)).expect_success();
    run_in(
        d,
        &["sign", "--key", "mcplock.key"],
        Duration::from_secs(30),
    )
    .expect_success();
    run_in(
        d,
        &["verify", "--key", "mcplock.pub"],
        Duration::from_secs(30),
    )
    .expect_success();

    // What the admin credential is offered that the user's is not, from the lockfile alone.
    let args = [
        "diff",
        "--between",
        "user",
        "admin",
        "--format",
        "json",
        "--fail-on",
        "never",
    ];
    let between = run_in(d, &args, Duration::from_secs(30));
    between.expect_success();
    let report: Value = serde_json::from_str(&between.stdout).unwrap();
    let changes: Vec<(String, String)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let what = c["item"]
                .as_str()
                .unwrap_or(c["path"].as_str().unwrap_or_default());
            (c["class"].as_str().unwrap().to_string(), what.to_string())
        })
        .collect();
    assert_eq!(
        changes,
        [("item-added".to_string(), "purge_catalog".to_string())],
        "{report}"
    );

    // A policy reads the context and the surface: the identity provider pinned, and the admin
    // context's extra tool named.
    let policy = format!(
        "name: idp\nrules:\n  - id: our-idp\n    expr: mcp.server.authorization.issuer == '{}'\n    message: tokens come from our identity provider\n    severity: error\n  - id: no-purge-for-users\n    on: tool\n    expr: mcp.server.launch.context == 'admin' || mcp.tool.name != 'purge_catalog'\n    message: only the admin context may offer purge_catalog\n    severity: error\n",
        auth.issuer
    );
    std::fs::write(d.join("idp.yaml"), policy).unwrap();
    let checked = run_in(
        d,
        &["policy", "check", "--policy", "idp.yaml"],
        Duration::from_secs(30),
    );
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    let other = std::fs::read_to_string(d.join("idp.yaml"))
        .unwrap()
        .replace(&auth.issuer, "https://login.example.com");
    std::fs::write(d.join("idp.yaml"), other).unwrap();
    let checked = run_in(
        d,
        &["policy", "check", "--policy", "idp.yaml"],
        Duration::from_secs(30),
    );
    assert_eq!(checked.code, 1, "{}{}", checked.stdout, checked.stderr);
    assert!(checked.stdout.contains("our-idp"), "{}", checked.stdout);

    // A live diff picks the entry of the context it runs under: the user's is unchanged.
    let live = as_bot(d, &["diff", "--context", "user"], &url);
    assert_eq!(live.code, 0, "{}{}", live.stdout, live.stderr);

    // The proxy picks the entry of the context it runs under; without one, it says which.
    let (answers, said) = proxied_as(d, &url, &["--context", "user"]);
    assert!(
        answers.contains("lookup") && !answers.contains("purge_catalog"),
        "{answers}{said}"
    );
    let (answers, said) = proxied_as(d, &url, &[]);
    assert!(!answers.contains("\"result\""), "{answers}");
    assert!(said.contains("--context"), "{said}");
}

/// [`proxied`] with `extra` flags, listing only.
fn proxied_as(d: &Path, url: &str, extra: &[&str]) -> (String, String) {
    proxied_with(d, url, &[&["--allow-unsigned"], extra].concat(), &[])
}

#[test]
fn the_gateway_reaches_a_server_locked_through_oauth_with_its_own_client_and_the_locked_surface() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Tokens that live 2 s: the second session's token has expired and is renewed.
    let mut swap = Swap::locked(d, 2);
    let token = token(d, "ci", &["catalog"]);

    // Without the gateway's own client the server is not served, and the log says what to give.
    let gw = gateway_env(d, &["--allow-unsigned"], &[]);
    let mcp = format!("{}/servers/catalog/mcp", gw.url);
    let refused = client(&mcp, &token, json!([])).to_string();
    assert!(refused.contains("locked through OAuth"), "{refused}");
    assert!(
        gw.said()
            .contains("--upstream-oauth 'catalog=CLIENT_ID:SECRET_VAR'"),
        "{}",
        gw.said()
    );
    drop(gw);

    let flags = [
        "--allow-unsigned",
        "--upstream-oauth",
        "catalog=ci-bot:BOT_SECRET",
    ];
    let gw = gateway_env(d, &flags, &bot_env());
    let mcp = format!("{}/servers/catalog/mcp", gw.url);
    for term in ["x", "y"] {
        let out = client(&mcp, &token, json!([["lookup", {"term": term}]]));
        assert_eq!(
            out["calls"][0]["text"],
            json!([format!("{term}: found")]),
            "{out}"
        );
        std::thread::sleep(Duration::from_secs(3));
    }
    // The server swapped for one trusting another authorization server while the gateway
    // runs: the next renewal meets the other surface, and nothing is asked of it.
    swap.swap();
    let out = client(&mcp, &token, json!([["lookup", {"term": "z"}]])).to_string();
    assert!(!out.contains("z: found"), "{out}");
    assert!(
        gw.said().contains("not the one locked") || out.contains("not the one locked"),
        "{out}\n{}",
        gw.said()
    );
    // (The server itself fetches the other issuer's keys to check the token it was sent.)
    let asked = swap.asked_of_other();
    assert!(
        !asked.contains("/token") && !asked.contains("/.well-known"),
        "the gateway asked the swapped server: {asked}"
    );
    let written = every_file(d) + &gw.said();
    assert!(!written.contains("eyJ"), "an OAuth token was written");
    assert!(!written.contains(BOT.1), "the client secret was written");
}

#[test]
fn oauth_discovery_reaches_no_forbidden_address_and_no_other_resources_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (mode, says) in [
        ("oauth-metadata-ssrf", "SSRF rules"),
        ("oauth-server-ssrf", "SSRF rules"),
        (
            "oauth-other-resource",
            "describes the resource \"https://other.example/mcp\"",
        ),
        ("oauth-huge-metadata", "larger than 65536 bytes"),
    ] {
        let server = crate::common::remote::hostile_http(mode, &[]);
        let scan = as_bot(d, &["scan"], &server.url("/mcp"));
        assert_eq!(scan.code, 3, "{mode}: {}{}", scan.stdout, scan.stderr);
        assert!(scan.stderr.contains(says), "{mode}: {}", scan.stderr);
        assert!(
            !scan.stderr.contains(BOT.1),
            "{mode}: the secret was printed"
        );
    }
}

#[test]
fn ci_locks_with_a_refresh_token_from_the_environment() {
    let port = crate::common::infra::free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client = json!({"id": "ci-login", "redirect": redirect, "refresh": true});
    let auth = AuthServer::with(&json!({"clients": [client]}));
    let server = crate::common::remote::python_protected(&auth.issuer);
    let url = server.url("/mcp");
    // A person logs in once with their own client and stores the refresh token as a CI secret.
    let got = Command::new(real_component("python/.venv/bin/python"))
        .current_dir(real_component("python"))
        .args([
            "refresh_token.py",
            &auth.issuer,
            "ci-login",
            &redirect,
            &url,
        ])
        .args(["openid offline_access mcp", "alice"])
        .output()
        .unwrap();
    let refresh = String::from_utf8_lossy(&got.stdout).trim().to_string();
    assert!(
        got.status.success() && !refresh.is_empty(),
        "{refresh}{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "lock",
        "--name",
        "catalog",
        "--url",
        &url,
        "--oauth-client-id",
        "ci-login",
        "--oauth-refresh-token-env",
        "CI_REFRESH_TOKEN",
    ];
    let env = [("CI_REFRESH_TOKEN", refresh.as_str())];
    let locked = crate::common::run_in_env(d, &args, &env, Duration::from_secs(60));
    locked.expect_success();
    let lock: Value =
        serde_json::from_slice(&std::fs::read(d.join("mcp-lock.json")).unwrap()).unwrap();
    assert_eq!(
        lock["servers"]["catalog"]["authorization"]["issuer"],
        auth.issuer.as_str()
    );
    let everything = format!("{}{}{}", every_file(d), locked.stdout, locked.stderr);
    assert!(
        !everything.contains(&refresh),
        "the refresh token was written or printed"
    );
    assert!(
        !everything.contains("eyJ"),
        "an access token was written or printed"
    );
}
