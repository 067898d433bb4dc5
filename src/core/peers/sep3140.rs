//! SEP-3140's per-declaration content hash (a draft: modelcontextprotocol PR #3140, cited in
//! testdata/peers/README.md): SHA-256 over the RFC 8785 form of one declaration (a tool,
//! prompt or resource as listed) without its own `contentHash` member, written
//! `sha256-<base64url>`. A server may publish it as the declaration's top-level `contentHash`;
//! one that does not match what is served is a finding. Its absence is not.
//!
//! The draft names base64url but shows a hex example and says nothing of padding, so a
//! published value is read in any of those spellings; what mcplock writes is base64url without
//! padding.

use crate::core::canonical::to_canonical;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// Whether a change at `pointer` inside a declaration is material in the draft's sense (it
/// must be approved again): everything but its `title` and `icons`, which are cosmetic. A
/// field the draft does not classify counts as material (fail closed).
pub fn is_material(pointer: &str) -> bool {
    let first = pointer.strip_prefix('/').unwrap_or(pointer);
    let first = first.split('/').next().unwrap_or_default();
    !matches!(first, "title" | "icons")
}

/// The member a declaration publishes its hash in.
pub const FIELD: &str = "contentHash";

/// SHA-256 over the canonical declaration without [`FIELD`].
pub fn content_hash(declaration: &Map<String, Value>) -> [u8; 32] {
    let mut without = declaration.clone();
    without.remove(FIELD);
    Sha256::digest(to_canonical(&Value::Object(without))).into()
}

/// [`content_hash`] of a held definition: its own digest when it publishes no hash (the same
/// SHA-256 over the same canonical bytes), computed again only when it may.
pub fn of_definition(definition: &crate::core::definition::Definition) -> [u8; 32] {
    let canonical = definition.canonical();
    let needle = b"\"contentHash\"";
    if canonical.windows(needle.len()).any(|w| w == needle) {
        content_hash(&definition.to_map())
    } else {
        *definition.digest().bytes()
    }
}

/// `sha256-` and the unpadded base64url of `hash`.
pub fn encode(hash: &[u8; 32]) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
    )
}

/// What a published hash says of the declaration it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    Matches,
    /// Published and computed (the computed one as [`encode`] writes it).
    Differs {
        published: String,
        computed: String,
    },
    /// Not a `sha256-` hash in any spelling the draft allows: it cannot be checked, so it is
    /// not taken for a match.
    Unreadable {
        published: String,
    },
}

/// The check of `declaration`'s published hash; `None` when it publishes none.
pub fn check(declaration: &Map<String, Value>) -> Option<Published> {
    let published = declaration.get(FIELD)?;
    let text = published
        .as_str()
        .map_or_else(|| published.to_string(), str::to_owned);
    let Some(bytes) = published.as_str().and_then(decode) else {
        return Some(Published::Unreadable { published: text });
    };
    let computed = content_hash(declaration);
    Some(if bytes == computed {
        Published::Matches
    } else {
        Published::Differs {
            published: text,
            computed: encode(&computed),
        }
    })
}

/// The 32 bytes of `sha256-` followed by hex, or by base64url or base64 (padded or not).
fn decode(text: &str) -> Option<[u8; 32]> {
    let body = text.strip_prefix("sha256-")?;
    let hex = |s: &str| -> Option<Vec<u8>> {
        (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
                    .collect::<Option<Vec<u8>>>()
            })
            .flatten()
    };
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let unpadded = body.trim_end_matches('=');
    let bytes = hex(body)
        .or_else(|| URL_SAFE_NO_PAD.decode(unpadded).ok())
        .or_else(|| STANDARD.decode(body).ok())?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The draft's example declaration; its hash computed independently (Python's json with
    /// sorted keys and hashlib) while reading the draft, in base64url and in hex.
    fn example() -> Map<String, Value> {
        json!({
            "name": "delete_resource",
            "title": "Delete a resource",
            "version": "3",
            "description": "Permanently deletes the named resource.",
            "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn only_a_title_or_icons_change_is_cosmetic() {
        for cosmetic in ["/title", "/icons", "/icons/0/src", "title"] {
            assert!(!is_material(cosmetic), "{cosmetic}");
        }
        for material in [
            "",
            "/description",
            "/inputSchema/properties/x",
            "/annotations/readOnlyHint",
            "/_meta",
            "/titles",
        ] {
            assert!(is_material(material), "{material}");
        }
    }

    #[test]
    fn the_drafts_example_hashes_as_computed_independently() {
        let hash = content_hash(&example());
        assert_eq!(
            encode(&hash),
            "sha256-_BktACDy9BOWvlo3ZurXUfy5lxwqb6DhnXb1grvPi5Q"
        );
        assert_eq!(
            hash.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "fc192d0020f2f41396be5a3766ead751fcb9971c2a6fa0e19d76f582bbcf8b94"
        );
    }

    #[test]
    fn a_published_hash_is_read_in_every_spelling_and_held_to_what_is_served() {
        let spellings = [
            "sha256-_BktACDy9BOWvlo3ZurXUfy5lxwqb6DhnXb1grvPi5Q",
            "sha256-_BktACDy9BOWvlo3ZurXUfy5lxwqb6DhnXb1grvPi5Q=",
            "sha256-/BktACDy9BOWvlo3ZurXUfy5lxwqb6DhnXb1grvPi5Q=",
            "sha256-fc192d0020f2f41396be5a3766ead751fcb9971c2a6fa0e19d76f582bbcf8b94",
        ];
        for spelling in spellings {
            let mut served = example();
            served.insert(FIELD.into(), json!(spelling));
            assert_eq!(check(&served), Some(Published::Matches), "{spelling}");
            served.insert("description".into(), json!("Deletes nothing."));
            assert!(
                matches!(check(&served), Some(Published::Differs { .. })),
                "{spelling}"
            );
        }
        assert_eq!(check(&example()), None);
        let mut odd = example();
        odd.insert(FIELD.into(), json!("md5-abc"));
        assert!(matches!(check(&odd), Some(Published::Unreadable { .. })));
        odd.insert(FIELD.into(), json!(42));
        assert!(matches!(check(&odd), Some(Published::Unreadable { .. })));
    }
}
