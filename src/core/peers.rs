//! Other tools' lockfile formats, as far as mcplock reads, checks or writes them (issue 32).

pub mod mcp_lock_v1;
pub mod sep3140;
