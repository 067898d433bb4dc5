//! The runtime proxy's loop: frames move between the host (our stdin/stdout) and the server
//! (its pipes); every decision is taken by `core::enforce` and `core::relay`, and recorded in
//! the audit log. Nothing here kills the session on one bad line: it is dropped, answered with
//! an error when a request is waiting, and audited.

use crate::core::audit::{Chain, Decision, Entry, Payload};
use crate::core::canonical::Digest;
use crate::core::enforce::{self, DENIED, Locked, OnDrift, Session};
use crate::core::inspect;
use crate::core::jsonrpc::Id;
use crate::core::relay::{Origin, Relay};
use crate::core::snapshot::ItemKind;
use crate::transport::channel::{ConnError, Limits, MessageReader};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

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

/// How the proxy is set up.
pub struct Options {
    pub server_name: String,
    pub limits: Limits,
    /// Forward the server's requests (sampling, elicitation, roots) to the host.
    pub allow_server_requests: bool,
    /// What happens to what differs from the lock.
    pub on_drift: OnDrift,
    /// What happens to a result that holds findings.
    pub on_response: inspect::OnResponse,
    /// The revocation list to honour, looked at before every host message.
    pub revocations: Option<Box<RevocationPoll>>,
    /// The `on: call` policy rules every `tools/call` must pass: (tool, arguments) to verdict.
    pub call_policy: Option<Box<CallPolicy>>,
}

/// Judges one `tools/call` by the call rules.
pub type CallPolicy = dyn Fn(&str, &Value) -> crate::core::policy::CallVerdict + Send + Sync;

/// What looking at the revocation list found.
pub enum Poll {
    Unchanged,
    /// It changed (or was read for the first time): the list now.
    Changed(crate::core::revocation::Revocations),
    /// It cannot be read (or its signature does not hold): everything is denied until it can.
    Unreadable(String),
}

/// Looks at the revocation list; called before every host message, so it must be cheap when
/// nothing changed (a `stat`).
pub type RevocationPoll = dyn Fn() -> Poll + Send + Sync;

/// Where audit lines go: the sink and the chain so far. `None` when no log was asked for.
pub struct Audit<W> {
    pub sink: W,
    pub chain: Chain,
    pub clock: fn() -> String,
}

/// How the session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The host closed its input.
    HostClosed,
    /// The server closed its output (it exited or crashed).
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
    /// A page of the proxy's own re-listing after `list_changed`: what the host had been shown
    /// before, what matched the lock so far, and how many pages were asked for.
    Relist {
        kind: ItemKind,
        shown: BTreeSet<String>,
        scratch: Session,
        pages: usize,
        /// A later `list_changed` makes this re-listing stale: its answer then decides nothing.
        generation: u64,
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

fn list_kind(method: &str) -> Option<ItemKind> {
    ItemKind::ALL
        .into_iter()
        .find(|k| k.list_method() == method)
}

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

/// Hands the calls parked for `notification`'s re-listing back to be read again, in order.
fn release(
    parked: &mut Vec<(&'static str, crate::transport::channel::Message)>,
    notification: &str,
    replay: &tokio::sync::mpsc::UnboundedSender<crate::transport::channel::Message>,
) {
    let (now, later): (Vec<_>, Vec<_>) = std::mem::take(parked)
        .into_iter()
        .partition(|(n, _)| *n == notification);
    *parked = later;
    for (_, message) in now {
        let _ = replay.send(message);
    }
}

/// Runs one session until the host or the server goes away.
/// Asks the server for one page of `kind` on the proxy's own account (its own id space, never
/// a host's). `None` when the relay table is full.
async fn ask_page<W: AsyncWrite + Unpin>(
    server_out: &mut W,
    relay: &mut Relay,
    own_ids: &mut i64,
    kind: ItemKind,
    cursor: Option<&Value>,
    meta: Option<&Value>,
) -> std::io::Result<Option<Id>> {
    *own_ids += 1;
    let Ok(sent) = relay.send(Origin::Proxy, Id::Number(*own_ids), kind.list_method()) else {
        return Ok(None);
    };
    let mut params = Map::new();
    if let Some(cursor) = cursor {
        params.insert("cursor".into(), cursor.clone());
    }
    // A stateless (2026-07-28) server needs the per-request `_meta` the host sends.
    if let Some(meta) = meta {
        params.insert("_meta".into(), meta.clone());
    }
    let request = json!({"jsonrpc": "2.0", "id": sent.to_value(), "method": kind.list_method(), "params": params});
    server_out.write_all(&line(&request)).await?;
    server_out.flush().await?;
    Ok(Some(sent))
}

pub async fn run<HR, HW, SR, SW, A>(
    host_in: HR,
    mut host_out: HW,
    server_in: SR,
    mut server_out: SW,
    locked: &Locked<'_>,
    options: &Options,
    mut audit: Option<Audit<A>>,
) -> std::io::Result<End>
where
    HR: AsyncRead + Unpin,
    HW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
    A: std::io::Write,
{
    let mut host = MessageReader::new(
        host_in,
        Limits {
            strict_stdout: true,
            ..options.limits
        },
    );
    let mut server = MessageReader::new(server_in, options.limits);
    let mut session = Session::default();
    let mut relay = Relay::new(MAX_PENDING);
    // How an item that differs from the lock is recorded: withheld, denied (its whole list
    // blocked) or let through with a warning.
    let drift_decision = match options.on_drift {
        OnDrift::Withhold => Decision::Withhold,
        OnDrift::Block => Decision::Deny,
        OnDrift::Warn => Decision::Note,
    };
    // Digests and call records are computed only for an audit log.
    let audit_on = audit.is_some();
    let payloads = audit.as_ref().is_some_and(|a| a.chain.records_payloads());
    let call_payload = |params: Option<&Value>, response: Option<Value>| {
        payloads.then(|| Payload {
            request: params.cloned(),
            response,
        })
    };
    let mut expect: HashMap<Id, Expect> = HashMap::new();
    // The proxy's own re-listings: per `list_changed` method, the notification held back until
    // every kind it concerns has been re-checked, and how many re-listings are still out.
    let mut held: HashMap<String, (Map<String, Value>, usize)> = HashMap::new();
    // Host calls that arrived while a re-listing of their kind was out: they wait for its
    // verdict instead of being denied as not listed, and are read again (in order) when it
    // comes, from `replay` before anything new from the host.
    let mut parked: Vec<(&'static str, crate::transport::channel::Message)> = Vec::new();
    let (replay, mut replayed) =
        tokio::sync::mpsc::unbounded_channel::<crate::transport::channel::Message>();
    let mut own_ids: i64 = 0;
    let mut generations: std::collections::BTreeMap<ItemKind, u64> =
        std::collections::BTreeMap::new();
    // The host's latest per-request `_meta` (without its progress token), for the proxy's own
    // requests to a stateless server.
    let mut host_meta: Option<Value> = None;
    let mut log = |method: &str,
                   item: Option<String>,
                   decision: Decision,
                   reason: Option<String>,
                   digests: (Option<Digest>, Option<Digest>),
                   exchanged: (Option<Digest>, Option<Digest>),
                   payload: Option<Payload>| {
        if let Some(a) = audit.as_mut() {
            let entry = Entry {
                time: (a.clock)(),
                server: options.server_name.clone(),
                method: method.to_string(),
                item,
                locked: digests.0,
                served: digests.1,
                decision,
                reason,
                request: exchanged.0,
                response: exchanged.1,
                payload,
            };
            let bytes = a.chain.append(&entry);
            // An audit line that cannot be written must not pass unnoticed.
            if let Err(e) = a.sink.write_all(&bytes).and_then(|()| a.sink.flush()) {
                eprintln!("mcplock: proxy: cannot write the audit log: {e}");
            }
        }
    };
    loop {
        tokio::select! {
            from_host = async {
                tokio::select! {
                    biased;
                    Some(message) = replayed.recv() => Ok(message),
                    next = host.next() => next,
                }
            } => {
                // A revocation takes effect from the next message on.
                if let Some(poll) = &options.revocations {
                    let revoked = match poll() {
                        Poll::Unchanged => None,
                        Poll::Changed(list) => Some(enforce::Revoked::of(&list, &options.server_name, locked)),
                        Poll::Unreadable(why) => {
                            eprintln!("mcplock: proxy: the revocation list cannot be read ({why}); every call is denied until it can");
                            Some(enforce::Revoked { server: Some(format!("the revocation list cannot be read: {why}")), ..Default::default() })
                        }
                    };
                    if let Some(revoked) = revoked {
                        for (kind, items) in &revoked.items {
                            for (key, why) in items {
                                if session.revoked(*kind, key).is_none() {
                                    log("(revocation)", Some(key.clone()), Decision::Note, Some(format!("revocation took effect: {} {key:?}: {why}", kind.noun())), (locked.digest(*kind, key), None), (None, None), None);
                                }
                            }
                        }
                        if let Some(why) = &revoked.server {
                            log("(revocation)", None, Decision::Note, Some(format!("revocation took effect: the whole server: {why}")), (None, None), (None, None), None);
                        }
                        let mut told = BTreeSet::new();
                        for kind in session.set_revoked(revoked) {
                            let notification = kind.list_changed_notification();
                            if locked.covers(kind) && told.insert(notification) {
                                host_out.write_all(&line(&json!({"jsonrpc": "2.0", "method": notification}))).await?;
                            }
                        }
                        host_out.flush().await?;
                    }
                }
                let message = match from_host {
                    Ok(m) => m,
                    Err(ConnError::Closed | ConnError::Truncated) => return Ok(End::HostClosed),
                    Err(e) => {
                        // One bad line from the host: dropped, never the session's end.
                        log("(host line)", None, Decision::Note, Some(e.to_string()), (None, None), (None, None), None);
                        continue;
                    }
                };
                let request_digest = audit_on.then(|| Digest::of_bytes(&message.raw));
                let Value::Object(mut obj) = message.value else {
                    log("(host line)", None, Decision::Note, Some("not a JSON-RPC object".into()), (None, None), (None, None), None);
                    continue;
                };
                let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
                match (method, obj.get("id").cloned()) {
                    (Some(method), Some(id_value)) => {
                        let Some(id) = obj.get("id").and_then(Id::from_value) else {
                            host_out.write_all(&error_line(&id_value, -32600, "invalid id".into(), None)).await?;
                            continue;
                        };
                        let params = obj.get("params");
                        if let Some(Value::Object(meta)) = params.and_then(|p| p.get("_meta")) {
                            let mut meta = meta.clone();
                            meta.remove("progressToken");
                            host_meta = Some(Value::Object(meta));
                        }
                        // A call of a kind being re-listed waits for the re-listing's verdict.
                        if let Some(Ok((kind, _))) = enforce::called_item(&method, params) {
                            let notification = kind.list_changed_notification();
                            if held.contains_key(notification) && parked.len() < MAX_PARKED {
                                let message = crate::transport::channel::Message {
                                    raw: message.raw.clone(),
                                    value: Value::Object(obj.clone()),
                                };
                                parked.push((notification, message));
                                continue;
                            }
                        }
                        if let Err(reason) = enforce::check_call(&method, params, locked, &session) {
                            let item = params
                                .and_then(|p| p.get("name").or_else(|| p.get("uri")))
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                            let shown = enforce::called_item(&method, params)
                                .and_then(Result::ok)
                                .is_some_and(|(kind, key)| session.is_listed(kind, &key));
                            let warn_through = options.on_drift == OnDrift::Warn
                                && reason.is_drift()
                                && (shown || !matches!(reason, enforce::Reason::NotLocked));
                            if warn_through {
                                log(&method, item, Decision::Note, Some(format!("{} (--on-drift warn: let through)", reason.code())), (None, None), (request_digest, None), call_payload(params, None));
                            } else {
                            log(&method, item.clone(), Decision::Deny, Some(reason.code().into()), (None, None), (request_digest, None), call_payload(params, None));
                            let message = format!(
                                "mcplock denied {method}{}: {}",
                                item.as_deref().map(|i| format!(" of {i:?}")).unwrap_or_default(),
                                reason.describe()
                            );
                            host_out.write_all(&error_line(&id_value, DENIED, message, Some(json!({"reason": reason.code()})))).await?;
                            host_out.flush().await?;
                            continue;
                            }
                        }
                        // The call rules, for a call the lock allows.
                        if method == "tools/call"
                            && let Some(judge) = &options.call_policy
                            && let Some(Ok((_, tool))) = enforce::called_item(&method, params)
                        {
                            let empty = json!({});
                            let arguments = params.and_then(|p| p.get("arguments")).unwrap_or(&empty);
                            match judge(&tool, arguments) {
                                crate::core::policy::CallVerdict::Allow => {}
                                crate::core::policy::CallVerdict::Warn(rules) => {
                                    for (rule, message) in rules {
                                        log(&method, Some(tool.clone()), Decision::Note, Some(format!("policy {rule} (warn): {message}")), (None, None), (request_digest, None), None);
                                    }
                                }
                                crate::core::policy::CallVerdict::Deny(rule, message) => {
                                    log(&method, Some(tool.clone()), Decision::Deny, Some(format!("policy {rule}: {message}")), (None, None), (request_digest, None), call_payload(params, None));
                                    let text = format!("mcplock denied tools/call of {tool:?}: policy rule {rule}: {message}");
                                    host_out.write_all(&error_line(&id_value, DENIED, text, Some(json!({"reason": "policy", "rule": rule})))).await?;
                                    host_out.flush().await?;
                                    continue;
                                }
                            }
                        }
                        let sent = match relay.send(Origin::Host, id, &method) {
                            Ok(sent) => sent,
                            Err(full) => {
                                host_out.write_all(&error_line(&id_value, UNAVAILABLE, full.to_string(), None)).await?;
                                host_out.flush().await?;
                                continue;
                            }
                        };
                        if let Some(kind) = list_kind(&method) {
                            let first_page = params.and_then(|p| p.get("cursor")).is_none();
                            expect.insert(sent.clone(), Expect::List { kind, first_page });
                        } else if method == "initialize" || method == "server/discover" {
                            expect.insert(sent.clone(), Expect::Hello);
                        } else if (audit_on || inspect::is_inspected(&method)) && let Some(Ok((kind, item))) = enforce::called_item(&method, params) {
                            let locked = locked.digest(kind, &item);
                            expect.insert(sent.clone(), Expect::Call { method: method.clone(), item, locked, request: request_digest, params: payloads.then(|| params.cloned()).flatten() });
                        }
                        relay.take_progress(&sent, obj.get_mut("params"));
                        obj.insert("id".into(), sent.to_value());
                        server_out.write_all(&line(&Value::Object(obj))).await?;
                        server_out.flush().await?;
                    }
                    (Some(method), None) => {
                        match relay.translate_notification(Origin::Host, &method, obj.get_mut("params").and_then(Value::as_object_mut)) {
                            Err(dropped) => {
                                log(&method, None, Decision::Note, Some(format!("dropped: {dropped}")), (None, None), (None, None), None);
                                continue;
                            }
                            Ok(Some((sent, waiting))) => {
                                let item = match expect.remove(&sent) {
                                    Some(Expect::Call { item, .. }) => Some(item),
                                    _ => None,
                                };
                                log(&method, item, Decision::Forward, Some(format!("the host cancelled its {}", waiting.method)), (None, None), (request_digest, None), None);
                            }
                            Ok(None) => {}
                        }
                        server_out.write_all(&line(&Value::Object(obj))).await?;
                        server_out.flush().await?;
                    }
                    (None, Some(_)) => {
                        // The host's answer to a request the server sent.
                        let Some(waiting) = obj.get("id").and_then(Id::from_value).and_then(|id| relay.answer(&id)) else {
                            log("(host answer)", None, Decision::Note, Some("an answer to no waiting request".into()), (None, None), (None, None), None);
                            continue;
                        };
                        obj.insert("id".into(), waiting.original.to_value());
                        server_out.write_all(&line(&Value::Object(obj))).await?;
                        server_out.flush().await?;
                    }
                    (None, None) => {
                        log("(host line)", None, Decision::Note, Some("neither a request nor an answer".into()), (None, None), (None, None), None);
                    }
                }
            }
            from_server = server.next() => {
                let message = match from_server {
                    Ok(m) => m,
                    Err(gone @ (ConnError::Closed | ConnError::Truncated | ConnError::Transport(_))) => {
                        // The server exited, or its HTTP endpoint became unusable: every
                        // request still waiting is answered, and the session ends.
                        let why = match gone {
                            ConnError::Transport(reason) => reason,
                            _ => "the server closed its output".to_string(),
                        };
                        log("(server)", None, Decision::Note, Some(why.clone()), (None, None), (None, None), None);
                        for waiting in relay.drain() {
                            if waiting.origin == Origin::Host {
                                host_out.write_all(&error_line(&waiting.original.to_value(), UNAVAILABLE, why.clone(), None)).await?;
                            }
                        }
                        host_out.flush().await?;
                        return Ok(End::ServerClosed(why));
                    }
                    Err(e) => {
                        log("(server line)", None, Decision::Note, Some(e.to_string()), (None, None), (None, None), None);
                        // If one host request is waiting, that line was its answer: say so.
                        if let Some(waiting) = relay.sole(Origin::Host).and_then(|sent| {
                            expect.remove(&sent);
                            relay.answer(&sent)
                        }) {
                            let message = format!("mcplock dropped the server's answer: {e}");
                            host_out.write_all(&error_line(&waiting.original.to_value(), UNAVAILABLE, message, None)).await?;
                            host_out.flush().await?;
                        }
                        continue;
                    }
                };
                let response_digest = audit_on.then(|| Digest::of_bytes(&message.raw));
                let Value::Object(mut obj) = message.value else {
                    log("(server line)", None, Decision::Note, Some("not a JSON-RPC object".into()), (None, None), (None, None), None);
                    continue;
                };
                let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
                match (method, obj.get("id").cloned()) {
                    (None, Some(_)) => {
                        let Some(sent) = obj.get("id").and_then(Id::from_value) else { continue };
                        let Some(waiting) = relay.answer(&sent) else {
                            log("(server answer)", None, Decision::Note, Some("an answer to no waiting request".into()), (None, None), (None, None), None);
                            continue;
                        };
                        obj.insert("id".into(), waiting.original.to_value());
                        let relisting = matches!(expect.get(&sent), Some(Expect::Relist { .. }));
                        if relisting
                            && let Some(Expect::Relist { kind, shown, mut scratch, pages, generation }) = expect.remove(&sent) {
                            let mut complete = true;
                            match obj.remove("result") {
                                Some(Value::Object(result)) => {
                                    let checked = enforce::check_list_page(kind, result, pages == 1, locked, &mut scratch);
                                    for w in &checked.withheld {
                                        log(kind.list_method(), Some(w.key.clone()), drift_decision, Some(w.reason.code().into()), w.digests(), (None, response_digest), None);
                                    }
                                    if options.on_drift == OnDrift::Warn {
                                        scratch.admit_drifted(kind, &checked.withheld);
                                    }
                                    let blocked = options.on_drift == OnDrift::Block && !checked.withheld.is_empty();
                                    if blocked {
                                        // Nothing of this kind may be called until the host lists again.
                                        scratch = Session::default();
                                    } else if let Some(cursor) = checked.forward.get("nextCursor").filter(|c| !c.is_null()) {
                                        if pages < MAX_RELIST_PAGES {
                                            if let Some(next) = ask_page(&mut server_out, &mut relay, &mut own_ids, kind, Some(cursor), host_meta.as_ref()).await? {
                                                expect.insert(next, Expect::Relist { kind, shown: shown.clone(), scratch: scratch.clone(), pages: pages + 1, generation });
                                                complete = false;
                                            } else {
                                                scratch = Session::default();
                                            }
                                        } else {
                                            log(kind.list_method(), None, Decision::Note, Some(format!("re-listing stopped after {MAX_RELIST_PAGES} pages")), (None, None), (None, None), None);
                                            scratch = Session::default();
                                        }
                                    }
                                }
                                _ => {
                                    log(kind.list_method(), None, Decision::Note, Some("the server did not answer the proxy's re-listing".into()), (None, None), (None, None), None);
                                    scratch = Session::default();
                                }
                            }
                            if complete {
                                if generations.get(&kind) == Some(&generation) {
                                    let shown: BTreeSet<String> = shown.union(&session.listed(kind)).cloned().collect();
                                    session.restrict(kind, &shown, &scratch.listed(kind));
                                }
                                let notification = kind.list_changed_notification();
                                let done = held.get_mut(notification).is_some_and(|(_, remaining)| {
                                    *remaining = remaining.saturating_sub(1);
                                    *remaining == 0
                                });
                                if done && let Some((held_obj, _)) = held.remove(notification) {
                                        host_out.write_all(&line(&Value::Object(held_obj))).await?;
                                        host_out.flush().await?;
                                        release(&mut parked, notification, &replay);
                                }
                            }
                            continue;
                        }
                        match (expect.remove(&sent), obj.remove("result")) {
                            (Some(Expect::List { kind, first_page }), Some(Value::Object(result))) => {
                                // The host's own listing decides for the calls waiting on a
                                // re-listing of this kind (which may never come back).
                                release(&mut parked, kind.list_changed_notification(), &replay);
                                let served = (options.on_drift == OnDrift::Warn).then(|| result.clone());
                                let checked = enforce::check_list_page(kind, result, first_page, locked, &mut session);
                                for w in &checked.withheld {
                                    log(kind.list_method(), Some(w.key.clone()), drift_decision, Some(w.reason.code().into()), w.digests(), (None, response_digest), None);
                                }
                                match (options.on_drift, served) {
                                    (OnDrift::Block, _) if !checked.withheld.is_empty() => {
                                        session.forget(kind);
                                        let keys: Vec<&str> = checked.withheld.iter().map(|w| w.key.as_str()).collect();
                                        let message = format!(
                                            "mcplock blocked {}: {} item(s) differ from the lock (--on-drift block): {}",
                                            kind.list_method(),
                                            keys.len(),
                                            keys.iter().take(5).map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ")
                                        );
                                        let data = json!({"reason": "drift", "items": keys.iter().take(100).collect::<Vec<_>>()});
                                        if waiting.origin == Origin::Host {
                                            host_out.write_all(&error_line(&waiting.original.to_value(), DENIED, message, Some(data))).await?;
                                            host_out.flush().await?;
                                        }
                                        continue;
                                    }
                                    (OnDrift::Warn, Some(served)) => {
                                        session.admit_drifted(kind, &checked.withheld);
                                        obj.insert("result".into(), Value::Object(served));
                                    }
                                    _ => {
                                        obj.insert("result".into(), Value::Object(checked.forward));
                                    }
                                }
                            }
                            (Some(Expect::Hello), Some(Value::Object(result))) => {
                                let locked_modern = crate::mcp::ProtocolVersion::parse(&locked.server.protocol_version)
                                    .is_some_and(crate::mcp::ProtocolVersion::is_modern);
                                let same_generation = (waiting.method == "server/discover") == locked_modern;
                                let drift = enforce::check_hello(&result, same_generation, locked);
                                if drift.is_empty() {
                                    obj.insert("result".into(), Value::Object(result));
                                } else if options.on_drift == OnDrift::Warn {
                                    let fields: Vec<&str> = drift.iter().map(|d| d.field).collect();
                                    log(&waiting.method, None, Decision::Note, Some(format!("server drift: {} (--on-drift warn: let through)", fields.join(", "))), (None, None), (None, None), None);
                                    obj.insert("result".into(), Value::Object(result));
                                } else {
                                    let fields: Vec<&str> = drift.iter().map(|d| d.field).collect();
                                    log(&waiting.method, None, Decision::Deny, Some(format!("server drift: {}", fields.join(", "))), (None, None), (None, None), None);
                                    let message = format!("mcplock blocked the session: the server's {} differ from the lock", fields.join(", "));
                                    host_out.write_all(&error_line(&waiting.original.to_value(), DENIED, message, None)).await?;
                                    host_out.flush().await?;
                                    continue;
                                }
                            }
                            (Some(Expect::Call { method, item, locked: locked_digest, request, params }), result) => {
                                let outcome = if result.is_some() { None } else { Some("the server answered with an error".to_string()) };
                                let answer = payloads.then(|| result.clone().or_else(|| obj.get("error").cloned())).flatten();
                                log(&method, Some(item.clone()), Decision::Forward, outcome, (locked_digest, None), (request, response_digest), call_payload(params.as_ref(), answer));
                                let Some(mut result) = result else {
                                    if waiting.origin == Origin::Host {
                                        host_out.write_all(&line(&Value::Object(obj))).await?;
                                        host_out.flush().await?;
                                    }
                                    continue;
                                };
                                // What comes back is checked before the model reads it.
                                let check = |structured: &Value| locked.check_output(&item, structured);
                                let output_check: Option<&inspect::OutputCheck> =
                                    (method == "tools/call" && locked.has_output_schema(&item)).then_some(&check);
                                let inspection = inspect::inspect(&method, &result, output_check);
                                if !inspection.is_clean() {
                                    let decision = match options.on_response {
                                        inspect::OnResponse::Warn => Decision::Note,
                                        inspect::OnResponse::Redact => Decision::Rewrite,
                                        inspect::OnResponse::Block => Decision::Deny,
                                    };
                                    for f in &inspection.findings {
                                        log(&method, Some(item.clone()), decision, Some(format!("response-finding {} at {} [{}..{}]", f.code, f.pointer, f.span.0, f.span.1)), (None, None), (None, None), None);
                                    }
                                    if inspection.more > 0 {
                                        log(&method, Some(item.clone()), decision, Some(format!("response-finding: {} more not listed", inspection.more)), (None, None), (None, None), None);
                                    }
                                    match options.on_response {
                                        inspect::OnResponse::Warn => {}
                                        inspect::OnResponse::Redact => inspect::redact(&mut result, &inspection),
                                        inspect::OnResponse::Block => {
                                            if waiting.origin == Origin::Host {
                                                let codes = inspection.codes();
                                                let message = format!(
                                                    "mcplock blocked the result of {method} of {item:?}: it holds {} (--on-response-finding block)",
                                                    codes.join(", ")
                                                );
                                                let data = json!({"reason": "response-finding", "codes": codes});
                                                host_out.write_all(&error_line(&waiting.original.to_value(), DENIED, message, Some(data))).await?;
                                                host_out.flush().await?;
                                            }
                                            continue;
                                        }
                                    }
                                }
                                obj.insert("result".into(), result);
                            }
                            (_, Some(result)) => {
                                obj.insert("result".into(), result);
                            }
                            (_, None) => {}
                        }
                        if waiting.origin == Origin::Host {
                            host_out.write_all(&line(&Value::Object(obj))).await?;
                            host_out.flush().await?;
                        }
                    }
                    (Some(method), Some(id_value)) => {
                        // A request from the server.
                        if method == "ping" {
                            server_out.write_all(&line(&json!({"jsonrpc": "2.0", "id": id_value, "result": {}}))).await?;
                            server_out.flush().await?;
                            continue;
                        }
                        let forward = options.allow_server_requests
                            && obj.get("id").and_then(Id::from_value)
                                .and_then(|id| relay.send(Origin::Server, id, &method).ok())
                                .map(|sent| {
                                    relay.take_progress(&sent, obj.get_mut("params"));
                                    obj.insert("id".into(), sent.to_value())
                                })
                                .is_some();
                        if forward {
                            host_out.write_all(&line(&Value::Object(obj))).await?;
                            host_out.flush().await?;
                        } else {
                            log(&method, None, Decision::Deny, Some("server requests are not forwarded".into()), (None, None), (None, None), None);
                            server_out.write_all(&error_line(&id_value, -32601, format!("mcplock does not forward {method} to the host (--allow-server-requests)"), None)).await?;
                            server_out.flush().await?;
                        }
                    }
                    (Some(method), None) => {
                        match relay.translate_notification(Origin::Server, &method, obj.get_mut("params").and_then(Value::as_object_mut)) {
                            Err(dropped) => {
                                log(&method, None, Decision::Note, Some(format!("dropped: {dropped}")), (None, None), (None, None), None);
                                continue;
                            }
                            Ok(Some((_, waiting))) => {
                                log(&method, None, Decision::Forward, Some(format!("the server cancelled its {}", waiting.method)), (None, None), (response_digest, None), None);
                            }
                            Ok(None) => {}
                        }
                        let kinds: Vec<ItemKind> = ItemKind::ALL.into_iter().filter(|k| k.list_changed_notification() == method).collect();
                        if !kinds.is_empty() {
                            // What was listed may have changed: nothing of these kinds may be
                            // called until the proxy has re-listed and re-checked them; the host
                            // hears of the change only then. A change during a re-listing
                            // starts another (the earlier answer may predate it).
                            let mut out = 0;
                            for kind in kinds {
                                // What the host was shown, including what a re-listing still
                                // out (now stale) was holding for it.
                                let mut shown = session.listed(kind);
                                for pending in expect.values() {
                                    if let Expect::Relist { kind: k, shown: s, .. } = pending
                                        && *k == kind
                                    {
                                            shown.extend(s.iter().cloned());
                                    }
                                }
                                session.forget(kind);
                                let generation = generations.entry(kind).or_insert(0);
                                *generation += 1;
                                let generation = *generation;
                                if !locked.covers(kind) {
                                    continue;
                                }
                                match ask_page(&mut server_out, &mut relay, &mut own_ids, kind, None, host_meta.as_ref()).await? {
                                    Some(sent) => {
                                        expect.insert(sent, Expect::Relist { kind, shown, scratch: Session::default(), pages: 1, generation });
                                        out += 1;
                                    }
                                    None => log(&method, None, Decision::Note, Some("too many requests waiting to re-list; nothing of this kind may be called until the host lists again".into()), (None, None), (None, None), None),
                                }
                            }
                            log(&method, None, Decision::Note, Some(format!("re-listing {out} kind(s) before the host hears of the change")), (None, None), (None, None), None);
                            if out > 0 {
                                let entry = held.entry(method.clone()).or_insert_with(|| (obj.clone(), 0));
                                entry.1 += out;
                                continue;
                            }
                        }
                        host_out.write_all(&line(&Value::Object(obj))).await?;
                        host_out.flush().await?;
                    }
                    (None, None) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
