//! Running the gateway in a test, and the real clients that meet it: the official Python
//! SDK's Streamable HTTP client driven step by step, and the TypeScript SDK's client.

use super::{everything_server, mcplock_bin, real_component, run_in};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running gateway, stopped when dropped.
pub struct Gateway {
    pub child: Child,
    pub url: String,
    /// What it said on stderr so far.
    pub said: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Gateway {
    /// Sends SIGTERM and waits for it to drain and exit; its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        self.child.wait().unwrap()
    }

    pub fn said(&self) -> String {
        self.said.lock().unwrap().join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the gateway on a free loopback port with `flags`; its address is read from its
/// stderr.
pub fn gateway(dir: &Path, flags: &[&str]) -> Gateway {
    gateway_env(dir, flags, &[])
}

/// The same, with `env` added to its environment.
pub fn gateway_env(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Gateway {
    let mut child = Command::new(mcplock_bin())
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(["gateway", "--agents", "agents.json"])
        .args(["--listen", "127.0.0.1:0"])
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = loop {
        let line = lines
            .next()
            .expect("the gateway ended before listening")
            .unwrap();
        said.lock().unwrap().push(line.clone());
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    let keep = std::sync::Arc::clone(&said);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            keep.lock().unwrap().push(line);
        }
    });
    Gateway { child, url, said }
}

/// The official Python SDK's Streamable HTTP client, one live session driven step by step.
pub struct PyHost {
    child: Child,
    input: Option<std::process::ChildStdin>,
    output: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl PyHost {
    /// Connects as the holder of `token`; the connect answer (`connected` or `connectError`).
    pub fn connect(url: &str, token: &str) -> (PyHost, Value) {
        PyHost::connect_in(url, token, "legacy")
    }

    /// The same, negotiating in `mode` (`legacy`, or `auto`: the SDK's own probe).
    pub fn connect_in(url: &str, token: &str, mode: &str) -> (PyHost, Value) {
        let mut child = Command::new(real_component("python/.venv/bin/python"))
            .arg(real_component("python/gateway_client.py"))
            .args([url, token, mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = child.stdin.take();
        let output = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut host = PyHost {
            child,
            input,
            output,
        };
        let connected = host.next();
        (host, connected)
    }

    pub fn next(&mut self) -> Value {
        let line = self
            .output
            .next()
            .expect("the Python client ended")
            .unwrap();
        serde_json::from_str(&line).unwrap()
    }

    pub fn step(&mut self, step: Value) -> Value {
        self.send(step);
        self.next()
    }

    /// Sends a step without waiting for its answer (read it with `next`).
    pub fn send(&mut self, step: Value) {
        use std::io::Write;
        writeln!(self.input.as_mut().unwrap(), "{step}").unwrap();
    }

    pub fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.step(json!({"call": tool, "arguments": arguments}))
    }
}

impl Drop for PyHost {
    /// Ends the session as a host does (its stdin closed: the client DELETEs its session and
    /// exits), then makes sure the process is gone.
    fn drop(&mut self) {
        self.input.take();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mcplock lock --name NAME FLAGS -- SERVER...` in `d`.
pub fn lock_as(d: &Path, name: &str, flags: &[&str], server: &[String]) {
    let mut lock = vec!["lock", "--name", name];
    lock.extend_from_slice(flags);
    lock.push("--");
    lock.extend(server.iter().map(String::as_str));
    run_in(d, &lock, Duration::from_secs(120)).expect_success();
}

/// Locks our fixture as `name` in `d`, run with the flags `before` (through a flags file), then
/// rewrites that file to `after`: the same locked command line now runs another server, as a
/// rug pull behind an approved command would.
pub fn fixture_locked_then_changed(d: &Path, name: &str, before: &str, after: &str) {
    let flags = d.join("flags");
    std::fs::write(&flags, before).unwrap();
    let flags_text = flags.to_string_lossy().into_owned();
    lock_as(d, name, &[], &fixture(&["--flags-file", &flags_text]));
    std::fs::write(&flags, after).unwrap();
}

/// Our fixture with `flags`, as a command line.
pub fn fixture(flags: &[&str]) -> Vec<String> {
    let mut argv = vec![super::fixture_bin().to_string()];
    argv.extend(flags.iter().map(|f| f.to_string()));
    argv
}

/// Locks server-everything as `everything` in `d`, signed with a new team key.
pub fn signed_everything(d: &Path) {
    let server = everything_server();
    lock_as(d, "everything", &[], &server);
    let keygen = ["keygen", "--private", "team.key", "--public", "team.pub"];
    run_in(d, &keygen, Duration::from_secs(30)).expect_success();
    run_in(d, &["sign", "--key", "team.key"], Duration::from_secs(30)).expect_success();
}

/// `GET /metrics` with `token` (none: no header): (status, body).
pub fn metrics(base: &str, token: Option<&str>) -> (u16, String) {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-w", "\n%{http_code}", &format!("{base}/metrics")]);
    if let Some(token) = token {
        curl.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = curl.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_string())
}

pub fn token(dir: &Path, agent: &str, grants: &[&str]) -> String {
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

pub fn client(url: &str, token: &str, calls: Value) -> Value {
    client_trusting(url, token, calls, None)
}

/// The TypeScript client, trusting the CA at `ca` besides the system's.
pub fn client_trusting(url: &str, token: &str, calls: Value, ca: Option<&Path>) -> Value {
    let mut node = Command::new("node");
    if let Some(ca) = ca {
        node.env("NODE_EXTRA_CA_CERTS", ca);
    }
    let out = node
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

/// One HTTP/1.1 exchange on a fresh connection: (status, headers lowercased, body).
pub fn exchange(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}
