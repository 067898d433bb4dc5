//! One page of a listing, read from the result's text one item at a time.
//!
//! A `tools/list` result may hold tens of thousands of tools in one message. Built as one
//! `serde_json::Value` it would take about five times its text; read here, each item is built
//! alone, held as its canonical definition and dropped, so a listing costs about its own
//! canonical size. The text was checked strictly when it was read (see
//! [`crate::core::json::check_strict`]), so building each item cannot fail.

use crate::core::json::StrictSeed;
use crate::core::snapshot::{ItemKind, Items, ListingError, insert_item, item_of};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Why a page could not be read.
#[derive(Debug, PartialEq)]
pub enum PageError {
    /// The result is not an object.
    NotAnObject,
    /// The result has no array of the kind's items.
    NoItems,
    /// An item is not one (not an object, no key, a duplicate key).
    Listing(ListingError),
    /// More items than `limit` were listed so far; reading stopped there.
    TooMany,
}

/// Reads one page's items into `served` (which holds the earlier pages' items, so keys are
/// unique across pages), stopping as soon as it would hold more than `limit`. Returns the
/// result's other members (`nextCursor`, `resultType`, `_meta`, ...).
pub fn read_page(
    text: &[u8],
    kind: ItemKind,
    served: &mut Items,
    limit: usize,
) -> Result<Map<String, Value>, PageError> {
    if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(PageError::NotAnObject);
    }
    let mut failure = None;
    let mut found = false;
    let mut de = serde_json::Deserializer::from_slice(text);
    let read = PageSeed {
        kind,
        served,
        limit,
        failure: &mut failure,
        found: &mut found,
    }
    .deserialize(&mut de);
    match (read, failure) {
        (_, Some(failure)) => Err(failure),
        // Any other refusal is the items member not being an array.
        (Err(_), None) => Err(PageError::NoItems),
        (Ok(_), None) if !found => Err(PageError::NoItems),
        (Ok(rest), None) => Ok(rest),
    }
}

struct PageSeed<'a> {
    kind: ItemKind,
    served: &'a mut Items,
    limit: usize,
    failure: &'a mut Option<PageError>,
    found: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list result object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rest = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if name == self.kind.field() {
                *self.found = true;
                map.next_value_seed(ItemsSeed {
                    kind: self.kind,
                    served: &mut *self.served,
                    limit: self.limit,
                    failure: &mut *self.failure,
                })?;
            } else {
                let value = map.next_value_seed(StrictSeed::at_depth(1))?;
                rest.insert(name, value);
            }
        }
        Ok(rest)
    }
}

struct ItemsSeed<'a> {
    kind: ItemKind,
    served: &'a mut Items,
    limit: usize,
    failure: &'a mut Option<PageError>,
}

impl ItemsSeed<'_> {
    fn fail<E: de::Error>(&mut self, failure: PageError) -> E {
        *self.failure = Some(failure);
        E::custom("stopped")
    }
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element_seed(StrictSeed::at_depth(2))? {
            let index = self.served.len();
            let added = item_of(self.kind, index, &item)
                .and_then(|(key, def)| insert_item(self.served, self.kind, key, def));
            if let Err(listing) = added {
                return Err(self.fail(PageError::Listing(listing)));
            }
            if self.served.len() > self.limit {
                return Err(self.fail(PageError::TooMany));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snapshot::index_items;
    use serde_json::json;

    fn read(text: &str, limit: usize) -> (Result<Map<String, Value>, PageError>, Items) {
        let mut served = Items::new();
        let read = read_page(text.as_bytes(), ItemKind::Tool, &mut served, limit);
        (read, served)
    }

    #[test]
    fn reads_the_items_as_indexing_the_built_result_does() {
        let text = r#"{"_meta":{"k":1},"tools":[{"name":"b","inputSchema":{"type":"object","x":1.0}},{"name":"a"}],"nextCursor":"c2"}"#;
        let (rest, served) = read(text, 10);
        assert_eq!(
            rest.unwrap(),
            json!({"_meta": {"k": 1}, "nextCursor": "c2"})
                .as_object()
                .unwrap()
                .clone()
        );
        let built: Value = serde_json::from_str(text).unwrap();
        let expected = index_items(ItemKind::Tool, built["tools"].as_array().unwrap()).unwrap();
        assert_eq!(served, expected);
    }

    #[test]
    fn refuses_what_is_not_a_listing() {
        assert_eq!(read("[]", 10).0, Err(PageError::NotAnObject));
        assert_eq!(read(r#"{"prompts":[]}"#, 10).0, Err(PageError::NoItems));
        assert_eq!(read(r#"{"tools":null}"#, 10).0, Err(PageError::NoItems));
        assert_eq!(
            read(r#"{"tools":{"name":"a"}}"#, 10).0,
            Err(PageError::NoItems)
        );
        assert!(matches!(
            read(r#"{"tools":[{"name":"a"},{"name":"a"}]}"#, 10).0,
            Err(PageError::Listing(ListingError::Duplicate { .. }))
        ));
        assert!(matches!(
            read(r#"{"tools":[{"name":"a"},3]}"#, 10).0,
            Err(PageError::Listing(ListingError::NotAnObject {
                index: 1,
                ..
            }))
        ));
        assert!(matches!(
            read(r#"{"tools":[{"title":"a"}]}"#, 10).0,
            Err(PageError::Listing(ListingError::MissingKey { .. }))
        ));
    }

    #[test]
    fn stops_reading_past_the_limit() {
        let (read, served) = read(r#"{"tools":[{"name":"a"},{"name":"b"},{"name":"c"}]}"#, 1);
        assert_eq!(read, Err(PageError::TooMany));
        assert_eq!(served.len(), 2, "stopped at the first item over the limit");
    }
}
