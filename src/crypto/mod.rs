//! Keys and signatures.

pub mod ed25519;
