//! mcplock: pin what an MCP server offers an AI agent.
//!
//! The crate is split into a pure core (`core`: JSON, JSON-RPC framing, the snapshot model; no
//! I/O, no async, no clock) and the edges around it: `transport` (processes and pipes), `mcp`
//! (the protocol client over a transport) and `cli` (argument parsing, rendering, exit codes).
#![forbid(unsafe_code)]

pub mod cli;
pub mod core;
pub mod crypto;
pub mod edge;
pub mod hosts;
pub mod mcp;
pub mod proxy;
pub mod transport;
