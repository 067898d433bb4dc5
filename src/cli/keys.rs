//! `keygen`, `sign` and `verify` with Ed25519 keys.

use super::exit::{Code, fail, read_input};
use super::files::{default_signature_path, read_lockfile_json, refuse_overwriting_inputs};
use super::{CanonicalArgs, CliError, KeygenArgs, Output, SignArgs, VerifyArgs};
use crate::core::canonical::{Digest, to_canonical};
use crate::core::lockfile::Lockfile;
use crate::core::signature::{Covered, Envelope, frame_value, signed_bytes};
use crate::crypto::ed25519::{PrivateKey, PublicKey};
use crate::edge::fs::{read_bounded, read_secret, write_atomic, write_new};
use serde_json::{Value, json};
use std::path::Path;

const MAX_KEY_BYTES: u64 = 64 << 10;
const MAX_SIGNATURE_BYTES: u64 = 64 << 10;

pub fn keygen(args: KeygenArgs) -> Result<Output, CliError> {
    if args.private == args.public {
        return Err(fail(
            Code::Usage,
            "--private and --public must be different files",
        ));
    }
    for path in [&args.private, &args.public] {
        if path.exists() {
            return Err(fail(
                Code::OutputExists,
                format!(
                    "{} already exists; refusing to overwrite a key (move it away or choose another path)",
                    path.display()
                ),
            ));
        }
    }
    let key = PrivateKey::generate().map_err(|e| fail(Code::Internal, e.to_string()))?;
    let private_pem = key
        .to_pem()
        .map_err(|e| fail(Code::Internal, e.to_string()))?;
    let public = key.public();
    let public_pem = public
        .to_pem()
        .map_err(|e| fail(Code::Internal, e.to_string()))?;
    let key_id = public
        .key_id()
        .map_err(|e| fail(Code::Internal, e.to_string()))?;
    write_new(&args.private, private_pem.as_bytes(), 0o600)?;
    write_new(&args.public, public_pem.as_bytes(), 0o644).map_err(|e| {
        fail(
            Code::WriteFailed,
            format!(
                "{e} (the private key {} was written; delete it and try again)",
                args.private.display()
            ),
        )
    })?;
    let json = json!({
        "keyId": key_id.to_string(),
        "private": args.private.display().to_string(),
        "public": args.public.display().to_string(),
    });
    let human = format!(
        "private key {} (mode 0600: keep it secret)\npublic key  {} (share it with verifiers)\nkey id      {key_id}\n",
        args.private.display(),
        args.public.display()
    );
    Ok(Output::report(None, human, json))
}

/// Reads the lockfile as JSON (strictly) and returns the parsed document and its canonical
/// bytes; the caller decides how strictly to read it as a lockfile.
/// Reads a lockfile signature envelope: the parsed envelope and the file's bytes.
pub(super) fn read_envelope(path: &Path) -> Result<(Envelope, Vec<u8>), CliError> {
    let bytes = read_bounded(path, MAX_SIGNATURE_BYTES)
        ?
        .ok_or_else(|| {
            fail(Code::InputMissing, format!(
                "signature {} does not exist (sign with `mcplock sign`, or point to it with --signature)",
                path.display()
            ))
        })?;
    let envelope = Envelope::parse(&bytes)
        .map_err(|e| fail(Code::SignatureMalformed, format!("{}: {e}", path.display())))?;
    Ok((envelope, bytes))
}

/// Reads an Ed25519 private key (refusing one others may read).
pub(super) fn load_private_key(path: &Path) -> Result<PrivateKey, CliError> {
    // A public key given where the private one belongs: say so, not "chmod 600" (which would
    // only lead to the next error).
    if let Ok(Some(head)) = crate::edge::fs::read_bounded(path, MAX_KEY_BYTES)
        && String::from_utf8_lossy(&head)
            .trim_start()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    {
        return Err(fail(
            Code::KeyInvalid,
            format!(
                "{} is a public key: signing takes the private key `mcplock keygen` wrote beside it (mcplock.key by default); the public key is what verify and the proxy take",
                path.display()
            ),
        ));
    }
    let secret = read_secret(path, MAX_KEY_BYTES)?;
    let pem = std::str::from_utf8(&secret).map_err(|_| {
        fail(
            Code::KeyInvalid,
            format!("{} is not a PEM file", path.display()),
        )
    })?;
    PrivateKey::from_pem(pem)
        .map_err(|e| fail(Code::KeyInvalid, format!("{}: {e}", path.display())))
}

/// Reads an Ed25519 public key and its key id.
pub(super) fn load_public_key(path: &Path) -> Result<(PublicKey, Digest), CliError> {
    let public_pem = read_input(path, MAX_KEY_BYTES, "public key")?;
    let public_pem = String::from_utf8(public_pem).map_err(|_| {
        fail(
            Code::KeyInvalid,
            format!("{} is not a PEM file", path.display()),
        )
    })?;
    let public = PublicKey::from_pem(&public_pem)
        .map_err(|e| fail(Code::KeyInvalid, format!("{}: {e}", path.display())))?;
    let key_id = public.key_id()?;
    Ok((public, key_id))
}

pub async fn sign(args: SignArgs) -> Result<Output, CliError> {
    let Some(key_path) = args.key.clone().filter(|_| !args.sigstore) else {
        return super::keyless::sign(args).await;
    };
    let key = load_private_key(&key_path)?;
    let document = read_lockfile_json(&args.lockfile)?;
    let canonical = to_canonical(&document);
    // Checked as strictly as a full read, without a second copy of the document.
    let counts = Lockfile::check_value(&document).map_err(|e| {
        fail(
            Code::LockfileInvalid,
            format!(
                "refusing to sign {}: it fails its own checks: {e}",
                args.lockfile.display()
            ),
        )
    })?;
    let public = key.public();
    let key_id = public.key_id()?;
    let envelope = Envelope {
        key_id,
        signature: key.sign(&signed_bytes(&canonical)),
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_signature_path(&args.lockfile));
    refuse_overwriting_inputs(&output, &[&args.lockfile, &key_path])?;
    write_atomic(&output, &envelope.to_pretty())?;
    let servers: Vec<&String> = counts.keys().collect();
    let json = json!({
        "keyId": key_id.to_string(),
        "lockfile": args.lockfile.display().to_string(),
        "servers": servers,
        "signature": output.display().to_string(),
    });
    let human = format!(
        "signed {} ({} server(s)) with key {key_id}\nsignature written to {}\n",
        args.lockfile.display(),
        servers.len(),
        output.display()
    );
    Ok(Output::report(None, human, json))
}

/// `mcplock canonical`: the bytes every signature covers.
pub fn canonical(args: CanonicalArgs) -> Result<Output, CliError> {
    let document = read_lockfile_json(&args.lockfile)?;
    Lockfile::check_value(&document).map_err(|e| {
        fail(
            Code::LockfileInvalid,
            format!("{} fails its own checks: {e}", args.lockfile.display()),
        )
    })?;
    let bytes = to_canonical(&document);
    // Canonical JSON of parsed JSON is always UTF-8.
    let stdout = String::from_utf8(bytes).map_err(|e| fail(Code::Internal, e.to_string()))?;
    Ok(Output::text(None, stdout))
}

/// Checks the signature (`--key` or `--bundle`) over `document`, the lockfile as already read,
/// so that what was verified is exactly what the caller goes on to use. Returns who signed.
pub fn verify_document(args: &VerifyArgs, document: &Value) -> Result<String, CliError> {
    let (buffer, start) = frame_value(document);
    verify_covered(args, Covered::in_frame(&buffer, start))
}

/// [`verify_document`] over what the signature covers.
pub fn verify_covered(args: &VerifyArgs, covered: Covered<'_>) -> Result<String, CliError> {
    if let Some(bundle) = &args.check.bundle {
        return super::keyless::verify_canonical(args, bundle, covered.canonical)
            .map(|verified| super::keyless::signer(&verified));
    }
    let Some(key_path) = args.check.key.clone() else {
        return Err(fail(
            Code::Usage,
            "give --key PUBLIC (Ed25519) or --bundle PATH (Sigstore)",
        ));
    };
    let signature_path = args
        .check
        .signature
        .clone()
        .unwrap_or_else(|| default_signature_path(&args.lockfile));
    let (public, key_id) = load_public_key(&key_path)?;
    let (envelope, _) = read_envelope(&signature_path)?;
    if envelope.key_id != key_id {
        return Err(fail(
            Code::SignatureInvalid,
            format!(
                "signature does not hold: {} was made by key {}, but the key given ({}) is {key_id}",
                signature_path.display(),
                envelope.key_id,
                key_path.display()
            ),
        ));
    }
    if !public.verify(covered.dsse, &envelope.signature) {
        return Err(fail(
            Code::SignatureInvalid,
            format!(
                "signature does not hold: it does not verify over the canonical bytes of {} (the lockfile or the signature changed after signing); if the change was approved, sign it again: `mcplock sign {} --key PRIVATE`; if not, restore the signed lockfile",
                args.lockfile.display(),
                args.lockfile.display()
            ),
        ));
    }
    Ok(format!("key {key_id}"))
}

/// The servers whose recorded MCP Registry entry is deprecated or deleted, by name with the
/// status (JSON), and a warning line each (people).
pub fn withdrawn(checked: &crate::core::lockfile::Checked) -> (serde_json::Value, String) {
    let mut json = serde_json::Map::new();
    let mut lines = String::new();
    for (name, server) in checked {
        if let Some(record) = server.registry.as_ref().filter(|r| r.withdrawn()) {
            json.insert(name.clone(), record.status.clone().into());
            lines.push_str(&format!(
                "warning: {}: {} (as recorded when it was locked)\n",
                crate::core::text::escape(name),
                super::registry::registry_status_note(record)
            ));
        }
    }
    (serde_json::Value::Object(json), lines)
}

pub fn verify(args: VerifyArgs) -> Result<Output, CliError> {
    if args.check.key.is_none() && args.check.bundle.is_none() {
        return Err(fail(
            Code::Usage,
            "give --key PUBLIC (Ed25519) or --bundle PATH (Sigstore): the signature to check",
        ));
    }
    if let Some(bundle) = args.check.bundle.clone() {
        return super::keyless::verify(args, &bundle);
    }
    let (signed_by, servers) =
        super::files::verify_lockfile(&args.lockfile, |covered| verify_covered(&args, covered))?;
    let signature_path = args
        .check
        .signature
        .clone()
        .unwrap_or_else(|| default_signature_path(&args.lockfile));
    let tools: usize = servers
        .values()
        .filter_map(|s| s.items.get(&crate::core::snapshot::ItemKind::Tool))
        .sum();
    let checked = servers;
    let servers: Vec<&String> = checked.keys().collect();
    let (withdrawn, withdrawn_lines) = withdrawn(&checked);
    let json = json!({
        "keyId": signed_by.trim_start_matches("key "),
        "lockfile": args.lockfile.display().to_string(),
        "registryWithdrawn": withdrawn,
        "servers": servers,
        "signature": signature_path.display().to_string(),
        "verified": true,
    });
    let human = format!(
        "verified: {} is signed by {signed_by}\n{} server(s), {tools} tool(s): {}\n{withdrawn_lines}",
        args.lockfile.display(),
        servers.len(),
        servers
            .iter()
            .map(|s| crate::core::text::escape(s))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let verified = Output::report(None, human, json);
    if args.artifacts {
        return super::artifacts::after_verify(verified, &args.lockfile, &checked);
    }
    Ok(verified)
}
