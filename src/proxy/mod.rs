//! The runtime proxy's loop: frames move between the host (our stdin/stdout) and the server
//! (its pipes); every decision is taken by `core::enforce`, `core::methods` and `core::relay`,
//! and recorded in the audit log. Nothing here kills the session on one bad line: it is
//! dropped, answered with an error when a request is waiting, and audited. Nothing here waits
//! on a peer either: what goes to each side is queued and written by a pump of its own
//! ([`outbox`]), so the loop always reads both sides.

mod audit;
mod host;
pub mod outbox;
mod server;

pub use crate::core::audit::Decision;
use crate::core::audit::{Entry, Payload};
use crate::core::canonical::Digest;
use crate::core::enforce::{Locked, OnDrift, Session};
use crate::core::inspect;
use crate::core::jsonrpc::Id;
use crate::core::methods::Speaking;
use crate::core::relay::{Origin, Relay};
use crate::core::snapshot::ItemKind;
use crate::transport::channel::{ConnError, Limits, Message, MessageReader};
pub use audit::{Audit, AuditLog, Seal, Sign};
use outbox::{Outbox, Side, Stalled, outbox, pump};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// Requests waiting for an answer, both ways, at most.
pub const MAX_PENDING: usize = 4_096;
/// Pages the proxy follows when it re-lists on its own after `list_changed`; past it, nothing
/// of that kind may be called until the host lists again.
pub const MAX_RELIST_PAGES: usize = 64;
/// Host calls held while a re-listing of their kind is out, at most; past it a call is judged
/// at once (and denied as not listed).
pub const MAX_PARKED: usize = 256;
/// JSON-RPC error code for a request the proxy cannot relay (the table is full, the server is
/// gone).
pub const UNAVAILABLE: i64 = -32011;
/// Bytes written to one side and not yet read by it, at most (besides one frame of any size).
pub const QUEUE_BYTES: usize = 64 << 20;
/// How long one write to a side may wait for it to read, by default.
pub const STALL: Duration = Duration::from_secs(30);
/// How long the proxy waits for the rest of a server's output once its process has exited
/// (helpers it started may hold its stdout open).
pub const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How the proxy is set up.
pub struct Options {
    pub server_name: String,
    pub limits: Limits,
    /// Forward the server's requests (sampling, elicitation, roots) to the host.
    pub allow_server_requests: bool,
    /// Methods outside the protocol that may pass (`--allow-method`): a host request of one is
    /// forwarded and audited, a notification of one passes either way.
    pub allow_methods: BTreeSet<String>,
    /// What happens to what differs from the lock.
    pub on_drift: OnDrift,
    /// What happens to a result that holds findings.
    pub on_response: inspect::OnResponse,
    /// The revocation list to honour, looked at before every host message.
    pub revocations: Option<Box<RevocationPoll>>,
    /// The `on: call` policy rules every `tools/call` must pass: (tool, arguments) to verdict.
    pub call_policy: Option<Box<CallPolicy>>,
    /// How long a write to either side may wait for it to read before the session ends.
    pub stall: Duration,
    /// The command that shows the user what drifted (`mcplock diff ...`), named on stderr
    /// with every item withheld and every call denied for drift.
    pub review: Option<String>,
    /// Told of every decision the session records, audited or not (the gateway's metrics).
    pub observer: Option<std::sync::Arc<Observer>>,
    /// Named with every line the session writes on stderr (a gateway's session: its agent
    /// and id).
    pub log_fields: Vec<(&'static str, String)>,
}

/// Hears of each decision: what was decided about which method, and the reason's code.
pub type Observer = dyn Fn(&Decided<'_>) + Send + Sync;

/// One decision as an observer hears of it.
pub struct Decided<'a> {
    pub method: &'a str,
    pub decision: Decision,
    pub reason: Option<&'a str>,
}

impl Options {
    /// The defaults for a server named `server_name` read under `limits`.
    pub fn new(server_name: &str, limits: Limits) -> Options {
        Options {
            server_name: server_name.to_string(),
            limits,
            allow_server_requests: false,
            allow_methods: BTreeSet::new(),
            on_drift: OnDrift::default(),
            on_response: inspect::OnResponse::Warn,
            revocations: None,
            call_policy: None,
            stall: STALL,
            review: None,
            observer: None,
            log_fields: Vec::new(),
        }
    }
}

/// Starts judging one `tools/call` by the call rules: (tool, arguments) to the verdict to come.
/// The session does not wait for it: the call waits, the rest of the session goes on.
pub type CallPolicy = dyn Fn(&str, &Value) -> Judgement + Send + Sync;

/// A verdict of the call rules and the limits, to come.
pub type Judgement = std::pin::Pin<Box<dyn std::future::Future<Output = Judged> + Send>>;

/// What the call rules and the limits concluded about one call.
pub struct Judged {
    pub verdict: crate::core::policy::CallVerdict,
    /// The call's place in the limits' budgets, held while it is out (dropping it frees it).
    pub permit: Option<Permit>,
}

/// Held while an admitted call is out; dropped when it is answered, cancelled or the session
/// ends.
pub type Permit = Box<dyn Send + Sync>;

/// Calls being judged by the call rules at once; more are refused as busy.
const MAX_JUDGING: usize = 64;

/// What looking at the revocation list found.
#[derive(Clone)]
pub enum Poll {
    Unchanged,
    /// It changed (or was read for the first time): the list now.
    Changed(crate::core::revocation::Revocations),
    /// It changed, but is refused (older than the list accepted last, or gone): `list`, the
    /// one accepted last, stays in force, and `why` is said.
    Kept {
        list: crate::core::revocation::Revocations,
        why: String,
    },
    /// It cannot be trusted (unreadable, unsigned, wrongly signed, older than one accepted):
    /// everything is denied until it can.
    Unreadable(String),
}

/// Looks at the revocation list; called before every host message, so it must be cheap when
/// nothing changed (a `stat`).
pub type RevocationPoll = dyn Fn() -> Poll + Send + Sync;

/// How the session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The host closed its input (or stopped reading its output).
    HostClosed,
    /// The server closed its output (it exited or crashed), or stopped reading its input.
    ServerClosed(String),
}

/// What the proxy sent on to the server for a host request, when the answer needs checking.
#[derive(Clone)]
enum Expect {
    List {
        kind: ItemKind,
        first_page: bool,
    },
    Hello,
    /// A page of the proxy's own re-listing after `list_changed`: what matched the lock so
    /// far, and how many pages were asked for.
    Relist {
        kind: ItemKind,
        scratch: Session,
        pages: usize,
    },
    /// A forwarded call, audited when its answer comes back.
    Call {
        method: String,
        item: String,
        locked: Option<Digest>,
        request: Option<Digest>,
        /// The request's `params`, when the log records payloads.
        params: Option<Value>,
    },
}

/// A re-listing of one kind under way: what the host had been shown when the first
/// `list_changed` came, and whether another came since (then one more re-listing follows this
/// one; any number of announcements make at most one more).
struct Relisting {
    shown: BTreeSet<String>,
    again: bool,
}

/// One audit line before it is chained.
struct Record {
    method: String,
    item: Option<String>,
    decision: Decision,
    reason: Option<String>,
    digests: (Option<Digest>, Option<Digest>),
    exchanged: (Option<Digest>, Option<Digest>),
    payload: Option<Payload>,
}

impl Record {
    fn new(method: &str, decision: Decision) -> Record {
        Record {
            method: method.to_string(),
            item: None,
            decision,
            reason: None,
            digests: (None, None),
            exchanged: (None, None),
            payload: None,
        }
    }
    fn note(method: &str, reason: impl Into<String>) -> Record {
        Record::new(method, Decision::Note).reason(reason)
    }
    fn item(mut self, item: Option<String>) -> Record {
        self.item = item;
        self
    }
    fn reason(mut self, reason: impl Into<String>) -> Record {
        self.reason = Some(reason.into());
        self
    }
    fn digests(mut self, digests: (Option<Digest>, Option<Digest>)) -> Record {
        self.digests = digests;
        self
    }
    fn exchanged(mut self, exchanged: (Option<Digest>, Option<Digest>)) -> Record {
        self.exchanged = exchanged;
        self
    }
    fn payload(mut self, payload: Option<Payload>) -> Record {
        self.payload = payload;
        self
    }
}

/// What a handler leaves the loop to do.
enum Next {
    Go,
    End(End),
}

type Flow = Result<Next, Stalled>;

fn line(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn error_line(id: &Value, code: i64, message: String, data: Option<Value>) -> Vec<u8> {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    line(&json!({"jsonrpc": "2.0", "id": id, "error": error}))
}

/// One session's state: everything the loop decides with. Its handlers never wait.
struct Proxy<'a, A> {
    locked: &'a Locked<'a>,
    options: &'a Options,
    audit: Option<Audit<A>>,
    session: Session,
    relay: Relay,
    expect: HashMap<Id, Expect>,
    /// Per `list_changed` method, the notification held back until every kind it concerns has
    /// been re-checked, and how many re-listings are still out.
    held: HashMap<String, (Map<String, Value>, usize)>,
    relisting: BTreeMap<ItemKind, Relisting>,
    /// Host calls that arrived while a re-listing of their kind was out: they wait for its
    /// verdict instead of being denied as not listed, and are read again (in order) when it
    /// comes, from `replay` before anything new from the host.
    parked: Vec<(&'static str, Message)>,
    replay: mpsc::UnboundedSender<Message>,
    /// Calls the call rules are judging: each comes back on `judged` with its verdict, and is
    /// read again (through the lock again) with it.
    judging: usize,
    judged: mpsc::UnboundedSender<(Message, Judged)>,
    /// The verdict for the call being read again, by its bytes.
    verdict: Option<(Vec<u8>, Judged)>,
    /// The permits of admitted calls still out, by the id they were sent on.
    permits: HashMap<Id, Permit>,
    own_ids: i64,
    /// The host's latest per-request `_meta` (without its progress token), for the proxy's own
    /// requests to a stateless server.
    host_meta: Option<Value>,
    /// The protocol version `initialize` settled on.
    negotiated: Option<String>,
    /// Why the session is blocked (the server's self-description differs from the lock):
    /// every later request is denied with it.
    blocked: Option<String>,
    to_host: Outbox,
    to_server: Outbox,
    /// The finding codes of the last response screened, for its refusal.
    last_codes: Vec<String>,
    /// What stderr already said about withheld items (kind, key, served digest): each once.
    told: BTreeSet<(ItemKind, String, Option<Digest>)>,
    /// The server declared `logging`: the host takes `notifications/message`, and hears of
    /// what is withheld that way too.
    host_logging: bool,
}

/// Withheld items named on stderr one by one, at most; then one line says more were withheld.
const MAX_TOLD: usize = 1_000;

impl<A: std::io::Write> Proxy<'_, A> {
    fn audit_on(&self) -> bool {
        self.audit.is_some()
    }

    fn payloads(&self) -> bool {
        self.audit
            .as_ref()
            .is_some_and(|a| a.lock().chain.records_payloads())
    }

    fn call_payload(&self, params: Option<&Value>, response: Option<Value>) -> Option<Payload> {
        self.payloads().then(|| Payload {
            request: params.cloned(),
            response,
        })
    }

    /// How an item that differs from the lock is recorded: withheld, denied (its whole list
    /// blocked) or let through with a warning.
    fn drift_decision(&self) -> Decision {
        crate::core::enforce::verdict::drift_decision(self.options.on_drift)
    }

    /// The protocol a message is judged by: the negotiated version, else the one a stateless
    /// request names in its `_meta`, else any.
    fn speaking<'m>(&'m self, params: Option<&'m Value>) -> Speaking<'m> {
        if let Some(version) = &self.negotiated {
            return Speaking::Version(version);
        }
        params
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
            .and_then(Value::as_str)
            .map_or(Speaking::Unknown, Speaking::Version)
    }

    /// A notification outside the protocol (or a request method sent without an id) is
    /// dropped and audited: `true`.
    fn drops_notification(
        &mut self,
        from: crate::core::methods::From,
        method: &str,
        params: Option<&Value>,
        digest: Option<Digest>,
    ) -> bool {
        use crate::core::methods::{self, From, Shape};
        let known = methods::is_known(self.speaking(params), from, Shape::Notification, method)
            || self.options.allow_methods.contains(method);
        if known {
            return false;
        }
        let why = if methods::is_request_method(method) {
            "dropped: a request method sent as a notification (no id)"
        } else {
            "dropped: not a notification of the protocol this session speaks"
        };
        let exchanged = match from {
            From::Host => (digest, None),
            From::Server => (None, digest),
        };
        self.log(
            Record::new(method, Decision::Deny)
                .reason(why)
                .exchanged(exchanged),
        );
        true
    }

    /// Writes a signed checkpoint, when the log is sealed and the session marks its own.
    fn checkpoint(&mut self, mark: crate::core::audit::Mark) {
        if let Some(a) = self.audit.as_ref().filter(|a| a.checkpoints) {
            a.lock().checkpoint(mark, &self.options.server_name);
        }
    }

    /// A line on stderr about this session.
    fn warn(&self, text: &str) {
        let fields: Vec<(&str, &str)> = self
            .options
            .log_fields
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        crate::edge::log::warn("proxy", text, &fields);
    }

    fn log(&mut self, record: Record) {
        if let Some(observer) = &self.options.observer {
            observer(&Decided {
                method: &record.method,
                decision: record.decision,
                reason: record.reason.as_deref(),
            });
        }
        let Some(a) = self.audit.as_ref() else {
            return;
        };
        // Nothing the log records may hold a secret, whatever the server echoed.
        let clean = |text: String| crate::edge::secrets::redact(&text).into_owned();
        let payload = record.payload.map(|mut p| {
            for value in [&mut p.request, &mut p.response].into_iter().flatten() {
                crate::edge::secrets::redact_json(value);
            }
            p
        });
        let mut log = a.lock();
        let entry = Entry {
            time: (log.clock)(),
            server: self.options.server_name.clone(),
            method: clean(record.method),
            item: record.item.map(clean),
            locked: record.digests.0,
            served: record.digests.1,
            decision: record.decision,
            reason: record.reason.map(clean),
            request: record.exchanged.0,
            response: record.exchanged.1,
            payload,
            who: a.who.clone(),
        };
        log.append(&entry);
    }

    /// Queues a frame for the host, cleaned of every secret the proxy knows (a token the
    /// server echoes in a result or an error never reaches the model).
    fn to_host(&self, frame: Vec<u8>) -> Result<(), Stalled> {
        if !crate::edge::secrets::contains_secret(&frame) {
            return self.to_host.push(frame);
        }
        let mut value: Value = serde_json::from_slice(&frame).unwrap_or(Value::Null);
        crate::edge::secrets::redact_json(&mut value);
        self.to_host.push(line(&value))
    }

    fn to_server(&self, frame: Vec<u8>) -> Result<(), Stalled> {
        self.to_server.push(frame)
    }

    /// Answers the host's request `id` with an error.
    fn answer_host(
        &self,
        id: &Value,
        code: i64,
        message: String,
        data: Option<Value>,
    ) -> Result<(), Stalled> {
        self.to_host(error_line(id, code, message, data))
    }

    /// The server is gone (or can no longer be written to): every request still waiting is
    /// answered, and the session ends.
    fn server_gone(&mut self, why: String) -> Flow {
        self.log(Record::note("(server)", why.clone()));
        for waiting in self.relay.drain() {
            if waiting.origin == Origin::Host {
                // The host may have stopped reading too: nothing more can be done then.
                let _ =
                    self.answer_host(&waiting.original.to_value(), UNAVAILABLE, why.clone(), None);
            }
        }
        Ok(Next::End(End::ServerClosed(why)))
    }

    /// Asks the server for one page of `kind` on the proxy's own account (its own id space,
    /// never a host's). `None` when the relay table is full.
    fn ask_page(&mut self, kind: ItemKind, cursor: Option<&Value>) -> Result<Option<Id>, Stalled> {
        self.own_ids += 1;
        let Ok(sent) = self
            .relay
            .send(Origin::Proxy, Id::Number(self.own_ids), kind.list_method())
        else {
            return Ok(None);
        };
        let mut params = Map::new();
        if let Some(cursor) = cursor {
            params.insert("cursor".into(), cursor.clone());
        }
        // A stateless (2026-07-28) server needs the per-request `_meta` the host sends.
        if let Some(meta) = &self.host_meta {
            params.insert("_meta".into(), meta.clone());
        }
        let request = json!({"jsonrpc": "2.0", "id": sent.to_value(), "method": kind.list_method(), "params": params});
        self.to_server(line(&request))?;
        Ok(Some(sent))
    }

    /// Hands the calls parked for `notification`'s re-listing back to be read again, in order.
    fn release(&mut self, notification: &str) {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|(n, _)| *n == notification);
        self.parked = later;
        for (_, message) in now {
            let _ = self.replay.send(message);
        }
    }
}

impl<A: std::io::Write> Proxy<'_, A> {
    /// One stderr line per item withheld from the host (the host's log of this server is
    /// where a user looks when tools vanish), each item once per served definition.
    fn tell_withheld(&mut self, kind: ItemKind, withheld: &[crate::core::enforce::Withheld]) {
        for w in withheld {
            let told = (kind, w.key.clone(), w.digests().1);
            if self.told.contains(&told) {
                continue;
            }
            if self.told.len() >= MAX_TOLD {
                if self.told.len() == MAX_TOLD {
                    self.warn("more items were withheld; the audit log names each");
                    self.told.insert((kind, String::new(), None));
                }
                return;
            }
            self.told.insert(told);
            let text = format!(
                "withheld {} {:?} from the host: {}{}",
                kind.noun(),
                w.key,
                w.reason.describe(),
                self.review_hint(&w.reason)
            );
            self.warn(&text);
            if self.host_logging {
                // Best effort: a host too slow to read is ended by the frames that must pass.
                let _ = self.to_host(line(&serde_json::json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/message",
                    "params": {"level": "warning", "logger": "mcplock", "data": text},
                })));
            }
        }
    }

    /// "; review it with `...`" for a refusal that comes from drift, when the command is known.
    fn review_hint(&self, reason: &crate::core::enforce::Reason) -> String {
        match (&self.options.review, reason.is_drift()) {
            (Some(command), true) => format!("; see what changed with `{command}`"),
            _ => String::new(),
        }
    }
}

fn list_kind(method: &str) -> Option<ItemKind> {
    ItemKind::ALL
        .into_iter()
        .find(|k| k.list_method() == method)
}

/// Runs one session until the host or the server goes away.
pub async fn run<HR, HW, SR, SW, A>(
    host_in: HR,
    host_out: HW,
    server_in: SR,
    server_out: SW,
    locked: &Locked<'_>,
    options: &Options,
    audit: Option<Audit<A>>,
) -> std::io::Result<End>
where
    HR: AsyncRead + Unpin,
    HW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
    A: std::io::Write,
{
    let never = std::future::pending::<()>();
    run_until(
        host_in, host_out, server_in, server_out, locked, options, audit, never,
    )
    .await
}

/// [`run`], also ending the session within [`EXIT_GRACE`] once `exited` resolves (the server's
/// process is gone, though a helper of it may still hold its output open).
#[allow(clippy::too_many_arguments)]
pub async fn run_until<HR, HW, SR, SW, A>(
    host_in: HR,
    host_out: HW,
    server_in: SR,
    server_out: SW,
    locked: &Locked<'_>,
    options: &Options,
    audit: Option<Audit<A>>,
    exited: impl std::future::Future<Output = ()>,
) -> std::io::Result<End>
where
    HR: AsyncRead + Unpin,
    HW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
    A: std::io::Write,
{
    let (to_host, host_queue) = outbox(Side::Host, QUEUE_BYTES);
    let (to_server, server_queue) = outbox(Side::Server, QUEUE_BYTES);
    let (faults, faults_rx) = mpsc::unbounded_channel();
    let (replay, replayed) = mpsc::unbounded_channel();
    let (judged, verdicts) = mpsc::unbounded_channel();
    let proxy = Proxy {
        locked,
        options,
        audit,
        session: Session::default(),
        relay: Relay::new(MAX_PENDING),
        expect: HashMap::new(),
        held: HashMap::new(),
        relisting: BTreeMap::new(),
        parked: Vec::new(),
        replay,
        judging: 0,
        judged,
        verdict: None,
        permits: HashMap::new(),
        own_ids: 0,
        host_meta: None,
        negotiated: None,
        blocked: None,
        to_host,
        to_server,
        last_codes: Vec::new(),
        told: BTreeSet::new(),
        host_logging: false,
    };
    let readers = Readers {
        host: MessageReader::new(
            host_in,
            Limits {
                strict_stdout: true,
                ..options.limits
            },
        ),
        server: MessageReader::new(server_in, options.limits),
        replayed,
        verdicts,
        faults: faults_rx,
    };
    let host_pump = pump(host_out, host_queue, options.stall, faults.clone());
    let server_pump = pump(server_out, server_queue, options.stall, faults);
    // The session (which owns the senders, so the host's queue ends with it) runs beside the
    // server's pump, which is abandoned when the session ends; the host's pump drains what is
    // left for the host (each write still bounded by the stall time).
    let session = async {
        tokio::pin!(server_pump);
        tokio::select! {
            end = proxy.serve(readers, exited) => end,
            end = async {
                let _ = (&mut server_pump).await;
                std::future::pending::<End>().await
            } => end,
        }
    };
    let (end, _) = tokio::join!(session, host_pump);
    Ok(end)
}

/// [`run_until`] against a server [`crate::session::open`] started (or reached), until either
/// side ends it; the server is then stopped. How it ended comes back beside the session's end.
pub async fn serve_opened<HR, HW, A>(
    (host_in, host_out): (HR, HW),
    mut server: crate::session::Session,
    channel: crate::session::Channel,
    locked: &Locked<'_>,
    options: &Options,
    audit: Option<Audit<A>>,
) -> (std::io::Result<End>, crate::session::Closed)
where
    HR: AsyncRead + Unpin,
    HW: AsyncWrite + Unpin,
    A: std::io::Write,
{
    let mut input = channel.to_server;
    // The server's own process ending is news even when a helper it started keeps its output
    // open: the session then ends within a grace period.
    let (exited_tx, exited_rx) = tokio::sync::oneshot::channel::<()>();
    let exited = async {
        if exited_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let end = {
        let run = run_until(
            host_in,
            host_out,
            channel.from_server,
            &mut input,
            locked,
            options,
            audit,
            exited,
        );
        tokio::pin!(run);
        tokio::select! {
            end = &mut run => end,
            _ = server.exited() => {
                let _ = exited_tx.send(());
                run.await
            }
        }
    };
    // Closing the input ends a process's input, or the HTTP session (DELETE) and the bridge.
    drop(input);
    let closed = server.close(EXIT_GRACE).await;
    (end, closed)
}

struct Readers<HR, SR> {
    host: MessageReader<HR>,
    server: MessageReader<SR>,
    replayed: mpsc::UnboundedReceiver<Message>,
    verdicts: mpsc::UnboundedReceiver<(Message, Judged)>,
    faults: mpsc::UnboundedReceiver<Stalled>,
}

impl<A: std::io::Write> Proxy<'_, A> {
    async fn serve<HR, SR>(
        mut self,
        mut readers: Readers<HR, SR>,
        exited: impl std::future::Future<Output = ()>,
    ) -> End
    where
        HR: AsyncRead + Unpin,
        SR: AsyncRead + Unpin,
    {
        self.checkpoint(crate::core::audit::Mark::Open);
        let end = self.serve_until_end(&mut readers, exited).await;
        self.checkpoint(crate::core::audit::Mark::Close);
        end
    }

    async fn serve_until_end<HR, SR>(
        &mut self,
        readers: &mut Readers<HR, SR>,
        exited: impl std::future::Future<Output = ()>,
    ) -> End
    where
        HR: AsyncRead + Unpin,
        SR: AsyncRead + Unpin,
    {
        let gone = async {
            exited.await;
            tokio::time::sleep(EXIT_GRACE).await;
        };
        tokio::pin!(gone);
        loop {
            // A fault or the server's exit first; then whichever side has a message (fairly:
            // neither side can starve the other).
            let incoming = tokio::select! {
                biased;
                Some(stalled) = readers.faults.recv() => Err(stalled),
                () = &mut gone => Ok(None),
                Some(judged) = readers.verdicts.recv() => Ok(Some(Incoming::Judged(judged))),
                incoming = next_incoming(&mut readers.host, &mut readers.replayed, &mut readers.server) => Ok(Some(incoming)),
            };
            let flow = match incoming {
                Err(stalled) => Err(stalled),
                Ok(None) => self.server_gone(
                    "the server's process exited, but its output stayed open (a process it started holds it)".into(),
                ),
                Ok(Some(incoming)) => self.handle(incoming, readers),
            };
            if let Some(end) = self.after(flow) {
                return end;
            }
        }
    }

    /// One message, to the handler of its side.
    fn handle<HR, SR>(&mut self, incoming: Incoming, readers: &Readers<HR, SR>) -> Flow
    where
        HR: AsyncRead + Unpin,
    {
        match incoming {
            Incoming::Host(from_host) => {
                // The line a bad message came on, to recover its id for the answer.
                let bad_line = match &from_host {
                    Err(_) => readers.host.last_line().to_vec(),
                    Ok(_) => Vec::new(),
                };
                self.on_host(from_host, &bad_line)
            }
            Incoming::Server(from_server) => self.on_server(from_server),
            Incoming::Judged((message, verdict)) => {
                // Read again with its verdict: the lock is asked again (the session may have
                // changed while the rules judged), the rules are not.
                self.judging = self.judging.saturating_sub(1);
                self.verdict = Some((message.raw.clone(), verdict));
                let flow = self.on_host(Ok(message), &[]);
                self.verdict = None;
                flow
            }
        }
    }

    /// After a message: go on (`None`), or how the session ends. A side that stalls ends it
    /// (the host), or is let go as the server would be when it dies.
    fn after(&mut self, flow: Flow) -> Option<End> {
        match flow {
            Ok(Next::Go) => None,
            Ok(Next::End(end)) => Some(end),
            Err(Stalled {
                side: Side::Host,
                why,
            }) => {
                self.log(Record::note("(host)", why.clone()));
                self.warn(&format!("{why}; the session ends"));
                Some(End::HostClosed)
            }
            Err(Stalled {
                side: Side::Server,
                why,
            }) => match self.server_gone(why) {
                Ok(Next::End(end)) => Some(end),
                _ => None,
            },
        }
    }
}

/// A message from one side.
enum Incoming {
    Host(Result<Message, ConnError>),
    Server(Result<Message, ConnError>),
    /// A host call the call rules have judged.
    Judged((Message, Judged)),
}

/// The next message from either side: a host call parked for a re-listing and read again
/// first, then the host or the server, whichever is ready (no side first). Cancel-safe.
async fn next_incoming<HR, SR>(
    host: &mut MessageReader<HR>,
    replayed: &mut mpsc::UnboundedReceiver<Message>,
    server: &mut MessageReader<SR>,
) -> Incoming
where
    HR: AsyncRead + Unpin,
    SR: AsyncRead + Unpin,
{
    tokio::select! {
        from_host = async {
            tokio::select! {
                biased;
                Some(message) = replayed.recv() => Ok(message),
                next = host.next() => next,
            }
        } => Incoming::Host(from_host),
        from_server = server.next() => Incoming::Server(from_server),
    }
}

/// The reason a host request reading `ConnError` gets: -32700 for what is not JSON at all,
/// with the id when a lenient reading of the line still finds one (-32600 then: a request the
/// strict reader refuses, e.g. with a duplicate key).
fn bad_line_answer(error: &ConnError, line: &[u8]) -> Vec<u8> {
    let id = serde_json::from_slice::<Value>(line)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .filter(|id| Id::from_value(id).is_some());
    let message = format!("mcplock dropped this message: {error}");
    match id {
        Some(id) => error_line(&id, -32600, message, None),
        None => error_line(&Value::Null, -32700, message, None),
    }
}

#[cfg(test)]
mod tests;
