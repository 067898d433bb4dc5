//! Below a session: starting (or reaching) a locked server, and the in-memory pipes that carry
//! newline-delimited messages to a proxy session. Shared by a session of its own (`host`) and a
//! shared server (`shared`).

use super::Gateway;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Bytes of the in-memory pipes between the HTTP side and the proxy session.
pub(super) const PIPE_BYTES: usize = 1 << 16;

/// Starts (or reaches) the upstream; a started interpreter is held to the lock before anything
/// is relayed (it runs where it is installed).
pub(super) fn open_upstream(
    gateway: &Gateway,
    upstream: &super::Upstream,
    options: &crate::proxy::Options,
    server: &str,
) -> Result<(crate::session::Session, crate::session::Channel), String> {
    let bounds = crate::session::Bounds {
        limits: options.limits,
        request_timeout: gateway.limits.request_timeout,
        tee_stderr: !crate::edge::log::is_json(),
    };
    let (opened, channel) = crate::session::open(&upstream.endpoint, &bounds)
        .map_err(|e| format!("server {server:?}: {e}"))?;
    if let Some(private) = &upstream.private
        && let Err(why) = private.check_started(opened.pid())
    {
        drop(channel);
        tokio::spawn(opened.close(crate::proxy::EXIT_GRACE));
        return Err(format!("refusing to serve {server:?}: {why}"));
    }
    Ok((opened, channel))
}

/// Writes each line for the proxy session into its pipe; when the session is closed the pipe
/// is, and the proxy session ends as if its host had gone.
pub(super) async fn write_lines<W: tokio::io::AsyncWrite + Unpin>(
    mut pipe: W,
    mut lines: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(mut line) = lines.recv().await {
        line.push(b'\n');
        if pipe.write_all(&line).await.is_err() || pipe.flush().await.is_err() {
            break;
        }
    }
    let _ = pipe.shutdown().await;
}
