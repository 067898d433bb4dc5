//! Canonical JSON: RFC 8785 (JSON Canonicalization Scheme).
//!
//! One canonical form underlies every digest and signature mcplock makes. Input is parsed
//! strictly (see [`crate::core::json`]); output follows RFC 8785: object members sorted by the
//! UTF-16 code units of their names, numbers serialized as ECMAScript does for IEEE 754 doubles,
//! strings with the minimal escapes, no whitespace. See docs/canonical-json.md for why not
//! olpc-cjson.

pub mod stream;

use crate::core::json::{JsonError, parse_strict};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// RFC 8785 bytes of an already-parsed value.
pub fn to_canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value);
    out
}

/// Appends the canonical form of `value` to `out`.
pub fn append_canonical(out: &mut Vec<u8>, value: &Value) {
    write_value(out, value);
}

/// JSON pointers (RFC 6901) of the deepest places where `a` and `b` differ in canonical form,
/// in document order, at most `limit`. Numbers are compared as RFC 8785 numbers (`10`, `10.0`
/// and `1e1` are the same); an array whose length changed, a member present on one side only
/// and a change of type are reported where they happen. Empty iff the canonical forms are equal.
pub fn differing_pointers(a: &Value, b: &Value, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk_differences(a, b, &mut path, &mut out, limit);
    out
}

fn walk_differences(a: &Value, b: &Value, path: &mut String, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    let at = path.len();
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                path.push('/');
                path.push_str(&crate::core::json::pointer_escape(key));
                match (x.get(key), y.get(key)) {
                    (Some(u), Some(v)) => walk_differences(u, v, path, out, limit),
                    _ if out.len() < limit => out.push(path.clone()),
                    _ => {}
                }
                path.truncate(at);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                path.push('/');
                path.push_str(&i.to_string());
                walk_differences(u, v, path, out, limit);
                path.truncate(at);
            }
        }
        (Value::Number(_), Value::Number(_)) => {
            if to_canonical(a) != to_canonical(b) {
                out.push(path.clone());
            }
        }
        _ => {
            if a != b {
                out.push(path.clone());
            }
        }
    }
}

/// RFC 8785 bytes of an object given as (name, value) members, in any order.
pub fn object_to_canonical(members: &[(&str, &Value)]) -> Vec<u8> {
    let mut sorted: Vec<&(&str, &Value)> = members.iter().collect();
    sorted.sort_by(|a, b| utf16_order(a.0, b.0));
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(&mut out, name);
        out.push(b':');
        write_value(&mut out, value);
    }
    out.push(b'}');
    out
}

// A direct writer rather than the serde_json_canonicalizer crate: the crate goes through
// serde's serializer and buffers every object, about 60 MB/s here, too slow for lockfiles of
// thousands of tools. The crate stays as the reference this writer is tested against
// (vectors and property tests below).
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's map iterates in code point order, which is RFC 8785's UTF-16 order
            // unless a name holds a character at or above U+E000 (then astral characters,
            // encoded as surrogates D800-DFFF, sort before it): sort only then.
            if map.keys().any(|k| k.chars().any(|c| c >= '\u{E000}')) {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| utf16_order(a.0, b.0));
                write_members(out, members.into_iter());
            } else {
                write_members(out, map.iter());
            }
            out.push(b'}');
        }
    }
}

fn write_members<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (name, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_value(out, value);
    }
}

fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    // RFC 8785 numbers are IEEE 754 doubles printed as ECMAScript does; integers beyond 2^53
    // lose precision exactly as a JavaScript reader would see them.
    let f = if let Some(i) = n.as_i64() {
        i as f64
    } else if let Some(u) = n.as_u64() {
        u as f64
    } else {
        n.as_f64().unwrap_or(0.0)
    };
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(f).as_bytes());
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
    use crate::core::testkit::{any_json, mutate};
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
    fn orders_members_by_utf16_code_units() {
        let v: Value = serde_json::from_str(r#"{"\ufb33":1,"\ud83d\ude00":2,"a":3}"#).unwrap();
        assert_eq!(
            to_canonical(&v),
            "{\"a\":3,\"\u{1F600}\":2,\"\u{FB33}\":1}".as_bytes()
        );
        let one = Value::from(1);
        let two = Value::from(2);
        assert_eq!(
            object_to_canonical(&[("\u{FB33}", &one), ("\u{1F600}", &two)]),
            "{\"\u{1F600}\":2,\"\u{FB33}\":1}".as_bytes()
        );
    }

    #[test]
    fn rejects_what_strict_parsing_rejects() {
        assert!(canonicalize(br#"{"a":1,"a":2}"#).is_err());
        assert!(canonicalize(br#""\ud800""#).is_err());
        assert!(canonicalize(b"\"\xff\"").is_err());
    }

    #[test]
    fn differing_pointers_name_the_deepest_places() {
        let a: Value =
            serde_json::from_str(r#"{"d":"x","s":{"p":{"n":{"maximum":10}},"e":[1],"r":["a"]}}"#)
                .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"d":"y","s":{"p":{"n":{"maximum":1e1}},"e":["1"],"r":["a","b"]},"x":null}"#,
        )
        .unwrap();
        assert_eq!(
            differing_pointers(&a, &b, 10),
            ["/d", "/s/e/0", "/s/r", "/x"]
        );
        assert_eq!(differing_pointers(&a, &b, 2), ["/d", "/s/e/0"]);
        assert!(differing_pointers(&a, &a.clone(), 10).is_empty());
        assert_eq!(differing_pointers(&a, &Value::Null, 10), [""]);
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference_implementation(value in any_json()) {
            let reference = serde_json_canonicalizer::to_vec(&value).unwrap();
            prop_assert_eq!(to_canonical(&value), reference);
        }

        #[test]
        fn canonicalizing_twice_changes_nothing(value in any_json()) {
            let once = to_canonical(&value);
            let twice = canonicalize(&once).expect("canonical output parses");
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn differing_pointers_are_empty_iff_the_canonical_forms_are_equal(
            a in any_json(),
            seed in any::<u64>(),
            leaf in any_json(),
        ) {
            let b = mutate(&a, seed, &leaf);
            for (x, y) in [(&a, &b), (&b, &a), (&a, &a)] {
                let pointers = differing_pointers(x, y, usize::MAX);
                prop_assert_eq!(pointers.is_empty(), to_canonical(x) == to_canonical(y));
                for p in &pointers {
                    let (u, v) = (x.pointer(p), y.pointer(p));
                    prop_assert!(
                        u.map(to_canonical) != v.map(to_canonical),
                        "pointer {} names no difference", p
                    );
                }
            }
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
