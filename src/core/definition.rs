//! One item's definition (a tool, a prompt, a resource or a template), held as its canonical
//! text and digested once.
//!
//! A definition is read far more often by digest than by field: a lockfile check, a diff of
//! unchanged items and the proxy's drift check compare digests only. Holding each definition as
//! its RFC 8785 bytes (about a fifth of a `serde_json::Value` tree of it) lets a server of tens
//! of thousands of tools be scanned, locked and compared in memory proportional to its text;
//! the fields are parsed only where a classifier, a rule or the enforcement needs them.
//!
//! Holding the canonical form means what is kept is what the digest covers: member order and
//! number spelling are the canonical ones (`1.0` is kept as `1`, an integer beyond 2^53 as the
//! double a JavaScript reader sees), which is exactly what every comparison already used.

use crate::core::canonical::{Digest, object_to_canonical};
use serde_json::{Map, Value};
use std::fmt;

/// A definition: an object's canonical bytes and their digest.
///
/// Invariant: `canonical` is the RFC 8785 form of a JSON object, written by
/// [`crate::core::canonical`] (never taken from outside), so it always parses back.
#[derive(Clone, PartialEq, Eq)]
pub struct Definition {
    canonical: Box<[u8]>,
    digest: Digest,
}

impl Definition {
    /// The definition of an object as served or read.
    pub fn new(object: &Map<String, Value>) -> Definition {
        let members: Vec<(&str, &Value)> = object.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Definition::from_canonical(object_to_canonical(&members))
    }

    /// Bytes the canonical writer produced for an object (also by a streaming pass).
    pub(crate) fn from_canonical(canonical: Vec<u8>) -> Definition {
        Definition {
            digest: Digest::of_bytes(&canonical),
            canonical: canonical.into_boxed_slice(),
        }
    }

    /// The digest the lockfile records for this definition.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The RFC 8785 bytes.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// The definition's fields, parsed now.
    pub fn to_map(&self) -> Map<String, Value> {
        // Canonical bytes of an object always parse to an object (see the invariant); an
        // empty map could only come from a broken invariant, and then the digest still differs
        // from any real definition's, so no comparison can take it for unchanged.
        serde_json::from_slice(&self.canonical).unwrap_or_default()
    }

    /// The definition as a JSON value, parsed now.
    pub fn to_value(&self) -> Value {
        Value::Object(self.to_map())
    }

    /// Changes the definition's fields (parsed, changed, held again with a new digest).
    pub fn edit(&mut self, change: impl FnOnce(&mut Map<String, Value>)) {
        let mut map = self.to_map();
        change(&mut map);
        *self = Definition::new(&map);
    }

    /// One field, parsed now (the whole definition is parsed to find it).
    pub fn get(&self, field: &str) -> Option<Value> {
        self.to_map().remove(field)
    }
}

impl From<&Map<String, Value>> for Definition {
    fn from(object: &Map<String, Value>) -> Definition {
        Definition::new(object)
    }
}

impl fmt::Debug for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.canonical))
    }
}

/// Written as the object it is (member names in sorted order, as every mcplock document).
impl serde::Serialize for Definition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::canonical::to_canonical;
    use proptest::prelude::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn holds_the_canonical_form_and_its_digest() {
        let map = object(json!({"name": "t", "b": 1.0, "a": [true, null, "x"]}));
        let definition = Definition::new(&map);
        assert_eq!(
            definition.canonical(),
            br#"{"a":[true,null,"x"],"b":1,"name":"t"}"#
        );
        assert_eq!(
            definition.digest(),
            Digest::of_value(&Value::Object(map.clone()))
        );
        // Parsed back it is the same value (the number as its canonical spelling).
        assert_eq!(
            definition.to_value(),
            json!({"name": "t", "b": 1, "a": [true, null, "x"]})
        );
        assert_eq!(definition.get("name"), Some(json!("t")));
        assert_eq!(definition.get("missing"), None);
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e12f64..1e12).prop_map(|f| json!(f)),
            "[a-zA-Z0-9 \u{e9}\u{1F600}\u{FFFD}\"\\\\]{0,8}".prop_map(Value::String),
        ]
    }

    fn tree() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\u{e9}\u{FF21}\u{1F600}]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Held, parsed back and held again, a definition is the same bytes and digest: what a
        /// lockfile writes from it is read back as the same definition.
        #[test]
        fn the_canonical_form_is_a_fixed_point(
            members in prop::collection::btree_map("[a-z\u{FF21}\u{1F600}]{1,6}", tree(), 0..6)
        ) {
            let map: Map<String, Value> = members.into_iter().collect();
            let first = Definition::new(&map);
            prop_assert_eq!(first.digest(), Digest::of_value(&Value::Object(map.clone())));
            let again = Definition::new(&first.to_map());
            prop_assert_eq!(&again, &first);
            prop_assert_eq!(to_canonical(&first.to_value()), first.canonical().to_vec());
            let written = serde_json::to_vec_pretty(&first).unwrap();
            let read: Map<String, Value> = serde_json::from_slice(&written).unwrap();
            prop_assert_eq!(Definition::new(&read), first);
        }
    }
}
