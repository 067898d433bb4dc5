//! Where a session's decisions are written: an audit log (its sink and hash chain), shared by
//! every session that writes to it (the gateway's sessions share one), each line naming the
//! agent and session it was decided for when there is one.

use crate::core::audit::{Chain, Entry, Mark, Who};
use crate::core::canonical::Digest;
use std::sync::{Arc, Mutex};

/// An audit log open for appending: its sink, the chain so far, the clock, and the key its
/// checkpoints are signed with.
pub struct AuditLog<W> {
    pub sink: W,
    pub chain: Chain,
    pub clock: fn() -> String,
    /// Signs a checkpoint when a session (or a gateway) opens and when it closes
    /// (`--audit-key`).
    pub seal: Option<Seal>,
}

/// Signs the bytes of a checkpoint with the audit key.
pub type Sign = dyn Fn(&[u8]) -> [u8; 64] + Send + Sync;

/// The key checkpoints are signed with.
pub struct Seal {
    pub key_id: Digest,
    pub sign: Box<Sign>,
}

impl<W: std::io::Write> AuditLog<W> {
    /// Appends one decision; a line that cannot be written is said on stderr (it must not pass
    /// unnoticed).
    pub fn append(&mut self, entry: &Entry) {
        let bytes = self.chain.append(entry);
        self.write(&bytes);
    }

    /// Writes a signed checkpoint for `server` (or the gateway), when the log is sealed.
    pub fn checkpoint(&mut self, mark: Mark, server: &str) {
        let Some(seal) = &self.seal else {
            return;
        };
        let time = (self.clock)();
        let bytes = self
            .chain
            .checkpoint(mark, &time, server, &seal.key_id, |b| (seal.sign)(b));
        self.write(&bytes);
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Err(e) = self.sink.write_all(bytes).and_then(|()| self.sink.flush()) {
            crate::edge::log::warn("audit", &format!("cannot write the audit log: {e}"), &[]);
        }
    }
}

/// One session's view of an audit log.
pub struct Audit<W> {
    pub log: Arc<Mutex<AuditLog<W>>>,
    /// The agent and session every line names (a gateway's session), or none (a proxy's).
    pub who: Option<Who>,
    /// The session marks its open and close with checkpoints: a proxy's does; a gateway's
    /// sessions do not (the gateway marks its own start and stop).
    pub checkpoints: bool,
}

impl<W> Audit<W> {
    /// The only session of a log (the proxy's).
    pub fn alone(log: AuditLog<W>) -> Audit<W> {
        Audit {
            log: Arc::new(Mutex::new(log)),
            who: None,
            checkpoints: true,
        }
    }

    /// The log, whatever another session did while holding it (a line is written whole or
    /// not at all, so a poisoned lock leaves a usable chain).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, AuditLog<W>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}
