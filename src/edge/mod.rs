//! Edges that touch the machine: the filesystem and ZIP archives.

pub mod fs;
pub mod zip;
