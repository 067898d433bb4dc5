//! `mcplock import`: another tool's lockfile read into an import draft (`core::peers::import`),
//! written where the lockfile goes and confirmed by `mcplock lock` (`super::confirm`).

use super::exit::{Code, fail};
use super::files::MAX_LOCKFILE_BYTES;
use super::render::pretty;
use super::{CliError, Format, ImportArgs, Output};
use crate::core::launch::Launch;
use crate::core::peers::import::{
    DRAFT_MARKER, Draft, DraftServer, Peer, SignatureCheck, detect, read,
};
use crate::core::peers::{mcp_lock_v1, toolpin};
use crate::core::text::escape;
use serde_json::{Value, json};
use std::path::Path;

pub fn run(args: ImportArgs) -> Result<Output, CliError> {
    let bytes = super::exit::read_input(&args.file, MAX_LOCKFILE_BYTES, "the file to import")?;
    let document = crate::core::json::parse_strict(&bytes).map_err(|e| {
        fail(
            Code::JsonInvalid,
            format!(
                "{} is not strict JSON: {}",
                args.file.display(),
                e.message()
            ),
        )
    })?;
    let from = format_of(&args, &document)?;
    let invalid = |why: String| {
        fail(
            Code::PeerFileInvalid,
            format!(
                "{} is not {} mcplock can read: {why}; import the file as that tool wrote it (or name its format with --from)",
                args.file.display(),
                from.title()
            ),
        )
    };
    let mut servers = read(from, &document, &default_name(&args)).map_err(invalid)?;
    // --name names the one server of a file that pins one, over any name the file gives.
    if let (Some(name), 1) = (&args.name, servers.len())
        && let Some((_, server)) = servers.pop_first()
    {
        servers.insert(name.clone(), server);
    }
    fill_launches(&args, &mut servers)?;
    let signature = signature_of(&args, from, &document)?;
    let draft = Draft {
        from,
        source: args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source_sha256: crate::core::canonical::Digest::of_bytes(&bytes).to_string(),
        signature,
        servers,
    };
    refuse_overwriting(&args)?;
    let text = pretty(&draft.to_value());
    crate::edge::fs::write_atomic(&args.lockfile, text.as_bytes()).map_err(|e| {
        fail(
            Code::WriteFailed,
            format!("{}: {e}", args.lockfile.display()),
        )
    })?;
    let path = args.lockfile.clone();
    let source = args.file.display().to_string();
    Ok(Output::lazy(None, move |format| {
        Ok(match format {
            Format::Json => pretty(&summary_json(&draft, &path)),
            _ => summary_text(&draft, &source, &path),
        })
    }))
}

/// `--from`, else the one format the content fits.
fn format_of(args: &ImportArgs, document: &Value) -> Result<Peer, CliError> {
    if let Some(from) = args.from {
        return Ok(from);
    }
    let found = detect(document);
    let names = |peers: &[Peer]| {
        peers
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match found[..] {
        [one] => Ok(one),
        [] => Err(fail(
            Code::PeerFileInvalid,
            format!(
                "{} is none of the formats mcplock imports ({}); if it is one of them, name it with --from",
                args.file.display(),
                names(&Peer::ALL)
            ),
        )),
        _ => Err(fail(
            Code::PeerFileInvalid,
            format!(
                "{} could be any of {}: name its format with --from",
                args.file.display(),
                names(&found)
            ),
        )),
    }
}

/// `--name`, else the name of the file's directory (warden.lock files live one per server).
fn default_name(args: &ImportArgs) -> String {
    args.name.clone().unwrap_or_else(|| {
        std::path::absolute(&args.file)
            .ok()
            .and_then(|p| {
                p.parent()?
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "server".to_string())
    })
}

/// Launches the file does not record: the command after `--` (one server only), else the
/// hosts' configs by server name.
fn fill_launches(
    args: &ImportArgs,
    servers: &mut std::collections::BTreeMap<String, DraftServer>,
) -> Result<(), CliError> {
    if let Some((program, rest)) = args.command.split_first() {
        let [(name, server)] = &mut servers.iter_mut().collect::<Vec<_>>()[..] else {
            return Err(fail(
                Code::Usage,
                format!(
                    "a command after -- is the launch of the one server a file pins, and {} pins {}; use --host to take launches from the hosts' configs",
                    args.file.display(),
                    servers.len()
                ),
            ));
        };
        if let Some(launch) = &server.launch {
            return Err(fail(
                Code::Usage,
                format!(
                    "{} already records how {} is started ({}); leave out the command after --",
                    args.file.display(),
                    escape(name),
                    escape(&launch.describe())
                ),
            ));
        }
        server.launch = Some(Launch::command(program, rest));
    }
    if args.hosts.host.is_some() {
        let configured = super::hosts::launches(&args.hosts)?;
        for (name, server) in servers.iter_mut().filter(|(_, s)| s.launch.is_none()) {
            server.launch = configured.get(name).cloned();
        }
    }
    Ok(())
}

/// Where the detached signature of `from`'s file is, for the formats that have one (mcp-lock/1's
/// and ToolPin's): `--signature`, else `mcp-lock.sig` beside the file; `None` when there is none.
fn signature_path(args: &ImportArgs, from: Peer) -> Result<Option<std::path::PathBuf>, CliError> {
    let signs = matches!(from, Peer::McpLockV1 | Peer::ToolPin);
    let beside = args.file.with_file_name("mcp-lock.sig");
    match &args.signature {
        Some(_) if !signs => Err(fail(
            Code::Usage,
            format!(
                "--signature is for mcp-lock/1 and ToolPin files; {} is {}",
                args.file.display(),
                from.title()
            ),
        )),
        Some(path) => Ok(Some(path.clone())),
        None if signs && beside.is_file() => Ok(Some(beside)),
        None if args.peer_key.is_some() => Err(fail(
            Code::SignatureMalformed,
            format!(
                "--peer-key given, but no signature is beside {} (give it with --signature)",
                args.file.display()
            ),
        )),
        None => Ok(None),
    }
}

/// The file's detached signature, checked by `--peer-key` when one is given: the key's
/// fingerprint, the lock digest it signs and the signature must all hold.
fn signature_of(
    args: &ImportArgs,
    from: Peer,
    document: &Value,
) -> Result<SignatureCheck, CliError> {
    let Some(path) = signature_path(args, from)? else {
        return Ok(SignatureCheck::Absent);
    };
    let malformed = |why: &str| {
        fail(
            Code::SignatureMalformed,
            format!("{}: {why}", path.display()),
        )
    };
    let bytes = super::exit::read_input(&path, 64 * 1024, "the signature")?;
    let envelope = crate::core::json::parse_strict(&bytes).map_err(|e| malformed(e.message()))?;
    let envelope = envelope
        .as_object()
        .ok_or_else(|| malformed("not a JSON object"))?;
    let top = document.as_object().cloned().unwrap_or_default();
    let (payload, digest) = match from {
        Peer::ToolPin => (
            toolpin::signing_payload(envelope),
            toolpin::lock_digest(&top),
        ),
        _ => (
            mcp_lock_v1::signing_payload(envelope),
            mcp_lock_v1::lock_digest(&top),
        ),
    };
    let payload = payload.map_err(|e| malformed(&e))?;
    let text = |k: &str| {
        envelope
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let key = text("publicKeyFingerprint");
    let Some(key_path) = &args.peer_key else {
        eprintln!(
            "mcplock: {} is signed by the key {key}; not checked (give the key with --peer-key)",
            args.file.display()
        );
        return Ok(SignatureCheck::NotChecked { key });
    };
    let pem = super::exit::read_input(key_path, 64 * 1024, "the key")?;
    let public = crate::crypto::ed25519::PublicKey::from_pem(&String::from_utf8_lossy(&pem))
        .map_err(|e| fail(Code::KeyInvalid, format!("{}: {e}", key_path.display())))?;
    let invalid = |why: String| {
        fail(
            Code::SignatureInvalid,
            format!(
                "{}: {why}; nothing was imported: give the signer's public key with --peer-key, or have the file signed again by the tool that wrote it",
                path.display()
            ),
        )
    };
    let fingerprint = mcp_lock_v1::key_fingerprint(&public.to_bytes());
    if fingerprint != key {
        return Err(invalid(format!(
            "it names the key {key}, not {fingerprint} (--peer-key)"
        )));
    }
    if text("lockfileDigest") != digest {
        return Err(invalid(format!(
            "it signs the lock digest {}, and {} has {digest}",
            text("lockfileDigest"),
            args.file.display()
        )));
    }
    let signature = base64_64(&text("signature"))
        .ok_or_else(|| malformed("\"signature\" is not 64 bytes of base64"))?;
    if !public.verify(&payload, &signature) {
        return Err(invalid("the signature does not hold".to_string()));
    }
    Ok(SignatureCheck::Valid {
        key,
        signed_at: text("signedAt"),
    })
}

fn base64_64(text: &str) -> Option<[u8; 64]> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
}

/// A lockfile is never replaced by a draft; an earlier draft only with `--update`.
fn refuse_overwriting(args: &ImportArgs) -> Result<(), CliError> {
    let path = &args.lockfile;
    let Some(bytes) = crate::edge::fs::read_bounded(path, MAX_LOCKFILE_BYTES)? else {
        return Ok(());
    };
    let is_draft = crate::core::json::parse_strict(&bytes)
        .ok()
        .is_some_and(|v| v.get(DRAFT_MARKER).is_some());
    match (is_draft, args.update) {
        (true, true) => Ok(()),
        (true, false) => Err(fail(
            Code::OutputExists,
            format!(
                "{} holds an earlier import draft; pass --update to replace it",
                path.display()
            ),
        )),
        (false, _) => Err(fail(
            Code::OutputExists,
            format!(
                "{} exists and is not an import draft (a lockfile is never replaced by one); import into another file with -o",
                path.display()
            ),
        )),
    }
}

/// What each server's pins cover, for people: "tools by description, inputSchema".
fn pinned_summary(server: &DraftServer) -> Vec<String> {
    let mut by_kind: std::collections::BTreeMap<
        &str,
        (
            std::collections::BTreeSet<String>,
            std::collections::BTreeSet<String>,
            bool,
        ),
    > = Default::default();
    for pin in &server.pins {
        let slot = by_kind.entry(pin.kind.field()).or_default();
        slot.0.extend(pin.recipe.covers());
        match &pin.key {
            Some(key) => {
                slot.1.insert(key.clone());
            }
            None => slot.2 = true,
        }
    }
    by_kind
        .into_iter()
        .map(|(kind, (covers, keys, whole))| {
            let covers: Vec<String> = covers.into_iter().collect();
            let count = if whole {
                format!("every one of its {kind} at once")
            } else {
                format!("{} {kind}", keys.len())
            };
            format!("{count}, by {}", covers.join(", "))
        })
        .collect()
}

fn next_commands(path: &Path) -> String {
    let o = if path == Path::new("mcp-lock.json") {
        String::new()
    } else {
        format!(" -o {}", path.display())
    };
    format!(
        "`mcplock lock --check{o}` compares each item with the live server; `mcplock lock{o}` then locks what is confirmed"
    )
}

fn signature_line(signature: &SignatureCheck) -> String {
    match signature {
        SignatureCheck::Absent => "no signature".to_string(),
        SignatureCheck::NotChecked { key } => {
            format!("signed by {key}, not checked (give --peer-key)")
        }
        SignatureCheck::Valid { key, signed_at } => {
            format!("signature valid, by {key}, signed at {signed_at}")
        }
    }
}

fn summary_text(draft: &Draft, source: &str, path: &Path) -> String {
    let mut out = format!(
        "imported {} server(s) from {} ({}) into {}, a draft: nothing in it is trusted until a live scan confirms it\n",
        draft.servers.len(),
        draft.from.title(),
        escape(source),
        path.display()
    );
    for (name, server) in &draft.servers {
        let launch = server.launch.as_ref().map_or_else(
            || "no launch recorded: give it after -- (one server), or with --host".to_string(),
            |l| escape(&l.describe()),
        );
        out.push_str(&format!("  {}: {launch}\n", escape(name)));
        let pinned = pinned_summary(server);
        if pinned.is_empty() {
            out.push_str("    nothing pinned: every item will need your review\n");
        }
        for line in pinned {
            out.push_str(&format!("    pinned {line}\n"));
        }
    }
    out.push_str(&format!(
        "{}\nnext: {}\n",
        signature_line(&draft.signature),
        next_commands(path)
    ));
    out
}

fn summary_json(draft: &Draft, path: &Path) -> Value {
    let mut value = draft.to_value();
    let servers: serde_json::Map<String, Value> = draft
        .servers
        .iter()
        .map(|(name, server)| (name.clone(), json!({"launch": server.launch.as_ref().map(Launch::to_json), "pinned": pinned_summary(server)})))
        .collect();
    value["servers"] = Value::Object(servers);
    json!({"draft": path.display().to_string(), "import": value, "next": ["mcplock lock --check", "mcplock lock"]})
}
