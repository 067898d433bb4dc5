//! The gateway's HTTP side: connections (plain or TLS), the routes, and Streamable HTTP
//! (2025-11-25) at `/servers/NAME/mcp`; `/mcp` is `aggregate.rs`'s, health at `/healthz` and
//! `/readyz`, metrics at `/metrics`. Every MCP request needs an agent's bearer token and a grant for
//! the server; a browser's `Origin` must be a loopback one or allowed.

use super::host::{HostSession, NoAnswer};
use super::wire::{
    Body, Events, Refusal, Refused, SESSION_HEADER, full, open_session, read_message, refuse,
};
use super::{Gateway, stateless};
use crate::core::agents::{Grant, valid_name};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take over its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How often idle sessions are looked for.
const SWEEP: Duration = Duration::from_secs(15);

/// Serves HTTP on `listener` until `stop` resolves, each connection on its own task; then
/// drains (requests under way are answered, sessions end, their servers stop).
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    stop: impl std::future::Future<Output = ()>,
) {
    let sweeper = {
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP).await;
                gateway.end_idle();
            }
        })
    };
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            match gateway.tls.clone() {
                None => connection(gateway, stream).await,
                Some(tls) => {
                    // A client that does not finish its handshake in time is dropped.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE, tls.accept(stream)).await
                    {
                        connection(gateway, stream).await;
                    }
                }
            }
        });
    }
    crate::edge::log::info(
        "gateway",
        "stopping: no new sessions; waiting for the requests under way",
        &[],
    );
    gateway.drain().await;
    sweeper.abort();
}

/// One connection (plain or TLS), served until the client closes it.
async fn connection<S>(gateway: Arc<Gateway>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let gateway = Arc::clone(&gateway);
        async move { Ok::<_, Infallible>(route(gateway, req).await) }
    });
    let io = hyper_util::rt::TokioIo::new(stream);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

async fn route(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let response = answer(Arc::clone(&gateway), req).await;
    if let Some(Refusal(reason)) = response.extensions().get() {
        gateway.metrics.refused(reason);
    }
    response
}

async fn answer(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if req.method() == Method::GET
        && let Some(response) = fixed(&gateway, &req, &path).await
    {
        return response;
    }
    if path == "/mcp" {
        if let Some(refusal) = check_origin(&gateway, &req) {
            return refusal;
        }
        return match authenticate(&gateway, &req).await {
            Ok(agent) => super::aggregate::serve(gateway, req, agent).await,
            Err(refusal) => *refusal,
        };
    }
    let Some(server) = path
        .strip_prefix("/servers/")
        .and_then(|rest| rest.strip_suffix("/mcp"))
        .filter(|name| valid_name(name))
        .map(str::to_owned)
    else {
        let message =
            "no such endpoint: servers are at /servers/NAME/mcp, all of them at /mcp".to_string();
        return refuse(StatusCode::NOT_FOUND, "not-found", message);
    };
    server_endpoint(gateway, req, server).await
}

/// The GET endpoints that are no MCP endpoint (metrics, health, readiness, the Protected
/// Resource Metadata); `None` for any other path.
async fn fixed(gateway: &Gateway, req: &Request<Incoming>, path: &str) -> Option<Response<Body>> {
    Some(match path {
        "/metrics" => match authenticate(gateway, req).await {
            Ok(_) => full(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                gateway.metrics.render(),
            ),
            Err(refusal) => *refusal,
        },
        "/healthz" => full(StatusCode::OK, "text/plain", "ok\n"),
        p if p.starts_with("/.well-known/oauth-protected-resource") => match &gateway.oauth {
            Some(oauth) => {
                let doc = oauth.resource_metadata().to_string();
                full(StatusCode::OK, "application/json", doc)
            }
            None => refuse(
                StatusCode::NOT_FOUND,
                "not-found",
                "this gateway takes no OAuth tokens (start it with --oauth-issuer)".into(),
            ),
        },
        "/readyz" if gateway.is_draining() => {
            full(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "stopping\n")
        }
        "/readyz" => full(StatusCode::OK, "text/plain", "ready\n"),
        _ => return None,
    })
}

/// `/servers/NAME/mcp`: the agent's session with one locked server it is granted.
async fn server_endpoint(
    gateway: Arc<Gateway>,
    req: Request<Incoming>,
    server: String,
) -> Response<Body> {
    if let Some(refusal) = check_origin(&gateway, &req) {
        return refusal;
    }
    let agent = match authenticate(&gateway, &req).await {
        Ok(agent) => agent,
        Err(refusal) => return *refusal,
    };
    let state = gateway.state();
    if !state.lockfile.servers.contains_key(&server) {
        let message = format!("no locked server {server:?} behind this gateway");
        return refuse(StatusCode::NOT_FOUND, "not-found", message);
    }
    if state.agents.grant(&agent, &server) == Grant::None {
        let message = format!(
            "agent {agent:?} has no grant for server {server:?} (an administrator adds one: mcplock gateway token --agent {agent} --grant {server})"
        );
        return refuse(StatusCode::FORBIDDEN, "not-granted", message);
    }
    match *req.method() {
        Method::POST => post(gateway, req, agent, server).await,
        Method::GET => get(gateway, req, &agent, &server),
        Method::DELETE => delete(gateway, req, &agent, &server),
        _ => {
            let mut response = refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "use POST, GET or DELETE".into(),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, GET, DELETE"));
            response
        }
    }
}

/// A browser page may call only from a loopback origin or one allowed by name (DNS
/// rebinding); a request without `Origin` is not from a browser.
fn check_origin(gateway: &Gateway, req: &Request<Incoming>) -> Option<Response<Body>> {
    let origin = req.headers().get(header::ORIGIN)?;
    let text = origin.to_str().unwrap_or_default();
    let loopback =
        reqwest::Url::parse(text).is_ok_and(|url| crate::transport::http::is_loopback(&url));
    if loopback || gateway.allowed_origins.iter().any(|o| o == text) {
        return None;
    }
    let message = format!(
        "Origin {:?} is not allowed (only loopback origins and those given with --allow-origin)",
        crate::core::text::escape(text)
    );
    Some(refuse(StatusCode::FORBIDDEN, "origin", message))
}

/// The agent a request's bearer token is: one of the agents file's tokens, or (with
/// `--oauth-issuer`) an access token of that issuer whose client is an agent.
async fn authenticate(gateway: &Gateway, req: &Request<Incoming>) -> Result<String, Refused> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let state = gateway.state();
    let (reason, message) = match token {
        None => (
            "no-token",
            "this gateway needs an agent's token: Authorization: Bearer TOKEN (mcplock gateway token makes one)".to_string(),
        ),
        Some(token) => {
            if let Some(agent) = state.agents.authenticate(token) {
                return Ok(agent.to_string());
            }
            match &gateway.oauth {
                Some(oauth) if !token.starts_with(crate::core::agents::TOKEN_PREFIX) => {
                    match oauth.verify(token).await {
                        Ok(bearer) => return agent_of(&state.agents, &bearer.subject),
                        Err(why) => (
                            "invalid-token",
                            format!(
                                "the access token is refused: {why}; get one for {} from {}",
                                oauth.audience, oauth.issuer
                            ),
                        ),
                    }
                }
                _ => (
                    "invalid-token",
                    "the bearer token is not one of this gateway's (an administrator makes one: mcplock gateway token --agents FILE --agent NAME)".to_string(),
                ),
            }
        }
    };
    let mut response = refuse(StatusCode::UNAUTHORIZED, reason, message);
    let mut challenge = "Bearer realm=\"mcplock\"".to_string();
    if reason == "invalid-token" {
        challenge.push_str(", error=\"invalid_token\"");
    }
    if let Some(oauth) = &gateway.oauth {
        challenge.push_str(&format!(
            ", resource_metadata=\"{}\"",
            metadata_url(&oauth.audience)
        ));
    }
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    Err(Box::new(response))
}

/// The agent an OAuth client is, or a refusal naming the command that makes it one.
fn agent_of(agents: &crate::core::agents::Agents, subject: &str) -> Result<String, Refused> {
    if let Some(agent) = agents.by_subject(subject) {
        return Ok(agent.to_string());
    }
    let message = format!(
        "the access token is valid, but its client {:?} is no agent of this gateway (an administrator makes it one: mcplock gateway subject --agents FILE --agent NAME --subject ID)",
        crate::core::text::escape(subject)
    );
    Err(Box::new(refuse(
        StatusCode::FORBIDDEN,
        "not-an-agent",
        message,
    )))
}

/// Where a resource's Protected Resource Metadata is (RFC 9728): the well-known path inserted
/// between its origin and its path.
fn metadata_url(resource: &str) -> String {
    match reqwest::Url::parse(resource) {
        Ok(url) => {
            let path = url.path().trim_end_matches('/');
            format!(
                "{}/.well-known/oauth-protected-resource{path}",
                url.origin().ascii_serialization()
            )
        }
        Err(_) => format!("{resource}/.well-known/oauth-protected-resource"),
    }
}

/// The session a request names, held to the agent and server it was opened for.
fn named_session(
    gateway: &Gateway,
    req: &Request<Incoming>,
    agent: &str,
    server: &str,
) -> Result<Option<(String, Arc<HostSession>)>, Refused> {
    let Some(id) = req.headers().get(SESSION_HEADER) else {
        return Ok(None);
    };
    let id = id.to_str().unwrap_or_default().to_string();
    match gateway.session(&id) {
        Some(session) if session.agent == agent && session.server == server => {
            Ok(Some((id, session)))
        }
        // Ended, never opened, or another agent's: the same answer, so ids cannot be probed.
        _ => Err(Box::new(refuse(
            StatusCode::NOT_FOUND,
            "session-not-found",
            "no such session (it ended): initialize again".into(),
        ))),
    }
}

async fn post(
    gateway: Arc<Gateway>,
    req: Request<Incoming>,
    agent: String,
    server: String,
) -> Response<Body> {
    let named = match named_session(&gateway, &req, &agent, &server) {
        Ok(named) => named,
        Err(refusal) => return *refusal,
    };
    let headers = req.headers().clone();
    let (body, message) = match read_message(&gateway, req).await {
        Ok(read) => read,
        Err(refusal) => return *refusal,
    };
    let method = message.get("method").and_then(Value::as_str);
    let id = message.get("id").cloned();
    let mut stateless = false;
    let (session_id, session) = match named {
        Some(named) => named,
        None if method == Some("initialize") && id.is_some() => {
            match open_session(&gateway, &agent, &server) {
                Ok(opened) => opened,
                Err(refusal) => return *refusal,
            }
        }
        None if stateless::is_modern(&headers, &message) => {
            stateless = true;
            match stateless_session(&gateway, &headers, &message, (&agent, &server)).await {
                Ok(opened) => opened,
                Err(refusal) => return *refusal,
            }
        }
        None => {
            let why = "no Mcp-Session-Id: a session starts with an initialize request";
            return refuse(StatusCode::BAD_REQUEST, "no-session", why.into());
        }
    };
    let line = body.to_vec();
    let started = std::time::Instant::now();
    let mut response = match (method, id) {
        (Some(method), Some(_)) => {
            match (session.request_from_host(&message, line, &gateway.limits)).await {
                Ok(answer) => {
                    let seconds = started.elapsed().as_secs_f64();
                    gateway.metrics.answered(&server, method, seconds);
                    full(StatusCode::OK, "application/json", answer)
                }
                Err(no) => no_answer(no),
            }
        }
        // A notification, or the host's answer to the server's request.
        _ => match session.send(line).await {
            true => full(StatusCode::ACCEPTED, "application/json", Bytes::new()),
            false => no_answer(NoAnswer::Ended),
        },
    };
    if let (false, Ok(value)) = (stateless, HeaderValue::from_str(&session_id)) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// The session a stateless request is served by, after its headers are held to its body; a
/// server locked in the handshake era answers with the version it speaks.
async fn stateless_session(
    gateway: &Arc<Gateway>,
    headers: &hyper::HeaderMap,
    message: &serde_json::Map<String, Value>,
    (agent, server): (&str, &str),
) -> Result<(String, Arc<HostSession>), Refused> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let tool = message
        .get("params")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str);
    stateless::held_to_body(gateway, headers, message, Some((server, tool)))?;
    if !stateless::modern_locked(gateway, server) {
        let locked = stateless::locked_version(gateway, server);
        let requested = headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok());
        let doc = stateless::unsupported(&id, requested, &locked);
        let mut response = full(StatusCode::OK, "application/json", doc.to_string());
        response.extensions_mut().insert(Refusal("handshake-era"));
        return Err(Box::new(response));
    }
    let meta = message.get("params").and_then(|p| p.get("_meta"));
    stateless::pooled(gateway, agent, server, meta).await
}

fn no_answer(no: NoAnswer) -> Response<Body> {
    match no {
        NoAnswer::Ended => refuse(
            StatusCode::NOT_FOUND,
            "session-not-found",
            "the session ended before the answer came: initialize again".into(),
        ),
        NoAnswer::Busy => refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "too many requests of this session are waiting for answers".into(),
        ),
        NoAnswer::DuplicateId => refuse(
            StatusCode::BAD_REQUEST,
            "duplicate-id",
            "a request with this id is already waiting for its answer".into(),
        ),
        NoAnswer::TimedOut(limit) => refuse(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("no answer within {} s", limit.as_secs()),
        ),
    }
}

fn get(gateway: Arc<Gateway>, req: Request<Incoming>, agent: &str, server: &str) -> Response<Body> {
    let session = match named_session(&gateway, &req, agent, server) {
        Ok(Some((_, session))) => session,
        Ok(None) => {
            let why = "a GET stream needs the Mcp-Session-Id of an initialized session";
            return refuse(StatusCode::BAD_REQUEST, "no-session", why.into());
        }
        Err(refusal) => return *refusal,
    };
    let events = session.open_stream(gateway.limits.stream_queue);
    let mut response = Response::new(BodyExt::boxed(Events(events)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn delete(
    gateway: Arc<Gateway>,
    req: Request<Incoming>,
    agent: &str,
    server: &str,
) -> Response<Body> {
    match named_session(&gateway, &req, agent, server) {
        Ok(Some((id, _))) => {
            gateway.end(&id);
            crate::edge::log::info("gateway", "session ended by its host", &[("session", &id)]);
            full(StatusCode::OK, "application/json", Bytes::new())
        }
        Ok(None) => refuse(
            StatusCode::BAD_REQUEST,
            "no-session",
            "DELETE needs the Mcp-Session-Id of the session to end".into(),
        ),
        Err(refusal) => *refusal,
    }
}
