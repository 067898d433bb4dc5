//! `mcplock proxy`: the checks before the server starts, then the session loop.

use super::enforcement;
use super::exit::{Code, fail};
use super::{CliError, Output, ProxyArgs};
use crate::core::enforce::{DENIED, Locked};
use crate::core::lockfile::Lockfile;
use crate::proxy::{Audit, End, Options};
use crate::session::Bounds;
use crate::transport::Endpoint;
use crate::transport::channel::Limits;
use crate::transport::process::ServerCommand;
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long the proxy waits for the host's first request to answer it with a refusal.
const REFUSAL_WAIT: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(2);
/// How long one request to a remote server may take through the proxy (a tool call can be
/// slow; the host has its own timeouts and may cancel sooner).
const REMOTE_REQUEST: Duration = Duration::from_secs(600);

pub async fn run(mut args: ProxyArgs) -> Result<Output, CliError> {
    // A revocation list given as a URL is mirrored and polled (`cli::published`).
    let key = args.check.key.clone();
    let published =
        enforcement::published_revocations(&mut args.guard, key.as_deref(), args.allow_unsigned)
            .await;
    match published {
        Ok(Some(mirror)) => {
            tokio::spawn(mirror.run(super::published::POLL));
        }
        Ok(None) => {}
        Err(error) => {
            refuse_first_request(&error).await;
            return Err(error);
        }
    }
    let outcome = match prepare(&args) {
        Ok((lockfile, name, endpoint, private)) => {
            serve(&args, &lockfile, &name, endpoint, private.as_ref()).await
        }
        Err(error) => {
            refuse_first_request(&error).await;
            Err(error)
        }
    };
    super::published::clean_up();
    outcome
}

/// Everything that must hold before the server may start (or be connected to): the lockfile
/// read strictly, its signature (or --allow-unsigned), the entry, and the argv (or the URL and
/// header names) exactly as locked.
/// What `prepare` hands the session: the lockfile, the server's name, what to start or reach,
/// and the private copy a locked script or program starts from.
type Prepared = (
    Lockfile,
    String,
    Endpoint,
    Option<crate::edge::artifact::run::Private>,
);

fn prepare(args: &ProxyArgs) -> Result<Prepared, CliError> {
    let endpoint = endpoint_of(args)?;
    let launch = endpoint.launch();
    let lockfile = super::trusted::enforced(
        &args.lockfile,
        &args.check,
        args.allow_unsigned,
        ("proxy", "what this server may offer"),
    )?;
    let name = locked_name(args, &lockfile, &launch)?;
    let entry = &lockfile.servers[&name];
    enforcement::check_artifact(entry, &launch, &name, "proxy")?;
    super::authorization::hold(entry, &endpoint);
    let private = enforcement::private_copy(entry, &endpoint, &launch)?;
    Ok((lockfile, name, endpoint, private))
}

/// The server to start (after `--`) or reach (`--url`).
fn endpoint_of(args: &ProxyArgs) -> Result<Endpoint, CliError> {
    match args.remote.endpoint()? {
        Some(remote) if args.server.is_empty() => Ok(Endpoint::Http(remote)),
        Some(_) => Err(fail(
            Code::Usage,
            "give the server either as --url or as a command after `--`, not both",
        )),
        None => {
            let (program, rest) = args.server.split_first().ok_or_else(|| {
                fail(
                    Code::Usage,
                    "no server given; put the locked command after `--`, or pass the locked --url",
                )
            })?;
            Ok(Endpoint::Stdio(ServerCommand {
                program: program.clone(),
                args: rest.to_vec(),
                env: Vec::new(),
                cwd: None,
            }))
        }
    }
}

/// The name of the locked server this launch is, held to its launch and its env names.
fn locked_name(
    args: &ProxyArgs,
    lockfile: &Lockfile,
    launch: &crate::core::launch::Launch,
) -> Result<String, CliError> {
    let name = args
        .name
        .clone()
        .or_else(|| super::entries::name_for(lockfile, launch))
        .filter(|n| lockfile.servers.contains_key(n))
        .ok_or_else(|| {
            let contexts = super::entries::contexts_of(lockfile, launch);
            let hint = if contexts.is_empty() || args.name.is_some() {
                "pass --name, or give the server exactly as locked; `mcplock hosts` shows what is locked".to_string()
            } else {
                format!(
                    "it is locked under the credential contexts {}: pass --context with the one whose credentials this proxy uses",
                    contexts.join(", ")
                )
            };
            fail(
                Code::ServerNotFound,
                format!(
                    "{} locks no server {} ({hint})",
                    args.lockfile.display(),
                    args.name
                        .as_deref()
                        .map(|n| format!("named {n:?}"))
                        .unwrap_or_else(|| format!("reached as {}", launch.describe_with_names()))
                ),
            )
        })?;
    let entry = &lockfile.servers[&name];
    // A command is held to its argv (the env it inherits is checked by name below); a URL to
    // the URL and the names of the headers it was locked with.
    // The lock records placeholders as written; the host passes them expanded (issue 26).
    if !super::entries::launch_accepts(&entry.launch, launch) {
        let shown = super::locked::hide_placeholder_values(&launch.describe(), &entry.launch);
        let target = match launch {
            crate::core::launch::Launch::Http { .. } => format!("--url {shown}"),
            _ => format!("-- {shown}"),
        };
        return Err(fail(
            Code::LaunchMismatch,
            format!(
                "refusing to start {}: the lock approved {}; to approve this launch instead: `mcplock lock --update --lockfile {} --name {name} {target}`, then re-sign",
                super::locked::hide_placeholder_values(
                    &launch.describe_with_names(),
                    &entry.launch
                ),
                entry.launch.describe_with_names(),
                args.lockfile.display()
            ),
        ));
    }
    if let Some(missing) = super::locked::missing_env_key(entry) {
        return Err(fail(
            Code::EnvMissing,
            format!(
                "the server was locked with the environment variable {missing}; it is not set: give it in the host's config (the entry's env) or export it where the proxy starts"
            ),
        ));
    }
    Ok(name)
}

/// The host's side of the session. A host starts us with pipes: those are read and written
/// directly by the runtime, without the blocking-thread hop tokio's stdio takes per read and
/// per write (most of the proxy's added latency). Anything else (a terminal, a file) goes
/// through tokio's stdio.
fn host_io() -> (
    Box<dyn tokio::io::AsyncRead + Unpin>,
    Box<dyn tokio::io::AsyncWrite + Unpin>,
) {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;
    let input: Box<dyn tokio::io::AsyncRead + Unpin> = match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd)
    {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    };
    let output: Box<dyn tokio::io::AsyncWrite + Unpin> = match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd)
    {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    };
    (input, output)
}

/// The host is waiting for an answer: its first request gets the refusal as a JSON-RPC error.
async fn refuse_first_request(error: &CliError) {
    let mut reader = crate::transport::channel::MessageReader::new(
        tokio::io::stdin(),
        Limits {
            max_message_bytes: 1 << 20,
            strict_stdout: true,
        },
    );
    if let Ok(Ok(message)) = tokio::time::timeout(REFUSAL_WAIT, reader.next()).await
        && let Some(id) = message.value.get("id").filter(|id| !id.is_null())
    {
        // The failure's stable code (docs/exit-codes.md) beside the message, for hosts that log it.
        let answer = json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": DENIED,
            "message": format!("mcplock proxy refused to start the server: {}", error.headline),
            "data": {"code": error.code.as_str()},
        }});
        let mut out = tokio::io::stdout();
        let _ = out.write_all(format!("{answer}\n").as_bytes()).await;
        let _ = out.flush().await;
    }
}

async fn serve(
    args: &ProxyArgs,
    lockfile: &Lockfile,
    name: &str,
    endpoint: Endpoint,
    private: Option<&crate::edge::artifact::run::Private>,
) -> Result<Output, CliError> {
    let entry = &lockfile.servers[name];
    let audit = enforcement::open_audit(&args.guard)?.map(Audit::alone);
    let locked = Locked::new(entry);
    if args.on_drift == super::OnDriftArg::Warn {
        eprintln!(
            "mcplock: proxy: WARNING: --on-drift warn lets through what the lock refuses (audited as notes): a shadow mode, not enforcement"
        );
    }
    for (tool, why) in locked.unusable_schemas() {
        eprintln!(
            "mcplock: proxy: warning: every call of tool {tool:?} will be denied: its locked inputSchema cannot check arguments ({why})"
        );
    }
    let options = session_options(args, lockfile, name)?;
    let endpoint = match endpoint {
        Endpoint::Stdio(mut cmd) => {
            // The locked argv, exactly (prepare() held the given one to it), in the directory
            // it was locked in.
            cmd.cwd = entry.launch.cwd().map(std::path::PathBuf::from);
            enforcement::started_from(Endpoint::Stdio(cmd), private)
        }
        remote => remote,
    };
    serve_endpoint(&endpoint, private, &locked, &options, audit).await
}

/// The session's options, from the flags.
fn session_options(args: &ProxyArgs, lockfile: &Lockfile, name: &str) -> Result<Options, CliError> {
    let mut options = Options::new(
        name,
        Limits {
            max_message_bytes: args.max_message_size,
            strict_stdout: false,
        },
    );
    options.allow_server_requests = args.allow_server_requests;
    options.allow_methods = args.allow_methods.iter().cloned().collect();
    options.on_drift = args.on_drift.into();
    options.on_response = args.on_response_finding.into();
    let key = args.check.key.as_deref();
    options.revocations = enforcement::revocations(&args.guard, key, args.allow_unsigned, "proxy")?
        .map(|watch| watch.poller());
    // The rules' input holds only this server: nothing else is judged here.
    let only_this = std::sync::Arc::new(Lockfile {
        servers: lockfile
            .servers
            .iter()
            .filter(|(n, _)| n.as_str() == name)
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect(),
        approvals: Vec::new(),
        registry: Default::default(),
    });
    let store = enforcement::limit_store(&args.guard)?;
    options.call_policy = enforcement::call_judges(&args.guard, only_this, "proxy", &store)?
        .map(|judges| judges.for_session(name, None));
    options.review = Some(review_command(args, name));
    Ok(options)
}

/// The command that shows what a server changed since its lock: the locked server relaunched
/// and compared, after the lockfile's signature is checked with the proxy's own key.
fn review_command(args: &ProxyArgs, name: &str) -> String {
    let mut argv = vec!["mcplock".to_string(), "diff".to_string()];
    let path = |p: &std::path::Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    argv.extend(["--lockfile".to_string(), path(&args.lockfile)]);
    if let Some(key) = &args.check.key {
        argv.extend(["--key".to_string(), path(key)]);
    }
    argv.extend(["--name".to_string(), name.to_string()]);
    ServerCommand {
        program: argv.remove(0),
        args: argv,
        env: Vec::new(),
        cwd: None,
    }
    .display()
}

/// Starts the locked command (or reaches the locked URL) and runs the session until either
/// side ends it; the server is then stopped, and what is known of it joins an error.
async fn serve_endpoint(
    endpoint: &Endpoint,
    private: Option<&crate::edge::artifact::run::Private>,
    locked: &Locked<'_>,
    options: &Options,
    audit: Option<Audit<std::fs::File>>,
) -> Result<Output, CliError> {
    let (host_in, host_out) = host_io();
    let bounds = Bounds {
        limits: options.limits,
        request_timeout: REMOTE_REQUEST,
        tee_stderr: true,
    };
    let (server, channel) = crate::session::open(endpoint, &bounds)?;
    // The interpreter is run where it is installed: what the started process runs is held to
    // the lock before anything is relayed.
    if let Some(private) = private
        && let Err(why) = private.check_started(server.pid())
    {
        drop(channel);
        server.close(GRACE).await;
        return Err(fail(
            Code::ArtifactChanged,
            format!("refusing to serve {}: {why}", endpoint.display()),
        ));
    }
    let (end, closed) =
        crate::proxy::serve_opened((host_in, host_out), server, channel, locked, options, audit)
            .await;
    ended(end, |error| {
        if let Endpoint::Http(remote) = endpoint {
            error.details.push(format!("server: {}", remote.url));
        }
        error.details.extend(closed.details());
    })
}

/// The exit for how the session ended; `explain` adds what is known of a server that went away.
fn ended(
    end: std::io::Result<End>,
    explain: impl FnOnce(&mut CliError),
) -> Result<Output, CliError> {
    match end {
        Ok(End::HostClosed) => Ok(Output::text(None, String::new())),
        Ok(End::ServerClosed(why)) => {
            let mut error = fail(Code::ServerFailed, format!("proxy: {why}"));
            explain(&mut error);
            Err(error)
        }
        Err(e) => Err(fail(Code::ServerFailed, format!("proxy: {e}"))),
    }
}
