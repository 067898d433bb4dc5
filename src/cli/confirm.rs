//! `mcplock lock` (and `lock --check`) on an import draft: each server started from the launch
//! the other tool recorded, each item held to what that tool approved
//! (`core::peers::confirm`), and only confirmed items locked. An item that differs, or is gone,
//! stops the whole confirmation: nothing is written, and the report says what differs.

use super::exit::{Code, fail};
use super::files::MAX_LOCKFILE_BYTES;
use super::render::pretty;
use super::{CliError, Format, LockArgs, Output};
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::peers::confirm::{ItemReport, Standing, confirm, keep_only};
use crate::core::peers::import::{DRAFT_MARKER, Draft, SignatureCheck};
use crate::core::snapshot::ItemKind;
use crate::core::text::escape;
use serde_json::{Value, json};

/// The import draft at `path`, when the file there is one (a lockfile, or nothing: `None`).
pub fn draft_at(path: &std::path::Path) -> Result<Option<Draft>, CliError> {
    let Some(bytes) = crate::edge::fs::read_bounded(path, MAX_LOCKFILE_BYTES)? else {
        return Ok(None);
    };
    // mcplock writes the marker among the first members; a lockfile is not parsed twice.
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]);
    if !head.contains(&format!("\"{DRAFT_MARKER}\"")) {
        return Ok(None);
    }
    let invalid = |why: String| {
        fail(
            Code::LockfileInvalid,
            format!(
                "{} is not a valid import draft: {why}; import again (`mcplock import FILE --update`)",
                path.display()
            ),
        )
    };
    let value =
        crate::core::json::parse_strict(&bytes).map_err(|e| invalid(e.message().to_string()))?;
    Draft::from_value(&value).map(Some).map_err(invalid)
}

/// One server of the draft, as it serves now, and its items' standings.
struct Confirmed {
    name: String,
    live: ServerLock,
    reports: Vec<ItemReport>,
}

pub async fn run(args: &LockArgs, draft: Draft) -> Result<Output, CliError> {
    let path = args.lockfile.as_path();
    if args.server.names_a_server() || args.hosts.host.is_some() || args.pin {
        return Err(fail(
            Code::Usage,
            format!(
                "{} is an import draft: confirm it first (`mcplock lock --check`, then `mcplock lock`), then lock other servers",
                path.display()
            ),
        ));
    }
    let unlaunched: Vec<String> = draft
        .servers
        .iter()
        .filter(|(_, s)| s.launch.is_none())
        .map(|(n, _)| escape(n))
        .collect();
    if !unlaunched.is_empty() {
        return Err(fail(
            Code::Usage,
            format!(
                "the draft records no launch for {}: import again giving it (`mcplock import FILE --update -- CMD`, or --host)",
                unlaunched.join(", ")
            ),
        ));
    }
    eprintln!(
        "mcplock: starting the servers {} recorded ({}); its launches are run as that file gives them",
        draft.from.title(),
        signature_words(&draft.signature)
    );
    let mut confirmed = Vec::new();
    for (name, server) in &draft.servers {
        if args.name.as_deref().is_some_and(|n| n != name) {
            continue;
        }
        let Some(launch) = &server.launch else {
            continue;
        };
        let resources = server.pins.iter().any(|p| p.kind == ItemKind::Resource);
        let live = super::locked::relaunch_launch(name, launch, resources, &args.server).await?;
        let reports = confirm(server, &live);
        confirmed.push(Confirmed {
            name: name.clone(),
            live,
            reports,
        });
    }
    let broken = confirmed
        .iter()
        .any(|c| c.reports.iter().any(|r| refused(&r.standing)));
    if broken && !args.update {
        return Err(fail(
            Code::ImportUnconfirmed,
            format!(
                "{}: what {} approved is not what is served now; nothing was locked",
                path.display(),
                draft.from.title()
            ),
        )
        .with_details(report_lines(&draft, &confirmed, true)));
    }
    if !args.check {
        write(path, &confirmed, args.update)?;
    }
    let (draft, check, update, path) = (draft, args.check, args.update, path.to_path_buf());
    Ok(Output::lazy(None, move |format| {
        Ok(match format {
            Format::Json => pretty(&report_json(&draft, &confirmed, check, &path)),
            _ => {
                let mut out = headline(&draft, &confirmed, check, update, &path);
                for line in report_lines(&draft, &confirmed, false) {
                    out.push_str(&format!("  {line}\n"));
                }
                out
            }
        })
    }))
}

fn refused(standing: &Standing) -> bool {
    matches!(standing, Standing::Differs { .. } | Standing::Missing)
}

/// The lockfile in place of the draft: every confirmed item (with `all`: everything served).
fn write(path: &std::path::Path, confirmed: &[Confirmed], all: bool) -> Result<(), CliError> {
    let _guard = crate::edge::fs::lock_directory_of(path)?;
    let mut lockfile = Lockfile::default();
    for c in confirmed {
        let kept = keep_only(c.live.clone(), &c.reports, |s| {
            all || *s == Standing::Confirmed
        });
        lockfile.servers.insert(c.name.clone(), kept);
    }
    super::files::write_lockfile(path, &lockfile)
}

fn signature_words(signature: &SignatureCheck) -> String {
    match signature {
        SignatureCheck::Absent => "unsigned".into(),
        SignatureCheck::NotChecked { key } => format!("signed by {key}, not checked"),
        SignatureCheck::Valid { key, .. } => format!("its signature by {key} held at import"),
    }
}

fn count(confirmed: &[Confirmed], pick: impl Fn(&Standing) -> bool) -> usize {
    confirmed
        .iter()
        .flat_map(|c| &c.reports)
        .filter(|r| pick(&r.standing))
        .count()
}

fn headline(
    draft: &Draft,
    confirmed: &[Confirmed],
    check: bool,
    update: bool,
    path: &std::path::Path,
) -> String {
    let ok = count(confirmed, |s| *s == Standing::Confirmed);
    let unpinned = count(confirmed, |s| *s == Standing::NotPinned);
    let verb = if check { "would lock" } else { "locked" };
    let peer = draft.from.as_str();
    if update {
        return format!(
            "{verb} everything {} server(s) serve in {} (--update: you approve what {peer} did not): {ok} item(s) confirmed by {peer}\n",
            confirmed.len(),
            path.display()
        );
    }
    let next = if check {
        format!("`mcplock lock{}` locks them", lockfile_flag(path))
    } else {
        format!(
            "{unpinned} item(s) {peer} did not pin were left out: `mcplock review{}` shows each to accept or reject",
            lockfile_flag(path)
        )
    };
    format!(
        "{verb} {ok} item(s) of {} server(s) in {}, each confirmed by {peer}'s own hash; {next}\n",
        confirmed.len(),
        path.display()
    )
}

fn lockfile_flag(path: &std::path::Path) -> String {
    if path == std::path::Path::new("mcp-lock.json") {
        String::new()
    } else {
        format!(" --lockfile {}", path.display())
    }
}

/// A line per item that is not simply confirmed, and one per server for its confirmed items
/// (naming what the other tool's hashes did not cover).
fn report_lines(draft: &Draft, confirmed: &[Confirmed], refusal: bool) -> Vec<String> {
    let peer = draft.from.as_str();
    let mut lines = Vec::new();
    for c in confirmed {
        let server = escape(&c.name);
        let mut ok = Vec::new();
        let mut uncovered = std::collections::BTreeSet::new();
        for r in &c.reports {
            let item = format!("{server}: {} {}", r.kind.noun(), escape(&r.key));
            match &r.standing {
                Standing::Confirmed => {
                    ok.push(escape(&r.key));
                    let served = c.live.items(r.kind).and_then(|i| i.get(&r.key)).map(|d| d.to_map());
                    uncovered.extend(r.uncovered(served.as_ref()));
                }
                Standing::Differs { recipes, whole: false } => lines.push(format!(
                    "differs: {item}: {} is not what {peer} approved ({})",
                    covered_words(&r.covers),
                    recipes.join(", ")
                )),
                Standing::Differs { whole: true, .. } => lines.push(format!(
                    "differs: {item}: {peer} hashed every {} at once, and that hash no longer holds (which one changed, its hash cannot tell)",
                    r.kind.noun()
                )),
                Standing::Missing => lines.push(format!("gone: {item}: {peer} approved it; the server no longer offers it")),
                Standing::NotPinned if !refusal => lines.push(format!(
                    "not pinned: {item}: {peer} approved nothing of it; left out of the lock until reviewed"
                )),
                Standing::NotPinned => {}
            }
        }
        if !ok.is_empty() && !refusal {
            let less = if uncovered.is_empty() {
                String::new()
            } else {
                let fields: Vec<String> = uncovered.into_iter().collect();
                format!(
                    "; {peer} did not pin their {}, locked as served now",
                    fields.join(", ")
                )
            };
            lines.push(format!("confirmed: {server}: {}{less}", ok.join(", ")));
        }
    }
    if refusal {
        lines.push("to lock what is served now anyway (you approve it, not the other tool), run `mcplock lock --update`".into());
    }
    lines
}

fn covered_words(covers: &[String]) -> String {
    match covers {
        [] => "it".into(),
        [one] => format!("its {one}"),
        more => format!("its {}", more.join(" or ")),
    }
}

fn report_json(
    draft: &Draft,
    confirmed: &[Confirmed],
    check: bool,
    path: &std::path::Path,
) -> Value {
    let servers: serde_json::Map<String, Value> = confirmed
        .iter()
        .map(|c| {
            let items: Vec<Value> = c
                .reports
                .iter()
                .map(|r| {
                    let (status, recipes) = match &r.standing {
                        Standing::Confirmed => ("confirmed", Vec::new()),
                        Standing::Differs { recipes, .. } => ("differs", recipes.clone()),
                        Standing::NotPinned => ("not-pinned", Vec::new()),
                        Standing::Missing => ("gone", Vec::new()),
                    };
                    json!({"kind": r.kind.field(), "key": r.key, "status": status, "covers": r.covers, "differs": recipes})
                })
                .collect();
            (c.name.clone(), json!({"items": items}))
        })
        .collect();
    json!({
        "from": draft.from.as_str(),
        "lockfile": path.display().to_string(),
        "servers": servers,
        "status": if check { "would-lock" } else { "locked" },
    })
}
