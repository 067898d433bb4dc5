//! Other tools' lockfile formats, as far as mcplock reads, checks or writes them (issue 32).

pub mod confirm;
pub mod import;
pub mod mcp_lock_v1;
pub mod recipes;
pub mod sep3140;
pub mod toolpin;
