//! `bundle export` and `bundle verify`: one ZIP an auditor can check offline.

use super::Output;
use super::exit::{Code, fail, read_input};
use super::files::default_signature_path;
use super::files::{MAX_LOCKFILE_BYTES, refuse_overwriting_inputs};
use super::keys::{load_private_key, load_public_key, read_envelope};
use super::policy::evaluate_bundled;
use super::{BundleArgs, BundleCommand, BundleExportArgs, BundleVerifyArgs, CliError};
use crate::core::bundle::{
    self, FileEntry, Manifest, PolicySummary, ReadmeInput, ServerSummary, check_member_name,
    readme, recorded_digests, summarize,
};
use crate::core::canonical::{Digest, to_canonical};
use crate::core::json::parse_strict;
use crate::core::lockfile::Lockfile;
use crate::core::policy::MAX_POLICY_BYTES;
use crate::core::signature::{Envelope, Signed};
use crate::core::text::{escape, summary_line};
use crate::crypto::ed25519::PublicKey;
use crate::edge::fs::{read_bounded, write_atomic};
use crate::edge::zip::{ReadLimits, ZipReadError, read_hostile, write_deterministic};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

/// The largest bundle read: a lockfile at its cap, plus room for the other members.
const MAX_BUNDLE_BYTES: u64 = MAX_LOCKFILE_BYTES + (64 << 20);
const LIMITS: ReadLimits = ReadLimits {
    // Room for more entries than a bundle holds, so an unknown member is named, not counted.
    max_entries: 2 * bundle::KNOWN_MEMBERS.len(),
    max_total_bytes: MAX_LOCKFILE_BYTES + (64 << 20),
    admit: |name| {
        let name = check_member_name(name)?;
        Ok(bundle::member_cap(name, MAX_LOCKFILE_BYTES))
    },
};

pub async fn run(args: BundleArgs) -> Result<Output, CliError> {
    match args.command {
        BundleCommand::Export(args) => export(args),
        BundleCommand::Verify(args) => verify(args),
    }
}

fn export(args: BundleExportArgs) -> Result<Output, CliError> {
    let (private, public) = export_keys(&args)?;
    let signer = public.key_id()?;
    let public_pem = public.to_pem()?;
    let signed = read_signed(&args, &public, signer)?;
    let lockfile = Arc::clone(&signed.lockfile);
    let servers = summarize(&lockfile, |name| {
        signed.recorded.get(name).cloned().unwrap_or_default()
    });
    let mut members: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let policy = bundled_policy(&args, &lockfile, &mut members)?;
    let readme_text = readme(&ReadmeInput {
        lockfile: &lockfile,
        servers: &servers,
        signer,
        manifest_signed: private.is_some(),
        policy,
    });
    members.insert(bundle::README, readme_text.into_bytes());
    members.insert(bundle::PUBLIC_KEY, public_pem.into_bytes());
    members.insert(bundle::LOCKFILE_SIG, signed.signature_bytes);
    members.insert(bundle::LOCKFILE, signed.bytes);
    let manifest = Manifest {
        mcplock_version: env!("CARGO_PKG_VERSION").to_string(),
        signer,
        files: members
            .iter()
            .map(|(name, bytes)| (name.to_string(), FileEntry::of(bytes)))
            .collect(),
        servers: servers.clone(),
        policy,
    };
    seal(&mut members, &manifest, private.as_ref(), signer);
    let entries: Vec<(&str, &[u8])> = members.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let zip = write_deterministic(&entries).map_err(|e| fail(Code::Internal, e))?;

    let inputs: Vec<&std::path::Path> = [
        Some(args.lockfile.as_path()),
        Some(signed.signature_path.as_path()),
        args.key.as_deref(),
        args.public_key.as_deref(),
        args.policy.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    refuse_overwriting_inputs(&args.output, &inputs)?;
    let unchanged = write_output(&args, &zip)?;
    let exported = Exported {
        zip: &zip,
        members: members.keys().copied().collect(),
        unchanged: unchanged == Some(true),
        signed: private.is_some(),
    };
    let (human, json) = export_report(&args, &exported, &servers, policy, &signer);
    Ok(Output::report(None, human, json))
}

/// The lockfile an export bundles, read once and checked: strictly parsed, its own checks, and
/// its signature made by the given key over exactly these bytes.
struct SignedLockfile {
    bytes: Vec<u8>,
    lockfile: Arc<Lockfile>,
    /// The server digests as the file records them.
    recorded: BTreeMap<String, String>,
    signature_path: std::path::PathBuf,
    signature_bytes: Vec<u8>,
}

fn read_signed(
    args: &BundleExportArgs,
    public: &crate::crypto::ed25519::PublicKey,
    signer: Digest,
) -> Result<SignedLockfile, CliError> {
    let bytes = read_input(&args.lockfile, MAX_LOCKFILE_BYTES, "lockfile")?;
    let document = parse_strict(&bytes).map_err(|e| {
        fail(
            Code::JsonInvalid,
            format!("{} is not valid JSON: {e}", args.lockfile.display()),
        )
    })?;
    // What the export needs of the document itself, taken before the definitions move out of
    // it into the domain copy (never two full trees at once).
    let canonical = to_canonical(&document);
    let recorded = recorded_digests(&document);
    let lockfile = Arc::new(Lockfile::from_owned_value(document).map_err(|e| {
        fail(
            Code::LockfileInvalid,
            format!(
                "refusing to export {}: it fails its own checks: {e}",
                args.lockfile.display()
            ),
        )
    })?);
    let signature_path = args
        .signature
        .clone()
        .unwrap_or_else(|| default_signature_path(&args.lockfile));
    let (envelope, signature_bytes) = read_envelope(&signature_path)?;
    if envelope.key_id != signer {
        return Err(fail(
            Code::SignatureInvalid,
            format!(
                "refusing to export: {} was made by key {}, not by the key given ({signer})",
                signature_path.display(),
                envelope.key_id
            ),
        ));
    }
    if !public.verify(
        &Signed::Lockfile.signed_bytes(&canonical),
        &envelope.signature,
    ) {
        return Err(fail(
            Code::SignatureInvalid,
            format!(
                "refusing to export: the signature {} does not verify over {} (the lockfile changed after signing; re-sign it)",
                signature_path.display(),
                args.lockfile.display()
            ),
        ));
    }
    Ok(SignedLockfile {
        bytes,
        lockfile,
        recorded,
        signature_path,
        signature_bytes,
    })
}

/// `--policy`: evaluated over the lockfile, which must pass it; the policy and its result join
/// the bundle's members.
fn bundled_policy(
    args: &BundleExportArgs,
    lockfile: &Arc<Lockfile>,
    members: &mut BTreeMap<&str, Vec<u8>>,
) -> Result<Option<PolicySummary>, CliError> {
    let Some(path) = &args.policy else {
        return Ok(None);
    };
    let text = read_input(path, MAX_POLICY_BYTES as u64, "policy")?;
    let text = String::from_utf8(text).map_err(|_| {
        fail(
            Code::InputUnreadable,
            format!("policy {} is not UTF-8", path.display()),
        )
    })?;
    let evaluated = evaluate_bundled(
        bundle::POLICY,
        &text,
        Arc::clone(lockfile),
        super::policy::EvalLimits::new(args.eval_timeout, args.eval_memory),
    )?;
    if !evaluated.passed {
        let mut error = fail(
            Code::PolicyFailed,
            format!(
                "refusing to export an approval that fails its policy {}; fix the servers or the policy first",
                path.display()
            ),
        );
        error.details = evaluated.human.lines().map(str::to_string).collect();
        return Err(error);
    }
    members.insert(bundle::POLICY, text.into_bytes());
    members.insert(bundle::POLICY_RESULT, evaluated.json.into_bytes());
    Ok(Some(PolicySummary {
        passed: true,
        rules: evaluated.rules,
    }))
}

/// The manifest joins the members, signed with the private key when there is one.
fn seal(
    members: &mut BTreeMap<&str, Vec<u8>>,
    manifest: &Manifest,
    private: Option<&crate::crypto::ed25519::PrivateKey>,
    signer: Digest,
) {
    let manifest_bytes = manifest.to_bytes();
    if let Some(private) = private {
        let signature = Envelope {
            key_id: signer,
            signature: private.sign(&Signed::BundleManifest.signed_bytes(&manifest_bytes)),
        };
        members.insert(
            bundle::MANIFEST_SIG,
            signature.to_pretty_for(Signed::BundleManifest),
        );
    }
    members.insert(bundle::MANIFEST, manifest_bytes);
}

/// The keys `bundle export` is given: the private key that signs the manifest (`--key`), and
/// the public key the lockfile's signature must verify with (`--public-key`, else --key's);
/// a pair that does not match is refused.
fn export_keys(
    args: &BundleExportArgs,
) -> Result<(Option<crate::crypto::ed25519::PrivateKey>, PublicKey), CliError> {
    let private = args.key.as_deref().map(load_private_key).transpose()?;
    let public = match (&private, &args.public_key) {
        (_, Some(path)) => {
            let (public, key_id) = load_public_key(path)?;
            if let Some(private) = &private {
                let own = private.public().key_id()?;
                if own != key_id {
                    return Err(fail(
                        Code::KeyInvalid,
                        format!(
                            "--key is key {own} but --public-key {} is key {key_id}; give the matching pair",
                            path.display()
                        ),
                    ));
                }
            }
            public
        }
        (Some(private), None) => private.public(),
        (None, None) => {
            return Err(fail(
                Code::Usage,
                "no key given: pass --public-key (the key that verifies the lockfile's signature), or --key to also sign the manifest",
            ));
        }
    };
    Ok((private, public))
}

/// Writes the bundle to --output unless the same bytes are there; another file there is
/// replaced only with --force. `Some(true)` when it was already there unchanged.
fn write_output(args: &BundleExportArgs, zip: &[u8]) -> Result<Option<bool>, CliError> {
    // An existing output that cannot be read is not "absent": it may be something the user
    // needs, and only --force may replace it unseen.
    let unchanged = match read_bounded(&args.output, MAX_BUNDLE_BYTES) {
        Ok(existing) => existing.map(|existing| existing == *zip),
        Err(_) if args.force => Some(false),
        Err(e) => {
            return Err(fail(
                Code::Usage,
                format!(
                    "{e}; cannot tell what the existing --output holds, so it is not replaced (choose another -o, or pass --force)"
                ),
            ));
        }
    };
    match unchanged {
        Some(true) => {}
        Some(false) if !args.force => {
            return Err(fail(
                Code::OutputExists,
                format!(
                    "{} already exists with other contents; refusing to overwrite it (choose another -o, or pass --force)",
                    args.output.display()
                ),
            ));
        }
        _ => write_atomic(&args.output, zip)?,
    }
    Ok(unchanged)
}

/// What `bundle export` wrote, for its report.
struct Exported<'a> {
    zip: &'a [u8],
    members: Vec<&'a str>,
    unchanged: bool,
    signed: bool,
}

/// `bundle export`'s report: for people, and as JSON.
fn export_report(
    args: &BundleExportArgs,
    exported: &Exported<'_>,
    servers: &[bundle::ServerSummary],
    policy: Option<bundle::PolicySummary>,
    signer: &Digest,
) -> (String, Value) {
    let sha256 = bundle::hex(&FileEntry::of(exported.zip).sha256);
    let tools: usize = servers.iter().map(|s| s.tools).sum();
    let json = json!({
        "bundle": args.output.display().to_string(),
        "bytes": exported.zip.len(),
        "manifestSigned": exported.signed,
        "members": exported.members,
        "policy": policy.as_ref().map(|p| json!({"passed": p.passed, "rules": p.rules})),
        "servers": servers.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "sha256": sha256,
        "signer": signer.to_string(),
        "unchanged": exported.unchanged,
    });
    let mut out = format!(
        "{} {} ({} bytes, sha256 {sha256})\n{} server(s), {tools} tool(s); lockfile signed by key {signer}\n",
        if exported.unchanged {
            "unchanged"
        } else {
            "exported"
        },
        args.output.display(),
        exported.zip.len(),
        servers.len(),
    );
    if let Some(p) = &policy {
        let _ = writeln!(out, "policy passed ({} rule(s))", p.rules);
    }
    if exported.signed {
        out.push_str("manifest signed: every byte of the bundle is covered\n");
    } else {
        out.push_str("manifest NOT signed: pass --key to cover README.txt and the policy too (bundle verify will need --integrity-only)\n");
    }
    (out, json)
}

/// A bundle that passed every integrity check, and what it says.
struct Checked {
    manifest: Manifest,
    lockfile: Arc<Lockfile>,
    signer_key: PublicKey,
    manifest_signature: Option<Envelope>,
    manifest_bytes: Vec<u8>,
    lockfile_signature: Envelope,
    canonical: Vec<u8>,
    /// policy.yaml and policy-result.json, when the manifest claims a policy.
    policy: Option<(Vec<u8>, Vec<u8>)>,
}

fn rejected(m: String) -> CliError {
    fail(Code::BundleInvalid, format!("bundle rejected: {m}"))
}

/// Everything short of authenticity and the policy: the archive's structure, the members
/// against the manifest, the signers named, the lockfile's strict read and summary. Nothing is
/// evaluated: the bundled policy runs only once every hash and signature holds.
fn check_integrity(zip: &[u8]) -> Result<Checked, CliError> {
    let members = read_hostile(zip, LIMITS).map_err(|e| match e {
        ZipReadError::Unreadable(m) => fail(
            Code::InputUnreadable,
            format!("not a readable ZIP archive: {m}"),
        ),
        ZipReadError::Rejected(m) => rejected(m),
    })?;
    let mut by_name: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    for member in members {
        // Already admitted by the reader; judged again here to get the known name.
        let name = check_member_name(&member.name).map_err(rejected)?;
        by_name.insert(name, member.bytes);
    }
    let manifest_bytes = by_name
        .remove(bundle::MANIFEST)
        .ok_or_else(|| rejected("it has no manifest.json".into()))?;
    let manifest_signature = by_name.remove(bundle::MANIFEST_SIG);
    let manifest = Manifest::parse(&manifest_bytes).map_err(|e| rejected(e.to_string()))?;
    manifest
        .check_members(by_name.iter().map(|(n, b)| (*n, b.as_slice())))
        .map_err(|e| rejected(e.to_string()))?;
    let member = |name: &str| by_name.get(name).map(Vec::as_slice).unwrap_or_default();

    let pem = std::str::from_utf8(member(bundle::PUBLIC_KEY))
        .map_err(|_| rejected(format!("{} is not a PEM file", bundle::PUBLIC_KEY)))?;
    let signer_key =
        PublicKey::from_pem(pem).map_err(|e| rejected(format!("{}: {e}", bundle::PUBLIC_KEY)))?;
    // The key, and both signatures, must all be the manifest's signer.
    let names_signer = |what: &str, key_id: Digest| {
        if key_id == manifest.signer {
            Ok(())
        } else {
            Err(rejected(format!(
                "{what} is by key {key_id}, but manifest.json names signer {}",
                manifest.signer
            )))
        }
    };
    names_signer(bundle::PUBLIC_KEY, signer_key.key_id()?)?;
    let lockfile_signature = Envelope::parse(member(bundle::LOCKFILE_SIG))
        .map_err(|e| rejected(format!("{}: {e}", bundle::LOCKFILE_SIG)))?;
    names_signer(bundle::LOCKFILE_SIG, lockfile_signature.key_id)?;
    let manifest_signature = manifest_signature
        .map(|bytes| {
            let envelope = Envelope::parse_for(&bytes, Signed::BundleManifest)
                .map_err(|e| rejected(format!("{}: {e}", bundle::MANIFEST_SIG)))?;
            names_signer(bundle::MANIFEST_SIG, envelope.key_id)?;
            Ok::<_, CliError>(envelope)
        })
        .transpose()?;

    let document = parse_strict(member(bundle::LOCKFILE))
        .map_err(|e| rejected(format!("{} is not valid JSON: {e}", bundle::LOCKFILE)))?;
    // Taken from the document before its definitions move into the domain copy.
    let canonical = to_canonical(&document);
    let recorded = recorded_digests(&document);
    let lockfile = Arc::new(
        Lockfile::from_owned_value(document)
            .map_err(|e| rejected(format!("{} fails its own checks: {e}", bundle::LOCKFILE)))?,
    );
    let servers = summarize(&lockfile, |name| {
        recorded.get(name).cloned().unwrap_or_default()
    });
    manifest
        .check_summary(&servers)
        .map_err(|e| rejected(e.to_string()))?;
    let policy = manifest.policy.as_ref().map(|_| {
        (
            member(bundle::POLICY).to_vec(),
            member(bundle::POLICY_RESULT).to_vec(),
        )
    });
    Ok(Checked {
        manifest,
        lockfile,
        signer_key,
        manifest_signature,
        manifest_bytes,
        lockfile_signature,
        canonical,
        policy,
    })
}

/// The bundled policy, evaluated again over the bundled lockfile; its result must be the
/// bundled result, byte for byte, and a pass. Runs after every signature holds: a policy from
/// an unverified bundle is never evaluated.
fn check_policy(checked: &Checked, limits: super::policy::EvalLimits) -> Result<(), CliError> {
    let (Some(claimed), Some((text, result))) = (&checked.manifest.policy, &checked.policy) else {
        return Ok(());
    };
    let text = std::str::from_utf8(text)
        .map_err(|_| rejected(format!("{} is not UTF-8", bundle::POLICY)))?;
    let evaluated = evaluate_bundled(bundle::POLICY, text, Arc::clone(&checked.lockfile), limits)
        .map_err(|e| rejected(format!("{}: {}", bundle::POLICY, e.headline)))?;
    if evaluated.json.as_bytes() != result.as_slice() {
        return Err(rejected(format!(
            "{} is not what {} gives over this lockfile (evaluated again: {})",
            bundle::POLICY_RESULT,
            bundle::POLICY,
            if evaluated.passed { "passes" } else { "fails" }
        )));
    }
    if !evaluated.passed || !claimed.passed || claimed.rules != evaluated.rules {
        return Err(rejected(format!(
            "the policy does not pass: {}",
            evaluated.human.lines().last().unwrap_or_default()
        )));
    }
    Ok(())
}

/// How far a verified bundle's authenticity reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Authenticity {
    /// The given key signed the lockfile and the manifest: every byte.
    Full,
    /// The given key signed the lockfile; the manifest is unsigned.
    LockfileOnly,
    /// No key given: the signatures hold against the bundle's own key, which proves nothing.
    None,
}

fn verify(args: BundleVerifyArgs) -> Result<Output, CliError> {
    let trusted = args.key.as_deref().map(load_public_key).transpose()?;
    let zip = read_input(&args.bundle, MAX_BUNDLE_BYTES, "bundle")?;
    let checked = check_integrity(&zip)?;
    let signer = checked.manifest.signer;
    let key = match &trusted {
        Some((key, key_id)) => {
            if *key_id != signer {
                return Err(fail(
                    Code::BundleInvalid,
                    format!(
                        "bundle not verified: it was signed by key {signer}, but the key given ({}) is {key_id}",
                        args.key.as_deref().unwrap_or(Path::new("")).display()
                    ),
                ));
            }
            key
        }
        None => &checked.signer_key,
    };
    if !key.verify(
        &Signed::Lockfile.signed_bytes(&checked.canonical),
        &checked.lockfile_signature.signature,
    ) {
        return Err(fail(
            Code::BundleInvalid,
            format!(
                "bundle not verified: {} does not verify over {} (one of them changed after signing)",
                bundle::LOCKFILE_SIG,
                bundle::LOCKFILE
            ),
        ));
    }
    if let Some(envelope) = &checked.manifest_signature
        && !key.verify(
            &Signed::BundleManifest.signed_bytes(&checked.manifest_bytes),
            &envelope.signature,
        )
    {
        return Err(fail(
            Code::BundleInvalid,
            format!(
                "bundle not verified: {} does not verify over manifest.json (the manifest changed after export)",
                bundle::MANIFEST_SIG
            ),
        ));
    }
    let authenticity = match (&trusted, &checked.manifest_signature) {
        (Some(_), Some(_)) => Authenticity::Full,
        (Some(_), None) => Authenticity::LockfileOnly,
        (None, _) => Authenticity::None,
    };
    let gap = match authenticity {
        Authenticity::Full => None,
        Authenticity::LockfileOnly => Some(
            "the lockfile's signature holds, but manifest.json is unsigned: README.txt and the policy are covered by hashes only (re-export with --key)",
        ),
        Authenticity::None => Some(
            "integrity holds, but authenticity was NOT checked: no --key given, and the key inside a bundle proves nothing on its own (pass the signer's public key with --key)",
        ),
    };
    let accepted = gap.is_none() || args.integrity_only;
    // The bundled policy is code from the bundle: it runs only once every hash and signature
    // holds and the bundle is accepted (signed by the given key, or --integrity-only).
    if accepted {
        check_policy(
            &checked,
            super::policy::EvalLimits::new(args.eval_timeout, args.eval_memory),
        )?;
    }
    let code = (!accepted).then_some(Code::BundleInvalid);
    let servers = summarize(&checked.lockfile, |name| {
        checked
            .manifest
            .servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.digest.clone())
            .unwrap_or_default()
    });
    let json = verify_json(&args, &checked, &servers, authenticity, gap, accepted);
    let human = verify_human(&args, &checked, &servers, gap, accepted);
    Ok(Output::report(code, human, json))
}

fn verify_json(
    args: &BundleVerifyArgs,
    checked: &Checked,
    servers: &[ServerSummary],
    authenticity: Authenticity,
    gap: Option<&str>,
    accepted: bool,
) -> Value {
    let servers: Vec<Value> = servers
        .iter()
        .map(|s| {
            let tools: Vec<&String> = checked
                .lockfile
                .servers
                .get(&s.name)
                .map(|server| server.tools.keys().collect())
                .unwrap_or_default();
            // As in the manifest, with the tool names instead of their count.
            let mut entry = s.to_json();
            entry["tools"] = json!(tools);
            entry
        })
        .collect();
    json!({
        "authenticity": match authenticity {
            Authenticity::Full => "full",
            Authenticity::LockfileOnly => "lockfile-only",
            Authenticity::None => "none",
        },
        "bundle": args.bundle.display().to_string(),
        "manifestSigned": checked.manifest_signature.is_some(),
        "mcplockVersion": checked.manifest.mcplock_version,
        "policy": checked.manifest.policy.map(|p| json!({"passed": p.passed, "rules": p.rules})),
        "servers": servers,
        "signer": checked.manifest.signer.to_string(),
        "verified": accepted,
        "warning": gap,
    })
}

fn verify_human(
    args: &BundleVerifyArgs,
    checked: &Checked,
    servers: &[ServerSummary],
    gap: Option<&str>,
    accepted: bool,
) -> String {
    let mut out = String::new();
    let headline = match (gap, accepted) {
        (None, _) => "verified",
        (Some(_), true) => "integrity verified (--integrity-only)",
        (Some(_), false) => "NOT verified",
    };
    let _ = writeln!(out, "{headline}: {}", args.bundle.display());
    if let Some(gap) = gap {
        let _ = writeln!(out, "  {gap}");
    }
    let _ = writeln!(
        out,
        "lockfile signed by key {}; manifest {}; exported by mcplock {}",
        checked.manifest.signer,
        if checked.manifest_signature.is_some() {
            "signed"
        } else {
            "unsigned"
        },
        escape(&checked.manifest.mcplock_version)
    );
    if let Some(p) = checked.manifest.policy {
        let _ = writeln!(
            out,
            "policy passed ({} rule(s); evaluated again here)",
            p.rules
        );
    }
    let _ = writeln!(out, "approved:");
    for s in servers {
        let mut counts = format!(
            "{} tool(s), {} prompt(s), {} resource template(s)",
            s.tools, s.prompts, s.resource_templates
        );
        if let Some(r) = s.resources {
            let _ = write!(counts, ", {r} resource(s)");
        }
        let _ = writeln!(out, "  {} ({counts}) {}", escape(&s.name), s.digest);
        if let Some(server) = checked.lockfile.servers.get(&s.name) {
            for (name, def) in &server.tools {
                let def = def.to_map();
                let description = def
                    .get("description")
                    .and_then(Value::as_str)
                    .map(|d| summary_line(d, 80))
                    .unwrap_or_default();
                let _ = writeln!(out, "    {} {description}", escape(name));
            }
        }
    }
    if !accepted {
        out.push_str("exit 1: pass --key with the signer's public key, or --integrity-only to accept integrity alone\n");
    }
    out
}
