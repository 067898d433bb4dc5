//! Reading a response body within a cap, for every HTTP client of mcplock's (the MCP bridge,
//! OAuth discovery, published files).

use super::errors::error_chain;

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum Unread {
    /// The connection broke (the error and its causes).
    Broke(String),
    /// It passed the cap (in bytes).
    TooLarge(usize),
}

/// The whole body of `response`, refused as soon as it passes `cap` bytes.
pub async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, Unread> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Unread::Broke(error_chain(&e)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(Unread::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::Broke(why) => write!(f, "{why}"),
            Unread::TooLarge(cap) => write!(f, "larger than {cap} bytes"),
        }
    }
}
