//! The OAuth 2.1 client side of a remote server, as the MCP authorization spec has a client
//! behave: the server's 401 names its Protected Resource Metadata (else the well-known URLs are
//! tried), that names the authorization servers, whose metadata names the token endpoint. A
//! token is then asked for the server's own `resource` (RFC 8707: audience-bound) by client
//! credentials, a refresh token, or a person's login in a browser (authorization code with
//! PKCE S256, answered on a loopback redirect).
//!
//! Every URL met on the way is held to [`crate::core::authz::may_reach`] (names are resolved by
//! a resolver that refuses what may not be reached, so the address checked is the address
//! connected to) and to https unless it is on this machine like the server; redirects are not
//! followed. The surface met is what a lock records; given the one locked, any difference is
//! refused before a token is asked for. Tokens live in memory only, remembered as secrets so
//! nothing prints them.

use crate::core::authz::{
    self, AuthSurface, Reach, ResourceMetadata, ServerMetadata, may_reach, reach,
};
use crate::core::text::escape;
use hyper::body::Bytes;
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use reqwest::Url;
use serde_json::Value;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes of a metadata document or a token response read at most.
const MAX_DOCUMENT: usize = 64 * 1024;
/// How long one metadata or token exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// How a token is obtained.
#[derive(Clone, Debug)]
pub enum Grant {
    /// A machine's own credentials (needs a client secret).
    ClientCredentials,
    /// A refresh token given by the user (from the environment).
    RefreshToken(String),
    /// A person logs in: the authorization URL is announced, the code comes back to a loopback
    /// redirect on `port` (0: any free one) within `wait`.
    Browser { port: u16, wait: Duration },
}

/// What an OAuth client is, besides the server it is for.
#[derive(Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub grant: Grant,
    /// Asked for; empty: what the server's challenge or its metadata names.
    pub scopes: Vec<String>,
    /// PEM certificates of a private CA, trusted besides the platform's roots.
    pub extra_roots: Option<Vec<u8>>,
    /// Told the URL a person opens to log in.
    pub announce: Arc<dyn Fn(&str) + Send + Sync>,
}

/// One server's OAuth client: discovery, then a token, each time the server refuses the token
/// it has (or has none).
pub struct OAuth {
    config: OAuthConfig,
    /// The surface the lock recorded (`Some(None)`: it recorded none): any other is refused.
    expected: Mutex<Option<Option<AuthSurface>>>,
    met: Mutex<Option<AuthSurface>>,
    current: Mutex<Option<Bearer>>,
    /// One renewal at a time; holds the refresh token.
    renewing: tokio::sync::Mutex<Renewal>,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// A token and the renewal that got it.
#[derive(Clone)]
pub struct Bearer {
    pub generation: u64,
    pub token: String,
}

#[derive(Default)]
struct Renewal {
    generation: u64,
    refresh: Option<String>,
}

struct Found {
    resource: ResourceMetadata,
    server: ServerMetadata,
}

impl OAuth {
    pub fn new(config: OAuthConfig) -> Arc<OAuth> {
        let refresh = match &config.grant {
            Grant::RefreshToken(token) => Some(token.clone()),
            _ => None,
        };
        Arc::new(OAuth {
            config,
            expected: Mutex::new(None),
            met: Mutex::new(None),
            current: Mutex::new(None),
            renewing: tokio::sync::Mutex::new(Renewal {
                refresh,
                ..Renewal::default()
            }),
        })
    }

    pub fn client_id(&self) -> &str {
        &self.config.client_id
    }

    /// Holds discovery to the surface a lock recorded (`None`: the lock recorded none, so any
    /// is refused).
    pub fn hold_to(&self, surface: Option<AuthSurface>) {
        *self.expected.lock().unwrap_or_else(|p| p.into_inner()) = Some(surface);
    }

    /// The surface discovery met, once it ran (also when it was refused).
    pub fn met(&self) -> Option<AuthSurface> {
        self.met.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The token to send now, if there is one.
    pub fn bearer(&self) -> Option<Bearer> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Gets a new token for `server` after it refused `refused` (the generation of the token it
    /// refused, `None` when none was sent) with `challenge` (its `WWW-Authenticate`). Several
    /// refusals of one token renew it once.
    pub async fn renew(
        &self,
        server: &Url,
        challenge: Option<&str>,
        refused: Option<u64>,
    ) -> Result<(), String> {
        let mut renewal = self.renewing.lock().await;
        if self.bearer().map(|b| b.generation) != refused {
            return Ok(());
        }
        let http = Http::new(server, self.config.extra_roots.as_deref()).await?;
        // Discovery again at every renewal: a surface swapped while tokens were being used is
        // met before the next token is asked for.
        let found = &self.discover(&http, server, challenge).await?;
        let scopes = if !self.config.scopes.is_empty() {
            self.config.scopes.clone()
        } else {
            let asked = challenge.map(authz::challenged_scopes).unwrap_or_default();
            if asked.is_empty() {
                found.resource.scopes_supported.clone()
            } else {
                asked
            }
        };
        let refresh = renewal.refresh.clone();
        let (token, new_refresh) = self.grant(&http, found, &scopes, refresh).await?;
        crate::edge::secrets::remember(&token);
        if let Some(refresh) = &new_refresh {
            crate::edge::secrets::remember(refresh);
            renewal.refresh = Some(refresh.clone());
        }
        renewal.generation += 1;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Bearer {
            generation: renewal.generation,
            token,
        });
        Ok(())
    }

    /// Protected Resource Metadata, then the authorization server's metadata, each held to the
    /// rules; the surface they make is remembered, and held to the one expected.
    async fn discover(
        &self,
        http: &Http,
        server: &Url,
        challenge: Option<&str>,
    ) -> Result<Found, String> {
        let candidates = match challenge.and_then(authz::challenged_metadata) {
            Some(url) => vec![Url::parse(&url).map_err(|e| {
                format!(
                    "{server}: its 401 names resource metadata at {}, not a URL: {e}",
                    escape(&url)
                )
            })?],
            None => authz::resource_metadata_urls(server),
        };
        let (document, at) = http.first_document(&candidates).await.map_err(|e| {
            format!("{server} asks for OAuth, but its protected resource metadata: {e}")
        })?;
        let resource = authz::resource_metadata(&document, server)
            .map_err(|e| format!("the protected resource metadata at {at}: {e}"))?;
        let expected = self
            .expected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(None) = expected {
            return Err(format!(
                "{server} asks for OAuth, but its lock recorded no OAuth surface for it: no token is asked for; lock it again by OAuth (`mcplock lock --update --url {server} --oauth-client-id ...`)"
            ));
        }
        let expected = expected.flatten();
        // The locked issuer when it is still named, so a second server added is not a swap.
        let issuer = expected
            .as_ref()
            .map(|e| e.issuer.clone())
            .filter(|i| resource.authorization_servers.contains(i))
            .unwrap_or_else(|| resource.authorization_servers[0].clone());
        let surface_without_issuer = AuthSurface {
            resource: resource.resource.clone(),
            authorization_servers: authz::sorted(&resource.authorization_servers),
            issuer: issuer.clone(),
            scopes_supported: authz::sorted(&resource.scopes_supported),
        };
        *self.met.lock().unwrap_or_else(|p| p.into_inner()) = Some(surface_without_issuer.clone());
        // Refused before the authorization server is asked anything.
        refuse_if_changed(server, expected.as_ref(), &surface_without_issuer)?;
        let issuer_url = Url::parse(&issuer)
            .map_err(|e| format!("{at}: authorization server {}: {e}", escape(&issuer)))?;
        let (document, at) = http
            .first_document(&authz::server_metadata_urls(&issuer_url))
            .await
            .map_err(|e| format!("the metadata of authorization server {issuer}: {e}"))?;
        let metadata = authz::server_metadata(&document, &issuer)
            .map_err(|e| format!("the authorization server metadata at {at}: {e}"))?;
        Ok(Found {
            resource,
            server: metadata,
        })
    }

    /// A token (and a refresh token when one came) by the configured grant.
    async fn grant(
        &self,
        http: &Http,
        found: &Found,
        scopes: &[String],
        refresh: Option<String>,
    ) -> Result<(String, Option<String>), String> {
        let token_url = http.checked(&found.server.token_endpoint)?;
        let mut client =
            oauth2::basic::BasicClient::new(ClientId::new(self.config.client_id.clone()))
                .set_auth_type(oauth2::AuthType::RequestBody)
                .set_token_uri(TokenUrl::from_url(token_url));
        if let Some(secret) = &self.config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        let scopes = scopes.iter().map(|s| Scope::new(s.clone()));
        let resource = found.resource.resource.clone();
        let why = |e: String| {
            format!(
                "the authorization server {} refused a token: {e}",
                found.server.issuer
            )
        };
        let response = if let Some(refresh) = refresh {
            client
                .exchange_refresh_token(&RefreshToken::new(refresh))
                .add_scopes(scopes)
                .add_extra_param("resource", resource)
                .request_async(http)
                .await
                .map_err(|e| why(token_error(&e)))?
        } else {
            match &self.config.grant {
                Grant::ClientCredentials => client
                    .exchange_client_credentials()
                    .add_scopes(scopes)
                    .add_extra_param("resource", resource)
                    .request_async(http)
                    .await
                    .map_err(|e| why(token_error(&e)))?,
                Grant::Browser { port, wait } => {
                    let code = self
                        .login(http, found, scopes.collect(), *port, *wait)
                        .await?;
                    client
                        .set_redirect_uri(code.redirect)
                        .exchange_code(code.code)
                        .set_pkce_verifier(code.verifier)
                        .add_extra_param("resource", resource)
                        .request_async(http)
                        .await
                        .map_err(|e| why(token_error(&e)))?
                }
                Grant::RefreshToken(_) => {
                    return Err(format!(
                        "the refresh token was used up; get a new one from {}",
                        found.server.issuer
                    ));
                }
            }
        };
        let token = response.access_token().secret().clone();
        Ok((token, response.refresh_token().map(|r| r.secret().clone())))
    }

    /// A person's login: the authorization URL announced, its code taken on a loopback
    /// redirect (state and issuer checked).
    async fn login(
        &self,
        http: &Http,
        found: &Found,
        scopes: Vec<Scope>,
        port: u16,
        wait: Duration,
    ) -> Result<Code, String> {
        let issuer = &found.server.issuer;
        let endpoint = found
            .server
            .authorization_endpoint
            .as_deref()
            .ok_or_else(|| format!("{issuer} has no authorization endpoint for a browser login; use client credentials (--oauth-client-secret-env)"))?;
        if !found
            .server
            .code_challenge_methods
            .iter()
            .any(|m| m == "S256")
        {
            return Err(format!(
                "{issuer} does not say it supports PKCE with S256 (code_challenge_methods_supported), which the MCP authorization spec requires: refused; a machine client can use client credentials instead (--oauth-client-secret-env VAR)"
            ));
        }
        let endpoint = http.checked(endpoint)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| {
                format!("cannot listen on 127.0.0.1:{port} for the login's redirect: {e}")
            })?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let redirect = RedirectUrl::new(format!("http://127.0.0.1:{port}/callback"))
            .map_err(|e| e.to_string())?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = oauth2::basic::BasicClient::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(endpoint))
            .set_redirect_uri(redirect.clone());
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes)
            .set_pkce_challenge(challenge)
            .add_extra_param("resource", found.resource.resource.clone())
            .url();
        (self.config.announce)(url.as_str());
        let answer = tokio::time::timeout(wait, callback(listener, state.secret().clone()))
            .await
            .map_err(|_| {
                format!(
                    "nobody logged in within {}s (the login's redirect never came); run the command again",
                    wait.as_secs()
                )
            })??;
        let code = redirected_code(
            &answer,
            state.secret(),
            issuer,
            found.server.iss_in_response,
        )?;
        Ok(Code {
            code: AuthorizationCode::new(code),
            verifier,
            redirect,
        })
    }
}

struct Code {
    code: AuthorizationCode,
    verifier: oauth2::PkceCodeVerifier,
    redirect: RedirectUrl,
}

/// Refuses a surface other than the locked one, naming each difference and what to run.
fn refuse_if_changed(
    server: &Url,
    expected: Option<&AuthSurface>,
    live: &AuthSurface,
) -> Result<(), String> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let differences = expected.differences(live);
    if differences.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the authorization surface of {server} is not the one locked ({}): no token is asked for; review it with `mcplock diff`, accept it with `mcplock lock --update`",
        differences.join("; ")
    ))
}

/// The code of a redirect's query, after its `state`, `iss` (RFC 9207) and `error` are checked.
fn redirected_code(
    query: &[(String, String)],
    state: &str,
    issuer: &str,
    iss_required: bool,
) -> Result<String, String> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("state") != Some(state) {
        return Err("the login's redirect carried another state (a forged or stale redirect): refused; run the command again".into());
    }
    match get("iss") {
        Some(iss) if iss != issuer => {
            return Err(format!(
                "the login's redirect names the issuer {}, not {issuer} (a mix-up: RFC 9207): refused",
                escape(iss)
            ));
        }
        None if iss_required => {
            return Err(format!(
                "the login's redirect does not name its issuer, which {issuer} says it always does (RFC 9207): refused"
            ));
        }
        _ => {}
    }
    if let Some(error) = get("error") {
        let description = get("error_description").unwrap_or_default();
        return Err(format!(
            "the login was refused by {issuer}: {} {}",
            escape(error),
            escape(description)
        ));
    }
    get("code")
        .map(str::to_owned)
        .ok_or_else(|| "the login's redirect carried no code".into())
}

/// Serves the loopback redirect until a request for `/callback` carrying `state` comes; its
/// query. A redirect with another state (forged by something else on this machine, or stale)
/// is answered 400 and ignored, so it cannot end the login it is not part of.
async fn callback(
    listener: tokio::net::TcpListener,
    state: String,
) -> Result<Vec<(String, String)>, String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<(String, String)>>(1);
    let state = Arc::new(state);
    loop {
        tokio::select! {
            query = rx.recv() => return query.ok_or_else(|| "the login's redirect was lost".into()),
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (tx, state) = (tx.clone(), Arc::clone(&state));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let answer = redirect_answer(&req, &state, &tx);
                        async move { Ok::<_, std::convert::Infallible>(answer) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        }
    }
}

/// The page a browser gets at the loopback redirect; a redirect with the awaited state is
/// handed over on `tx`.
fn redirect_answer(
    req: &hyper::Request<hyper::body::Incoming>,
    state: &str,
    tx: &tokio::sync::mpsc::Sender<Vec<(String, String)>>,
) -> hyper::Response<http_body_util::Full<Bytes>> {
    let (status, text) = if req.uri().path() != "/callback" {
        (404, "not found")
    } else {
        let query = req.uri().query().unwrap_or_default();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if pairs.iter().any(|(k, v)| k == "state" && v == state) {
            let _ = tx.try_send(pairs);
            (200, "mcplock: the login is done; you may close this page.")
        } else {
            (
                400,
                "mcplock: this is not the login mcplock is waiting for.",
            )
        }
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(http_body_util::Full::new(Bytes::from(text)))
        .unwrap_or_default()
}

fn token_error<E: std::error::Error>(
    error: &oauth2::RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> String {
    match error {
        oauth2::RequestTokenError::ServerResponse(answer) => {
            let mut text = answer.error().to_string();
            if let Some(description) = answer.error_description() {
                text.push_str(&format!(" ({})", escape(description)));
            }
            text
        }
        oauth2::RequestTokenError::Request(e) => e.to_string(),
        oauth2::RequestTokenError::Parse(e, _) => {
            format!("its answer is not a token response: {e}")
        }
        oauth2::RequestTokenError::Other(e) => e.clone(),
    }
}

/// The HTTP client discovery and token requests use: no redirects, bounded, and every address
/// held to what the server's own address allows.
pub struct Http {
    client: reqwest::Client,
    server: Reach,
}

impl Http {
    async fn new(server: &Url, extra_roots: Option<&[u8]>) -> Result<Http, String> {
        let server_reach = url_reach(server).await?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(EXCHANGE_TIMEOUT)
            .user_agent(concat!("mcplock/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Guarded {
                server: server_reach,
            }));
        if server_reach == Reach::Loopback {
            builder = builder.no_proxy();
        }
        if let Some(pem) = extra_roots {
            let roots = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())?;
            builder = builder.tls_certs_merge(roots);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot set up the OAuth client: {e}"))?;
        Ok(Http {
            client,
            server: server_reach,
        })
    }

    /// `url` if it may be fetched: https (or http to this machine when the server is on it),
    /// and an address literal of a kind the server allows (names are checked as resolved).
    fn checked(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|e| format!("{}: not a URL: {e}", escape(url)))?;
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(format!("{}: names no host", escape(url))),
        };
        let kind = literal.map(reach);
        if let Some(kind) = kind
            && !may_reach(kind, self.server)
        {
            let why = if kind == Reach::Forbidden {
                "never fetched".to_string()
            } else {
                format!(
                    "fetched only for a server that is there too; this one is {}",
                    reach_name(self.server)
                )
            };
            return Err(format!(
                "{}: its address is {} ({why}: SSRF rules)",
                escape(url),
                reach_name(kind)
            ));
        }
        let loopback = kind == Some(Reach::Loopback) || parsed.host_str() == Some("localhost");
        match parsed.scheme() {
            "https" => Ok(parsed),
            "http" if loopback && self.server == Reach::Loopback => Ok(parsed),
            _ => Err(format!(
                "{}: OAuth metadata and endpoints are fetched over https only (http only on this machine, for a server on it)",
                escape(url)
            )),
        }
    }

    /// The first of `urls` that answers 200 with a JSON object (a 404 tries the next).
    async fn first_document(&self, urls: &[Url]) -> Result<(Value, Url), String> {
        let mut tried = Vec::new();
        for url in urls {
            let checked = self.checked(url.as_str())?;
            let response = self
                .client
                .get(checked.clone())
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| format!("{url}: {}", super::errors::error_chain(&e)))?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                tried.push(url.to_string());
                continue;
            }
            if !status.is_success() {
                return Err(format!(
                    "{url} answered HTTP {status} (redirects are not followed)"
                ));
            }
            let body = capped(response).await.map_err(|e| format!("{url}: {e}"))?;
            let document = crate::core::json::parse_strict(&body)
                .map_err(|e| format!("{url}: not JSON: {}", e.message()))?;
            return Ok((document, checked));
        }
        Err(format!("none found (tried {})", tried.join(", ")))
    }
}

async fn capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    super::body::read_capped(&mut response, MAX_DOCUMENT)
        .await
        .map_err(|e| e.to_string())
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpFailed;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpFailed>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            self.checked(&request.uri().to_string())
                .map_err(HttpFailed)?;
            let request =
                reqwest::Request::try_from(request).map_err(|e| HttpFailed(e.to_string()))?;
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|e| HttpFailed(super::errors::error_chain(&e)))?;
            let mut answer = hyper::Response::builder().status(response.status());
            if let Some(kind) = response.headers().get("content-type") {
                answer = answer.header("content-type", kind);
            }
            let body = capped(response).await.map_err(HttpFailed)?;
            answer.body(body).map_err(|e| HttpFailed(e.to_string()))
        })
    }
}

/// Why an exchange with the authorization server failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailed(String);

/// Resolves names, and refuses every address of a kind the server's own address does not
/// allow: the address checked is the one connected to.
struct Guarded {
    server: Reach,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let server = self.server;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| may_reach(reach(a.ip()), server))
                .collect();
            if allowed.is_empty() {
                let kinds: Vec<&str> = found.iter().map(|a| reach_name(reach(a.ip()))).collect();
                return Err(format!(
                    "{host} resolves only to addresses not reached (SSRF rules): {}",
                    kinds.join(", ")
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

fn reach_name(kind: Reach) -> &'static str {
    match kind {
        Reach::Loopback => "this machine's",
        Reach::Private => "a private network's",
        Reach::Forbidden => "link-local, unspecified or multicast",
        Reach::Public => "public",
    }
}

/// The kind of the server's own address: its literal, or every address its name resolves to
/// (the most inward kind among them).
async fn url_reach(server: &Url) -> Result<Reach, String> {
    let kinds: Vec<Reach> = match server.host() {
        Some(url::Host::Ipv4(ip)) => vec![reach(IpAddr::V4(ip))],
        Some(url::Host::Ipv6(ip)) => vec![reach(IpAddr::V6(ip))],
        Some(url::Host::Domain(name)) => {
            let port = server.port_or_known_default().unwrap_or(443);
            tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("{server}: cannot resolve {name}: {e}"))?
                .map(|a| reach(a.ip()))
                .collect()
        }
        None => return Err(format!("{server} names no host")),
    };
    Ok(if kinds.contains(&Reach::Loopback) {
        Reach::Loopback
    } else if kinds.contains(&Reach::Private) {
        Reach::Private
    } else {
        Reach::Public
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_redirect_is_held_to_its_state_and_issuer() {
        let iss = "http://127.0.0.1:9";
        let good = pairs(&[("code", "c"), ("state", "s"), ("iss", iss)]);
        assert_eq!(redirected_code(&good, "s", iss, true).unwrap(), "c");
        let forged = pairs(&[("code", "c"), ("state", "t")]);
        assert!(
            redirected_code(&forged, "s", iss, false)
                .unwrap_err()
                .contains("state")
        );
        let mixed = pairs(&[("code", "c"), ("state", "s"), ("iss", "http://evil")]);
        assert!(
            redirected_code(&mixed, "s", iss, false)
                .unwrap_err()
                .contains("mix-up")
        );
        let silent = pairs(&[("code", "c"), ("state", "s")]);
        assert!(redirected_code(&silent, "s", iss, true).is_err());
        assert_eq!(redirected_code(&silent, "s", iss, false).unwrap(), "c");
        let refused = pairs(&[("error", "access_denied"), ("state", "s")]);
        assert!(
            redirected_code(&refused, "s", iss, false)
                .unwrap_err()
                .contains("access_denied")
        );
    }

    #[tokio::test]
    async fn urls_are_held_to_the_servers_kind_of_address() {
        let local = Http::new(&Url::parse("http://127.0.0.1:1/mcp").unwrap(), None)
            .await
            .unwrap();
        assert!(local.checked("http://127.0.0.1:2/token").is_ok());
        assert!(local.checked("http://169.254.169.254/latest").is_err());
        assert!(local.checked("ftp://127.0.0.1/x").is_err());
        let public = Http::new(&Url::parse("https://93.184.216.34/mcp").unwrap(), None)
            .await
            .unwrap();
        assert!(public.checked("https://127.0.0.1/token").is_err());
        assert!(public.checked("https://10.0.0.1/token").is_err());
        assert!(public.checked("https://[::ffff:127.0.0.1]/token").is_err());
        assert!(public.checked("http://93.184.216.35/token").is_err());
        assert!(public.checked("https://93.184.216.35/token").is_ok());
    }
}
