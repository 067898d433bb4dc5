//! Strict JSON parsing for untrusted input.
//!
//! `serde_json` already rejects invalid UTF-8 and lone surrogate escapes when it builds strings,
//! but it silently keeps the last of two duplicate object keys. Duplicate keys are a classic
//! signature-confusion trick (two parsers read two different documents), so every document
//! mcplock reads goes through [`parse_strict`], which rejects them.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::collections::HashSet;
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// Why a document is not acceptable JSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct JsonError {
    message: String,
}

impl JsonError {
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Maximum nesting depth accepted (below serde_json's own recursion limit of 128).
pub const MAX_DEPTH: usize = 100;

/// Parses one JSON document, rejecting duplicate object keys (also keys that are equal after
/// Unicode NFC normalization: they render the same but digest differently), invalid UTF-8,
/// lone surrogates, trailing data and nesting deeper than [`MAX_DEPTH`].
pub fn parse_strict(bytes: &[u8]) -> Result<Value, JsonError> {
    utf8(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed { depth: 0 }
        .deserialize(&mut de)
        .map_err(|e| JsonError {
            message: describe(&e),
        })?;
    de.end().map_err(|e| JsonError {
        message: describe(&e),
    })?;
    Ok(value)
}

/// Checks one JSON document as [`parse_strict`] does, building nothing (only each object's
/// member names are held while it is read): for a message whose parts are built later, or
/// never (a relay that forwards the bytes).
pub fn check_strict(bytes: &[u8]) -> Result<(), JsonError> {
    utf8(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let checked = CheckSeed { depth: 0 }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    checked.map_err(|e| JsonError {
        message: describe(&e),
    })
}

/// As the strict parser does: the whole text must be UTF-8, not only its strings.
fn utf8(bytes: &[u8]) -> Result<(), JsonError> {
    std::str::from_utf8(bytes).map(drop).map_err(|e| JsonError {
        message: format!(
            "invalid JSON text: not valid UTF-8 at byte {}",
            e.valid_up_to()
        ),
    })
}

fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    // serde_json phrases lone surrogates tersely; name them so a reader knows why.
    if text.contains("surrogate") || text.contains("hex escape") {
        format!("invalid JSON text (a \\u escape that is a lone UTF-16 surrogate): {text}")
    } else {
        format!("invalid JSON: {text}")
    }
}

/// Builds one value as [`parse_strict`] does, `depth` levels down a document being read (for
/// a reader that builds a document's parts one at a time).
pub struct StrictSeed {
    depth: usize,
}

impl StrictSeed {
    pub fn at_depth(depth: usize) -> StrictSeed {
        StrictSeed { depth }
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor { depth: self.depth })
    }
}

struct StrictVisitor {
    depth: usize,
}

impl StrictVisitor {
    fn nested<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            Err(E::custom(format_args!(
                "nesting deeper than {MAX_DEPTH} levels"
            )))
        } else {
            Ok(self.depth + 1)
        }
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed { depth })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.nested()?;
        let mut object = Map::new();
        // NFC forms of the keys, kept only once a non-ASCII key appears (ASCII is its own NFC).
        let mut normalized: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key.is_ascii() && normalized.is_none() {
                // The common case, with one lookup: a duplicate is refused before its value.
                match object.entry(key) {
                    serde_json::map::Entry::Vacant(slot) => {
                        slot.insert(map.next_value_seed(StrictSeed { depth })?);
                        continue;
                    }
                    serde_json::map::Entry::Occupied(taken) => {
                        return Err(de::Error::custom(format_args!(
                            "duplicate object key {:?}",
                            taken.key()
                        )));
                    }
                }
            }
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate object key {:?}",
                    key
                )));
            }
            if !key.is_ascii() || normalized.is_some() {
                let forms = normalized
                    .get_or_insert_with(|| object.keys().map(|k| k.nfc().collect()).collect());
                if !forms.insert(key.nfc().collect()) {
                    return Err(de::Error::custom(format_args!(
                        "object key {:?} is the same as another key after Unicode NFC normalization (they look alike but digest differently)",
                        key
                    )));
                }
            }
            let value = map.next_value_seed(StrictSeed { depth })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

struct CheckSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for CheckSeed {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl CheckSeed {
    fn nested<E: de::Error>(&self) -> Result<usize, E> {
        StrictVisitor { depth: self.depth }.nested()
    }
}

impl<'de> Visitor<'de> for CheckSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        StrictVisitor { depth: self.depth }.visit_f64(v).map(drop)
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.nested()?;
        while seq.next_element_seed(CheckSeed { depth })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.nested()?;
        let mut names: HashSet<String> = HashSet::new();
        // NFC forms, kept only once a non-ASCII name appears, as in [`StrictVisitor`].
        let mut normalized: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            if names.contains(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate object key {key:?}"
                )));
            }
            if !key.is_ascii() || normalized.is_some() {
                let forms = normalized
                    .get_or_insert_with(|| names.iter().map(|k| k.nfc().collect()).collect());
                if !forms.insert(key.nfc().collect()) {
                    return Err(de::Error::custom(format_args!(
                        "object key {key:?} is the same as another key after Unicode NFC normalization (they look alike but digest differently)"
                    )));
                }
            }
            names.insert(key);
            map.next_value_seed(CheckSeed { depth })?;
        }
        Ok(())
    }
}

/// Escapes a JSON pointer token (RFC 6901): `~` as `~0`, `/` as `~1`.
pub fn pointer_escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The unescaped tokens of a JSON pointer (`/a~1b/c~0d` is `a/b`, `c~d`); empty for `""`.
pub fn pointer_tokens(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

impl crate::core::code::Coded for JsonError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::JsonInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_plain_documents() {
        let v = parse_strict(br#"{"a":[1,2.5,-0,"x",null,true],"b":{"c":1e3}}"#).unwrap();
        assert_eq!(v["a"][1], json!(2.5));
        assert_eq!(v["b"]["c"], json!(1000.0));
    }

    #[test]
    fn rejects_duplicate_keys_at_any_depth() {
        let err = parse_strict(br#"{"a":{"b":1,"b":2}}"#).unwrap_err();
        assert!(
            err.message().contains("duplicate object key \"b\""),
            "{err}"
        );
        assert!(parse_strict(br#"{"a":1,"a":1}"#).is_err());
    }

    #[test]
    fn regression_issue_13_rejects_keys_equal_after_nfc() {
        // "é" precomposed (U+00E9) and decomposed (e + U+0301); the Kelvin sign normalizes to K.
        for doc in [
            "{\"caf\u{e9}\":1,\"cafe\u{301}\":2}",
            "{\"cafe\u{301}\":1,\"a\":0,\"caf\u{e9}\":2}",
            "{\"K\":1,\"\u{212a}\":2}",
            "{\"x\":{\"\u{212a}\":1,\"K\":2}}",
        ] {
            let err = parse_strict(doc.as_bytes()).unwrap_err();
            assert!(err.message().contains("NFC"), "{doc}: {err}");
        }
        // Distinct after normalization: fine, and ASCII-only objects take the fast path.
        assert!(parse_strict("{\"caf\u{e9}\":1,\"cafe\":2,\"k\":3}".as_bytes()).is_ok());
        assert!(parse_strict(br#"{"a":1,"b":2}"#).is_ok());
    }

    #[test]
    fn rejects_lone_surrogates_and_bad_utf8() {
        let err = parse_strict(br#"{"a":"x\ud800y"}"#).unwrap_err();
        assert!(err.message().contains("surrogate"), "{err}");
        let err = parse_strict(b"{\"a\":\"\xff\xfe\"}").unwrap_err();
        assert!(err.message().contains("UTF-8"), "{err}");
        // A correctly paired surrogate is an astral character, and fine.
        let v = parse_strict(br#""\ud83d\ude00""#).unwrap();
        assert_eq!(v, json!("\u{1F600}"));
    }

    #[test]
    fn checking_accepts_and_refuses_exactly_what_parsing_does() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let ok_deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        let docs: Vec<Vec<u8>> = [
            r#"{"a":[1,2.5,-0,"x",null,true],"b":{"c":1e3}}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"{"a":1,"a":1}"#,
            "{\"caf\u{e9}\":1,\"cafe\u{301}\":2}",
            "{\"x\":{\"\u{212a}\":1,\"K\":2}}",
            "{\"caf\u{e9}\":1,\"cafe\":2,\"k\":3}",
            r#"{"a":"x\ud800y"}"#,
            r#"{} {}"#,
            r#"{"a":1e999}"#,
            r#"{"a":"\u00e9","\u0061":2}"#,
            r#"[1,2"#,
            &deep,
            &ok_deep,
        ]
        .iter()
        .map(|d| d.as_bytes().to_vec())
        .chain([b"{\"a\":\"\xff\xfe\"}".to_vec()])
        .collect();
        for doc in docs {
            let parsed = parse_strict(&doc).map(drop);
            assert_eq!(
                check_strict(&doc),
                parsed,
                "{}",
                String::from_utf8_lossy(&doc)
            );
        }
    }

    #[test]
    fn rejects_trailing_data_and_deep_nesting() {
        assert!(parse_strict(br#"{} {}"#).is_err());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse_strict(deep.as_bytes()).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse_strict(ok.as_bytes()).is_ok());
    }

    #[test]
    fn keeps_float_precision() {
        let v = parse_strict(b"0.30000000000000004").unwrap();
        assert_eq!(v.as_f64(), Some(0.30000000000000004));
    }
}
