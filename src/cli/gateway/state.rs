//! What the gateway serves from (`gateway::State`), loaded and verified as a whole at start
//! and again at every reload (SIGHUP, or a change of the files it was read from); a reload
//! that fails keeps the state in force and says why.

use super::read_agents;
use crate::cli::enforcement::{self, RevocationWatch};
use crate::cli::exit::{Code, fail};
use crate::cli::{CliError, GatewayArgs};
use crate::core::lockfile::Lockfile;
use crate::gateway::{Gateway, Limits, State, Upstream, Upstreams};
use std::sync::Arc;
use std::time::Duration;

/// What the gateway makes once and every reload reuses: the revocation watch, and the store of
/// the limits' counters (a reload must not hand every agent a fresh budget).
#[derive(Clone)]
pub struct Kept {
    pub revocations: Option<Arc<RevocationWatch>>,
    pub store: crate::limiter::Store,
}

/// How often the files the state was read from are looked at for a change.
const WATCH: Duration = Duration::from_secs(2);

/// Reads and verifies everything the gateway serves from, as at start.
pub fn load(args: &GatewayArgs, limits: &Limits, kept: &Kept) -> Result<State, CliError> {
    let agents_path = args.agents.as_ref().ok_or_else(|| {
        fail(
            Code::Usage,
            "the gateway needs --agents FILE: every request carries an agent's token (make one with `mcplock gateway token --agents FILE --agent NAME --grant SERVER`)",
        )
    })?;
    let agents = read_agents(agents_path)?.ok_or_else(|| {
        fail(
            Code::InputMissing,
            format!(
                "{} does not exist; make it with `mcplock gateway token --agents {} --agent NAME --grant SERVER`",
                agents_path.display(),
                agents_path.display()
            ),
        )
    })?;
    let lockfile = crate::cli::trusted::enforced(
        &args.lockfile,
        &args.check,
        args.allow_unsigned,
        ("gateway", "what every agent may use"),
    )?;
    shared_are_locked(&args.share, &lockfile, &args.lockfile)?;
    let credentials = Credentials {
        headers: upstream_headers(&args.upstream_headers, &lockfile)?,
        oauth: upstream_oauth(&args.upstream_oauth, &lockfile)?,
    };
    let upstreams = upstreams(&lockfile, &args.share, &credentials);
    let lockfile = Arc::new(lockfile);
    let options = session_options(args, &lockfile, limits, kept)?;
    Ok(State {
        lockfile,
        agents,
        upstreams,
        options,
        rules: rules_digest(args)?,
    })
}

/// `--lockfile https://…`: the lockfile published there (its signature at `URL.sig`), mirrored
/// and verified as at start before each replacement; `args.lockfile` then names the mirror.
pub async fn published_lockfile(
    args: &mut GatewayArgs,
) -> Result<Option<crate::cli::published::Mirror>, CliError> {
    use crate::cli::published;
    if !published::is_url(&args.lockfile) {
        return Ok(None);
    }
    let url = args.lockfile.to_string_lossy().into_owned();
    if args.check.signature.is_some() || args.check.bundle.is_some() {
        return Err(fail(
            Code::Usage,
            format!(
                "--lockfile {url}: a published lockfile is checked with --key (its signature is fetched from {url}.sig) or --allow-unsigned, not --signature or --bundle"
            ),
        ));
    }
    let dir = published::mirror_dir(args.guard.state_dir.as_deref())?;
    let path = dir.join("mcp-lock.json");
    let (check, allow_unsigned) = (args.check.clone(), args.allow_unsigned);
    let verify = move |staged: &std::path::Path| -> Result<(), String> {
        let what = ("gateway", "what every agent may use");
        crate::cli::trusted::enforced(staged, &check, allow_unsigned, what)
            .map(|_| ())
            .map_err(|e| e.headline)
    };
    let cap = crate::cli::files::MAX_LOCKFILE_BYTES as usize;
    let mut mirror = published::Mirror::new("lockfile", &url, path, cap, Box::new(verify))?;
    mirror.first().await?;
    args.lockfile = mirror.path().to_path_buf();
    Ok(Some(mirror))
}

/// A digest of the call rules given: the policy files' bytes and the presets' names.
fn rules_digest(args: &GatewayArgs) -> Result<String, CliError> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for path in &args.guard.policies {
        let bytes =
            crate::edge::fs::read_bounded(path, crate::core::policy::MAX_POLICY_BYTES as u64)
                .map_err(|e| fail(Code::InputUnreadable, e.to_string()))?
                .unwrap_or_default();
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(&bytes);
    }
    for preset in &args.guard.presets {
        hash.update((preset.len() as u64).to_be_bytes());
        hash.update(preset.as_bytes());
    }
    Ok(format!("{:x}", hash.finalize()))
}

/// What identifies the files the state is read from as they are now.
fn stamps(args: &GatewayArgs) -> Vec<enforcement::Stamp> {
    let mut paths = vec![
        args.lockfile.clone(),
        crate::cli::files::default_signature_path(&args.lockfile),
    ];
    paths.extend(args.check.signature.clone());
    paths.extend(args.check.bundle.clone());
    paths.extend(args.agents.clone());
    paths.extend(args.guard.policies.iter().cloned());
    paths.iter().map(|p| enforcement::stamp(p)).collect()
}

/// Reloads on SIGHUP and when a file the state was read from changes, until the gateway stops.
pub async fn watch(gateway: Arc<Gateway>, args: GatewayArgs, limits: Limits, kept: Kept) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut seen = stamps(&args);
    loop {
        let asked = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        let forced = tokio::select! {
            asked = asked => asked,
            () = tokio::time::sleep(WATCH) => false,
        };
        let now = stamps(&args);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        let (args, limits, kept) = (args.clone(), limits.clone(), kept.clone());
        // Verifying a lockfile reads files and checks signatures: off the async loop.
        let loaded = tokio::task::spawn_blocking(move || load(&args, &limits, &kept)).await;
        match loaded {
            Ok(Ok(state)) => {
                let ended = gateway.reload(state);
                gateway.metrics.reloaded(true);
                let text = format!(
                    "reloaded; {ended} session(s) ended because what they were held to changed"
                );
                crate::edge::log::info("gateway", &text, &[]);
            }
            Ok(Err(error)) => {
                gateway.metrics.reloaded(false);
                let text = format!(
                    "reload refused, the state in force stays: {}",
                    error.headline
                );
                crate::edge::log::warn("gateway", &text, &[]);
            }
            Err(_) => gateway.metrics.reloaded(false),
        }
    }
}

/// What each locked server is started from: its locked launch, placeholders filled from this
/// environment, its code held to the lock (and started from a private copy of what was
/// checked); a server that cannot be started says why at start and on every session.
fn upstreams(lockfile: &Lockfile, shared: &[String], credentials: &Credentials) -> Upstreams {
    let mut out = Upstreams::new();
    for (name, entry) in &lockfile.servers {
        let upstream = upstream(name, entry, credentials).map(|u| Upstream {
            shared: shared.contains(name),
            ..u
        });
        if let Err(why) = &upstream {
            let text = format!("server {name:?} is not served: {why}");
            crate::edge::log::warn("gateway", &text, &[("server", name)]);
        }
        out.insert(name.clone(), upstream);
    }
    out
}

fn upstream(
    name: &str,
    entry: &crate::core::lockfile::ServerLock,
    credentials: &Credentials,
) -> Result<Upstream, String> {
    use crate::core::launch::Launch;
    if !crate::core::agents::valid_name(name) {
        return Err(
            "its name is not one a URL path and a grant can hold (letters, digits, '-', '_', '.'); lock it under another with `mcplock lock --name NEW`"
                .to_string(),
        );
    }
    let endpoint = match &entry.launch {
        Launch::Stdio { .. } => {
            crate::cli::locked::locked_command(name, entry, Vec::new()).map_err(|e| e.headline)?
        }
        Launch::Http {
            url,
            header_names,
            context,
        } => {
            let headers = credentials
                .headers
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            headers_as_locked(name, header_names, headers)?;
            let oauth = credentials.oauth.get(name);
            oauth_as_locked(name, entry, oauth)?;
            let remote = crate::cli::RemoteArgs {
                headers: headers.to_vec(),
                oauth_client_id: oauth.map(|o| o.client_id.clone()),
                oauth_client_secret_env: oauth.map(|o| o.secret_var.clone()),
                oauth_scopes: oauth.map(|o| o.scopes.clone()).unwrap_or_default(),
                ..crate::cli::RemoteArgs::default()
            };
            let mut endpoint = remote.endpoint_at(url).map_err(|e| e.headline)?;
            endpoint.context = context.clone();
            let endpoint = crate::transport::Endpoint::Http(endpoint);
            crate::cli::authorization::hold(entry, &endpoint);
            endpoint
        }
    };
    let launch = endpoint.launch();
    enforcement::check_artifact(entry, &launch, name, "gateway").map_err(|e| e.headline)?;
    let private = enforcement::private_copy(entry, &endpoint, &launch).map_err(|e| e.headline)?;
    let endpoint = enforcement::started_from(endpoint, private.as_ref());
    Ok(Upstream {
        endpoint,
        private: private.map(Arc::new),
        shared: false,
    })
}

/// Each remote server's `--upstream-header`s (`Name: value`), by server.
type Headers = std::collections::BTreeMap<String, Vec<String>>;

/// What the gateway reaches remote servers with, by server.
struct Credentials {
    headers: Headers,
    oauth: std::collections::BTreeMap<String, UpstreamOAuth>,
}

/// `--upstream-oauth SERVER=CLIENT_ID:SECRET_VAR[:SCOPE,...]`.
struct UpstreamOAuth {
    client_id: String,
    secret_var: String,
    scopes: Vec<String>,
}

/// Each `--upstream-oauth`, naming a server locked by URL, at most once each.
fn upstream_oauth(
    given: &[String],
    lockfile: &Lockfile,
) -> Result<std::collections::BTreeMap<String, UpstreamOAuth>, CliError> {
    let mut out = std::collections::BTreeMap::new();
    for spec in given {
        let usage = || {
            fail(
                Code::Usage,
                "--upstream-oauth: expected 'SERVER=CLIENT_ID:SECRET_VAR[:SCOPE,SCOPE...]' (for example 'docs=gateway:DOCS_CLIENT_SECRET'), the secret read from the environment variable SECRET_VAR",
            )
        };
        let (server, rest) = spec.split_once('=').ok_or_else(usage)?;
        let mut parts = rest.splitn(3, ':');
        let (Some(client_id), Some(secret_var)) = (parts.next(), parts.next()) else {
            return Err(usage());
        };
        if client_id.is_empty() || secret_var.is_empty() {
            return Err(usage());
        }
        let scopes = parts
            .next()
            .map(|s| {
                s.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if lockfile.servers.get(server).map(|e| e.launch.is_http()) != Some(true) {
            return Err(fail(
                Code::Usage,
                format!(
                    "--upstream-oauth {server}=…: server {server:?} is not locked by URL; OAuth goes only to a server locked with `mcplock lock --url URL --oauth-client-id ID`"
                ),
            ));
        }
        if std::env::var(secret_var).map_or(true, |v| v.trim().is_empty()) {
            return Err(fail(
                Code::EnvMissing,
                format!(
                    "--upstream-oauth {server}=…: the environment variable {secret_var} (the client's secret) is not set, or empty"
                ),
            ));
        }
        let client = UpstreamOAuth {
            client_id: client_id.to_string(),
            secret_var: secret_var.to_string(),
            scopes,
        };
        if out.insert(server.to_string(), client).is_some() {
            return Err(fail(
                Code::Usage,
                format!("--upstream-oauth names server {server:?} twice"),
            ));
        }
    }
    Ok(out)
}

/// A server locked through OAuth is served only with the gateway's own OAuth client, and one
/// locked without only without: what the lock saw is what it is served with.
fn oauth_as_locked(
    name: &str,
    entry: &crate::core::lockfile::ServerLock,
    oauth: Option<&UpstreamOAuth>,
) -> Result<(), String> {
    match (&entry.authorization, oauth) {
        (Some(surface), None) => Err(format!(
            "it was locked through OAuth (issuer {}); give the gateway its own client for it: `--upstream-oauth '{name}=CLIENT_ID:SECRET_VAR'`",
            surface.issuer
        )),
        (None, Some(_)) => Err(
            "it was locked without OAuth, and the gateway was given --upstream-oauth for it; lock it through OAuth (`mcplock lock --update --url URL --oauth-client-id ID`), or drop the flag"
                .to_string(),
        ),
        _ => Ok(()),
    }
}

/// `--upstream-header SERVER=Name: value`, each naming a server locked by URL.
fn upstream_headers(given: &[String], lockfile: &Lockfile) -> Result<Headers, CliError> {
    let mut out = Headers::new();
    for header in given {
        let parsed = header.split_once('=').filter(|(_, h)| h.contains(':'));
        let Some((server, header)) = parsed else {
            return Err(fail(
                Code::Usage,
                "--upstream-header: expected 'SERVER=Name: value' (for example 'docs=Authorization: Bearer ${DOCS_TOKEN}')",
            ));
        };
        let by_url = lockfile.servers.get(server).map(|e| e.launch.is_http());
        if by_url != Some(true) {
            let what = if by_url.is_some() {
                "is not locked by URL"
            } else {
                "is not locked"
            };
            return Err(fail(
                Code::Usage,
                format!(
                    "--upstream-header {server}=…: server {server:?} {what}; headers go only to a server locked with `mcplock lock --url`"
                ),
            ));
        }
        out.entry(server.to_string())
            .or_default()
            .push(header.to_string());
    }
    Ok(out)
}

/// The headers given for a remote server are the ones it was locked with, by name: a lock made
/// with a credential says nothing of what the server shows without it, or with another one.
fn headers_as_locked(name: &str, locked: &[String], given: &[String]) -> Result<(), String> {
    let names = |list: &mut dyn Iterator<Item = &str>| -> std::collections::BTreeSet<String> {
        list.map(|n| n.trim().to_ascii_lowercase()).collect()
    };
    let locked_names = names(&mut locked.iter().map(String::as_str));
    let given_names = names(
        &mut given
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(n, _)| n),
    );
    if locked_names == given_names {
        return Ok(());
    }
    let missing: Vec<&String> = locked_names.difference(&given_names).collect();
    let extra: Vec<&String> = given_names.difference(&locked_names).collect();
    Err(format!(
        "it was locked with headers [{}] and the gateway was given [{}] for it (missing: {missing:?}, not locked: {extra:?}); give each with `--upstream-header '{name}=Name: ${{VAR}}'`, or lock it again with the headers it is served with",
        locked.join(", "),
        given_names.iter().cloned().collect::<Vec<_>>().join(", "),
    ))
}

/// Every `--share` names a locked server (a typo would otherwise silently share nothing).
fn shared_are_locked(
    shared: &[String],
    lockfile: &Lockfile,
    path: &std::path::Path,
) -> Result<(), CliError> {
    let Some(unknown) = shared.iter().find(|n| !lockfile.servers.contains_key(*n)) else {
        return Ok(());
    };
    let locked: Vec<&str> = lockfile.servers.keys().map(String::as_str).collect();
    Err(fail(
        Code::Usage,
        format!(
            "--share {unknown}: {} locks no server {unknown:?} (it locks: {}); name one of those",
            path.display(),
            locked.join(", ")
        ),
    ))
}

/// What every session is held to besides the lock: the options of the proxy session each runs,
/// with the call rules and the revocation list shared by all.
fn session_options(
    args: &GatewayArgs,
    lockfile: &Arc<Lockfile>,
    limits: &Limits,
    kept: &Kept,
) -> Result<Box<crate::gateway::OptionsFor>, CliError> {
    let judges =
        enforcement::call_judges(&args.guard, Arc::clone(lockfile), "gateway", &kept.store)?;
    let revocations = kept.revocations.clone();
    let on_drift = args.on_drift.into();
    let on_response = args.on_response_finding.into();
    let max_message_bytes = limits.max_message_bytes;
    Ok(Box::new(move |server: &str, agent: &str| {
        let mut options = crate::proxy::Options::new(
            server,
            crate::transport::Limits {
                max_message_bytes,
                strict_stdout: false,
            },
        );
        options.on_drift = on_drift;
        options.on_response = on_response;
        options.call_policy = judges.as_ref().map(|j| j.for_session(server, Some(agent)));
        options.revocations = revocations.as_ref().map(|w| w.poller());
        options
    }))
}
