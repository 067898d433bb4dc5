//! Running a stdio MCP server as a child process.
//!
//! The argv is executed directly (never through a shell) in a process group of its own, so that
//! everything it starts can be stopped together. The server's stderr is drained continuously into
//! a bounded tail (a server blocked on a full stderr pipe would otherwise look like a hang), and
//! shown when the server fails. Shutdown closes the server's input, then sends TERM, then KILL to
//! the whole group.

use crate::core::text::escape;
use crate::transport::conn::{ConnError, Connection, Limits};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCommand {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment variables, on top of mcplock's own environment.
    pub env: Vec<(String, String)>,
}

impl ServerCommand {
    /// The command line as a person would type it, with arguments quoted where needed.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        escape(arg)
    } else {
        format!("'{}'", escape(&arg.replace('\'', "'\\''")))
    }
}

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {program:?}: no such program (is it installed and on PATH?)")]
    NotFound { program: String },
    #[error("cannot start {program:?}: permission denied (is it executable?)")]
    PermissionDenied { program: String },
    #[error("cannot start {program:?}: {source}")]
    Other {
        program: String,
        source: std::io::Error,
    },
}

/// The last bytes a server wrote to stderr.
struct StderrTail {
    bytes: VecDeque<u8>,
    cap: usize,
    total: u64,
}

impl StderrTail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let chunk = &chunk[chunk.len().saturating_sub(self.cap)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.cap);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }
}

/// A view of the server's stderr for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StderrReport {
    /// The last lines, escaped so they cannot drive the terminal.
    pub lines: Vec<String>,
    /// Everything the server wrote to stderr, in bytes.
    pub total_bytes: u64,
}

/// How the server ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitReport {
    pub status: Option<ExitStatus>,
    /// The signal we had to send to the group before the server exited, if any.
    pub escalated_to: Option<&'static str>,
    /// A protocol violation found in what the server wrote after its last answer.
    pub trailing_fault: Option<ConnError>,
}

/// A running stdio server and the connection to it.
pub struct StdioServer {
    child: Child,
    pgid: Option<Pid>,
    conn: Connection,
    stderr: Arc<Mutex<StderrTail>>,
    stderr_task: JoinHandle<()>,
}

/// Default bytes of stderr kept for error messages.
pub const STDERR_TAIL_BYTES: usize = 64 * 1024;

impl StdioServer {
    /// Spawns the server. Must be called inside a tokio runtime.
    pub fn spawn(cmd: &ServerCommand, limits: Limits) -> Result<StdioServer, SpawnError> {
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| {
            let program = cmd.program.clone();
            match source.kind() {
                std::io::ErrorKind::NotFound => SpawnError::NotFound { program },
                std::io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied { program },
                _ => SpawnError::Other { program, source },
            }
        })?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SpawnError::Other {
                program: cmd.program.clone(),
                source: std::io::Error::other("the child's pipes were not created"),
            });
        };
        let tail = Arc::new(Mutex::new(StderrTail {
            bytes: VecDeque::new(),
            cap: STDERR_TAIL_BYTES,
            total: 0,
        }));
        let sink = Arc::clone(&tail);
        let stderr_task = tokio::spawn(async move {
            let mut chunk = vec![0u8; 16 * 1024];
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(&chunk[..n]);
            }
        });
        Ok(StdioServer {
            child,
            pgid,
            conn: Connection::new(stdout, stdin, limits),
            stderr: tail,
            stderr_task,
        })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The last `max_lines` lines the server wrote to stderr.
    pub fn stderr_report(&self, max_lines: usize) -> StderrReport {
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let (front, back) = tail.bytes.as_slices();
        let text = String::from_utf8_lossy(&[front, back].concat()).into_owned();
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let lines = all[all.len().saturating_sub(max_lines)..]
            .iter()
            .map(|l| escape(l))
            .collect();
        StderrReport {
            lines,
            total_bytes: tail.total,
        }
    }

    /// Stops the server: closes its input and waits up to `grace`, then TERM to the process
    /// group and waits up to `grace`, then KILL. Whatever else is left in the group afterwards
    /// (helpers the server started) gets the same treatment.
    pub async fn shutdown(&mut self, grace: Duration) -> ExitReport {
        self.conn.close_input().await;
        let mut escalated_to = None;
        let mut status = wait_for(&mut self.child, grace).await;
        if status.is_none() {
            escalated_to = Some("TERM");
            self.signal_group(Signal::SIGTERM);
            status = wait_for(&mut self.child, grace).await;
        }
        if status.is_none() {
            escalated_to = Some("KILL");
            self.signal_group(Signal::SIGKILL);
            status = self.child.wait().await.ok();
        }
        self.reap_group(grace).await;
        let trailing_fault = self.conn.drain(grace).await;
        // A leftover grandchild may hold stderr open; give the drain a moment, then stop it.
        let _ = tokio::time::timeout(grace, &mut self.stderr_task).await;
        self.stderr_task.abort();
        ExitReport {
            status,
            escalated_to,
            trailing_fault,
        }
    }

    fn signal_group(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH means the group is already empty: nothing to stop.
            let _ = killpg(pgid, signal);
        }
    }

    fn group_alive(&self) -> bool {
        self.pgid.is_some_and(|pgid| killpg(pgid, None).is_ok())
    }

    async fn reap_group(&self, grace: Duration) {
        if !self.group_alive() {
            return;
        }
        self.signal_group(Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while self.group_alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.group_alive() {
            self.signal_group(Signal::SIGKILL);
        }
    }
}

async fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_last_bytes() {
        let mut tail = StderrTail {
            bytes: VecDeque::new(),
            cap: 8,
            total: 0,
        };
        tail.push(b"0123456789");
        tail.push(b"ab");
        assert_eq!(tail.bytes.iter().copied().collect::<Vec<_>>(), b"456789ab");
        assert_eq!(tail.total, 12);
    }

    #[test]
    fn displays_commands_quoted() {
        let cmd = ServerCommand {
            program: "npx".into(),
            args: vec!["-y".into(), "a b".into(), "it's".into()],
            env: vec![],
        };
        assert_eq!(cmd.display(), "npx -y 'a b' 'it'\\''s'");
    }
}
