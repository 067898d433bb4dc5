//! `mcplock proxy`: the checks before the server starts, then the session loop.

use super::exit::{Code, fail};
use super::{CliError, Output, ProxyArgs};
use crate::core::artifact::Comparison;
use crate::core::audit::{Chain, verify};
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

pub async fn run(args: ProxyArgs) -> Result<Output, CliError> {
    match prepare(&args) {
        Ok((lockfile, name, endpoint, private)) => {
            serve(&args, &lockfile, &name, endpoint, private.as_ref()).await
        }
        Err(error) => {
            refuse_first_request(&error).await;
            Err(error)
        }
    }
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
    check_artifact(entry, &launch, &name)?;
    let private = private_copy(entry, &endpoint, &launch)?;
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
            fail(
                Code::ServerNotFound,
                format!(
                    "{} locks no server {} (pass --name, or give the server exactly as locked; `mcplock hosts` shows what is locked)",
                    args.lockfile.display(),
                    args.name
                        .as_deref()
                        .map(|n| format!("named {n:?}"))
                        .unwrap_or_else(|| format!("reached as {}", launch.describe()))
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

/// The code behind the argv: what it runs here and now must be what was locked.
fn check_artifact(
    entry: &crate::core::lockfile::ServerLock,
    launch: &crate::core::launch::Launch,
    name: &str,
) -> Result<(), CliError> {
    let Some(checked) = super::artifacts::check(entry.artifact.as_ref(), launch) else {
        return Ok(());
    };
    match checked.comparison {
        Comparison::Same => Ok(()),
        Comparison::Changed => {
            let mut error = fail(
                Code::ArtifactChanged,
                format!(
                    "refusing to start {}: it would run another artifact than the lock recorded ({}); see what changed with `mcplock verify --artifacts`",
                    launch.describe_with_names(),
                    checked.describe(name)
                ),
            );
            if let Some(hint) = checked.path_hint() {
                error.headline = format!("{}; {hint}", error.headline);
            }
            Err(error)
        }
        Comparison::NotPinned | Comparison::ContentNotPinned => {
            eprintln!(
                "mcplock: proxy: warning: what {} runs is not pinned by the lock ({}); re-lock it to record its artifact",
                crate::core::text::escape(name),
                checked.describe(name)
            );
            Ok(())
        }
    }
}

/// A locked script or program is started from a private copy of the bytes its check read (no
/// window between the check and the start); anything else starts as it is.
fn private_copy(
    entry: &crate::core::lockfile::ServerLock,
    endpoint: &Endpoint,
    launch: &crate::core::launch::Launch,
) -> Result<Option<crate::edge::artifact::run::Private>, CliError> {
    let (Some(crate::core::artifact::Artifact::Resolved(locked)), Endpoint::Stdio(cmd)) =
        (&entry.artifact, endpoint)
    else {
        return Ok(None);
    };
    let cwd = match entry.launch.cwd() {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::current_dir()
            .map_err(|e| fail(Code::ServerFailed, format!("no working directory: {e}")))?,
    };
    crate::edge::artifact::run::private_copy(&cmd.program, &cmd.args, &cwd, locked).map_err(|why| {
        fail(
            Code::ArtifactChanged,
            format!("refusing to start {}: {why}", launch.describe_with_names()),
        )
    })
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
    let audit = open_audit(args)?;
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
            // What the check read, from where no one else can change it.
            if let Some(private) = private {
                cmd.program = private.program.clone();
                cmd.args = private.args.clone();
            }
            Endpoint::Stdio(cmd)
        }
        remote => remote,
    };
    serve_endpoint(&endpoint, private, &locked, &options, audit).await
}

/// `--audit`: the log opened for this session, locked before its head is read (a second proxy
/// on the same log is refused), and verified before anything is appended.
fn open_audit(args: &ProxyArgs) -> Result<Option<Audit<std::fs::File>>, CliError> {
    let Some(path) = &args.audit else {
        return Ok(None);
    };
    let opened = crate::edge::audit_log::open_exclusive(path).map_err(|e| {
        let code = match e {
            crate::edge::audit_log::OpenError::Busy { .. } => Code::Usage,
            _ => Code::WriteFailed,
        };
        fail(code, e.to_string())
    })?;
    let verified = verify(&opened.existing).map_err(|e| {
        fail(
            Code::AuditLogBroken,
            format!(
                "{} does not hold ({e}); it is not appended to (check it with `mcplock audit verify`, then move it away to start a new log)",
                path.display()
            ),
        )
    })?;
    let chain = Chain::after(&verified);
    Ok(Some(Audit {
        sink: opened.file,
        chain: if args.audit_payloads {
            chain.with_payloads()
        } else {
            chain
        },
        clock: crate::edge::clock::now,
        seal: audit_seal(args)?,
    }))
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
    options.revocations = match &args.revocations {
        Some(path) => Some(revocation_poll(path.clone(), ListTrust::of(args, path))?),
        None => None,
    };
    options.call_policy = call_policy(args, lockfile, name)?;
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
    if let Some(private) = private {
        let checked = match server.pid() {
            Some(pid) => private.check_started(pid),
            None => Err("the server exited before its interpreter could be checked".into()),
        };
        if let Err(why) = checked {
            drop(channel);
            server.close(GRACE).await;
            return Err(fail(
                Code::ArtifactChanged,
                format!("refusing to serve {}: {why}", endpoint.display()),
            ));
        }
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

/// The key `--audit-key` names, to sign the log's checkpoints with.
fn audit_seal(args: &ProxyArgs) -> Result<Option<crate::proxy::Seal>, CliError> {
    let Some(path) = &args.audit_key else {
        return Ok(None);
    };
    let key = super::keys::load_private_key(path)?;
    let key_id = key.public().key_id()?;
    Ok(Some(crate::proxy::Seal {
        key_id,
        sign: Box::new(move |bytes| key.sign(bytes)),
    }))
}

/// How long the call rules may take for one call; past it the call is denied.
const CALL_RULES_TIME: Duration = Duration::from_millis(250);

/// Threads judging calls at once: a slow rule holds one, the other calls go on.
const CALL_JUDGES: usize = 4;

/// One call to judge: the tool, its arguments, and where the verdict goes.
type CallJob = (
    String,
    serde_json::Value,
    tokio::sync::oneshot::Sender<crate::core::policy::CallVerdict>,
);

/// The `on: call` rules of `--policy` and `--preset`, judged off the async loop by
/// [`CALL_JUDGES`] worker threads (each with a stack sized for the deepest expression
/// accepted, and its own compiled rules and input), each call bounded in time: a call whose
/// judgment does not come back in time is denied, and a slow rule delays only its own call.
fn call_policy(
    args: &ProxyArgs,
    lockfile: &Lockfile,
    name: &str,
) -> Result<Option<Box<crate::proxy::CallPolicy>>, CliError> {
    use crate::core::policy::{self, CallVerdict, Target};
    if args.policies.is_empty() && args.presets.is_empty() {
        return Ok(None);
    }
    let policies = super::policy::load_named(&args.policies, &args.presets)?;
    let tiers = super::policy::merged_tiers(&policies)?;
    let rules: Vec<policy::Rule> = policies
        .into_iter()
        .flat_map(|p| p.rules)
        .filter(|r| r.target == Target::Call)
        .collect();
    if rules.is_empty() {
        eprintln!(
            "mcplock: proxy: warning: the policies given have no `on: call` rules; no call is judged by them"
        );
        return Ok(None);
    }
    let only_this = std::sync::Arc::new(Lockfile {
        servers: lockfile
            .servers
            .iter()
            .filter(|(n, _)| n.as_str() == name)
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect(),
        approvals: Vec::new(),
    });
    let (jobs, inbox) = std::sync::mpsc::channel::<CallJob>();
    let inbox = std::sync::Arc::new(std::sync::Mutex::new(inbox));
    for _ in 0..CALL_JUDGES {
        let compiled = super::policy::compile_bounded(rules.clone())?;
        let (only_this, tiers, inbox) = (only_this.clone(), tiers.clone(), inbox.clone());
        let server = name.to_string();
        std::thread::Builder::new()
            .name("call-policy".into())
            .stack_size(policy::EVAL_STACK_BYTES)
            .spawn(move || {
                let input = policy::Input::with(&only_this, &Default::default(), &tiers);
                loop {
                    // The lock is held only to take the next job, never while judging.
                    let job = inbox.lock().map(|rx| rx.recv());
                    let Ok(Ok((tool, arguments, reply))) = job else {
                        return;
                    };
                    let deadline = std::time::Instant::now() + CALL_RULES_TIME;
                    let verdict = policy::evaluate_call(
                        &compiled,
                        &input,
                        &server,
                        &tool,
                        &arguments,
                        &|| std::time::Instant::now() < deadline,
                    );
                    let _ = reply.send(verdict);
                }
            })
            .map_err(|e| {
                fail(
                    Code::Internal,
                    format!("cannot start a call-policy thread: {e}"),
                )
            })?;
    }
    let jobs = std::sync::Mutex::new(jobs);
    let refused = |why: &str| -> crate::proxy::Judgement {
        Box::pin(std::future::ready(CallVerdict::Deny(
            "(policy)".into(),
            why.into(),
        )))
    };
    Ok(Some(Box::new(
        move |tool: &str, arguments: &serde_json::Value| -> crate::proxy::Judgement {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let sent = jobs
                .lock()
                .map(|j| j.send((tool.to_string(), arguments.clone(), reply)).is_ok())
                .unwrap_or(false);
            if !sent {
                return refused("the call rules cannot be evaluated");
            }
            Box::pin(async move {
                match tokio::time::timeout(CALL_RULES_TIME * 2, answer).await {
                    Ok(Ok(verdict)) => verdict,
                    _ => CallVerdict::Deny(
                        "(policy)".into(),
                        "the call rules did not answer in time".into(),
                    ),
                }
            })
        },
    )))
}

/// How the proxy trusts its revocation list: the key it is signed with, whether it must be
/// signed, and where the last accepted list is remembered across restarts.
struct ListTrust {
    key: Option<std::path::PathBuf>,
    signed: bool,
    remembered: Option<super::revocations::Remembered>,
}

impl ListTrust {
    fn of(args: &ProxyArgs, list: &std::path::Path) -> ListTrust {
        let directory = args.state_dir.clone().or_else(|| {
            args.audit.as_ref().map(|audit| {
                audit
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(
                        || std::path::PathBuf::from("."),
                        std::path::Path::to_path_buf,
                    )
            })
        });
        ListTrust {
            key: args
                .revocations_key
                .clone()
                .or_else(|| args.check.key.clone()),
            signed: !args.allow_unsigned,
            remembered: directory.map(|d| super::revocations::Remembered::new(&d, list)),
        }
    }
}

/// What identifies one version of a file cheaply: inode, change time (which no one can set
/// back) and size.
fn stamp(path: &std::path::Path) -> Option<(u64, i64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.ctime(), m.ctime_nsec(), m.len()))
}

/// Looks at the revocation list at `path` (a `stat`); reads it again when it changed. What
/// it decides: a list that does not hold (unsigned where signatures are checked, wrongly
/// signed, unreadable) denies everything; a list older than the one accepted last is refused
/// and the last accepted stays in force, as it does when the file is gone.
fn revocation_poll(
    path: std::path::PathBuf,
    trust: ListTrust,
) -> Result<Box<crate::proxy::RevocationPoll>, CliError> {
    use crate::proxy::Poll;
    let remembered = match &trust.remembered {
        Some(r) => r.read(trust.key.as_deref(), trust.signed).map_err(|e| {
            fail(
                e.code,
                format!(
                    "the revocation list remembered in {} cannot be trusted ({}); move it away only if you know why it changed",
                    r.path().display(),
                    e.headline
                ),
            )
        })?,
        None => None,
    };
    let state = std::sync::Mutex::new((None, remembered));
    // SIGHUP: read the list again at the next message whatever its stamp says.
    let hangup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Ok(mut signals) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    {
        let hangup = std::sync::Arc::clone(&hangup);
        tokio::spawn(async move {
            while signals.recv().await.is_some() {
                hangup.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
    Ok(Box::new(move || {
        let now = stamp(&path);
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, accepted) = &mut *state;
        let forced = hangup.swap(false, std::sync::atomic::Ordering::SeqCst);
        if *last == Some(now) && !forced {
            return Poll::Unchanged;
        }
        *last = Some(now);
        if now.is_none() {
            return match accepted {
                Some(list) => Poll::Kept {
                    why: format!(
                        "{} is gone; the list accepted last (sequence {}) stays in force",
                        path.display(),
                        list.sequence
                    ),
                    list: list.clone(),
                },
                // Not written yet (`mcplock revoke` creates it): nothing is revoked.
                None => Poll::Changed(Default::default()),
            };
        }
        let list = match super::revocations::load(&path, trust.key.as_deref(), trust.signed) {
            Ok(list) => list,
            Err(e) => return Poll::Unreadable(e.headline),
        };
        if let Some(Err(why)) = accepted.as_ref().map(|a| list.supersedes(a))
            && let Some(kept) = accepted
        {
            return Poll::Kept {
                why: format!(
                    "{} is refused: {why}; the list accepted last (sequence {}) stays in force",
                    path.display(),
                    kept.sequence
                ),
                list: kept.clone(),
            };
        }
        if let Some(r) = &trust.remembered
            && let Err(e) = r.write(&list, &path)
        {
            eprintln!(
                "mcplock: proxy: warning: cannot remember the revocation list accepted ({}); a restart will not know it",
                e.headline
            );
        }
        *accepted = Some(list.clone());
        Poll::Changed(list)
    }))
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
