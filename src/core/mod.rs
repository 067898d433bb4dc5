//! The pure core: no filesystem, environment, clock, async or printing.
// The purity above, enforced: clippy.toml lists the I/O, environment, clock, process and
// runtime calls and types the core may not use (test code may read its test data).
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_types))]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod agents;
pub mod artifact;
pub mod audit;
pub mod authz;
pub mod bundle;
pub mod canonical;
pub mod code;
pub mod confusable;
pub mod definition;
pub mod diff;
pub mod enforce;
pub mod findings;
pub mod inspect;
pub mod json;
pub mod jsonrpc;
pub mod launch;
pub mod limits;
pub mod locate;
pub mod lockfile;
pub mod merge;
pub mod methods;
pub mod normalize;
pub mod parallel;
pub mod peers;
pub mod policy;
pub mod registry;
pub mod relay;
pub mod review;
pub mod revocation;
pub mod share;
pub mod signature;
pub mod snapshot;
pub mod stability;
pub mod text;
pub mod tier;

#[cfg(test)]
pub mod testkit;
