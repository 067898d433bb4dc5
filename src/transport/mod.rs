//! Moving JSON-RPC messages to and from a server.
//!
//! `channel` reads one peer's messages, role-neutral (raw bytes kept beside the parsed value,
//! size caps, human lines skipped); `process` owns a server process's lifetime (spawn, stderr, stop, signals, escaped helpers);
//! `conn` is the client's demultiplexer over any byte stream pair, with the answers to server
//! requests injected by the role; `stdio` joins the two for commands that scan; `lines` reads
//! newline-delimited frames with a size cap.

pub mod channel;
pub mod conn;
pub mod lines;
pub mod process;
pub mod stdio;

pub use conn::{ConnError, Connection, Limits, RequestError, Skipped};
