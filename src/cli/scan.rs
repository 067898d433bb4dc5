//! `mcplock scan`: start a server, read everything it offers, print it.

use super::SHUTDOWN_GRACE;
use super::exit::{Code, fail};
use super::render::{self, pretty};
use super::{
    CliError, ClientCapability, Format, Output, RemoteArgs, RepeatArgs, ScanArgs, ServerArgs,
};
use crate::core::lockfile::ServerLock;
use crate::core::stability::{Unstable, between_starts};
use crate::core::text::escape;
use crate::mcp::scan::{ScanError, ScanOptions, Scanned, scan};
use crate::transport::Endpoint;
use crate::transport::http::{HttpEndpoint, HttpServer, check_url};
use crate::transport::stdio::{ServerCommand, StdioServer};
use crate::transport::{Limits, RequestError};
use serde_json::{Map, json};
use std::time::Duration;

/// Lines of the server's stderr shown when it fails.
const STDERR_LINES: usize = 12;

/// Most differences between starts that are collected and shown.
const MAX_UNSTABLE: usize = 50;
/// Differences named in the one-line headline.
const UNSTABLE_IN_HEADLINE: usize = 3;

pub async fn run(args: ScanArgs) -> Result<Output, CliError> {
    let mut scanned = scan_stable(&args.server, &args.repeat, true).await?;
    // Names that look alike within the server (lock also compares with the other servers).
    let name = scanned
        .snapshot
        .server_name()
        .unwrap_or("server")
        .to_string();
    let found = crate::core::confusable::in_snapshot(&name, &scanned.snapshot);
    scanned
        .notes
        .extend(crate::core::confusable::notes(&found, None));
    Ok(Output::lazy(None, move |format| {
        Ok(match format {
            Format::Json => render::json(&scanned.snapshot),
            Format::Sarif => {
                // A scan writes no file: results are located by name only (lock's are in it).
                let entry = ServerLock::from_snapshot(scanned.snapshot, true)
                    .map_err(|e| fail(Code::Internal, e.to_string()))?;
                pretty(&super::sarif::findings_log(
                    "mcplock/scan/",
                    &[(&name, &entry)],
                    None,
                    0,
                ))
            }
            _ => render::human(&scanned),
        })
    }))
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
        Ok(ServerCommand {
            program: program.clone(),
            args: args.to_vec(),
            env,
            cwd: match &self.cwd {
                Some(dir) => Some(
                    std::path::absolute(dir)
                        .map_err(|e| fail(Code::Usage, format!("--cwd {}: {e}", dir.display())))?,
                ),
                None => None,
            },
        })
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

    pub fn scan_options(&self) -> ScanOptions {
        let mut caps = Map::new();
        let mut declared = self.declare.clone();
        declared.sort();
        declared.dedup();
        for cap in declared {
            let key = match cap {
                ClientCapability::Roots => "roots",
                ClientCapability::Sampling => "sampling",
                ClientCapability::Elicitation => "elicitation",
            };
            caps.insert(key.into(), json!({}));
        }
        ScanOptions {
            protocol: self.protocol,
            client_capabilities: caps,
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
        let Some(url) = &self.url else {
            if !self.headers.is_empty() || self.bearer_env.is_some() {
                return Err(fail(
                    Code::Usage,
                    "--header and --bearer-env are for a remote server: pass its --url",
                ));
            }
            return Ok(None);
        };
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
        Ok(Some(HttpEndpoint {
            url,
            headers,
            extra_roots,
        }))
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
    scan_endpoint(args, args.endpoint()?).await
}

/// [`scan_server`] for an endpoint found elsewhere (a host's config); `args` gives the bounds.
pub async fn scan_endpoint(args: &ServerArgs, endpoint: Endpoint) -> Result<Scanned, CliError> {
    match endpoint {
        Endpoint::Stdio(cmd) => scan_command(args, cmd).await,
        Endpoint::Http(endpoint) => scan_remote(args, endpoint).await,
    }
}

async fn scan_remote(args: &ServerArgs, endpoint: HttpEndpoint) -> Result<Scanned, CliError> {
    let opts = args.scan_options();
    let limits = Limits {
        max_message_bytes: args.max_message_size,
        strict_stdout: true,
    };
    let answers = std::sync::Arc::new(crate::mcp::answers::while_scanning);
    let mut server = HttpServer::connect(&endpoint, limits, answers, opts.request_timeout)
        .map_err(|e| fail(Code::Usage, e.to_string()))?;
    let limit = Duration::from_secs_f64(args.scan_timeout);
    let outcome = match tokio::time::timeout(limit, scan(server.connection(), &opts)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ScanError::ScanTimeout(limit)),
    };
    server.shutdown(SHUTDOWN_GRACE).await;
    let launch = Endpoint::Http(endpoint).launch();
    match outcome {
        Ok(mut scanned) => {
            scanned.snapshot.launch = Some(launch);
            Ok(scanned)
        }
        Err(error) => Err(server_error(
            format!("scan failed: {error}"),
            vec![format!("server: {}", launch.describe_with_names())],
        )),
    }
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

async fn scan_command(args: &ServerArgs, cmd: ServerCommand) -> Result<Scanned, CliError> {
    let opts = args.scan_options();
    let limits = Limits {
        max_message_bytes: args.max_message_size,
        strict_stdout: args.strict_stdout,
    };
    let answers = std::sync::Arc::new(crate::mcp::answers::while_scanning);
    let mut server = StdioServer::spawn(&cmd, limits, answers)
        .map_err(|e| server_error(e.to_string(), Vec::new()))?;
    let limit = Duration::from_secs_f64(args.scan_timeout);
    let outcome = match tokio::time::timeout(limit, scan(server.connection(), &opts)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ScanError::ScanTimeout(limit)),
    };
    let exit = server.shutdown(SHUTDOWN_GRACE).await;
    let outcome = match (outcome, &exit.trailing_fault) {
        (Ok(_), Some(error)) => Err(ScanError::Request(RequestError::Conn {
            method: "after the last answer".into(),
            error: error.clone(),
        })),
        (outcome, _) => outcome,
    };
    match outcome {
        Ok(mut scanned) => {
            let launch = Endpoint::Stdio(cmd.clone()).launch();
            // After the run: npx and friends have installed what they ran by now.
            scanned.snapshot.artifact = resolve_artifact(launch.clone()).await;
            scanned.snapshot.launch = Some(launch);
            if let Some(signal) = exit.escalated_to {
                scanned.notes.push(format!(
                    "the server did not exit when its input closed; stopped it with {signal}"
                ));
            }
            Ok(scanned)
        }
        Err(error) => {
            let mut details = vec![format!("server: {}", cmd.display())];
            match (exit.status, exit.escalated_to) {
                (_, Some(signal)) => details.push(format!("stopped with {signal}")),
                (Some(status), None) => details.push(format!("server {status}")),
                (None, None) => {}
            }
            if let Some(note) = crate::mcp::scan::skipped_note(&server.connection().skipped()) {
                details.push(note);
            }
            let stderr = server.stderr_report(STDERR_LINES);
            if stderr.lines.is_empty() {
                details.push("server stderr: (empty)".into());
            } else {
                details.push(format!(
                    "server stderr (last {} lines of {} bytes):",
                    stderr.lines.len(),
                    stderr.total_bytes
                ));
                details.extend(stderr.lines.iter().map(|l| format!("| {l}")));
            }
            Err(server_error(format!("scan failed: {error}"), details))
        }
    }
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
