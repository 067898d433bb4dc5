//! The gateway as an OAuth 2.1 resource server (`--oauth-issuer`, `--oauth-audience`): an
//! access token is a JWT (RFC 9068, `typ: at+jwt`) signed by a key of the issuer's JWKS with an
//! asymmetric algorithm, issued by exactly that issuer, for this gateway (`aud`), not expired,
//! holding the scopes required. Its client (`client_id`, else `sub`) maps to an agent of the
//! agents file (`subjects`). The token is never passed on: each session's server is reached with
//! the gateway's own credentials.
//!
//! The issuer's metadata (RFC 8414, else OpenID discovery) is read at start and must name the
//! same issuer (a mix-up otherwise); its JWKS is fetched then, and again (at most every
//! [`REFRESH`]) when a token names a key it does not hold.

use crate::transport::fetch::{Fetched, Published};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tokens remembered as verified, at most (the table is emptied when full).
const MAX_VERIFIED: usize = 4_096;

/// The least time between two fetches of the JWKS for an unknown key.
pub const REFRESH: Duration = Duration::from_secs(30);
/// Largest metadata document and key set.
const MAX_DOCUMENT: usize = 1 << 20;
/// The algorithms a token may be signed with: asymmetric only (a shared secret would let
/// anyone holding the public key forge tokens).
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

pub struct OAuth {
    pub issuer: String,
    /// This gateway's resource identifier: what `aud` must hold.
    pub audience: String,
    pub scopes: Vec<String>,
    leeway: u64,
    keys: Mutex<(JwkSet, Option<Instant>)>,
    jwks: tokio::sync::Mutex<Published>,
    /// Tokens verified in full, by their digest: who they are and until when (`exp`, in
    /// seconds since the epoch). A token is checked in full once, then only for its expiry.
    verified: Mutex<std::collections::HashMap<[u8; 32], (String, u64)>>,
}

/// Who a valid token was issued to.
#[derive(Debug, PartialEq, Eq)]
pub struct Bearer {
    /// `client_id`, else `sub`.
    pub subject: String,
}

#[derive(serde::Deserialize)]
struct Claims {
    exp: u64,
    sub: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
}

#[derive(serde::Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

impl OAuth {
    /// Reads the issuer's metadata and key set.
    pub async fn discover(
        issuer: &str,
        audience: &str,
        scopes: Vec<String>,
        leeway: Duration,
    ) -> Result<OAuth, String> {
        let issuer = issuer.trim_end_matches('/').to_string();
        let metadata = metadata(&issuer).await?;
        if metadata.issuer.trim_end_matches('/') != issuer {
            return Err(format!(
                "the authorization server's metadata names another issuer ({:?}): a mix-up; refusing its tokens",
                metadata.issuer
            ));
        }
        let mut jwks = Published::new(&metadata.jwks_uri, MAX_DOCUMENT)?;
        let keys = key_set(&mut jwks)
            .await?
            .unwrap_or(JwkSet { keys: Vec::new() });
        Ok(OAuth {
            issuer,
            audience: audience.to_string(),
            scopes,
            leeway: leeway.as_secs(),
            keys: Mutex::new((keys, Some(Instant::now()))),
            jwks: tokio::sync::Mutex::new(jwks),
            verified: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The Protected Resource Metadata document (RFC 9728) for this gateway.
    pub fn resource_metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "resource": self.audience,
            "authorization_servers": [self.issuer],
            "scopes_supported": self.scopes,
            "bearer_methods_supported": ["header"],
        })
    }

    /// Checks a token; `Err` says why it is refused (never echoing it). One verified before is
    /// taken while it has not expired.
    pub async fn verify(&self, token: &str) -> Result<Bearer, String> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = crate::edge::clock::micros() / 1_000_000;
        if let Some((subject, exp)) = self.verified().get(&digest)
            && now <= exp.saturating_add(self.leeway)
        {
            return Ok(Bearer {
                subject: subject.clone(),
            });
        }
        let (bearer, exp) = self.verify_in_full(token).await?;
        let mut verified = self.verified();
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(digest, (bearer.subject.clone(), exp));
        Ok(bearer)
    }

    fn verified(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], (String, u64)>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The whole check: header, key, signature, claims, scopes; the subject and `exp`.
    async fn verify_in_full(&self, token: &str) -> Result<(Bearer, u64), String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(format!(
                "signed with {:?}, not an asymmetric algorithm",
                header.alg
            ));
        }
        let typ = header
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err("not an access token (its typ is not at+jwt)".into());
        }
        let kid = header.kid.clone().ok_or("it names no key (kid)")?;
        let key = match self.key(&kid, header.alg) {
            Some(key) => key,
            None => {
                self.refresh().await;
                self.key(&kid, header.alg)
                    .ok_or_else(|| format!("key {kid:?} is not in the issuer's key set"))?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| format!("{e}"))?;
        let granted: Vec<&str> = data
            .claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .collect();
        if let Some(missing) = self.scopes.iter().find(|s| !granted.contains(&s.as_str())) {
            return Err(format!("it does not hold the scope {missing:?}"));
        }
        let exp = data.claims.exp;
        let subject = (data.claims.client_id.or(data.claims.sub))
            .filter(|s| !s.is_empty())
            .ok_or("it names no client_id or sub")?;
        Ok((Bearer { subject }, exp))
    }

    /// The key `kid` for `alg`, if held (a key that says it is for another algorithm is not).
    fn key(&self, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let jwk = keys.0.find(kid)?;
        let stated = jwk.common.key_algorithm.map(|a| format!("{a:?}"));
        if stated.is_some_and(|a| a != format!("{alg:?}")) {
            return None;
        }
        DecodingKey::from_jwk(jwk).ok()
    }

    /// Fetches the key set again, unless it was fetched within [`REFRESH`].
    async fn refresh(&self) {
        {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            if keys.1.is_some_and(|at| at.elapsed() < REFRESH) {
                return;
            }
        }
        let mut jwks = self.jwks.lock().await;
        let fetched = key_set(&mut jwks).await;
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.1 = Some(Instant::now());
        if let Ok(Some(set)) = fetched {
            keys.0 = set;
        }
    }
}

/// The issuer's metadata: RFC 8414's well-known document, else OpenID discovery's.
async fn metadata(issuer: &str) -> Result<Metadata, String> {
    let mut why = String::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let url = format!("{issuer}{path}");
        let mut document = Published::new(&url, MAX_DOCUMENT)?;
        match document.fetch().await {
            Ok(Fetched::Body(bytes)) => {
                return serde_json::from_slice(&bytes).map_err(|e| format!("{url}: {e}"));
            }
            Ok(_) => why = format!("{url}: not found"),
            Err(e) => why = format!("{url}: {e}"),
        }
    }
    Err(format!(
        "no authorization server metadata at {issuer} ({why})"
    ))
}

/// The key set now (`None`: unchanged since the last fetch).
async fn key_set(jwks: &mut Published) -> Result<Option<JwkSet>, String> {
    match jwks.fetch().await? {
        Fetched::Body(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: not a JWK set: {e}", jwks.url())),
        Fetched::Unchanged => Ok(None),
        Fetched::Missing => Err(format!("{}: not found", jwks.url())),
    }
}
