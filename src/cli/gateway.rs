//! `mcplock gateway`: the checks before serving (the lockfile trusted, the agents file read,
//! each locked server's launch made ready), then the gateway; `gateway token`.

use super::enforcement;
use super::exit::{Code, fail};
use super::{CliError, GatewayArgs, GatewayCommand, GatewayTokenArgs, Output};
use crate::core::agents::{Agents, TOKEN_PREFIX, token_digest};
use crate::core::lockfile::Lockfile;
use crate::gateway::{Gateway, Limits, Upstream, Upstreams};
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;

/// Largest agents file read.
const MAX_AGENTS_BYTES: u64 = 16 << 20;

pub async fn run(args: GatewayArgs) -> Result<Output, CliError> {
    match &args.command {
        Some(GatewayCommand::Token(token)) => self::token(token),
        None => serve(&args).await,
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

/// What each locked server is started from: its locked launch, placeholders filled from this
/// environment, its code held to the lock (and started from a private copy of what was
/// checked); a server that cannot be started says why at start and on every session.
fn upstreams(lockfile: &Lockfile) -> Upstreams {
    let mut out = Upstreams::new();
    for (name, entry) in &lockfile.servers {
        let upstream = upstream(name, entry);
        if let Err(why) = &upstream {
            crate::edge::log::warn("gateway", why, &[("server", name)]);
        }
        out.insert(name.clone(), upstream);
    }
    out
}

fn upstream(name: &str, entry: &crate::core::lockfile::ServerLock) -> Result<Upstream, String> {
    use crate::core::launch::Launch;
    if !crate::core::agents::valid_name(name) {
        return Err(format!(
            "server {name:?} is not served: its name is not one a URL path and a grant can hold (letters, digits, '-', '_', '.'); lock it under another with `mcplock lock --name NEW`"
        ));
    }
    let endpoint = match &entry.launch {
        Launch::Stdio { .. } => {
            super::locked::locked_command(name, entry, Vec::new()).map_err(|e| e.headline)?
        }
        Launch::Http { header_names, .. } if !header_names.is_empty() => {
            return Err(format!(
                "server {name:?} is not served: it was locked with headers ({}), and the gateway has no credentials of its own for it yet (reach it with `mcplock proxy --url`)",
                header_names.join(", ")
            ));
        }
        Launch::Http { url, .. } => crate::transport::Endpoint::Http(
            super::RemoteArgs::default()
                .endpoint_at(url)
                .map_err(|e| e.headline)?,
        ),
    };
    let launch = endpoint.launch();
    enforcement::check_artifact(entry, &launch, name, "gateway").map_err(|e| e.headline)?;
    let private = enforcement::private_copy(entry, &endpoint, &launch).map_err(|e| e.headline)?;
    let endpoint = match (endpoint, &private) {
        (crate::transport::Endpoint::Stdio(mut cmd), Some(private)) => {
            cmd.program = private.program.clone();
            cmd.args = private.args.clone();
            crate::transport::Endpoint::Stdio(cmd)
        }
        (endpoint, _) => endpoint,
    };
    Ok(Upstream {
        endpoint,
        private: private.map(Arc::new),
    })
}

/// What every session is held to besides the lock: the options of the proxy session each runs,
/// with the call rules and the revocation list shared by all.
fn session_options(
    args: &GatewayArgs,
    lockfile: &Arc<Lockfile>,
    limits: &Limits,
) -> Result<Box<crate::gateway::OptionsFor>, CliError> {
    let judges = enforcement::call_judges(&args.guard, Arc::clone(lockfile), "gateway")?;
    let key = args.check.key.as_deref();
    let revocations = enforcement::revocations(&args.guard, key, args.allow_unsigned, "gateway")?;
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

/// Largest certificate chain or key file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// `--tls-cert` and `--tls-key`: a TLS server configuration (TLS 1.2 and 1.3, HTTP/1.1), or
/// none when not asked for.
fn tls_acceptor(args: &GatewayArgs) -> Result<Option<tokio_rustls::TlsAcceptor>, CliError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let unreadable = |path: &std::path::Path, why: String| {
        fail(Code::InputUnreadable, format!("{}: {why}", path.display()))
    };
    let chain_pem = crate::edge::fs::read_bounded(cert, MAX_PEM_BYTES)
        .map_err(|e| unreadable(cert, e.to_string()))?
        .ok_or_else(|| unreadable(cert, "no such file".into()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| unreadable(cert, format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(unreadable(
            cert,
            "holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let key_pem = crate::edge::fs::read_secret(key, MAX_PEM_BYTES).map_err(|e| {
        unreadable(
            key,
            format!(
                "{e} (a private key must be 0600: chmod 600 {})",
                key.display()
            ),
        )
    })?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| unreadable(key, format!("not a PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|e| {
            fail(
                Code::Usage,
                format!(
                    "--tls-cert {} with --tls-key {}: {e} (the key must be the certificate's)",
                    cert.display(),
                    key.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Resolves on SIGTERM or SIGINT (SIGHUP is for reloading).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

async fn serve(args: &GatewayArgs) -> Result<Output, CliError> {
    if args.log_format == super::LogFormat::Json {
        crate::edge::log::use_json();
    }
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
    let address: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        fail(
            Code::Usage,
            format!(
                "--listen {:?}: expected ADDR:PORT, e.g. 127.0.0.1:8700",
                args.listen
            ),
        )
    })?;
    let tls = tls_acceptor(args)?;
    if !address.ip().is_loopback() && tls.is_none() {
        return Err(fail(
            Code::Usage,
            format!(
                "--listen {address}: plain HTTP is served on loopback only (tokens would cross the network in the clear); give --tls-cert and --tls-key, or listen on 127.0.0.1 behind a TLS reverse proxy"
            ),
        ));
    }
    let lockfile = super::trusted::enforced(
        &args.lockfile,
        &args.check,
        args.allow_unsigned,
        ("gateway", "what every agent may use"),
    )?;
    let upstreams = upstreams(&lockfile);
    let limits = Limits {
        max_sessions: args.max_sessions.max(1),
        idle_timeout: Duration::from_secs_f64(args.idle_timeout),
        ..Limits::default()
    };
    let lockfile = Arc::new(lockfile);
    let options = session_options(args, &lockfile, &limits)?;
    let mut gateway = Gateway::new(lockfile, agents, upstreams, limits, options);
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
    let names: Vec<String> = gateway
        .upstreams
        .iter()
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
    let gateway = Arc::new(gateway);
    gateway.checkpoint(crate::core::audit::Mark::Open);
    crate::gateway::serve(listener, Arc::clone(&gateway), stop_signal()).await;
    gateway.checkpoint(crate::core::audit::Mark::Close);
    crate::edge::log::info("gateway", "stopped", &[]);
    Ok(Output::text(None, String::new()))
}
