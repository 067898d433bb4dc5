//! Real infrastructure from the distribution's packages, started and stopped by a test on
//! loopback: Redis (`redis-server`) and HAProxy. A missing one fails the test: CI installs both.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nobody listens on now, never handed out before in this test process.
pub fn free_port() -> u16 {
    super::remote::free_port()
}

/// Waits until `ready` holds, or panics naming `what`.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let up = || {
        if ready() {
            Ok(())
        } else {
            Err("not up".to_string())
        }
    };
    super::eventually(what, Duration::from_secs(20), up);
}

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} cannot be started ({e}): CI installs it (.ci/run)"))
}

/// A Redis server on 127.0.0.1, without persistence, stopped when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_on(free_port())
    }

    /// On `port` (to restart one where its clients expect it).
    pub fn start_on(port: u16) -> Redis {
        let port_text = port.to_string();
        let args = [
            "--port",
            &port_text,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        let child = spawn("redis-server", &args);
        let redis = Redis { child, port };
        wait_until("redis-server", || redis.ping());
        redis
    }

    /// With `args` added (TLS, a password): ready once it accepts connections.
    pub fn start_with(args: &[&str]) -> Redis {
        let port = free_port().to_string();
        let mut all = vec!["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        all.extend_from_slice(args);
        let tls = args.contains(&"--tls-cert-file");
        let all = if tls {
            [&["--port", "0", "--tls-port", &port][..], &all].concat()
        } else {
            [&["--port", &port][..], &all].concat()
        };
        let child = spawn("redis-server", &all);
        let port: u16 = port.parse().unwrap();
        wait_until("redis-server", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Redis { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether it answers PING.
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// Stops it (as a crash would: no goodbye to its clients).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// HAProxy on 127.0.0.1 balancing HTTP round-robin over `backends` (host:port), stopped when
/// dropped.
pub struct HaProxy {
    child: Child,
    pub port: u16,
}

impl HaProxy {
    pub fn round_robin(dir: &Path, backends: &[String]) -> HaProxy {
        let port = free_port();
        let servers: String = (backends.iter().enumerate())
            .map(|(i, b)| format!("  server replica{i} {b}\n"))
            .collect();
        let config = format!(
            "global\n  maxconn 512\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\nfrontend mcp\n  bind 127.0.0.1:{port}\n  default_backend gateways\nbackend gateways\n  balance roundrobin\n{servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let path = path.to_string_lossy().into_owned();
        let check = Command::new("haproxy").args(["-c", "-f", &path]).output();
        let check = check.unwrap_or_else(|e| {
            panic!("haproxy cannot be started ({e}): CI installs it (.ci/run)")
        });
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = spawn("haproxy", &["-db", "-f", &path]);
        wait_until("haproxy", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        HaProxy { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
