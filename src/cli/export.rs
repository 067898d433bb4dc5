//! `mcplock export`: the lockfile in another tool's format (`core::peers`), what it cannot
//! carry said on stderr.

use super::exit::{Code, fail};
use super::files::load_lockfile;
use super::{CliError, ExportArgs, Output};
use crate::core::peers::mcp_lock_v1::export::{Carried, ExportOptions, export};

pub fn run(args: ExportArgs) -> Result<Output, CliError> {
    let lock = load_lockfile(&args.lockfile)?.ok_or_else(|| {
        fail(
            Code::InputMissing,
            format!(
                "{} does not exist; lock first (`mcplock lock -- CMD`)",
                args.lockfile.display()
            ),
        )
    })?;
    let at = args.at.clone().unwrap_or_else(crate::edge::clock::now);
    let options = ExportOptions {
        client: &args.client,
        at: &at,
    };
    let (document, carried) = export(&lock, &options);
    for line in carried_lines(&carried) {
        eprintln!("mcplock: {line}");
    }
    let text = super::render::pretty(&document);
    match &args.output {
        None => Ok(Output::text(None, text)),
        Some(path) => {
            crate::edge::fs::write_atomic(path, text.as_bytes())
                .map_err(|e| fail(Code::WriteFailed, format!("{}: {e}", path.display())))?;
            eprintln!("mcplock: wrote {} (mcp-lock/1)", path.display());
            Ok(Output::text(None, String::new()))
        }
    }
}

/// What happened to each server, a line each, for people.
fn carried_lines(carried: &[Carried]) -> Vec<String> {
    let mut out = Vec::new();
    for item in carried {
        match item {
            Carried::Entry { server, lost } if lost.is_empty() => {
                out.push(format!("{server}: exported whole"));
            }
            Carried::Entry { server, lost } => {
                out.push(format!("{server}: exported without {}", lost.join("; ")));
            }
            Carried::LeftOut { server, why } => {
                out.push(format!("{server}: left out: {why}"));
            }
        }
    }
    out
}
