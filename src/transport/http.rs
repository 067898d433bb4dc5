//! Talking to a remote MCP server over Streamable HTTP, as a client.
//!
//! The bridge turns the HTTP exchanges into the newline-delimited message stream every other
//! part of mcplock reads, so the same [`Connection`] (and the same scan, the same checks) serve
//! stdio and HTTP servers alike:
//! - each request the client writes is POSTed on its own (several may be in flight); the
//!   answer, a JSON body or an event stream that may carry notifications and server requests
//!   before the response, comes back as lines;
//! - notifications and responses are POSTed in order and expect `202 Accepted`;
//! - 2025-03-26 ... 2025-11-25: the `Mcp-Session-Id` the server gives with the `initialize`
//!   answer is sent with every later request, with `MCP-Protocol-Version` set to the version
//!   negotiated; the session is ended with `DELETE` when the client closes;
//! - 2026-07-28: no session; `MCP-Protocol-Version` from the request's `_meta`, and the
//!   `Mcp-Method` / `Mcp-Name` headers mirrored from the body.
//!
//! A failure that makes the endpoint unusable (no connection, TLS, 401, 403, a session the
//! server ended, a body that is not JSON-RPC, a redirect to another origin) ends the stream
//! with a transport fault naming the HTTP status and the endpoint, so every waiting request
//! fails with that reason; a failure of one request answers that request with an error.
//! Every body and event is capped like a stdio line, and every exchange is bounded in time.

use crate::core::json::parse_strict;
use crate::transport::body::Unread;
use crate::transport::channel::{Limits, MessageReader, TransportFault};
use crate::transport::conn::TRANSPORT_ERROR;
use crate::transport::errors::error_chain;
use crate::transport::sse;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;

/// Requests in flight at once; more wait for a slot.
const MAX_IN_FLIGHT: usize = 32;
/// Bytes of an error body read to show or to find a JSON-RPC error in.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Bytes of comments and unknown fields tolerated between two events of one stream.
const MAX_STREAM_NOISE: usize = 1 << 20;
/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the `DELETE` that ends a session may take.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);
/// Same-origin redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// Lines queued towards the client before the bridge waits for it to read.
const QUEUED_LINES: usize = 64;

/// A remote endpoint and what to send it.
#[derive(Clone)]
pub struct HttpEndpoint {
    pub url: Url,
    /// Sent with every request. Values may be secrets: never shown, logged or recorded.
    pub headers: Vec<(String, String)>,
    /// PEM certificates of a private CA, trusted besides the platform's roots.
    pub extra_roots: Option<Vec<u8>>,
    /// The credential context this server is reached under (a label, never a credential).
    pub context: Option<String>,
    /// The OAuth client that gets this server's tokens, when it takes OAuth: a token is asked
    /// for when the server answers 401, and sent as `Authorization: Bearer`.
    pub oauth: Option<Arc<crate::transport::oauth::OAuth>>,
}

impl std::fmt::Debug for HttpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpEndpoint")
            .field("url", &self.url.as_str())
            .field("header_names", &names)
            .field("oauth", &self.oauth.as_ref().map(|o| o.client_id()))
            .finish_non_exhaustive()
    }
}

/// Why an endpoint cannot be used at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetupError {
    #[error("{url:?} is not a URL: {reason}")]
    NotAUrl { url: String, reason: String },
    #[error("{0:?}: only http:// and https:// URLs are MCP endpoints")]
    Scheme(String),
    #[error(
        "{0:?}: a URL must not carry credentials (they would be recorded); pass them with --bearer-env or --header"
    )]
    Credentials(String),
    #[error(
        "{0:?}: plain http:// is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https://, or pass --allow-insecure-http if you accept that anyone on the path can read and change what the server offers"
    )]
    Insecure(String),
    #[error("header {0:?} is not a valid HTTP header name")]
    HeaderName(String),
    #[error("the value of header {0:?} is not a valid HTTP header value (control characters?)")]
    HeaderValue(String),
    #[error("--cacert: {0}")]
    Roots(String),
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// Parses an endpoint URL and refuses what must not be used: other schemes, credentials in the
/// URL, and plain HTTP beyond loopback unless allowed.
pub fn check_url(url: &str, allow_insecure_http: bool) -> Result<Url, SetupError> {
    let parsed = Url::parse(url).map_err(|e| SetupError::NotAUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(SetupError::Credentials(url.to_string()));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_insecure_http || is_loopback(&parsed) => Ok(parsed),
        "http" => Err(SetupError::Insecure(url.to_string())),
        _ => Err(SetupError::Scheme(url.to_string())),
    }
}

/// Redirects followed only within `url`'s origin (a redirect elsewhere is stopped and reported
/// as the answer it is), at most [`MAX_REDIRECTS`].
pub fn same_origin_redirects(url: &Url) -> reqwest::redirect::Policy {
    let origin = url.origin();
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if attempt.url().origin() == origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// True for a URL whose host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// What the server sends, as newline-delimited messages; at a fatal failure, the stream ends
/// with that failure as the read error (see [`crate::transport::channel::ConnError::Transport`]).
pub type ServerLines = FaultReader<tokio::io::ReadHalf<DuplexStream>>;
/// Where messages for the server are written, one per line.
pub type ServerInput = tokio::io::WriteHalf<DuplexStream>;

/// The bridge task between the message stream and the HTTP server.
pub struct BridgeHandle {
    task: JoinHandle<()>,
}

impl BridgeHandle {
    /// Waits for the bridge to end (it ends the HTTP session once its input is closed); after
    /// `grace` it is stopped anyway.
    pub async fn finish(&mut self, grace: Duration) {
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Sets up the HTTP client and starts the bridge: messages written to the returned input are
/// sent to the server, what it answers comes out of the returned lines. Nothing is sent before
/// the first message. Must be called inside a tokio runtime.
pub fn open(
    endpoint: &HttpEndpoint,
    limits: Limits,
    request_timeout: Duration,
) -> Result<(ServerLines, ServerInput, BridgeHandle), SetupError> {
    let bridge = Bridge::new(endpoint, limits, request_timeout)?;
    let (client_side, bridge_side) = tokio::io::duplex(1 << 16);
    let (client_read, client_write) = tokio::io::split(client_side);
    let reader = FaultReader {
        inner: client_read,
        fault: Arc::clone(&bridge.fault),
    };
    let task = tokio::spawn(bridge.run(bridge_side));
    Ok((reader, client_write, BridgeHandle { task }))
}

/// The client's read side: at the end of the stream, the bridge's fault (if any) is the error.
pub struct FaultReader<R> {
    inner: R,
    fault: Arc<Mutex<Option<String>>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for FaultReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() == before
        {
            let fault = self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(fault) = fault {
                return Poll::Ready(Err(std::io::Error::other(TransportFault(fault))));
            }
        }
        polled
    }
}

/// What the bridge learned of the server as it went.
#[derive(Default)]
struct State {
    session: Option<String>,
    protocol_version: Option<String>,
    /// Set once the server turned out to speak the legacy HTTP+SSE transport (2024-11-05):
    /// messages are POSTed to the URL its `endpoint` event gave, answers come on its stream.
    legacy_post: Option<Url>,
    /// The task reading that stream.
    legacy_stream: Option<JoinHandle<()>>,
}

/// How one exchange failed.
enum Failure {
    /// The endpoint is unusable: the whole stream ends with this reason.
    Fatal(String),
    /// This request failed: it is answered with this error object.
    Answer(Value),
}

fn transport_error(message: String) -> Failure {
    Failure::Answer(
        json!({"code": TRANSPORT_ERROR, "message": message, "data": {"source": super::conn::TRANSPORT_MARK}}),
    )
}

struct Bridge {
    client: reqwest::Client,
    url: Url,
    headers: HeaderMap,
    oauth: Option<Arc<crate::transport::oauth::OAuth>>,
    state: Mutex<State>,
    fault: Arc<Mutex<Option<String>>>,
    failed: Arc<Notify>,
    to_client: mpsc::Sender<Vec<u8>>,
    from_bridge: Mutex<Option<mpsc::Receiver<Vec<u8>>>>,
    limits: Limits,
    request_timeout: Duration,
}

impl Bridge {
    fn new(
        endpoint: &HttpEndpoint,
        limits: Limits,
        request_timeout: Duration,
    ) -> Result<Arc<Bridge>, SetupError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &endpoint.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SetupError::HeaderName(name.clone()))?;
            let mut value =
                HeaderValue::from_str(value).map_err(|_| SetupError::HeaderValue(name.clone()))?;
            value.set_sensitive(true);
            headers.append(header, value);
        }
        let mut builder = reqwest::Client::builder()
            .redirect(same_origin_redirects(&endpoint.url))
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("mcplock/", env!("CARGO_PKG_VERSION")));
        // HTTPS_PROXY and friends apply to remote hosts; a server on this machine is reached
        // directly whatever they say.
        if is_loopback(&endpoint.url) {
            builder = builder.no_proxy();
        }
        if let Some(pem) = &endpoint.extra_roots {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| SetupError::Roots(e.to_string()))?;
            if roots.is_empty() {
                return Err(SetupError::Roots("no PEM certificate in the file".into()));
            }
            builder = builder.tls_certs_merge(roots);
        }
        let client = builder
            .build()
            .map_err(|e| SetupError::Client(error_chain(&e)))?;
        let (to_client, from_bridge) = mpsc::channel(QUEUED_LINES);
        Ok(Arc::new(Bridge {
            client,
            url: endpoint.url.clone(),
            headers,
            oauth: endpoint.oauth.clone(),
            state: Mutex::new(State::default()),
            fault: Arc::new(Mutex::new(None)),
            failed: Arc::new(Notify::new()),
            to_client,
            from_bridge: Mutex::new(Some(from_bridge)),
            limits,
            request_timeout,
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The headers every request carries: the given ones, and the OAuth token when there is
    /// one (with the generation it came from, to renew it once when refused).
    fn headers(&self) -> (HeaderMap, Option<u64>) {
        let mut headers = self.headers.clone();
        let bearer = self.oauth.as_ref().and_then(|o| o.bearer());
        if let Some(bearer) = &bearer
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", bearer.token))
        {
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        (headers, bearer.map(|b| b.generation))
    }

    /// Sends what `build` makes; when the server answers 401 and OAuth is configured, gets a
    /// token (discovery on the first) and sends it once more.
    async fn send_authorized(
        &self,
        build: impl Fn(HeaderMap) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let (headers, generation) = self.headers();
        let response = build(headers)
            .send()
            .await
            .map_err(|e| Failure::Fatal(self.unreachable(&e)))?;
        let Some(oauth) = &self.oauth else {
            return Ok(response);
        };
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        oauth
            .renew(&self.url, challenge.as_deref(), generation)
            .await
            .map_err(Failure::Fatal)?;
        build(self.headers().0)
            .send()
            .await
            .map_err(|e| Failure::Fatal(self.unreachable(&e)))
    }

    /// Records the first fatal failure and ends the stream towards the client.
    fn fail(&self, reason: String) {
        let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        if fault.is_none() {
            *fault = Some(reason);
        }
        drop(fault);
        self.failed.notify_one();
    }

    fn has_failed(&self) -> bool {
        self.fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    async fn run(self: Arc<Self>, side: DuplexStream) {
        let (read, mut write) = tokio::io::split(side);
        let mut from_client = MessageReader::new(
            read,
            Limits {
                strict_stdout: true,
                ..self.limits
            },
        );
        let receiver = self
            .from_bridge
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // Lines towards the client, in the order they were queued; ends at a fault.
        let this = Arc::clone(&self);
        let writer = tokio::spawn(async move {
            let Some(mut lines) = receiver else { return };
            loop {
                tokio::select! {
                    biased;
                    line = lines.recv() => match line {
                        Some(line) => {
                            if write.write_all(&line).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                    () = this.failed.notified() => break,
                }
            }
            let _ = write.shutdown().await;
        });
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut exchanges = tokio::task::JoinSet::new();
        while let Ok(message) = from_client.next().await {
            if self.has_failed() {
                break;
            }
            let Value::Object(object) = &message.value else {
                continue;
            };
            let method = object
                .get("method")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match (method, object.get("id").cloned()) {
                (Some(method), Some(id)) => {
                    let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                        break;
                    };
                    let this = Arc::clone(&self);
                    exchanges.spawn(async move {
                        this.request(&message.raw, &message.value, &method, id)
                            .await;
                        drop(slot);
                    });
                }
                (method, _) => {
                    let accepted = self.one_way(&message.raw, &message.value).await;
                    // Once the session is initialized, what the server sends on its own
                    // (list_changed, requests) comes on a stream the client opens with GET.
                    if accepted && method.as_deref() == Some("notifications/initialized") {
                        exchanges.spawn(Arc::clone(&self).listen());
                    }
                }
            }
            // Finished exchanges are collected as we go, so the set does not grow.
            while exchanges.try_join_next().is_some() {}
        }
        exchanges.abort_all();
        if let Some(stream) = self.state().legacy_stream.take() {
            stream.abort();
        }
        self.end_session().await;
        // The writer ends when every sender is gone or at a fault.
        self.failed.notify_one();
        let _ = writer.await;
    }

    /// Ends a session the server gave (best effort: the client is leaving either way).
    async fn end_session(&self) {
        let session = self.state().session.clone();
        if let Some(session) = session {
            let mut request = self
                .client
                .delete(self.url.clone())
                .headers(self.headers().0)
                .header("Mcp-Session-Id", session)
                .timeout(DELETE_TIMEOUT);
            if let Some(version) = self.state().protocol_version.clone() {
                request = request.header("MCP-Protocol-Version", version);
            }
            let _ = request.send().await;
        }
    }

    /// A POST carrying `raw`, with the headers the protocol asks for.
    fn post(&self, raw: &[u8], message: &Value, headers: HeaderMap) -> reqwest::RequestBuilder {
        let legacy = self.state().legacy_post.clone();
        if let Some(target) = legacy {
            return self
                .client
                .post(target)
                .headers(headers)
                .header(CONTENT_TYPE, "application/json")
                .body(raw.to_vec());
        }
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(raw.to_vec());
        let modern = message
            .pointer("/params/_meta")
            .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
            .and_then(Value::as_str);
        if let Some(version) = modern {
            request = request.header("MCP-Protocol-Version", header_text(version));
            if let Some(method) = message.get("method").and_then(Value::as_str) {
                request = request.header("Mcp-Method", header_text(method));
                let name = match method {
                    "tools/call" | "prompts/get" => message.pointer("/params/name"),
                    "resources/read" => message.pointer("/params/uri"),
                    _ => None,
                };
                if let Some(name) = name.and_then(Value::as_str) {
                    request = request.header("Mcp-Name", header_text(name));
                }
            }
        } else {
            let state = self.state();
            if let Some(session) = &state.session {
                request = request.header("Mcp-Session-Id", session.as_str());
            }
            if let Some(version) = &state.protocol_version {
                request = request.header("MCP-Protocol-Version", header_text(version));
            }
        }
        request
    }

    /// Opens the legacy HTTP+SSE stream (GET, `text/event-stream`) and waits for its
    /// `endpoint` event; from then on every message is POSTed there and every answer comes on
    /// the stream. `refused` is the status the POST got, for the error when GET fails too.
    async fn open_legacy(&self, refused: StatusCode) -> Result<(), Failure> {
        let neither = |detail: String| {
            transport_error(format!(
                "{} is neither a Streamable HTTP endpoint (POST answered HTTP {}) nor an HTTP+SSE one ({detail}): is it the MCP endpoint?",
                self.url,
                status_text(refused)
            ))
        };
        let mut response = self
            .send_authorized(|headers| {
                self.client
                    .get(self.url.clone())
                    .headers(headers)
                    .header(ACCEPT, "text/event-stream")
            })
            .await?;
        if let Some(fatal) = self.fatal_status(&response) {
            return Err(Failure::Fatal(fatal));
        }
        if !response.status().is_success() || content_type(&response) != "text/event-stream" {
            return Err(neither(format!(
                "GET answered HTTP {}",
                status_text(response.status())
            )));
        }
        let mut parser = sse::Parser::new(self.limits.max_message_bytes, MAX_STREAM_NOISE);
        let mut early = Vec::new();
        let endpoint = 'found: loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| neither(format!("its event stream broke: {}", error_chain(&e))))?
                .ok_or_else(|| neither("its event stream ended before an endpoint event".into()))?;
            let events = parser
                .push(&chunk)
                .map_err(|e| neither(format!("its event stream: {e}")))?;
            let mut events = events.into_iter();
            while let Some(event) = events.next() {
                if event.kind == "endpoint" {
                    early.extend(events);
                    break 'found event.data;
                }
            }
        };
        let post = self
            .url
            .join(endpoint.trim())
            .map_err(|e| neither(format!("its endpoint event is not a URL: {e}")))?;
        if post.origin() != self.url.origin() {
            return Err(Failure::Fatal(format!(
                "{}: the HTTP+SSE endpoint event points to another origin ({}), which is not followed",
                self.url,
                crate::core::text::escape(post.as_str())
            )));
        }
        self.state().legacy_post = Some(post);
        let this = StreamReader {
            to_client: self.to_client.clone(),
            fault: Arc::clone(&self.fault),
            failed: Arc::clone(&self.failed),
            url: self.url.clone(),
        };
        let task = tokio::spawn(async move { this.forward(response, parser, early).await });
        if let Some(old) = self.state().legacy_stream.replace(task) {
            old.abort();
        }
        Ok(())
    }

    /// POSTs `raw`; a response that makes the endpoint unusable is a fatal failure.
    async fn send_checked(
        &self,
        raw: &[u8],
        message: &Value,
    ) -> Result<reqwest::Response, Failure> {
        let response = self
            .send_authorized(|headers| self.post(raw, message, headers))
            .await?;
        match self.fatal_status(&response) {
            Some(fatal) => Err(Failure::Fatal(fatal)),
            None => Ok(response),
        }
    }

    /// POSTs one message to the legacy endpoint; its answer comes on the stream.
    async fn legacy_send(&self, raw: &[u8], message: &Value) -> Result<(), Failure> {
        let response = self.send_checked(raw, message).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(transport_error(format!(
                "HTTP {} from {} (HTTP+SSE)",
                status_text(response.status()),
                self.url
            )))
        }
    }

    /// A notification or a response: POSTed, `202 Accepted` expected. True when the server
    /// accepted it.
    async fn one_way(&self, raw: &[u8], message: &Value) -> bool {
        let sent = tokio::time::timeout(
            self.request_timeout,
            self.send_authorized(|headers| self.post(raw, message, headers)),
        )
        .await;
        match sent {
            Ok(Ok(response)) => {
                if let Some(fatal) = self.fatal_status(&response) {
                    self.fail(fatal);
                    return false;
                }
                response.status().is_success()
            }
            Ok(Err(Failure::Fatal(reason))) => {
                self.fail(reason);
                false
            }
            Ok(Err(Failure::Answer(_))) => false,
            // A notification nobody acknowledges is not worth ending the session for; a
            // request that depended on it times out on its own.
            Err(_) => false,
        }
    }

    /// The stream the server may send on outside any request (GET). A server without one
    /// answers 405; that is fine, it then has nothing to say on its own. Not reopened when it
    /// ends; bounded like every stream.
    async fn listen(self: Arc<Self>) {
        if self.state().legacy_post.is_some() {
            return;
        }
        let mut request = self
            .client
            .get(self.url.clone())
            .headers(self.headers().0)
            .header(ACCEPT, "text/event-stream");
        {
            let state = self.state();
            if let Some(session) = &state.session {
                request = request.header("Mcp-Session-Id", session.as_str());
            }
            if let Some(version) = &state.protocol_version {
                request = request.header("MCP-Protocol-Version", header_text(version));
            }
        }
        let Ok(mut response) = request.send().await else {
            return;
        };
        if !response.status().is_success() || content_type(&response) != "text/event-stream" {
            return;
        }
        let mut parser = sse::Parser::new(self.limits.max_message_bytes, MAX_STREAM_NOISE);
        while let Ok(Some(chunk)) = response.chunk().await {
            let Ok(events) = parser.push(&chunk) else {
                return;
            };
            for event in events {
                if (event.kind.is_empty() || event.kind == "message")
                    && !event.data.trim().is_empty()
                    && let Ok(message) = self.message(event.data.as_bytes())
                {
                    self.send(&message).await;
                }
            }
        }
    }

    /// A request: POSTed; its answer (and whatever came before it) goes to the client.
    async fn request(&self, raw: &[u8], message: &Value, method: &str, id: Value) {
        let outcome = tokio::time::timeout(
            self.request_timeout,
            self.exchange(raw, message, method, &id),
        )
        .await;
        match outcome {
            // The client's own timeout for this request fires too; nothing more to say.
            Err(_) | Ok(Ok(())) => {}
            Ok(Err(Failure::Fatal(reason))) => self.fail(reason),
            Ok(Err(Failure::Answer(error))) => {
                self.send(&json!({"jsonrpc": "2.0", "id": id, "error": error}))
                    .await;
            }
        }
    }

    async fn exchange(
        &self,
        raw: &[u8],
        message: &Value,
        method: &str,
        id: &Value,
    ) -> Result<(), Failure> {
        if self.state().legacy_post.is_some() {
            return self.legacy_send(raw, message).await;
        }
        let had_session = self.state().session.is_some();
        let mut response = self.send_checked(raw, message).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND && had_session {
            return Err(Failure::Fatal(format!(
                "HTTP 404 from {}: the server ended the session (its Mcp-Session-Id is no longer valid); run the command again",
                self.url
            )));
        }
        if !status.is_success() {
            return self
                .refused(&mut response, status, (raw, message), method, had_session)
                .await;
        }
        if method == "initialize" {
            self.remember_session(&response)?;
        }
        self.answered(&mut response, status, method, id).await
    }

    /// A POST the server refused with an HTTP error status: its JSON-RPC error when the body
    /// holds one, the fall-back to legacy HTTP+SSE for `initialize`, an earlier generation's
    /// answer to the `server/discover` probe, else a transport error.
    async fn refused(
        &self,
        response: &mut reqwest::Response,
        status: StatusCode,
        (raw, message): (&[u8], &Value),
        method: &str,
        had_session: bool,
    ) -> Result<(), Failure> {
        let body = read_capped(response, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        // A JSON-RPC error in the body is the server's answer to this request.
        if let Ok(Value::Object(answer)) = parse_strict(&body)
            && let Some(error @ Value::Object(_)) = answer.get("error")
        {
            return Err(Failure::Answer(error.clone()));
        }
        // The backwards-compatibility rule: a server that refuses the POST of initialize
        // with 400, 404 or 405 may be a legacy HTTP+SSE server.
        let legacy_statuses = [
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
        ];
        if method == "initialize" && !had_session && legacy_statuses.contains(&status) {
            self.open_legacy(status).await?;
            return self.legacy_send(raw, message).await;
        }
        // A server of an earlier generation refuses the 2026-07-28 probe at the HTTP level:
        // that is its answer to the probe (the client then offers initialize), not a
        // transport failure.
        if method == "server/discover" {
            return Err(Failure::Answer(json!({
                "code": -32601,
                "message": format!("HTTP {} from {} to server/discover", status_text(status), self.url),
            })));
        }
        Err(transport_error(format!(
            "HTTP {} from {}{}",
            status_text(status),
            self.url,
            snippet(&body)
        )))
    }

    /// Keeps the session id the server gave in its answer to `initialize`.
    fn remember_session(&self, response: &reqwest::Response) -> Result<(), Failure> {
        if let Some(session) = response.headers().get("mcp-session-id") {
            let valid = session.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b))
                && (1..=1024).contains(&session.len());
            match session.to_str() {
                Ok(session) if valid => self.state().session = Some(session.to_string()),
                _ => {
                    return Err(Failure::Fatal(format!(
                        "{} gave an Mcp-Session-Id that is not 1 to 1024 visible ASCII characters",
                        self.url
                    )));
                }
            }
        }
        Ok(())
    }

    /// The answer to a POST the server accepted: one JSON response, or an event stream that
    /// carries it.
    async fn answered(
        &self,
        response: &mut reqwest::Response,
        status: StatusCode,
        method: &str,
        id: &Value,
    ) -> Result<(), Failure> {
        let content_type = content_type(response);
        match content_type.as_str() {
            "application/json" => {
                let body = read_capped(response, self.limits.max_message_bytes)
                    .await
                    .map_err(|e| transport_error(format!("{}: {e}", self.url)))?;
                let answer = self.message(&body)?;
                if answer.get("id") != Some(id) || answer.get("method").is_some() {
                    return Err(transport_error(format!(
                        "{} answered the POST of request {id} with a message that is not its response",
                        self.url
                    )));
                }
                self.deliver(method, answer).await;
                Ok(())
            }
            "text/event-stream" => self.stream(response, method, id).await,
            _ if status == StatusCode::ACCEPTED => Err(transport_error(format!(
                "{} accepted request {id} ({method}) without answering it (HTTP 202)",
                self.url
            ))),
            other => Err(Failure::Fatal(format!(
                "{} answered with {}, not JSON-RPC: is it the MCP endpoint?",
                self.url,
                if other.is_empty() {
                    "no content type"
                } else {
                    other
                }
            ))),
        }
    }

    /// Reads an event stream until the response to `id` has come (the rest is dropped).
    async fn stream(
        &self,
        response: &mut reqwest::Response,
        method: &str,
        id: &Value,
    ) -> Result<(), Failure> {
        let mut parser = sse::Parser::new(self.limits.max_message_bytes, MAX_STREAM_NOISE);
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                transport_error(format!(
                    "the event stream from {} broke: {}",
                    self.url,
                    error_chain(&e)
                ))
            })?;
            let Some(chunk) = chunk else {
                return Err(transport_error(format!(
                    "{} ended its event stream without answering request {id} ({method})",
                    self.url
                )));
            };
            let events = parser
                .push(&chunk)
                .map_err(|e| transport_error(format!("the event stream from {}: {e}", self.url)))?;
            for event in events {
                // An event of another type, or one without data (a priming event that only
                // carries an id to resume from), holds no message.
                if !(event.kind.is_empty() || event.kind == "message")
                    || event.data.trim().is_empty()
                {
                    continue;
                }
                let message = self.message(event.data.as_bytes())?;
                let answers_us = message.get("id") == Some(id) && message.get("method").is_none();
                self.deliver(method, message).await;
                if answers_us {
                    return Ok(());
                }
            }
        }
    }

    /// One message from the server, strictly parsed: a JSON object (no batches).
    fn message(&self, bytes: &[u8]) -> Result<Value, Failure> {
        match parse_strict(bytes) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) => Err(transport_error(format!(
                "{} sent JSON that is not one JSON-RPC message (batches are not part of the protocol since 2025-06-18)",
                self.url
            ))),
            Err(e) => Err(transport_error(format!(
                "{} sent a message that is not valid JSON: {e}",
                self.url
            ))),
        }
    }

    /// Hands a message to the client as one line; learns the negotiated version on the way.
    async fn deliver(&self, method: &str, message: Value) {
        if method == "initialize"
            && let Some(version) = message
                .pointer("/result/protocolVersion")
                .and_then(Value::as_str)
        {
            self.state().protocol_version = Some(version.to_string());
        }
        self.send(&message).await;
    }

    async fn send(&self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap_or_default();
        line.push(b'\n');
        let _ = self.to_client.send(line).await;
    }

    /// The statuses that make the endpoint unusable, whatever the request.
    fn fatal_status(&self, response: &reqwest::Response) -> Option<String> {
        let url = &self.url;
        match response.status() {
            StatusCode::UNAUTHORIZED => {
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| {
                        format!(
                            " (it asks: {})",
                            crate::core::text::escape(&v.chars().take(200).collect::<String>())
                        )
                    })
                    .unwrap_or_default();
                if let Some(oauth) = &self.oauth {
                    return Some(format!(
                        "HTTP 401 Unauthorized from {url}: the server refused the token OAuth gave client {}{challenge}: check the client's scopes and that it may use this server",
                        crate::core::text::escape(oauth.client_id())
                    ));
                }
                Some(format!(
                    "HTTP 401 Unauthorized from {url}: the server wants credentials{challenge}: log in with OAuth (--oauth-client-id ID, with --oauth-client-secret-env VAR for a machine), or pass --bearer-env VAR (a token read from the environment) or --header 'Name: value'"
                ))
            }
            StatusCode::FORBIDDEN => Some(format!(
                "HTTP 403 Forbidden from {url}: the server refused these credentials (or this client)"
            )),
            status if status.is_redirection() => {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(crate::core::text::escape)
                    .unwrap_or_else(|| "nowhere".into());
                Some(format!(
                    "HTTP {} from {url}: it redirects to {location}, another origin, which is not followed; pass that URL with --url if you trust it",
                    status_text(status)
                ))
            }
            _ => None,
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> String {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "cannot connect"
        } else {
            "the request failed"
        };
        let chain = error_chain(error);
        let hint = if chain.contains("certificate") || chain.contains("UnknownIssuer") {
            " (the server's TLS certificate is not trusted; for a private CA pass --cacert FILE)"
        } else {
            ""
        };
        format!("{} {what}: {chain}{hint}", self.url)
    }
}

/// Reads the legacy HTTP+SSE stream on its own task: every message event goes to the client;
/// the stream's end ends the session (the server has no other way to answer).
struct StreamReader {
    to_client: mpsc::Sender<Vec<u8>>,
    fault: Arc<Mutex<Option<String>>>,
    failed: Arc<Notify>,
    url: Url,
}

impl StreamReader {
    async fn forward(
        self,
        mut response: reqwest::Response,
        mut parser: sse::Parser,
        early: Vec<sse::Event>,
    ) {
        let mut pending = early;
        let why = 'stream: loop {
            for event in pending.drain(..) {
                if !(event.kind.is_empty() || event.kind == "message")
                    || event.data.trim().is_empty()
                {
                    continue;
                }
                let Ok(message @ Value::Object(_)) = parse_strict(event.data.as_bytes()) else {
                    break 'stream format!(
                        "{} sent an event that is not one JSON-RPC message (HTTP+SSE)",
                        self.url
                    );
                };
                let mut line = serde_json::to_vec(&message).unwrap_or_default();
                line.push(b'\n');
                if self.to_client.send(line).await.is_err() {
                    return;
                }
            }
            match response.chunk().await {
                Ok(Some(chunk)) => match parser.push(&chunk) {
                    Ok(events) => pending = events,
                    Err(e) => break format!("the event stream from {}: {e}", self.url),
                },
                Ok(None) => {
                    break format!(
                        "{} closed its event stream (HTTP+SSE): the session is over",
                        self.url
                    );
                }
                Err(e) => {
                    break format!(
                        "the event stream from {} broke: {}",
                        self.url,
                        error_chain(&e)
                    );
                }
            }
        };
        let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        if fault.is_none() {
            *fault = Some(why);
        }
        drop(fault);
        self.failed.notify_one();
    }
}

/// The media type of a response, lowercase, without parameters ("" when there is none).
fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// A header value from text: as is when it is visible ASCII, else `=?base64?...?=` (the
/// 2026-07-28 encoding for non-ASCII names).
fn header_text(text: &str) -> HeaderValue {
    let plain = !text.is_empty()
        && text.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !text.starts_with(' ')
        && !text.ends_with(' ');
    let value = if plain {
        text.to_string()
    } else {
        use base64::Engine;
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The start of a body, escaped, to show with an error.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let short: String = text.chars().take(160).collect();
    format!(": {}", crate::core::text::escape(&short))
}

/// The body of `response` within `cap` bytes, or why not, as a bridge error says it.
async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    crate::transport::body::read_capped(response, cap)
        .await
        .map_err(|e| match e {
            Unread::Broke(why) => format!("the body broke: {why}"),
            Unread::TooLarge(cap) => format!(
                "the body is larger than the {cap}-byte cap (raise --max-message-size only for a server you trust)"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        assert!(check_url("https://mcp.example.com/mcp", false).is_ok());
        assert!(check_url("http://127.0.0.1:3001/mcp", false).is_ok());
        assert!(check_url("http://[::1]:3001/mcp", false).is_ok());
        assert!(check_url("http://localhost:3001/mcp", false).is_ok());
        assert!(matches!(
            check_url("http://mcp.example.com/mcp", false),
            Err(SetupError::Insecure(_))
        ));
        assert!(check_url("http://mcp.example.com/mcp", true).is_ok());
        assert!(matches!(
            check_url("https://user:secret@mcp.example.com/", false),
            Err(SetupError::Credentials(_))
        ));
        assert!(matches!(
            check_url("ftp://mcp.example.com/", false),
            Err(SetupError::Scheme(_))
        ));
        assert!(matches!(
            check_url("mcp.example.com", false),
            Err(SetupError::NotAUrl { .. })
        ));
    }

    #[test]
    fn header_values_are_plain_or_base64_encoded() {
        assert_eq!(header_text("tools/call"), "tools/call");
        assert_eq!(header_text("read_fіle"), "=?base64?cmVhZF9m0ZZsZQ==?=");
        assert_eq!(header_text(" padded"), "=?base64?IHBhZGRlZA==?=");
    }

    #[test]
    fn the_endpoint_never_shows_header_values() {
        let endpoint = HttpEndpoint {
            url: Url::parse("https://x.example/mcp").unwrap(),
            headers: vec![("Authorization".into(), "Bearer s3cret".into())],
            context: None,
            oauth: None,
            extra_roots: None,
        };
        let shown = format!("{endpoint:?}");
        assert!(
            shown.contains("Authorization") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
