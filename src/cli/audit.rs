//! `mcplock audit verify`: the hash chain of a proxy audit log.

use super::exit::{Code, fail, read_input};
use super::{AuditArgs, AuditCommand, CliError, Output};
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
    let sealed = match &args.key {
        Some(key) => Some(check_seal(&args.log, &verified, key)?),
        None => None,
    };
    let json = json!({
        "checkpoints": verified.checkpoints.len(),
        "sealed": sealed.is_some(),
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
    let human = match sealed {
        Some(note) => format!("{human}{note}\n"),
        None => human,
    };
    Ok(Output::report(None, human, json))
}

/// `--key`: every checkpoint verifies with the key, and every session ends with a signed close
/// (the one still being written excepted). Returns what to tell about the seal.
fn check_seal(
    log: &std::path::Path,
    verified: &crate::core::audit::Verified,
    key: &std::path::Path,
) -> Result<String, CliError> {
    let (public, key_id) = super::keys::load_public_key(key)?;
    let broken = |message: String| fail(Code::AuditLogBroken, message);
    if verified.checkpoints.is_empty() {
        return Err(broken(format!(
            "{} has no signed checkpoints: its proxy did not run with --audit-key, so a cut end cannot be told (check it with --head instead)",
            log.display()
        )));
    }
    for checkpoint in &verified.checkpoints {
        if checkpoint.key_id != key_id.to_string()
            || !public.verify(&checkpoint.signed, &checkpoint.signature)
        {
            return Err(broken(format!(
                "{}: the checkpoint at line {} does not verify with {}",
                log.display(),
                checkpoint.line,
                key.display()
            )));
        }
    }
    let mut unclosed = verified.unclosed();
    let writer = crate::edge::audit_log::is_being_written(log);
    let last_open = verified
        .checkpoints
        .last()
        .filter(|c| c.mark == crate::core::audit::Mark::Open)
        .map(|c| c.line);
    if writer.is_some() {
        // The session still being written has not closed yet.
        unclosed.retain(|line| Some(*line) != last_open);
    }
    if !unclosed.is_empty() {
        let mut error = broken(format!(
            "{}: {} session(s) do not end with a signed close: lines were cut off there, or the proxy writing them was killed; compare with a head kept elsewhere (`mcplock audit verify --head SHA256`) and keep this log as evidence",
            log.display(),
            unclosed.len()
        ));
        error.details = unclosed
            .iter()
            .map(|line| format!("the session from line {line} has no signed close"))
            .collect();
        return Err(error);
    }
    Ok(match writer {
        Some(holder) => format!(
            "sealed: {} checkpoints verify; the last session is still being written ({holder})",
            verified.checkpoints.len()
        ),
        None => format!(
            "sealed: {} checkpoints verify, and every session ends with a signed close",
            verified.checkpoints.len()
        ),
    })
}
