//! Keyless signing and Sigstore bundle verification, over the canonical lockfile bytes.
//!
//! Built on the Sigstore project's own Rust crates (`sigstore-sign`, `sigstore-verify`). They
//! verify the certificate chain at the signed time, the embedded SCT, the Rekor inclusion proof
//! with its signed checkpoint and the signed entry timestamp, and the signature. The older
//! `sigstore` crate skips the inclusion proof and checkpoint (see docs/signing.md).
//!
//! Identity is never optional: a policy names an exact identity, or a regular expression that
//! must match the whole identity, and always the issuer.

use sigstore_sign::oidc::IdentityToken;
use sigstore_sign::{SigningContext, SigningServices};
use sigstore_verify::error::{CertificateError, Error as VerifyError, TransparencyLogError};
use sigstore_verify::trust_root::{SigstoreInstance, TrustedRoot};
use sigstore_verify::types::Bundle;
use sigstore_verify::{VerificationPolicy, Verifier};
use std::time::Duration;

/// Sigstore's public-good instance.
pub const PUBLIC_GOOD_FULCIO: &str = "https://fulcio.sigstore.dev";
pub const PUBLIC_GOOD_REKOR: &str = "https://rekor.sigstore.dev";

/// Who must have signed.
#[derive(Clone, Debug)]
pub enum IdentityRule {
    /// The certificate's identity (email or URI) equals this.
    Exact(String),
    /// The whole identity matches this pattern (anchored: `^(?:PATTERN)$`).
    Pattern { source: String, regex: regex::Regex },
}

impl IdentityRule {
    /// Compiles `pattern` anchored at both ends, so it can never match a mere substring.
    pub fn pattern(pattern: &str) -> Result<IdentityRule, String> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("--identity-regexp is not a valid regular expression: {e}"))?;
        Ok(IdentityRule::Pattern {
            source: pattern.to_string(),
            regex,
        })
    }

    fn describe(&self) -> String {
        match self {
            IdentityRule::Exact(identity) => format!("{identity:?}"),
            IdentityRule::Pattern { source, .. } => format!("one matching ^(?:{source})$"),
        }
    }
}

/// Which check a bundle failed: one line for the user, and whether it is the input's fault
/// (malformed, exit 2) or a definite "no" (exit 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigstoreError {
    #[error("{0}")]
    Malformed(String),
    #[error("{check} check failed: {detail}")]
    Failed { check: &'static str, detail: String },
    #[error("{0}")]
    Signing(String),
}

/// What a verified bundle says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub identity: String,
    pub issuer: String,
    /// The verified signing time, RFC 3339.
    pub signed_at: String,
    pub log_index: Option<i64>,
}

/// The trust root: a `trusted_root.json` file's text, or the public-good snapshot compiled in.
pub fn trusted_root(json: Option<&str>) -> Result<TrustedRoot, SigstoreError> {
    match json {
        Some(text) => TrustedRoot::from_json(text)
            .map_err(|e| SigstoreError::Malformed(format!("not a Sigstore trusted root: {e}"))),
        None => TrustedRoot::from_embedded(SigstoreInstance::PublicGood).map_err(|e| {
            SigstoreError::Malformed(format!("the built-in public-good trust root: {e}"))
        }),
    }
}

/// Verifies a Sigstore bundle (JSON) over `artifact` for `identity` issued by `issuer`.
pub fn verify(
    root: &TrustedRoot,
    bundle_json: &str,
    artifact: &[u8],
    identity: &IdentityRule,
    issuer: &str,
) -> Result<Verified, SigstoreError> {
    check(root, bundle_json, artifact, Some(identity), issuer)
}

/// The signer's own check of a bundle it was just given: everything [`verify`] checks, with
/// the identity taken from the certificate (Fulcio issued it for the signer's token moments
/// ago; a verifier must always name the identity it accepts).
pub fn check_own_bundle(
    root: &TrustedRoot,
    bundle_json: &str,
    artifact: &[u8],
    issuer: &str,
) -> Result<Verified, SigstoreError> {
    check(root, bundle_json, artifact, None, issuer)
}

fn check(
    root: &TrustedRoot,
    bundle_json: &str,
    artifact: &[u8],
    identity: Option<&IdentityRule>,
    issuer: &str,
) -> Result<Verified, SigstoreError> {
    let bundle = Bundle::from_json(bundle_json)
        .map_err(|e| SigstoreError::Malformed(format!("not a Sigstore bundle: {e}")))?;
    let verifier = Verifier::new(root)
        .map_err(|e| SigstoreError::Malformed(format!("the trusted root cannot be used: {e}")))?;
    let policy = match identity {
        Some(IdentityRule::Exact(exact)) => VerificationPolicy::new(exact.as_str(), issuer),
        // The crate matches exact identities only; the issuer is still required here and the
        // pattern is applied to the verified identity below.
        Some(IdentityRule::Pattern { .. }) | None => {
            VerificationPolicy::any_identity().require_issuer(issuer)
        }
    };
    let result = match verifier.verify(artifact, &bundle, &policy) {
        Err(VerifyError::TransparencyLog(TransparencyLogError::IntegratedTime(detail))) => {
            match skew_wait(&bundle) {
                Some(wait) => {
                    // Wait for this machine's clock to reach the logged time, then check it all
                    // again: nothing is relaxed, the clocks just agree.
                    std::thread::sleep(wait);
                    verifier.verify(artifact, &bundle, &policy)
                }
                None => Err(VerifyError::TransparencyLog(
                    TransparencyLogError::IntegratedTime(detail),
                )),
            }
        }
        other => other,
    }
    .map_err(|e| classify(e, identity))?;
    let found = result
        .identity()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    if let Some(rule @ IdentityRule::Pattern { regex, .. }) = identity
        && !regex.is_match(&found)
    {
        return Err(SigstoreError::Failed {
            check: "identity",
            detail: format!(
                "the certificate is for {found:?}, expected {}",
                rule.describe()
            ),
        });
    }
    let log_index = bundle
        .verification_material
        .tlog_entries
        .first()
        .map(|e| e.log_index.as_i64());
    Ok(Verified {
        identity: found,
        issuer: result.issuer().unwrap_or_default().to_string(),
        signed_at: result
            .integrated_time()
            .or_else(|| result.verified_timestamps().first().copied())
            .map(|t| t.to_string())
            .unwrap_or_default(),
        log_index,
    })
}

/// How far ahead of this machine's clock a log entry's integrated time may be. A bundle logged
/// a moment ago and checked on a machine whose clock runs a little behind (or signed and
/// checked right away) verifies once the local clock has caught up: mcplock waits that long, at
/// most this bound, and checks again. Beyond it, a time in the future is refused.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// How long to wait for the local clock to pass the bundle's latest integrated time, when that
/// is in the future by no more than [`MAX_CLOCK_SKEW`].
fn skew_wait(bundle: &Bundle) -> Option<Duration> {
    let logged = bundle
        .verification_material
        .tlog_entries
        .iter()
        .filter_map(|e| e.integrated_time.map(|t| t.as_second()))
        .max()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let ahead = logged.checked_sub(i64::try_from(now).ok()?)?;
    // Whole seconds on the log's side; one more so the local clock is surely past it.
    let wait = Duration::from_secs(u64::try_from(ahead).ok()? + 1);
    (ahead >= 0 && wait <= MAX_CLOCK_SKEW + Duration::from_secs(1)).then_some(wait)
}

fn classify(error: VerifyError, identity: Option<&IdentityRule>) -> SigstoreError {
    let failed = |check: &'static str, detail: String| SigstoreError::Failed { check, detail };
    match error {
        VerifyError::IdentityMismatch { actual, .. } => failed(
            "identity",
            format!(
                "the certificate is for {:?}, expected {}",
                actual.map(|a| a.as_str().to_string()).unwrap_or_default(),
                identity.map_or("the one named".into(), IdentityRule::describe)
            ),
        ),
        VerifyError::IssuerMismatch { expected, actual } => failed(
            "issuer",
            format!(
                "the certificate was issued on the word of {:?}, expected {expected:?}",
                actual.unwrap_or_default()
            ),
        ),
        VerifyError::SignatureInvalid(d) => failed("signature", d),
        VerifyError::ArtifactMismatch(d) => failed(
            "artifact",
            format!(
                "the bundle was made for other bytes than this lockfile's canonical form ({d})"
            ),
        ),
        VerifyError::Certificate(CertificateError::Sct(d)) => failed("SCT", d),
        VerifyError::Certificate(CertificateError::Expired { time, not_after }) => failed(
            "signed time",
            format!(
                "the certificate had expired when the entry was logged ({time}; valid until {not_after})"
            ),
        ),
        VerifyError::Certificate(CertificateError::NotYetValid { time, not_before }) => failed(
            "signed time",
            format!(
                "the certificate was not yet valid when the entry was logged ({time}; valid from {not_before})"
            ),
        ),
        // The chain is validated at the logged time; webpki reports a leaf outside its validity
        // window then as a chain error, which to the user is a signed-time failure.
        VerifyError::Certificate(CertificateError::ChainInvalid(d))
            if d.contains("CertExpired") || d.contains("CertNotValidYet") =>
        {
            failed(
                "signed time",
                format!("the certificate was not valid when the entry was logged ({d})"),
            )
        }
        VerifyError::Certificate(e) => failed("certificate chain", e.to_string()),
        VerifyError::TransparencyLog(e) => failed("transparency log", e.to_string()),
        VerifyError::Timestamp(e) => failed("signed time", e.to_string()),
        VerifyError::InvalidTrustRoot(d) => {
            SigstoreError::Malformed(format!("the trusted root cannot be used: {d}"))
        }
        other => failed("bundle", other.to_string()),
    }
}

/// Where a keyless signature is made.
#[derive(Clone, Debug)]
pub struct Services {
    pub fulcio: String,
    pub rekor: String,
}

/// Signs `artifact` keylessly: a Fulcio certificate for the token's identity, a Rekor entry,
/// and the bundle (media type `application/vnd.dev.sigstore.bundle.v0.3+json`) as pretty JSON.
pub async fn sign(
    artifact: &[u8],
    token_jwt: &str,
    services: &Services,
) -> Result<String, SigstoreError> {
    let token = IdentityToken::from_jwt(token_jwt.trim())
        .map_err(|e| SigstoreError::Malformed(format!("the identity token is not a JWT: {e}")))?;
    if token.is_expired() {
        return Err(SigstoreError::Malformed(format!(
            "the identity token expired at {}; get a fresh one",
            token.expiration()
        )));
    }
    let context = SigningContext::new(SigningServices::new(
        services.fulcio.as_str(),
        services.rekor.as_str(),
    ));
    let bundle = context
        .signer(token)
        .sign(artifact)
        .await
        .map_err(|e| SigstoreError::Signing(e.to_string()))?;
    bundle
        .to_json_pretty()
        .map_err(|e| SigstoreError::Signing(e.to_string()))
}

/// An identity token from the CI environment (GitHub Actions and others), if there is one.
pub async fn ambient_token() -> Result<Option<String>, SigstoreError> {
    IdentityToken::detect_ambient()
        .await
        .map(|t| t.map(|t| t.expose_secret().to_string()))
        .map_err(|e| SigstoreError::Signing(format!("cannot get the ambient identity token: {e}")))
}

impl crate::core::code::Coded for SigstoreError {
    fn code(&self) -> crate::core::code::Code {
        match self {
            // A bundle that does not verify is a "no"; one that cannot be read or made is not.
            SigstoreError::Failed { .. } => crate::core::code::Code::SignatureInvalid,
            SigstoreError::Malformed(_) | SigstoreError::Signing(_) => {
                crate::core::code::Code::SignatureMalformed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_anchored_at_both_ends() {
        let rule = IdentityRule::pattern("https://github.com/acme/.*@refs/heads/main").unwrap();
        let IdentityRule::Pattern { regex, .. } = &rule else {
            panic!("not a pattern");
        };
        assert!(
            regex.is_match("https://github.com/acme/ci/.github/workflows/sign.yml@refs/heads/main")
        );
        assert!(!regex.is_match("https://evil.example/?https://github.com/acme/x@refs/heads/main"));
        assert!(!regex.is_match("https://github.com/acme/x@refs/heads/main-evil"));
        // An alternation cannot escape the anchors either.
        let rule = IdentityRule::pattern("a@x.org|b@x.org").unwrap();
        let IdentityRule::Pattern { regex, .. } = &rule else {
            panic!("not a pattern");
        };
        assert!(regex.is_match("b@x.org"));
        assert!(!regex.is_match("a@x.org.evil"));
        assert!(IdentityRule::pattern("(").is_err());
    }

    #[test]
    fn the_built_in_trust_root_loads() {
        assert!(trusted_root(None).is_ok());
        assert!(matches!(
            trusted_root(Some("{}")),
            Err(SigstoreError::Malformed(_))
        ));
    }
}
