//! Shared servers (`--share NAME`): one running server below every host session of a server
//! that keeps nothing of one client from another. Each host session keeps its own proxy
//! session (its own enforcement, narrowed to its agent's grant); each proxy session talks to a
//! lease of the one server, and `core::share` tells the leases' traffic apart. The server stops
//! when its last session ends, when it exits, or when it stops reading; a session opened after
//! a reload changed the server's locked entry starts a new one.

use super::{Gateway, Upstream};
use crate::core::lockfile::ServerLock;
use crate::core::share::{Lease, Out, Share};
use crate::session::{Channel, FromServer, Session};
use crate::transport::lines::{Frame, read_frame};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::BufReader;
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// Messages queued for the server, or for one lease's proxy session: the server not reading
/// its input stops it; a proxy session not reading loses its lease.
const QUEUE: usize = 1_024;
/// Requests of all leases waiting for the server's answers at once.
const MAX_WAITING: usize = 4_096;

pub(super) struct Shared {
    server: String,
    /// The locked entry it was started from.
    entry: ServerLock,
    inner: Mutex<Inner>,
    /// `true` once the server has ended: each lease's session then ends.
    ended: watch::Sender<bool>,
    /// The last lease left.
    emptied: Notify,
}

struct Inner {
    share: Share,
    leases: HashMap<Lease, mpsc::Sender<Vec<u8>>>,
    /// `None` once the server is stopping.
    to_server: Option<mpsc::Sender<Vec<u8>>>,
    /// No new lease: the server is stopping.
    closing: bool,
}

/// A lease of the running shared server for `server` (started now if none runs, or if the one
/// running was started from another locked entry).
pub(super) fn attach(
    gateway: &Arc<Gateway>,
    upstream: &Upstream,
    options: &crate::proxy::Options,
    (server, entry): (&str, &ServerLock),
) -> Result<(Session, Channel), String> {
    let mut registry = gateway.shared.lock().unwrap_or_else(|p| p.into_inner());
    let running = registry.get(server).filter(|s| &s.entry == entry);
    if let Some(lease) = running.and_then(|shared| shared.lease(gateway)) {
        return Ok(lease);
    }
    let shared = start(gateway, upstream, options, (server, entry))?;
    let lease = shared
        .lease(gateway)
        .ok_or_else(|| format!("shared server {server:?} ended as it started"))?;
    registry.insert(server.to_string(), shared);
    Ok(lease)
}

fn start(
    gateway: &Arc<Gateway>,
    upstream: &Upstream,
    options: &crate::proxy::Options,
    (server, entry): (&str, &ServerLock),
) -> Result<Arc<Shared>, String> {
    let (opened, channel) = super::upstream::open_upstream(gateway, upstream, options, server)?;
    let (to_server, lines) = mpsc::channel(QUEUE);
    let client_info = json!({"name": "mcplock-gateway", "version": env!("CARGO_PKG_VERSION")});
    let shared = Arc::new(Shared {
        server: server.to_string(),
        entry: entry.clone(),
        inner: Mutex::new(Inner {
            share: Share::new(MAX_WAITING, client_info),
            leases: HashMap::new(),
            to_server: Some(to_server),
            closing: false,
        }),
        ended: watch::channel(false).0,
        emptied: Notify::new(),
    });
    tokio::spawn(super::upstream::write_lines(channel.to_server, lines));
    let (gone, why_gone) = oneshot::channel();
    let cap = gateway.limits.max_message_bytes;
    tokio::spawn(read_server(
        Arc::clone(&shared),
        channel.from_server,
        cap,
        gone,
    ));
    let running = Arc::clone(&gateway.running);
    let supervised = supervise(Arc::clone(gateway), Arc::clone(&shared), opened, why_gone);
    tokio::spawn(async move {
        let _running = running;
        supervised.await;
    });
    gateway.metrics.shared_server(true);
    crate::edge::log::info("gateway", "shared server started", &[("server", server)]);
    Ok(shared)
}

impl Shared {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new lease: the byte channel its proxy session talks to, and the session that ends when
    /// the server does. `None` once the server is stopping.
    fn lease(self: &Arc<Self>, gateway: &Gateway) -> Option<(Session, Channel)> {
        let mut inner = self.inner();
        if inner.closing {
            return None;
        }
        let lease = inner.share.attach();
        let (ours_in, proxy_reads) = tokio::io::duplex(super::upstream::PIPE_BYTES);
        let (proxy_writes, ours_out) = tokio::io::duplex(super::upstream::PIPE_BYTES);
        let (to_lease, lines) = mpsc::channel(QUEUE);
        inner.leases.insert(lease, to_lease);
        tokio::spawn(super::upstream::write_lines(ours_in, lines));
        let cap = gateway.limits.max_message_bytes;
        tokio::spawn(read_lease(Arc::clone(self), lease, ours_out, cap));
        let channel = Channel {
            from_server: Box::new(proxy_reads),
            to_server: Box::new(proxy_writes),
        };
        Some((Session::share(self.ended.subscribe()), channel))
    }

    /// Passes each message on. Nothing here waits: a full queue to the server stops it (it is
    /// not reading), and a full queue to a lease ends that lease (its proxy session is not).
    fn dispatch(&self, inner: &mut Inner, out: Vec<Out>) {
        for out in out {
            match out {
                Out::Server(message) => {
                    let Some(to_server) = &inner.to_server else {
                        continue;
                    };
                    if to_server.try_send(to_line(&message)).is_err() {
                        let text = "shared server stopped: it does not read what it is sent";
                        crate::edge::log::warn("gateway", text, &[("server", &self.server)]);
                        inner.to_server = None;
                    }
                }
                Out::Lease(lease, message) => {
                    let sent = inner
                        .leases
                        .get(&lease)
                        .map(|l| l.try_send(to_line(&message)));
                    if let Some(Err(_)) = sent {
                        let text = "a session of a shared server is not reading its server's messages: it ends";
                        crate::edge::log::warn("gateway", text, &[("server", &self.server)]);
                        inner.leases.remove(&lease);
                    }
                }
            }
        }
    }

    /// A lease's proxy session ended: what it left waiting is cancelled; the last one out stops
    /// the server.
    fn leave(&self, lease: Lease) {
        let mut inner = self.inner();
        let out = inner.share.detach(lease);
        inner.leases.remove(&lease);
        self.dispatch(&mut inner, out);
        if inner.share.is_empty() {
            inner.closing = true;
            self.emptied.notify_one();
        }
    }

    /// Stops taking leases and closes the server's input and every lease's channel.
    fn close(&self) {
        let mut inner = self.inner();
        inner.closing = true;
        inner.to_server = None;
        inner.leases.clear();
        self.ended.send_replace(true);
    }
}

fn to_line(message: &Value) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

/// What a lease's proxy session sends the server.
async fn read_lease(shared: Arc<Shared>, lease: Lease, pipe: tokio::io::DuplexStream, cap: usize) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    // The proxy writes only its own framed lines; anything else ends the lease.
    while let Ok(Frame::Line) = read_frame(&mut reader, &mut line, cap).await {
        let Ok(message) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        let mut inner = shared.inner();
        let out = inner.share.from_lease(lease, message);
        shared.dispatch(&mut inner, out);
    }
    shared.leave(lease);
}

/// What the server sends, until it ends; why it ended goes to `gone`.
async fn read_server(
    shared: Arc<Shared>,
    from: FromServer,
    cap: usize,
    gone: oneshot::Sender<String>,
) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    let why = loop {
        match read_frame(&mut reader, &mut line, cap).await {
            Ok(Frame::Line) => {}
            Ok(Frame::Eof) => break "its output ended".to_string(),
            Ok(Frame::Truncated) => break "its output ended in the middle of a message".into(),
            Ok(Frame::TooLong) => break format!("it sent a message over {cap} bytes"),
            Err(e) => break e.to_string(),
        }
        // A line that is not a JSON-RPC message is no sharer's (a stdio server's stray
        // output): each proxy session would have set it aside too.
        let Ok(message) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        let mut inner = shared.inner();
        let out = inner.share.from_server(message);
        shared.dispatch(&mut inner, out);
    };
    let _ = gone.send(why);
}

/// Owns the running server: stops it when the last lease leaves, when it exits or its output
/// ends, and then forgets it.
async fn supervise(
    gateway: Arc<Gateway>,
    shared: Arc<Shared>,
    mut opened: Session,
    gone: oneshot::Receiver<String>,
) {
    let why = tokio::select! {
        () = shared.emptied.notified() => None,
        () = opened.exited() => Some("its process exited".to_string()),
        why = gone => Some(why.unwrap_or_default()),
    };
    shared.close();
    gateway
        .shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|_, s| !Arc::ptr_eq(s, &shared));
    let closed = opened.close(crate::proxy::EXIT_GRACE).await;
    gateway.metrics.shared_server(false);
    let fields = [("server", shared.server.as_str())];
    match why {
        None => crate::edge::log::info(
            "gateway",
            "shared server stopped: its last session ended",
            &fields,
        ),
        Some(why) => {
            let details = closed.details().join("; ");
            let text = format!("shared server went away: {why}; {details}; its sessions end");
            crate::edge::log::warn("gateway", &text, &fields);
        }
    }
}
