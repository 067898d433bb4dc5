//! The stateless era (2026-07-28) at the gateway: requests without a session, each carrying its
//! own `_meta`, with `Mcp-Method` and `Mcp-Name` headers that must agree with the body. They are
//! served by one pooled proxy session per agent and server, opened on first use, held to the
//! lock like any other session, and ended like any other (idle, reload, stop).

use super::Gateway;
use super::host::HostSession;
use hyper::HeaderMap;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The protocol revision without sessions.
pub const MODERN: &str = "2026-07-28";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
/// JSON-RPC error of a header that disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// JSON-RPC error of a protocol version the server does not speak.
pub const UNSUPPORTED_VERSION: i64 = -32022;
/// Pages of each list a new pooled session reads before its first request.
const PRELIST_PAGES: usize = 64;

/// The version a request names in its `_meta`, if any.
fn meta_version(message: &Map<String, Value>) -> Option<&str> {
    message
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(VERSION_META))
        .and_then(Value::as_str)
}

/// Whether a request without a session id is of the stateless era: it says so in its header
/// or its `_meta`, or it is the era's `server/discover`.
pub fn is_modern(headers: &HeaderMap, message: &Map<String, Value>) -> bool {
    let header = headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok());
    let version = header.or_else(|| meta_version(message));
    version.is_some_and(|v| {
        crate::mcp::ProtocolVersion::parse(v).is_some_and(crate::mcp::ProtocolVersion::is_modern)
    }) || message.get("method").and_then(Value::as_str) == Some("server/discover")
}

/// A header value as sent: verbatim, or the `=?base64?...?=` form of a value that would not
/// survive as a header (decoded; `None` when malformed or not canonical).
pub fn decode_header(value: &str) -> Option<String> {
    use base64::Engine as _;
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_string());
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(payload).ok()?;
    (engine.encode(&bytes) == payload)
        .then(|| String::from_utf8(bytes).ok())
        .flatten()
}

/// The body field `Mcp-Name` must repeat, for the methods that name something.
fn named_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// The headers agree with the body, or what does not.
pub fn check_headers(headers: &HeaderMap, message: &Map<String, Value>) -> Result<(), String> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().ok().and_then(decode_header))
    };
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match text(METHOD_HEADER) {
        None => {
            return Err(format!(
                "no {METHOD_HEADER} header (a 2026-07-28 request names its method in it)"
            ));
        }
        Some(Some(m)) if m == method => {}
        Some(_) => {
            return Err(format!(
                "the {METHOD_HEADER} header does not name the body's method {method:?}"
            ));
        }
    }
    if let Some(field) = named_field(method) {
        let body = message
            .get("params")
            .and_then(|p| p.get(field))
            .and_then(Value::as_str);
        match (text(NAME_HEADER), body) {
            (Some(Some(name)), Some(body)) if name == body => {}
            (None, _) => {
                return Err(format!(
                    "no {NAME_HEADER} header (a {method} request names its {field} in it)"
                ));
            }
            _ => {
                return Err(format!(
                    "the {NAME_HEADER} header does not name the body's {field}"
                ));
            }
        }
    }
    if let (Some(Some(header)), Some(meta)) = (text(PROTOCOL_HEADER), meta_version(message))
        && header != meta
    {
        return Err(format!(
            "the {PROTOCOL_HEADER} header ({header}) and _meta ({meta}) disagree"
        ));
    }
    Ok(())
}

const PARAM_PREFIX: &str = "mcp-param-";
/// Depth of `properties` chains looked through for `x-mcp-header` annotations.
const MAX_PARAM_DEPTH: usize = 16;

/// The `x-mcp-header` annotations of a tool's input schema: (property path, header token),
/// found along chains of `properties` keys only (where a client mirrors them from).
pub fn param_headers(schema: &Value) -> Vec<(Vec<String>, String)> {
    let mut found = Vec::new();
    let mut stack: Vec<(Vec<String>, &Value)> = vec![(Vec::new(), schema)];
    while let Some((path, node)) = stack.pop() {
        if let (false, Some(token)) = (
            path.is_empty(),
            node.get("x-mcp-header").and_then(Value::as_str),
        ) {
            found.push((path.clone(), token.to_ascii_lowercase()));
        }
        if path.len() >= MAX_PARAM_DEPTH {
            continue;
        }
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (key, sub) in properties {
                let mut path = path.clone();
                path.push(key.clone());
                stack.push((path, sub));
            }
        }
    }
    found
}

/// An argument as a client mirrors it into a header: a string as itself, a boolean as
/// `true`/`false`, a number as its JSON text; anything else has no header form.
fn rendered(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `Mcp-Param-*` headers of a `tools/call` agree with its arguments, as the locked tool's
/// schema annotates them: each annotated argument that is present is mirrored exactly, and no
/// other `Mcp-Param-*` header is sent.
pub fn check_params(
    headers: &HeaderMap,
    annotated: &[(Vec<String>, String)],
    arguments: &Value,
) -> Result<(), String> {
    for (name, _) in headers.iter() {
        let name = name.as_str();
        if let Some(token) = name.strip_prefix(PARAM_PREFIX)
            && !annotated.iter().any(|(_, t)| t == token)
        {
            return Err(format!(
                "the {name} header mirrors no argument the locked tool annotates"
            ));
        }
    }
    for (path, token) in annotated {
        let value = path.iter().try_fold(arguments, |node, key| node.get(key));
        let expected = value.filter(|v| !v.is_null()).and_then(rendered);
        let header = format!("{PARAM_PREFIX}{token}");
        let sent = headers
            .get(header.as_str())
            .map(|v| v.to_str().ok().and_then(decode_header));
        let agrees = match (&expected, &sent) {
            (None, None) => true,
            (Some(expected), Some(Some(sent))) => {
                expected == sent
                    || matches!(value, Some(Value::Number(n)) if serde_json::from_str::<Value>(sent).ok().as_ref().and_then(Value::as_f64) == n.as_f64())
            }
            _ => false,
        };
        if !agrees {
            return Err(format!(
                "the {header} header does not mirror the argument {}",
                path.join(".")
            ));
        }
    }
    Ok(())
}

/// The version a server was locked speaking.
pub fn locked_version(gateway: &Gateway, server: &str) -> String {
    gateway
        .state()
        .lockfile
        .servers
        .get(server)
        .map(|s| s.protocol_version.clone())
        .unwrap_or_default()
}

/// Whether a server was locked in the stateless era (only such a server is served without a
/// session).
pub fn modern_locked(gateway: &Gateway, server: &str) -> bool {
    crate::mcp::ProtocolVersion::parse(&locked_version(gateway, server))
        .is_some_and(crate::mcp::ProtocolVersion::is_modern)
}

/// A stateless request's headers held to its body, and for a `tools/call` of `tool` on
/// `server` its `Mcp-Param-*` headers to its arguments as the locked tool's schema annotates
/// them (a tool the lock does not hold is left to the session to deny); otherwise the 400
/// answer.
pub fn held_to_body(
    gateway: &Gateway,
    headers: &HeaderMap,
    message: &Map<String, Value>,
    call: Option<(&str, Option<&str>)>,
) -> Result<(), super::wire::Refused> {
    let checked = check_headers(headers, message).and_then(|()| {
        if message.get("method").and_then(Value::as_str) != Some("tools/call") {
            return Ok(());
        }
        let schema = call.and_then(|(server, tool)| {
            let state = gateway.state();
            let definition = state.lockfile.servers.get(server)?.tools.get(tool?)?;
            definition.get("inputSchema")
        });
        let annotated = schema.as_ref().map(param_headers).unwrap_or_default();
        let empty = json!({});
        let arguments = message
            .get("params")
            .and_then(|p| p.get("arguments"))
            .unwrap_or(&empty);
        check_params(headers, &annotated, arguments)
    });
    checked.map_err(|why| {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let doc = json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": HEADER_MISMATCH, "message": why, "data": {"reason": "header-mismatch"}}});
        let status = hyper::StatusCode::BAD_REQUEST;
        let mut response = super::wire::full(status, "application/json", doc.to_string());
        response
            .extensions_mut()
            .insert(super::wire::Refusal("header-mismatch"));
        Box::new(response)
    })
}

/// The answer to a stateless request for a server locked in the handshake era: the version it
/// speaks, so a client falls back to `initialize`.
pub fn unsupported(id: &Value, requested: Option<&str>, locked: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": UNSUPPORTED_VERSION,
            "message": format!("this server was locked speaking {locked}: initialize a session"),
            "data": {"supported": [locked], "requested": requested.unwrap_or(MODERN)},
        },
    })
}

/// The agent's pooled session for `server`: the one open, or a new one that has read every
/// list once (so a host that lists rarely, as the era allows, is not refused what it was
/// shown in an earlier request).
pub async fn pooled(
    gateway: &Arc<Gateway>,
    agent: &str,
    server: &str,
    meta: Option<&Value>,
) -> Result<(String, Arc<HostSession>), super::wire::Refused> {
    let key = (agent.to_string(), server.to_string());
    let (id, session, ready) = {
        let mut pool = gateway.pool();
        let open = pool
            .get(&key)
            .and_then(|(id, ready)| Some((id.clone(), gateway.session(id)?, Arc::clone(ready))));
        match open {
            Some(open) => open,
            None => {
                let (id, session) = super::wire::open_session(gateway, agent, server)?;
                session.pool();
                let ready = Arc::new(tokio::sync::OnceCell::new());
                pool.insert(key, (id.clone(), Arc::clone(&ready)));
                (id, session, ready)
            }
        }
    };
    // Only the kinds the lock holds items of: the server advertised those when it was locked
    // (a strict server refuses a list it does not offer), and a kind the lock does not hold
    // (static resources without `lock --resources`) would only be withheld whole.
    let kinds: Vec<&str> = {
        let state = gateway.state();
        let entry = state.lockfile.servers.get(server);
        crate::core::snapshot::ItemKind::ALL
            .into_iter()
            .filter(|k| entry.is_some_and(|e| e.items(*k).is_some_and(|i| !i.is_empty())))
            .map(|k| k.list_method())
            .collect()
    };
    ready
        .get_or_init(|| prelist(gateway, &session, meta, &kinds))
        .await;
    Ok((id, session))
}

/// Reads every list through the session, page by page, as a host would.
async fn prelist(gateway: &Gateway, session: &HostSession, meta: Option<&Value>, kinds: &[&str]) {
    let mut n = 0;
    for &method in kinds {
        let mut cursor: Option<Value> = None;
        for _ in 0..PRELIST_PAGES {
            n += 1;
            let mut params = Map::new();
            if let Some(meta) = meta {
                params.insert("_meta".into(), meta.clone());
            }
            if let Some(cursor) = cursor.take() {
                params.insert("cursor".into(), cursor);
            }
            let request = json!({"jsonrpc": "2.0", "id": n, "method": method, "params": params});
            let Value::Object(request) = request else {
                break;
            };
            let Ok(answer) = session.request_unique(request, &gateway.limits).await else {
                break;
            };
            cursor = serde_json::from_slice::<Value>(&answer)
                .ok()
                .and_then(|a| a.get("result")?.get("nextCursor").cloned())
                .filter(|c| !c.is_null());
            if cursor.is_none() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn call(name: &str) -> Map<String, Value> {
        let v = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "_meta": {VERSION_META: MODERN}}});
        v.as_object().unwrap().clone()
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        let ok = headers(&[
            (METHOD_HEADER, "tools/call"),
            (NAME_HEADER, "read"),
            (PROTOCOL_HEADER, MODERN),
        ]);
        assert_eq!(check_headers(&ok, &call("read")), Ok(()));
        assert!(is_modern(&ok, &call("read")));
        // Another tool named in the header than in the body: the header is what a router
        // would have authorized.
        assert!(
            check_headers(&ok, &call("delete"))
                .unwrap_err()
                .contains("mcp-name")
        );
        let no_name = headers(&[(METHOD_HEADER, "tools/call")]);
        assert!(check_headers(&no_name, &call("read")).is_err());
        let other = headers(&[(METHOD_HEADER, "tools/list"), (NAME_HEADER, "read")]);
        assert!(
            check_headers(&other, &call("read"))
                .unwrap_err()
                .contains("mcp-method")
        );
        let old = headers(&[
            (METHOD_HEADER, "tools/call"),
            (NAME_HEADER, "read"),
            (PROTOCOL_HEADER, "2025-11-25"),
        ]);
        assert!(
            check_headers(&old, &call("read"))
                .unwrap_err()
                .contains("disagree")
        );
        // A name that needs encoding arrives base64-wrapped.
        let wrapped = headers(&[
            (METHOD_HEADER, "tools/call"),
            (NAME_HEADER, "=?base64?cmXDqWQ=?="),
        ]);
        assert_eq!(check_headers(&wrapped, &call("reéd")), Ok(()));
    }

    #[test]
    fn mirrored_arguments_must_agree_with_the_locked_annotations() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry"}}},
            "path": {"type": "string"}}});
        let annotated = param_headers(&schema);
        assert_eq!(annotated.len(), 2, "{annotated:?}");
        let args = json!({"region": "eu", "opts": {"dry": true}, "path": "/a"});
        let ok = headers(&[("mcp-param-region", "eu"), ("mcp-param-dry", "true")]);
        assert_eq!(check_params(&ok, &annotated, &args), Ok(()));
        // Routed on one region, asking for another.
        let other = headers(&[("mcp-param-region", "us"), ("mcp-param-dry", "true")]);
        assert!(
            check_params(&other, &annotated, &args)
                .unwrap_err()
                .contains("region")
        );
        // An argument present but not mirrored; a header for no annotated argument.
        let missing = headers(&[("mcp-param-region", "eu")]);
        assert!(check_params(&missing, &annotated, &args).is_err());
        let extra = headers(&[
            ("mcp-param-region", "eu"),
            ("mcp-param-dry", "true"),
            ("mcp-param-path", "/a"),
        ]);
        assert!(
            check_params(&extra, &annotated, &args)
                .unwrap_err()
                .contains("mirrors no argument")
        );
        // An absent argument sends no header.
        let none = headers(&[]);
        assert_eq!(
            check_params(&none, &annotated, &json!({"path": "/a"})),
            Ok(())
        );
    }

    #[test]
    fn a_malformed_or_non_canonical_base64_header_matches_nothing() {
        assert_eq!(decode_header("plain"), Some("plain".into()));
        assert_eq!(decode_header("=?base64?cmVhZA==?="), Some("read".into()));
        assert_eq!(decode_header("=?base64?cmVhZB==?="), None);
        assert_eq!(decode_header("=?base64?!!!?="), None);
        assert_eq!(decode_header("=?base64?/w==?="), None);
    }
}
