//! A remote server's OAuth surface held to its lock: the one service `proxy`, `diff`, a relaunch
//! and the gateway share (set before the server is reached; told as drift when it differs).

use super::CliError;
use super::exit::{Code, fail};
use crate::core::lockfile::ServerLock;
use crate::transport::Endpoint;

/// A remote server reached by OAuth is held to the OAuth surface its lock recorded (none
/// recorded: any is refused); the check runs at discovery, before a token is asked for.
pub fn hold(entry: &ServerLock, endpoint: &Endpoint) {
    if let Endpoint::Http(http) = endpoint
        && let Some(oauth) = &http.oauth
    {
        oauth.hold_to(entry.authorization.clone());
    }
}

/// A live server whose OAuth surface is not the locked one is not scanned (no token is asked
/// from an authorization server the lock did not record): that is critical drift, said as
/// such, not a server failure.
pub fn drift(endpoint: &Endpoint, known: Option<&ServerLock>) -> Option<CliError> {
    let Endpoint::Http(http) = endpoint else {
        return None;
    };
    let live = http.oauth.as_ref()?.met()?;
    let locked = known?.authorization.as_ref();
    let differences = match locked {
        Some(locked) => locked.differences(&live),
        None => vec![format!("locked without OAuth, now issuer {}", live.issuer)],
    };
    if differences.is_empty() {
        return None;
    }
    Some(fail(
        Code::Drift,
        format!(
            "critical drift: the OAuth surface of {} changed since it was locked ({}); no token was asked for, so nothing else was compared; if you trust it, lock it again with `mcplock lock --update`",
            http.url,
            differences.join("; ")
        ),
    ))
}
