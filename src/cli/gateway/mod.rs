//! `mcplock gateway`: what it serves from loaded and verified (`state.rs`), its TLS (`tls.rs`),
//! then the gateway until a stop signal; `gateway token`.

mod state;
mod tls;

use super::enforcement;
use super::exit::{Code, fail};
use super::{CliError, GatewayArgs, GatewayCommand, GatewayTokenArgs, Output};
use crate::core::agents::{Agents, TOKEN_PREFIX, token_digest};
use crate::gateway::{Gateway, Limits};
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;

/// Largest agents file read.
const MAX_AGENTS_BYTES: u64 = 16 << 20;

pub async fn run(args: GatewayArgs) -> Result<Output, CliError> {
    match &args.command {
        Some(GatewayCommand::Token(token)) => self::token(token),
        Some(GatewayCommand::Subject(subject)) => self::subject(subject),
        None => {
            let (args, mirrors) = published(args).await?;
            serve(&args, mirrors).await
        }
    }
}

/// A lockfile or revocation list given as a URL: fetched and verified now, then read from its
/// mirror (`cli::published`), which is polled once the gateway runs.
async fn published(
    mut args: GatewayArgs,
) -> Result<(GatewayArgs, Vec<super::published::Mirror>), CliError> {
    let mut mirrors = Vec::new();
    mirrors.extend(state::published_lockfile(&mut args).await?);
    let key = args.check.key.clone();
    let allow_unsigned = args.allow_unsigned;
    mirrors.extend(
        enforcement::published_revocations(&mut args.guard, key.as_deref(), allow_unsigned).await?,
    );
    Ok((args, mirrors))
}

/// Says where it listens and which servers it serves.
fn say_listening(gateway: &Gateway, bound: std::net::SocketAddr) {
    let names: Vec<String> = (gateway.state().upstreams.iter())
        .filter(|(_, e)| e.is_ok())
        .map(|(n, _)| n.clone())
        .collect();
    let scheme = if gateway.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{bound}");
    let text = format!(
        "listening on {url} (servers at /servers/NAME/mcp: {})",
        names.join(", ")
    );
    crate::edge::log::info("gateway", &text, &[("url", &url)]);
}

/// Polls each mirror, its health counted in the gateway's metrics.
fn poll_mirrors(gateway: &Gateway, mirrors: Vec<super::published::Mirror>, every: Duration) {
    for mut mirror in mirrors {
        let metrics = Arc::clone(&gateway.metrics);
        mirror.observe(Arc::new(move |name, fresh| metrics.published(name, fresh)));
        tokio::spawn(mirror.run(every));
    }
}

fn read_agents(path: &std::path::Path) -> Result<Option<Agents>, CliError> {
    let bytes = match crate::edge::fs::read_secret(path, MAX_AGENTS_BYTES) {
        Ok(bytes) => bytes,
        Err(crate::edge::fs::FsError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(fail(
                Code::InputUnreadable,
                format!(
                    "{e} (the agents file must be 0600: chmod 600 {})",
                    path.display()
                ),
            ));
        }
    };
    Agents::parse(&bytes)
        .map(Some)
        .map_err(|e| {
            fail(
                Code::Usage,
                format!(
                    "{}: {e}; fix it, or start a new file with `mcplock gateway token --agents NEW --agent NAME --grant SERVER`",
                    path.display()
                ),
            )
        })
}

/// `gateway token`: a new token for the agent (created when new), its grants added.
fn token(args: &GatewayTokenArgs) -> Result<Output, CliError> {
    let _guard = crate::edge::fs::lock_directory_of(&args.agents)?;
    let mut agents = read_agents(&args.agents)?.unwrap_or_else(Agents::new);
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| fail(Code::Internal, format!("no randomness for a token: {e}")))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    agents
        .add_token(&args.agent, token_digest(&token), &args.grants)
        .map_err(|e| fail(Code::Usage, e.to_string()))?;
    crate::edge::fs::write_atomic_private(&args.agents, &agents.to_bytes())
        .map_err(|e| fail(Code::WriteFailed, e.to_string()))?;
    let grants = agents
        .agents
        .get(&args.agent)
        .map(|a| a.grants.clone())
        .unwrap_or_default();
    if grants.is_empty() {
        eprintln!(
            "mcplock: agent {:?} has no grant: it may use nothing; add one with `mcplock gateway token --agents {} --agent {} --grant SERVER`",
            args.agent,
            args.agents.display(),
            args.agent
        );
    } else {
        eprintln!(
            "mcplock: agent {:?} may use: {} (the token below is shown once; only its digest is kept in {})",
            args.agent,
            grants.join(", "),
            args.agents.display()
        );
    }
    let json = serde_json::json!({"agent": args.agent, "token": token, "grants": grants});
    Ok(Output::report(None, format!("{token}\n"), json))
}

/// `gateway subject`: an OAuth client made an agent.
fn subject(args: &crate::cli::GatewaySubjectArgs) -> Result<Output, CliError> {
    let _guard = crate::edge::fs::lock_directory_of(&args.agents)?;
    let mut agents = read_agents(&args.agents)?.unwrap_or_else(Agents::new);
    agents
        .add_subject(&args.agent, &args.subject, &args.grants)
        .map_err(|e| fail(Code::Usage, e.to_string()))?;
    crate::edge::fs::write_atomic_private(&args.agents, &agents.to_bytes())
        .map_err(|e| fail(Code::WriteFailed, e.to_string()))?;
    let grants = (agents.agents.get(&args.agent))
        .map(|a| a.grants.clone())
        .unwrap_or_default();
    let text = format!(
        "agent {:?} is the OAuth client {:?}; it may use: {}\n",
        args.agent,
        args.subject,
        if grants.is_empty() {
            "nothing (add --grant SERVER)".to_string()
        } else {
            grants.join(", ")
        }
    );
    let json = serde_json::json!({"agent": args.agent, "subject": args.subject, "grants": grants});
    Ok(Output::report(None, text, json))
}

/// The gateway over the state loaded and verified from `args`, and what its reloads reuse (the
/// revocation watch, the limits' store, which is asked once now).
async fn loaded(args: &GatewayArgs, limits: &Limits) -> Result<(Gateway, state::Kept), CliError> {
    let key = args.check.key.as_deref();
    let kept = state::Kept {
        revocations: enforcement::revocations(&args.guard, key, args.allow_unsigned, "gateway")?,
        store: enforcement::limit_store(&args.guard)?,
    };
    let state = state::load(args, limits, &kept)?;
    let mut gateway = Gateway::new(state, limits.clone());
    if let (Some(issuer), Some(audience)) = (&args.oauth_issuer, &args.oauth_audience) {
        let leeway = Duration::from_secs(args.oauth_leeway);
        let scopes = args.oauth_scopes.clone();
        let oauth = crate::gateway::oauth::OAuth::discover(issuer, audience, scopes, leeway)
            .await
            .map_err(|e| fail(Code::Usage, format!("--oauth-issuer {issuer}: {e}")))?;
        gateway.oauth = Some(Arc::new(oauth));
    }
    let metrics = Arc::clone(&gateway.metrics);
    kept.store
        .observe(Box::new(move |up| metrics.limits_store(up)));
    if let Err(why) = kept.store.probe().await {
        let text = format!(
            "the limits' store ({}) does not answer: {why}; calls under a limit are refused until it does",
            kept.store.name()
        );
        crate::edge::log::warn("gateway", &text, &[]);
    }
    Ok((gateway, kept))
}

async fn serve(
    args: &GatewayArgs,
    mirrors: Vec<super::published::Mirror>,
) -> Result<Output, CliError> {
    if args.log_format == super::LogFormat::Json {
        crate::edge::log::use_json();
    }
    let address: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        fail(
            Code::Usage,
            format!(
                "--listen {:?}: expected ADDR:PORT, e.g. 127.0.0.1:8700",
                args.listen
            ),
        )
    })?;
    let tls = tls::acceptor(args)?;
    if !address.ip().is_loopback() && tls.is_none() {
        return Err(fail(
            Code::Usage,
            format!(
                "--listen {address}: plain HTTP is served on loopback only (tokens would cross the network in the clear); give --tls-cert and --tls-key, or listen on 127.0.0.1 behind a TLS reverse proxy"
            ),
        ));
    }
    let limits = Limits {
        max_sessions: args.max_sessions.max(1),
        idle_timeout: Duration::from_secs_f64(args.idle_timeout),
        ..Limits::default()
    };
    let (mut gateway, kept) = loaded(args, &limits).await?;
    gateway.allowed_origins = args.allow_origin.clone();
    gateway.tls = tls;
    gateway.audit =
        enforcement::open_audit(&args.guard)?.map(|log| Arc::new(std::sync::Mutex::new(log)));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| fail(Code::Usage, format!("--listen {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| fail(Code::Internal, e.to_string()))?;
    say_listening(&gateway, bound);
    poll_mirrors(
        &gateway,
        mirrors,
        Duration::from_secs_f64(args.published_poll),
    );
    let gateway = Arc::new(gateway);
    gateway.checkpoint(crate::core::audit::Mark::Open);
    let watcher = tokio::spawn(state::watch(
        Arc::clone(&gateway),
        args.clone(),
        limits,
        kept,
    ));
    // SIGTERM or SIGINT stops it (SIGHUP is for reloading: `state::watch`).
    let stop = async {
        super::interrupted(false).await;
    };
    crate::gateway::serve(listener, Arc::clone(&gateway), stop).await;
    watcher.abort();
    gateway.checkpoint(crate::core::audit::Mark::Close);
    super::published::clean_up();
    crate::edge::log::info("gateway", "stopped", &[]);
    Ok(Output::text(None, String::new()))
}
