//! One owner of a server's lifetime, for every command and both transports.
//!
//! [`open`] starts a command (or reaches a URL) and hands back the byte channel to it and the
//! [`Session`] that owns what runs behind it; [`Session::close`] stops it and says how it
//! ended ([`Closed`]). A client over the channel ([`connect`], [`Client`]) is what scan, lock,
//! diff, policy and hosts use; the proxy moves the channel's frames itself. Whatever a command
//! is, the server is stopped the same way: its input closed, a grace period, TERM and KILL to
//! its process group (or the HTTP session ended with DELETE), and what it wrote to stderr kept
//! for the report.

use crate::core::code::{Code, Coded};
use crate::transport::Endpoint;
use crate::transport::conn::{Answers, ConnError, Connection, Limits};
use crate::transport::http::{self, BridgeHandle, SetupError};
use crate::transport::process::{ServerProcess, SpawnError, StderrReport};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Lines of a server's stderr a report shows.
pub const STDERR_LINES: usize = 12;

/// What a session is held to.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Per message from the server (a remote server's stdout rule is always strict).
    pub limits: Limits,
    /// How long one HTTP request to a remote server may take.
    pub request_timeout: Duration,
    /// Copy a started server's stderr to ours as it comes (the proxy: a host shows its
    /// servers' stderr to its user).
    pub tee_stderr: bool,
}

impl Bounds {
    /// The per-message limits for `endpoint`: a remote server's messages are never mixed with
    /// human lines, so its reading is always strict.
    fn limits_for(&self, endpoint: &Endpoint) -> Limits {
        match endpoint {
            Endpoint::Stdio(_) => self.limits,
            Endpoint::Http(_) => Limits {
                strict_stdout: true,
                ..self.limits
            },
        }
    }
}

/// What the server writes, newline-delimited; at a fatal transport failure, the stream ends
/// with that failure as its read error.
pub type FromServer = Box<dyn AsyncRead + Send + Unpin>;
/// Where messages for the server go, one per line; dropping it closes the server's input.
pub type ToServer = Box<dyn AsyncWrite + Send + Unpin>;

/// The byte channel to a server.
pub struct Channel {
    pub from_server: FromServer,
    pub to_server: ToServer,
}

/// Why a server could not be started or reached at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

impl Coded for OpenError {
    fn code(&self) -> Code {
        match self {
            OpenError::Spawn(e) => e.code(),
            OpenError::Setup(_) => Code::Usage,
        }
    }
}

/// What runs behind a channel.
enum Owner {
    Process(ServerProcess),
    Remote(BridgeHandle),
    /// A share of a server someone else runs (the gateway's shared servers): `true` once that
    /// server has ended.
    Share(tokio::sync::watch::Receiver<bool>),
}

/// A started (or reached) server: stopped by [`Session::close`], or killed with its process
/// group when dropped without it.
pub struct Session {
    owner: Owner,
}

/// How a server ended.
#[derive(Clone, Debug, Default)]
pub struct Closed {
    /// A process's exit status (never for a remote server).
    pub status: Option<ExitStatus>,
    /// The signal its group was sent before it exited, if one was needed.
    pub escalated_to: Option<&'static str>,
    /// A protocol violation in what the server wrote after its last answer.
    pub trailing_fault: Option<ConnError>,
    /// The end of what a process wrote to stderr.
    pub stderr: Option<StderrReport>,
}

impl Closed {
    /// For people, after an error: how the process ended and the end of its stderr.
    pub fn details(&self) -> Vec<String> {
        let mut out: Vec<String> = self.details_before_stderr().into_iter().collect();
        out.extend(self.stderr_details());
        out
    }

    /// How the process ended, when that is news.
    pub fn details_before_stderr(&self) -> Option<String> {
        match (self.status, self.escalated_to) {
            (_, Some(signal)) => Some(format!("stopped with {signal}")),
            (Some(status), None) => Some(format!("server {status}")),
            (None, None) => None,
        }
    }

    /// The end of what the process wrote to stderr, one line each (nothing for a remote server).
    pub fn stderr_details(&self) -> Vec<String> {
        let Some(stderr) = &self.stderr else {
            return Vec::new();
        };
        if stderr.lines.is_empty() {
            return vec!["server stderr: (empty)".into()];
        }
        let mut out = vec![format!(
            "server stderr (last {} lines of {} bytes):",
            stderr.lines.len(),
            stderr.total_bytes
        )];
        out.extend(stderr.lines.iter().map(|l| format!("| {l}")));
        out
    }
}

/// Starts the command, or sets up the client to the URL (nothing is sent before the first
/// message). Must be called inside a tokio runtime.
pub fn open(endpoint: &Endpoint, bounds: &Bounds) -> Result<(Session, Channel), OpenError> {
    match endpoint {
        Endpoint::Stdio(cmd) => {
            let (process, pipes) = if bounds.tee_stderr {
                ServerProcess::spawn_teeing_stderr(cmd)?
            } else {
                ServerProcess::spawn(cmd)?
            };
            let channel = Channel {
                from_server: Box::new(pipes.stdout),
                to_server: Box::new(pipes.stdin),
            };
            let owner = Owner::Process(process);
            Ok((Session { owner }, channel))
        }
        Endpoint::Http(remote) => {
            let limits = bounds.limits_for(endpoint);
            let (lines, input, bridge) = http::open(remote, limits, bounds.request_timeout)?;
            let channel = Channel {
                from_server: Box::new(lines),
                to_server: Box::new(input),
            };
            let owner = Owner::Remote(bridge);
            Ok((Session { owner }, channel))
        }
    }
}

impl Session {
    /// A share of a server that another owner runs and stops; `ended` turns `true` when it has
    /// ended. Closing a share stops nothing.
    pub fn share(ended: tokio::sync::watch::Receiver<bool>) -> Session {
        Session {
            owner: Owner::Share(ended),
        }
    }

    /// The started process's id, while it has not been reaped (never for a remote server).
    pub fn pid(&self) -> Option<u32> {
        match &self.owner {
            Owner::Process(process) => process.id(),
            Owner::Remote(_) | Owner::Share(_) => None,
        }
    }

    /// Resolves when the server's own process has exited (cancel-safe); never for a remote
    /// server, whose end is its channel's.
    pub async fn exited(&mut self) {
        match &mut self.owner {
            Owner::Process(process) => {
                process.wait().await;
            }
            Owner::Remote(_) => std::future::pending().await,
            Owner::Share(ended) => {
                // An owner gone without a word (an error here) has ended the server with it.
                let _ = ended.wait_for(|ended| *ended).await;
            }
        }
    }

    /// Stops the server once its input is closed (the caller dropped or closed it): a process
    /// gets `grace`, then TERM and KILL to its group; a remote session is ended (DELETE) and
    /// its bridge stopped after `grace` at most.
    pub async fn close(mut self, grace: Duration) -> Closed {
        let mut closed = self.stop(grace).await;
        closed.stderr = self.finish(grace).await;
        closed
    }

    async fn stop(&mut self, grace: Duration) -> Closed {
        match &mut self.owner {
            Owner::Process(process) => {
                let (status, escalated_to) = process.stop(grace).await;
                Closed {
                    status,
                    escalated_to,
                    ..Closed::default()
                }
            }
            Owner::Remote(bridge) => {
                bridge.finish(grace).await;
                Closed::default()
            }
            Owner::Share(_) => Closed::default(),
        }
    }

    /// After [`Session::stop`]: the stderr drain ended and the report taken.
    async fn finish(&mut self, grace: Duration) -> Option<StderrReport> {
        match &mut self.owner {
            Owner::Process(process) => {
                process.finish(grace).await;
                Some(process.stderr_report(STDERR_LINES))
            }
            Owner::Remote(_) | Owner::Share(_) => None,
        }
    }
}

/// A JSON-RPC client over a session: what the commands that read a server use.
pub struct Client {
    conn: Connection,
    session: Session,
}

/// [`open`], and a client connection over the channel; `answers` are what the client says to
/// the server's own requests.
pub fn connect(
    endpoint: &Endpoint,
    bounds: &Bounds,
    answers: Answers,
) -> Result<Client, OpenError> {
    let (session, channel) = open(endpoint, bounds)?;
    let limits = bounds.limits_for(endpoint);
    let conn = Connection::new(channel.from_server, channel.to_server, limits, answers);
    if let Owner::Process(process) = &session.owner {
        // A signal closes this input, so the server sees its end of input first.
        process.watch_input(conn.input());
    }
    Ok(Client { conn, session })
}

impl Client {
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Closes the server's input and stops it ([`Session::close`]); a process's output after
    /// its last answer is still read, so a protocol violation there counts.
    pub async fn close(&mut self, grace: Duration) -> Closed {
        self.conn.close_input().await;
        let mut closed = self.session.stop(grace).await;
        if matches!(self.session.owner, Owner::Process(_)) {
            closed.trailing_fault = self.conn.drain(grace).await;
        }
        closed.stderr = self.session.finish(grace).await;
        closed
    }
}
