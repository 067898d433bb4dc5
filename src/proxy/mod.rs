//! The runtime proxy's loop: frames move between the host (our stdin/stdout) and the server
//! (its pipes); every decision is taken by `core::enforce` and `core::relay`, and recorded in
//! the audit log. Nothing here kills the session on one bad line: it is dropped, answered with
//! an error when a request is waiting, and audited.

use crate::core::audit::{Chain, Decision, Entry};
use crate::core::canonical::Digest;
use crate::core::enforce::{self, DENIED, Locked, Session};
use crate::core::jsonrpc::Id;
use crate::core::relay::{Origin, Relay};
use crate::core::snapshot::ItemKind;
use crate::transport::channel::{ConnError, Limits, MessageReader};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Requests waiting for an answer, both ways, at most.
pub const MAX_PENDING: usize = 4_096;
/// JSON-RPC error code for a request the proxy cannot relay (the table is full, the server is
/// gone).
pub const UNAVAILABLE: i64 = -32011;

/// How the proxy is set up.
pub struct Options {
    pub server_name: String,
    pub limits: Limits,
    /// Forward the server's requests (sampling, elicitation, roots) to the host.
    pub allow_server_requests: bool,
}

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
    /// A forwarded call, audited when its answer comes back.
    Call {
        method: String,
        item: String,
        locked: Option<Digest>,
        request: Digest,
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

fn id_of(value: &Value) -> Option<Id> {
    match value.get("id")? {
        Value::String(s) => Some(Id::String(s.clone())),
        Value::Number(n) => n.as_i64().map(Id::Number),
        _ => None,
    }
}

/// Runs one session until the host or the server goes away.
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
    let mut expect: HashMap<Id, Expect> = HashMap::new();
    let mut log = |method: &str,
                   item: Option<String>,
                   decision: Decision,
                   reason: Option<String>,
                   digests: (Option<Digest>, Option<Digest>),
                   exchanged: (Option<Digest>, Option<Digest>)| {
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
            from_host = host.next() => {
                let message = match from_host {
                    Ok(m) => m,
                    Err(ConnError::Closed | ConnError::Truncated) => return Ok(End::HostClosed),
                    Err(e) => {
                        // One bad line from the host: dropped, never the session's end.
                        log("(host line)", None, Decision::Note, Some(e.to_string()), (None, None), (None, None));
                        continue;
                    }
                };
                let request_digest = Digest::of_bytes(&message.raw);
                let Value::Object(mut obj) = message.value else {
                    log("(host line)", None, Decision::Note, Some("not a JSON-RPC object".into()), (None, None), (None, None));
                    continue;
                };
                let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
                match (method, obj.get("id").cloned()) {
                    (Some(method), Some(id_value)) => {
                        let Some(id) = id_of(&Value::Object(obj.clone())) else {
                            host_out.write_all(&error_line(&id_value, -32600, "invalid id".into(), None)).await?;
                            continue;
                        };
                        let params = obj.get("params");
                        if let Err(reason) = enforce::check_call(&method, params, locked, &session) {
                            let item = params
                                .and_then(|p| p.get("name").or_else(|| p.get("uri")))
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                            log(&method, item.clone(), Decision::Deny, Some(reason.code().into()), (None, None), (Some(request_digest), None));
                            let message = format!(
                                "mcplock denied {method}{}: {}",
                                item.as_deref().map(|i| format!(" of {i:?}")).unwrap_or_default(),
                                reason.describe()
                            );
                            host_out.write_all(&error_line(&id_value, DENIED, message, Some(json!({"reason": reason.code()})))).await?;
                            host_out.flush().await?;
                            continue;
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
                        } else if let Some(Ok((kind, item))) = enforce::called_item(&method, params) {
                            let locked = locked.digest(kind, &item);
                            expect.insert(sent.clone(), Expect::Call { method: method.clone(), item, locked, request: request_digest });
                        }
                        obj.insert("id".into(), sent.to_value());
                        server_out.write_all(&line(&Value::Object(obj))).await?;
                        server_out.flush().await?;
                    }
                    (Some(method), None) => {
                        if method == "notifications/cancelled" {
                            let original = obj
                                .get("params")
                                .and_then(|p| p.get("requestId"))
                                .and_then(|r| id_of(&json!({"id": r})));
                            match original.and_then(|o| relay.cancelled(Origin::Host, &o)) {
                                Some(sent) => {
                                    if let Some(p) = obj.get_mut("params").and_then(Value::as_object_mut) {
                                        p.insert("requestId".into(), sent.to_value());
                                    }
                                }
                                None => continue,
                            }
                        }
                        server_out.write_all(&line(&Value::Object(obj))).await?;
                        server_out.flush().await?;
                    }
                    (None, Some(_)) => {
                        // The host's answer to a request the server sent.
                        let Some(waiting) = id_of(&Value::Object(obj.clone())).and_then(|id| relay.answer(&id)) else {
                            log("(host answer)", None, Decision::Note, Some("an answer to no waiting request".into()), (None, None), (None, None));
                            continue;
                        };
                        obj.insert("id".into(), waiting.original.to_value());
                        server_out.write_all(&line(&Value::Object(obj))).await?;
                        server_out.flush().await?;
                    }
                    (None, None) => {
                        log("(host line)", None, Decision::Note, Some("neither a request nor an answer".into()), (None, None), (None, None));
                    }
                }
            }
            from_server = server.next() => {
                let message = match from_server {
                    Ok(m) => m,
                    Err(ConnError::Closed | ConnError::Truncated) => {
                        for waiting in relay.drain() {
                            if waiting.origin == Origin::Host {
                                host_out.write_all(&error_line(&waiting.original.to_value(), UNAVAILABLE, "the server closed its output".into(), None)).await?;
                            }
                        }
                        host_out.flush().await?;
                        return Ok(End::ServerClosed("the server closed its output".into()));
                    }
                    Err(e) => {
                        log("(server line)", None, Decision::Note, Some(e.to_string()), (None, None), (None, None));
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
                let response_digest = Digest::of_bytes(&message.raw);
                let Value::Object(mut obj) = message.value else {
                    log("(server line)", None, Decision::Note, Some("not a JSON-RPC object".into()), (None, None), (None, None));
                    continue;
                };
                let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
                match (method, obj.get("id").cloned()) {
                    (None, Some(_)) => {
                        let Some(sent) = id_of(&Value::Object(obj.clone())) else { continue };
                        let Some(waiting) = relay.answer(&sent) else {
                            log("(server answer)", None, Decision::Note, Some("an answer to no waiting request".into()), (None, None), (None, None));
                            continue;
                        };
                        obj.insert("id".into(), waiting.original.to_value());
                        match (expect.remove(&sent), obj.remove("result")) {
                            (Some(Expect::List { kind, first_page }), Some(Value::Object(result))) => {
                                let checked = enforce::check_list_page(kind, result, first_page, locked, &mut session);
                                for w in &checked.withheld {
                                    let digests = match &w.reason {
                                        enforce::Reason::Drifted { locked, served } => (Some(*locked), Some(*served)),
                                        _ => (None, None),
                                    };
                                    log(kind.list_method(), Some(w.key.clone()), Decision::Withhold, Some(w.reason.code().into()), digests, (None, None));
                                }
                                obj.insert("result".into(), Value::Object(checked.forward));
                            }
                            (Some(Expect::Hello), Some(Value::Object(result))) => {
                                // The protocol version is what the host and the server agreed on, not
                                // the server's to change: everything else must match the lock.
                                // Capabilities are compared when the host speaks the generation the
                                // lock recorded: a server describes itself differently in an
                                // `initialize` result and in a `server/discover` result.
                                let locked_modern = crate::mcp::ProtocolVersion::parse(&locked.server.protocol_version)
                                    .is_some_and(crate::mcp::ProtocolVersion::is_modern);
                                let same_era = (waiting.method == "server/discover") == locked_modern;
                                let drift: Vec<_> = hello_drift(&result, locked)
                                    .into_iter()
                                    .filter(|d| d.field != "protocolVersion")
                                    .filter(|d| same_era || d.field != "capabilities")
                                    .collect();
                                if drift.is_empty() {
                                    obj.insert("result".into(), Value::Object(result));
                                } else {
                                    let fields: Vec<&str> = drift.iter().map(|d| d.field).collect();
                                    log(&waiting.method, None, Decision::Deny, Some(format!("server drift: {}", fields.join(", "))), (None, None), (None, None));
                                    let message = format!("mcplock blocked the session: the server's {} differ from the lock", fields.join(", "));
                                    host_out.write_all(&error_line(&waiting.original.to_value(), DENIED, message, None)).await?;
                                    host_out.flush().await?;
                                    continue;
                                }
                            }
                            (Some(Expect::Call { method, item, locked, request }), result) => {
                                let outcome = if result.is_some() { None } else { Some("the server answered with an error".to_string()) };
                                log(&method, Some(item), Decision::Forward, outcome, (locked, None), (Some(request), Some(response_digest)));
                                if let Some(result) = result {
                                    obj.insert("result".into(), result);
                                }
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
                            && id_of(&Value::Object(obj.clone()))
                                .and_then(|id| relay.send(Origin::Server, id, &method).ok())
                                .map(|sent| obj.insert("id".into(), sent.to_value()))
                                .is_some();
                        if forward {
                            host_out.write_all(&line(&Value::Object(obj))).await?;
                            host_out.flush().await?;
                        } else {
                            log(&method, None, Decision::Deny, Some("server requests are not forwarded".into()), (None, None), (None, None));
                            server_out.write_all(&error_line(&id_value, -32601, format!("mcplock does not forward {method} to the host (--allow-server-requests)"), None)).await?;
                            server_out.flush().await?;
                        }
                    }
                    (Some(method), None) => {
                        if method.ends_with("/list_changed") {
                            // What was listed may have changed: nothing from the old listing
                            // may be called until the host lists again (and the proxy checks it).
                            if let Some(kind) = ItemKind::ALL.into_iter().find(|k| k.list_changed_notification() == method) {
                                for k in ItemKind::ALL.into_iter().filter(|k| k.list_changed_notification() == kind.list_changed_notification()) {
                                    session_forget(&mut session, k, locked);
                                }
                            }
                            log(&method, None, Decision::Note, Some("listing reset until the host lists again".into()), (None, None), (None, None));
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

/// Forgets what was listed of `kind`: an empty first page.
fn session_forget(session: &mut Session, kind: ItemKind, locked: &Locked<'_>) {
    let mut empty = Map::new();
    empty.insert(kind.field().into(), Value::Array(Vec::new()));
    let _ = enforce::check_list_page(kind, empty, true, locked, session);
}

/// The server's self-description in an `initialize` or `server/discover` result, against the
/// lock.
fn hello_drift(result: &Map<String, Value>, locked: &Locked<'_>) -> Vec<enforce::ServerDrift> {
    let version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            // server/discover: the version the proxy's host asked for is one of these; the lock
            // records the one that was spoken.
            result
                .get("supportedVersions")
                .and_then(Value::as_array)
                .and_then(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .find(|s| *s == locked.server.protocol_version)
                        .map(str::to_owned)
                })
        })
        .unwrap_or_default();
    let empty = Map::new();
    let capabilities = result
        .get("capabilities")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let info = result.get("serverInfo").cloned().or_else(|| {
        result
            .get("_meta")
            .and_then(|m| m.get("io.modelcontextprotocol/serverInfo"))
            .cloned()
    });
    let instructions = result.get("instructions").and_then(Value::as_str);
    enforce::check_server(&version, capabilities, info.as_ref(), instructions, locked)
}

#[cfg(test)]
mod tests;
