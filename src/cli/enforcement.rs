//! What a proxy and a gateway hold every session to besides the lock, built once from the
//! flags both share (`GuardArgs`): the audit log, the revocation list, the call rules, and the
//! check that a locked server's code is what was locked. `who` ("proxy", "gateway") names the
//! command in what is said on stderr.

use super::exit::{Code, fail};
use super::{CliError, GuardArgs};
use crate::core::artifact::Comparison;
use crate::core::audit::{Chain, verify};
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::policy::{self, CallVerdict, Target};
use crate::proxy::{AuditLog, Poll};
use crate::transport::Endpoint;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `--audit`: the log opened, locked before its head is read (a second writer on the same log
/// is refused), and verified before anything is appended.
pub fn open_audit(guard: &GuardArgs) -> Result<Option<AuditLog<std::fs::File>>, CliError> {
    let Some(path) = &guard.audit else {
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
    Ok(Some(AuditLog {
        sink: opened.file,
        chain: if guard.audit_payloads {
            chain.with_payloads()
        } else {
            chain
        },
        clock: crate::edge::clock::now,
        seal: audit_seal(guard)?,
    }))
}

/// The key `--audit-key` names, to sign the log's checkpoints with.
fn audit_seal(guard: &GuardArgs) -> Result<Option<crate::proxy::Seal>, CliError> {
    let Some(path) = &guard.audit_key else {
        return Ok(None);
    };
    let key = super::keys::load_private_key(path)?;
    let key_id = key.public().key_id()?;
    Ok(Some(crate::proxy::Seal {
        key_id,
        sign: Box::new(move |bytes| key.sign(bytes)),
    }))
}

/// The code behind a locked server's launch: what it runs here and now must be what was
/// locked. A launch whose code the lock does not pin is said on stderr and allowed.
pub fn check_artifact(
    entry: &ServerLock,
    launch: &crate::core::launch::Launch,
    name: &str,
    who: &str,
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
            let text = format!(
                "warning: what {} runs is not pinned by the lock ({}); re-lock it to record its artifact",
                crate::core::text::escape(name),
                checked.describe(name)
            );
            crate::edge::log::warn(who, &text, &[]);
            Ok(())
        }
    }
}

/// A locked script or program is started from a private copy of the bytes its check read (no
/// window between the check and the start); anything else starts as it is.
pub fn private_copy(
    entry: &ServerLock,
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

/// The command started from the private copy of its checked code, when there is one: what
/// the check read, from where no one else can change it.
pub fn started_from(
    endpoint: Endpoint,
    private: Option<&crate::edge::artifact::run::Private>,
) -> Endpoint {
    match (endpoint, private) {
        (Endpoint::Stdio(mut cmd), Some(private)) => {
            cmd.program = private.program.clone();
            cmd.args = private.args.clone();
            Endpoint::Stdio(cmd)
        }
        (endpoint, _) => endpoint,
    }
}

/// How long the call rules may take for one call; past it the call is denied.
const CALL_RULES_TIME: Duration = Duration::from_millis(250);

/// Threads judging calls at once: a slow rule holds one, the other calls go on.
const CALL_JUDGES: usize = 4;

/// One call to judge: (server, agent, tool, arguments), and where the verdict goes.
type CallJob = (
    (String, Option<String>, String, serde_json::Value),
    tokio::sync::oneshot::Sender<CallVerdict>,
);

/// The `on: call` rules of `--policy` and `--preset`, judged off the async loop by
/// [`CALL_JUDGES`] worker threads (each with a stack sized for the deepest expression
/// accepted, and its own compiled rules and input), each call bounded in time: a call whose
/// judgment does not come back in time is denied, and a slow rule delays only its own call.
/// One set of judges serves every session of a process.
pub struct CallJobs(Mutex<std::sync::mpsc::Sender<CallJob>>);

/// What every call is judged by besides the lock: the call rules (off the async loop) and then
/// the limits (`crate::limiter`), in that order, so a call the rules deny spends no budget.
pub struct CallJudges {
    /// None when no `on: call` rule was given.
    rules: Option<CallJobs>,
    /// None when the policies have no limits.
    limiter: Option<crate::limiter::Limiter>,
    tiers: policy::Tiers,
}

/// The limits' store of this process: Redis with `--state`, else memory. Made once, kept across
/// reloads.
pub fn limit_store(guard: &GuardArgs) -> Result<crate::limiter::Store, CliError> {
    let Some(url) = &guard.state else {
        return Ok(crate::limiter::Store::memory());
    };
    let password = std::env::var("MCPLOCK_STATE_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    if let Some(password) = &password {
        crate::edge::secrets::remember(password);
    }
    let roots = match &guard.state_cacert {
        Some(path) => Some(super::exit::read_input(path, 1 << 20, "CA certificates")?),
        None => None,
    };
    crate::limiter::Store::redis(url, password.as_deref(), roots)
        .map_err(|e| fail(Code::Usage, e.to_string()))
}

/// The judges for the call rules and limits of the policies given, over `lockfile` (the
/// servers the process serves), counting in `store`; none when no policy has either.
pub fn call_judges(
    guard: &GuardArgs,
    lockfile: Arc<Lockfile>,
    who: &str,
    store: &crate::limiter::Store,
) -> Result<Option<Arc<CallJudges>>, CliError> {
    if guard.policies.is_empty() && guard.presets.is_empty() {
        if guard.state.is_some() {
            let text = "warning: --state is given but no policy is: nothing is limited";
            crate::edge::log::warn(who, text, &[]);
        }
        return Ok(None);
    }
    let policies = super::policy::load_named(&guard.policies, &guard.presets)?;
    let tiers = super::policy::merged_tiers(&policies)?;
    let limits: Vec<crate::core::limits::Limit> = policies
        .iter()
        .flat_map(|p| p.limits.iter().cloned())
        .collect();
    if limits.len() > crate::core::limits::MAX_LIMITS {
        let most = crate::core::limits::MAX_LIMITS;
        return Err(fail(
            Code::Usage,
            format!("the policies given hold more than {most} limits"),
        ));
    }
    let rules: Vec<policy::Rule> = policies
        .into_iter()
        .flat_map(|p| p.rules)
        .filter(|r| r.target == Target::Call)
        .collect();
    if rules.is_empty() && limits.is_empty() {
        let text = "warning: the policies given have no `on: call` rules and no limits; no call is judged by them";
        crate::edge::log::warn(who, text, &[]);
        return Ok(None);
    }
    let fail_open = fail_open_tiers(&guard.limits_fail_open)?;
    let limiter = (!limits.is_empty()).then(|| {
        let limits = crate::core::limits::Limits::new(limits);
        crate::limiter::Limiter::new(limits, store.clone(), fail_open)
    });
    let rules = if rules.is_empty() {
        None
    } else {
        Some(rule_judges(rules, lockfile, &tiers)?)
    };
    Ok(Some(Arc::new(CallJudges {
        rules,
        limiter,
        tiers,
    })))
}

/// `--limits-fail-open` as tiers.
fn fail_open_tiers(names: &[String]) -> Result<Vec<policy::Tier>, CliError> {
    names
        .iter()
        .map(|name| {
            policy::Tier::ALL
                .into_iter()
                .find(|t| t.as_str() == name)
                .ok_or_else(|| {
                    let tiers = policy::Tier::ALL.map(policy::Tier::as_str).join(", ");
                    fail(
                        Code::Usage,
                        format!("--limits-fail-open {name}: not a tier; the tiers are {tiers}"),
                    )
                })
        })
        .collect()
}

/// [`CALL_JUDGES`] threads judging calls by `rules`.
fn rule_judges(
    rules: Vec<policy::Rule>,
    lockfile: Arc<Lockfile>,
    tiers: &policy::Tiers,
) -> Result<CallJobs, CliError> {
    let (jobs, inbox) = std::sync::mpsc::channel::<CallJob>();
    let inbox = Arc::new(Mutex::new(inbox));
    for _ in 0..CALL_JUDGES {
        let compiled = super::policy::compile_bounded(rules.clone())?;
        let (lockfile, tiers, inbox) = (lockfile.clone(), tiers.clone(), inbox.clone());
        std::thread::Builder::new()
            .name("call-policy".into())
            .stack_size(policy::EVAL_STACK_BYTES)
            .spawn(move || {
                let input = policy::Input::with(&lockfile, &Default::default(), &tiers);
                loop {
                    // The lock is held only to take the next job, never while judging.
                    let job = inbox.lock().map(|rx| rx.recv());
                    let Ok(Ok(((server, agent, tool, arguments), reply))) = job else {
                        return;
                    };
                    let deadline = Instant::now() + CALL_RULES_TIME;
                    let call = policy::Call {
                        agent: agent.as_deref(),
                        ..policy::Call::new(&server, &tool, &arguments)
                    };
                    let verdict = policy::evaluate_call(&compiled, &input, call, &|| {
                        Instant::now() < deadline
                    });
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
    Ok(CallJobs(Mutex::new(jobs)))
}

impl CallJudges {
    /// The call policy of one session: calls of `server`'s tools by `agent`, judged by the
    /// rules, then counted by the limits.
    pub fn for_session(
        self: &Arc<Self>,
        server: &str,
        agent: Option<&str>,
    ) -> Box<crate::proxy::CallPolicy> {
        let judges = Arc::clone(self);
        let (server, agent) = (server.to_string(), agent.map(str::to_string));
        Box::new(
            move |tool: &str, arguments: &serde_json::Value| -> crate::proxy::Judgement {
                let call = (
                    server.clone(),
                    agent.clone(),
                    tool.to_string(),
                    arguments.clone(),
                );
                let judging = judges.rules.as_ref().map(|jobs| jobs.judge(call));
                let judges = Arc::clone(&judges);
                let (server, agent, tool) = (server.clone(), agent.clone(), tool.to_string());
                Box::pin(async move {
                    let verdict = match judging {
                        Some(judging) => judging.await,
                        None => CallVerdict::Allow,
                    };
                    let limiter = judges.limiter.as_ref();
                    let (Some(limiter), false) =
                        (limiter, matches!(verdict, CallVerdict::Deny(..)))
                    else {
                        return crate::proxy::Judged {
                            verdict,
                            permit: None,
                        };
                    };
                    let subject = crate::core::limits::Subject {
                        agent: agent.as_deref(),
                        server: &server,
                        tool: &tool,
                        tier: judges.tiers.of_tool(&server, &tool),
                    };
                    match limiter.admit(&subject).await {
                        Ok(permit) => crate::proxy::Judged { verdict, permit },
                        Err(refusal) => crate::proxy::Judged {
                            verdict: CallVerdict::Limited(refusal),
                            permit: None,
                        },
                    }
                })
            },
        )
    }
}

impl CallJobs {
    /// Hands `call` to a judge thread; its verdict, or a denial if none comes in time.
    fn judge(
        &self,
        call: (String, Option<String>, String, serde_json::Value),
    ) -> impl std::future::Future<Output = CallVerdict> + Send + 'static {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = (self.0.lock())
            .map(|j| j.send((call, reply)).is_ok())
            .unwrap_or(false);
        async move {
            if !sent {
                return CallVerdict::Deny(
                    "(policy)".into(),
                    "the call rules cannot be evaluated".into(),
                );
            }
            match tokio::time::timeout(CALL_RULES_TIME * 2, answer).await {
                Ok(Ok(verdict)) => verdict,
                _ => CallVerdict::Deny(
                    "(policy)".into(),
                    "the call rules did not answer in time".into(),
                ),
            }
        }
    }
}

/// How a revocation list is trusted: the key it is signed with, whether it must be signed, and
/// where the last accepted list is remembered across restarts.
struct ListTrust {
    key: Option<std::path::PathBuf>,
    signed: bool,
    remembered: Option<super::revocations::Remembered>,
}

impl ListTrust {
    fn of(
        guard: &GuardArgs,
        key: Option<&std::path::Path>,
        allow_unsigned: bool,
        list: &std::path::Path,
    ) -> ListTrust {
        let directory = guard.state_dir.clone().or_else(|| {
            guard.audit.as_ref().map(|audit| {
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
            key: guard
                .revocations_key
                .clone()
                .or_else(|| key.map(std::path::Path::to_path_buf)),
            signed: !allow_unsigned,
            remembered: directory.map(|d| super::revocations::Remembered::new(&d, list)),
        }
    }
}

/// What identifies one version of a file cheaply: inode, change time (which no one can set
/// back) and size; `None` when it is not there.
pub fn stamp(path: &std::path::Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.ctime(), m.ctime_nsec(), m.len()))
}

pub type Stamp = Option<(u64, i64, i64, u64)>;

/// What the revocation list holds now, read again when its file changes (or on SIGHUP), shared
/// by every session; each session polls it through [`RevocationWatch::poller`] and hears of
/// each change once. A list that does not hold (unsigned where signatures are checked, wrongly
/// signed, unreadable) denies everything; a list older than the one accepted last is refused
/// and the last accepted stays in force, as it does when the file is gone.
pub struct RevocationWatch {
    path: std::path::PathBuf,
    trust: ListTrust,
    state: Mutex<Watched>,
    hangup: Arc<AtomicBool>,
    who: String,
}

struct Watched {
    last: Option<Stamp>,
    accepted: Option<crate::core::revocation::Revocations>,
    /// Grows with every change; what a session saw last is compared with it.
    generation: u64,
    now: Poll,
}

/// `--revocations https://…`: the list published there, mirrored (`cli::published`): fetched
/// and verified once now, then `guard.revocations` names the mirror, and the returned mirror is
/// to be polled (`Mirror::run`). `None` when the list is a file.
pub async fn published_revocations(
    guard: &mut GuardArgs,
    key: Option<&std::path::Path>,
    allow_unsigned: bool,
) -> Result<Option<super::published::Mirror>, CliError> {
    let Some(url) = guard
        .revocations
        .clone()
        .filter(|p| super::published::is_url(p))
    else {
        return Ok(None);
    };
    let url = url.to_string_lossy().into_owned();
    let dir = super::published::mirror_dir(guard.state_dir.as_deref())?;
    let path = dir.join("revocations.json");
    let trust = ListTrust::of(guard, key, allow_unsigned, &path);
    let mirrored = path.clone();
    let verify = move |staged: &std::path::Path| -> Result<(), String> {
        let list = super::revocations::load(staged, trust.key.as_deref(), trust.signed)
            .map_err(|e| e.headline)?;
        let held = super::revocations::load(&mirrored, trust.key.as_deref(), trust.signed);
        if let Ok(held) = held {
            list.supersedes(&held).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    let cap = super::revocations::MAX_LIST_BYTES as usize;
    let mut mirror =
        super::published::Mirror::new("revocations", &url, path, cap, Box::new(verify))?;
    mirror.first().await?;
    guard.revocations = Some(mirror.path().to_path_buf());
    Ok(Some(mirror))
}

/// `--revocations`: the list watched, after the list remembered from an earlier run is read.
pub fn revocations(
    guard: &GuardArgs,
    key: Option<&std::path::Path>,
    allow_unsigned: bool,
    who: &str,
) -> Result<Option<Arc<RevocationWatch>>, CliError> {
    let Some(path) = guard.revocations.clone() else {
        return Ok(None);
    };
    let trust = ListTrust::of(guard, key, allow_unsigned, &path);
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
    let hangup = Arc::new(AtomicBool::new(false));
    // SIGHUP: read the list again at the next message whatever its stamp says.
    if let Ok(mut signals) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    {
        let hangup = Arc::clone(&hangup);
        tokio::spawn(async move {
            while signals.recv().await.is_some() {
                hangup.store(true, Ordering::SeqCst);
            }
        });
    }
    Ok(Some(Arc::new(RevocationWatch {
        path,
        trust,
        state: Mutex::new(Watched {
            last: None,
            accepted: remembered,
            generation: 0,
            now: Poll::Unchanged,
        }),
        hangup,
        who: who.to_string(),
    })))
}

impl RevocationWatch {
    /// One session's poll: `Unchanged` until the list changes after the session last heard.
    pub fn poller(self: &Arc<Self>) -> Box<crate::proxy::RevocationPoll> {
        let watch = Arc::clone(self);
        let seen = AtomicU64::new(0);
        Box::new(move || {
            let (generation, now) = watch.look();
            if seen.swap(generation, Ordering::SeqCst) == generation {
                Poll::Unchanged
            } else {
                now
            }
        })
    }

    /// The list's generation and what it is now, read again when its file changed.
    fn look(&self) -> (u64, Poll) {
        let now = stamp(&self.path);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let forced = self.hangup.swap(false, Ordering::SeqCst);
        if state.last != Some(now) || forced {
            state.last = Some(now);
            state.now = self.read(now, &mut state.accepted);
            state.generation += 1;
        }
        (state.generation, state.now.clone())
    }

    fn read(
        &self,
        now: Stamp,
        accepted: &mut Option<crate::core::revocation::Revocations>,
    ) -> Poll {
        let path = &self.path;
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
        let trust = &self.trust;
        let list = match super::revocations::load(path, trust.key.as_deref(), trust.signed) {
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
            && let Err(e) = r.write(&list, path)
        {
            let text = format!(
                "warning: cannot remember the revocation list accepted ({}); a restart will not know it",
                e.headline
            );
            crate::edge::log::warn(&self.who, &text, &[]);
        }
        *accepted = Some(list.clone());
        Poll::Changed(list)
    }
}
