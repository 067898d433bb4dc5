//! `sign --sigstore` and `verify --bundle`: keyless signatures bound to a workload identity.

use super::exit::{Code, fail, read_input};
use super::files::{default_bundle_path, read_lockfile_json, refuse_overwriting_inputs};
use super::{CliError, Output, SignArgs, VerifyArgs};
use crate::core::canonical::to_canonical;
use crate::core::lockfile::Lockfile;
use crate::core::snapshot::ItemKind;
use crate::core::text::escape;
use crate::crypto::sigstore::{self, IdentityRule, Services, SigstoreError};
use crate::edge::fs::write_atomic;
use serde_json::{Value, json};
use std::path::Path;

/// The environment variable a token may come in (as cosign and sigstore-python read it).
pub const TOKEN_ENV: &str = "SIGSTORE_ID_TOKEN";
const MAX_BUNDLE_BYTES: u64 = 1 << 20;
const MAX_TRUSTED_ROOT_BYTES: u64 = 4 << 20;

fn from_sigstore(error: SigstoreError, what: &str) -> CliError {
    match error {
        SigstoreError::Malformed(m) => fail(Code::SignatureMalformed, format!("{what}: {m}")),
        SigstoreError::Failed { check, detail } => fail(
            Code::SignatureInvalid,
            format!("signature does not hold: {check} check failed: {detail}"),
        ),
        SigstoreError::Signing(m) => fail(
            Code::SignatureMalformed,
            format!("keyless signing failed: {m}"),
        ),
    }
}

fn read_trusted_root(
    path: Option<&Path>,
) -> Result<sigstore_verify::trust_root::TrustedRoot, CliError> {
    let text = match path {
        Some(path) => {
            let bytes = read_input(path, MAX_TRUSTED_ROOT_BYTES, "trusted root")?;
            Some(String::from_utf8(bytes).map_err(|_| {
                fail(
                    Code::InputUnreadable,
                    format!("{} is not UTF-8 JSON", path.display()),
                )
            })?)
        }
        None => None,
    };
    let shown = path.map_or("the built-in public-good trust root".to_string(), |p| {
        p.display().to_string()
    });
    sigstore::trusted_root(text.as_deref()).map_err(|e| from_sigstore(e, &shown))
}

/// The canonical bytes of a lockfile that passes its own checks (what keyless signing covers),
/// and its server names.
fn canonical_lockfile(path: &Path) -> Result<(Vec<u8>, Vec<String>), CliError> {
    let document = read_lockfile_json(path)?;
    let counts = Lockfile::check_value(&document).map_err(|e| {
        fail(
            Code::LockfileInvalid,
            format!("{} fails its own checks: {e}", path.display()),
        )
    })?;
    Ok((to_canonical(&document), counts.into_keys().collect()))
}

pub async fn sign(args: SignArgs) -> Result<Output, CliError> {
    let custom = args.fulcio_url != sigstore::PUBLIC_GOOD_FULCIO
        || args.rekor_url != sigstore::PUBLIC_GOOD_REKOR;
    if custom && args.trusted_root.is_none() {
        return Err(fail(
            Code::Usage,
            "--fulcio-url or --rekor-url name another Sigstore instance: pass its --trusted-root too, so the bundle can be checked before it is written",
        ));
    }
    let (canonical, servers) = canonical_lockfile(&args.lockfile)?;
    // Read before signing: a bad trust root should fail before anything is logged publicly.
    let root = read_trusted_root(args.trusted_root.as_deref())?;
    let token = match (&args.identity_token, std::env::var(TOKEN_ENV)) {
        (Some(token), _) => token.clone(),
        (None, Ok(token)) if !token.trim().is_empty() => token,
        _ => sigstore::ambient_token()
            .await
            .map_err(|e| from_sigstore(e, "identity token"))?
            .ok_or_else(|| {
                fail(Code::Usage, format!(
                    "no identity token: pass --identity-token, set {TOKEN_ENV}, or run where one is ambient (GitHub Actions with `permissions: id-token: write`)"
                ))
            })?,
    };
    let services = Services {
        fulcio: args.fulcio_url.clone(),
        rekor: args.rekor_url.clone(),
    };
    let bundle = sigstore::sign(&canonical, &token, &services)
        .await
        .map_err(|e| from_sigstore(e, "identity token"))?;
    // Check what the services returned before writing it: a bundle that does not verify
    // against the trust root is never written.
    let issuer = token_issuer(&token).unwrap_or_default();
    let verified = sigstore::check_own_bundle(&root, &bundle, &canonical, &issuer)
    .map_err(|e| {
        fail(Code::Usage, format!(
            "the services returned a bundle that does not verify ({e}); nothing was written (for a private instance, pass its --trusted-root)"
        ))
    })?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_bundle_path(&args.lockfile));
    refuse_overwriting_inputs(&output, &[&args.lockfile])?;
    let mut bytes = bundle.into_bytes();
    bytes.push(b'\n');
    write_atomic(&output, &bytes)?;
    let json = json_report(&output, &args.lockfile, &verified, &servers);
    let human = format!(
        "signed {} ({} server(s)) keylessly as {} (issuer {})\nlogged at {} (log index {}); bundle written to {}\n",
        args.lockfile.display(),
        servers.len(),
        escape(&verified.identity),
        escape(&verified.issuer),
        verified.signed_at,
        verified.log_index.map_or("?".into(), |i| i.to_string()),
        output.display()
    );
    Ok(Output::report(None, human, json))
}

/// The report of `sign --sigstore` and `verify --bundle --format json` (each ends only when
/// the bundle verified).
fn json_report(
    bundle: &Path,
    lockfile: &Path,
    verified: &sigstore::Verified,
    servers: &[impl serde::Serialize],
) -> Value {
    json!({
        "bundle": bundle.display().to_string(),
        "identity": verified.identity,
        "issuer": verified.issuer,
        "lockfile": lockfile.display().to_string(),
        "logIndex": verified.log_index,
        "servers": servers,
        "signedAt": verified.signed_at,
        "verified": true,
    })
}

/// The `iss` claim of a JWT (unverified: Fulcio authenticates the token; this only says which
/// issuer the self-check expects).
fn token_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// The Sigstore bundle's check over a lockfile's canonical bytes (see
/// [`super::keys::verify_covered`]).
pub fn verify_canonical(
    args: &VerifyArgs,
    bundle_path: &Path,
    canonical: &[u8],
) -> Result<sigstore::Verified, CliError> {
    verify_with(&bundle_inputs(args, bundle_path)?, bundle_path, canonical)
}

fn verify_with(
    (identity, issuer, root, bundle): &BundleInputs,
    bundle_path: &Path,
    canonical: &[u8],
) -> Result<sigstore::Verified, CliError> {
    sigstore::verify(root, bundle, canonical, identity, issuer)
        .map_err(|e| from_sigstore(e, &bundle_path.display().to_string()))
}

/// Who signed, as `verify` reports it.
pub fn signer(verified: &sigstore::Verified) -> String {
    format!(
        "{} (issuer {})",
        escape(&verified.identity),
        escape(&verified.issuer)
    )
}

/// What a bundle check needs besides the lockfile: the identity rule, the issuer, the trust
/// root and the bundle's text.
type BundleInputs = (
    IdentityRule,
    String,
    sigstore_verify::trust_root::TrustedRoot,
    String,
);

fn bundle_inputs(args: &VerifyArgs, bundle_path: &Path) -> Result<BundleInputs, CliError> {
    let identity = match (&args.check.identity, &args.check.identity_regexp) {
        (Some(exact), None) => IdentityRule::Exact(exact.clone()),
        (None, Some(pattern)) => {
            IdentityRule::pattern(pattern).map_err(|e| fail(Code::Usage, e))?
        }
        (Some(_), Some(_)) => {
            return Err(fail(
                Code::Usage,
                "give --identity or --identity-regexp, not both",
            ));
        }
        (None, None) => {
            return Err(fail(
                Code::Usage,
                "verify --bundle needs --identity (or --identity-regexp) and --issuer: a keyless signature proves who signed, so say who may (e.g. --identity https://github.com/ORG/REPO/.github/workflows/sign.yml@refs/heads/main --issuer https://token.actions.githubusercontent.com)",
            ));
        }
    };
    let issuer = args.check.issuer.clone().ok_or_else(|| {
        fail(Code::Usage, "verify --bundle needs --issuer, the OIDC issuer that vouched for the identity (e.g. https://token.actions.githubusercontent.com)")
    })?;
    let root = read_trusted_root(args.check.trusted_root.as_deref())?;
    let bundle = read_input(bundle_path, MAX_BUNDLE_BYTES, "bundle")?;
    let bundle = String::from_utf8(bundle).map_err(|_| {
        fail(
            Code::InputUnreadable,
            format!(
                "{} is not a Sigstore bundle (not UTF-8)",
                bundle_path.display()
            ),
        )
    })?;
    Ok((identity, issuer, root, bundle))
}

pub fn verify(args: VerifyArgs, bundle_path: &Path) -> Result<Output, CliError> {
    // The bundle's inputs are checked before the lockfile is read: a usage mistake first.
    let inputs = bundle_inputs(&args, bundle_path)?;
    let (verified, counts) = super::files::verify_lockfile(&args.lockfile, |covered| {
        verify_with(&inputs, bundle_path, covered.canonical)
    })?;
    let tools: usize = counts
        .values()
        .filter_map(|s| s.items.get(&ItemKind::Tool))
        .sum();
    let servers: Vec<&String> = counts.keys().collect();
    let json = json_report(bundle_path, &args.lockfile, &verified, &servers);
    let human = format!(
        "verified: {} is signed by {} (issuer {}), logged at {}\n{} server(s), {tools} tool(s): {}\n",
        args.lockfile.display(),
        escape(&verified.identity),
        escape(&verified.issuer),
        verified.signed_at,
        servers.len(),
        servers
            .iter()
            .map(|s| escape(s))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let report = Output::report(None, human, json);
    if args.artifacts {
        return super::artifacts::after_verify(report, &args.lockfile, &counts);
    }
    Ok(report)
}
