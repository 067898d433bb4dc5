//! The gateway: every locked server served to agents over Streamable HTTP, each host session
//! enforced by the proxy's own session (`crate::proxy::run_until`) over an in-memory pipe, so
//! there is one implementation of every decision.
//!
//! `http.rs` is the HTTP side (routes, credentials, Origin, bounds); `host.rs` one agent's
//! session: the pipe to its proxy session, the requests waiting for their answers, and the
//! stream of what the server sends unasked.

mod aggregate;
mod host;
mod http;
pub mod metrics;
pub mod oauth;
mod shared;
mod stateless;
mod upstream;
mod wire;

pub use http::serve;

use crate::core::agents::Agents;
use crate::core::lockfile::Lockfile;
use crate::edge::artifact::run::Private;
use crate::proxy::AuditLog;
use crate::transport::Endpoint;
use host::HostSession;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a stopping gateway waits for the requests under way to be answered before it ends
/// every session.
pub const DRAIN: Duration = Duration::from_secs(10);

/// What the gateway is held to.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open host sessions at once, over all agents.
    pub max_sessions: usize,
    /// Requests of one session waiting for their answers at once.
    pub max_in_flight: usize,
    /// Largest request body, and largest message from a server.
    pub max_message_bytes: usize,
    /// How long a request may wait for its answer.
    pub request_timeout: Duration,
    /// A session with no request for this long is ended.
    pub idle_timeout: Duration,
    /// Messages queued for a session's GET stream before a slow reader loses the stream.
    pub stream_queue: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_sessions: 256,
            max_in_flight: 64,
            max_message_bytes: 16 << 20,
            request_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(900),
            stream_queue: 256,
        }
    }
}

/// What a locked server is started from: its endpoint, built from the locked launch when the
/// gateway started (never from anything on the wire), and the private copy of its locked code
/// it starts from, when the lock pins a script or program.
#[derive(Clone)]
pub struct Upstream {
    pub endpoint: Endpoint,
    pub private: Option<Arc<Private>>,
    /// Every session of the server is served from one running server (`--share`).
    pub shared: bool,
}

/// Every locked server: what it is started from, or why it cannot be served.
pub type Upstreams = BTreeMap<String, Result<Upstream, String>>;

/// The proxy session's options for one host session of (server, agent).
pub type OptionsFor = dyn Fn(&str, &str) -> crate::proxy::Options + Send + Sync;

/// Stateless sessions by (agent, server): the session's id, and its lists read once.
type Pool = HashMap<(String, String), (String, Arc<tokio::sync::OnceCell<()>>)>;

/// The gateway's audit log, shared by its sessions.
pub type SharedLog = Arc<Mutex<AuditLog<std::fs::File>>>;

/// What the gateway serves from, verified as a whole at start and at every reload: a session
/// keeps the state it opened under.
pub struct State {
    pub lockfile: Arc<Lockfile>,
    pub agents: Agents,
    pub upstreams: Upstreams,
    pub options: Box<OptionsFor>,
    /// What identifies the call rules in force (a digest of the policies): sessions opened under
    /// other rules end when they change.
    pub rules: String,
}

/// What a reload means for a running session.
enum Recheck {
    /// What it is held to is unchanged, or its grant narrowed: these items are taken away
    /// (none: nothing is, or no longer).
    Keep(Vec<(crate::core::snapshot::ItemKind, String)>),
    /// Its locked entry or the rules changed, or its grant widened or went: it ends.
    End,
}

impl State {
    /// What becomes of a session of `agent` on `server` opened under `self` when `new` is put
    /// in force.
    fn recheck(&self, new: &State, agent: &str, server: &str) -> Recheck {
        let entry = self.lockfile.servers.get(server);
        if entry != new.lockfile.servers.get(server) || self.rules != new.rules {
            return Recheck::End;
        }
        let (Some(entry), Some(opened), Some(now)) = (
            entry,
            self.agents.grant(agent, server).scope(),
            new.agents.grant(agent, server).scope(),
        ) else {
            return Recheck::End;
        };
        if !now.is_within(&opened) {
            return Recheck::End;
        }
        Recheck::Keep(now.taken_from(&opened, entry))
    }
}

/// Everything the gateway serves from.
pub struct Gateway {
    state: std::sync::RwLock<Arc<State>>,
    pub limits: Limits,
    /// Origins a browser-based host may call from, besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Where every session's decisions are written, each line naming its agent and session.
    pub audit: Option<SharedLog>,
    /// Serve HTTPS with this: every connection's TLS handshake first.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub metrics: Arc<metrics::Metrics>,
    /// Accepts OAuth access tokens of an issuer besides the agents file's (`--oauth-issuer`).
    pub oauth: Option<Arc<oauth::OAuth>>,
    sessions: Mutex<HashMap<String, Arc<HostSession>>>,
    /// The pooled session of each (agent, server) serving stateless requests, and whether it
    /// has read its lists yet.
    pool: Mutex<Pool>,
    /// Host sessions of the aggregated endpoint, by id (their members are in `sessions`).
    aggregates: Mutex<HashMap<String, Arc<aggregate::Aggregate>>>,
    /// The running server of each shared server (`--share`).
    shared: Mutex<HashMap<String, Arc<shared::Shared>>>,
    /// Held by every running proxy session and shared server: how many still run (servers
    /// not yet stopped).
    running: Arc<()>,
    /// Stopping: not ready, no new session.
    draining: std::sync::atomic::AtomicBool,
}

impl Gateway {
    pub fn new(state: State, limits: Limits) -> Gateway {
        Gateway {
            state: std::sync::RwLock::new(Arc::new(state)),
            limits,
            allowed_origins: Vec::new(),
            audit: None,
            tls: None,
            metrics: Arc::new(metrics::Metrics::new()),
            oauth: None,
            sessions: Mutex::new(HashMap::new()),
            pool: Mutex::new(HashMap::new()),
            aggregates: Mutex::new(HashMap::new()),
            shared: Mutex::new(HashMap::new()),
            running: Arc::new(()),
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The state in force now.
    pub fn state(&self) -> Arc<State> {
        Arc::clone(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `new` in force (it was verified as at start): new sessions open under it. A running
    /// session whose grant narrowed has what it lost withdrawn at its next message (its host is
    /// told the lists changed); one whose locked entry or rules changed, or whose grant widened
    /// or went, is ended (its host initializes again, under the new state); the others go on.
    /// Returns how many were ended.
    pub fn reload(&self, new: State) -> usize {
        let new = Arc::new(new);
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&new);
        let now = crate::edge::clock::now();
        let mut stale = Vec::new();
        for (id, session) in self.sessions().iter() {
            match session.state.recheck(&new, &session.agent, &session.server) {
                Recheck::Keep(taken) => session.narrow(taken, &now),
                Recheck::End => stale.push(id.clone()),
            }
        }
        for id in &stale {
            crate::edge::log::info(
                "gateway",
                "session ended: what it was held to changed (reload); its host initializes again",
                &[("session", id)],
            );
            self.end(id);
        }
        stale.len()
    }

    fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Proxy sessions and shared servers still running (their servers not yet stopped).
    pub fn running(&self) -> usize {
        Arc::strong_count(&self.running) - 1
    }

    /// Requests of any session waiting for their answers.
    fn in_flight(&self) -> usize {
        self.sessions().values().map(|s| s.waiting()).sum()
    }

    /// Stops: waits up to [`DRAIN`] for the requests under way, then ends every session and
    /// waits for their servers to stop.
    pub async fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + DRAIN;
        while self.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ids: Vec<String> = self.sessions().keys().cloned().collect();
        for id in ids {
            self.end(&id);
        }
        let deadline = tokio::time::Instant::now() + crate::proxy::EXIT_GRACE * 2;
        while self.running() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Marks the gateway's start or stop in its audit log (a signed checkpoint, when sealed).
    pub fn checkpoint(&self, mark: crate::core::audit::Mark) {
        if let Some(log) = &self.audit {
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .checkpoint(mark, "gateway");
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<HostSession>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn aggregates(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<aggregate::Aggregate>>> {
        self.aggregates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open host sessions.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    fn session(&self, id: &str) -> Option<Arc<HostSession>> {
        self.sessions().get(id).cloned()
    }

    /// Forgets a session and closes its pipe (its proxy session then ends and stops the
    /// server).
    fn end(&self, id: &str) {
        let removed = self.sessions().remove(id);
        self.pool().retain(|_, (pooled, _)| pooled != id);
        if let Some(session) = removed {
            self.metrics.session_closed();
            session.close();
        }
    }

    /// Ends the sessions no request has used for the idle timeout.
    fn end_idle(&self) {
        // An aggregate one of whose members ended is over: its other members end too.
        let over: Vec<Arc<aggregate::Aggregate>> = {
            let mut aggregates = self.aggregates();
            let over = aggregates
                .iter()
                .filter(|(_, a)| !a.alive(self))
                .map(|(id, _)| id.clone())
                .collect::<Vec<_>>();
            over.iter().filter_map(|id| aggregates.remove(id)).collect()
        };
        for aggregate in over {
            aggregate.close(self);
        }
        let idle: Vec<String> = self
            .sessions()
            .iter()
            .filter(|(_, s)| s.idle_for() > self.limits.idle_timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            crate::edge::log::info(
                "gateway",
                "session ended after being idle",
                &[("session", &id)],
            );
            self.end(&id);
        }
    }
}

/// A session id: 128 bits from the operating system's CSPRNG, as hex.
fn new_session_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a session id: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
