//! The lockfile (format versions 1 to [`LOCKFILE_VERSION`]): what a team approved.
//!
//! Every locked server keeps its launch (argv and env *names*), identity, negotiated protocol
//! version, capabilities, instructions and every item exactly as served, each next to the
//! `sha256:` digest of its RFC 8785 canonical form, plus a digest over the whole server entry
//! and its name. Reading is strict: an unknown version, a duplicate key, an unknown or missing
//! field, or a stored digest that does not match what it covers is an error naming the place,
//! so a hand-edited definition is caught even when the file is not signed.

use crate::core::artifact::Artifact;
use crate::core::authz::AuthSurface;
use crate::core::canonical::stream::{self, Streamed};
use crate::core::canonical::{Digest, object_to_canonical};
use crate::core::definition::Definition;
use crate::core::json::parse_strict;
use crate::core::snapshot::{ItemKind, Items, Launch, Listing, Snapshot, unserved_code};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The newest format version this mcplock reads and writes. Version 2 adds one optional field
/// per server, `unserved`; version 3 adds the URL launch of a remote server; version 4 adds
/// the `artifact` a local launch runs; version 5 adds the artifact's `content` (the files that
/// run); version 6 adds a remote server's OAuth `authorization` surface. A file is written
/// in the oldest version that can hold it, so every lockfile without those keeps the bytes an
/// older mcplock reads.
pub const LOCKFILE_VERSION: u64 = 7;
/// The oldest format version this mcplock reads.
pub const FIRST_LOCKFILE_VERSION: u64 = 1;

/// Why a lockfile cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{place}: {message}")]
pub struct LockfileError {
    /// Where in the document, e.g. `servers["x"].tools["echo"].digest`.
    pub place: String,
    pub message: String,
}

fn err(place: &str, message: impl Into<String>) -> LockfileError {
    LockfileError {
        place: if place.is_empty() {
            "lockfile".into()
        } else {
            place.into()
        },
        message: message.into(),
    }
}

/// One locked server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerLock {
    pub launch: Launch,
    /// What the launch ran when it was locked (version 4; absent for a remote server and in
    /// lockfiles written before artifacts were recorded).
    pub artifact: Option<Artifact>,
    /// A remote server's OAuth surface as the lock met it (version 6; absent when it was
    /// reached without OAuth).
    pub authorization: Option<AuthSurface>,
    pub server_info: Option<Value>,
    pub protocol_version: String,
    pub capabilities: Map<String, Value>,
    pub client_capabilities: Map<String, Value>,
    pub instructions: Option<String>,
    pub tools: Items,
    pub prompts: Items,
    pub resource_templates: Items,
    /// Static resources, only when locked with `--resources` (many servers list data there).
    pub resources: Option<Items>,
    /// Kinds whose capability was advertised but whose list method answered an "unserved"
    /// error code, with that code. Such a kind's items are empty.
    pub unserved: BTreeMap<ItemKind, i64>,
}

/// A whole lockfile: servers by name, and the approvals given for single tools (tier 3).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Lockfile {
    pub servers: BTreeMap<String, ServerLock>,
    /// Version 3 only, written only when there are any; sorted. Covered by the lockfile's
    /// signature like everything else in it.
    pub approvals: Vec<Approval>,
    /// Version 7: the MCP Registry entry each server was locked with (`lock --registry-entry`),
    /// by server name. Covered by the lockfile's signature; never compared with a live server
    /// (a server does not say what the registry published about it).
    pub registry: BTreeMap<String, crate::core::registry::Record>,
}

/// An approval of one tool as locked: valid while the tool's locked digest is this one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Approval {
    pub server: String,
    pub tool: String,
    pub digest: Digest,
    /// Who approved (a name or an email, as given).
    pub by: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub reason: String,
}

impl Approval {
    /// Whether this approval covers `tool` of `server` as locked now (its digest).
    pub fn covers(&self, server: &str, tool: &str, digest: Digest) -> bool {
        self.server == server && self.tool == tool && self.digest == digest
    }

    fn to_json(&self) -> Value {
        json!({"at": self.at, "by": self.by, "digest": self.digest.to_string(), "reason": self.reason, "server": self.server, "tool": self.tool})
    }
}

/// Why a snapshot cannot be locked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockError {
    #[error("the snapshot does not say how the server was launched")]
    NoLaunch,
}

impl ServerLock {
    /// The lock entry for a scanned server. Kinds the server did not advertise lock as empty
    /// (its capabilities, also locked, say they were not offered).
    pub fn from_snapshot(
        snapshot: Snapshot,
        with_resources: bool,
    ) -> Result<ServerLock, LockError> {
        let launch = snapshot.launch.clone().ok_or(LockError::NoLaunch)?;
        let mut unserved = BTreeMap::new();
        for (kind, listing) in &snapshot.listings {
            if let Listing::Unserved(code) = listing
                && (*kind != ItemKind::Resource || with_resources)
            {
                unserved.insert(*kind, *code);
            }
        }
        let mut listings = snapshot.listings;
        let mut take = |kind| match listings.remove(&kind) {
            Some(Listing::Served(items)) => items,
            _ => Items::new(),
        };
        let tools = take(ItemKind::Tool);
        let prompts = take(ItemKind::Prompt);
        let resource_templates = take(ItemKind::ResourceTemplate);
        let resources = take(ItemKind::Resource);
        Ok(ServerLock {
            launch,
            artifact: snapshot.artifact,
            authorization: snapshot.authorization,
            server_info: snapshot.server_info,
            protocol_version: snapshot.protocol_version,
            capabilities: snapshot.capabilities,
            client_capabilities: snapshot.client_capabilities,
            instructions: snapshot.instructions,
            tools,
            prompts,
            resource_templates,
            resources: with_resources.then_some(resources),
            unserved,
        })
    }

    pub fn items(&self, kind: ItemKind) -> Option<&Items> {
        match kind {
            ItemKind::Tool => Some(&self.tools),
            ItemKind::Prompt => Some(&self.prompts),
            ItemKind::ResourceTemplate => Some(&self.resource_templates),
            ItemKind::Resource => self.resources.as_ref(),
        }
    }

    /// [`ServerLock::items`], to change (static resources only when it locks them).
    pub fn items_mut(&mut self, kind: ItemKind) -> Option<&mut Items> {
        match kind {
            ItemKind::Tool => Some(&mut self.tools),
            ItemKind::Prompt => Some(&mut self.prompts),
            ItemKind::ResourceTemplate => Some(&mut self.resource_templates),
            ItemKind::Resource => self.resources.as_mut(),
        }
    }

    /// The digest of every item's canonical definition, per kind.
    pub fn item_digests(&self) -> ItemDigests {
        ItemKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let items = self.items(kind)?;
                let digests = items
                    .iter()
                    .map(|(key, def)| (key.clone(), def.digest()))
                    .collect();
                Some((kind, digests))
            })
            .collect()
    }

    /// The digest over this entry and its name (so a rename changes it). It covers every
    /// field of the entry, with each item represented by its own digest (which covers the
    /// definition), so checking it never canonicalizes a definition twice.
    pub fn digest(&self, name: &str) -> Digest {
        self.digest_with(name, &self.item_digests())
    }

    fn digest_with(&self, name: &str, digests: &ItemDigests) -> Digest {
        let mut entry = self.header_json();
        for kind in ItemKind::ALL {
            let value = match (self.items(kind), digests.get(&kind)) {
                (Some(_), Some(d)) => Value::Object(
                    d.iter()
                        .map(|(k, digest)| (k.clone(), json!(digest.to_string())))
                        .collect(),
                ),
                _ => Value::Null,
            };
            entry.insert(kind.field().into(), value);
        }
        let entry = Value::Object(entry);
        Digest::of_bytes(&object_to_canonical(&[
            ("name", &json!(name)),
            ("server", &entry),
        ]))
    }

    /// Every field but the items and the digest, as written.
    pub fn header_json(&self) -> Map<String, Value> {
        let mut entry = Map::new();
        entry.insert(
            "capabilities".into(),
            Value::Object(self.capabilities.clone()),
        );
        entry.insert(
            "clientCapabilities".into(),
            Value::Object(self.client_capabilities.clone()),
        );
        entry.insert(
            "instructions".into(),
            self.instructions.as_ref().map_or(
                Value::Null,
                |text| json!({"digest": Digest::of_value(&json!(text)).to_string(), "text": text}),
            ),
        );
        if let Some(artifact) = &self.artifact {
            entry.insert("artifact".into(), artifact.to_json());
        }
        if let Some(authorization) = &self.authorization {
            entry.insert("authorization".into(), authorization.to_json());
        }
        entry.insert("launch".into(), self.launch.to_json());
        entry.insert("protocolVersion".into(), json!(self.protocol_version));
        entry.insert(
            "serverInfo".into(),
            self.server_info.clone().unwrap_or(Value::Null),
        );
        // Absent when empty, so an entry without it keeps its version 1 form and digest.
        if !self.unserved.is_empty() {
            let unserved: Map<String, Value> = self
                .unserved
                .iter()
                .map(|(kind, code)| (kind.field().to_string(), json!({"code": code})))
                .collect();
            entry.insert("unserved".into(), Value::Object(unserved));
        }
        entry
    }

    /// The entry as written, digests included.
    pub fn to_json(&self, name: &str) -> Value {
        serde_json::to_value(self.view(name)).unwrap_or(Value::Null)
    }

    /// The entry as written, serialized from borrowed parts: each definition is parsed only
    /// while it is written, so writing a large lockfile never holds its whole tree.
    fn view(&self, name: &str) -> BTreeMap<&'static str, EntryField<'_>> {
        let mut entry: BTreeMap<&'static str, EntryField<'_>> = BTreeMap::new();
        for (field, value) in self.header_json() {
            if let Some(field) = SERVER_KEYS.iter().find(|k| **k == field) {
                entry.insert(field, EntryField::Value(value));
            }
        }
        for kind in ItemKind::ALL {
            let field = match self.items(kind) {
                Some(items) => EntryField::Items(
                    items
                        .iter()
                        .map(|(key, definition)| {
                            let item = ItemView {
                                definition,
                                digest: definition.digest().to_string(),
                            };
                            (key.as_str(), item)
                        })
                        .collect(),
                ),
                None => EntryField::Value(Value::Null),
            };
            entry.insert(kind.field(), field);
        }
        let digest = self.digest_with(name, &self.item_digests()).to_string();
        entry.insert("digest", EntryField::Value(Value::String(digest)));
        entry
    }
}

/// One member of a server entry as written.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum EntryField<'a> {
    Value(Value),
    Items(BTreeMap<&'a str, ItemView<'a>>),
}

/// One item as written (members in sorted order).
#[derive(serde::Serialize)]
struct ItemView<'a> {
    definition: &'a Definition,
    digest: String,
}

/// A whole lockfile as written (members in sorted order).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DocumentView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    approvals: Option<Vec<Value>>,
    lockfile_version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry: Option<BTreeMap<&'a str, Value>>,
    servers: BTreeMap<&'a str, BTreeMap<&'static str, EntryField<'a>>>,
}

/// Item digests per kind and key.
pub type ItemDigests = BTreeMap<ItemKind, BTreeMap<String, Digest>>;

/// The digest of one item's definition (what the lockfile records for it).
pub fn digest_of_definition(definition: &Map<String, Value>) -> Digest {
    // Serialize the map as an object without copying it into a Value.
    let members: Vec<(&str, &Value)> = definition.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Digest::of_bytes(&object_to_canonical(&members))
}

impl Lockfile {
    /// The document as written to disk: pretty-printed, keys sorted, final newline.
    pub fn to_pretty(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        // Writing to memory cannot fail, and every part serializes.
        let _ = self.write_pretty(&mut bytes);
        bytes
    }

    /// Writes [`Lockfile::to_pretty`]'s bytes to `out` as they are made (a large lockfile is
    /// never held whole).
    pub fn write_pretty(&self, out: impl std::io::Write) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        serde_json::to_writer_pretty(&mut out, &self.view())?;
        out.write_all(b"\n")?;
        out.flush()
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    fn view(&self) -> DocumentView<'_> {
        let approvals = (!self.approvals.is_empty()).then(|| {
            let mut approvals = self.approvals.clone();
            approvals.sort();
            approvals.dedup();
            approvals.iter().map(Approval::to_json).collect()
        });
        let registry = (!self.registry.is_empty()).then(|| {
            self.registry
                .iter()
                .map(|(name, record)| (name.as_str(), record.to_json()))
                .collect()
        });
        DocumentView {
            approvals,
            registry,
            lockfile_version: self.version(),
            servers: self
                .servers
                .iter()
                .map(|(name, server)| (name.as_str(), server.view(name)))
                .collect(),
        }
    }

    /// The servers locked under both credential contexts `first` and `second` (the same launch
    /// but for its context), as two lockfiles: each pair under one name (the first's, without
    /// its `.CONTEXT`), each entry's context dropped so only what the credentials are offered
    /// differs.
    pub fn between_contexts(&self, first: &str, second: &str) -> (Lockfile, Lockfile) {
        let (mut a, mut b) = (Lockfile::default(), Lockfile::default());
        for (name, one) in &self.servers {
            if one.launch.context() != Some(first) {
                continue;
            }
            let shared = one.launch.without_context();
            let Some(other) = self.servers.values().find(|s| {
                s.launch.context() == Some(second) && s.launch.without_context() == shared
            }) else {
                continue;
            };
            let key = name
                .strip_suffix(&format!(".{first}"))
                .unwrap_or(name)
                .to_string();
            let strip = |s: &ServerLock| ServerLock {
                launch: shared.clone(),
                ..s.clone()
            };
            a.servers.insert(key.clone(), strip(one));
            b.servers.insert(key, strip(other));
        }
        (a, b)
    }

    /// The oldest format version that can hold this lockfile.
    pub fn version(&self) -> u64 {
        let has_content = |s: &ServerLock| {
            s.artifact
                .as_ref()
                .and_then(Artifact::resolved)
                .is_some_and(|r| r.content.is_some())
        };
        let needs_6 = |s: &ServerLock| s.authorization.is_some() || s.launch.context().is_some();
        if !self.registry.is_empty() {
            7
        } else if self.servers.values().any(needs_6) {
            6
        } else if self.servers.values().any(has_content) {
            5
        } else if self.servers.values().any(|s| s.artifact.is_some()) {
            4
        } else if !self.approvals.is_empty()
            || self.servers.values().any(|s| s.launch.needs_version_3())
        {
            3
        } else if self.servers.values().any(|s| !s.unserved.is_empty()) {
            2
        } else {
            FIRST_LOCKFILE_VERSION
        }
    }

    /// Reads a lockfile strictly.
    ///
    /// A file in the form mcplock writes is read in one pass that keeps each definition as the
    /// canonical text it digests ([`Lockfile::from_streamed`]), never as a tree; anything else
    /// (a hand-edited file) by the strict tree reader, which also words what is wrong. Both
    /// answer the same (property-tested).
    pub fn parse(bytes: &[u8]) -> Result<Lockfile, LockfileError> {
        if let Some(streamed) = Lockfile::stream_text(bytes, 0) {
            return Lockfile::from_streamed(streamed);
        }
        Lockfile::parse_tree(bytes)
    }

    /// [`Lockfile::parse`] of text the caller gives up: dropped as soon as the one pass has
    /// canonicalized it, before the definitions are taken out (a lower peak).
    pub fn parse_owned(bytes: Vec<u8>) -> Result<Lockfile, LockfileError> {
        match Lockfile::stream_text(&bytes, 0) {
            Some(streamed) => {
                drop(bytes);
                Lockfile::from_streamed(streamed)
            }
            None => Lockfile::parse_tree(&bytes),
        }
    }

    /// The strict tree reader alone (the fallback of [`Lockfile::parse`]).
    pub fn parse_tree(bytes: &[u8]) -> Result<Lockfile, LockfileError> {
        let value = parse_strict(bytes).map_err(|e| err("", e.message().to_owned()))?;
        Lockfile::from_owned_value(value)
    }

    /// A lockfile from one streaming pass ([`Lockfile::stream_text`]): each definition's canonical
    /// bytes become its [`Definition`] (digested on all cores), the rest is read and checked as
    /// strictly as ever from the skeleton, each definition's digest taken from its bytes.
    pub fn from_streamed(streamed: Streamed) -> Result<Lockfile, LockfileError> {
        let Streamed {
            canonical,
            skeleton,
            spans,
        } = streamed;
        let definitions = crate::core::parallel::map(&spans, |span| {
            Definition::from_canonical(canonical[span.range.clone()].to_vec())
        });
        drop(canonical);
        let mut hashed = Hashed::new();
        let mut placed = Vec::with_capacity(spans.len());
        for (span, definition) in spans.into_iter().zip(definitions) {
            if let Some((server, kind, key)) = item_at(&span.path) {
                hash_into(&mut hashed, server, kind, key, definition.digest());
                placed.push((server.clone(), kind, key.clone(), definition));
            }
        }
        let read = read_document(&skeleton, Keep::Hashed(&hashed))?;
        drop(skeleton);
        let mut lockfile = Lockfile {
            servers: read.servers.into_iter().map(|(n, (s, _))| (n, s)).collect(),
            approvals: read.approvals,
            registry: read.registry,
        };
        for (server, kind, key, definition) in placed {
            let Some(items) = lockfile
                .servers
                .get_mut(&server)
                .and_then(|entry| entry.items_mut(kind))
            else {
                return Err(err(
                    &format!("servers[{server:?}].{}", kind.field()),
                    "vanished while reading",
                ));
            };
            items.insert(key, definition);
        }
        Ok(lockfile)
    }

    /// Like [`Lockfile::from_value`], moving the definitions out of `value` instead of copying.
    pub fn from_owned_value(mut value: Value) -> Result<Lockfile, LockfileError> {
        let read = read_document(&value, Keep::DigestsOnly)?;
        let mut servers = BTreeMap::new();
        for (name, (mut server, _)) in read.servers {
            let Some(entry) = value
                .get_mut("servers")
                .and_then(|s| s.get_mut(&name))
                .and_then(Value::as_object_mut)
            else {
                return Err(err(&format!("servers[{name:?}]"), "vanished while reading"));
            };
            for kind in ItemKind::ALL {
                let Some(Value::Object(items)) = entry.get_mut(kind.field()) else {
                    continue;
                };
                let Some(target) = server.items_mut(kind) else {
                    return Err(err(
                        &format!("servers[{name:?}].{}", kind.field()),
                        "vanished while reading",
                    ));
                };
                for (key, item) in std::mem::take(items) {
                    if let Value::Object(mut item) = item
                        && let Some(Value::Object(definition)) = item.remove("definition")
                    {
                        target.insert(key, Definition::new(&definition));
                    }
                }
            }
            servers.insert(name, server);
        }
        Ok(Lockfile {
            servers,
            approvals: read.approvals,
            registry: read.registry,
        })
    }

    pub fn from_value(value: &Value) -> Result<Lockfile, LockfileError> {
        read_lockfile(value, Keep::Definitions)
    }

    /// Checks a parsed lockfile as strictly as [`Lockfile::from_value`] (every digest) without
    /// copying any definition out of it; returns each server's item counts, launch and artifact.
    pub fn check_value(value: &Value) -> Result<Checked, LockfileError> {
        Ok(checked(read_document(value, Keep::DigestsOnly)?))
    }

    /// A lockfile's text canonicalized in one pass without building its definitions (see
    /// [`stream`]), with `room` bytes left in front: `None` when the text is not in the form
    /// mcplock writes, and the caller must parse it strictly instead.
    pub fn stream_text(text: &[u8], room: usize) -> Option<Streamed> {
        let plan = |path: &[String]| match path {
            [servers, _, field, _, definition]
                if servers == "servers" && definition == "definition" =>
            {
                ItemKind::from_field(field).map(ItemKind::key_field)
            }
            _ => None,
        };
        stream::canonicalize_spans(text, room, &plan)
    }

    /// [`Lockfile::check_value`] of a streamed lockfile: the same checks and answers, the
    /// definitions' digests taken from their canonical bytes.
    pub fn check_streamed(streamed: &Streamed) -> Result<Checked, LockfileError> {
        let digests = crate::core::parallel::map(&streamed.spans, |span| {
            Digest::of_bytes(&streamed.canonical[span.range.clone()])
        });
        let mut hashed = Hashed::new();
        for (span, digest) in streamed.spans.iter().zip(digests) {
            if let Some((server, kind, key)) = item_at(&span.path) {
                hash_into(&mut hashed, server, kind, key, digest);
            }
        }
        Ok(checked(read_document(
            &streamed.skeleton,
            Keep::Hashed(&hashed),
        )?))
    }
}

/// One server as a check that keeps no definitions saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedServer {
    /// Locked items per kind.
    pub items: BTreeMap<ItemKind, usize>,
    pub launch: Launch,
    pub artifact: Option<Artifact>,
    /// The MCP Registry entry it was locked with (version 7).
    pub registry: Option<crate::core::registry::Record>,
}

/// What [`Lockfile::check_value`] found, per server.
pub type Checked = BTreeMap<String, CheckedServer>;

fn checked(mut read: Read) -> Checked {
    read.servers
        .into_iter()
        .map(|(name, (server, digests))| {
            let items = digests
                .into_iter()
                .map(|(kind, d)| (kind, d.len()))
                .collect();
            let server = CheckedServer {
                items,
                launch: server.launch,
                artifact: server.artifact,
                registry: read.registry.remove(&name),
            };
            (name, server)
        })
        .collect()
}

/// Whether a read keeps the definitions (to use them) or only checks them, and whether their
/// digests are computed from the tree or were computed from the text.
#[derive(Clone, Copy)]
enum Keep<'a> {
    Definitions,
    DigestsOnly,
    /// The definitions are stubs (their key field only); their digests are given.
    Hashed(&'a Hashed),
}

/// Item digests per server, computed from a lockfile's text.
type Hashed = BTreeMap<String, ItemDigests>;

/// The server, kind and key of a span at `servers.SERVER.KIND.KEY.definition`.
fn item_at(path: &[String]) -> Option<(&String, ItemKind, &String)> {
    let [_, server, field, key, _] = path else {
        return None;
    };
    Some((server, ItemKind::from_field(field)?, key))
}

fn hash_into(hashed: &mut Hashed, server: &str, kind: ItemKind, key: &str, digest: Digest) {
    hashed
        .entry(server.to_string())
        .or_default()
        .entry(kind)
        .or_default()
        .insert(key.to_string(), digest);
}

struct Read {
    servers: BTreeMap<String, (ServerLock, ItemDigests)>,
    approvals: Vec<Approval>,
    registry: BTreeMap<String, crate::core::registry::Record>,
}

fn read_lockfile(value: &Value, keep: Keep<'_>) -> Result<Lockfile, LockfileError> {
    let read = read_document(value, keep)?;
    Ok(Lockfile {
        servers: read
            .servers
            .into_iter()
            .map(|(name, (server, _))| (name, server))
            .collect(),
        approvals: read.approvals,
        registry: read.registry,
    })
}

fn read_document(value: &Value, keep: Keep<'_>) -> Result<Read, LockfileError> {
    if let Some(why) = crate::core::peers::import::foreign(value) {
        return Err(err("", why));
    }
    {
        let top = object(value, "")?;
        let version = match top.get("lockfileVersion") {
            Some(Value::Number(n))
                if n.as_u64()
                    .is_some_and(|v| (FIRST_LOCKFILE_VERSION..=LOCKFILE_VERSION).contains(&v)) =>
            {
                n.as_u64().unwrap_or(FIRST_LOCKFILE_VERSION)
            }
            Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v > LOCKFILE_VERSION) => {
                return Err(err(
                    "lockfileVersion",
                    format!(
                        "version {n} was written by a newer mcplock; this one reads versions {FIRST_LOCKFILE_VERSION} to {LOCKFILE_VERSION}: upgrade mcplock"
                    ),
                ));
            }
            Some(other) => {
                return Err(err(
                    "lockfileVersion",
                    format!(
                        "expected {FIRST_LOCKFILE_VERSION} or {LOCKFILE_VERSION}, found {other}"
                    ),
                ));
            }
            None => {
                return Err(err(
                    "",
                    "no \"lockfileVersion\": this is not an mcplock lockfile",
                ));
            }
        };
        only_keys(
            top,
            &["approvals", "lockfileVersion", "registry", "servers"],
            "",
        )?;
        let registry = read_registry(top.get("registry"), version)?;
        let approvals = match top.get("approvals") {
            None => Vec::new(),
            Some(_) if version < 3 => {
                return Err(err(
                    "approvals",
                    format!(
                        "approvals need lockfileVersion 3; the file says {version} (it was edited by hand?)"
                    ),
                ));
            }
            Some(list) => read_approvals(list)?,
        };
        let servers = object(take(top, "servers", "")?, "servers")?;
        let mut out = BTreeMap::new();
        for (name, entry) in servers {
            let place = format!("servers[{name:?}]");
            if name.is_empty() {
                return Err(err("servers", "a server name is empty"));
            }
            let server = read_server(name, entry, &place, keep, version)?;
            out.insert(name.clone(), server);
        }
        if let Some(name) = registry.keys().find(|name| !out.contains_key(*name)) {
            return Err(err(
                &format!("registry[{name:?}]"),
                "a registry entry for a server the lockfile does not lock",
            ));
        }
        Ok(Read {
            servers: out,
            approvals,
            registry,
        })
    }
}

/// The `registry` map (version 7): each record exactly as written, and only when non-empty.
fn read_registry(
    value: Option<&Value>,
    version: u64,
) -> Result<BTreeMap<String, crate::core::registry::Record>, LockfileError> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    if version < 7 {
        return Err(err(
            "registry",
            format!(
                "registry entries need lockfileVersion 7; the file says {version} (it was edited by hand?)"
            ),
        ));
    }
    let map = match value {
        Value::Object(map) if !map.is_empty() => map,
        _ => return Err(err("registry", "expected a non-empty object")),
    };
    map.iter()
        .map(|(name, record)| {
            crate::core::registry::Record::from_json(record)
                .map(|r| (name.clone(), r))
                .map_err(|e| err(&format!("registry[{name:?}]"), e))
        })
        .collect()
}

/// The `approvals` list: exactly its fields, non-empty, sorted and without duplicates (the
/// order a writer gives it), so that the same approvals are the same bytes.
fn read_approvals(list: &Value) -> Result<Vec<Approval>, LockfileError> {
    let items = match list {
        Value::Array(items) if !items.is_empty() => items,
        _ => return Err(err("approvals", "expected a non-empty array")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let place = format!("approvals[{i}]");
        let item = object(item, &place)?;
        only_keys(
            item,
            &["at", "by", "digest", "reason", "server", "tool"],
            &place,
        )?;
        let text = |k: &str| string(take(item, k, &place)?, &format!("{place}.{k}"));
        let digest = digest_field(take(item, "digest", &place)?, &format!("{place}.digest"))?;
        out.push(Approval {
            server: text("server")?,
            tool: text("tool")?,
            digest,
            by: text("by")?,
            at: text("at")?,
            reason: text("reason")?,
        });
    }
    if out.windows(2).any(|w| w[0] >= w[1]) {
        return Err(err(
            "approvals",
            "not sorted, or an approval is listed twice",
        ));
    }
    Ok(out)
}

const SERVER_KEYS: [&str; 14] = [
    "artifact",
    "authorization",
    "capabilities",
    "clientCapabilities",
    "digest",
    "instructions",
    "launch",
    "prompts",
    "protocolVersion",
    "resourceTemplates",
    "resources",
    "serverInfo",
    "tools",
    "unserved",
];

fn read_server(
    name: &str,
    entry: &Value,
    place: &str,
    keep: Keep<'_>,
    version: u64,
) -> Result<(ServerLock, ItemDigests), LockfileError> {
    let entry = object(entry, place)?;
    only_keys(entry, &SERVER_KEYS, place)?;
    let (unserved, artifact) = read_versioned(entry, place, version)?;
    let authorization = read_authorization(entry, place, version)?;
    let stored = take(entry, "digest", place)?;
    let stored = digest_field(stored, &format!("{place}.digest"))?;
    let at = |field: &str| format!("{place}.{field}");

    let launch = object(take(entry, "launch", place)?, &at("launch"))?;
    let launch = read_launch(launch, &at("launch"), version)?;
    let server_info = match take(entry, "serverInfo", place)? {
        Value::Null => None,
        v @ Value::Object(_) => Some(v.clone()),
        _ => return Err(err(&at("serverInfo"), "expected an object or null")),
    };
    let protocol_version = string(
        take(entry, "protocolVersion", place)?,
        &at("protocolVersion"),
    )?;
    let capabilities = object(take(entry, "capabilities", place)?, &at("capabilities"))?.clone();
    let client_capabilities = object(
        take(entry, "clientCapabilities", place)?,
        &at("clientCapabilities"),
    )?
    .clone();
    let instructions = read_instructions(take(entry, "instructions", place)?, &at("instructions"))?;
    let mut digests = ItemDigests::new();
    let hashed = |kind: ItemKind| match keep {
        Keep::Hashed(all) => all.get(name).and_then(|d| d.get(&kind)),
        _ => None,
    };
    let tools = read_items(
        ItemKind::Tool,
        take(entry, "tools", place)?,
        &at("tools"),
        &mut digests,
        keep,
        hashed(ItemKind::Tool),
    )?;
    let prompts = read_items(
        ItemKind::Prompt,
        take(entry, "prompts", place)?,
        &at("prompts"),
        &mut digests,
        keep,
        hashed(ItemKind::Prompt),
    )?;
    let resource_templates = read_items(
        ItemKind::ResourceTemplate,
        take(entry, "resourceTemplates", place)?,
        &at("resourceTemplates"),
        &mut digests,
        keep,
        hashed(ItemKind::ResourceTemplate),
    )?;
    let resources = match take(entry, "resources", place)? {
        Value::Null => None,
        v => Some(read_items(
            ItemKind::Resource,
            v,
            &at("resources"),
            &mut digests,
            keep,
            hashed(ItemKind::Resource),
        )?),
    };
    check_unserved(&unserved, resources.is_some(), &digests, place)?;
    let server = ServerLock {
        launch,
        artifact,
        authorization,
        server_info,
        protocol_version,
        capabilities,
        client_capabilities,
        instructions,
        tools,
        prompts,
        resource_templates,
        resources,
        unserved,
    };
    // Item digests were checked first, so an edited definition is reported where it is.
    let computed = server.digest_with(name, &digests);
    check_digest(
        stored,
        computed,
        place,
        "this server entry (a field outside the items changed, or it was renamed)",
    )?;
    Ok((server, digests))
}

/// The fields later lockfile versions added to a server entry (`unserved` in 2, `artifact` in 4,
/// its `content` in 5): each refused in a file whose version is older.
fn read_versioned(
    entry: &Map<String, Value>,
    place: &str,
    version: u64,
) -> Result<(BTreeMap<ItemKind, i64>, Option<Artifact>), LockfileError> {
    let unserved = match entry.get("unserved") {
        None => BTreeMap::new(),
        Some(_) if version < 2 => {
            return Err(err(
                &format!("{place}.unserved"),
                "this field needs lockfileVersion 2; the file says 1 (it was edited by hand?)",
            ));
        }
        Some(v) => read_unserved(v, &format!("{place}.unserved"))?,
    };
    let artifact = match entry.get("artifact") {
        None => None,
        Some(_) if version < 4 => {
            return Err(err(
                &format!("{place}.artifact"),
                format!(
                    "this field needs lockfileVersion 4; the file says {version} (it was edited by hand?)"
                ),
            ));
        }
        Some(a) if version < 5 && a.get("content").is_some() => {
            return Err(err(
                &format!("{place}.artifact.content"),
                format!(
                    "this field needs lockfileVersion 5; the file says {version} (it was edited by hand?)"
                ),
            ));
        }
        Some(a) => Some(
            Artifact::from_json(a).map_err(|e| err(&format!("{place}.artifact"), e.to_string()))?,
        ),
    };
    Ok((unserved, artifact))
}

/// A remote server's `authorization` (version 6).
fn read_authorization(
    entry: &Map<String, Value>,
    place: &str,
    version: u64,
) -> Result<Option<AuthSurface>, LockfileError> {
    let at = format!("{place}.authorization");
    match entry.get("authorization") {
        None => Ok(None),
        Some(_) if version < 6 => Err(err(
            &at,
            format!(
                "this field needs lockfileVersion 6; the file says {version} (it was edited by hand?)"
            ),
        )),
        Some(value) => AuthSurface::from_json(value)
            .map(Some)
            .map_err(|e| err(&at, e)),
    }
}

/// A server's `instructions`: null, or `{"digest", "text"}` whose digest must hold.
fn read_instructions(value: &Value, p: &str) -> Result<Option<String>, LockfileError> {
    let o = match value {
        Value::Null => return Ok(None),
        v => object(v, p)?,
    };
    only_keys(o, &["digest", "text"], p)?;
    let stored = digest_field(take(o, "digest", p)?, &format!("{p}.digest"))?;
    let text = take(o, "text", p)?;
    let computed = Digest::of_value(text);
    let text = string(text, &format!("{p}.text"))?;
    check_digest(stored, computed, p, "the instructions text")?;
    Ok(Some(text))
}

/// A kind recorded as unserved has no locked items (and unserved resources were locked).
fn check_unserved(
    unserved: &BTreeMap<ItemKind, i64>,
    resources_locked: bool,
    digests: &ItemDigests,
    place: &str,
) -> Result<(), LockfileError> {
    for kind in unserved.keys() {
        let p = format!("{place}.unserved.{}", kind.field());
        match kind {
            ItemKind::Resource if !resources_locked => {
                return Err(err(&p, "resources are unserved but were not locked (null)"));
            }
            _ if digests.get(kind).is_some_and(|d| !d.is_empty()) => {
                return Err(err(
                    &p,
                    "a kind that was not served cannot have locked items",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `{"<kind field>": {"code": -32601 | -32602}, ...}`, at least one kind.
fn read_unserved(value: &Value, place: &str) -> Result<BTreeMap<ItemKind, i64>, LockfileError> {
    let map = object(value, place)?;
    if map.is_empty() {
        return Err(err(place, "is empty; leave the field out instead"));
    }
    let mut out = BTreeMap::new();
    for (field, entry) in map {
        let kind = ItemKind::from_field(field)
            .ok_or_else(|| err(place, format!("unknown kind {field:?}")))?;
        let code = unserved_code(entry).ok_or_else(|| {
            err(
                &format!("{place}.{field}"),
                "expected {\"code\": -32601} or {\"code\": -32602}",
            )
        })?;
        out.insert(kind, code);
    }
    Ok(out)
}

fn read_launch(
    launch: &Map<String, Value>,
    place: &str,
    version: u64,
) -> Result<Launch, LockfileError> {
    let read = Launch::from_json(launch).map_err(|e| err(place, e.to_string()))?;
    if read.is_http() && version < 3 {
        return Err(err(
            place,
            format!(
                "a URL launch needs lockfileVersion 3; the file says {version} (it was edited by hand?)"
            ),
        ));
    }
    if read.context().is_some() && version < 6 {
        return Err(err(
            place,
            format!(
                "a launch's context needs lockfileVersion 6; the file says {version} (it was edited by hand?)"
            ),
        ));
    }
    Ok(read)
}

fn read_items(
    kind: ItemKind,
    value: &Value,
    place: &str,
    digests: &mut ItemDigests,
    keep: Keep<'_>,
    hashed: Option<&BTreeMap<String, Digest>>,
) -> Result<Items, LockfileError> {
    let entries = object(value, place)?;
    let mut items = Items::new();
    let kind_digests = digests.entry(kind).or_default();
    let hashed: Vec<Option<Digest>> = match hashed {
        Some(given) => entries.keys().map(|k| given.get(k).copied()).collect(),
        // Hashing every definition is most of a large read: on all cores, before the checks.
        None => {
            let listed: Vec<&Value> = entries.values().collect();
            crate::core::parallel::map(&listed, |entry| {
                entry.get("definition").map(Digest::of_value)
            })
        }
    };
    for ((key, entry), hashed) in entries.iter().zip(hashed) {
        let p = format!("{place}[{key:?}]");
        let entry = object(entry, &p)?;
        only_keys(entry, &["definition", "digest"], &p)?;
        let stored = digest_field(take(entry, "digest", &p)?, &format!("{p}.digest"))?;
        let definition = take(entry, "definition", &p)?;
        let computed = hashed.unwrap_or_else(|| Digest::of_value(definition));
        let definition = object(definition, &format!("{p}.definition"))?;
        match definition.get(kind.key_field()) {
            Some(Value::String(k)) if k == key => {}
            Some(Value::String(k)) => {
                return Err(err(
                    &p,
                    format!(
                        "the key does not match the definition's {} {k:?}",
                        kind.key_field()
                    ),
                ));
            }
            _ => {
                return Err(err(
                    &format!("{p}.definition"),
                    format!("no string \"{}\"", kind.key_field()),
                ));
            }
        }
        check_digest(stored, computed, &p, "its definition")?;
        kind_digests.insert(key.clone(), computed);
        if let Keep::Definitions = keep {
            items.insert(key.clone(), Definition::new(definition));
        }
    }
    Ok(items)
}

fn check_digest(
    stored: Digest,
    computed: Digest,
    place: &str,
    what: &str,
) -> Result<(), LockfileError> {
    if stored == computed {
        Ok(())
    } else {
        Err(err(
            place,
            format!(
                "stored digest {stored} does not match {what} ({computed}): it was edited after locking; re-lock with `mcplock lock --update` if the change is intended"
            ),
        ))
    }
}

fn object<'a>(value: &'a Value, place: &str) -> Result<&'a Map<String, Value>, LockfileError> {
    match value {
        Value::Object(o) => Ok(o),
        other => Err(err(
            place,
            format!("expected an object, found {}", kind_of(other)),
        )),
    }
}

fn string(value: &Value, place: &str) -> Result<String, LockfileError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(err(
            place,
            format!("expected a string, found {}", kind_of(other)),
        )),
    }
}

fn digest_field(value: &Value, place: &str) -> Result<Digest, LockfileError> {
    let text = string(value, place)?;
    Digest::parse(&text).ok_or_else(|| {
        err(
            place,
            format!("{text:?} is not a sha256:<64 hex digits> digest"),
        )
    })
}

fn take<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    place: &str,
) -> Result<&'a Value, LockfileError> {
    map.get(key)
        .ok_or_else(|| err(place, format!("missing field \"{key}\"")))
}

fn only_keys(map: &Map<String, Value>, allowed: &[&str], place: &str) -> Result<(), LockfileError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(err(
            place,
            format!(
                "unknown field {unknown:?} (expected only {})",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl crate::core::code::Coded for LockfileError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::LockfileInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snapshot::index_items;

    fn sample() -> ServerLock {
        ServerLock {
            artifact: None,
            authorization: None,
            launch: Launch::Stdio {
                command: "node".into(),
                args: vec!["server.js".into()],
                env_keys: vec!["API_KEY".into()],
                cwd: None,
            },
            server_info: Some(json!({"name": "demo", "version": "1.0.0"})),
            protocol_version: "2025-11-25".into(),
            capabilities: json!({"tools": {"listChanged": true}}).as_object().unwrap().clone(),
            client_capabilities: Map::new(),
            instructions: Some("Be careful.".into()),
            tools: index_items(
                ItemKind::Tool,
                vec![
                    json!({"name": "echo", "title": "Echo", "inputSchema": {"type": "object", "properties": {"ratio": {"type": "number", "maximum": 1.5}}}, "annotations": {"readOnlyHint": true}, "_meta": {"k": 1}}),
                    json!({"name": "sum", "inputSchema": {"type": "object"}}),
                ],
            )
            .unwrap(),
            prompts: Items::new(),
            resource_templates: Items::new(),
            resources: None,
            unserved: BTreeMap::new(),
        }
    }

    fn file() -> Lockfile {
        Lockfile {
            servers: BTreeMap::from([("demo".to_string(), sample())]),
            approvals: Vec::new(),
            registry: Default::default(),
        }
    }

    fn edit(f: impl FnOnce(&mut Value)) -> Result<Lockfile, LockfileError> {
        let mut doc: Value = serde_json::from_slice(&file().to_pretty()).unwrap();
        f(&mut doc);
        Lockfile::parse(doc.to_string().as_bytes())
    }

    #[test]
    fn a_remote_server_needs_version_3_and_its_url_is_covered_by_the_digest() {
        let mut remote = sample();
        remote.launch = Launch::Http {
            url: "https://mcp.example.com/mcp".into(),
            header_names: vec!["Authorization".into()],
            context: None,
        };
        let lock = Lockfile {
            servers: BTreeMap::from([("demo".to_string(), remote), ("local".into(), sample())]),
            approvals: Vec::new(),
            registry: Default::default(),
        };
        assert_eq!(lock.version(), 3);
        let bytes = lock.to_pretty();
        assert_eq!(Lockfile::parse(&bytes).unwrap(), lock);
        assert_eq!(Lockfile::parse(&bytes).unwrap().to_pretty(), bytes);
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            doc["servers"]["demo"]["launch"],
            json!({"headerNames": ["Authorization"], "url": "https://mcp.example.com/mcp"})
        );
        // The URL is part of what was approved; an older version cannot hold it.
        let mut moved = doc.clone();
        moved["servers"]["demo"]["launch"]["url"] = json!("https://evil.example/mcp");
        let e = Lockfile::parse(moved.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.place, "servers[\"demo\"]");
        let mut old = doc.clone();
        old["lockfileVersion"] = json!(2);
        let e = Lockfile::parse(old.to_string().as_bytes()).unwrap_err();
        assert!(e.message.contains("needs lockfileVersion 3"), "{e}");
        let mut mixed = doc;
        mixed["servers"]["demo"]["launch"]["command"] = json!("sh");
        let e = Lockfile::parse(mixed.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.place, "servers[\"demo\"].launch");
        // Without a remote server, the file stays version 1.
        assert_eq!(file().version(), 1);
    }

    #[test]
    fn approvals_need_version_3_and_read_back_in_one_order() {
        let mut lock = file();
        let digest = lock.servers["demo"].item_digests()[&ItemKind::Tool]["echo"];
        lock.approvals.push(Approval {
            server: "demo".into(),
            tool: "echo".into(),
            digest,
            by: "alice".into(),
            at: "2026-11-30T10:00:00Z".into(),
            reason: "needed".into(),
        });
        assert_eq!(lock.version(), 3);
        let bytes = lock.to_pretty();
        let back = Lockfile::parse(&bytes).unwrap();
        assert_eq!(back, lock);
        assert_eq!(
            Lockfile::from_owned_value(serde_json::from_slice(&bytes).unwrap()).unwrap(),
            lock
        );
        assert!(back.approvals[0].covers("demo", "echo", digest));
        let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
        doc["lockfileVersion"] = json!(2);
        assert!(
            Lockfile::parse(doc.to_string().as_bytes())
                .unwrap_err()
                .message
                .contains("lockfileVersion 3")
        );
        let mut twice: Value = serde_json::from_slice(&bytes).unwrap();
        let one = twice["approvals"][0].clone();
        twice["approvals"].as_array_mut().unwrap().push(one);
        assert!(Lockfile::parse(twice.to_string().as_bytes()).is_err());
        // Without approvals a file keeps its version and bytes.
        assert_eq!(file().version(), 1);
        assert!(
            !String::from_utf8(file().to_pretty())
                .unwrap()
                .contains("approvals")
        );
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let bytes = file().to_pretty();
        assert!(bytes.ends_with(b"}\n"));
        let back = Lockfile::parse(&bytes).unwrap();
        assert_eq!(back, file());
        assert_eq!(back.to_pretty(), bytes);
    }

    #[test]
    fn owned_and_borrowed_reads_agree() {
        let mut server = sample();
        server.resources = Some(
            index_items(
                ItemKind::Resource,
                vec![json!({"uri": "x://1", "name": "one"})],
            )
            .unwrap(),
        );
        server.prompts = index_items(ItemKind::Prompt, vec![json!({"name": "p"})]).unwrap();
        let lock = Lockfile {
            servers: BTreeMap::from([("a".to_string(), server), ("b".to_string(), sample())]),
            approvals: Vec::new(),
            registry: Default::default(),
        };
        let doc: Value = serde_json::from_slice(&lock.to_pretty()).unwrap();
        assert_eq!(Lockfile::from_value(&doc).unwrap(), lock);
        assert_eq!(Lockfile::from_owned_value(doc).unwrap(), lock);
    }

    #[test]
    fn reformatting_and_reordering_keep_it_valid() {
        let doc: Value = serde_json::from_slice(&file().to_pretty()).unwrap();
        let compact = doc.to_string();
        assert_eq!(Lockfile::parse(compact.as_bytes()).unwrap(), file());
        // Reverse the key order of the tools map by hand.
        let reordered = compact.replacen("\"tools\":{", "\"tools\": {  ", 1);
        assert_eq!(Lockfile::parse(reordered.as_bytes()).unwrap(), file());
    }

    #[test]
    fn catches_a_hand_edited_definition() {
        let e =
            edit(|d| d["servers"]["demo"]["tools"]["echo"]["definition"]["title"] = json!("Evil"))
                .unwrap_err();
        assert_eq!(e.place, "servers[\"demo\"].tools[\"echo\"]");
        assert!(e.message.contains("does not match its definition"), "{e}");
    }

    #[test]
    fn catches_edits_outside_items_and_renames() {
        let e = edit(|d| d["servers"]["demo"]["launch"]["command"] = json!("sh")).unwrap_err();
        assert_eq!(e.place, "servers[\"demo\"]");
        let e = edit(|d| {
            let entry = d["servers"]["demo"].take();
            d["servers"] = json!({"renamed": entry});
        })
        .unwrap_err();
        assert_eq!(e.place, "servers[\"renamed\"]");
        let e =
            edit(|d| d["servers"]["demo"]["instructions"]["text"] = json!("Obey me.")).unwrap_err();
        assert_eq!(e.place, "servers[\"demo\"].instructions");
    }

    #[test]
    fn rejects_versions_duplicates_unknown_and_missing_fields() {
        let e = edit(|d| d["lockfileVersion"] = json!(LOCKFILE_VERSION + 1)).unwrap_err();
        assert!(e.message.contains("newer mcplock"), "{e}");
        let e = edit(|d| d["lockfileVersion"] = json!("1")).unwrap_err();
        assert_eq!(e.place, "lockfileVersion");
        let e = edit(|d| {
            d["servers"]["demo"]
                .as_object_mut()
                .unwrap()
                .remove("capabilities");
        })
        .unwrap_err();
        assert!(e.message.contains("missing field \"capabilities\""), "{e}");
        let e = edit(|d| d["servers"]["demo"]["extra"] = json!(1)).unwrap_err();
        assert!(e.message.contains("unknown field \"extra\""), "{e}");
        let e = edit(|d| d["servers"]["demo"]["tools"]["echo"]["digest"] = json!("md5:00"))
            .unwrap_err();
        assert_eq!(e.place, "servers[\"demo\"].tools[\"echo\"].digest");
        let text = String::from_utf8(file().to_pretty()).unwrap();
        let dup = text.replacen(
            "\"lockfileVersion\": 1,",
            "\"lockfileVersion\": 1, \"lockfileVersion\": 1,",
            1,
        );
        let e = Lockfile::parse(dup.as_bytes()).unwrap_err();
        assert!(e.message.contains("duplicate object key"), "{e}");
    }

    #[test]
    fn checking_without_copying_agrees_with_reading() {
        let doc: Value = serde_json::from_slice(&file().to_pretty()).unwrap();
        let counts = Lockfile::check_value(&doc).unwrap();
        assert_eq!(counts["demo"].items[&ItemKind::Tool], 2);
        assert_eq!(counts["demo"].items.get(&ItemKind::Resource), None);
        let mut edited = doc.clone();
        edited["servers"]["demo"]["tools"]["sum"]["definition"]["x"] = json!(1);
        assert_eq!(
            Lockfile::check_value(&edited).unwrap_err(),
            Lockfile::from_value(&edited).unwrap_err()
        );
        let mut edited = doc;
        edited["servers"]["demo"]["protocolVersion"] = json!("2024-11-05");
        assert!(Lockfile::check_value(&edited).is_err());
    }

    #[test]
    fn unserved_lists_need_version_2_and_are_covered_by_the_digest() {
        let v1 = file();
        assert_eq!(v1.version(), 1);
        let mut server = sample();
        server.unserved.insert(ItemKind::ResourceTemplate, -32601);
        let v2 = Lockfile {
            servers: BTreeMap::from([("demo".to_string(), server.clone())]),
            approvals: Vec::new(),
            registry: Default::default(),
        };
        assert_eq!(v2.version(), 2);
        assert_ne!(v1.servers["demo"].digest("demo"), server.digest("demo"));
        let bytes = v2.to_pretty();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["lockfileVersion"], 2);
        assert_eq!(
            doc["servers"]["demo"]["unserved"],
            json!({"resourceTemplates": {"code": -32601}})
        );
        let back = Lockfile::parse(&bytes).unwrap();
        assert_eq!(back, v2);
        assert_eq!(back.to_pretty(), bytes);
        assert_eq!(Lockfile::from_value(&doc).unwrap(), v2);

        let reparse = |d: &Value| Lockfile::parse(d.to_string().as_bytes());
        let mut code = doc.clone();
        code["servers"]["demo"]["unserved"]["resourceTemplates"]["code"] = json!(-32602);
        let e = reparse(&code).unwrap_err();
        assert_eq!(e.place, "servers[\"demo\"]", "{e}");
        let mut v1_with_field = doc.clone();
        v1_with_field["lockfileVersion"] = json!(1);
        assert!(
            reparse(&v1_with_field)
                .unwrap_err()
                .message
                .contains("needs lockfileVersion 2")
        );
        let mut removed = doc.clone();
        removed["servers"]["demo"]
            .as_object_mut()
            .unwrap()
            .remove("unserved");
        assert!(
            reparse(&removed).is_err(),
            "removing the field must break the digest"
        );
        for bad in [
            json!({}),
            json!({"tools": {"code": -32000}}),
            json!({"widgets": {"code": -32601}}),
            json!({"tools": {"code": -32601, "x": 1}}),
        ] {
            let mut d = doc.clone();
            d["servers"]["demo"]["unserved"] = bad.clone();
            assert!(reparse(&d).is_err(), "{bad}");
        }
        let mut served_too = doc;
        served_too["servers"]["demo"]["unserved"] = json!({"tools": {"code": -32601}});
        let e = reparse(&served_too).unwrap_err();
        assert!(e.message.contains("cannot have locked items"), "{e}");
    }

    #[test]
    fn an_item_key_must_match_its_definition() {
        let e = edit(|d| {
            let tools = d["servers"]["demo"]["tools"].as_object_mut().unwrap();
            let echo = tools.remove("echo").unwrap();
            tools.insert("echo2".into(), echo);
        })
        .unwrap_err();
        assert!(
            e.message.contains("does not match the definition's name"),
            "{e}"
        );
    }

    #[test]
    fn every_field_of_a_definition_is_covered_by_its_digest() {
        let base = sample().tools["echo"].digest();
        for (field, value) in [
            ("title", json!("Echo!")),
            ("annotations", json!({"readOnlyHint": false})),
            ("_meta", json!({"k": 2})),
            (
                "inputSchema",
                json!({"type": "object", "properties": {"ratio": {"type": "number", "maximum": 2.5}}}),
            ),
            ("outputSchema", json!({"type": "object"})),
        ] {
            let mut def = sample().tools["echo"].to_map();
            def.insert(field.into(), value);
            assert_ne!(Digest::of_value(&Value::Object(def)), base, "{field}");
        }
    }

    /// Every real server locked in one file, in the form mcplock writes.
    fn real_file() -> Vec<u8> {
        let servers = crate::core::testkit::real_snapshots()
            .into_iter()
            .enumerate()
            .filter_map(|(i, mut snapshot)| {
                let name = format!("{i}-{}", snapshot.server_name().unwrap_or("anonymous"));
                snapshot.launch = Some(crate::core::testkit::server_lock(vec![]).launch);
                ServerLock::from_snapshot(snapshot, true)
                    .ok()
                    .map(|lock| (name, lock))
            })
            .collect();
        Lockfile {
            servers,
            approvals: Vec::new(),
            registry: Default::default(),
        }
        .to_pretty()
    }

    /// The strict read's answer for a text: its counts, or its error (a JSON error too).
    fn strict_check(text: &[u8]) -> Result<Checked, String> {
        let value = parse_strict(text).map_err(|e| e.to_string())?;
        Lockfile::check_value(&value).map_err(|e| e.to_string())
    }

    #[test]
    fn streaming_a_written_lockfile_agrees_with_the_strict_read() {
        let text = real_file();
        let streamed = Lockfile::stream_text(&text, 5).expect("written form is taken");
        assert_eq!(
            &streamed.canonical[5..],
            &crate::core::canonical::canonicalize(&text).unwrap()[..]
        );
        let counts = Lockfile::check_streamed(&streamed).unwrap();
        assert!(counts.len() > 3, "{counts:?}");
        assert_eq!(Ok(counts), strict_check(&text));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever is edited in a lockfile, the streamed check answers what the strict read
        /// answers (same counts, or the same error), whenever it takes the text at all.
        #[test]
        fn streaming_an_edited_lockfile_agrees_with_the_strict_read(
            seed in proptest::prelude::any::<u64>(),
            leaf in crate::core::testkit::any_json(),
        ) {
            let document: Value = serde_json::from_slice(&real_file()).unwrap();
            let edited = crate::core::testkit::mutate(&document, seed, &leaf);
            let text = serde_json::to_vec_pretty(&edited).unwrap();
            if let Some(streamed) = Lockfile::stream_text(&text, 0) {
                let streamed = Lockfile::check_streamed(&streamed).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(streamed, strict_check(&text));
            }
        }

        /// Issue 33: the one reader every command uses (`parse`: streamed when the text is in
        /// written form) gives exactly the lockfile the strict tree reader gives, or the same
        /// error, on real lockfiles edited anywhere (pretty or compact text).
        #[test]
        fn the_streaming_reader_reads_what_the_tree_reader_reads(
            seed in proptest::prelude::any::<u64>(),
            leaf in crate::core::testkit::any_json(),
            edit in proptest::prelude::any::<bool>(),
            pretty in proptest::prelude::any::<bool>(),
        ) {
            let document: Value = serde_json::from_slice(&real_file()).unwrap();
            let edited = if edit {
                crate::core::testkit::mutate(&document, seed, &leaf)
            } else {
                document
            };
            let text = if pretty {
                serde_json::to_vec_pretty(&edited).unwrap()
            } else {
                serde_json::to_vec(&edited).unwrap()
            };
            let tree = Lockfile::parse_tree(&text).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(Lockfile::parse(&text).map_err(|e| e.to_string()), tree.clone());
            if !edit && pretty {
                proptest::prop_assert!(Lockfile::stream_text(&text, 0).is_some());
                proptest::prop_assert!(tree.is_ok());
            }
        }
    }
}
