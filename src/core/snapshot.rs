//! The snapshot of one live server: everything it offers, exactly as served.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Format version of `scan --format json` output.
pub const SNAPSHOT_FORMAT: u64 = 1;

/// The four kinds of item a server lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ItemKind {
    Tool,
    Prompt,
    ResourceTemplate,
    Resource,
}

impl ItemKind {
    pub const ALL: [ItemKind; 4] = [
        ItemKind::Tool,
        ItemKind::Prompt,
        ItemKind::ResourceTemplate,
        ItemKind::Resource,
    ];

    /// The JSON-RPC method that lists this kind.
    pub fn list_method(self) -> &'static str {
        match self {
            ItemKind::Tool => "tools/list",
            ItemKind::Prompt => "prompts/list",
            ItemKind::ResourceTemplate => "resources/templates/list",
            ItemKind::Resource => "resources/list",
        }
    }

    /// The field of the list result (and of our snapshot) holding the items.
    pub fn field(self) -> &'static str {
        match self {
            ItemKind::Tool => "tools",
            ItemKind::Prompt => "prompts",
            ItemKind::ResourceTemplate => "resourceTemplates",
            ItemKind::Resource => "resources",
        }
    }

    /// The server capability that must be advertised before we ask for this kind.
    pub fn capability(self) -> &'static str {
        match self {
            ItemKind::Tool => "tools",
            ItemKind::Prompt => "prompts",
            ItemKind::ResourceTemplate | ItemKind::Resource => "resources",
        }
    }

    /// The item field that identifies it.
    pub fn key_field(self) -> &'static str {
        match self {
            ItemKind::Tool | ItemKind::Prompt => "name",
            ItemKind::ResourceTemplate => "uriTemplate",
            ItemKind::Resource => "uri",
        }
    }

    /// The notification that says this kind's list changed.
    pub fn list_changed_notification(self) -> &'static str {
        match self {
            ItemKind::Tool => "notifications/tools/list_changed",
            ItemKind::Prompt => "notifications/prompts/list_changed",
            ItemKind::ResourceTemplate | ItemKind::Resource => {
                "notifications/resources/list_changed"
            }
        }
    }

    /// Singular noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            ItemKind::Tool => "tool",
            ItemKind::Prompt => "prompt",
            ItemKind::ResourceTemplate => "resource template",
            ItemKind::Resource => "resource",
        }
    }
}

/// Why a listing cannot be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListingError {
    #[error("{noun} #{index} is not a JSON object")]
    NotAnObject { noun: &'static str, index: usize },
    #[error("{noun} #{index} has no string \"{field}\"")]
    MissingKey {
        noun: &'static str,
        index: usize,
        field: &'static str,
    },
    #[error(
        "the server listed two {noun}s with {field} {key:?}; an agent could not tell them apart"
    )]
    Duplicate {
        noun: &'static str,
        field: &'static str,
        key: String,
    },
}

/// Items of one kind, keyed by their identifying field, each kept exactly as served.
pub type Items = BTreeMap<String, Map<String, Value>>;

/// Turns the items a server listed into a keyed map, rejecting non-objects, missing keys and
/// duplicates. Nothing is dropped or normalized.
pub fn index_items(kind: ItemKind, served: Vec<Value>) -> Result<Items, ListingError> {
    let mut items = Items::new();
    for (index, item) in served.into_iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(ListingError::NotAnObject {
                noun: kind.noun(),
                index,
            });
        };
        let Some(Value::String(key)) = obj.get(kind.key_field()) else {
            return Err(ListingError::MissingKey {
                noun: kind.noun(),
                index,
                field: kind.key_field(),
            });
        };
        let key = key.clone();
        if items.contains_key(&key) {
            return Err(ListingError::Duplicate {
                noun: kind.noun(),
                field: kind.key_field(),
                key,
            });
        }
        items.insert(key, obj);
    }
    Ok(items)
}

/// Which protocol generation a server was spoken to in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// `initialize` handshake (2025-11-25 and earlier).
    Legacy,
    /// Stateless, per-request `_meta` (2026-07-28 and later).
    Modern,
}

impl Era {
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

/// How the server was launched: argv and the names (never the values) of extra env vars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub command: String,
    pub args: Vec<String>,
    pub env_keys: Vec<String>,
}

/// Everything one server offered during one scan.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub launch: Option<Launch>,
    pub era: Era,
    pub protocol_version: String,
    /// `serverInfo` as served; a 2026-07-28 server may omit it.
    pub server_info: Option<Value>,
    pub capabilities: Map<String, Value>,
    pub instructions: Option<String>,
    /// What mcplock declared to the server (servers may offer more to a more capable client).
    pub client_capabilities: Map<String, Value>,
    /// Items per kind; `None` when the server did not advertise the kind (so it was not asked).
    pub listings: BTreeMap<ItemKind, Option<Items>>,
}

impl Snapshot {
    /// True when the server advertised the capability that covers `kind`.
    pub fn advertises(capabilities: &Map<String, Value>, kind: ItemKind) -> bool {
        capabilities
            .get(kind.capability())
            .is_some_and(|v| !v.is_null())
    }

    pub fn items(&self, kind: ItemKind) -> Option<&Items> {
        self.listings.get(&kind).and_then(Option::as_ref)
    }

    pub fn count(&self, kind: ItemKind) -> usize {
        self.items(kind).map_or(0, BTreeMap::len)
    }

    pub fn server_name(&self) -> Option<&str> {
        self.server_info.as_ref()?.get("name")?.as_str()
    }

    /// The `scan --format json` document. Keys come out sorted (serde_json's map is ordered),
    /// items are sorted by their key, so the same server gives the same bytes.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("mcplockSnapshot".into(), json!(SNAPSHOT_FORMAT));
        if let Some(launch) = &self.launch {
            doc.insert(
                "launch".into(),
                json!({"command": launch.command, "args": launch.args, "envKeys": launch.env_keys}),
            );
        }
        doc.insert("era".into(), json!(self.era.as_str()));
        doc.insert("protocolVersion".into(), json!(self.protocol_version));
        doc.insert(
            "serverInfo".into(),
            self.server_info.clone().unwrap_or(Value::Null),
        );
        doc.insert(
            "capabilities".into(),
            Value::Object(self.capabilities.clone()),
        );
        doc.insert(
            "instructions".into(),
            self.instructions.clone().map_or(Value::Null, Value::String),
        );
        doc.insert(
            "clientCapabilities".into(),
            Value::Object(self.client_capabilities.clone()),
        );
        for kind in ItemKind::ALL {
            let value = match self.items(kind) {
                None => Value::Null,
                Some(items) => {
                    Value::Array(items.values().map(|o| Value::Object(o.clone())).collect())
                }
            };
            doc.insert(kind.field().into(), value);
        }
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_and_keeps_every_field() {
        let items = index_items(
            ItemKind::Tool,
            vec![
                json!({"name":"b","inputSchema":{"type":"object"},"x-unknown":[1]}),
                json!({"name":"a","title":"A","_meta":{"k":1},"icons":[]}),
            ],
        )
        .unwrap();
        assert_eq!(items.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(items["b"]["x-unknown"], json!([1]));
        assert_eq!(items["a"]["_meta"], json!({"k":1}));
    }

    #[test]
    fn rejects_duplicates_and_bad_items() {
        let dup = index_items(
            ItemKind::Resource,
            vec![
                json!({"uri":"x://1","name":"a"}),
                json!({"uri":"x://1","name":"b"}),
            ],
        );
        assert!(matches!(dup, Err(ListingError::Duplicate { .. })));
        assert!(matches!(
            index_items(ItemKind::Tool, vec![json!("tool")]),
            Err(ListingError::NotAnObject { .. })
        ));
        assert!(matches!(
            index_items(ItemKind::ResourceTemplate, vec![json!({"name":"t"})]),
            Err(ListingError::MissingKey {
                field: "uriTemplate",
                ..
            })
        ));
    }
}
