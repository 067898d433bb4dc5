//! The aggregated endpoint, `/mcp`: one host session that offers every server the agent may
//! use. Each server is a member: a session of its own (the proxy's, held to that server's lock
//! and the agent's grant, exactly as at `/servers/NAME/mcp`). This only names and routes: a
//! tool or prompt `NAME` of server `SERVER` is offered as `SERVER__NAME`, and a call of it goes
//! to that member as `NAME` (split at the first `__`; a server whose name holds `__` is not
//! aggregated). No decision is made here.

use super::Gateway;
use super::host::HostSession;
use crate::core::agents::Grant;
use hyper::body::Bytes;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Between a server's name and an item's name.
pub const SEPARATOR: &str = "__";
/// Pages of one member's list read for one listing of the aggregate.
const MAX_PAGES: usize = 64;
/// Ids of the requests aggregates send members on their own.
static OWN_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One host session of the aggregated endpoint.
pub struct Aggregate {
    pub agent: String,
    /// Each server's member session id.
    members: BTreeMap<String, String>,
    /// The host's GET stream, fed by every member's.
    stream: Mutex<Option<mpsc::Sender<Bytes>>>,

    /// Which member each listed resource and template came from, to route reads by.
    resources: Mutex<Resources>,
    /// The stateless era's `_meta` its own requests carry (the host's); `None` in a session.
    meta: Option<Value>,
}

/// Resources and templates by the member that listed them (only what passed its checks, so
/// bounded by the locks). A URI two members listed is routed to neither.
#[derive(Default)]
struct Resources {
    uris: BTreeMap<String, Option<String>>,
    templates: Vec<(String, String)>,
}

impl Resources {
    /// The member a resource URI (or a template, for a completion) goes to.
    fn route(&self, uri: &str) -> Result<String, String> {
        if let Some(server) = self.uris.get(uri) {
            return server.clone().ok_or_else(|| {
                format!(
                    "{uri:?} is listed by more than one server here: read it at /servers/NAME/mcp"
                )
            });
        }
        let mut servers: Vec<&String> = self
            .templates
            .iter()
            .filter(|(template, _)| {
                template == uri || crate::core::enforce::template_matches(template, uri)
            })
            .map(|(_, server)| server)
            .collect();
        servers.sort();
        servers.dedup();
        match servers.as_slice() {
            [server] => Ok((*server).clone()),
            [] => Err(format!(
                "{uri:?} is not a listed resource nor of a listed template: list them first"
            )),
            _ => Err(format!(
                "{uri:?} fits templates of more than one server here: read it at /servers/NAME/mcp"
            )),
        }
    }
}

/// An aggregated name split into the server and the member's name.
pub fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once(SEPARATOR)
}

/// The servers the agent may use through the aggregate: granted, servable, and with a name the
/// separator cannot be confused in.
pub fn servers(gateway: &Gateway, agent: &str) -> Vec<String> {
    let state = gateway.state();
    state
        .lockfile
        .servers
        .keys()
        .filter(|s| !s.contains(SEPARATOR))
        .filter(|s| state.agents.grant(agent, s) != Grant::None)
        .filter(|s| matches!(state.upstreams.get(*s), Some(Ok(_))))
        .cloned()
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Aggregate {
    /// Opens a member for each server the agent may use and initializes each with the host's
    /// `initialize`; the answer offers tools and prompts. A member that cannot start, or
    /// refuses the handshake, is left out (and said).
    pub async fn open(
        gateway: &Arc<Gateway>,
        agent: &str,
        initialize: &Map<String, Value>,
    ) -> Result<(Aggregate, Value), String> {
        let mut members = BTreeMap::new();
        let mut version = None;
        let id = initialize.get("id").cloned().unwrap_or(Value::Null);
        let line = serde_json::to_vec(initialize).unwrap_or_default();
        let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec();
        for server in servers(gateway, agent) {
            let member = match super::wire::open_session(gateway, agent, &server) {
                Ok((member, session)) => (member, session),
                Err(_) => {
                    let text = "left out of the aggregate: its session could not be opened";
                    crate::edge::log::warn("gateway", text, &[("server", &server)]);
                    continue;
                }
            };
            let answer = member.1.request(&id, line.clone(), &gateway.limits).await;
            let result = answer
                .ok()
                .and_then(|a| serde_json::from_slice::<Value>(&a).ok())
                .and_then(|a| a.get("result").cloned());
            let Some(result) = result else {
                let text = "left out of the aggregate: it did not answer initialize";
                crate::edge::log::warn("gateway", text, &[("server", &server)]);
                gateway.end(&member.0);
                continue;
            };
            member.1.send(initialized.clone()).await;
            version = version.or_else(|| result.get("protocolVersion").cloned());
            members.insert(server, member.0);
        }
        if members.is_empty() {
            return Err(format!(
                "agent {agent:?} may use no server that can be served here (a grant, and a locked server that starts)"
            ));
        }
        let names: Vec<&str> = members.keys().map(String::as_str).collect();
        let result = json!({
            "protocolVersion": version.unwrap_or_else(|| json!("2025-11-25")),
            "capabilities": capabilities(),
            "serverInfo": {"name": "mcplock-gateway", "version": env!("CARGO_PKG_VERSION")},
            "instructions": instructions(&names),
        });
        let aggregate = Aggregate {
            agent: agent.to_string(),
            members,
            stream: Mutex::new(None),

            resources: Mutex::new(Resources::default()),
            meta: None,
        };
        Ok((
            aggregate,
            json!({"jsonrpc": "2.0", "id": id, "result": result}),
        ))
    }

    /// The agent's stateless aggregate: its pooled session (`stateless::pooled`) for each
    /// server it may use that was locked in the stateless era; `None` when there is none.
    pub async fn pooled(
        gateway: &Arc<Gateway>,
        agent: &str,
        meta: Option<&Value>,
    ) -> Option<Aggregate> {
        let mut members = BTreeMap::new();
        for server in servers(gateway, agent) {
            if !super::stateless::modern_locked(gateway, &server) {
                continue;
            }
            if let Ok((id, _)) = super::stateless::pooled(gateway, agent, &server, meta).await {
                members.insert(server, id);
            }
        }
        (!members.is_empty()).then(|| Aggregate {
            agent: agent.to_string(),
            members,
            stream: Mutex::new(None),
            resources: Mutex::new(Resources::default()),
            meta: meta.cloned(),
        })
    }

    /// What `server/discover` answers for the stateless aggregate.
    fn discovered(&self, id: &Value) -> Value {
        let names: Vec<&str> = self.members.keys().map(String::as_str).collect();
        json!({"jsonrpc": "2.0", "id": id, "result": {
            "supportedVersions": [super::stateless::MODERN],
            "capabilities": capabilities(),
            "instructions": instructions(&names),
        }})
    }

    /// The member sessions still open, by server; `None` once any of them ended (the host
    /// then initializes again).
    fn members(&self, gateway: &Gateway) -> Option<Vec<(String, Arc<HostSession>)>> {
        let members: Option<Vec<_>> = self
            .members
            .iter()
            .map(|(server, id)| Some((server.clone(), gateway.session(id)?)))
            .collect();
        // A request of the aggregate is one of each member's: none of them is idle.
        for (_, member) in members.iter().flatten() {
            member.touch();
        }
        members
    }

    /// Ends every member.
    pub fn close(&self, gateway: &Gateway) {
        for id in self.members.values() {
            gateway.end(id);
        }
        lock(&self.stream).take();
    }

    /// Whether every member is still open.
    pub fn alive(&self, gateway: &Gateway) -> bool {
        self.members(gateway).is_some()
    }

    /// Answers one host request (`None`: the aggregate ended).
    pub async fn request(&self, gateway: &Gateway, message: Map<String, Value>) -> Option<Value> {
        let members = self.members(gateway)?;
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let answer = match method {
            "ping" => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
            "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => {
                self.list(gateway, &members, &id, method).await
            }
            "tools/call" | "prompts/get" => route(gateway, &members, message).await?,
            "resources/read" | "completion/complete" => {
                self.route_resource(gateway, &members, message).await?
            }
            _ => error(
                &id,
                -32601,
                format!(
                    "{method} is not offered by the aggregated endpoint (use /servers/NAME/mcp)"
                ),
            ),
        };
        Some(answer)
    }

    /// Passes a host notification to every member.
    pub async fn notify(&self, gateway: &Gateway, line: Vec<u8>) -> bool {
        let Some(members) = self.members(gateway) else {
            return false;
        };
        for (_, member) in members {
            member.send(line.clone()).await;
        }
        true
    }

    /// Every member's list: tools and prompts named `SERVER__NAME`; resources and templates
    /// as served (a URI names itself), remembered by member to route reads by.
    async fn list(
        &self,
        gateway: &Gateway,
        members: &[(String, Arc<HostSession>)],
        id: &Value,
        method: &str,
    ) -> Value {
        let field = match method {
            "tools/list" => "tools",
            "prompts/list" => "prompts",
            "resources/list" => "resources",
            _ => "resourceTemplates",
        };
        let mut routes = Resources::default();
        let mut items = Vec::new();
        for (server, member) in members {
            let mut cursor: Option<Value> = None;
            for _ in 0..MAX_PAGES {
                // Unique over every aggregate: stateless ones share their members.
                let n = OWN_IDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let own = json!(format!("mcplock-aggregate-{n}"));
                let mut params = Map::new();
                if let Some(cursor) = cursor.take() {
                    params.insert("cursor".into(), cursor);
                }
                if let Some(meta) = &self.meta {
                    params.insert("_meta".into(), meta.clone());
                }
                let request =
                    json!({"jsonrpc": "2.0", "id": own, "method": method, "params": params});
                let Value::Object(request) = request else {
                    break;
                };
                let Some(result) = member
                    .request_unique(request, &gateway.limits)
                    .await
                    .ok()
                    .and_then(|a| serde_json::from_slice::<Value>(&a).ok())
                    .and_then(|mut a| a.get_mut("result").map(Value::take))
                else {
                    break;
                };
                let page = result.get(field).and_then(Value::as_array).cloned();
                for item in page.unwrap_or_default() {
                    if let Some(item) = renamed(item, server, field, &mut routes) {
                        items.push(item);
                    }
                }
                cursor = result.get("nextCursor").cloned().filter(|c| !c.is_null());
                if cursor.is_none() {
                    break;
                }
            }
        }
        let mut known = lock(&self.resources);
        match field {
            "resources" => known.uris = routes.uris,
            "resourceTemplates" => known.templates = routes.templates,
            _ => {}
        }
        let mut result = json!({field: items});
        if self.meta.is_some() {
            // The stateless era's list result: complete, not to be cached beyond this answer,
            // and this agent's own (its grants shape it).
            result["resultType"] = json!("complete");
            result["ttlMs"] = json!(0);
            result["cacheScope"] = json!("private");
        }
        json!({"jsonrpc": "2.0", "id": id, "result": result})
    }

    /// A read of a resource, or a completion of a prompt's or a template's argument, sent to
    /// the member that listed it.
    async fn route_resource(
        &self,
        gateway: &Gateway,
        members: &[(String, Arc<HostSession>)],
        mut message: Map<String, Value>,
    ) -> Option<Value> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let params = message.get("params");
        let reference = params.and_then(|p| p.get("ref"));
        let prompt = reference
            .filter(|r| r.get("type").and_then(Value::as_str) == Some("ref/prompt"))
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(name) = prompt {
            // A prompt's completion: routed by its name, as a prompts/get is.
            let Some((server, item)) = split(&name) else {
                let why = format!("no prompt {name:?} here: names are SERVER{SEPARATOR}NAME");
                return Some(error(&id, -32602, why));
            };
            if let Some(r) = message
                .get_mut("params")
                .and_then(|p| p.get_mut("ref"))
                .and_then(Value::as_object_mut)
            {
                r.insert("name".into(), json!(item));
            }
            return send(gateway, members, server, message).await;
        }
        let uri = params
            .and_then(|p| p.get("uri"))
            .or_else(|| reference.and_then(|r| r.get("uri")))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut routed = lock(&self.resources).route(uri);
        if routed.is_err() {
            // Not listed in this session (or a stateless request, which has none): list, then
            // route by what the members listed.
            let id = json!(null);
            for method in ["resources/list", "resources/templates/list"] {
                self.list(gateway, members, &id, method).await;
            }
            routed = lock(&self.resources).route(uri);
        }
        match routed {
            Ok(server) => send(gateway, members, &server, message).await,
            Err(why) => Some(error(&id, -32602, why)),
        }
    }

    /// Opens the host's GET stream: what every member sends unasked.
    pub fn open_stream(&self, gateway: &Gateway, queue: usize) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        *lock(&self.stream) = Some(tx.clone());
        for (_, member) in self.members(gateway).unwrap_or_default() {
            let mut events = member.open_stream(queue);
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if tx.send(event).await.is_err() {
                        break;
                    }
                }
            });
        }
        rx
    }
}

/// One listed item as the aggregate offers it: tools and prompts renamed `SERVER__NAME`,
/// resources and templates as served and remembered by member.
fn renamed(mut item: Value, server: &str, field: &str, routes: &mut Resources) -> Option<Value> {
    match field {
        "resources" => {
            let uri = item.get("uri").and_then(Value::as_str)?.to_string();
            routes
                .uris
                .entry(uri)
                .and_modify(|owner| {
                    if owner.as_deref() != Some(server) {
                        *owner = None;
                    }
                })
                .or_insert_with(|| Some(server.to_string()));
        }
        "resourceTemplates" => {
            let template = item.get("uriTemplate").and_then(Value::as_str)?.to_string();
            routes.templates.push((template, server.to_string()));
        }
        _ => {
            let name = item.get("name").and_then(Value::as_str)?.to_string();
            item["name"] = json!(format!("{server}{SEPARATOR}{name}"));
        }
    }
    Some(item)
}

/// A request sent as it is to `server`'s member.
async fn send(
    gateway: &Gateway,
    members: &[(String, Arc<HostSession>)],
    server: &str,
    message: Map<String, Value>,
) -> Option<Value> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let Some((_, member)) = members.iter().find(|(s, _)| s == server) else {
        return Some(error(
            &id,
            -32602,
            format!("no server {server:?} in this session"),
        ));
    };
    let line = serde_json::to_vec(&message).unwrap_or_default();
    match member
        .request_from_host(&message, line, &gateway.limits)
        .await
    {
        Ok(answer) => serde_json::from_slice(&answer).ok(),
        Err(super::host::NoAnswer::Ended) => None,
        Err(_) => Some(error(
            &id,
            crate::proxy::UNAVAILABLE,
            "the server did not answer".into(),
        )),
    }
}

/// A call of `SERVER__NAME`, sent to that server's member as `NAME`.
async fn route(
    gateway: &Gateway,
    members: &[(String, Arc<HostSession>)],
    mut message: Map<String, Value>,
) -> Option<Value> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let name = message
        .get("params")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let routed = split(&name)
        .filter(|(server, _)| members.iter().any(|(s, _)| s == server))
        .map(|(server, item)| (server.to_string(), item.to_string()));
    let Some((server, item)) = routed else {
        let why =
            format!("no tool or prompt {name:?} here: names are SERVER{SEPARATOR}NAME, as listed");
        return Some(error(&id, -32602, why));
    };
    if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
        params.insert("name".into(), json!(item));
    }
    send(gateway, members, &server, message).await
}

fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "prompts": {"listChanged": true},
        "resources": {"listChanged": true},
        "completions": {},
    })
}

fn instructions(servers: &[&str]) -> String {
    format!(
        "Tools and prompts of several servers, each named SERVER{SEPARATOR}NAME. Servers: {}.",
        servers.join(", ")
    )
}

fn error(id: &Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// `/mcp`: POST (initialize opens an aggregate; then requests and notifications), GET (the
/// stream), DELETE.
pub async fn serve(
    gateway: Arc<Gateway>,
    req: hyper::Request<hyper::body::Incoming>,
    agent: String,
) -> hyper::Response<super::wire::Body> {
    use super::wire::{full, refuse};
    use hyper::{Method, StatusCode};
    let named = match req.headers().get(super::wire::SESSION_HEADER) {
        None => None,
        Some(id) => {
            let id = id.to_str().unwrap_or_default().to_string();
            let found = gateway.aggregates().get(&id).cloned();
            match found {
                Some(aggregate) if aggregate.agent == agent && aggregate.alive(&gateway) => {
                    Some((id, aggregate))
                }
                _ => {
                    let why = "no such session (it ended): initialize again";
                    return refuse(StatusCode::NOT_FOUND, "session-not-found", why.into());
                }
            }
        }
    };
    match (req.method().clone(), named) {
        (Method::POST, named) => post(gateway, req, agent, named).await,
        (Method::GET, Some((_, aggregate))) => {
            let events = aggregate.open_stream(&gateway, gateway.limits.stream_queue);
            let mut response =
                hyper::Response::new(http_body_util::BodyExt::boxed(super::wire::Events(events)));
            let headers = response.headers_mut();
            let event_stream = hyper::header::HeaderValue::from_static("text/event-stream");
            headers.insert(hyper::header::CONTENT_TYPE, event_stream);
            response
        }
        (Method::DELETE, Some((id, aggregate))) => {
            gateway.aggregates().remove(&id);
            aggregate.close(&gateway);
            full(StatusCode::OK, "application/json", Bytes::new())
        }
        (Method::GET | Method::DELETE, None) => {
            let why = "GET and DELETE need the Mcp-Session-Id of an initialized session";
            refuse(StatusCode::BAD_REQUEST, "no-session", why.into())
        }
        _ => refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "use POST, GET or DELETE".into(),
        ),
    }
}

async fn post(
    gateway: Arc<Gateway>,
    req: hyper::Request<hyper::body::Incoming>,
    agent: String,
    named: Option<(String, Arc<Aggregate>)>,
) -> hyper::Response<super::wire::Body> {
    use super::wire::{full, refuse};
    use hyper::StatusCode;
    let headers = req.headers().clone();
    let (body, message) = match super::wire::read_message(&gateway, req).await {
        Ok(read) => read,
        Err(refusal) => return *refusal,
    };
    let method = message.get("method").and_then(Value::as_str);
    let has_id = message.get("id").is_some_and(|id| !id.is_null());
    let json = |status, doc: &Value, id: Option<&str>| {
        let mut response = full(status, "application/json", doc.to_string());
        if let Some(Ok(value)) = id.map(hyper::header::HeaderValue::from_str) {
            response
                .headers_mut()
                .insert(super::wire::SESSION_HEADER, value);
        }
        response
    };
    match (named, method) {
        (None, Some("initialize")) if has_id => {
            if gateway.is_draining() {
                let why = "the gateway is stopping; connect again (to another replica, or once it is back)";
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "stopping", why.into());
            }
            let id = match super::new_session_id() {
                Ok(id) => id,
                Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
            };
            match Aggregate::open(&gateway, &agent, &message).await {
                Ok((aggregate, answer)) => {
                    gateway.aggregates().insert(id.clone(), Arc::new(aggregate));
                    json(StatusCode::OK, &answer, Some(&id))
                }
                Err(why) => refuse(StatusCode::BAD_GATEWAY, "upstream", why),
            }
        }
        (None, _) if super::stateless::is_modern(&headers, &message) => {
            stateless(&gateway, &headers, message, &agent).await
        }
        (None, _) => {
            let why = "no Mcp-Session-Id: a session starts with an initialize request";
            refuse(StatusCode::BAD_REQUEST, "no-session", why.into())
        }
        (Some((id, aggregate)), _) if has_id && method.is_some() => {
            match aggregate.request(&gateway, message).await {
                Some(answer) => json(StatusCode::OK, &answer, Some(&id)),
                None => {
                    gateway.aggregates().remove(&id);
                    aggregate.close(&gateway);
                    let why = "the session ended before the answer came: initialize again";
                    refuse(StatusCode::NOT_FOUND, "session-not-found", why.into())
                }
            }
        }
        (Some((id, aggregate)), _) => {
            // A notification (or an answer: no member asks the host anything).
            if aggregate.notify(&gateway, body.to_vec()).await {
                let mut response = full(StatusCode::ACCEPTED, "application/json", Bytes::new());
                if let Ok(value) = hyper::header::HeaderValue::from_str(&id) {
                    response
                        .headers_mut()
                        .insert(super::wire::SESSION_HEADER, value);
                }
                response
            } else {
                refuse(
                    StatusCode::NOT_FOUND,
                    "session-not-found",
                    "the session ended: initialize again".into(),
                )
            }
        }
    }
}

/// A request of the stateless era to `/mcp`: its headers held to its body (a call's
/// `Mcp-Param-*` to the locked tool of the server it names), then answered by the agent's
/// stateless aggregate: its pooled session of each server locked in that era.
async fn stateless(
    gateway: &Arc<Gateway>,
    headers: &hyper::HeaderMap,
    message: Map<String, Value>,
    agent: &str,
) -> hyper::Response<super::wire::Body> {
    use super::wire::full;
    use hyper::StatusCode;
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let params = message.get("params");
    let named = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .and_then(split);
    let call = named.map(|(server, item)| (server, Some(item)));
    if let Err(refusal) = super::stateless::held_to_body(gateway, headers, &message, call) {
        return *refusal;
    }
    let meta = params.and_then(|p| p.get("_meta")).cloned();
    let answer = |doc: &Value| full(StatusCode::OK, "application/json", doc.to_string());
    let Some(aggregate) = Aggregate::pooled(gateway, agent, meta.as_ref()).await else {
        // Nothing here speaks the stateless era: the client initializes a session instead.
        let requested = headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok());
        let doc = super::stateless::unsupported(&id, requested, "2025-11-25");
        let mut response = answer(&doc);
        response
            .extensions_mut()
            .insert(super::wire::Refusal("handshake-era"));
        return response;
    };
    let method = message.get("method").and_then(Value::as_str);
    if method == Some("server/discover") {
        return answer(&aggregate.discovered(&id));
    }
    if id.is_null() {
        aggregate
            .notify(gateway, serde_json::to_vec(&message).unwrap_or_default())
            .await;
        return full(StatusCode::ACCEPTED, "application/json", Bytes::new());
    }
    match aggregate.request(gateway, message).await {
        Some(doc) => answer(&doc),
        None => answer(&error(
            &id,
            crate::proxy::UNAVAILABLE,
            "a server's session ended: send the request again".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregated_name_splits_at_its_first_separator() {
        assert_eq!(split("files__read_file"), Some(("files", "read_file")));
        assert_eq!(split("files__read__all"), Some(("files", "read__all")));
        assert_eq!(split("plain"), None);
    }
}
