//! Canonical bytes of a document in one pass, without building the tree of its large parts.
//!
//! `verify` needs the canonical bytes of a whole lockfile (for the signature) and of every
//! definition in it (for the digests), but never the definitions themselves. Parsing the file
//! into a `serde_json::Value` holds about five times its size; this pass writes the canonical
//! bytes as it parses and builds a tree only of the parts a plan asks for (the skeleton).
//! Values the plan names "spans" are written, not built: the skeleton holds a stub object
//! with only the member the plan keeps, and the span's byte range in the output is recorded.
//!
//! It is a fast path only. It takes the text only in the form mcplock writes (object members
//! in order, every member name ASCII) and answers `None` for anything else, valid or not:
//! the caller then parses strictly, which accepts what is valid and says what is wrong. When it
//! answers, its bytes are exactly [`super::to_canonical`] of [`parse_strict`]'s tree (property
//! tested below): members in order with ASCII names are in RFC 8785 order, strictly increasing
//! names cannot repeat, and ASCII names are their own NFC form, so the strict parser's
//! duplicate and normalization checks cannot fail where this pass succeeded.
//!
//! [`parse_strict`]: crate::core::json::parse_strict

use super::{write_number, write_string};
use crate::core::json::MAX_DEPTH;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Decides, from the member names leading to a value (spans are never inside arrays), whether
/// the value is a span, and which one of its members the skeleton keeps.
pub type Plan<'p> = &'p dyn Fn(&[String]) -> Option<&'static str>;

/// What one pass produced.
pub struct Streamed {
    /// `room` zero bytes (space for a header the caller may write in front), then the
    /// canonical bytes of the whole document.
    pub canonical: Vec<u8>,
    /// The document with every span replaced by an object of its kept members.
    pub skeleton: Value,
    /// The spans in document order.
    pub spans: Vec<Span>,
}

/// A value written but not built.
pub struct Span {
    /// Member names from the root to the value.
    pub path: Vec<String>,
    /// Where its canonical bytes are in [`Streamed::canonical`].
    pub range: Range<usize>,
}

/// Canonicalizes `text`, leaving `room` bytes in front of the output; `None` when the text is
/// not valid JSON in the form mcplock writes, or a span is not an object.
pub fn canonicalize_spans(text: &[u8], room: usize, plan: Plan<'_>) -> Option<Streamed> {
    // As the strict parser does: the whole text must be UTF-8, not only its strings.
    std::str::from_utf8(text).ok()?;
    let mut out = Vec::with_capacity(room + text.len());
    out.resize(room, 0);
    let mut sink = Sink {
        out,
        spans: Vec::new(),
        path: Vec::new(),
        plan,
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let skeleton = Seed {
        sink: &mut sink,
        depth: 0,
        mode: Mode::Tree { planned: true },
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(Streamed {
        canonical: sink.out,
        skeleton,
        spans: sink.spans,
    })
}

struct Sink<'p> {
    out: Vec<u8>,
    spans: Vec<Span>,
    path: Vec<String>,
    plan: Plan<'p>,
}

#[derive(Clone, Copy)]
enum Mode {
    /// Written and built; `planned` while the path is tracked (outside spans).
    Tree { planned: bool },
    /// A span: written; built as a stub of the kept members.
    Span { keep: &'static str },
    /// Written only.
    Bytes,
}

impl Mode {
    fn builds(self) -> bool {
        matches!(self, Mode::Tree { .. })
    }
}

struct Seed<'s, 'p> {
    sink: &'s mut Sink<'p>,
    depth: usize,
    mode: Mode,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Seed<'_, '_> {
    fn nested<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            Err(E::custom("too deep"))
        } else {
            Ok(self.depth + 1)
        }
    }

    /// A scalar: a span must be an object.
    fn scalar<E: de::Error>(
        self,
        write: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce() -> Value,
    ) -> Result<Value, E> {
        if let Mode::Span { .. } = self.mode {
            return Err(E::custom("a span is not an object"));
        }
        write(&mut self.sink.out);
        Ok(if self.mode.builds() {
            value()
        } else {
            Value::Null
        })
    }

    fn number<E: de::Error>(self, n: Number) -> Result<Value, E> {
        self.scalar(|out| write_number(out, &n), || Value::Number(n.clone()))
    }

    fn string<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.scalar(|out| write_string(out, s), || Value::String(s.to_owned()))
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        let text: &[u8] = if v { b"true" } else { b"false" };
        self.scalar(|out| out.extend_from_slice(text), || Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.number(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.number(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match Number::from_f64(v) {
            Some(n) => self.number(n),
            None => Err(E::custom("number is not finite")),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.string(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.scalar(|out| out.extend_from_slice(b"null"), || Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.nested()?;
        let Seed { sink, mode, .. } = self;
        let child = match mode {
            Mode::Span { .. } => return Err(de::Error::custom("a span is not an object")),
            Mode::Tree { .. } => Mode::Tree { planned: false },
            Mode::Bytes => Mode::Bytes,
        };
        sink.out.push(b'[');
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let comma = sink.out.len();
            if !first {
                sink.out.push(b',');
            }
            let seed = Seed {
                sink: &mut *sink,
                depth,
                mode: child,
            };
            match seq.next_element_seed(seed)? {
                Some(item) if child.builds() => items.push(item),
                Some(_) => {}
                None => {
                    // No element followed: take back the separator.
                    sink.out.truncate(comma);
                    break;
                }
            }
            first = false;
        }
        sink.out.push(b']');
        Ok(if mode.builds() {
            Value::Array(items)
        } else {
            Value::Null
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.nested()?;
        let Seed { sink, mode, .. } = self;
        sink.out.push(b'{');
        let mut object = Map::new();
        let mut previous: Option<Cow<'de, str>> = None;
        while let Some(key) = map.next_key_seed(Name)? {
            // ASCII names in strictly increasing byte order are in RFC 8785 order (UTF-16 code
            // units) and distinct; anything else goes to the strict parser.
            if !key.is_ascii() || previous.as_deref().is_some_and(|p| p >= &*key) {
                return Err(de::Error::custom("not in the form mcplock writes"));
            }
            if previous.is_some() {
                sink.out.push(b',');
            }
            write_string(&mut sink.out, &key);
            sink.out.push(b':');
            let child = match mode {
                Mode::Tree { planned: true } => {
                    sink.path.push(key.clone().into_owned());
                    match (sink.plan)(&sink.path) {
                        Some(keep) => Mode::Span { keep },
                        None => Mode::Tree { planned: true },
                    }
                }
                Mode::Tree { planned: false } => Mode::Tree { planned: false },
                Mode::Span { keep } if keep == key => Mode::Tree { planned: false },
                Mode::Span { .. } | Mode::Bytes => Mode::Bytes,
            };
            let start = sink.out.len();
            let value = map.next_value_seed(Seed {
                sink: &mut *sink,
                depth,
                mode: child,
            })?;
            if let Mode::Span { .. } = child {
                let path = sink.path.clone();
                let range = start..sink.out.len();
                sink.spans.push(Span { path, range });
            }
            if let Mode::Tree { planned: true } = mode {
                sink.path.pop();
            }
            if mode.builds() || matches!(mode, Mode::Span { .. }) && child.builds() {
                object.insert(key.clone().into_owned(), value);
            }
            previous = Some(key);
        }
        sink.out.push(b'}');
        Ok(match mode {
            Mode::Bytes => Value::Null,
            _ => Value::Object(object),
        })
    }
}

/// A member name, borrowed from the text when it has no escapes.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::canonical::to_canonical;
    use crate::core::json::parse_strict;
    use crate::core::testkit::any_json;
    use proptest::prelude::*;

    fn no_spans(_: &[String]) -> Option<&'static str> {
        None
    }

    fn ascii_names(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.iter().all(|(k, v)| k.is_ascii() && ascii_names(v)),
            Value::Array(items) => items.iter().all(ascii_names),
            _ => true,
        }
    }

    proptest! {
        #[test]
        fn answers_exactly_what_the_strict_parser_and_writer_answer(doc in any_json(), pretty in any::<bool>(), room in 0usize..4) {
            let text = if pretty { serde_json::to_vec_pretty(&doc) } else { serde_json::to_vec(&doc) };
            let text = text.unwrap();
            let streamed = canonicalize_spans(&text, room, &no_spans);
            // What mcplock writes (sorted, ASCII names) is always taken.
            prop_assert_eq!(streamed.is_some(), ascii_names(&doc));
            if let Some(streamed) = streamed {
                let strict = parse_strict(&text).unwrap();
                prop_assert_eq!(&streamed.canonical[room..], &to_canonical(&strict)[..]);
                prop_assert!(streamed.canonical[..room].iter().all(|&b| b == 0));
                prop_assert_eq!(streamed.skeleton, strict);
            }
        }

        #[test]
        fn never_answers_for_text_the_strict_parser_refuses_or_reorders(doc in any_json(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut text = serde_json::to_vec(&doc).unwrap();
            let at = cut.index(text.len().max(1)).min(text.len().saturating_sub(1));
            if !text.is_empty() {
                text[at] = byte;
            }
            if let Some(streamed) = canonicalize_spans(&text, 0, &no_spans) {
                let strict = parse_strict(&text);
                prop_assert!(strict.is_ok(), "taken, but the strict parser refuses: {:?}", strict);
                prop_assert_eq!(streamed.canonical, to_canonical(&strict.unwrap()));
            }
        }
    }

    #[test]
    fn refuses_what_is_not_in_written_form() {
        for text in [
            &br#"{"b":1,"a":2}"#[..],
            br#"{"a":1,"a":2}"#,
            br#"{"\u00e9":1}"#,
            br#"{"a":1} x"#,
            b"\xff",
            br#"{"a":}"#,
        ] {
            assert!(
                canonicalize_spans(text, 0, &no_spans).is_none(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(canonicalize_spans(deep.as_bytes(), 0, &no_spans).is_none());
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(canonicalize_spans(ok.as_bytes(), 0, &no_spans).is_some());
    }

    #[test]
    fn spans_are_written_and_stubbed() {
        let text =
            br#"{"a": {"x": {"keep": "k", "n": [1.50, {"z": null}], "s": "\u0041"}}, "b": [true]}"#;
        let plan = |path: &[String]| (path == ["a", "x"]).then_some("keep");
        let streamed = canonicalize_spans(text, 3, &plan).unwrap();
        let strict = parse_strict(text).unwrap();
        assert_eq!(&streamed.canonical[3..], &to_canonical(&strict)[..]);
        assert_eq!(streamed.spans.len(), 1);
        assert_eq!(streamed.spans[0].path, ["a", "x"]);
        assert_eq!(
            &streamed.canonical[streamed.spans[0].range.clone()],
            &to_canonical(&strict["a"]["x"])[..]
        );
        assert_eq!(
            streamed.skeleton,
            serde_json::json!({"a": {"x": {"keep": "k"}}, "b": [true]})
        );
        // A span that is not an object is not taken.
        let text = br#"{"a": {"x": [1]}}"#;
        assert!(canonicalize_spans(text, 0, &plan).is_none());
    }
}
