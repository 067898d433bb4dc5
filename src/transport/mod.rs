//! Moving JSON-RPC messages to and from a server.
//!
//! `conn` is the demultiplexer over any byte stream pair; `stdio` spawns a server process and
//! owns its lifetime; `lines` reads newline-delimited frames with a size cap.

pub mod conn;
pub mod lines;
pub mod stdio;

pub use conn::{ConnError, Connection, Limits, RequestError, Skipped};
