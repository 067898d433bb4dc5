//! Reading a live server for a command: the endpoint its flags name, one scan of it within
//! bounds (over [`crate::session`], either transport), and the check that it offers the same
//! on every start.

use super::SHUTDOWN_GRACE;
use super::exit::{Code, fail};
use super::{CliError, ClientCapability, RemoteArgs, RepeatArgs, ServerArgs};
use crate::core::lockfile::ServerLock;
use crate::core::stability::{Unstable, between_starts};
use crate::core::text::escape;
use crate::mcp::scan::{ScanError, ScanOptions, Scanned, scan};
use crate::session::Bounds;
use crate::transport::http::{HttpEndpoint, check_url};
use crate::transport::oauth::{Grant, OAuth, OAuthConfig};
use crate::transport::process::ServerCommand;
use crate::transport::{Endpoint, Limits, RequestError};
use serde_json::{Map, json};
use std::time::Duration;

/// Most differences between starts that are collected and shown.
const MAX_UNSTABLE: usize = 50;
/// Differences named in the one-line headline.
const UNSTABLE_IN_HEADLINE: usize = 3;

/// How a command reads a live server: what the scan asks and accepts, the bound on each
/// message, and on the whole scan (start-up included).
#[derive(Clone, Debug)]
pub struct Reading {
    pub opts: ScanOptions,
    pub limits: Limits,
    pub scan_timeout: Duration,
}

/// The client capabilities declared, as the `capabilities` object says them.
pub fn capabilities(declared: &[ClientCapability]) -> Map<String, serde_json::Value> {
    let mut declared = declared.to_vec();
    declared.sort();
    declared.dedup();
    let mut caps = Map::new();
    for cap in declared {
        let key = match cap {
            ClientCapability::Roots => "roots",
            ClientCapability::Sampling => "sampling",
            ClientCapability::Elicitation => "elicitation",
        };
        caps.insert(key.into(), json!({}));
    }
    caps
}

impl ServerArgs {
    /// True when a live server is given: a command after `--` or a `--url`.
    pub fn names_a_server(&self) -> bool {
        !self.server.is_empty() || self.remote.url.is_some()
    }

    /// The server these arguments name: the command after `--`, or `--url` with its headers.
    pub fn endpoint(&self) -> Result<Endpoint, CliError> {
        if !self.env.is_empty() && self.remote.url.is_some() {
            return Err(fail(
                Code::Usage,
                "--env is for a command: a remote server (--url) takes --header or --bearer-env",
            ));
        }
        match self.remote.endpoint()? {
            Some(endpoint) => Ok(Endpoint::Http(endpoint)),
            None => self.command().map(Endpoint::Stdio),
        }
    }

    pub fn command(&self) -> Result<ServerCommand, CliError> {
        let (program, args) = self.server.split_first().ok_or_else(|| {
            fail(
                Code::Usage,
                "no server given; put its command after `--` (e.g. `mcplock scan -- npx -y @modelcontextprotocol/server-everything`) or pass a remote server's --url",
            )
        })?;
        Ok(ServerCommand {
            program: program.clone(),
            args: args.to_vec(),
            env: self.env_values()?,
            cwd: match &self.cwd {
                Some(dir) => Some(
                    std::path::absolute(dir)
                        .map_err(|e| fail(Code::Usage, format!("--cwd {}: {e}", dir.display())))?,
                ),
                None => None,
            },
        })
    }

    /// Each `--env` with its value (`NAME` alone takes mcplock's own), remembered as a secret.
    pub fn env_values(&self) -> Result<Vec<(String, String)>, CliError> {
        let mut env = Vec::with_capacity(self.env.len());
        for (name, value) in &self.env {
            let value = match value {
                Some(value) => value.clone(),
                None => std::env::var(name).map_err(|_| {
                    fail(
                        Code::EnvMissing,
                        format!("--env {name}: {name} is not set; export it first (its value is passed to the server, never shown)"),
                    )
                })?,
            };
            crate::edge::secrets::remember_named(name, &value);
            env.push((name.clone(), value));
        }
        Ok(env)
    }

    /// Passes by name each variable the locked server (`--name`, or the one locked with this
    /// command) was locked with that is set here and not given: relaunched with the secret
    /// exported, it is the launch that was locked, not a changed one.
    pub fn adopt_locked_env(
        &mut self,
        lockfile: &crate::core::lockfile::Lockfile,
        name: Option<&str>,
    ) {
        let Ok(command) = self.command() else {
            return;
        };
        let live = Endpoint::Stdio(command).launch();
        let Some(entry) = super::entries::entry_ignoring_env(lockfile, name, &live) else {
            return;
        };
        for key in entry.launch.env_keys() {
            if !self.env.iter().any(|(k, _)| k == key) && std::env::var_os(key).is_some() {
                self.env.push((key.clone(), None));
            }
        }
    }

    /// How a command reads the server these arguments name.
    pub fn reading(&self) -> Reading {
        Reading {
            opts: self.scan_options(),
            limits: Limits {
                max_message_bytes: self.max_message_size,
                strict_stdout: self.strict_stdout,
            },
            scan_timeout: Duration::from_secs_f64(self.scan_timeout),
        }
    }

    fn scan_options(&self) -> ScanOptions {
        ScanOptions {
            protocol: self.protocol,
            client_capabilities: capabilities(&self.declare),
            request_timeout: Duration::from_secs_f64(self.timeout),
            probe_timeout: Duration::from_secs_f64(self.probe_timeout),
            max_pages: self.max_pages,
            max_items: self.max_items,
            max_total_items: self.max_total_items,
            max_scan_bytes: self.max_scan_bytes as u64,
            ..ScanOptions::default()
        }
    }
}

impl RemoteArgs {
    /// The remote endpoint, when `--url` is given: URL checked, headers with their `${VAR}`
    /// expanded, the bearer token read from its variable, the extra roots read.
    pub fn endpoint(&self) -> Result<Option<HttpEndpoint>, CliError> {
        match &self.url {
            Some(url) => self.endpoint_at(url).map(Some),
            None if !self.headers.is_empty()
                || self.bearer_env.is_some()
                || self.oauth_client_id.is_some()
                || self.context.is_some() =>
            {
                Err(fail(
                    Code::Usage,
                    "--header, --bearer-env, --oauth-client-id and --context are for a remote server: pass its --url",
                ))
            }
            None => Ok(None),
        }
    }

    /// The endpoint at `url` (given, or recorded in a lock) with these headers.
    pub fn endpoint_at(&self, url: &str) -> Result<HttpEndpoint, CliError> {
        // A credential in a URL would be recorded, printed and on command lines (issue 26).
        if let Some(what) = crate::core::launch::url_credential(url) {
            return Err(fail(
                Code::Usage,
                format!(
                    "--url {}: a URL must not carry credentials (it carries {what}: they would be recorded and readable on command lines); pass it as a header from the environment instead: --bearer-env VAR, or --header 'Name: ${{VAR}}'",
                    escape(&crate::core::launch::redact_url(url))
                ),
            ));
        }
        let url = check_url(url, self.allow_insecure_http)
            .map_err(|e| fail(Code::Usage, e.to_string()))?;
        let mut headers = Vec::new();
        for header in &self.headers {
            let (name, value) = header.split_once(':').ok_or_else(|| {
                fail(
                    Code::Usage,
                    format!(
                        "--header {:?}: expected 'Name: value'",
                        escape(header.split(':').next().unwrap_or_default())
                    ),
                )
            })?;
            let name = name.trim();
            let value = expand_env(name, value.trim())?;
            crate::edge::secrets::remember(&value);
            headers.push((name.to_string(), value));
        }
        if let Some(var) = &self.bearer_env {
            let token = std::env::var(var)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| {
                    fail(Code::EnvMissing, format!(
                        "--bearer-env {var}: the environment variable {var} is not set (or empty)"
                    ))
                })?;
            crate::edge::secrets::remember(&token);
            headers.push(("Authorization".into(), format!("Bearer {}", token.trim())));
        }
        let extra_roots = match &self.cacert {
            None => None,
            Some(path) => Some(
                crate::edge::fs::read_bounded(path, 1 << 20)
                    .map_err(|e| fail(Code::InputUnreadable, format!("--cacert: {e}")))?
                    .ok_or_else(|| {
                        fail(
                            Code::InputMissing,
                            format!("--cacert: {} does not exist", path.display()),
                        )
                    })?,
            ),
        };
        let oauth = self.oauth_client(&url, extra_roots.clone())?;
        if oauth.is_some()
            && headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            return Err(fail(
                Code::Usage,
                "--oauth-client-id gets the Authorization header itself: drop --bearer-env (or the --header 'Authorization: ...')",
            ));
        }
        Ok(HttpEndpoint {
            url,
            headers,
            extra_roots,
            context: self.context.clone(),
            oauth,
        })
    }

    /// The OAuth client `--oauth-client-id` asks for, one per server URL (made once), its
    /// secrets read from the environment.
    fn oauth_client(
        &self,
        url: &reqwest::Url,
        extra_roots: Option<Vec<u8>>,
    ) -> Result<Option<std::sync::Arc<OAuth>>, CliError> {
        let Some(client_id) = &self.oauth_client_id else {
            return Ok(None);
        };
        let mut made = self.oauth.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = made.get(url.as_str()) {
            return Ok(Some(std::sync::Arc::clone(client)));
        }
        let secret = |flag: &str, var: &Option<String>| -> Result<Option<String>, CliError> {
            let Some(var) = var else { return Ok(None) };
            let value = std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    fail(
                        Code::EnvMissing,
                        format!(
                            "{flag} {var}: the environment variable {var} is not set (or empty)"
                        ),
                    )
                })?;
            crate::edge::secrets::remember(&value);
            Ok(Some(value.trim().to_string()))
        };
        let client_secret = secret("--oauth-client-secret-env", &self.oauth_client_secret_env)?;
        let refresh = secret("--oauth-refresh-token-env", &self.oauth_refresh_token_env)?;
        let grant = match (refresh, &client_secret) {
            (Some(refresh), _) => Grant::RefreshToken(refresh),
            (None, Some(_)) => Grant::ClientCredentials,
            (None, None) => Grant::Browser {
                port: self.oauth_redirect_port.unwrap_or(0),
                wait: Duration::from_secs(self.oauth_login_timeout),
            },
        };
        let announce = std::sync::Arc::new(|url: &str| {
            eprintln!(
                "mcplock: to authorize access to this server, open this URL in a browser and log in:\n  {url}"
            );
        });
        let client = OAuth::new(OAuthConfig {
            client_id: client_id.clone(),
            client_secret,
            grant,
            scopes: self.oauth_scopes.clone(),
            extra_roots,
            announce,
        });
        made.insert(url.to_string(), std::sync::Arc::clone(&client));
        Ok(Some(client))
    }
}

/// Replaces each `${VAR}` in a header value by that environment variable; one that is not set
/// is an error naming the header (never the value).
fn expand_env(header: &str, value: &str) -> Result<String, CliError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            fail(
                Code::Usage,
                format!("--header {header:?}: an unclosed ${{ in its value"),
            )
        })?;
        let var = &after[..end];
        let found = std::env::var(var).map_err(|_| {
            fail(
                Code::EnvMissing,
                format!("--header {header:?}: its value uses ${{{var}}}, which is not set"),
            )
        })?;
        out.push_str(&found);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Connects to the server (starts it, or reaches its URL), scans it and stops it. Every
/// failure is an exit-3 error that names the server (and, for a command, shows the tail of its
/// stderr).
pub async fn scan_server(args: &ServerArgs) -> Result<Scanned, CliError> {
    scan_endpoint(&args.reading(), args.endpoint()?).await
}

/// One scan of the server at `endpoint`, within `reading`'s bounds; the server is stopped
/// however the scan ends.
pub async fn scan_endpoint(reading: &Reading, endpoint: Endpoint) -> Result<Scanned, CliError> {
    let bounds = Bounds {
        limits: reading.limits,
        request_timeout: reading.opts.request_timeout,
        tee_stderr: false,
    };
    let answers = std::sync::Arc::new(crate::mcp::answers::while_scanning);
    let mut client = crate::session::connect(&endpoint, &bounds, answers)?;
    let limit = reading.scan_timeout;
    let scanned = tokio::time::timeout(limit, scan(client.connection(), &reading.opts)).await;
    let closed = client.close(SHUTDOWN_GRACE).await;
    let outcome = match (scanned, &closed.trailing_fault) {
        (Err(_), _) => Err(ScanError::ScanTimeout(limit)),
        (Ok(Ok(_)), Some(error)) => Err(ScanError::Request(RequestError::Conn {
            method: "after the last answer".into(),
            error: error.clone(),
        })),
        (Ok(outcome), _) => outcome,
    };
    let launch = endpoint.launch();
    let mut scanned = match outcome {
        Ok(scanned) => scanned,
        Err(error) => {
            let mut details = vec![match &endpoint {
                Endpoint::Stdio(cmd) => format!("server: {}", cmd.display()),
                Endpoint::Http(_) => format!("server: {}", launch.describe_with_names()),
            }];
            details.extend(closed.details_before_stderr());
            if let Some(note) = crate::mcp::scan::skipped_note(&client.connection().skipped()) {
                details.push(note);
            }
            details.extend(closed.stderr_details());
            return Err(server_error(format!("scan failed: {error}"), details));
        }
    };
    if let Endpoint::Stdio(_) = endpoint {
        // After the run: npx and friends have installed what they ran by now.
        scanned.snapshot.artifact = resolve_artifact(launch.clone()).await;
    }
    if let Endpoint::Http(http) = &endpoint {
        scanned.snapshot.authorization = http.oauth.as_ref().and_then(|o| o.met());
    }
    scanned.snapshot.launch = Some(launch);
    if let Some(signal) = closed.escalated_to {
        scanned.notes.push(format!(
            "the server did not exit when its input closed; stopped it with {signal}"
        ));
    }
    Ok(scanned)
}

/// The artifact a local launch runs ([`crate::edge::artifact::resolve`]), off the runtime's
/// threads (it reads files and may ask an image engine).
async fn resolve_artifact(
    launch: crate::core::launch::Launch,
) -> Option<crate::core::artifact::Artifact> {
    tokio::task::spawn_blocking(move || crate::edge::artifact::resolve(&launch))
        .await
        .unwrap_or_else(|e| {
            Some(crate::core::artifact::Artifact::unresolved(format!(
                "resolving failed: {e}"
            )))
        })
}

/// Scans the server `repeat.repeat` times, one start after another, and compares every start
/// with the first (as lock entries, so exactly what a lock would pin). Differences refuse the
/// scan (exit 3) unless `--accept-unstable`, which keeps the first scan with a note. Static
/// resources count only `with_resources` (lock pins them only when asked).
pub async fn scan_stable(
    args: &ServerArgs,
    repeat: &RepeatArgs,
    with_resources: bool,
) -> Result<Scanned, CliError> {
    if repeat.accept_unstable && repeat.repeat < 2 {
        return Err(fail(
            Code::Usage,
            "--accept-unstable only means something with --repeat N (N of 2 or more)",
        ));
    }
    let mut first = scan_server(args).await?;
    if repeat.repeat < 2 {
        return Ok(first);
    }
    let as_entry = |scanned: Scanned| {
        ServerLock::from_snapshot(scanned.snapshot, with_resources)
            .map_err(|e| server_error(e.to_string(), Vec::new()))
    };
    let base = as_entry(first.clone())?;
    let mut found: std::collections::BTreeMap<Unstable, Vec<u32>> = Default::default();
    for start in 2..=repeat.repeat {
        let entry = as_entry(scan_server(args).await?)?;
        for place in between_starts(&base, &entry, MAX_UNSTABLE) {
            if found.len() < MAX_UNSTABLE || found.contains_key(&place) {
                found.entry(place).or_default().push(start);
            }
        }
    }
    let n = repeat.repeat;
    if found.is_empty() {
        first.notes.push(format!(
            "started the server {n} times: it offered exactly the same each time"
        ));
        return Ok(first);
    }
    let name = match first.snapshot.server_name() {
        Some(name) => format!("{:?}", escape(name)),
        None => args.endpoint()?.display(),
    };
    let mut summary: Vec<String> = found
        .keys()
        .take(UNSTABLE_IN_HEADLINE)
        .map(|u| u.describe(escape))
        .collect();
    if found.len() > UNSTABLE_IN_HEADLINE {
        summary.push(format!("{} more", found.len() - UNSTABLE_IN_HEADLINE));
    }
    let summary = summary.join("; ");
    let details: Vec<String> = found
        .iter()
        .map(|(place, starts)| {
            let starts: Vec<String> = starts.iter().map(u32::to_string).collect();
            format!(
                "{} differs between start 1 and start {}",
                place.describe(escape),
                starts.join(", ")
            )
        })
        .collect();
    if repeat.accept_unstable {
        first.notes.push(format!(
            "server {name} is not deterministic: {summary} differ between its {n} starts; kept the first scan as --accept-unstable asked, so expect drift on every re-scan"
        ));
        first.notes.extend(details);
        return Ok(first);
    }
    let mut details = details;
    details.push(format!("started {n} times: {}", args.endpoint()?.display()));
    Err(fail(
        Code::ServerUnstable,
        format!(
            "server {name} is not deterministic: {summary} differ between starts; a lock of it would report drift on every re-scan (--accept-unstable keeps the first scan anyway)"
        ),
    )
    .with_details(details))
}

fn server_error(headline: String, details: Vec<String>) -> CliError {
    fail(Code::ServerFailed, headline).with_details(details)
}
