//! Real MCP servers over HTTP for the tests: started on 127.0.0.1 only, on a port of their own,
//! and killed when the test drops them.

use super::real_component;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START: Duration = Duration::from_secs(30);

/// A server process listening on 127.0.0.1; killed on drop.
pub struct HttpServerProcess {
    child: Child,
    pub port: u16,
}

impl HttpServerProcess {
    /// The endpoint at `path` (e.g. `/mcp`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The official "everything" server in an HTTP mode (`streamableHttp` or `sse`), made to listen
/// on 127.0.0.1 by `loopback.cjs`, on a port the OS chose.
pub fn everything_http(mode: &str) -> HttpServerProcess {
    let mut child = Command::new("node")
        .current_dir(real_component("node"))
        .args([
            "--require",
            "./loopback.cjs",
            &real_component(
                "node/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
            ),
            mode,
        ])
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(port) = line.strip_prefix("mcplock-test: listening on 127.0.0.1:")
            {
                let _ = tx.send(port.trim().parse::<u16>().ok());
                sent = true;
            }
        }
    });
    let port = rx
        .recv_timeout(START)
        .ok()
        .flatten()
        .expect("the everything server reports its port within 30 s");
    HttpServerProcess { child, port }
}

/// The Python SDK peer (`pinned_server.py`) over `transport` (`streamable-http` or `sse`).
pub fn python_http(transport: &str) -> HttpServerProcess {
    serve(|port| {
        let mut command = Command::new(real_component("python/.venv/bin/python"));
        command.args([
            &real_component("python/pinned_server.py"),
            transport,
            &port.to_string(),
        ]);
        command
    })
}

/// The Python SDK server protected by the SDK's own auth support (`protected_server.py`):
/// it takes only JWT access tokens of `issuer` issued for its URL.
pub fn python_protected(issuer: &str) -> HttpServerProcess {
    serve(|port| protected_command(issuer, port))
}

fn protected_command(issuer: &str, port: u16) -> Command {
    let mut command = Command::new(real_component("python/.venv/bin/python"));
    command.args([
        &real_component("python/protected_server.py"),
        issuer,
        &port.to_string(),
    ]);
    command
}

/// The same on `port` (to start it again on the address it was locked at).
pub fn python_protected_at(issuer: &str, port: u16) -> HttpServerProcess {
    let command = protected_command(issuer, port);
    serve_on(port, command)
        .unwrap_or_else(|| panic!("the protected server did not listen on {port}"))
}

/// Our scripted hostile HTTP server (`hostile_http.py MODE PORT [ARGS]`).
pub fn hostile_http(mode: &str, args: &[&str]) -> HttpServerProcess {
    hostile(mode, args, None, None)
}

/// The same, appending one JSON line per request it receives to `log` (HTTP method, JSON-RPC
/// method, MCP headers).
pub fn hostile_http_logged(mode: &str, log: &std::path::Path) -> HttpServerProcess {
    hostile(mode, &[], None, Some(log))
}

/// The same over HTTPS, with a certificate for 127.0.0.1 from a fresh private CA written into
/// `tls_dir` (`ca.pem` is what a client must be given to trust it).
pub fn hostile_https(mode: &str, tls_dir: &std::path::Path) -> HttpServerProcess {
    test_ca(tls_dir);
    hostile(mode, &[], Some(tls_dir), None)
}

/// A fresh private CA and a certificate for 127.0.0.1 signed by it, in `dir`: `ca.pem`,
/// `server.pem`, `server.key`.
pub fn test_ca(dir: &std::path::Path) {
    let made = Command::new(real_component("python/.venv/bin/python"))
        .arg(real_component("python/make_test_ca.py"))
        .arg(dir)
        .status()
        .expect("run make_test_ca.py");
    assert!(made.success(), "make_test_ca.py failed");
}

fn hostile(
    mode: &str,
    args: &[&str],
    tls_dir: Option<&std::path::Path>,
    log: Option<&std::path::Path>,
) -> HttpServerProcess {
    serve(|port| {
        let mut command = Command::new(real_component("python/.venv/bin/python"));
        if let Some(dir) = tls_dir {
            command.env("HOSTILE_TLS_DIR", dir);
        }
        if let Some(log) = log {
            command.env("HOSTILE_LOG", log);
        }
        command
            .arg(real_component("python/hostile_http.py"))
            .arg(mode)
            .arg(port.to_string())
            .args(args);
        command
    })
}

/// Starts the server `command(port)` builds, quiet, on a port of its own, and waits until it
/// listens. A server that exits before it listens (its port was taken meanwhile) is started
/// again on another port.
fn serve(command: impl Fn(u16) -> Command) -> HttpServerProcess {
    for _ in 0..5 {
        let port = free_port();
        if let Some(server) = serve_on(port, command(port)) {
            return server;
        }
    }
    panic!("no server started on a port of its own in 5 attempts");
}

/// Starts `command`, quiet, and waits until it listens on `port`; `None` when it exits first.
fn serve_on(port: u16, mut command: Command) -> Option<HttpServerProcess> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut server = HttpServerProcess { child, port };
    wait_listening(&mut server).then_some(server)
}

/// A port nobody listens on now (the OS picks it; a server started next takes it), and never
/// one handed out before in this test process: tests start servers in parallel, and a port
/// handed out twice would put two of them on it.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// True once the server listens; false when it exited first.
fn wait_listening(server: &mut HttpServerProcess) -> bool {
    let started = Instant::now();
    loop {
        if server.child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", server.port)).is_ok() {
            // Listening, and (still running) the one listening.
            return server.child.try_wait().ok().flatten().is_none();
        }
        assert!(
            started.elapsed() < START,
            "nothing listens on 127.0.0.1:{} after {START:?}",
            server.port
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
