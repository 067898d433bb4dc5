//! `mcplock lock`: scan a server and pin it in the lockfile.

use super::entries::entry_for;
use super::exit::{Code, fail};
use super::files::load_lockfile;
use super::live::scan_stable;
use super::locked::{protocol_like, relaunch_locked};
use super::render::pretty;
use super::{CliError, ExitKind, Format, LockArgs, Output};
use crate::core::artifact::Artifact;
use crate::core::lockfile::ServerLock;
use crate::core::snapshot::ItemKind;
use crate::core::text::escape;
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Created,
    Unchanged,
    Updated,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Unchanged => "unchanged",
            Status::Updated => "updated",
        }
    }
}

/// `lock --check` with no server after `--`: every locked server (or `--name`) relaunched
/// from the lockfile and compared by digest.
async fn check_relaunched(args: &LockArgs) -> Result<Output, CliError> {
    let path = args.lockfile.as_path();
    let (old, new) = relaunch_locked(path, args.name.as_deref(), &args.server, &args.trust).await?;
    let mut changes = Vec::new();
    let mut stale = Vec::new();
    for (name, locked) in &old.servers {
        if let Some(live) = new.servers.get(name)
            && locked.digest(name) != live.digest(name)
        {
            crate::core::diff::diff_server(name, locked, live, &mut changes);
            stale.push(format!("{:?}", escape(name)));
        }
    }
    let shown = path.display();
    if !stale.is_empty() {
        let text = super::changes::human_body(&changes, false);
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        return Err(refusal(
            args,
            format!(
                "{shown} would change: server(s) {} no longer match their lock",
                stale.join(", ")
            ),
            &lines,
        ));
    }
    let path = path.to_path_buf();
    Ok(Output::lazy(None, move |format| {
        let shown = path.display();
        let names: Vec<&String> = old.servers.keys().collect();
        Ok(match format {
            Format::Json => pretty(&json!({
                "changes": [],
                "lockfile": shown.to_string(),
                "servers": names,
                "status": "unchanged",
            })),
            Format::Sarif => {
                let servers: Vec<(&str, &ServerLock)> =
                    old.servers.iter().map(|(n, e)| (n.as_str(), e)).collect();
                pretty(&super::sarif::findings_log(
                    "mcplock/lock/",
                    &servers,
                    Some(&path),
                    0,
                ))
            }
            _ => format!(
                "{} server(s) match their lock in {shown}\n",
                old.servers.len()
            ),
        })
    }))
}

/// `lock`: an import draft is confirmed (`super::confirm`); anything else is locked here.
pub async fn run(args: LockArgs) -> Result<Output, CliError> {
    match super::confirm::draft_at(&args.lockfile)? {
        Some(draft) => super::confirm::run(&args, draft).await,
        None => lock(args).await,
    }
}

async fn lock(args: LockArgs) -> Result<Output, CliError> {
    if !args.server.names_a_server() && args.check {
        return check_relaunched(&args).await;
    }
    args.trust.only_for_relaunch()?;
    refuse_the_proxy(&args.server.server)?;
    let path = args.lockfile.as_path();
    let started = std::time::SystemTime::now();
    let load = || {
        load_lockfile(path).map_err(|mut e| {
            e.headline = format!("{}; fix it, or lock into another file with -o", e.headline);
            e
        })
    };
    // Read (and check) the existing file first: a corrupt lockfile is never overwritten, and
    // no server is started for nothing.
    let mut existing = load()?;
    let registry = super::registry::read_entry(args.registry_entry.as_deref())?;

    let mut server_args = server_args(&args, existing.as_ref())?;
    let mut scanned = scan_held(&args, &server_args, existing.as_ref()).await?;
    let pin_notes = if args.pin {
        pin(&mut server_args, &mut scanned, &args).await?
    } else {
        Vec::new()
    };
    let mut notes = scanned.notes.clone();
    notes.extend(pin_notes);
    notes.extend(artifact_notes(scanned.snapshot.artifact.as_ref()));
    let name = server_name(&args, &scanned.snapshot, existing.as_ref())?;
    let entry = ServerLock::from_snapshot(scanned.snapshot, args.resources)
        .map_err(|e| fail(Code::ServerFailed, e.to_string()))?;
    notes.extend(super::registry::check_files(registry.as_ref(), &entry)?);

    // Another `lock` may have written the file while this one scanned: take the directory's
    // lock, read the file again and merge into what is there now, so no entry is lost. (A
    // check writes nothing and needs no lock.)
    let update = if args.check {
        None
    } else {
        let mut update = super::files::update(path, started).map_err(|mut e| {
            e.headline = format!("{}; fix it, or lock into another file with -o", e.headline);
            e
        })?;
        existing = update.current.take();
        Some(update)
    };
    let exists = existing.is_some();
    let mut lockfile = existing.unwrap_or_default();
    let (status, count, changes) = status_of(&lockfile, &name, &entry, registry.as_ref());
    let shown = path.display().to_string();

    refuse_unless_allowed(&args, status, exists, &name, &shown, count, &changes)?;
    // A changed entry moves into the lockfile (a large server is never held twice) and back
    // out for the report; an unchanged one is there already (the same digest).
    let kept = if status == Status::Unchanged {
        Some(entry)
    } else {
        lockfile.servers.insert(name.clone(), entry);
        if let Some(record) = registry {
            lockfile.registry.insert(name.clone(), record);
        }
        let update = update
            .as_ref()
            .ok_or_else(|| fail(Code::Internal, "a check writes nothing, but this one would"))?;
        notes.extend(update.write(&lockfile)?);
        None
    };
    // The lockfile holds the entry (written now, or unchanged): its look-alikes, in this
    // server or another, are worth a note.
    notes.extend(crate::core::confusable::notes_for(&lockfile, &name));
    let entry = match kept {
        Some(entry) => entry,
        None => lockfile.servers.remove(&name).ok_or_else(|| {
            fail(
                Code::Internal,
                "the entry just written is missing from the lockfile",
            )
        })?,
    };
    Ok(report(
        args.lockfile.clone(),
        name,
        shown,
        status,
        (changes, notes),
        entry,
    ))
}

/// The server scanned (as stably as --repeat asks). A remote server already locked through
/// OAuth is held to its surface before any token is asked for, unless the change is being
/// accepted (--update): another surface is told as critical drift.
async fn scan_held(
    args: &LockArgs,
    server_args: &super::ServerArgs,
    existing: Option<&crate::core::lockfile::Lockfile>,
) -> Result<crate::mcp::scan::Scanned, CliError> {
    let held = if args.update {
        None
    } else {
        let endpoint = server_args.endpoint()?;
        let known = existing
            .and_then(|l| entry_for(l, args.name.as_deref(), &endpoint.launch()))
            .filter(|entry| entry.authorization.is_some());
        if let Some(entry) = known {
            super::authorization::hold(entry, &endpoint);
        }
        known.cloned().map(|entry| (endpoint, entry))
    };
    scan_stable(server_args, &args.repeat, args.resources)
        .await
        .map_err(|error| {
            let drift = held
                .and_then(|(endpoint, entry)| super::authorization::drift(&endpoint, Some(&entry)));
            drift.unwrap_or(error)
        })
}

/// The server as given, with the variables its lock names passed when they are set, and (for a
/// check) the protocol generation the lock recorded, so no probe is needed.
fn server_args(
    args: &LockArgs,
    existing: Option<&crate::core::lockfile::Lockfile>,
) -> Result<super::ServerArgs, CliError> {
    let mut server_args = args.server.clone();
    if let Some(lockfile) = existing {
        server_args.adopt_locked_env(lockfile, args.name.as_deref());
    }
    if args.check {
        let launch = server_args.endpoint()?.launch();
        let known = existing.and_then(|l| entry_for(l, args.name.as_deref(), &launch));
        server_args.protocol = protocol_like(server_args.protocol, known);
    }
    Ok(server_args)
}

/// What locking `entry` as `name` does to the lockfile: created, unchanged (the same digest:
/// canonical equality, as in diff and verify) or updated, with the count and the lines of the
/// changes.
fn status_of(
    lockfile: &crate::core::lockfile::Lockfile,
    name: &str,
    entry: &ServerLock,
    registry: Option<&crate::core::registry::Record>,
) -> (Status, usize, Vec<String>) {
    use crate::core::merge::{Standing, standing};
    // Without a new entry the recorded one stays as it is.
    let recorded = registry.map_or_else(Vec::new, |new| {
        crate::core::diff::registry_changes(name, lockfile.registry.get(name), Some(new))
    });
    let (status, mut changes) = match standing(lockfile, name, entry) {
        Standing::Unchanged if recorded.is_empty() => return (Status::Unchanged, 0, Vec::new()),
        Standing::Unchanged => (Status::Updated, Vec::new()),
        Standing::Changed(changes) => (Status::Updated, changes),
        Standing::New => return (Status::Created, 0, Vec::new()),
    };
    changes.extend(recorded);
    let text = super::changes::human_body(&changes, false);
    let lines = text.lines().map(str::to_owned).collect();
    (status, changes.len(), lines)
}

/// `mcplock proxy ... -- CMD` is the proxy enforcing a lock, not a server: locking it would
/// make every proxy refuse to start. The server behind it is what to lock.
fn refuse_the_proxy(server: &[String]) -> Result<(), CliError> {
    let Some((program, rest)) = server.split_first() else {
        return Ok(());
    };
    if !crate::hosts::formats::runs_the_proxy(program, rest.first().map(String::as_str)) {
        return Ok(());
    }
    let behind = match rest.iter().position(|a| a == "--") {
        Some(at) => rest[at + 1..].join(" "),
        None => "its --url".to_string(),
    };
    Err(fail(
        Code::Usage,
        format!(
            "this is mcplock proxy enforcing a lock, not a server: lock the server it runs instead (`mcplock lock -- {}`)",
            escape(&behind)
        ),
    ))
}

/// `--pin`: the launch rewritten to the exact artifact it ran, and that launch scanned again
/// (it may fetch the exact version now); the notes say what happened.
async fn pin(
    server_args: &mut super::ServerArgs,
    scanned: &mut crate::mcp::scan::Scanned,
    args: &LockArgs,
) -> Result<Vec<String>, CliError> {
    let pinned = scanned
        .snapshot
        .artifact
        .as_ref()
        .and_then(|artifact| pinned_args(&server_args.server, artifact));
    let Some(server) = pinned else {
        return Ok(vec![match &scanned.snapshot.artifact {
            Some(a) => format!("--pin: nothing to rewrite ({})", a.describe()),
            None => "--pin: a remote server has no artifact to pin".to_string(),
        }]);
    };
    let note = format!(
        "pinned the launch: {} became {} (use it in the host config too)",
        server_args.server.join(" "),
        server.join(" ")
    );
    server_args.server = server;
    *scanned = scan_stable(server_args, &args.repeat, args.resources).await?;
    Ok(vec![note])
}

/// The name the server is locked under: `--name`, else the name of the one locked server with
/// the same launch (a server locked from a host config, under its config key), else its
/// `serverInfo.name` (with `.CONTEXT` under a credential context); never empty, never with
/// control characters.
fn server_name(
    args: &LockArgs,
    snapshot: &crate::core::snapshot::Snapshot,
    existing: Option<&crate::core::lockfile::Lockfile>,
) -> Result<String, CliError> {
    let by_launch = || {
        let launch = snapshot.launch.as_ref()?;
        super::entries::name_for(existing?, launch)
    };
    let name = args
        .name
        .clone()
        .or_else(by_launch)
        .or_else(|| {
            let reported = snapshot.server_name()?;
            // One entry per credential context: `NAME.CONTEXT`.
            Some(match snapshot.launch.as_ref().and_then(|l| l.context()) {
                Some(context) => format!("{reported}.{context}"),
                None => reported.to_owned(),
            })
        })
        .ok_or_else(|| {
            fail(
                Code::Usage,
                "the server reports no serverInfo.name; give it one with --name",
            )
        })?;
    if name.is_empty() || name.chars().any(crate::core::text::is_hazardous) {
        return Err(fail(
            Code::Usage,
            format!(
                "server name {:?} is empty or holds control characters; choose one with --name",
                escape(&name)
            ),
        ));
    }
    Ok(name)
}

/// What `lock`'s flags let a merge do (the rule itself is `core::merge`).
pub(super) fn merge_mode(args: &LockArgs) -> crate::core::merge::Mode {
    use crate::core::merge::Mode;
    match (args.check, args.update) {
        (true, _) => Mode::Check,
        (false, true) => Mode::Update,
        (false, false) => Mode::Add,
    }
}

/// `--check` refuses any change (or a server the file lacks); without `--update` a changed
/// server is refused, naming its changes and the next command.
fn refuse_unless_allowed(
    args: &LockArgs,
    status: Status,
    exists: bool,
    name: &str,
    shown: &str,
    count: usize,
    changes: &[String],
) -> Result<(), CliError> {
    use crate::core::merge::{Standing, accepts};
    let stands = match status {
        Status::Created => Standing::New,
        Status::Unchanged => Standing::Unchanged,
        Status::Updated => Standing::Changed(Vec::new()),
    };
    if accepts(&stands, merge_mode(args)) {
        return Ok(());
    }
    let headline = match status {
        Status::Created if exists => format!("{shown} does not lock server {name:?}"),
        Status::Created => format!("{shown} does not exist"),
        Status::Updated if args.check => {
            format!("{shown} would change: server {name:?} no longer matches its lock")
        }
        Status::Unchanged | Status::Updated => format!(
            "server {name:?} differs from its lock in {shown} ({count} change(s)); review them and rerun with --update to accept"
        ),
    };
    Err(refusal(args, headline, changes))
}

/// The server's argv (program first) rewritten to the exact artifact it ran, when it floats.
fn pinned_args(server: &[String], artifact: &Artifact) -> Option<Vec<String>> {
    let (program, rest) = server.split_first()?;
    let args = crate::core::artifact::pin(program, rest, artifact)?;
    Some(std::iter::once(program.clone()).chain(args).collect())
}

/// What a reviewer should know about the artifact just resolved.
fn artifact_notes(artifact: Option<&Artifact>) -> Option<String> {
    let artifact = artifact?;
    match artifact {
        Artifact::Unresolved { reason } => {
            Some(format!("the code this server runs is not pinned: {reason}"))
        }
        Artifact::Resolved(r) if !r.pinned => Some(format!(
            "the launch floats: it ran {}, but a start may fetch another version; `mcplock lock --pin` pins it",
            artifact.describe()
        )),
        Artifact::Resolved(_) => None,
    }
}

fn refusal(args: &LockArgs, headline: String, changes: &[String]) -> CliError {
    let code = if args.check {
        Code::LockStale
    } else {
        Code::LockChanged
    };
    // Already escaped by the diff renderer.
    let mut error = fail(code, headline).with_details(changes.to_vec());
    error.extra.insert("changes".into(), json!(changes));
    error
}

/// What `lock` did to one server's entry, rendered in the format asked for.
fn report(
    file: std::path::PathBuf,
    name: String,
    path: String,
    status: Status,
    (changes, notes): (Vec<String>, Vec<String>),
    entry: ServerLock,
) -> Output {
    Output::lazy(None, move |format| {
        let digest = entry.digest(&name).to_string();
        let stdout = match format {
            Format::Json => pretty(&json!({
                "artifact": entry.artifact.as_ref().map(Artifact::to_json),
                "changes": changes,
                "digest": digest,
                "lockfile": path,
                "notes": notes,
                "server": name,
                "status": status.as_str(),
            })),
            Format::Sarif => {
                // The findings of the entry as it now stands in the file (written or unchanged).
                pretty(&super::sarif::findings_log(
                    "mcplock/lock/",
                    &[(&name, &entry)],
                    Some(&file),
                    ExitKind::Clean.code(),
                ))
            }
            _ => {
                let counts: Vec<String> = ItemKind::ALL
                    .into_iter()
                    .filter_map(|kind| match entry.unserved.get(&kind) {
                        Some(code) => Some(format!("{} list unserved (error {code})", kind.noun())),
                        None => entry
                            .items(kind)
                            .map(|items| format!("{} {}(s)", items.len(), kind.noun())),
                    })
                    .collect();
                let what = counts.join(", ");
                let name = escape(&name);
                let mut out = match status {
                    Status::Created => format!("locked {name} ({what}) in {path}\n"),
                    Status::Unchanged => format!("{name} is unchanged in {path} ({what})\n"),
                    Status::Updated => format!("updated {name} in {path} ({what}); accepted:\n"),
                };
                for change in &changes {
                    out.push_str(&format!("  {change}\n"));
                }
                if let Some(artifact) = &entry.artifact {
                    out.push_str(&format!("runs {}\n", escape(&artifact.describe())));
                }
                out.push_str(&format!("digest {digest}\n"));
                for note in &notes {
                    out.push_str(&format!("note: {}\n", escape(note)));
                }
                out
            }
        };
        Ok(stdout)
    })
}
