//! The pure core: no filesystem, environment, clock, async or printing.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod artifact;
pub mod audit;
pub mod bundle;
pub mod canonical;
pub mod confusable;
pub mod definition;
pub mod diff;
pub mod enforce;
pub mod findings;
pub mod inspect;
pub mod json;
pub mod jsonrpc;
pub mod launch;
pub mod locate;
pub mod lockfile;
pub mod methods;
pub mod normalize;
pub mod parallel;
pub mod policy;
pub mod relay;
pub mod review;
pub mod revocation;
pub mod signature;
pub mod snapshot;
pub mod stability;
pub mod text;

#[cfg(test)]
pub mod testkit;
