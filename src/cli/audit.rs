//! `mcplock audit verify`: the hash chain of a proxy audit log.

use super::exit::{Code, fail, read_input};
use super::{AuditArgs, AuditCommand, CliError, ExitKind, Output};
use crate::core::audit::verify;
use serde_json::json;

/// Largest audit log read whole.
const MAX_AUDIT_BYTES: u64 = 1 << 30;

pub fn run(args: AuditArgs) -> Result<Output, CliError> {
    let AuditCommand::Verify(args) = args.command;
    let bytes = read_input(&args.log, MAX_AUDIT_BYTES, "audit log")?;
    let verified = verify(&bytes).map_err(|e| {
        fail(
            Code::AuditLogBroken,
            format!("{} does not hold: {e}", args.log.display()),
        )
    })?;
    if let Some(expected) = &args.head
        && *expected != verified.head
    {
        return Err(fail(
            Code::AuditLogBroken,
            format!(
                "{} chains, but its last line hashes to {}, not {expected}: lines were cut off its end (or added)",
                args.log.display(),
                verified.head
            ),
        ));
    }
    let json = json!({
        "denied": verified.denied,
        "entries": verified.entries,
        "head": verified.head,
        "log": args.log.display().to_string(),
        "withPayloads": verified.payloads,
        "verified": true,
        "withheld": verified.withheld,
    });
    let human = format!(
        "verified: {} holds {} entries in an unbroken chain ({} denied, {} withheld{})\nhead {}\n",
        args.log.display(),
        verified.entries,
        verified.denied,
        verified.withheld,
        if verified.payloads > 0 {
            format!(", {} with payloads", verified.payloads)
        } else {
            String::new()
        },
        verified.head
    );
    Ok(Output::report(ExitKind::Clean, human, json))
}
