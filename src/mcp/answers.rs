//! How the scanning client answers requests a server sends it during a scan. Injected into the
//! connection: the proxy, which forwards such requests to the host instead, brings its own.

use crate::core::jsonrpc::{METHOD_NOT_FOUND, RpcError};
use serde_json::{Value, json};

/// `ping` with `{}`, `roots/list` with no roots (mcplock exposes no files), anything else
/// (sampling, elicitation) with "method not found".
pub fn while_scanning(method: &str) -> Result<Value, RpcError> {
    match method {
        "ping" => Ok(json!({})),
        "roots/list" => Ok(json!({"roots": []})),
        _ => Err(RpcError {
            code: METHOD_NOT_FOUND,
            message: format!("mcplock does not serve {method} while scanning"),
            data: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_server_requests() {
        assert_eq!(while_scanning("ping"), Ok(json!({})));
        assert_eq!(while_scanning("roots/list"), Ok(json!({"roots": []})));
        assert_eq!(
            while_scanning("sampling/createMessage").unwrap_err().code,
            METHOD_NOT_FOUND
        );
    }
}
