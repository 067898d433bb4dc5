//! `mcplock diff`: what changed, graded by severity.

use super::entries::entry_for;
use super::exit::{Code, fail, read_input};
use super::files::load_lockfile;
use super::live::scan_server;
use super::locked::{protocol_like, relaunch_locked};
use super::{CliError, DiffArgs, Output};
use crate::core::diff::{DiffLimits, diff_with};
use crate::core::json::parse_strict;
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::snapshot::{ItemKind, Snapshot};
use crate::core::text::escape;
use std::collections::BTreeMap;
use std::path::Path;

use super::changes::report;
use super::files::MAX_LOCKFILE_BYTES;

pub async fn run(args: DiffArgs) -> Result<Output, CliError> {
    // The file SARIF results point into: the new side when it is a lockfile (in a pull request,
    // the lockfile as changed), else the old side when that is one, else the lockfile compared.
    let (old, new, located_in) = match (&args.old, &args.new) {
        _ if !args.between.is_empty() => {
            let (a, b) = between_contexts(&args)?;
            (a, b, args.lockfile.clone())
        }
        (Some(old_path), Some(new_path)) => {
            if args.server.names_a_server() {
                return Err(fail(
                    Code::Usage,
                    "give either two files (OLD NEW) or a server after `--`, not both",
                ));
            }
            // Two large lockfiles take a while each to read and check: read them side by side.
            let name = args.name.as_deref();
            let (a, b) = std::thread::scope(|scope| {
                let a = scope.spawn(|| read_side(old_path, name));
                let b = read_side(new_path, name);
                (a.join(), b)
            });
            let a =
                a.map_err(|_| fail(Code::Internal, "internal error while reading the old side"))?;
            let ((mut a, a_snapshot), (mut b, b_snapshot)) = (a?, b?);
            // A snapshot lists static resources whenever the server offers them; a lockfile
            // holds them only when locked with --resources. Compare like with like.
            if b_snapshot {
                drop_unlocked_resources(&a, &mut b);
            }
            if a_snapshot {
                drop_unlocked_resources(&b, &mut a);
            }
            // A snapshot records no registry entry (a server does not say what the registry
            // published): compared with one, the lock's entries are not.
            if a_snapshot || b_snapshot {
                a.registry.clear();
                b.registry.clear();
            }
            let located_in = if b_snapshot && !a_snapshot {
                old_path.clone()
            } else {
                new_path.clone()
            };
            (a, b, located_in)
        }
        (Some(_), None) => {
            return Err(fail(
                Code::Usage,
                "give two files to compare (OLD NEW), or none to compare the lockfile with live servers",
            ));
        }
        _ => {
            let (a, b) = live(&args).await?;
            (a, b, args.lockfile.clone())
        }
    };
    let limits = DiffLimits {
        max_text_diff_words: args.max_text_diff_words,
    };
    let mut changes = diff_with(&old, &new, limits);
    if let Some(list) = &args.revocations {
        let key = args
            .revocations_key
            .as_deref()
            .or(args.trust.key.as_deref());
        let signed = args.trust.key.is_some() || args.trust.bundle.is_some();
        let list = super::revocations::load(list, key, signed)?;
        changes.extend(crate::core::diff::revoked(&new, &list));
    }
    if args.old.is_none() && !changes.is_empty() {
        // Drift against a live server is drift, whatever its cause; but a server that differs
        // from itself between starts shows up here too, and only a repeated scan tells.
        eprintln!(
            "mcplock: hint: if this server changes between starts (descriptions built from an unordered set, say), `mcplock scan --repeat 3 -- CMD` shows what differs"
        );
        for line in next_steps(&args, &old, &changes) {
            eprintln!("mcplock: {line}");
        }
    }
    Ok(report(changes, args.fail_on, located_in))
}

/// What the user can do about drift found against live servers: accept it (re-lock, then
/// re-sign) or reject it (change nothing: the proxy keeps withholding what differs).
fn next_steps(
    args: &DiffArgs,
    old: &Lockfile,
    changes: &[crate::core::diff::Change],
) -> Vec<String> {
    let lockfile = args.lockfile.display();
    let servers: std::collections::BTreeSet<&str> =
        changes.iter().map(|c| c.server.as_str()).collect();
    let mut out = Vec::new();
    let review = match &args.hosts.host {
        Some(host) => format!("mcplock review --host {host} --lockfile {lockfile}"),
        None => format!("mcplock review --lockfile {lockfile}"),
    };
    out.push(format!(
        "to accept or reject each change (recorded, bound to what you saw): `{review}`"
    ));
    if let Some(host) = &args.hosts.host {
        out.push(format!(
            "or to accept all of it at once: `mcplock lock --host {host} --update --lockfile {lockfile}`"
        ));
    } else {
        for name in servers {
            let Some(entry) = old.servers.get(name) else {
                continue;
            };
            let target = match &entry.launch {
                crate::core::launch::Launch::Http { url, .. } => {
                    format!("--url {}", crate::core::launch::redact_url(url))
                }
                // Quoted as a shell reads it, so the line can be pasted.
                crate::core::launch::Launch::Stdio { command, args, .. } => {
                    let cmd = crate::transport::process::ServerCommand {
                        program: command.clone(),
                        args: args.clone(),
                        env: Vec::new(),
                        cwd: None,
                    };
                    format!("-- {}", cmd.display())
                }
            };
            out.push(format!(
                "or to accept all of {name:?} at once: `mcplock lock --update --lockfile {lockfile} --name {name} {target}`"
            ));
        }
    }
    out.push(format!(
        "then re-sign {lockfile} (`mcplock sign --key PRIVATE {lockfile}`); to reject it, change nothing: the proxy keeps withholding what differs from the lock"
    ));
    out
}

/// Leaves static resources out of `snapshot`'s servers where `lock` did not lock them.
fn drop_unlocked_resources(lock: &Lockfile, snapshot: &mut Lockfile) {
    for (name, entry) in &mut snapshot.servers {
        if lock
            .servers
            .get(name)
            .is_some_and(|l| l.resources.is_none())
        {
            entry.resources = None;
            entry.unserved.remove(&ItemKind::Resource);
        }
    }
}

/// Reads a lockfile or a `scan --format json` snapshot as a lockfile; true for a snapshot.
fn read_side(path: &Path, name: Option<&str>) -> Result<(Lockfile, bool), CliError> {
    let bytes = read_input(path, MAX_LOCKFILE_BYTES, "file")?;
    // A lockfile in the form mcplock writes: one pass, definitions kept as canonical text.
    if let Some(streamed) = Lockfile::stream_text(&bytes, 0)
        && streamed.skeleton.get("lockfileVersion").is_some()
    {
        drop(bytes);
        return Lockfile::from_streamed(streamed)
            .map(|lock| (lock, false))
            .map_err(|e| {
                fail(
                    Code::LockfileInvalid,
                    format!("{} is not a valid lockfile: {e}", path.display()),
                )
            });
    }
    let value = parse_strict(&bytes).map_err(|e| {
        fail(
            Code::JsonInvalid,
            format!("{} is not valid JSON: {e}", path.display()),
        )
    })?;
    if value.get("lockfileVersion").is_some()
        || crate::core::peers::import::foreign(&value).is_some()
    {
        return Lockfile::from_owned_value(value)
            .map(|lock| (lock, false))
            .map_err(|e| {
                fail(
                    Code::LockfileInvalid,
                    format!("{} is not a valid lockfile: {e}", path.display()),
                )
            });
    }
    if value.get("mcplockSnapshot").is_some() {
        let snapshot = Snapshot::from_json(&value).map_err(|e| {
            fail(
                Code::SnapshotInvalid,
                format!("{} is not a valid snapshot: {e}", path.display()),
            )
        })?;
        let name = name
            .map(str::to_owned)
            .or_else(|| snapshot.server_name().map(str::to_owned))
            .ok_or_else(|| {
                fail(
                    Code::Usage,
                    format!("{} names no server; pass --name", path.display()),
                )
            })?;
        let with_resources = snapshot.items(ItemKind::Resource).is_some()
            || snapshot.unserved(ItemKind::Resource).is_some();
        let entry = ServerLock::from_snapshot(snapshot, with_resources).map_err(|e| {
            fail(
                Code::Usage,
                format!(
                    "{}: {e} (take snapshots with `mcplock scan --format json`)",
                    path.display()
                ),
            )
        })?;
        return Ok((
            Lockfile {
                servers: BTreeMap::from([(name, entry)]),
                approvals: Vec::new(),
                registry: Default::default(),
            },
            true,
        ));
    }
    Err(fail(
        Code::Usage,
        format!(
            "{} is neither an mcplock lockfile nor a scan snapshot",
            path.display()
        ),
    ))
}

/// The lockfile against live servers: the one after `--`, the ones the hosts' configs run
/// (`--host`), or every locked server relaunched.
async fn live(args: &DiffArgs) -> Result<(Lockfile, Lockfile), CliError> {
    if args.hosts.host.is_some() {
        if args.server.names_a_server() || args.name.is_some() {
            return Err(fail(
                Code::Usage,
                "--host compares the servers of the hosts' configs, each by its config key: give no server and no --name",
            ));
        }
        return super::hosts::against_lock(&args.lockfile, &args.trust, &args.hosts, &args.server)
            .await;
    }
    if !args.server.names_a_server() {
        return relaunch_locked(
            &args.lockfile,
            args.name.as_deref(),
            &args.server,
            &args.trust,
        )
        .await;
    }
    args.trust.only_for_relaunch()?;
    let locked = load_lockfile(&args.lockfile)?.ok_or_else(|| {
        fail(
            Code::InputMissing,
            format!(
                "{} does not exist; lock first (`mcplock lock -- CMD`), or compare two files",
                args.lockfile.display()
            ),
        )
    })?;
    let mut old = Lockfile::default();
    let mut new = Lockfile::default();
    {
        let mut server_args = args.server.clone();
        server_args.adopt_locked_env(&locked, args.name.as_deref());
        let known = entry_for(
            &locked,
            args.name.as_deref(),
            &server_args.endpoint()?.launch(),
        );
        server_args.protocol = protocol_like(server_args.protocol, known);
        let endpoint = server_args.endpoint()?;
        if let Some(entry) = known {
            super::authorization::hold(entry, &endpoint);
        }
        let scanned = match scan_server(&server_args).await {
            Ok(scanned) => scanned,
            Err(error) => {
                return Err(super::authorization::drift(&endpoint, known).unwrap_or(error));
            }
        };
        let by_launch = scanned
            .snapshot
            .launch
            .as_ref()
            .and_then(|launch| super::entries::name_for(&locked, launch));
        let name = match args.name.clone().or(by_launch) {
            Some(n) => n,
            None => pick_server(&locked, scanned.snapshot.server_name())?,
        };
        let entry = locked.servers.get(&name).ok_or_else(|| {
            fail(
                Code::ServerNotFound,
                format!(
                    "{} locks no server {name:?} (it locks: {})",
                    args.lockfile.display(),
                    server_list(&locked)
                ),
            )
        })?;
        let live = ServerLock::from_snapshot(scanned.snapshot, entry.resources.is_some())
            .map_err(|e| fail(Code::ServerFailed, e.to_string()))?;
        old.servers.insert(name.clone(), entry.clone());
        new.servers.insert(name, live);
    }
    Ok((old, new))
}

/// `--between FIRST SECOND`: each server locked under both contexts, as the first side and
/// the second.
fn between_contexts(args: &DiffArgs) -> Result<(Lockfile, Lockfile), CliError> {
    let [first, second] = args.between.as_slice() else {
        return Err(fail(Code::Usage, "--between takes two contexts"));
    };
    let locked = load_lockfile(&args.lockfile)?.ok_or_else(|| {
        fail(
            Code::InputMissing,
            format!("{} does not exist; lock the server under each context first (`mcplock lock --url URL --context NAME ...`)", args.lockfile.display()),
        )
    })?;
    let (a, b) = locked.between_contexts(first, second);
    let a = match &args.name {
        Some(name) => keep_only(a, name)?,
        None => a,
    };
    let b = match &args.name {
        Some(name) => keep_only(b, name)?,
        None => b,
    };
    if a.servers.is_empty() {
        return Err(fail(
            Code::ServerNotFound,
            format!(
                "{} locks no server under both contexts {first:?} and {second:?}; lock it under each: `mcplock lock --url URL --context {first} ...` and `--context {second}`",
                args.lockfile.display()
            ),
        ));
    }
    Ok((a, b))
}

fn keep_only(mut lockfile: Lockfile, name: &str) -> Result<Lockfile, CliError> {
    let entry = lockfile.servers.remove(name).ok_or_else(|| {
        fail(
            Code::ServerNotFound,
            format!("no server {name:?} is locked under both contexts (--name takes the name without its context)"),
        )
    })?;
    Ok(Lockfile {
        servers: BTreeMap::from([(name.to_string(), entry)]),
        approvals: Vec::new(),
        registry: Default::default(),
    })
}

fn pick_server(locked: &Lockfile, reported: Option<&str>) -> Result<String, CliError> {
    if let Some(name) = reported
        && locked.servers.contains_key(name)
    {
        return Ok(name.to_string());
    }
    if locked.servers.len() == 1
        && let Some(name) = locked.servers.keys().next()
    {
        return Ok(name.clone());
    }
    Err(fail(
        Code::ServerNotFound,
        format!(
            "which locked server is this? pass --name (the lockfile locks: {})",
            server_list(locked)
        ),
    ))
}

fn server_list(locked: &Lockfile) -> String {
    let names: Vec<String> = locked.servers.keys().map(|n| escape(n)).collect();
    names.join(", ")
}
