//! What every endpoint of the gateway answers with: responses and refusals (a JSON-RPC error
//! document with a stable reason, counted by the metrics), a request's one message read within
//! its cap, a new session opened within the limits, and the event stream of a GET.

use super::host::{self, HostSession};
use super::{Gateway, new_session_id};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub type Body = BoxBody<Bytes, Infallible>;
/// A refusal on its way out (boxed: a response is large).
pub type Refused = Box<Response<Body>>;

pub const SESSION_HEADER: &str = "mcp-session-id";

pub fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A refusal's reason code, carried with its response to be counted.
#[derive(Clone, Copy)]
pub struct Refusal(pub &'static str);

/// A refusal: a JSON-RPC error document (`id` null) with the HTTP status, and the reason in
/// `error.data.reason` for machines.
pub fn refuse(status: StatusCode, reason: &'static str, message: String) -> Response<Body> {
    let doc = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32010, "message": message, "data": {"reason": reason}},
    });
    let mut response = full(status, "application/json", doc.to_string());
    response.extensions_mut().insert(Refusal(reason));
    response
}

/// A request's body: one JSON-RPC message, at most the message cap.
pub async fn read_message(
    gateway: &Gateway,
    req: Request<Incoming>,
) -> Result<(Bytes, serde_json::Map<String, Value>), Refused> {
    let max = gateway.limits.max_message_bytes;
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            let message = format!("a request body is at most {max} bytes");
            let refusal = refuse(StatusCode::PAYLOAD_TOO_LARGE, "too-large", message);
            return Err(Box::new(refusal));
        }
    };
    match crate::core::json::parse_strict(&body) {
        Ok(Value::Object(obj)) => Ok((body, obj)),
        Ok(_) => {
            let why = "expected one JSON-RPC message (an object; batches are not MCP)";
            let refusal = refuse(StatusCode::BAD_REQUEST, "bad-message", why.into());
            Err(Box::new(refusal))
        }
        Err(e) => {
            let why = format!("not JSON: {e}");
            Err(Box::new(refuse(
                StatusCode::BAD_REQUEST,
                "bad-message",
                why,
            )))
        }
    }
}

pub fn open_session(
    gateway: &Arc<Gateway>,
    agent: &str,
    server: &str,
) -> Result<(String, Arc<HostSession>), Refused> {
    if gateway.is_draining() {
        let message =
            "the gateway is stopping; connect again (to another replica, or once it is back)";
        let refusal = refuse(StatusCode::SERVICE_UNAVAILABLE, "stopping", message.into());
        return Err(Box::new(refusal));
    }
    if gateway.session_count() >= gateway.limits.max_sessions {
        let message = format!(
            "the gateway holds its most sessions ({}); try again when one ends (an operator raises the bound with `mcplock gateway --max-sessions N`)",
            gateway.limits.max_sessions
        );
        let refusal = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-many-sessions",
            message,
        );
        return Err(Box::new(refusal));
    }
    let id = new_session_id()
        .map_err(|e| Box::new(refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)))?;
    let session = host::start(gateway, &id, agent, server)
        .map_err(|e| Box::new(refuse(StatusCode::BAD_GATEWAY, "upstream", e)))?;
    gateway.sessions().insert(id.clone(), Arc::clone(&session));
    gateway.metrics.session_opened(server);
    let fields = [
        ("agent", agent),
        ("session", id.as_str()),
        ("server", server),
    ];
    crate::edge::log::info("gateway", "session opened", &fields);
    Ok((id, session))
}

/// A GET stream's body: each message the server sends unasked, as a server-sent event.
pub struct Events(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}
