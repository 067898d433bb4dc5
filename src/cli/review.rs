//! `mcplock review`: relaunch what is locked, show what drifted, and accept or reject each
//! change; accepted changes are re-locked (bound to the digest shown), each decision recorded,
//! and the lockfile re-signed or its stale signature named.

use super::exit::{Code, fail};
use super::locked::relaunch_locked;
use super::{CliError, Output, ReviewArgs};
use crate::core::canonical::Digest;
use crate::core::diff::{Change, diff};
use crate::core::lockfile::Lockfile;
use crate::core::review::{Decidable, apply, decidables};
use crate::core::text::escape;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// What became of one changed thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Accepted,
    Rejected,
    Undecided,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
            Decision::Undecided => "undecided",
        }
    }
}

/// One `--accept`/`--reject` argument: what, and the digest it was reviewed at (optional).
struct Choice {
    what: Decidable,
    reviewed: Option<Digest>,
    used: bool,
}

fn choices(args: &[String], flag: &str) -> Result<Vec<Choice>, CliError> {
    args.iter()
        .map(|arg| {
            let (what, digest) = match arg.rsplit_once('@') {
                Some((what, digest)) if digest.starts_with("sha256:") => (what, Some(digest)),
                _ => (arg.as_str(), None),
            };
            let reviewed = match digest {
                Some(d) => Some(Digest::parse(d).ok_or_else(|| {
                    fail(Code::Usage, format!("{flag} {arg}: {d} is not a sha256: digest"))
                })?),
                None => None,
            };
            let what = Decidable::parse(what).ok_or_else(|| {
                fail(
                    Code::Usage,
                    format!("{flag} {arg}: expected SERVER or SERVER/KIND/KEY (KIND: tools, prompts, resourceTemplates, resources), optionally @sha256:..."),
                )
            })?;
            Ok(Choice {
                what,
                reviewed,
                used: false,
            })
        })
        .collect()
}

pub async fn run(args: ReviewArgs) -> Result<Output, CliError> {
    let path = args.lockfile.as_path();
    let started = std::time::SystemTime::now();
    let (old, live) = relaunched(&args).await?;
    let changes = diff(&old, &live);
    let mut accept = choices(&args.accept, "--accept")?;
    let mut reject = choices(&args.reject, "--reject")?;
    let shown = decidables(&changes, &live.servers);
    let interactive = args.accept.is_empty() && args.reject.is_empty() && !args.accept_all && {
        use std::io::IsTerminal;
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    };
    if interactive && !changes.is_empty() {
        eprint!("{}", super::changes::human_body(&changes, false));
    }
    let mut decided = Vec::with_capacity(shown.len());
    for (what, served) in &shown {
        let decision = decide(what, *served, &mut accept, &mut reject, &args, interactive)?;
        decided.push((what.clone(), *served, decision));
    }
    if let Some(unused) = accept.iter().chain(&reject).find(|c| !c.used) {
        let changed: Vec<String> = shown.iter().map(|(w, _)| w.to_string()).collect();
        return Err(fail(
            Code::Usage,
            format!(
                "{} names nothing that changed (what changed: {})",
                escape(&unused.what.to_string()),
                if changed.is_empty() {
                    "nothing".to_string()
                } else {
                    escape(&changed.join(", "))
                }
            ),
        ));
    }
    let accepted: BTreeSet<Decidable> = decided
        .iter()
        .filter(|(_, _, d)| *d == Decision::Accepted)
        .map(|(w, _, _)| w.clone())
        .collect();
    let mut notes = Vec::new();
    let written = !accepted.is_empty() && !args.dry_run;
    if written {
        let mut update = super::files::update(path, started)?;
        let mut lockfile = update.current.take().unwrap_or_default();
        if lockfile != old_whole(&lockfile, &old) {
            return Err(fail(
                Code::LockChanged,
                format!(
                    "{} changed while this review ran; nothing was written: review again",
                    path.display()
                ),
            ));
        }
        for name in accepted
            .iter()
            .map(|d| d.server.clone())
            .collect::<BTreeSet<_>>()
        {
            if let (Some(locked), Some(served)) = (old.servers.get(&name), live.servers.get(&name))
            {
                let reviewed = apply(&name, locked, served, &accepted);
                lockfile.servers.insert(name, reviewed);
            }
        }
        // Re-signed below: the stale signatures it names are made fresh.
        update.write(&lockfile)?;
        record(path, &decided, &args)?;
        notes.extend(resign(&args, path).await?);
    }
    Ok(report(&args, changes, decided, written, notes))
}

/// The lockfile as read before the review, for the servers it compared (a server the review
/// did not relaunch keeps what the file holds now).
fn old_whole(now: &Lockfile, old: &Lockfile) -> Lockfile {
    let mut whole = now.clone();
    for (name, entry) in &old.servers {
        whole.servers.insert(name.clone(), entry.clone());
    }
    whole
}

/// The locked servers and what they serve now: relaunched from the lockfile, or the servers
/// the hosts' configs run.
async fn relaunched(args: &ReviewArgs) -> Result<(Lockfile, Lockfile), CliError> {
    if args.hosts.host.is_none() {
        return relaunch_locked(
            &args.lockfile,
            args.name.as_deref(),
            &args.server,
            &args.trust,
        )
        .await;
    }
    super::hosts::against_lock(&args.lockfile, &args.trust, &args.hosts, &args.server).await
}

/// The decision on `what`: from `--accept`/`--reject` (held to the digest given with it), else
/// `--accept-all`, else asked on a terminal, else undecided.
fn decide(
    what: &Decidable,
    served: Option<Digest>,
    accept: &mut [Choice],
    reject: &mut [Choice],
    args: &ReviewArgs,
    interactive: bool,
) -> Result<Decision, CliError> {
    let matches =
        |c: &Choice| c.what == *what || (c.what.item.is_none() && c.what.server == what.server);
    for (choices, decision) in [(accept, Decision::Accepted), (reject, Decision::Rejected)] {
        if let Some(choice) = choices.iter_mut().find(|c| matches(c)) {
            choice.used = true;
            if let Some(reviewed) = choice.reviewed
                && decision == Decision::Accepted
                && Some(reviewed) != served
            {
                return Err(fail(
                    Code::Drift,
                    format!(
                        "{} is served as {} now, not as the {reviewed} you reviewed: it changed again; nothing was written: see it with `mcplock review --dry-run`, then decide again",
                        escape(&what.to_string()),
                        served
                            .map_or_else(|| "nothing (it is gone)".to_string(), |d| d.to_string())
                    ),
                ));
            }
            return Ok(decision);
        }
    }
    if args.accept_all {
        return Ok(Decision::Accepted);
    }
    if interactive {
        return ask(what, served);
    }
    Ok(Decision::Undecided)
}

fn ask(what: &Decidable, served: Option<Digest>) -> Result<Decision, CliError> {
    let at = served.map_or_else(|| "removed".to_string(), |d| d.to_string());
    eprint!("accept {} ({at})? [y/N] ", escape(&what.to_string()));
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| fail(Code::Usage, format!("cannot read the answer: {e}")))?;
    Ok(match line.trim() {
        "y" | "Y" | "yes" => Decision::Accepted,
        _ => Decision::Rejected,
    })
}

/// Appends one line per decision to `LOCKFILE.reviews.jsonl`: who, when, why, what, the digest
/// reviewed and the decision.
fn record(
    path: &Path,
    decided: &[(Decidable, Option<Digest>, Decision)],
    args: &ReviewArgs,
) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut log_path = path.as_os_str().to_owned();
    log_path.push(".reviews.jsonl");
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_string());
    let at = crate::edge::clock::now();
    let mut lines = String::new();
    for (what, served, decision) in decided {
        let line = json!({
            "at": at,
            "by": by,
            "decision": decision.as_str(),
            "digest": served.map(|d| d.to_string()),
            "reason": args.reason,
            "what": what.to_string(),
        });
        let canonical = crate::core::canonical::to_canonical(&line);
        let _ = writeln!(lines, "{}", String::from_utf8_lossy(&canonical));
    }
    let failed = |e: std::io::Error| {
        fail(
            Code::WriteFailed,
            format!(
                "cannot record the review in {}: {e}",
                Path::new(&log_path).display()
            ),
        )
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(failed)?;
    file.write_all(lines.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

/// With `--sign-key`, the lockfile signed again; otherwise what to do about its signature.
async fn resign(args: &ReviewArgs, path: &Path) -> Result<Vec<String>, CliError> {
    let Some(key) = &args.sign_key else {
        return Ok(super::files::stale_signatures(path));
    };
    let signed = super::keys::sign(super::SignArgs {
        lockfile: path.to_path_buf(),
        lockfile_flag: None,
        key: Some(key.clone()),
        sigstore: false,
        identity_token: None,
        fulcio_url: crate::crypto::sigstore::PUBLIC_GOOD_FULCIO.to_string(),
        rekor_url: crate::crypto::sigstore::PUBLIC_GOOD_REKOR.to_string(),
        trusted_root: None,
        output: None,
    })
    .await?;
    drop(signed);
    Ok(vec![format!(
        "signed {} again with {}",
        path.display(),
        key.display()
    )])
}

fn report(
    args: &ReviewArgs,
    changes: Vec<Change>,
    decided: Vec<(Decidable, Option<Digest>, Decision)>,
    written: bool,
    notes: Vec<String>,
) -> Output {
    let undecided = decided
        .iter()
        .filter(|(_, _, d)| *d == Decision::Undecided)
        .count();
    let code = (undecided > 0).then_some(Code::Drift);
    let lockfile = args.lockfile.display().to_string();
    let json = json!({
        "lockfile": lockfile,
        "written": written,
        "decisions": decided.iter().map(|(what, served, decision)| json!({
            "what": what.to_string(),
            "digest": served.map(|d| d.to_string()),
            "decision": decision.as_str(),
        })).collect::<Vec<Value>>(),
        "changes": changes.len(),
        "notes": notes,
    });
    let mut human = String::new();
    if changes.is_empty() {
        human.push_str("nothing to review: every server offers exactly what is locked\n");
        return Output::report(code, human, json);
    }
    human.push_str(&super::changes::human_body(&changes, false));
    human.push('\n');
    for (what, served, decision) in &decided {
        let at = served.map_or_else(|| "removed".to_string(), |d| d.to_string());
        let _ = writeln!(
            human,
            "{:<9} {} ({at})",
            decision.as_str(),
            escape(&what.to_string())
        );
    }
    if written {
        let _ = writeln!(
            human,
            "\nre-locked what was accepted in {lockfile}; what was rejected stays as locked (the proxy keeps withholding it)"
        );
    } else if args.dry_run {
        human.push_str("\n--dry-run: nothing written\n");
    }
    if undecided > 0 {
        let _ = writeln!(
            human,
            "{undecided} change(s) undecided, kept as locked: decide each with --accept WHAT[@DIGEST] or --reject WHAT (or run review on a terminal)"
        );
    }
    for note in &notes {
        let _ = writeln!(human, "note: {}", escape(note));
    }
    Output::report(code, human, json)
}
