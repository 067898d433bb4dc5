//! A JSON-RPC connection with a real demultiplexer.
//!
//! One reader task owns the server's output. Every frame is checked strictly and classified
//! (a response's result stays text until its requester builds it, see [`Payload`]):
//! responses are matched to their request by id, the list_changed notifications of the listed
//! kinds are recorded (others counted and dropped, so a chatty server cannot grow what is held),
//! requests from the server are answered on the spot. Anything that breaks the protocol (non-JSON output, an
//! oversize frame, a response to an id we never sent, a second response to the same id) is a
//! fault: it fails every waiting request and every later one, so nothing partial is ever taken
//! for complete.

use crate::core::jsonrpc::{
    Id, Incoming, Payload, RpcError, classify_text, encode_notification, encode_request,
    encode_response,
};
use crate::core::snapshot::ItemKind;
pub use crate::transport::channel::{
    ConnError, Limits, MAX_SKIPPED_BYTES, MAX_SKIPPED_LINES, Message, MessageReader, ReadStats,
    Skipped, is_human_line,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Tolerated oddities kept for the report.
const MAX_ANOMALIES: usize = 100;
/// Why one request did not produce a result.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    #[error("{method}: no answer within {}s (raise --timeout if the server is slow)", .after.as_secs_f64())]
    Timeout { method: String, after: Duration },
    #[error("{method}: the server answered with {error}")]
    Rpc { method: String, error: RpcError },
    #[error("{method}: {error}")]
    Conn { method: String, error: ConnError },
}

/// How requests from the peer are answered: the role's policy, injected (a scanning client
/// answers `ping` and `roots/list` itself; a proxy would forward them).
pub type Answers = Arc<dyn Fn(&str) -> Result<Value, RpcError> + Send + Sync>;

#[derive(Default)]
struct Shared {
    pending: HashMap<Id, oneshot::Sender<Result<Payload, RpcError>>>,
    answered: HashSet<Id>,
    abandoned: HashSet<Id>,
    /// The sequence number of the latest `notifications/{tools,prompts,resources}/list_changed`.
    list_changed: HashMap<String, u64>,
    notification_seq: u64,
    server_requests: u64,
    anomalies: Vec<String>,
    fault: Option<ConnError>,
}

impl Shared {
    fn note(&mut self, anomaly: String) {
        if self.anomalies.len() < MAX_ANOMALIES {
            self.anomalies.push(anomaly);
        }
    }

    fn fail(&mut self, fault: ConnError) {
        if self.fault.is_none() {
            self.fault = Some(fault);
        }
        // Dropping the senders wakes every waiter; they then read `fault`.
        self.pending.clear();
    }
}

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A JSON-RPC 2.0 connection over a byte stream pair.
pub struct Connection {
    writer: Arc<tokio::sync::Mutex<Option<Writer>>>,
    shared: Arc<Mutex<Shared>>,
    /// What the reader has read (bytes, skipped lines).
    stats: Arc<Mutex<ReadStats>>,
    next_id: AtomicI64,
    reader: JoinHandle<()>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave `Shared` half-updated in a way that matters
    // more than losing the connection; keep going rather than propagate the poison.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Connection {
    /// Starts the demultiplexer over the server's output (`reader`) and input (`writer`);
    /// requests the server sends are answered by `answers`.
    pub fn new<R, W>(reader: R, writer: W, limits: Limits, answers: Answers) -> Connection
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let writer: Arc<tokio::sync::Mutex<Option<Writer>>> =
            Arc::new(tokio::sync::Mutex::new(Some(Box::new(writer))));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let messages = MessageReader::new(reader, limits);
        let stats = messages.stats();
        let reader = tokio::spawn(read_loop(
            messages,
            Arc::clone(&writer),
            Arc::clone(&shared),
            answers,
        ));
        Connection {
            writer,
            shared,
            stats,
            next_id: AtomicI64::new(1),
            reader,
        }
    }

    /// Sends a request and waits up to `timeout` for its response.
    pub async fn request(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, RequestError> {
        let payload = self.request_text(method, params, timeout).await?;
        // The message was checked strictly as it was read: building its result cannot fail.
        payload.parse().map_err(|e| RequestError::Conn {
            method: method.into(),
            error: ConnError::NotJson {
                detail: e.message().to_owned(),
                snippet: String::new(),
            },
        })
    }

    /// Like [`Connection::request`], with the result left as its text, for a caller that
    /// reads it in parts.
    pub async fn request_text(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Payload, RequestError> {
        let id = Id::Number(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        {
            let mut shared = lock(&self.shared);
            if let Some(fault) = &shared.fault {
                return Err(RequestError::Conn {
                    method: method.into(),
                    error: fault.clone(),
                });
            }
            shared.pending.insert(id.clone(), tx);
        }
        let line = encode_request(&id, method, params);
        let exchange = async {
            write_line(&self.writer, &line).await?;
            rx.await.map_err(|_| self.fault())
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(Ok(result))) => Ok(result),
            // An error the transport under us wrote for this request (an HTTP failure) is
            // reported as the transport's, not as the server's answer.
            Ok(Ok(Err(error))) if is_transport_error(&error) => Err(RequestError::Conn {
                method: method.into(),
                error: ConnError::Transport(error.message),
            }),
            Ok(Ok(Err(error))) => Err(RequestError::Rpc {
                method: method.into(),
                error,
            }),
            Ok(Err(error)) => {
                lock(&self.shared).pending.remove(&id);
                Err(RequestError::Conn {
                    method: method.into(),
                    error,
                })
            }
            Err(_) => {
                let mut shared = lock(&self.shared);
                shared.pending.remove(&id);
                shared.abandoned.insert(id);
                Err(RequestError::Timeout {
                    method: method.into(),
                    after: timeout,
                })
            }
        }
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), ConnError> {
        if let Some(fault) = lock(&self.shared).fault.clone() {
            return Err(fault);
        }
        write_line(&self.writer, &encode_notification(method, params)).await
    }

    /// The fault that ended the connection, if any.
    pub fn fault_if_any(&self) -> Option<ConnError> {
        lock(&self.shared).fault.clone()
    }

    fn fault(&self) -> ConnError {
        self.fault_if_any().unwrap_or(ConnError::Closed)
    }

    /// The sequence number of the latest notification received (0 when none).
    pub fn notification_seq(&self) -> u64 {
        lock(&self.shared).notification_seq
    }

    /// Whether the server sent notification `method` (a `*/list_changed`) after sequence
    /// number `seq`.
    pub fn changed_since(&self, method: &str, seq: u64) -> bool {
        lock(&self.shared)
            .list_changed
            .get(method)
            .is_some_and(|last| *last > seq)
    }

    /// Bytes the server has sent so far, every frame counted.
    pub fn received_bytes(&self) -> u64 {
        self.stats().received_bytes
    }

    fn stats(&self) -> ReadStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many requests the server sent us (each was answered).
    pub fn server_requests(&self) -> u64 {
        lock(&self.shared).server_requests
    }

    /// Non-JSON lines the server wrote that were skipped.
    pub fn skipped(&self) -> Skipped {
        self.stats().skipped
    }

    /// Oddities that were tolerated (for example an error response with `id: null`).
    pub fn anomalies(&self) -> Vec<String> {
        lock(&self.shared).anomalies.clone()
    }

    /// Waits up to `limit` for the server's output to end, then returns the fault that ended
    /// the connection if it was anything but a clean close. Called after the server was asked
    /// to stop, so a protocol violation it committed after its last answer (a duplicate
    /// response, trailing garbage) is still caught.
    pub async fn drain(&mut self, limit: Duration) -> Option<ConnError> {
        let _ = tokio::time::timeout(limit, &mut self.reader).await;
        self.fault_if_any().filter(|f| *f != ConnError::Closed)
    }

    /// Closes our side of the stream (the server sees end of input).
    pub async fn close_input(&self) {
        self.input().close().await;
    }

    /// A handle that can close the server's input from elsewhere (a signal handler) without
    /// keeping the connection alive.
    pub fn input(&self) -> Input {
        Input(Arc::downgrade(&self.writer))
    }
}

/// See [`Connection::input`].
#[derive(Clone)]
pub struct Input(std::sync::Weak<tokio::sync::Mutex<Option<Writer>>>);

impl Input {
    /// Closes the server's input, if the connection still exists (best effort: the server may
    /// already be gone).
    pub async fn close(&self) {
        let Some(writer) = self.0.upgrade() else {
            return;
        };
        if let Some(mut writer) = writer.lock().await.take() {
            let _ = writer.shutdown().await;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn write_line(
    writer: &tokio::sync::Mutex<Option<Writer>>,
    line: &[u8],
) -> Result<(), ConnError> {
    let mut guard = writer.lock().await;
    let Some(w) = guard.as_mut() else {
        return Err(ConnError::Write(
            "input to the server is already closed".into(),
        ));
    };
    let result = async {
        w.write_all(line).await?;
        w.flush().await
    }
    .await;
    result.map_err(|e| ConnError::Write(e.to_string()))
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: MessageReader<R>,
    writer: Arc<tokio::sync::Mutex<Option<Writer>>>,
    shared: Arc<Mutex<Shared>>,
    answers: Answers,
) {
    let fault = loop {
        let message = match reader.next_text().await {
            Ok(message) => message,
            Err(fault) => break fault,
        };
        let incoming = match classify_text(message) {
            Ok(incoming) => incoming,
            Err(e) => break ConnError::Protocol(e.to_string()),
        };
        if let Err(fault) = dispatch(incoming, &writer, &shared, &answers).await {
            break fault;
        }
    };
    lock(&shared).fail(fault);
}

async fn dispatch(
    incoming: Incoming<Payload>,
    writer: &tokio::sync::Mutex<Option<Writer>>,
    shared: &Mutex<Shared>,
    answers: &Answers,
) -> Result<(), ConnError> {
    match incoming {
        Incoming::Response { id, outcome } => {
            let mut s = lock(shared);
            if let Some(waiter) = s.pending.remove(&id) {
                s.answered.insert(id);
                // The waiter may have given up in the meantime; nothing to do then.
                let _ = waiter.send(outcome);
            } else if s.abandoned.remove(&id) {
                s.answered.insert(id.clone());
                s.note(format!(
                    "late answer to request {id}, which had already timed out (ignored)"
                ));
            } else if s.answered.contains(&id) {
                return Err(ConnError::Protocol(format!(
                    "the server answered request {id} twice"
                )));
            } else {
                return Err(ConnError::Protocol(format!(
                    "the server answered request {id}, which mcplock never sent"
                )));
            }
        }
        Incoming::UnmatchedError(error) => {
            lock(shared).note(format!("error response without an id (ignored): {error}"));
        }
        Incoming::Notification { method, .. } => {
            let mut s = lock(shared);
            s.notification_seq += 1;
            let seq = s.notification_seq;
            // Only the list_changed notifications of the kinds MCP lists are kept (at most
            // three methods): whatever else a server sends cannot grow what is held, nor crowd
            // out the one that matters.
            let tracked = ItemKind::ALL
                .iter()
                .any(|k| k.list_changed_notification() == method);
            if tracked {
                s.list_changed.insert(method, seq);
            }
        }
        Incoming::Request { id, method, .. } => {
            lock(shared).server_requests += 1;
            let answer = encode_response(&id, answers(&method));
            // Once we have closed the server's input (the scan is over) a request can no longer
            // be answered; that is the server's business, not a violation.
            if let Err(e) = write_line(writer, &answer).await {
                lock(shared).note(format!("could not answer the server's {method}: {e}"));
            }
        }
    }
    Ok(())
}

/// JSON-RPC error code for a request the transport could not complete (the same code the proxy
/// uses when it cannot relay).
pub const TRANSPORT_ERROR: i64 = -32011;

/// Marks the errors a transport writes itself for a request it could not complete
/// (`error.data.source`), so a client tells them from the server's own answers.
pub const TRANSPORT_MARK: &str = "mcplock-http-transport";

/// True for an error the bridge wrote for a request it could not complete.
pub fn is_transport_error(error: &crate::core::jsonrpc::RpcError) -> bool {
    error.code == TRANSPORT_ERROR
        && error
            .data
            .as_ref()
            .and_then(|d| d.get("source"))
            .and_then(Value::as_str)
            == Some(TRANSPORT_MARK)
}

impl crate::core::code::Coded for RequestError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::ServerFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream, duplex};

    const T: Duration = Duration::from_secs(5);

    /// A scripted peer: reads our lines, lets the test write raw bytes back.
    struct Peer {
        lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<DuplexStream>>>,
        out: tokio::io::WriteHalf<DuplexStream>,
    }

    impl Peer {
        async fn next(&mut self) -> Value {
            let line = self.lines.next_line().await.unwrap().unwrap();
            serde_json::from_str(&line).unwrap()
        }
        async fn send(&mut self, bytes: &[u8]) {
            self.out.write_all(bytes).await.unwrap();
        }
    }

    fn pair(cap: usize) -> (Connection, Peer) {
        pair_with(Limits {
            max_message_bytes: cap,
            strict_stdout: false,
        })
    }

    fn pair_with(limits: Limits) -> (Connection, Peer) {
        let (ours, theirs) = duplex(1 << 20);
        let (our_read, our_write) = tokio::io::split(ours);
        let (their_read, their_write) = tokio::io::split(theirs);
        // The role's answers are injected; this one answers ping and refuses the rest.
        let answers: Answers = Arc::new(|method: &str| match method {
            "ping" => Ok(json!({})),
            _ => Err(RpcError {
                code: -32601,
                message: "no".into(),
                data: None,
            }),
        });
        let conn = Connection::new(our_read, our_write, limits, answers);
        let peer = Peer {
            lines: BufReader::new(their_read).lines(),
            out: their_write,
        };
        (conn, peer)
    }

    #[tokio::test]
    async fn matches_responses_by_id_past_notifications_and_server_requests() {
        let (conn, mut peer) = pair(1 << 16);
        let server = tokio::spawn(async move {
            let req = peer.next().await;
            let id = req["id"].clone();
            peer.send(
                b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n",
            )
            .await;
            peer.send(b"{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"ping\"}\n")
                .await;
            let pong = peer.next().await;
            assert_eq!(pong, json!({"jsonrpc":"2.0","id":"s1","result":{}}));
            peer.send(
                b"{\"jsonrpc\":\"2.0\",\"id\":\"s2\",\"method\":\"sampling/createMessage\"}\n",
            )
            .await;
            let refused = peer.next().await;
            assert_eq!(refused["error"]["code"], json!(-32601));
            let answer = json!({"jsonrpc":"2.0","id":id,"result":{"ok":true}});
            peer.send(format!("{answer}\n").as_bytes()).await;
            peer
        });
        let result = conn.request("tools/list", None, T).await.unwrap();
        assert_eq!(result, json!({"ok": true}));
        assert_eq!(conn.notification_seq(), 1);
        assert_eq!(conn.server_requests(), 2);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn unknown_and_duplicate_ids_are_faults() {
        let (conn, mut peer) = pair(1 << 16);
        tokio::spawn(async move {
            let req = peer.next().await;
            let answer = json!({"jsonrpc":"2.0","id":req["id"],"result":{}});
            peer.send(format!("{answer}\n{answer}\n").as_bytes()).await;
            let _ = peer.next().await;
        });
        conn.request("a", None, T).await.unwrap();
        let err = conn.request("b", None, T).await.unwrap_err();
        assert!(
            err.to_string().contains("answered request 1 twice"),
            "{err}"
        );

        let (conn, mut peer) = pair(1 << 16);
        tokio::spawn(async move {
            let _ = peer.next().await;
            peer.send(b"{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}\n")
                .await;
        });
        let err = conn.request("a", None, T).await.unwrap_err();
        assert!(err.to_string().contains("never sent"), "{err}");
    }

    #[tokio::test]
    async fn null_id_errors_are_tolerated_and_noted() {
        let (conn, mut peer) = pair(1 << 16);
        tokio::spawn(async move {
            let req = peer.next().await;
            peer.send(b"{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"no\"}}\n").await;
            let answer = json!({"jsonrpc":"2.0","id":req["id"],"result":{}});
            peer.send(format!("{answer}\n").as_bytes()).await;
            let _ = peer.next().await;
        });
        conn.request("a", None, T).await.unwrap();
        assert_eq!(conn.anomalies().len(), 1);
    }

    #[tokio::test]
    async fn hostile_frames_fail_the_waiting_request() {
        for (bytes, expect) in [
            (&b"not json\n"[..], "not valid JSON-RPC"),
            (
                &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xff\"}\n"[..],
                "UTF-8",
            ),
            (
                &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\\udc00\"}\n"[..],
                "surrogate",
            ),
            (
                &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":1,\"a\":2}}\n"[..],
                "duplicate",
            ),
            (&[b'x'; 200][..], "cap"),
            (&b"{\"jsonrpc\":\"2.0\""[..], "middle of a message"),
        ] {
            let (conn, mut peer) = pair_with(Limits {
                max_message_bytes: 100,
                strict_stdout: true,
            });
            let owned = bytes.to_vec();
            tokio::spawn(async move {
                let _ = peer.next().await;
                peer.send(&owned).await;
                drop(peer);
            });
            let err = conn.request("tools/list", None, T).await.unwrap_err();
            assert!(err.to_string().contains(expect), "{expect}: {err}");
        }
    }

    #[tokio::test]
    async fn human_lines_are_skipped_and_counted_but_broken_messages_are_not() {
        let (conn, mut peer) = pair(1 << 16);
        tokio::spawn(async move {
            let req = peer.next().await;
            peer.send(b"Server running on stdio\n[INFO] ready \x1b[31m\n")
                .await;
            let answer = json!({"jsonrpc":"2.0","id":req["id"],"result":{"ok":1}});
            peer.send(format!("{answer}\n").as_bytes()).await;
            let _ = peer.next().await;
        });
        assert_eq!(conn.request("a", None, T).await.unwrap(), json!({"ok": 1}));
        let skipped = conn.skipped();
        assert_eq!((skipped.lines, skipped.bytes), (2, 24 + 19));
        assert_eq!(skipped.samples[0], "Server running on stdio");
        assert_eq!(skipped.samples[1], "[INFO] ready \\e[31m");

        for (bytes, expect) in [
            (&b"{\"jsonrpc\": oops}\n"[..], "not valid JSON-RPC"),
            (&b"  {not json\n"[..], "not valid JSON-RPC"),
            (&b"caf\xe9 banner\n"[..], "UTF-8"),
            (&b"42\n"[..], "protocol violation"),
        ] {
            let (conn, mut peer) = pair(1 << 16);
            let owned = bytes.to_vec();
            tokio::spawn(async move {
                let _ = peer.next().await;
                peer.send(&owned).await;
                let _ = peer.next().await;
            });
            let err = conn.request("a", None, T).await.unwrap_err();
            assert!(err.to_string().contains(expect), "{expect}: {err}");
            assert_eq!(conn.skipped().lines, 0);
        }
    }

    #[tokio::test]
    async fn the_noise_budget_is_bounded() {
        for (lines, line) in [
            (MAX_SKIPPED_LINES + 1, b"log\n".to_vec()),
            (2, vec![b'x'; MAX_SKIPPED_BYTES as usize]),
        ] {
            let (conn, mut peer) = pair(1 << 20);
            tokio::spawn(async move {
                let _ = peer.next().await;
                for _ in 0..lines {
                    let mut l = line.clone();
                    if l.last() != Some(&b'\n') {
                        l.push(b'\n');
                    }
                    peer.send(&l).await;
                }
                let _ = peer.next().await;
            });
            let err = conn.request("a", None, T).await.unwrap_err();
            assert!(err.to_string().contains("non-JSON text"), "{err}");
        }
    }

    #[tokio::test]
    async fn only_list_changed_notifications_are_kept() {
        let (conn, mut peer) = pair(1 << 16);
        tokio::spawn(async move {
            let req = peer.next().await;
            let mut burst = Vec::new();
            for i in 0..5_000 {
                burst.extend_from_slice(format!("{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"i\":{i}}}}}\n").as_bytes());
            }
            for i in 0..40 {
                burst.extend_from_slice(
                    format!("{{\"jsonrpc\":\"2.0\",\"method\":\"x/{i}/list_changed\"}}\n")
                        .as_bytes(),
                );
            }
            burst.extend_from_slice(
                b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n",
            );
            peer.send(&burst).await;
            let answer = json!({"jsonrpc":"2.0","id":req["id"],"result":{}});
            peer.send(format!("{answer}\n").as_bytes()).await;
            let _ = peer.next().await;
        });
        conn.request("a", None, T).await.unwrap();
        assert_eq!(conn.notification_seq(), 5_041);
        assert!(conn.changed_since("notifications/tools/list_changed", 5_040));
        assert!(!conn.changed_since("notifications/tools/list_changed", 5_041));
        assert!(!conn.changed_since("notifications/message", 0));
        let shared = lock(&conn.shared);
        assert_eq!(shared.list_changed.len(), 1);
        drop(shared);
        assert!(conn.received_bytes() > 5_000 * 60);
    }

    #[tokio::test]
    async fn strict_stdout_refuses_a_banner() {
        let (conn, mut peer) = pair_with(Limits {
            max_message_bytes: 1 << 16,
            strict_stdout: true,
        });
        tokio::spawn(async move {
            let _ = peer.next().await;
            peer.send(b"Server running on stdio\n").await;
            let _ = peer.next().await;
        });
        let err = conn.request("a", None, T).await.unwrap_err();
        assert!(err.to_string().contains("Server running on stdio"), "{err}");
    }

    #[tokio::test]
    async fn timeouts_abandon_the_id_and_late_answers_are_ignored() {
        let (conn, mut peer) = pair(1 << 16);
        let server = tokio::spawn(async move {
            let first = peer.next().await;
            let second = peer.next().await;
            for req in [first, second] {
                let answer = json!({"jsonrpc":"2.0","id":req["id"],"result":{"id":req["id"]}});
                peer.send(format!("{answer}\n").as_bytes()).await;
            }
            peer
        });
        let err = conn
            .request("slow", None, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Timeout { .. }));
        let ok = conn.request("fast", None, T).await.unwrap();
        assert_eq!(ok, json!({"id": 2}));
        let _peer = server.await.unwrap();
        assert!(conn.anomalies()[0].contains("timed out"));
    }
}
