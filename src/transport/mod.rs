//! Moving JSON-RPC messages to and from a server.
//!
//! `channel` reads one peer's messages, role-neutral (raw bytes kept beside the parsed value,
//! size caps, human lines skipped); `process` owns a server process (spawn, stderr, stop,
//! signals, escaped helpers); `http` bridges newline-delimited messages to a Streamable HTTP
//! (or HTTP+SSE) server; `conn` is the client's demultiplexer over any byte stream pair, with
//! the answers to server requests injected by the role; `lines` reads newline-delimited frames
//! with a size cap. `crate::session` puts them together into one server's lifetime.

pub mod body;
pub mod channel;
pub mod conn;
pub mod errors;
pub mod fetch;
pub mod http;
pub mod lines;
pub mod oauth;
pub mod process;
pub mod sse;

pub use conn::{ConnError, Connection, Limits, RequestError, Skipped};

use crate::core::launch::Launch;
use http::HttpEndpoint;
use process::ServerCommand;

/// Where a server is, with what it takes to reach it (env values, header values: secrets that
/// never leave this type except towards the server). [`Endpoint::launch`] is what is recorded.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Stdio(ServerCommand),
    Http(HttpEndpoint),
}

impl Endpoint {
    /// The recorded form: argv and env names, or the URL and header names (sorted, lowercase:
    /// header names are case-insensitive, so one spelling is recorded).
    pub fn launch(&self) -> Launch {
        match self {
            Endpoint::Stdio(cmd) => {
                let mut env_keys: Vec<String> = cmd.env.iter().map(|(k, _)| k.clone()).collect();
                env_keys.sort();
                env_keys.dedup();
                Launch::Stdio {
                    command: cmd.program.clone(),
                    args: cmd.args.clone(),
                    env_keys,
                    cwd: cmd.cwd.as_ref().map(|c| c.display().to_string()),
                }
            }
            Endpoint::Http(endpoint) => {
                let mut header_names: Vec<String> = endpoint
                    .headers
                    .iter()
                    .map(|(name, _)| name.to_ascii_lowercase())
                    .collect();
                header_names.sort();
                header_names.dedup();
                Launch::Http {
                    url: endpoint.url.to_string(),
                    header_names,
                    context: endpoint.context.clone(),
                }
            }
        }
    }

    /// For people: the quoted argv, or the URL.
    pub fn display(&self) -> String {
        match self {
            Endpoint::Stdio(cmd) => cmd.display(),
            Endpoint::Http(endpoint) => endpoint.url.to_string(),
        }
    }
}
