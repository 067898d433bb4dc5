//! A signed lockfile and revocation list published at a URL (served by Express's static
//! middleware, with ETags), read by two gateway replicas: a revocation published once reaches
//! both within the poll interval; an older list published after it (a rollback) is refused and
//! the newer one stays in force, with the alarm raised.

use crate::common::gw::*;
use crate::common::{real_component, run_in};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Express serving `dir` on 127.0.0.1, stopped when dropped.
struct Static {
    child: Child,
    url: String,
}

impl Static {
    fn serve(dir: &Path) -> Static {
        let mut child = Command::new("node")
            .arg(real_component("node/static_server.mjs"))
            .arg(dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let line = lines.next().expect("the static server ended").unwrap();
        let address = line.trim_start_matches("listening on ").to_string();
        Static {
            child,
            url: format!("http://{address}"),
        }
    }
}

impl Drop for Static {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(d: &Path, args: &[&str]) {
    run_in(d, args, Duration::from_secs(60)).expect_success();
}

/// Copies the list at `from` (and its signature) to `to`, as a publisher would upload it.
fn publish(from: &Path, to: &Path) {
    let sig = |p: &Path| p.with_extension("json.sig");
    std::fs::copy(sig(from), sig(to)).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// Calls read_file through `host` until `done` holds for the answer, or panics after 15 s.
fn until(host: &mut PyHost, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    crate::common::eventually(what, Duration::from_secs(15), || {
        let answer = host.call("read_file", json!({"path": "notes.txt"}));
        if done(&answer) {
            Ok(answer)
        } else {
            Err(answer.to_string())
        }
    })
}

fn revoked(answer: &Value) -> bool {
    answer["error"]
        .as_str()
        .is_some_and(|e| e.contains("revoked"))
}

#[test]
fn replicas_converge_on_a_published_revocation_and_refuse_a_published_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let www = d.join("www");
    std::fs::create_dir(&www).unwrap();
    lock_as(d, "py", &[], &crate::common::python_server());
    run(
        d,
        &["keygen", "--private", "team.key", "--public", "team.pub"],
    );
    run(d, &["sign", "--key", "team.key"]);
    std::fs::copy(d.join("mcp-lock.json"), www.join("mcp-lock.json")).unwrap();
    std::fs::copy(d.join("mcp-lock.json.sig"), www.join("mcp-lock.json.sig")).unwrap();
    // The first list (sequence 1) revokes delete_file; kept aside to be replayed later.
    let list = "revocations.json";
    let revoke = |tool: &str| {
        let args = [
            "revoke", "--server", "py", "--tool", tool, "--reason", "r", "--list", list,
        ];
        run(d, &[&args[..], &["--key", "team.key"]].concat());
    };
    revoke("delete_file");
    std::fs::copy(d.join(list), d.join("first.json")).unwrap();
    std::fs::copy(d.join("revocations.json.sig"), d.join("first.json.sig")).unwrap();
    publish(&d.join(list), &www.join(list));
    let site = Static::serve(&www);

    let agent = token(d, "agent", &["py"]);
    let replicas: Vec<Gateway> = ["a", "b"]
        .iter()
        .map(|name| {
            let state = d
                .join(format!("state-{name}"))
                .to_string_lossy()
                .into_owned();
            let flags = [
                "--lockfile",
                &format!("{}/mcp-lock.json", site.url),
                "--key",
                "team.pub",
                "--revocations",
                &format!("{}/{list}", site.url),
                "--state-dir",
                &state,
                "--published-poll",
                "0.5",
            ];
            gateway(d, &flags)
        })
        .collect();
    let mut hosts: Vec<PyHost> = (replicas.iter())
        .map(|gw| PyHost::connect(&format!("{}/servers/py/mcp", gw.url), &agent).0)
        .collect();
    for host in &mut hosts {
        let listed = host.step(json!({"list": true}));
        let tools = listed["tools"].as_array().cloned().unwrap_or_default();
        assert!(
            tools.contains(&json!("read_file")) && !tools.contains(&json!("delete_file")),
            "{listed}"
        );
        assert_eq!(
            host.call("read_file", json!({"path": "notes.txt"}))["text"][0],
            "notes.txt:4096"
        );
    }

    // A second list (sequence 2) also revokes read_file: published once, both replicas deny it.
    revoke("read_file");
    publish(&d.join(list), &www.join(list));
    for host in &mut hosts {
        until(
            host,
            "the published revocation reached the replica",
            revoked,
        );
    }

    // The first list published again (a rollback): refused; read_file stays revoked, and the
    // replicas raise the alarm.
    publish(&d.join("first.json"), &www.join(list));
    for (host, gw) in hosts.iter_mut().zip(&replicas) {
        crate::common::eventually("no alarm", Duration::from_secs(15), || {
            let (_, text) = metrics(&gw.url, Some(&agent));
            let stale = r#"mcplock_gateway_published_stale{source="revocations"} 1"#;
            if text.contains(stale) {
                Ok(())
            } else {
                Err(text)
            }
        });
        assert!(gw.said().contains("is not taken"), "{}", gw.said());
        assert!(gw.said().contains("older"), "{}", gw.said());
        assert!(
            gw.said()
                .contains("mcplock revoke --list FILE --key PRIVATE"),
            "{}",
            gw.said()
        );
        assert!(revoked(
            &host.call("read_file", json!({"path": "notes.txt"}))
        ));
    }
}
