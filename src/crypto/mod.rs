//! Keys and signatures.

pub mod ed25519;
pub mod sigstore;
