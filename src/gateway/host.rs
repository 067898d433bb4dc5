//! One agent's session: an in-memory pipe to a proxy session of its own, the requests waiting
//! for their answers, and the stream that carries what the server sends unasked.

use super::Gateway;
use super::upstream::{PIPE_BYTES, open_upstream, write_lines};
use crate::core::enforce::Locked;
use crate::transport::lines::{Frame, read_frame};
use hyper::body::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::BufReader;
use tokio::sync::{mpsc, oneshot};

pub(super) struct HostSession {
    pub agent: String,
    pub server: String,
    /// The state it opened under (what its proxy session is held to).
    pub state: Arc<super::State>,
    /// What a reload took away from its grant since (withdrawn as revocations are).
    withdrawn: Arc<Mutex<Withdrawn>>,
    /// Lines for the proxy session; `None` once closed (the proxy session then ends).
    to_proxy: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    /// Requests waiting for their answer, by their id's JSON text.
    waiting: Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>,
    /// The GET stream, when the host has one open.
    stream: Mutex<Option<mpsc::Sender<Bytes>>>,
    last_used: Mutex<Instant>,
    /// Serves the stateless requests of many hosts of one agent (`stateless::pooled`): their
    /// ids are theirs, not the session's, so each goes on under one of the session's own.
    pooled: std::sync::atomic::AtomicBool,
    /// The session's own request ids so far.
    own_ids: std::sync::atomic::AtomicU64,
}

/// What tells an answer from the rest: its `id`, and no `method`.
#[derive(serde::Deserialize)]
struct Head {
    id: Option<Value>,
    method: Option<serde::de::IgnoredAny>,
}

/// Why a request got no answer.
pub(super) enum NoAnswer {
    /// The session ended before the answer came.
    Ended,
    /// Too many requests of this session are waiting.
    Busy,
    /// Another request with this id is waiting.
    DuplicateId,
    TimedOut(Duration),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a proxy session for `agent` on `server`: the server started from its locked launch
/// (or reached at its locked URL), held to the lock narrowed to the agent's grant.
pub(super) fn start(
    gateway: &Arc<Gateway>,
    id: &str,
    agent: &str,
    server: &str,
) -> Result<Arc<HostSession>, String> {
    let state = gateway.state();
    let upstream = match state.upstreams.get(server) {
        Some(Ok(upstream)) => upstream.clone(),
        Some(Err(why)) => return Err(format!("server {server:?} cannot be served: {why}")),
        None => return Err(format!("no locked server {server:?}")),
    };
    let scope = state
        .agents
        .grant(agent, server)
        .scope()
        .ok_or_else(|| format!("agent {agent:?} has no grant for server {server:?}"))?;
    let lockfile = Arc::clone(&state.lockfile);
    let entry =
        (lockfile.servers.get(server)).ok_or_else(|| format!("no locked server {server:?}"))?;
    let withdrawn = Arc::new(Mutex::new(Withdrawn::default()));
    let mut options = session_options(gateway, &state, (id, agent, server));
    options.revocations = Some(overlaid(options.revocations.take(), Arc::clone(&withdrawn)));
    let (opened, channel) = if upstream.shared {
        super::shared::attach(gateway, &upstream, &options, (server, entry))?
    } else {
        open_upstream(gateway, &upstream, &options, server)?
    };
    let audit = gateway.audit.as_ref().map(|log| crate::proxy::Audit {
        log: Arc::clone(log),
        who: Some(crate::core::audit::Who {
            agent: agent.to_string(),
            session: id.to_string(),
        }),
        checkpoints: false,
    });
    let (ours_in, proxy_in) = tokio::io::duplex(PIPE_BYTES);
    let (proxy_out, ours_out) = tokio::io::duplex(PIPE_BYTES);
    let (to_proxy, lines) = mpsc::channel(gateway.limits.max_in_flight * 2);
    let session = Arc::new(HostSession {
        agent: agent.to_string(),
        server: server.to_string(),
        state: Arc::clone(&state),
        withdrawn,
        to_proxy: Mutex::new(Some(to_proxy)),
        waiting: Mutex::new(HashMap::new()),
        stream: Mutex::new(None),
        last_used: Mutex::new(Instant::now()),
        pooled: std::sync::atomic::AtomicBool::new(false),
        own_ids: std::sync::atomic::AtomicU64::new(0),
    });
    tokio::spawn(write_lines(ours_in, lines));
    tokio::spawn(read_answers(
        Arc::clone(&session),
        ours_out,
        gateway.limits.max_message_bytes,
    ));
    let gateway = Arc::clone(gateway);
    let id = id.to_string();
    let name = server.to_string();
    let running = Arc::clone(&gateway.running);
    tokio::spawn(async move {
        let _running = running;
        let Some(entry) = lockfile.servers.get(&name) else {
            gateway.end(&id);
            return;
        };
        let locked = Locked::new(entry).within(scope);
        let (end, closed) = crate::proxy::serve_opened(
            (proxy_in, proxy_out),
            opened,
            channel,
            &locked,
            &options,
            audit,
        )
        .await;
        if let Ok(crate::proxy::End::ServerClosed(why)) = &end {
            let details = closed.details().join("; ");
            let fields = [("session", id.as_str()), ("server", name.as_str())];
            let text = format!("the session's server went away: {why}; {details}");
            crate::edge::log::warn("gateway", &text, &fields);
        }
        gateway.end(&id);
    });
    Ok(session)
}

/// Items a reload took out of a running session's grant, and how often that changed.
#[derive(Default)]
struct Withdrawn {
    generation: u64,
    entries: Vec<crate::core::revocation::Revoked>,
}

/// The session's revocation poll: the gateway's list (if any) with what reloads withdrew from
/// this session's grant, told to the session whenever either changes.
fn overlaid(
    base: Option<Box<crate::proxy::RevocationPoll>>,
    withdrawn: Arc<Mutex<Withdrawn>>,
) -> Box<crate::proxy::RevocationPoll> {
    use crate::proxy::Poll;
    // The base list last heard of (or why it cannot be trusted), and the overlay's generation.
    let heard = Mutex::new((
        Ok::<_, String>(crate::core::revocation::Revocations::default()),
        0u64,
    ));
    Box::new(move || {
        let polled = base.as_ref().map_or(Poll::Unchanged, |poll| poll());
        let (generation, extra) = {
            let w = lock(&withdrawn);
            (w.generation, w.entries.clone())
        };
        let mut heard = lock(&heard);
        let mut kept = None;
        match polled {
            Poll::Unchanged if heard.1 == generation => return Poll::Unchanged,
            Poll::Unchanged => {}
            Poll::Changed(list) => heard.0 = Ok(list),
            Poll::Kept { list, why } => {
                heard.0 = Ok(list);
                kept = Some(why);
            }
            Poll::Unreadable(why) => heard.0 = Err(why),
        }
        heard.1 = generation;
        match &heard.0 {
            Err(why) => Poll::Unreadable(why.clone()),
            Ok(list) => {
                let mut list = list.clone();
                list.entries.extend(extra);
                match kept {
                    Some(why) => Poll::Kept { list, why },
                    None => Poll::Changed(list),
                }
            }
        }
    })
}

/// The proxy session's options for one host session: the state's, with the session named in
/// its stderr lines and every decision counted.
fn session_options(
    gateway: &Gateway,
    state: &super::State,
    (id, agent, server): (&str, &str, &str),
) -> crate::proxy::Options {
    let mut options = (state.options)(server, agent);
    options.log_fields = vec![
        ("agent", agent.to_string()),
        ("session", id.to_string()),
        ("server", server.to_string()),
    ];
    let (metrics, name) = (Arc::clone(&gateway.metrics), server.to_string());
    options.observer = Some(Arc::new(move |d: &crate::proxy::Decided<'_>| {
        metrics.decided(&name, d.method, d.decision, d.reason);
    }));
    options
}

/// Reads what the proxy session sends the host: an answer goes to the request waiting for it,
/// anything else to the GET stream.
async fn read_answers(session: Arc<HostSession>, pipe: tokio::io::DuplexStream, cap: usize) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    // The proxy writes only its own framed lines; anything else ends the session.
    while let Ok(Frame::Line) = read_frame(&mut reader, &mut line, cap).await {
        session.deliver(std::mem::take(&mut line));
    }
    session.close();
    lock(&session.waiting).clear();
    lock(&session.stream).take();
}

impl HostSession {
    fn deliver(&self, line: Vec<u8>) {
        // Only the envelope is read: a result (up to the message cap) is passed on as text.
        let Ok(head) = serde_json::from_slice::<Head>(&line) else {
            return;
        };
        if let (Some(id), None) = (&head.id, &head.method) {
            let key = id.to_string();
            if let Some(waiter) = lock(&self.waiting).remove(&key) {
                let _ = waiter.send(line);
            }
            return;
        }
        let mut stream = lock(&self.stream);
        if let Some(tx) = stream.as_ref() {
            let mut event = b"event: message\ndata: ".to_vec();
            event.extend_from_slice(&line);
            event.extend_from_slice(b"\n\n");
            if tx.try_send(Bytes::from(event)).is_err() {
                crate::edge::log::warn(
                    "gateway",
                    "a host's GET stream fell behind (or closed); it is closed and will not get this message",
                    &[("agent", &self.agent), ("server", &self.server)],
                );
                stream.take();
            }
        }
    }

    /// Sends a request and waits for its answer.
    pub(super) async fn request(
        &self,
        id: &Value,
        line: Vec<u8>,
        limits: &super::Limits,
    ) -> Result<Vec<u8>, NoAnswer> {
        self.touch();
        let key = id.to_string();
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = lock(&self.waiting);
            if waiting.len() >= limits.max_in_flight {
                return Err(NoAnswer::Busy);
            }
            if waiting.contains_key(&key) {
                return Err(NoAnswer::DuplicateId);
            }
            waiting.insert(key.clone(), tx);
        }
        if !self.send(line).await {
            lock(&self.waiting).remove(&key);
            return Err(NoAnswer::Ended);
        }
        let answer = tokio::time::timeout(limits.request_timeout, rx).await;
        self.touch();
        match answer {
            Ok(Ok(line)) => Ok(line),
            Ok(Err(_)) => Err(NoAnswer::Ended),
            Err(_) => {
                lock(&self.waiting).remove(&key);
                Err(NoAnswer::TimedOut(limits.request_timeout))
            }
        }
    }

    /// Marks the session as serving many hosts' stateless requests.
    pub(super) fn pool(&self) {
        self.pooled.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sends a host's request and waits for its answer: under the host's own id in a session of
    /// its own (so its cancellations name it), under one of the session's own in a pooled one.
    /// `line` is the request as the host sent it (what its own session is given).
    pub(super) async fn request_from_host(
        &self,
        message: &Map<String, Value>,
        line: Vec<u8>,
        limits: &super::Limits,
    ) -> Result<Vec<u8>, NoAnswer> {
        if self.pooled.load(std::sync::atomic::Ordering::SeqCst) {
            return self.request_unique(message.clone(), limits).await;
        }
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        self.request(&id, line, limits).await
    }

    /// Sends a request under an id of the session's own, and gives its answer the request's id
    /// back: requests of several senders never collide.
    pub(super) async fn request_unique(
        &self,
        mut message: Map<String, Value>,
        limits: &super::Limits,
    ) -> Result<Vec<u8>, NoAnswer> {
        let n = (self.own_ids).fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let own = Value::String(format!("mcplock-{n}"));
        let original = message
            .insert("id".into(), own.clone())
            .unwrap_or(Value::Null);
        let line = serde_json::to_vec(&message).unwrap_or_default();
        let answer = self.request(&own, line, limits).await?;
        match serde_json::from_slice::<Map<String, Value>>(&answer) {
            Ok(mut doc) => {
                doc.insert("id".into(), original);
                Ok(serde_json::to_vec(&doc).unwrap_or(answer))
            }
            Err(_) => Ok(answer),
        }
    }

    /// Sends a notification or an answer; `false` when the session has ended.
    pub(super) async fn send(&self, line: Vec<u8>) -> bool {
        self.touch();
        let sender = lock(&self.to_proxy).clone();
        match sender {
            Some(sender) => sender.send(line).await.is_ok(),
            None => false,
        }
    }

    /// Opens the GET stream (a host's earlier one is closed).
    pub(super) fn open_stream(&self, queue: usize) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        *lock(&self.stream) = Some(tx);
        rx
    }

    pub(super) fn close(&self) {
        lock(&self.to_proxy).take();
    }

    pub(super) fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Withdraws from the running session what `scope` no longer admits of what it opened with
    /// (`original`); it takes effect at the session's next message, and its host is told the
    /// lists changed. An empty `taken` gives back what an earlier narrowing took.
    pub(super) fn narrow(&self, taken: Vec<(crate::core::snapshot::ItemKind, String)>, now: &str) {
        let entries: Vec<_> = taken
            .into_iter()
            .map(|(kind, key)| crate::core::revocation::Revoked {
                server: self.server.clone(),
                item: Some((kind, key)),
                digest: None,
                reason: "no longer in this agent's grant (the gateway reloaded)".into(),
                revoked_at: now.to_string(),
            })
            .collect();
        let mut withdrawn = lock(&self.withdrawn);
        if withdrawn.entries != entries {
            withdrawn.entries = entries;
            withdrawn.generation += 1;
        }
    }

    /// Requests waiting for their answers.
    pub(super) fn waiting(&self) -> usize {
        lock(&self.waiting).len()
    }

    pub(super) fn idle_for(&self) -> Duration {
        let busy = !lock(&self.waiting).is_empty();
        if busy {
            Duration::ZERO
        } else {
            lock(&self.last_used).elapsed()
        }
    }
}
