//! Opening the lockfile a command will act on (relaunch its servers, enforce it, compare a
//! host with it): its signature checked when a key or a Sigstore identity is given, refused
//! with why, then read strictly. The one way `proxy`, `gateway`, `diff`/`lock --check`
//! relaunches and `--host` comparisons open a lockfile they trust.

use super::exit::{Code, fail};
use super::{CliError, SignatureCheck};
use crate::core::lockfile::Lockfile;
use crate::core::signature::{Covered, header_room, put_header};
use std::path::Path;

/// A lockfile read strictly, and who signed it when a signature was checked.
pub struct Trusted {
    pub lockfile: Lockfile,
    pub signer: Option<String>,
}

/// Opens `path` under `trust`. A signature that does not hold is refused, the refusal saying
/// what the command was about to do (`refusing`, e.g. "refusing to start the commands
/// recorded in"). Without a key or identity the signature is not checked (`signer` is `None`):
/// the caller says so or refuses.
pub fn open(path: &Path, trust: &SignatureCheck, refusing: &str) -> Result<Trusted, CliError> {
    let refused = |mut e: CliError| {
        e.headline = format!("{refusing} {}: {}", path.display(), e.headline);
        e
    };
    let invalid = |e: crate::core::lockfile::LockfileError| {
        fail(
            Code::LockfileInvalid,
            format!("{} is not a valid lockfile: {e}", path.display()),
        )
    };
    let text = super::exit::read_input(path, super::files::MAX_LOCKFILE_BYTES, "lockfile")?;
    // In the form mcplock writes: one pass; the signature is checked over the canonical bytes
    // the definitions are then taken from, and no definition is built as a tree.
    if let Some(mut streamed) = Lockfile::stream_text(&text, header_room()) {
        drop(text);
        let signer = match trust.verify_args(path) {
            Some(verify) => {
                let start = put_header(&mut streamed.canonical);
                let covered = Covered::in_frame(&streamed.canonical, start);
                Some(super::keys::verify_covered(&verify, covered).map_err(refused)?)
            }
            None => None,
        };
        let lockfile = Lockfile::from_streamed(streamed).map_err(invalid)?;
        return Ok(Trusted { lockfile, signer });
    }
    let document = super::files::parse_lockfile_json(path, &text)?;
    drop(text);
    let signer = match trust.verify_args(path) {
        Some(verify) => Some(super::keys::verify_document(&verify, &document).map_err(refused)?),
        None => None,
    };
    let lockfile = Lockfile::from_owned_value(document).map_err(invalid)?;
    Ok(Trusted { lockfile, signer })
}

/// Opens the lockfile an enforcement point (`proxy`, `gateway`) enforces: signed, or unsigned
/// only with `--allow-unsigned`, which is said on stderr at every start (`who`: who reads it,
/// `what`: what its writer then decides).
pub fn enforced(
    path: &Path,
    trust: &SignatureCheck,
    allow_unsigned: bool,
    (who, what): (&str, &str),
) -> Result<Lockfile, CliError> {
    let trusted = open(path, trust, "refusing to enforce")?;
    if trusted.signer.is_none() {
        if !allow_unsigned {
            return Err(fail(
                Code::Usage,
                format!(
                    "the {who} enforces a signed lockfile: pass --key PUBLIC (or --bundle with --identity and --issuer), or --allow-unsigned"
                ),
            ));
        }
        let text = format!(
            "WARNING: {} is not verified (--allow-unsigned): anyone who can write it decides {what}",
            path.display()
        );
        crate::edge::log::warn(who, &text, &[]);
    }
    Ok(trusted.lockfile)
}
