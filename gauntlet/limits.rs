//! Rate limits and quotas at run time: one gateway counting in its own memory, and two
//! replicas behind a real HAProxy sharing one budget per agent in a real Redis, with the
//! official Python SDK client as the agent.

use crate::common::gw::*;
use crate::common::infra::{HaProxy, Redis};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// The Python SDK server locked as `py` in `d`, and a policy of `limits` (YAML flow maps) that
/// also puts read_file in tier 1.
fn locked_with_limits(d: &Path, limits: &[&str]) {
    lock_as(d, "py", &[], &crate::common::python_server());
    let list: String = limits.iter().map(|l| format!("  - {l}\n")).collect();
    let tiers = "tiers:\n  tools:\n    py/read_file: tier_1_internal_read\n";
    let policy = format!("name: budgets\n{tiers}limits:\n{list}");
    std::fs::write(d.join("limits.yaml"), policy).unwrap();
}

fn read(host: &mut PyHost) -> Value {
    host.call("read_file", json!({"path": "notes.txt"}))
}

fn admitted(answer: &Value) -> bool {
    answer["text"][0] == "notes.txt:4096"
}

/// The refusal's words, asserting it is one.
fn refused(answer: &Value) -> String {
    let error = answer["error"].as_str().unwrap_or_default().to_string();
    assert!(
        !error.is_empty() && !admitted(answer),
        "not refused: {answer}"
    );
    error
}

#[test]
fn an_agent_past_its_budget_is_refused_with_the_limit_and_the_retry_time_and_another_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    locked_with_limits(d, &["{agent: alpha, calls: 3, per: 1m}"]);
    let alpha = token(d, "alpha", &["py"]);
    let beta = token(d, "beta", &["py"]);
    let flags = [
        "--allow-unsigned",
        "--policy",
        "limits.yaml",
        "--audit",
        "audit.jsonl",
    ];
    let gw = gateway(d, &flags);
    let url = format!("{}/servers/py/mcp", gw.url);
    let (mut host, _) = PyHost::connect(&url, &alpha);
    host.step(json!({"list": true}));
    for _ in 0..3 {
        let answer = read(&mut host);
        assert!(admitted(&answer), "{answer}");
    }
    let error = refused(&read(&mut host));
    assert!(
        error.contains("rate-limited: 3 calls per 1m for agent alpha"),
        "{error}"
    );
    assert!(error.contains("retry in"), "{error}");
    // Another agent has its own budget (and none is set for it).
    let (mut other, _) = PyHost::connect(&url, &beta);
    other.step(json!({"list": true}));
    for _ in 0..5 {
        let answer = read(&mut other);
        assert!(admitted(&answer), "{answer}");
    }
    drop((host, other));
    let log = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let limited: Vec<Value> = (log.lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("rate-limited"))
        })
        .collect();
    assert_eq!(limited.len(), 1, "{log}");
    assert_eq!(limited[0]["agent"], "alpha");
    let (_, text) = metrics(&gw.url, Some(&beta));
    let line = r#"mcplock_gateway_decisions_total{server="py",method="tools/call",decision="deny",reason="rate-limited"} 1"#;
    assert!(text.contains(line), "{text}");
}

/// `host:port` of a gateway's URL.
fn address(gw: &Gateway) -> String {
    gw.url.trim_start_matches("http://").to_string()
}

/// Calls of `read_file` from `hosts` at once, `rounds` times: how many were admitted.
fn burst(hosts: &mut [PyHost], rounds: usize) -> usize {
    let mut admitted_calls = 0;
    for _ in 0..rounds {
        for host in hosts.iter_mut() {
            host.send(json!({"call": "read_file", "arguments": {"path": "notes.txt"}}));
        }
        for host in hosts.iter_mut() {
            let answer = host.next();
            if admitted(&answer) {
                admitted_calls += 1;
            } else {
                assert!(refused(&answer).contains("rate-limited"), "{answer}");
            }
        }
    }
    admitted_calls
}

#[test]
fn replicas_behind_haproxy_share_one_budget_per_agent_in_redis_and_refuse_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    locked_with_limits(
        d,
        &[
            "{agent: alpha, calls: 6, per: 1m}",
            "{agent: gamma, calls: 10, per: 1m}",
            "{agent: delta, calls: 100, per: 1m}",
        ],
    );
    let tokens: Vec<String> = ["alpha", "beta", "gamma", "delta"]
        .iter()
        .map(|a| token(d, a, &["py"]))
        .collect();
    let mut redis = Redis::start();
    let store = redis.url();
    let flags = [
        "--allow-unsigned",
        "--policy",
        "limits.yaml",
        "--state",
        &store,
    ];
    let replicas = [gateway(d, &flags), gateway(d, &flags)];
    // A third, told to let tier-1 calls through while the store is down.
    let open = [&flags[..], &["--limits-fail-open", "tier_1_internal_read"]].concat();
    let lenient = gateway(d, &open);
    let lb = HaProxy::round_robin(d, &[address(&replicas[0]), address(&replicas[1])]);
    let url = format!("{}/servers/py/mcp", lb.url());

    // The stateless era: each request may go to either replica. Six calls pass, then none.
    let (mut alpha, connected) = PyHost::connect_in(&url, &tokens[0], "auto");
    assert_eq!(connected["protocol"], "2026-07-28", "{connected}");
    let answers: Vec<Value> = (0..9).map(|_| read(&mut alpha)).collect();
    assert_eq!(
        answers.iter().filter(|a| admitted(a)).count(),
        6,
        "{answers:?}"
    );
    let error = refused(&answers[8]);
    assert!(
        error.contains("6 calls per 1m for agent alpha") && error.contains("retry in"),
        "{error}"
    );
    for replica in &replicas {
        assert!(
            replica.said().contains("session opened"),
            "both replicas served: {}",
            replica.said()
        );
    }
    // Another agent is not touched by alpha's budget.
    let (mut beta, _) = PyHost::connect_in(&url, &tokens[1], "auto");
    assert!((0..4).all(|_| admitted(&read(&mut beta))));

    // Bursts from many sessions at once do not overshoot: exactly ten of 24.
    let mut hosts: Vec<PyHost> = (0..8)
        .map(|_| PyHost::connect_in(&url, &tokens[2], "auto").0)
        .collect();
    assert_eq!(burst(&mut hosts, 3), 10);
    drop(hosts);

    // Redis gone: calls under a limit are refused, on every replica, and the metrics say so.
    let (mut delta, _) = PyHost::connect_in(&url, &tokens[3], "auto");
    assert!(admitted(&read(&mut delta)));
    redis.kill();
    for _ in 0..2 {
        let error = refused(&read(&mut delta));
        assert!(error.contains("limits-unavailable"), "{error}");
    }
    // ... except where the operator chose to let read_file's tier through.
    let (mut lenient_host, _) = PyHost::connect_in(
        &format!("{}/servers/py/mcp", lenient.url),
        &tokens[3],
        "auto",
    );
    assert!(admitted(&read(&mut lenient_host)));
    let said = lenient.said();
    assert!(
        said.contains("refused, except of tier_1_internal_read"),
        "{said}"
    );
    for replica in &replicas {
        let (_, text) = metrics(&replica.url, Some(&tokens[1]));
        assert!(text.contains("mcplock_gateway_limits_store_up 0"), "{text}");
        assert!(
            replica.said().contains("the limits' store does not answer"),
            "{}",
            replica.said()
        );
    }
    // Back: the replicas reconnect on their own and calls pass again.
    let _redis = Redis::start_on(redis.port);
    let what = "calls did not pass again once Redis was back";
    crate::common::eventually(what, Duration::from_secs(20), || {
        let answer = read(&mut delta);
        if admitted(&answer) {
            Ok(())
        } else {
            Err(answer.to_string())
        }
    });
}

#[test]
fn the_stdio_proxy_holds_a_session_to_the_same_limits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The proxy's host is no named agent: a `*` limit is what reaches it.
    locked_with_limits(d, &["{tool: read_file, calls: 2, per: 1h}"]);
    let server = crate::common::python_server();
    let call = json!(["read_file", {"path": "notes.txt"}]);
    let out = std::process::Command::new(crate::common::real_component("python/.venv/bin/python"))
        .current_dir(d)
        .arg(crate::common::real_component("python/proxy_client.py"))
        .arg(json!([call, call, call, ["add", {"a": 1, "b": 2}]]).to_string())
        .args([
            "--",
            crate::common::mcplock_bin(),
            "proxy",
            "--allow-unsigned",
        ])
        .args(["--policy", "limits.yaml", "--"])
        .args(&server)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let calls = report["calls"].as_array().unwrap();
    assert_eq!(calls[0]["text"], json!(["notes.txt:4096"]), "{report}");
    assert_eq!(calls[1]["text"], json!(["notes.txt:4096"]), "{report}");
    let error = calls[2]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("rate-limited: 2 calls per 1h for each agent, any server, tool read_file"),
        "{report}"
    );
    assert!(error.contains("retry in"), "{report}");
    // Another tool is not under that limit.
    assert_eq!(calls[3]["text"], json!(["3.0"]), "{report}");
}

#[test]
fn the_limits_store_is_reached_over_tls_with_a_private_ca_and_a_password_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    locked_with_limits(d, &["{agent: alpha, calls: 2, per: 1m}"]);
    let alpha = token(d, "alpha", &["py"]);
    crate::common::remote::test_ca(d);
    let file = |name: &str| d.join(name).to_string_lossy().into_owned();
    let (cert, key, ca) = (file("server.pem"), file("server.key"), file("ca.pem"));
    let redis = Redis::start_with(&[
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "s3cret-pass",
    ]);
    let store = format!("rediss://127.0.0.1:{}", redis.port);
    let flags = [
        "--allow-unsigned",
        "--policy",
        "limits.yaml",
        "--state",
        &store,
        "--state-cacert",
        &ca,
    ];
    // A password in the URL is refused: it would be on the command line.
    let with_password = format!("rediss://:s3cret-pass@127.0.0.1:{}", redis.port);
    let args = [
        "gateway",
        "--agents",
        "agents.json",
        "--listen",
        "127.0.0.1:0",
        "--allow-unsigned",
        "--policy",
        "limits.yaml",
        "--state",
        &with_password,
    ];
    crate::common::run_in(d, &args, Duration::from_secs(30))
        .expect_failure(2, "MCPLOCK_STATE_PASSWORD");
    // With the password from the environment, over TLS to the private CA's server: counted.
    let gw = gateway_env(d, &flags, &[("MCPLOCK_STATE_PASSWORD", "s3cret-pass")]);
    let url = format!("{}/servers/py/mcp", gw.url);
    let (mut host, _) = PyHost::connect(&url, &alpha);
    host.step(json!({"list": true}));
    assert!(admitted(&read(&mut host)) && admitted(&read(&mut host)));
    assert!(refused(&read(&mut host)).contains("rate-limited"));
    assert!(!gw.said().contains("s3cret-pass"), "{}", gw.said());
    drop((host, gw));
    // A wrong password: the store cannot be used, and calls under a limit are refused.
    let gw = gateway_env(d, &flags, &[("MCPLOCK_STATE_PASSWORD", "wrong-pass")]);
    let (mut host, _) = PyHost::connect(&format!("{}/servers/py/mcp", gw.url), &alpha);
    host.step(json!({"list": true}));
    assert!(refused(&read(&mut host)).contains("limits-unavailable"));
}
