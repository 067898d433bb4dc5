//! The MCP client side of a scan: agree on a protocol version, then list everything.

pub mod answers;
pub mod error;
pub mod negotiate;
pub mod page;
pub mod scan;
pub mod version;

pub use scan::{ScanError, ScanOptions, scan};
pub use version::{ProtocolChoice, ProtocolVersion};
