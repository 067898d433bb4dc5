//! Taking approval away and giving it one tool at a time: `mcplock revoke` and reading a
//! revocation list (with its signature when it has one) for `verify`, `policy check` and the
//! proxy; `mcplock approve`, which records an approval of a tool as locked in the lockfile.

use super::exit::{Code, fail, read_input};
use super::files::default_signature_path;
use super::keys::{load_private_key, load_public_key, read_envelope};
use super::{CliError, Output, RevokeArgs};
use crate::core::canonical::Digest;
use crate::core::revocation::{Revocations, Revoked};
use crate::core::signature::{Envelope, Signed};
use crate::core::snapshot::ItemKind;
use crate::edge::fs::{lock_directory_of, read_bounded, write_atomic};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Largest revocation list read.
pub(super) const MAX_LIST_BYTES: u64 = 64 << 20;

/// Reads a revocation list. When `FILE.sig` exists it must verify with `key` (a list signed by
/// someone else, or edited after signing, is refused). When `signed` (the run checks the
/// lockfile's signature), a list without a signature is refused too: whoever can write an
/// unsigned list could lift a revocation with it.
pub fn load(path: &Path, key: Option<&Path>, signed: bool) -> Result<Revocations, CliError> {
    let bytes = read_input(path, MAX_LIST_BYTES, "revocation list")?;
    let list = Revocations::parse(&bytes).map_err(|e| {
        fail(
            Code::RevocationsInvalid,
            format!("{} is not a valid revocation list: {e}", path.display()),
        )
    })?;
    let signature = default_signature_path(path);
    if !signature.exists() {
        if signed {
            return Err(fail(
                Code::RevocationsUntrusted,
                format!(
                    "{} is not signed, and this run checks signatures: anyone who can write it could lift a revocation; sign it (mcplock revoke ... --key PRIVATE)",
                    path.display()
                ),
            ));
        }
        return Ok(list);
    }
    let Some(key) = key else {
        return Err(fail(
            Code::Usage,
            format!(
                "{} is signed ({}): give --key PUBLIC (or --revocations-key PUBLIC) to check it",
                path.display(),
                signature.display()
            ),
        ));
    };
    let (public, key_id) = load_public_key(key)?;
    let (envelope, _) = read_envelope(&signature)?;
    let signed_bytes = Signed::Revocations.signed_bytes(&list.canonical());
    if envelope.key_id != key_id || !public.verify(&signed_bytes, &envelope.signature) {
        return Err(fail(
            Code::SignatureInvalid,
            format!(
                "the signature of revocation list {} does not hold with {}",
                path.display(),
                key.display()
            ),
        ));
    }
    Ok(list)
}

/// Where the last accepted revocation list is remembered across restarts: a copy of it (and
/// of its signature), in a directory of the user's choosing, named after the list's path.
pub struct Remembered {
    copy: PathBuf,
}

impl Remembered {
    pub fn new(directory: &Path, list: &Path) -> Remembered {
        let absolute = std::path::absolute(list).unwrap_or_else(|_| list.to_path_buf());
        let digest = Digest::of_bytes(absolute.as_os_str().as_encoded_bytes()).to_string();
        let short = digest
            .trim_start_matches("sha256:")
            .get(..16)
            .unwrap_or("list");
        Remembered {
            copy: directory.join(format!("mcplock-revocations-{short}.json")),
        }
    }

    /// The list accepted last, checked as the list itself is; `None` when none was remembered.
    pub fn read(&self, key: Option<&Path>, signed: bool) -> Result<Option<Revocations>, CliError> {
        if !self.copy.exists() {
            return Ok(None);
        }
        load(&self.copy, key, signed).map(Some)
    }

    /// Remembers `list` (read from `source`) as the one accepted last.
    pub fn write(&self, list: &Revocations, source: &Path) -> Result<(), CliError> {
        let failed = |e: crate::edge::fs::FsError| fail(Code::WriteFailed, e.to_string());
        let signature = default_signature_path(source);
        let copy_signature = default_signature_path(&self.copy);
        match read_bounded(&signature, MAX_LIST_BYTES).map_err(failed)? {
            Some(bytes) => write_atomic(&copy_signature, &bytes).map_err(failed)?,
            None if copy_signature.exists() => std::fs::remove_file(&copy_signature)
                .map_err(|e| fail(Code::WriteFailed, e.to_string()))?,
            None => {}
        }
        write_atomic(&self.copy, &list.to_pretty()).map_err(failed)
    }

    pub fn path(&self) -> &Path {
        &self.copy
    }
}

/// `verify --revocations`: after the signature and the lockfile hold, exit 1 naming every
/// locked server or item the list revokes.
pub fn after_verify(
    verified: Output,
    list: &Path,
    lockfile: &Path,
    key: Option<&Path>,
) -> Result<Output, CliError> {
    let revocations = load(list, key, true)?;
    let locked = super::files::load_lockfile(lockfile)?.unwrap_or_default();
    let revoked: Vec<String> = revocations
        .applying_to(&locked)
        .into_iter()
        .map(|(_, _, r)| {
            format!(
                "{} is revoked: {} ({})",
                r.describe(),
                crate::core::text::escape(&r.reason),
                r.revoked_at
            )
        })
        .collect();
    if revoked.is_empty() {
        return Ok(verified);
    }
    let mut error = fail(
        Code::Revoked,
        format!(
            "the signature holds, but {} thing(s) {} approves are revoked in {}",
            revoked.len(),
            lockfile.display(),
            list.display()
        ),
    );
    error.details = revoked;
    Err(error)
}

pub fn revoke(args: RevokeArgs) -> Result<Output, CliError> {
    let mut entry = revocation_of(&args)?;
    let path = args.list.as_path();
    let _guard = lock_directory_of(path)?;
    // Adding only takes more approval away: the list is read as it is (a signed one is signed
    // again below, or loses its now stale signature).
    let mut list = match read_bounded(path, MAX_LIST_BYTES)? {
        Some(bytes) => Revocations::parse(&bytes).map_err(|e| {
            fail(
                Code::RevocationsInvalid,
                format!("{} is not a valid revocation list: {e}", path.display()),
            )
        })?,
        None => Revocations::default(),
    };
    // A new sequence for every change: a consumer refuses a list older than one it accepted.
    list.sequence += 1;
    list.issued_at = Some(crate::edge::clock::now());
    entry.revoked_at = crate::edge::clock::now();
    let described = entry.describe();
    list.entries.push(entry);
    write_atomic(path, &list.to_pretty())?;
    sign_again(path, &list, args.key.as_deref())?;
    let json = json!({
        "list": path.display().to_string(),
        "revoked": described,
        "entries": list.entries.len(),
        "signed": args.key.is_some(),
        "sequence": list.sequence,
    });
    let human = format!(
        "revoked {described} in {} ({} entr{}, sequence {}{})\n",
        path.display(),
        list.entries.len(),
        if list.entries.len() == 1 { "y" } else { "ies" },
        list.sequence,
        if args.key.is_some() {
            ", signed"
        } else {
            ", unsigned: runs that check signatures refuse it"
        }
    );
    Ok(Output::report(None, human, json))
}

/// The entry `revoke`'s flags describe (its time is set when it is added), or why they do not
/// describe one.
fn revocation_of(args: &RevokeArgs) -> Result<Revoked, CliError> {
    let item = match (&args.tool, &args.prompt, &args.template) {
        (Some(n), None, None) => Some((ItemKind::Tool, n.clone())),
        (None, Some(n), None) => Some((ItemKind::Prompt, n.clone())),
        (None, None, Some(n)) => Some((ItemKind::ResourceTemplate, n.clone())),
        (None, None, None) => None,
        _ => {
            return Err(fail(
                Code::Usage,
                "revoke one thing at a time: --tool, --prompt or --template",
            ));
        }
    };
    let digest = match &args.digest {
        None => None,
        Some(d) => Some(Digest::parse(d).ok_or_else(|| {
            fail(
                Code::Usage,
                format!("--digest {d:?}: expected sha256: and 64 hex digits"),
            )
        })?),
    };
    if args.reason.trim().is_empty() {
        return Err(fail(
            Code::Usage,
            "--reason must say why (it is what every later refusal shows)",
        ));
    }
    Ok(Revoked {
        server: args.server.clone(),
        item,
        digest,
        reason: args.reason.clone(),
        revoked_at: String::new(),
    })
}

/// After a change to the list at `path`: signed again with `key`, or, without one, its old
/// signature removed (it no longer covers the list: an unsigned list is honoured where
/// signatures are not required, a stale signature would make it refused everywhere).
fn sign_again(path: &Path, list: &Revocations, key: Option<&Path>) -> Result<(), CliError> {
    let signature = default_signature_path(path);
    match key {
        Some(key_path) => {
            let key = load_private_key(key_path)?;
            let envelope = Envelope {
                key_id: key.public().key_id()?,
                signature: key.sign(&Signed::Revocations.signed_bytes(&list.canonical())),
            };
            write_atomic(&signature, &envelope.to_pretty())?;
        }
        None if signature.exists() => {
            std::fs::remove_file(&signature).map_err(|e| {
                fail(
                    Code::WriteFailed,
                    format!("cannot remove {}: {e}", signature.display()),
                )
            })?;
            eprintln!(
                "mcplock: warning: {} was signed; it is unsigned now, and a proxy or verify that checks signatures refuses it (pass --key to sign it again)",
                path.display()
            );
        }
        None => {}
    }
    Ok(())
}

/// `mcplock approve`: records an approval of one tool as locked now.
pub fn approve(args: super::ApproveArgs) -> Result<Output, CliError> {
    if args.by.trim().is_empty() || args.reason.trim().is_empty() {
        return Err(fail(
            Code::Usage,
            "--by and --reason must say who approves and why",
        ));
    }
    let path = args.lockfile.as_path();
    let _guard = lock_directory_of(path)?;
    let mut lockfile = super::files::load_lockfile(path)?.ok_or_else(|| {
        fail(
            Code::InputMissing,
            format!("{} does not exist; lock first", path.display()),
        )
    })?;
    let server = lockfile.servers.get(&args.server).ok_or_else(|| {
        fail(
            Code::Usage,
            format!("{} locks no server {:?}", path.display(), args.server),
        )
    })?;
    let digest = server
        .item_digests()
        .get(&ItemKind::Tool)
        .and_then(|d| d.get(&args.tool))
        .copied()
        .ok_or_else(|| {
            fail(
                Code::ServerNotFound,
                format!("server {:?} locks no tool {:?}", args.server, args.tool),
            )
        })?;
    lockfile.approvals.push(crate::core::lockfile::Approval {
        server: args.server.clone(),
        tool: args.tool.clone(),
        digest,
        by: args.by.clone(),
        at: crate::edge::clock::now(),
        reason: args.reason.clone(),
    });
    lockfile.approvals.sort();
    lockfile.approvals.dedup();
    crate::edge::fs::write_atomic_bounded(
        path,
        &lockfile.to_pretty(),
        super::files::MAX_LOCKFILE_BYTES,
    )?;
    let signed = default_signature_path(path).exists();
    let json = json!({
        "approved": {"server": args.server, "tool": args.tool, "digest": digest.to_string()},
        "lockfile": path.display().to_string(),
        "resign": signed,
    });
    let human = format!(
        "approved tool {:?} of {:?} as locked ({digest}) in {}{}\n",
        args.tool,
        args.server,
        path.display(),
        if signed {
            "; its signature no longer covers it: sign it again (mcplock sign)"
        } else {
            ""
        }
    );
    Ok(Output::report(None, human, json))
}
