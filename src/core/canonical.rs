//! Canonical JSON: RFC 8785 (JSON Canonicalization Scheme).
//!
//! One canonical form underlies every digest and signature mcplock makes. Input is parsed
//! strictly (see [`crate::core::json`]); output follows RFC 8785: object members sorted by the
//! UTF-16 code units of their names, numbers serialized as ECMAScript does for IEEE 754 doubles,
//! strings with the minimal escapes, no whitespace. See docs/canonical-json.md for why not
//! olpc-cjson.

use crate::core::json::{JsonError, parse_strict};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// RFC 8785 bytes of an already-parsed value.
pub fn to_canonical(value: &Value) -> Vec<u8> {
    // A serde_json::Value always has string keys and finite numbers, the only two things the
    // canonicalizer can refuse; an empty result would fail every later digest comparison loudly.
    serde_json_canonicalizer::to_vec(value).unwrap_or_default()
}

/// Parses `text` strictly and returns its RFC 8785 bytes.
pub fn canonicalize(text: &[u8]) -> Result<Vec<u8>, JsonError> {
    parse_strict(text).map(|v| to_canonical(&v))
}

/// A SHA-256 digest, written `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The digest of a value's canonical form.
    pub fn of_value(value: &Value) -> Digest {
        Digest::of_bytes(&to_canonical(value))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses `sha256:<hex>`; `None` for anything else (other algorithms, case, length).
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let hi = hex_value(pair[0])?;
            let lo = hex_value(pair[1])?;
            out[i] = hi << 4 | lo;
        }
        Some(Digest(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn vectors() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/jcs")
    }

    #[test]
    fn matches_every_vector_file() {
        let mut checked = 0;
        for entry in std::fs::read_dir(vectors()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".input.json") else {
                continue;
            };
            let input = std::fs::read(&path).unwrap();
            let expected = std::fs::read(vectors().join(format!("{stem}.expected.json"))).unwrap();
            let got = canonicalize(&input).unwrap_or_else(|e| panic!("{stem}: {e}"));
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "vector {stem}"
            );
            checked += 1;
        }
        assert!(checked >= 9, "only {checked} vectors found");
    }

    #[test]
    fn serializes_numbers_as_rfc8785_appendix_b() {
        let table = std::fs::read_to_string(vectors().join("numbers.txt")).unwrap();
        let mut checked = 0;
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (bits, expected) = line.split_once(' ').unwrap();
            let value = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            let number = Value::Number(serde_json::Number::from_f64(value).unwrap());
            assert_eq!(
                String::from_utf8(to_canonical(&number)).unwrap(),
                expected,
                "bits {bits}"
            );
            checked += 1;
        }
        assert!(checked >= 20);
    }

    #[test]
    fn rejects_what_strict_parsing_rejects() {
        assert!(canonicalize(br#"{"a":1,"a":2}"#).is_err());
        assert!(canonicalize(br#""\ud800""#).is_err());
        assert!(canonicalize(b"\"\xff\"").is_err());
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonicalizing_twice_changes_nothing(value in any_json()) {
            let once = to_canonical(&value);
            let twice = canonicalize(&once).expect("canonical output parses");
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn pretty_printing_does_not_change_the_canonical_form(value in any_json()) {
            let pretty = serde_json::to_vec_pretty(&value).unwrap();
            prop_assert_eq!(canonicalize(&pretty).unwrap(), to_canonical(&value));
        }
    }

    #[test]
    fn digests_round_trip_through_text() {
        let d = Digest::of_bytes(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&d.to_string()), Some(d));
        assert_eq!(Digest::parse("sha256:BA7816BF"), None);
        assert_eq!(Digest::parse(&d.to_string().to_uppercase()), None);
        assert_eq!(Digest::parse("sha512:00"), None);
    }

    #[test]
    fn reformatting_does_not_change_the_digest() {
        let a = canonicalize(br#"{"b": [1, 2.50, {"y":1,"x":2}], "a": "\u0041"}"#).unwrap();
        let b = canonicalize(b"{\"a\":\"A\",\n  \"b\":[1,2.5,{\"x\":2,\"y\":1}]}").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, br#"{"a":"A","b":[1,2.5,{"x":2,"y":1}]}"#);
    }
}
