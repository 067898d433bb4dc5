//! The snapshot of one live server: everything it offers, exactly as served.

use crate::core::definition::Definition;
use serde_json::{Map, Value};
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

    /// The kind whose [`ItemKind::field`] is `field`.
    pub fn from_field(field: &str) -> Option<ItemKind> {
        ItemKind::ALL.into_iter().find(|kind| kind.field() == field)
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

/// Items of one kind, keyed by their identifying field, each kept as its canonical form.
pub type Items = BTreeMap<String, Definition>;

/// JSON-RPC error codes with which a server may answer a list method whose capability it
/// advertised, meaning "I do not serve this list": -32601 (method not found; a low-level SDK
/// server that registered `resources/list` but no templates handler) and -32602 (invalid
/// params). Any other error still fails the scan.
pub const UNSERVED_CODES: [i64; 2] = [-32601, -32602];

/// True when `code` means "advertised but not served" for a list method.
pub fn is_unserved_code(code: i64) -> bool {
    UNSERVED_CODES.contains(&code)
}

/// What a scan found for one kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Listing {
    /// The capability was not advertised, so the list was not asked for.
    NotOffered,
    /// The capability was advertised, but the list method answered with this error code (one
    /// of [`UNSERVED_CODES`]): advertised but not served. Recorded, never taken for empty.
    Unserved(i64),
    /// Every item, as served.
    Served(Items),
}

/// What a scan tolerated from the server. Reported, never locked and never in a digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tolerated {
    /// Lines on stdout that were not JSON (start-up banners, stray log lines) and were skipped.
    pub stdout_non_json_lines: u64,
}

/// Turns the items a server listed into a keyed map, rejecting non-objects, missing keys and
/// duplicates. Nothing is dropped; each item is kept as its canonical form.
pub fn index_items<V: std::borrow::Borrow<Value>>(
    kind: ItemKind,
    served: impl IntoIterator<Item = V>,
) -> Result<Items, ListingError> {
    let mut items = Items::new();
    for (index, item) in served.into_iter().enumerate() {
        let (key, definition) = item_of(kind, index, item.borrow())?;
        insert_item(&mut items, kind, key, definition)?;
    }
    Ok(items)
}

/// The key and definition of the `index`th item a server listed.
pub fn item_of(
    kind: ItemKind,
    index: usize,
    item: &Value,
) -> Result<(String, Definition), ListingError> {
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
    Ok((key.clone(), Definition::new(obj)))
}

/// Adds one item, refusing a second item with the same key.
pub fn insert_item(
    items: &mut Items,
    kind: ItemKind,
    key: String,
    definition: Definition,
) -> Result<(), ListingError> {
    match items.entry(key) {
        std::collections::btree_map::Entry::Occupied(taken) => Err(ListingError::Duplicate {
            noun: kind.noun(),
            field: kind.key_field(),
            key: taken.key().clone(),
        }),
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(definition);
            Ok(())
        }
    }
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

pub use crate::core::launch::Launch;

/// Everything one server offered during one scan.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub launch: Option<Launch>,
    /// What the launch runs on this machine, resolved after the scan (a local launch only).
    pub artifact: Option<crate::core::artifact::Artifact>,
    /// A remote server's OAuth surface, as discovery met it (when it was reached by OAuth).
    pub authorization: Option<crate::core::authz::AuthSurface>,
    pub era: Era,
    pub protocol_version: String,
    /// `serverInfo` as served; a 2026-07-28 server may omit it.
    pub server_info: Option<Value>,
    pub capabilities: Map<String, Value>,
    pub instructions: Option<String>,
    /// What mcplock declared to the server (servers may offer more to a more capable client).
    pub client_capabilities: Map<String, Value>,
    /// What each kind's listing found; a kind missing from the map was not offered.
    pub listings: BTreeMap<ItemKind, Listing>,
    /// What the scan tolerated (not part of what the server offers).
    pub tolerated: Tolerated,
}

impl Snapshot {
    /// True when the server advertised the capability that covers `kind`.
    pub fn advertises(capabilities: &Map<String, Value>, kind: ItemKind) -> bool {
        capabilities
            .get(kind.capability())
            .is_some_and(|v| !v.is_null())
    }

    pub fn items(&self, kind: ItemKind) -> Option<&Items> {
        match self.listings.get(&kind) {
            Some(Listing::Served(items)) => Some(items),
            _ => None,
        }
    }

    /// The error code of a kind that was advertised but not served.
    pub fn unserved(&self, kind: ItemKind) -> Option<i64> {
        match self.listings.get(&kind) {
            Some(Listing::Unserved(code)) => Some(*code),
            _ => None,
        }
    }

    pub fn count(&self, kind: ItemKind) -> usize {
        self.items(kind).map_or(0, BTreeMap::len)
    }

    /// Reads a `scan --format json` document back (strictly: its format version, its fields,
    /// and every listing re-indexed, so duplicates are still rejected).
    pub fn from_json(value: &Value) -> Result<Snapshot, String> {
        let obj = value.as_object().ok_or("a snapshot is a JSON object")?;
        check_format(obj)?;
        let object = |key: &str| -> Result<Map<String, Value>, String> {
            obj.get(key)
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| format!("missing object field {key:?}"))
        };
        let text = |key: &str| -> Result<String, String> {
            obj.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("missing string field {key:?}"))
        };
        let era = match text("era")?.as_str() {
            "legacy" => Era::Legacy,
            "modern" => Era::Modern,
            other => return Err(format!("unknown era {other:?}")),
        };
        let (launch, authorization, artifact) = records(obj)?;
        let tolerated = Tolerated {
            stdout_non_json_lines: obj
                .get("tolerated")
                .and_then(|t| t.get("stdoutNonJsonLines"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
        };
        Ok(Snapshot {
            launch,
            artifact,
            authorization,
            era,
            protocol_version: text("protocolVersion")?,
            server_info: obj.get("serverInfo").filter(|v| !v.is_null()).cloned(),
            capabilities: object("capabilities")?,
            instructions: obj
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
            client_capabilities: object("clientCapabilities")?,
            listings: listings(obj)?,
            tolerated,
        })
    }

    pub fn server_name(&self) -> Option<&str> {
        self.server_info.as_ref()?.get("name")?.as_str()
    }

    /// The `scan --format json` document.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    /// The `scan --format json` text: pretty-printed, keys sorted, items sorted by key, final
    /// newline, so the same server gives the same bytes. Serialized straight from borrowed data
    /// (a large server's listing is never copied).
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.view()).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Each item's SEP-3140 content hash, by kind and key (derived from the definitions; a
    /// reader need not keep it).
    fn content_hashes(&self) -> BTreeMap<&'static str, BTreeMap<&str, String>> {
        use crate::core::peers::sep3140;
        ItemKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let items = self.items(kind)?;
                let hashes = items
                    .iter()
                    .map(|(key, d)| (key.as_str(), sep3140::encode(&sep3140::of_definition(d))))
                    .collect();
                Some((kind.field(), hashes))
            })
            .collect()
    }

    fn view(&self) -> SnapshotView<'_> {
        let listing = |kind| self.items(kind).map(|items| items.values().collect());
        let unserved: BTreeMap<&'static str, UnservedView> = ItemKind::ALL
            .into_iter()
            .filter_map(|kind| {
                Some((
                    kind.field(),
                    UnservedView {
                        code: self.unserved(kind)?,
                    },
                ))
            })
            .collect();
        let tolerated = (self.tolerated != Tolerated::default()).then_some(TolerateView {
            stdout_non_json_lines: self.tolerated.stdout_non_json_lines,
        });
        SnapshotView {
            artifact: self
                .artifact
                .as_ref()
                .map(crate::core::artifact::Artifact::to_json),
            authorization: self
                .authorization
                .as_ref()
                .map(crate::core::authz::AuthSurface::to_json),
            content_hashes: self.content_hashes(),
            capabilities: &self.capabilities,
            client_capabilities: &self.client_capabilities,
            era: self.era.as_str(),
            instructions: self.instructions.as_deref(),
            launch: self.launch.as_ref().map(Launch::to_json),
            mcplock_snapshot: SNAPSHOT_FORMAT,
            prompts: listing(ItemKind::Prompt),
            protocol_version: &self.protocol_version,
            resource_templates: listing(ItemKind::ResourceTemplate),
            resources: listing(ItemKind::Resource),
            server_info: self.server_info.as_ref(),
            tolerated,
            tools: listing(ItemKind::Tool),
            unserved,
        }
    }
}

/// A snapshot document's `mcplockSnapshot` is the format this mcplock reads.
fn check_format(obj: &Map<String, Value>) -> Result<(), String> {
    match obj.get("mcplockSnapshot").and_then(Value::as_u64) {
        Some(SNAPSHOT_FORMAT) => Ok(()),
        Some(v) => Err(format!(
            "snapshot format {v} is not one this mcplock reads ({SNAPSHOT_FORMAT}); upgrade mcplock"
        )),
        None => Err("no \"mcplockSnapshot\": 1; not a scan snapshot".into()),
    }
}

type Records = (
    Option<Launch>,
    Option<crate::core::authz::AuthSurface>,
    Option<crate::core::artifact::Artifact>,
);

/// A snapshot's optional records of how the server was reached: its launch, its OAuth surface
/// and what the launch runs.
fn records(obj: &Map<String, Value>) -> Result<Records, String> {
    let launch = match obj.get("launch") {
        None => None,
        Some(l) => Some(
            l.as_object()
                .ok_or("launch is not an object".to_string())
                .and_then(|l| Launch::from_json(l).map_err(|e| format!("launch: {e}")))?,
        ),
    };
    let authorization = match obj.get("authorization") {
        None => None,
        Some(a) => Some(
            crate::core::authz::AuthSurface::from_json(a)
                .map_err(|e| format!("authorization: {e}"))?,
        ),
    };
    let artifact = match obj.get("artifact") {
        None => None,
        Some(a) => Some(crate::core::artifact::Artifact::from_json(a).map_err(|e| e.to_string())?),
    };
    Ok((launch, authorization, artifact))
}

/// What each kind's listing found: its items (re-indexed, so duplicates are still refused),
/// unserved with its code, or not offered.
fn listings(obj: &Map<String, Value>) -> Result<BTreeMap<ItemKind, Listing>, String> {
    let unserved = match obj.get("unserved") {
        None => Map::new(),
        Some(Value::Object(u)) => u.clone(),
        Some(_) => return Err("unserved is not an object".into()),
    };
    if let Some(unknown) = unserved.keys().find(|k| ItemKind::from_field(k).is_none()) {
        return Err(format!("unserved names an unknown kind {unknown:?}"));
    }
    let mut listings = BTreeMap::new();
    for kind in ItemKind::ALL {
        let listing = match (obj.get(kind.field()), unserved.get(kind.field())) {
            (None | Some(Value::Null), None) => Listing::NotOffered,
            (None | Some(Value::Null), Some(u)) => {
                Listing::Unserved(unserved_code(u).ok_or_else(|| {
                    format!(
                        "unserved.{} must be {{\"code\": -32601 or -32602}}",
                        kind.field()
                    )
                })?)
            }
            (Some(Value::Array(items)), None) => {
                Listing::Served(index_items(kind, items).map_err(|e| e.to_string())?)
            }
            (Some(Value::Array(_)), Some(_)) => {
                return Err(format!("{} is both listed and unserved", kind.field()));
            }
            (Some(_), _) => return Err(format!("{} is not an array", kind.field())),
        };
        listings.insert(kind, listing);
    }
    Ok(listings)
}

/// `{"code": N}` with N one of [`UNSERVED_CODES`].
pub fn unserved_code(value: &Value) -> Option<i64> {
    let obj = value.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.get("code")?.as_i64().filter(|c| is_unserved_code(*c))
}

/// The serialized snapshot. Fields are declared in sorted order: serde writes them in
/// declaration order, and the output must have sorted keys.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<Value>,
    capabilities: &'a Map<String, Value>,
    client_capabilities: &'a Map<String, Value>,
    /// SEP-3140's hash of each item (derived; docs/peers.md).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    content_hashes: BTreeMap<&'static str, BTreeMap<&'a str, String>>,
    era: &'static str,
    instructions: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    launch: Option<Value>,
    mcplock_snapshot: u64,
    prompts: Option<Vec<&'a Definition>>,
    protocol_version: &'a str,
    resource_templates: Option<Vec<&'a Definition>>,
    resources: Option<Vec<&'a Definition>>,
    server_info: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tolerated: Option<TolerateView>,
    tools: Option<Vec<&'a Definition>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    unserved: BTreeMap<&'static str, UnservedView>,
}

#[derive(serde::Serialize)]
struct UnservedView {
    code: i64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TolerateView {
    stdout_non_json_lines: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(items["b"].get("x-unknown"), Some(json!([1])));
        assert_eq!(items["a"].get("_meta"), Some(json!({"k":1})));
    }

    #[test]
    fn json_output_has_sorted_keys() {
        let snapshot = Snapshot {
            artifact: None,
            authorization: None,
            launch: Some(Launch::Stdio {
                command: "node".into(),
                args: vec!["s.js".into()],
                env_keys: vec!["K".into()],
                cwd: None,
            }),
            era: Era::Legacy,
            protocol_version: "2025-11-25".into(),
            server_info: Some(json!({"version":"1","name":"s"})),
            capabilities: Map::new(),
            instructions: None,
            client_capabilities: Map::new(),
            listings: BTreeMap::from([
                (
                    ItemKind::Tool,
                    Listing::Served(
                        index_items(
                            ItemKind::Tool,
                            vec![json!({"name":"b"}), json!({"name":"a"})],
                        )
                        .unwrap(),
                    ),
                ),
                (ItemKind::Prompt, Listing::Unserved(-32602)),
            ]),
            tolerated: Tolerated {
                stdout_non_json_lines: 1,
            },
        };
        let text = snapshot.to_json_pretty();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        // serde_json's map is sorted: re-serializing sorts keys; the text must already be so.
        assert_eq!(
            serde_json::to_string_pretty(&reparsed).unwrap() + "\n",
            text
        );
        assert_eq!(reparsed["tools"][0]["name"], "a");
        assert_eq!(reparsed["prompts"], Value::Null);
    }

    #[test]
    fn snapshots_round_trip_through_json() {
        let snapshot = Snapshot {
            artifact: None,
            authorization: None,
            launch: Some(Launch::Stdio {
                command: "node".into(),
                args: vec![],
                env_keys: vec![],
                cwd: None,
            }),
            era: Era::Modern,
            protocol_version: "2026-07-28".into(),
            server_info: None,
            capabilities: Map::new(),
            instructions: Some("hi".into()),
            client_capabilities: Map::new(),
            listings: BTreeMap::from([
                (
                    ItemKind::Tool,
                    Listing::Served(
                        index_items(ItemKind::Tool, vec![json!({"name": "t"})]).unwrap(),
                    ),
                ),
                (ItemKind::Prompt, Listing::NotOffered),
                (ItemKind::ResourceTemplate, Listing::Unserved(-32601)),
                (ItemKind::Resource, Listing::Served(Items::new())),
            ]),
            tolerated: Tolerated {
                stdout_non_json_lines: 2,
            },
        };
        let doc = snapshot.to_json();
        assert_eq!(
            doc["unserved"],
            json!({"resourceTemplates": {"code": -32601}})
        );
        assert_eq!(doc["resourceTemplates"], Value::Null);
        assert_eq!(doc["tolerated"], json!({"stdoutNonJsonLines": 2}));
        let back = Snapshot::from_json(&doc).unwrap();
        assert_eq!(back, snapshot);
        let mut both = doc.clone();
        both["resourceTemplates"] = json!([]);
        assert!(Snapshot::from_json(&both).unwrap_err().contains("both"));
        let mut bad = doc.clone();
        bad["unserved"]["resourceTemplates"]["code"] = json!(-32000);
        assert!(Snapshot::from_json(&bad).is_err());
        assert!(Snapshot::from_json(&json!({"mcplockSnapshot": 9})).is_err());
        let mut dup = snapshot.to_json();
        dup["tools"] = json!([{"name": "t"}, {"name": "t"}]);
        assert!(Snapshot::from_json(&dup).unwrap_err().contains("two tools"));
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
