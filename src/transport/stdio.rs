//! Talking to a stdio MCP server as a client: its process ([`ServerProcess`]) and a JSON-RPC
//! connection over its pipes.

use crate::transport::conn::{Answers, ConnError, Connection, Limits};
pub use crate::transport::process::{ServerCommand, SpawnError};
use crate::transport::process::{ServerProcess, StderrReport};
use std::process::ExitStatus;
use std::time::Duration;

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
    process: ServerProcess,
    conn: Connection,
}

impl StdioServer {
    /// Spawns the server and connects to it. Must be called inside a tokio runtime.
    pub fn spawn(
        cmd: &ServerCommand,
        limits: Limits,
        answers: Answers,
    ) -> Result<StdioServer, SpawnError> {
        let (process, pipes) = ServerProcess::spawn(cmd)?;
        let conn = Connection::new(pipes.stdout, pipes.stdin, limits, answers);
        process.watch_input(conn.input());
        Ok(StdioServer { process, conn })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The last `max_lines` lines the server wrote to stderr.
    pub fn stderr_report(&self, max_lines: usize) -> StderrReport {
        self.process.stderr_report(max_lines)
    }

    /// Stops the server: closes its input, then TERM and KILL to its group as needed; then
    /// reads what it wrote after its last answer, so a protocol violation there still counts.
    pub async fn shutdown(&mut self, grace: Duration) -> ExitReport {
        self.conn.close_input().await;
        let (status, escalated_to) = self.process.stop(grace).await;
        let trailing_fault = self.conn.drain(grace).await;
        self.process.finish(grace).await;
        ExitReport {
            status,
            escalated_to,
            trailing_fault,
        }
    }
}
