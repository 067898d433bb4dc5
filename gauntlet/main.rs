//! The gauntlet: mcplock against real MCP servers and clients, real hosts' configs, and hostile
//! fixtures of our own, as one test crate (one link per change instead of one per file).
//! Run one file's tests with `cargo test --test gauntlet FILE::` (e.g. `hosts::issue_27`).

mod common;

mod action;
mod agreement;
mod architecture;
mod artifact;
mod bundle;
mod contract;
mod diff;
mod diff_golden;
mod fuzz;
mod gateway;
mod hardening;
mod hosts;
mod limits;
mod lock;
mod oauth;
mod peers;
mod policy;
mod proxy;
mod published;
mod remote;
mod sarif;
mod scan_fixture;
mod scan_real;
mod signing;
mod sigstore;
mod tolerance;
