//! mcplock: pin what an MCP server offers an AI agent.
//!
//! The crate is split into a pure core (`core`: canonical JSON, JSON-RPC framing, the snapshot
//! and lockfile models, diff, policy and enforcement decisions; no I/O, no async, no clock) and
//! the edges around it: `edge` (the filesystem, archives, audit logs, artifacts on disk),
//! `crypto` (Ed25519 and Sigstore), `transport` (processes, pipes and HTTP), `session` (one
//! owner of a server's lifetime: started or reached, stopped, reported), `mcp` (the protocol
//! client over a transport), `hosts` (agent hosts' configs, read and rewritten), `proxy` (the
//! run-time enforcement point) and `cli` (arguments, commands, rendering, exit codes).
//! docs/architecture.md says what lives where and what may import what.
#![forbid(unsafe_code)]

pub mod cli;
pub mod core;
pub mod crypto;
pub mod edge;
pub mod gateway;
pub mod hosts;
pub mod limiter;
pub mod mcp;
pub mod proxy;
pub mod session;
pub mod transport;
