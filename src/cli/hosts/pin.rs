//! `lock --host --pin`: each floating launch of the hosts' configs (`npx -y pkg`) pinned to the
//! version that ran. The pinned launch is scanned first; only when it runs is the config
//! rewritten (through the same checked rewrite as `wrap`, the change shown) and the pinned
//! launch locked. A wrapped entry keeps its proxy, and its wrap record is pinned with it.

use super::super::exit::{Code, fail};
use super::super::rewriting::{
    Change, after_written, read_record, rewrite_checked, rewrite_error, write_record,
};
use super::{Entry, entry_of, home_and_project};
use crate::cli::CliError;
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::text::escape;
use crate::hosts::pin::{Pins, pin_file, pin_original};
use crate::hosts::{ConfigFile, Spec};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The servers to pin: each entry as it would read pinned (to scan before anything is
/// written), and why any floating launch is left as it is.
#[derive(Default)]
pub(super) struct Plan {
    pub entries: Vec<Entry>,
    /// Lines for people: why a floating launch is left as it is.
    pub notes: Vec<String>,
}

/// The pinned arguments of every entry of a floating server that can be pinned. A server
/// already locked is pinned only with `update` (its locked launch changes).
pub(super) fn plan(
    entries: &[Entry],
    scanned: &[(String, String, ServerLock)],
    locked: Option<&Lockfile>,
    update: bool,
) -> Result<Plan, CliError> {
    let (home, project) = home_and_project()?;
    let mut plan = Plan::default();
    for (name, _, lock) in scanned {
        let Some(artifact) = lock.artifact.as_ref() else {
            continue;
        };
        if artifact.resolved().is_none_or(|r| r.pinned) {
            continue;
        }
        let mut pinned: Vec<Entry> = Vec::new();
        for entry in entries.iter().filter(|e| e.name() == name) {
            let Ok(Spec::Stdio { command, args, .. }) = &entry.found.declared.spec else {
                continue;
            };
            let Some(new_args) = crate::core::artifact::pin(command, args, artifact) else {
                continue;
            };
            let mut found = entry.found.clone();
            if let Ok(Spec::Stdio { args, .. }) = &mut found.declared.spec {
                *args = new_args;
            }
            pinned.push(entry_of(found, &project, &home));
        }
        let shown = escape(name);
        if pinned.is_empty() {
            plan.notes.push(format!(
                "{shown}: its launch floats ({}), but mcplock cannot rewrite this launch; write the exact version in the config by hand",
                artifact.describe()
            ));
            continue;
        }
        if !update && locked.is_some_and(|l| l.servers.contains_key(name)) {
            plan.notes.push(format!(
                "{shown}: not pinned: it is locked with its floating launch, and pinning changes the locked launch; rerun with --pin --update to pin it and lock the pinned launch"
            ));
            continue;
        }
        plan.entries.extend(pinned);
    }
    Ok(plan)
}

/// The pins of the servers whose pinned launch scanned, by the file that declares them.
fn pins_by_file(plan: &Plan, scanned: &BTreeSet<&str>) -> BTreeMap<ConfigFile, Pins> {
    let mut by_file: BTreeMap<ConfigFile, Pins> = BTreeMap::new();
    for entry in plan.entries.iter().filter(|e| scanned.contains(e.name())) {
        if let Ok(Spec::Stdio { args, .. }) = &entry.found.declared.spec {
            by_file.entry(entry.found.file.clone()).or_default().insert(
                (
                    entry.name().to_string(),
                    entry.found.declared.project.clone(),
                ),
                args.clone(),
            );
        }
    }
    by_file
}

/// Rewrites each config to the pinned launches of the servers in `scanned` (their pinned
/// launch ran), showing each change; returns what to print and a JSON entry per server.
pub(super) fn write(
    plan: &Plan,
    scanned: &BTreeSet<&str>,
) -> Result<(String, Vec<Value>), CliError> {
    let mut human = String::new();
    let mut decided = Vec::new();
    let mut written: Vec<String> = Vec::new();
    for (file, pins) in pins_by_file(plan, scanned) {
        let out = rewrite_checked(
            &file,
            false,
            |text| {
                let done = pin_file(file.host, text, &pins).map_err(|e| rewrite_error(&file, e))?;
                let mut summary = format!("{} launch(es) pinned", done.pinned.len());
                for (name, why) in &done.skipped {
                    let _ = write!(summary, "; {} left as it is: {}", escape(name), escape(why));
                }
                Ok(Change {
                    text: done.text,
                    edits: done.edits,
                    summary,
                })
            },
            |_| Ok(()),
            |file, before, after| {
                crate::hosts::rewrite::reads_as(file.host, file.scope, before, after, &pins)
                    .map_err(|why| {
                        fail(
                            Code::HostConfigInvalid,
                            format!(
                                "refusing to write {}: {why}; nothing was written",
                                file.path.display()
                            ),
                        )
                    })
            },
        )
        .map_err(|e| after_written(e, &written, "pinned", "lock --host"))?;
        human.push_str(&out);
        written.push(file.path.display().to_string());
        pin_the_record(&file, &pins)?;
        for ((name, _), args) in &pins {
            decided.push(json!({
                "name": name,
                "host": file.host.id(),
                "file": file.path.display().to_string(),
                "args": args,
            }));
        }
    }
    Ok((human, decided))
}

/// A wrapped entry's recorded original (what `unwrap` restores) gets the pin too, so unwrapping
/// keeps the pinned launch instead of refusing over an edit mcplock made itself.
fn pin_the_record(file: &ConfigFile, pins: &Pins) -> Result<(), CliError> {
    let mut record = read_record(file)?;
    let mut changed = false;
    for (path, text) in record.iter_mut() {
        let Some(key) = path.last() else {
            continue;
        };
        // Claude Code's per-project entries: projects.PROJECT.mcpServers.KEY.
        let project = (path.len() == 4).then(|| path[1].clone());
        if let Some(args) = pins.get(&(key.clone(), project))
            && let Some(pinned) = pin_original(file.host, text, key, args)
        {
            *text = pinned;
            changed = true;
        }
    }
    if changed {
        write_record(file, &record)?;
    }
    Ok(())
}
