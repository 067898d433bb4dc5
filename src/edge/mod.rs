//! Edges that touch the machine: the filesystem, ZIP archives, the process's memory.

pub mod artifact;
pub mod audit_log;
pub mod children;
pub mod clock;
pub mod fs;
pub mod log;
pub mod memory;
pub mod secrets;
pub mod zip;
