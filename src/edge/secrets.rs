//! The values this process knows to be secret (header values, bearer tokens, and the values of
//! environment variables whose names say they are secret: a locked server's, `--env`'s, what a
//! config placeholder expanded to), remembered as they are read, so that everything mcplock
//! prints or writes can be cleaned of them,
//! whatever a server echoes back: a token in a `WWW-Authenticate` challenge, in an error body,
//! in a tool result. One process-wide set: the places that learn a secret and the places that
//! print are far apart, and a secret missed by one printing path is a leak.

use aho_corasick::AhoCorasick;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};
use zeroize::Zeroizing;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";
/// Shorter values are not remembered: replacing every `info` in every message would hide what
/// the message says, and a secret that short is not one.
pub const MIN_SECRET_LEN: usize = 6;
/// What in an environment variable's name says its value is secret (compared uppercase).
const SECRET_NAMES: [&str; 12] = [
    "KEY",
    "TOKEN",
    "SECRET",
    "PASS",
    "PWD",
    "AUTH",
    "CRED",
    "PRIVATE",
    "SESSION",
    "COOKIE",
    "SIGNATURE",
    "BEARER",
];

/// Whether a variable named `name` holds a secret by its name (`API_KEY`, `GITHUB_TOKEN`,
/// `DB_PASSWORD`); `LOG_LEVEL` or `NODE_ENV` do not (their values, `info` or `production`,
/// are words every report uses).
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAMES.iter().any(|s| upper.contains(s))
}

/// Remembers the value of the variable `name` when its name says it is secret.
pub fn remember_named(name: &str, value: &str) {
    if is_secret_name(name) {
        remember(value);
    }
}
/// Secrets remembered at most (a process reads a handful).
const MAX_SECRETS: usize = 1_024;

struct Known {
    /// Each secret and the spellings it may take in output (JSON-escaped, percent-encoded).
    spellings: Vec<Zeroizing<String>>,
    matcher: Option<AhoCorasick>,
}

static KNOWN: RwLock<Known> = RwLock::new(Known {
    spellings: Vec::new(),
    matcher: None,
});

/// Remembers `value` as secret from now on.
pub fn remember(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(PoisonError::into_inner);
    if known.spellings.len() >= MAX_SECRETS || known.spellings.iter().any(|s| **s == value) {
        return;
    }
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    let percent = percent_encode(value);
    for spelling in [value.to_string(), json, percent] {
        if !known.spellings.iter().any(|s| **s == spelling) {
            known.spellings.push(Zeroizing::new(spelling));
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    known.spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
    known.matcher = AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(known.spellings.iter().map(|s| s.as_bytes()))
        .ok();
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `text` with every known secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(PoisonError::into_inner);
    match &known.matcher {
        Some(matcher) if matcher.is_match(text) => {
            Cow::Owned(matcher.replace_all(text, &vec![REDACTED; known.spellings.len()]))
        }
        _ => Cow::Borrowed(text),
    }
}

/// Whether `bytes` hold a known secret.
pub fn contains_secret(bytes: &[u8]) -> bool {
    let known = KNOWN.read().unwrap_or_else(PoisonError::into_inner);
    known.matcher.as_ref().is_some_and(|m| m.is_match(bytes))
}

/// Whether what `reader` yields holds a known secret, read in bounded chunks (a secret split
/// between two chunks is still found: each chunk is searched with the end of the one before).
pub fn read_contains_secret(mut reader: impl std::io::Read) -> std::io::Result<bool> {
    let known = KNOWN.read().unwrap_or_else(PoisonError::into_inner);
    let Some(matcher) = &known.matcher else {
        return Ok(false);
    };
    let overlap = known
        .spellings
        .iter()
        .map(|s| s.len())
        .max()
        .unwrap_or(0)
        .saturating_sub(1);
    const CHUNK: usize = 1 << 20;
    let mut window: Vec<u8> = Vec::with_capacity(CHUNK + overlap);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            return Ok(false);
        }
        window.extend_from_slice(&chunk[..n]);
        if matcher.is_match(&window) {
            return Ok(true);
        }
        let keep = window.len().min(overlap);
        window.drain(..window.len() - keep);
    }
}

/// Every string and object key of `value` cleaned of known secrets.
pub fn redact_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = redact(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => {
            let dirty: Vec<String> = map
                .keys()
                .filter(|k| contains_secret(k.as_bytes()))
                .cloned()
                .collect();
            for key in dirty {
                if let Some(v) = map.remove(&key) {
                    map.insert(redact(&key).into_owned(), v);
                }
            }
            map.values_mut().for_each(redact_json);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_26_a_remembered_secret_is_redacted_in_every_spelling() {
        let token = "s3cr3t-t0ken/with+odd\"chars";
        remember(token);
        let echoed = format!("HTTP 401: WWW-Authenticate: Bearer error=\"invalid\", token={token}");
        assert!(!redact(&echoed).contains("s3cr3t"), "{}", redact(&echoed));
        let json = serde_json::to_string(&serde_json::json!({"error": echoed})).unwrap();
        let cleaned = redact(&json);
        assert!(!cleaned.contains("s3cr3t"), "{cleaned}");
        // Still one JSON document.
        serde_json::from_str::<Value>(&cleaned).unwrap();
        let url = format!("https://x.example/mcp?api_key={}", percent_encode(token));
        assert!(!redact(&url).contains("s3cr3t"));
        let mut value =
            serde_json::json!({"content": [{"text": format!("your key is {token}")}], token: 1});
        redact_json(&mut value);
        assert!(!value.to_string().contains("s3cr3t"), "{value}");
        // Short values are not taken as secrets; unrelated text is untouched.
        remember("abcd");
        assert_eq!(redact("a cabcd"), "a cabcd");
        // A variable is secret by its name, not whatever it holds.
        remember_named("LOG_LEVEL", "warning-level");
        assert_eq!(redact("warning-level"), "warning-level");
        remember_named("GITHUB_TOKEN", "ghp-issue26-named");
        assert_eq!(redact("ghp-issue26-named"), REDACTED);
    }

    /// A secret is found in a stream wherever it falls, across the chunk boundary too.
    #[test]
    fn a_secret_is_found_in_a_stream_across_chunks() {
        let secret = "stream-secret-issue26";
        remember(secret);
        let chunk = 1usize << 20;
        for at in [0, 5, chunk - 10, chunk - 1, chunk, chunk + 3, 3 * chunk - 4] {
            let mut bytes = vec![b'x'; 3 * chunk + 100];
            bytes[at..at + secret.len()].copy_from_slice(secret.as_bytes());
            assert!(read_contains_secret(&bytes[..]).unwrap(), "at {at}");
        }
        assert!(!read_contains_secret(&vec![b'x'; 3 * chunk][..]).unwrap());
    }
}
