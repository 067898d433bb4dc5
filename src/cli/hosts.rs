//! `mcplock hosts`, `lock --host` and the `--host` of verify, diff and policy: the servers
//! agent hosts already run, read from their config files, listed, locked (many at once, with a
//! bound) and checked; `lock --host --pin` pins their floating launches (hosts/pin.rs).

use super::exit::{Code, fail};
use super::files::load_lockfile;
use super::live::scan_endpoint;
use super::{CliError, HostArgs, HostsArgs, LockArgs, Output};
use crate::core::launch::Launch;
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::text::escape;
use crate::hosts::{ConfigFile, Found, Host, Unreadable, discover, recorded_launch, resolve};
use crate::transport::Endpoint;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

mod pin;

/// One server of a host's config, with what it resolved to.
struct Entry {
    found: Found,
    /// The endpoint, or why the entry cannot be used (disabled, a placeholder, a bad field).
    endpoint: Result<Endpoint, String>,
    /// The launch a lock records for it: placeholders as written, no value behind one.
    recorded: Result<Launch, String>,
}

impl Entry {
    fn name(&self) -> &str {
        &self.found.declared.key
    }
}

pub(super) fn selected(args: &HostArgs) -> Result<Vec<Host>, CliError> {
    let ids = || {
        Host::ALL
            .iter()
            .map(|h| h.id())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match args.host.as_deref() {
        None | Some("all") if args.config.is_some() => Err(fail(
            Code::HostConfigInvalid,
            format!(
                "--config needs the one host whose format the file is in: --host {}",
                ids()
            ),
        )),
        None | Some("all") => Ok(Host::ALL.to_vec()),
        Some(id) => Host::parse(id).map(|h| vec![h]).ok_or_else(|| {
            fail(
                Code::HostConfigInvalid,
                format!("unknown host {id:?}; one of: {}, or all", ids()),
            )
        }),
    }
}

/// Where the hosts keep their configs: the user's home (user scope) and the current directory
/// (project scope).
pub(super) fn home_and_project() -> Result<(PathBuf, PathBuf), CliError> {
    let home = std::env::var_os("HOME").map(PathBuf::from).ok_or_else(|| {
        fail(
            Code::HostConfigInvalid,
            "HOME is not set: cannot find the hosts' user configs",
        )
    })?;
    let project = std::env::current_dir().map_err(|e| {
        fail(
            Code::HostConfigInvalid,
            format!("cannot read the current directory: {e}"),
        )
    })?;
    Ok((home, project))
}

/// The servers of the selected hosts' configs, resolved against this environment.
fn gather(args: &HostArgs) -> Result<(Vec<Entry>, Vec<Unreadable>), CliError> {
    let hosts = selected(args)?;
    let (home, project) = home_and_project()?;
    if let Some(config) = &args.config
        && !config.is_file()
    {
        return Err(fail(
            Code::HostConfigInvalid,
            format!("--config {}: no such file", config.display()),
        ));
    }
    let (found, unreadable) = discover(&hosts, args.config.as_deref(), &home, &project);
    let entries = found
        .into_iter()
        .map(|found| entry_of(found, &project, &home))
        .collect();
    Ok((entries, unreadable))
}

/// A server found in a config, resolved against this environment (`project` the current
/// directory, `home` the user's).
fn entry_of(found: Found, project: &std::path::Path, home: &std::path::Path) -> Entry {
    let lookup = |k: &str| std::env::var(k).ok();
    // A per-project entry runs in its project; the others in this one.
    let workspace = found
        .declared
        .project
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| project.to_path_buf());
    let spec = found.declared.spec.clone();
    let recorded = spec
        .clone()
        .and_then(|spec| recorded_launch(&spec, &lookup, &workspace, home));
    let endpoint = if found.declared.disabled {
        Err("disabled in the host's config".to_string())
    } else {
        spec.and_then(|spec| resolve(&spec, &lookup, &workspace, home))
    };
    Entry {
        found,
        endpoint,
        recorded,
    }
}

/// The launch each usable server of the selected hosts' configs records, by its name there
/// (the first config that names it wins, in the order the hosts are read).
pub(super) fn launches(
    args: &HostArgs,
) -> Result<std::collections::BTreeMap<String, Launch>, CliError> {
    let (entries, _) = gather(args)?;
    let mut out = std::collections::BTreeMap::new();
    for entry in entries {
        if let (Ok(_), Ok(recorded)) = (&entry.endpoint, entry.recorded) {
            out.entry(entry.found.declared.key.clone())
                .or_insert(recorded);
        }
    }
    Ok(out)
}

/// Where an entry stands against the lockfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Unusable,
    /// Locked with this launch, run as written.
    Locked,
    /// Locked with this launch, and run through `mcplock proxy` (`wrap`).
    Wrapped,
    LaunchDiffers,
    NotLocked,
}

impl Status {
    /// The stable form in JSON.
    fn code(self) -> &'static str {
        match self {
            Status::Unusable => "unusable",
            Status::Locked => "locked",
            Status::Wrapped => "wrapped",
            Status::LaunchDiffers => "launch-differs",
            Status::NotLocked => "not-locked",
        }
    }

    fn human(self) -> &'static str {
        match self {
            Status::LaunchDiffers => "locked with another launch",
            Status::NotLocked => "not locked",
            other => other.code(),
        }
    }

    fn is_locked(self) -> bool {
        matches!(self, Status::Locked | Status::Wrapped)
    }
}

fn lock_status(entry: &Entry, lockfile: Option<&Lockfile>) -> Status {
    let (Ok(_), Ok(recorded)) = (&entry.endpoint, &entry.recorded) else {
        return Status::Unusable;
    };
    // Like with like: the lock's launch and the config's, both with placeholders as written
    // (a wrapped entry's is the server behind the proxy).
    match lockfile.and_then(|l| l.servers.get(entry.name())) {
        Some(locked) if locked.launch == *recorded && entry.found.declared.proxied.is_some() => {
            Status::Wrapped
        }
        Some(locked) if locked.launch == *recorded => Status::Locked,
        Some(_) => Status::LaunchDiffers,
        None => Status::NotLocked,
    }
}

pub(super) fn shown(file: &ConfigFile) -> String {
    escape(&file.path.display().to_string())
}

fn unreadable_lines(unreadable: &[Unreadable]) -> Vec<String> {
    unreadable
        .iter()
        .map(|u| {
            format!(
                "{} ({}): {}",
                shown(&u.file),
                u.file.host.id(),
                escape(&u.reason)
            )
        })
        .collect()
}

pub fn list(args: HostsArgs) -> Result<Output, CliError> {
    let (entries, unreadable) = gather(&args.hosts)?;
    let lockfile = load_lockfile(&args.lockfile)?;
    let json = list_json(&args, &entries, lockfile.as_ref(), &unreadable);
    let human = list_human(&args, &entries, lockfile.as_ref());
    if unreadable.is_empty() {
        return Ok(Output::report(None, human, json));
    }
    let mut error = fail(
        Code::HostConfigInvalid,
        format!("{} config file(s) could not be read", unreadable.len()),
    );
    error.details = unreadable_lines(&unreadable);
    // What could be read still reaches the reader, beside the error.
    if let Value::Object(listing) = json {
        error.extra = listing;
    }
    error.human_report = Some(human);
    Err(error)
}

/// `hosts` as data.
fn list_json(
    args: &HostsArgs,
    entries: &[Entry],
    lockfile: Option<&Lockfile>,
    unreadable: &[Unreadable],
) -> Value {
    let servers: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "host": e.found.file.host.id(),
                    "scope": e.found.declared.scope.as_str(),
                    "file": e.found.file.path.display().to_string(),
                    "project": e.found.declared.project,
                    "name": e.name(),
                    "disabled": e.found.declared.disabled,
                    "launch": e.endpoint.as_ref().ok().and(e.recorded.as_ref().ok()).map(Launch::to_json),
                    "problem": e.endpoint.as_ref().err().or(e.recorded.as_ref().err()),
                    "status": lock_status(e, lockfile).code(),
                    "proxy": e.found.declared.proxied.as_ref().map(|l| json!({"lockfile": l})),
                })
            })
            .collect();
    let unreadable: Vec<Value> = unreadable
            .iter()
            .map(|u| json!({"host": u.file.host.id(), "file": u.file.path.display().to_string(), "reason": u.reason}))
            .collect();
    json!({
        "lockfile": args.lockfile.display().to_string(),
        "servers": servers,
        "unreadable": unreadable,
    })
}

/// `hosts` for people: per file, a line per server with its status and what it runs.
fn list_human(args: &HostsArgs, entries: &[Entry], lockfile: Option<&Lockfile>) -> String {
    let mut out = String::new();
    let mut current: Option<&ConfigFile> = None;
    for e in entries {
        if current != Some(&e.found.file) {
            current = Some(&e.found.file);
            let _ = writeln!(
                out,
                "{}  ({}, {} scope)",
                shown(&e.found.file),
                e.found.file.host.id(),
                e.found.file.scope.as_str()
            );
        }
        let what = match (&e.endpoint, &e.recorded) {
            (Ok(_), Ok(recorded)) => recorded.describe_with_names(),
            (Err(problem), _) | (_, Err(problem)) => escape(problem),
        };
        let project = e
            .found
            .declared
            .project
            .as_deref()
            .map(|p| format!(" [project {}]", escape(p)))
            .unwrap_or_default();
        let through = match &e.found.declared.proxied {
            Some(lockfile) => {
                format!(" (through mcplock proxy, enforcing {})", escape(lockfile))
            }
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:<24} {:<12} {what}{project}{through}",
            escape(e.name()),
            lock_status(e, lockfile).human()
        );
    }
    let locked = entries
        .iter()
        .filter(|e| lock_status(e, lockfile).is_locked())
        .count();
    let _ = writeln!(
        out,
        "{} server(s); {locked} locked in {}",
        entries.len(),
        args.lockfile.display()
    );
    if entries.is_empty() {
        let _ = writeln!(
            out,
            "no host config declares a server here (docs/hosts.md lists where each host keeps its config; --config reads another file)"
        );
    }
    out
}

/// Scans every job (name, origin, endpoint) at most `jobs` at a time; returns the lock entries
/// of those that scanned, and the failures.
async fn scan_all(
    work: Vec<Job>,
    server: &super::ServerArgs,
    jobs: Option<usize>,
    resources: bool,
) -> (Vec<(String, String, ServerLock)>, Vec<Reported>) {
    let limit = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let slots = Arc::new(tokio::sync::Semaphore::new(limit));
    let mut running = tokio::task::JoinSet::new();
    // On a terminal, each server's line as it finishes (a cold npx cache can take a while).
    let bar = super::progress::bar(work.len(), "servers");
    for (name, origin, endpoint, recorded) in work {
        let slots = Arc::clone(&slots);
        let server = server.clone();
        running.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let hide = |e: CliError| CliError {
                headline: super::locked::hide_placeholder_values(&e.headline, &recorded),
                ..e
            };
            let started = std::time::Instant::now();
            let scanned = scan_endpoint(&server.reading(), endpoint)
                .await
                .map_err(hide);
            let took = started.elapsed().as_secs_f64();
            let scanned = scanned.and_then(|mut s| {
                // Recorded as the config wrote it: placeholders, not the values behind them.
                s.snapshot.launch = Some(recorded);
                ServerLock::from_snapshot(s.snapshot, resources)
                    .map_err(|e| fail(Code::ServerFailed, e.to_string()))
            });
            (name, origin, scanned, took)
        });
    }
    let mut scanned = Vec::new();
    let mut failed = Vec::new();
    while let Some(done) = running.join_next().await {
        bar.inc(1);
        let done = done.map(|(name, origin, result, took)| {
            let verb = if result.is_ok() { "scanned" } else { "failed " };
            bar.println(format!("{verb} {} ({took:.1} s)", escape(&name)));
            (name, origin, result)
        });
        match done {
            Ok((name, origin, Ok(entry))) => scanned.push((name, origin, entry)),
            Ok((name, origin, Err(error))) => {
                failed.push((name, origin, Outcome::Failed(error.headline)))
            }
            Err(e) => failed.push(("?".into(), String::new(), Outcome::Failed(e.to_string()))),
        }
    }
    bar.finish_and_clear();
    scanned.sort_by(|a, b| a.0.cmp(&b.0));
    (scanned, failed)
}

/// The lockfile (checked first with `trust` when a key or bundle is given) and what the hosts'
/// servers serve now, for `diff --host` and `review --host`. The lockfile side holds only the
/// servers the hosts run (a server the hosts run that the lock lacks shows as added).
pub async fn against_lock(
    path: &std::path::Path,
    trust: &super::SignatureCheck,
    hosts: &HostArgs,
    server: &super::ServerArgs,
) -> Result<(Lockfile, Lockfile), CliError> {
    if !path.exists() {
        return Err(fail(
            Code::InputMissing,
            format!(
                "{} does not exist; lock first (`mcplock lock --host ...`)",
                path.display()
            ),
        ));
    }
    let trusted = super::trusted::open(path, trust, "refusing to compare the hosts' servers with")?;
    if let Some(signer) = &trusted.signer {
        eprintln!("mcplock: {} is signed by {signer}", path.display());
    }
    let locked = trusted.lockfile;
    let live = scanned_hosts(hosts, server).await?;
    let old = Lockfile {
        servers: locked
            .servers
            .into_iter()
            .filter(|(name, _)| live.servers.contains_key(name))
            .collect(),
        approvals: locked.approvals,
        // What a registry published is not what a server serves: not compared live.
        registry: Default::default(),
    };
    Ok((old, live))
}

/// The servers of the selected hosts, scanned (for `diff --host` and `policy check --host`):
/// every one must be usable and scan, or the whole is refused (exit 3): a comparison of part
/// of a host is not the host's.
pub async fn scanned_hosts(
    hosts: &HostArgs,
    server: &super::ServerArgs,
) -> Result<Lockfile, CliError> {
    let (entries, unreadable) = gather(hosts)?;
    if !unreadable.is_empty() {
        let mut error = fail(
            Code::HostConfigInvalid,
            format!("{} config file(s) could not be read", unreadable.len()),
        );
        error.details = unreadable_lines(&unreadable);
        return Err(error);
    }
    let (jobs, mut failed) = jobs_of(&entries);
    let (scanned, scan_failed) = scan_all(jobs, server, None, false).await;
    failed.extend(scan_failed);
    if !failed.is_empty() {
        let mut error = fail(
            Code::ServerFailed,
            format!(
                "{} server(s) of the host(s) could not be scanned",
                failed.len()
            ),
        );
        error.details = failed
            .iter()
            .map(|(name, origin, outcome)| match outcome {
                Outcome::Failed(why) => {
                    format!("{} ({}): {}", escape(name), escape(origin), escape(why))
                }
                _ => String::new(),
            })
            .collect();
        return Err(error);
    }
    if scanned.is_empty() {
        return Err(fail(
            Code::HostConfigInvalid,
            "no host config declares a server here (mcplock hosts lists what is found)",
        ));
    }
    Ok(Lockfile {
        servers: scanned.into_iter().map(|(n, _, e)| (n, e)).collect(),
        approvals: Vec::new(),
        registry: Default::default(),
    })
}

/// A server to scan: its config key, where it was declared, how to reach it, and the launch a
/// lock records for it.
type Job = (String, String, Endpoint, Launch);
/// A server's config key, where it was declared, and what happened to it.
type Reported = (String, String, Outcome);

/// One job per config key (the same key with the same launch in two files is one server; with
/// two launches it is ambiguous and none of them is taken), and the entries that cannot run.
fn jobs_of(entries: &[Entry]) -> (Vec<Job>, Vec<Reported>) {
    let mut failed: Vec<(String, String, Outcome)> = Vec::new();
    let mut by_name: std::collections::BTreeMap<&str, Vec<(String, &Endpoint, &Launch)>> =
        Default::default();
    for e in entries {
        let origin = format!("{} {}", e.found.file.host.id(), e.found.file.path.display());
        match (&e.endpoint, &e.recorded) {
            (Ok(endpoint), Ok(recorded)) => by_name
                .entry(e.name())
                .or_default()
                .push((origin, endpoint, recorded)),
            _ if e.found.declared.disabled => {}
            (Err(problem), _) | (_, Err(problem)) => failed.push((
                e.name().to_string(),
                origin,
                Outcome::Failed(problem.clone()),
            )),
        }
    }
    let mut jobs: Vec<Job> = Vec::new();
    for (name, declared) in by_name {
        let (origin, endpoint, first) = &declared[0];
        if declared.iter().all(|(_, _, recorded)| recorded == first) {
            jobs.push((
                name.to_string(),
                origin.clone(),
                (*endpoint).clone(),
                (*first).clone(),
            ));
            continue;
        }
        let origins: Vec<&str> = declared.iter().map(|(o, _, _)| o.as_str()).collect();
        for (origin, _, _) in &declared {
            failed.push((
                name.to_string(),
                origin.clone(),
                Outcome::Failed(format!(
                    "the name is declared with different launches in {}; lock one with --host and --config",
                    origins.join(" and ")
                )),
            ));
        }
    }
    (jobs, failed)
}

/// `verify --host`: the signature and the lockfile hold (as `verify`), and every server the
/// hosts run is locked under its config key with the launch the config gives.
pub fn verify(args: super::VerifyArgs) -> Result<Output, CliError> {
    let hosts = args.hosts.clone();
    let lockfile_path = args.lockfile.clone();
    let verified = super::keys::verify(args)?;
    let (entries, unreadable) = gather(&hosts)?;
    let lockfile = load_lockfile(&lockfile_path)?.unwrap_or_default();
    let mut problems: Vec<String> = unreadable_lines(&unreadable);
    let mut checked = 0;
    let mut servers = Vec::new();
    for e in entries.iter().filter(|e| !e.found.declared.disabled) {
        let origin = format!("{} {}", e.found.file.host.id(), shown(&e.found.file));
        checked += 1;
        servers.push(json!({
            "host": e.found.file.host.id(),
            "file": e.found.file.path.display().to_string(),
            "name": e.name(),
            "status": lock_status(e, Some(&lockfile)).code(),
        }));
        // Like with like: both launches with their placeholders as written.
        match (e.recorded.clone(), lockfile.servers.get(e.name())) {
            (Err(why), _) => problems.push(format!(
                "{} ({origin}): cannot be checked: {}",
                escape(e.name()),
                escape(&why)
            )),
            (Ok(_), None) => problems.push(format!("{} ({origin}): not locked", escape(e.name()))),
            (Ok(launch), Some(locked)) if locked.launch != launch => problems.push(format!(
                "{} ({origin}): runs {}, the lock approved {}",
                escape(e.name()),
                launch.describe_with_names(),
                locked.launch.describe_with_names()
            )),
            _ => {}
        }
    }
    if !problems.is_empty() {
        let mut error = fail(
            Code::NotLocked,
            format!(
                "the signature holds, but {} of the {checked} server(s) the host(s) run do not match {}",
                problems.len(),
                lockfile_path.display()
            ),
        );
        error.details = problems;
        return Err(error);
    }
    let code = verified.code;
    let (signature, mut json) = verified
        .into_report()
        .ok_or_else(|| fail(Code::Internal, "verify gave no report to extend"))?;
    json["hostServers"] = json!(checked);
    json["hosts"] = json!(servers);
    let human = format!(
        "{signature}every one of the {checked} server(s) the host(s) run is locked with its launch\n"
    );
    Ok(Output::report(code, human, json))
}

/// What happened to one server of `lock --host`.
enum Outcome {
    Created,
    Unchanged,
    Updated(usize),
    /// Differs from its lock and --update was not given: left as it was.
    Refused(usize),
    Failed(String),
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Unchanged => "unchanged",
            Outcome::Updated(_) => "updated",
            Outcome::Refused(_) => "refused",
            Outcome::Failed(_) => "failed",
        }
    }
}

pub async fn lock(args: LockArgs) -> Result<Output, CliError> {
    if args.server.names_a_server() || args.name.is_some() {
        return Err(fail(
            Code::Usage,
            "--host locks the servers of the hosts' configs, each under its config key: give no server (-- CMD or --url) and no --name",
        ));
    }
    let (entries, unreadable) = gather(&args.hosts)?;
    let path = args.lockfile.as_path();
    let started = std::time::SystemTime::now();
    // A broken lockfile is never overwritten; read it before anything starts.
    load_lockfile(path)?;

    let (jobs, mut outcomes) = jobs_of(&entries);
    let (scanned, failed) = scan_all(jobs, &args.server, args.jobs, args.resources).await;
    outcomes.extend(failed);
    let mut scanned = scanned;
    let pinned = if args.pin {
        Some(pin_launches(&entries, &mut scanned, &mut outcomes, &args).await?)
    } else {
        None
    };
    scanned.sort_by(|a, b| a.0.cmp(&b.0));

    // Merge under the directory's lock, into the file as it is now.
    let (update, current) = if args.check {
        (None, load_lockfile(path)?)
    } else {
        let mut update = super::files::update(path, started)?;
        let current = update.current.take();
        (Some(update), current)
    };
    let mut lockfile = current.unwrap_or_default();
    let changed = merge_scanned(&mut lockfile, scanned, &args, &mut outcomes);
    if let (true, Some(update)) = (changed, &update) {
        for stale in update.write(&lockfile)? {
            eprintln!("mcplock: warning: {}", escape(&stale));
        }
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let failed = outcomes
        .iter()
        .any(|(_, _, o)| matches!(o, Outcome::Failed(_)));
    let refused = outcomes
        .iter()
        .any(|(_, _, o)| matches!(o, Outcome::Refused(_)));
    // The worst answer decides: a server that could not be scanned, a config that could not be
    // read, then a server whose lock would change (stale under --check).
    let code = if failed {
        Some(Code::ServerFailed)
    } else if !unreadable.is_empty() {
        Some(Code::HostConfigInvalid)
    } else if refused && args.check {
        Some(Code::LockStale)
    } else if refused {
        Some(Code::LockChanged)
    } else {
        None
    };
    let shown_path = path.display().to_string();
    let mut json = lock_json(&outcomes, &lockfile, &unreadable, &shown_path);
    let mut human = lock_human(&outcomes, &unreadable, &shown_path, changed);
    if let Some((shown, decided, notes)) = pinned {
        human = format!(
            "{shown}{}{human}",
            notes.iter().map(|n| format!("{n}\n")).collect::<String>()
        );
        json["pinned"] = json!(decided);
        json["notes"] = json!(notes);
    }
    Ok(Output::report(code, human, json))
}

/// `--pin`: the floating launches of `scanned` pinned (scanned again as pinned, then written
/// into the configs); `scanned` then holds the pinned launches. Returns the rewrites shown,
/// a JSON entry per pinned server and the notes on launches left floating.
async fn pin_launches(
    entries: &[Entry],
    scanned: &mut Vec<(String, String, ServerLock)>,
    outcomes: &mut Vec<Reported>,
    args: &LockArgs,
) -> Result<(String, Vec<Value>, Vec<String>), CliError> {
    let existing = load_lockfile(args.lockfile.as_path())?;
    let plan = pin::plan(entries, scanned, existing.as_ref(), args.update)?;
    let (jobs, mut failed) = jobs_of(&plan.entries);
    let (rescanned, refailed) = scan_all(jobs, &args.server, args.jobs, args.resources).await;
    failed.extend(refailed);
    let ran: std::collections::BTreeSet<String> =
        rescanned.iter().map(|(n, _, _)| n.clone()).collect();
    let (shown, decided) = pin::write(&plan, &ran.iter().map(String::as_str).collect())?;
    // A server whose pinned launch failed is not locked floating either: it is reported.
    let replaced: std::collections::BTreeSet<&String> =
        ran.iter().chain(failed.iter().map(|(n, _, _)| n)).collect();
    scanned.retain(|(n, _, _)| !replaced.contains(n));
    scanned.extend(rescanned);
    outcomes.extend(
        failed
            .into_iter()
            .map(|(name, origin, outcome)| match outcome {
                Outcome::Failed(why) => (
                    name,
                    origin,
                    Outcome::Failed(format!(
                        "its pinned launch failed, so the config was left as it is: {why}"
                    )),
                ),
                other => (name, origin, other),
            }),
    );
    Ok((shown, decided, plan.notes))
}

/// Each scanned server merged into `lockfile` as `lock` would (created; unchanged; updated only
/// with --update; refused otherwise), its outcome added; `true` when the lockfile changed.
fn merge_scanned(
    lockfile: &mut Lockfile,
    scanned: Vec<(String, String, ServerLock)>,
    args: &LockArgs,
    outcomes: &mut Vec<Reported>,
) -> bool {
    use crate::core::merge::{Standing, accepts, standing};
    let mode = super::lock::merge_mode(args);
    let mut changed = false;
    for (name, origin, entry) in scanned {
        let stands = standing(lockfile, &name, &entry);
        let outcome = match (&stands, accepts(&stands, mode)) {
            (Standing::Unchanged, _) => Outcome::Unchanged,
            (Standing::Changed(changes), true) => Outcome::Updated(changes.len()),
            (Standing::Changed(changes), false) => Outcome::Refused(changes.len()),
            (Standing::New, true) => Outcome::Created,
            (Standing::New, false) => Outcome::Refused(0),
        };
        if matches!(outcome, Outcome::Created | Outcome::Updated(_)) {
            lockfile.servers.insert(name.clone(), entry);
            changed = true;
        }
        outcomes.push((name, origin, outcome));
    }
    changed
}

/// `lock --host`'s JSON report.
fn lock_json(
    outcomes: &[Reported],
    lockfile: &Lockfile,
    unreadable: &[Unreadable],
    shown_path: &str,
) -> Value {
    let servers: Vec<Value> = outcomes
        .iter()
        .map(|(name, origin, outcome)| {
            // `from` is "HOST FILE"; each also on its own.
            let (host, file) = origin.split_once(' ').unwrap_or((origin.as_str(), ""));
            let mut v = json!({"name": name, "from": origin, "host": host, "file": file, "status": outcome.as_str()});
            match outcome {
                Outcome::Failed(why) => v["error"] = json!(why),
                Outcome::Updated(n) | Outcome::Refused(n) => v["changes"] = json!(n),
                _ => {}
            }
            if let Some(entry) = lockfile.servers.get(name)
                && !matches!(outcome, Outcome::Failed(_))
            {
                v["digest"] = json!(entry.digest(name).to_string());
            }
            v
        })
        .collect();
    json!({
        "lockfile": shown_path,
        "servers": servers,
        "unreadable": unreadable_lines(unreadable),
    })
}

/// `lock --host`'s report for people: a line per server, then the count.
fn lock_human(
    outcomes: &[Reported],
    unreadable: &[Unreadable],
    shown_path: &str,
    changed: bool,
) -> String {
    let mut out = String::new();
    for (name, origin, outcome) in outcomes {
        let name = escape(name);
        let origin = escape(origin);
        let _ = match outcome {
            Outcome::Created => writeln!(out, "locked    {name} (from {origin})"),
            Outcome::Unchanged => writeln!(out, "unchanged {name}"),
            Outcome::Updated(n) => {
                writeln!(out, "updated   {name} ({n} change(s) accepted)")
            }
            Outcome::Refused(0) => writeln!(out, "missing   {name}: not in the lockfile"),
            Outcome::Refused(n) => writeln!(
                out,
                "refused   {name}: {n} change(s) since its lock; review with `mcplock diff --name {name}` and rerun with --update"
            ),
            Outcome::Failed(why) => {
                writeln!(out, "failed    {name} (from {origin}): {}", escape(why))
            }
        };
    }
    for line in unreadable_lines(unreadable) {
        let _ = writeln!(out, "unreadable {line}");
    }
    let ok = outcomes
        .iter()
        .filter(|(_, _, o)| {
            matches!(
                o,
                Outcome::Created | Outcome::Unchanged | Outcome::Updated(_)
            )
        })
        .count();
    let _ = writeln!(
        out,
        "{ok} of {} server(s) locked in {shown_path}{}",
        outcomes.len(),
        if changed { "" } else { " (file unchanged)" }
    );
    out
}
