//! Edges that touch the machine: the filesystem (and later the clock and ZIP files).

pub mod fs;
