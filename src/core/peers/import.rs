//! Peers' lockfiles read strictly into an import draft (`mcplock import`): per server, the
//! launch the peer recorded (when it recorded one) and every hash the peer pinned, with the
//! recipe that recomputes it from what the server serves ([`super::recipes`]). A draft is not a
//! lockfile: nothing in it is trusted until a live scan confirms it ([`super::confirm`]).

use super::recipes::Recipe;
use crate::core::launch::Launch;
use crate::core::snapshot::ItemKind;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The draft's format marker and version.
pub const DRAFT_MARKER: &str = "mcplockImport";
pub const DRAFT_VERSION: u64 = 1;
/// At most this many servers and pins per server in one imported file.
const MAX_SERVERS: usize = 1_000;
const MAX_PINS: usize = 10_000;

/// The tools whose files `mcplock import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    McpLockV1,
    ToolPin,
    McpTrust,
    Warden,
    McpScan,
}

impl Peer {
    pub const ALL: [Peer; 5] = [
        Peer::McpLockV1,
        Peer::ToolPin,
        Peer::McpTrust,
        Peer::Warden,
        Peer::McpScan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Peer::McpLockV1 => "mcp-lock/1",
            Peer::ToolPin => "toolpin",
            Peer::McpTrust => "mcptrust",
            Peer::Warden => "warden",
            Peer::McpScan => "mcp-scan",
        }
    }

    /// How a person names the file's format.
    pub fn title(self) -> &'static str {
        match self {
            Peer::McpLockV1 => "an mcp-lock/1 lockfile",
            Peer::ToolPin => "a ToolPin lockfile (lockfileVersion 2)",
            Peer::McpTrust => "an MCPTrust mcp-lock.json",
            Peer::Warden => "an mcp-warden warden.lock",
            Peer::McpScan => "mcp-scan's scanned_entities.json",
        }
    }

    pub fn parse(name: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// What a peer's signature came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// The format signs nothing, or no signature was found beside the file.
    Absent,
    /// A signature was found but no key to check it with was given.
    NotChecked { key: String },
    /// It holds, by the key with this fingerprint.
    Valid { key: String, signed_at: String },
}

/// One hash a peer pinned: of one item (`key`) or of every item of `kind` at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub kind: ItemKind,
    pub key: Option<String>,
    pub recipe: Recipe,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DraftServer {
    pub launch: Option<Launch>,
    pub pins: Vec<Pin>,
}

/// An import draft: what a peer approved, waiting for a live scan to confirm it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub from: Peer,
    /// The imported file's name and the SHA-256 (hex) of its bytes.
    pub source: String,
    pub source_sha256: String,
    pub signature: SignatureCheck,
    pub servers: BTreeMap<String, DraftServer>,
}

/// Which formats `document` may be, from its content.
pub fn detect(document: &Value) -> Vec<Peer> {
    let Some(top) = document.as_object() else {
        return Vec::new();
    };
    let has = |k: &str| top.contains_key(k);
    let mut found = Vec::new();
    if top.get("specVersion").is_some() && has("entries") {
        found.push(Peer::McpLockV1);
    }
    // mcplock's own version 2 has `lockfileVersion: 2` and `servers` too; ToolPin's entries
    // name a client and no launch.
    let toolpin_entries = top
        .get("servers")
        .and_then(Value::as_object)
        .is_some_and(|s| {
            s.values()
                .all(|e| e.get("client").is_some() && e.get("launch").is_none())
        });
    if top.get("lockfileVersion") == Some(&json!(2)) && has("generatedAt") && toolpin_entries {
        found.push(Peer::ToolPin);
    }
    if (has("lockFileVersion") && has("tools")) || (has("server_command") && has("version")) {
        found.push(Peer::McpTrust);
    }
    if has("schema_version") && has("server") && has("tools") {
        found.push(Peer::Warden);
    }
    if !top.is_empty()
        && top.iter().all(|(key, entry)| {
            key.contains('.') && entry.get("hash").is_some_and(Value::is_string)
        })
    {
        found.push(Peer::McpScan);
    }
    found
}

/// Why `document` is not an mcplock lockfile, when it is a draft or a peer's file.
pub fn foreign(document: &Value) -> Option<String> {
    if let Some(from) = document
        .get(DRAFT_MARKER)
        .and(document.get("from"))
        .and_then(Value::as_str)
    {
        return Some(format!(
            "this is an import draft (from {from}), not yet a lockfile: `mcplock lock --check` compares it with the live servers, then `mcplock lock` locks what is confirmed"
        ));
    }
    match detect(document)[..] {
        [peer] => Some(format!(
            "this is {}, not an mcplock lockfile: start from it with `mcplock import FILE`",
            peer.title()
        )),
        _ => None,
    }
}

/// Reads `document` as `from`'s format into a draft's servers. `name` names a single-server
/// file's server (warden and MCPTrust files hold one and may not name it).
pub fn read(
    from: Peer,
    document: &Value,
    name: &str,
) -> Result<BTreeMap<String, DraftServer>, String> {
    let top = document
        .as_object()
        .ok_or("the file is not a JSON object")?;
    let servers = match from {
        Peer::McpLockV1 => read_mcp_lock(document)?,
        Peer::ToolPin => read_toolpin(top)?,
        Peer::McpTrust => read_mcptrust(top, name)?,
        Peer::Warden => read_warden(top, name)?,
        Peer::McpScan => read_mcp_scan(top)?,
    };
    if servers.len() > MAX_SERVERS {
        return Err(format!("more than {MAX_SERVERS} servers"));
    }
    if let Some((name, _)) = servers.iter().find(|(_, s)| s.pins.len() > MAX_PINS) {
        return Err(format!("server {name:?} pins more than {MAX_PINS} items"));
    }
    Ok(servers)
}

fn field<'a>(map: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a Value, String> {
    map.get(key)
        .ok_or_else(|| format!("{at}: {key:?} is missing"))
}

fn text<'a>(map: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, String> {
    field(map, key, at)?
        .as_str()
        .ok_or_else(|| format!("{at}: {key:?} must be a string"))
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{at} must be an object"))
}

/// `sha256:` and 64 lowercase hex digits (mcplock's own digest form), as written.
fn sha256_hex(value: &str, at: &str) -> Result<String, String> {
    match crate::core::canonical::Digest::parse(value) {
        Some(_) => Ok(value.to_string()),
        None => Err(format!(
            "{at}: {value:?} is not sha256: and 64 lowercase hex digits"
        )),
    }
}

/// The optional text hashes MCPTrust keeps of an item (`(member, field)` pairs), as pins.
fn text_pins(
    pinned: &Map<String, Value>,
    kind: ItemKind,
    key: &str,
    members: &[(&str, &str)],
    at: &str,
    server: &mut DraftServer,
) -> Result<(), String> {
    for (member, of) in members {
        if let Some(hash) = pinned.get(*member) {
            let hash = sha256_hex(hash.as_str().unwrap_or_default(), at)?;
            server
                .pins
                .push(pin(kind, key, Recipe::McpTrustText(of.to_string()), hash));
        }
    }
    Ok(())
}

fn pin(kind: ItemKind, key: &str, recipe: Recipe, value: String) -> Pin {
    Pin {
        kind,
        key: Some(key.to_string()),
        recipe,
        value,
    }
}

fn read_mcp_lock(document: &Value) -> Result<BTreeMap<String, DraftServer>, String> {
    if let Some(v) = super::mcp_lock_v1::validate(document).first() {
        return Err(format!(
            "it breaks the mcp-lock/1 rule {} at {}",
            v.code, v.at
        ));
    }
    let mut servers = BTreeMap::new();
    let entries = document["entries"]
        .as_array()
        .ok_or("\"entries\" must be an array")?;
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("entries[{i}]");
        let entry = object(entry, &at)?;
        let name = text(entry, "name", &at)?;
        let client = text(entry, "client", &at)?;
        let key = format!("{name}:{client}");
        let mut server = DraftServer {
            launch: launch_of_target(object(field(entry, "target", &at)?, &at)?),
            pins: Vec::new(),
        };
        if let Some(surface) = entry.get("surface").and_then(Value::as_object) {
            let coverage: Vec<String> = surface
                .get("coverage")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            server.pins.push(Pin {
                kind: ItemKind::Tool,
                key: None,
                recipe: Recipe::McpLockSurface(coverage),
                value: text(surface, "hash", &at)?.to_string(),
            });
        }
        if servers.insert(key.clone(), server).is_some() {
            return Err(format!("{at}: server {key:?} twice"));
        }
    }
    Ok(servers)
}

/// The launch an mcp-lock/1 or ToolPin target names: a remote URL, or the package run the way
/// its registry's runner runs an exact version.
fn launch_of_target(target: &Map<String, Value>) -> Option<Launch> {
    let get = |k: &str| target.get(k).and_then(Value::as_str);
    if let Some(url) = get("url") {
        return Some(Launch::Http {
            url: url.to_string(),
            header_names: Vec::new(),
            context: None,
        });
    }
    let (identifier, version) = (get("identifier")?, get("version"));
    let (command, args): (&str, Vec<String>) = match get("registryType")? {
        "npm" => (
            "npx",
            vec!["-y".into(), format!("{identifier}@{}", version?)],
        ),
        "pypi" => ("uvx", vec![format!("{identifier}=={}", version?)]),
        "oci" => (
            "docker",
            vec!["run".into(), "-i".into(), "--rm".into(), identifier.into()],
        ),
        _ => return None,
    };
    Some(Launch::command(command, &args))
}

fn read_toolpin(top: &Map<String, Value>) -> Result<BTreeMap<String, DraftServer>, String> {
    let entries = object(field(top, "servers", "")?, "\"servers\"")?;
    let mut servers = BTreeMap::new();
    for (key, entry) in entries {
        let at = format!("servers[{key:?}]");
        let entry = object(entry, &at)?;
        text(entry, "name", &at)?;
        if text(entry, "integrity", &at)? != super::toolpin::integrity(entry) {
            return Err(format!(
                "{at}: its integrity does not match the entry: the file was edited"
            ));
        }
        let launch = toolpin_config_launch(entry).or_else(|| {
            entry
                .get("selectedTarget")
                .and_then(Value::as_object)
                .and_then(launch_of_target)
        });
        let mut server = DraftServer {
            launch,
            pins: Vec::new(),
        };
        let manifest = entry.get("capabilityManifest").and_then(Value::as_object);
        for (member, recipe) in [
            ("toolSurfaceHash", Recipe::ToolPinSurface),
            ("toolManifestHash", Recipe::ToolPinManifest),
            ("toolDescriptionHash", Recipe::ToolPinDescriptions),
        ] {
            if let Some(hash) = manifest.and_then(|m| m.get(member)) {
                let value = text(object(hash, &at)?, "value", &at)?;
                server.pins.push(Pin {
                    kind: ItemKind::Tool,
                    key: None,
                    recipe,
                    value: value.to_string(),
                });
            }
        }
        servers.insert(key.clone(), server);
    }
    Ok(servers)
}

/// The launch in a ToolPin entry's host config fragment (`mcpServers`, `mcp_servers`,
/// `servers`), when it holds exactly one server.
fn toolpin_config_launch(entry: &Map<String, Value>) -> Option<Launch> {
    let config = entry.get("config")?.as_object()?;
    let fragment = ["mcpServers", "mcp_servers", "servers"]
        .into_iter()
        .find_map(|k| config.get(k))?
        .as_object()?;
    let [(_, server)] = fragment.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let server = server.as_object()?;
    if let Some(url) = server.get("url").and_then(Value::as_str) {
        return launch_of_target(&Map::from_iter([("url".into(), url.into())]));
    }
    let command = server.get("command")?.as_str()?;
    let args: Option<Vec<String>> = server
        .get("args")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or(Some(Vec::new()));
    Some(Launch::command(command, &args?))
}

fn read_mcptrust(
    top: &Map<String, Value>,
    name: &str,
) -> Result<BTreeMap<String, DraftServer>, String> {
    let v3 = top.contains_key("lockFileVersion");
    let version = text(top, if v3 { "lockFileVersion" } else { "version" }, "")?;
    if !matches!(version, "2.0" | "3.0") {
        return Err(format!(
            "MCPTrust lockfile version {version:?}: this reads 2.0 and 3.0"
        ));
    }
    let mut server = DraftServer::default();
    if let Some(command) = top.get("server_command").and_then(Value::as_str) {
        let words = shlex::split(command).ok_or("\"server_command\" is not a command line")?;
        if let Some((program, args)) = words.split_first() {
            server.launch = Some(Launch::command(program, args));
        }
    }
    for (tool, pinned) in object(field(top, "tools", "")?, "\"tools\"")? {
        let at = format!("tools[{tool:?}]");
        let pinned = object(pinned, &at)?;
        let description = text(pinned, "description_hash", &at)?;
        let schema = text(pinned, "input_schema_hash", &at)?;
        server.pins.push(pin(
            ItemKind::Tool,
            tool,
            Recipe::McpTrustDescription,
            sha256_hex(description, &at)?,
        ));
        if !schema.is_empty() {
            sha256_hex(schema, &at)?;
        }
        server.pins.push(pin(
            ItemKind::Tool,
            tool,
            Recipe::McpTrustInputSchema,
            schema.to_string(),
        ));
    }
    if v3 {
        read_mcptrust_v3(top, &mut server)?;
    }
    let name = top
        .get("server")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(name);
    Ok(BTreeMap::from([(name.to_string(), server)]))
}

fn read_mcptrust_v3(top: &Map<String, Value>, server: &mut DraftServer) -> Result<(), String> {
    let prompts = top
        .get("prompts")
        .and_then(|p| p.get("definitions"))
        .and_then(Value::as_object);
    for (prompt, pinned) in prompts.into_iter().flatten() {
        let at = format!("prompts.definitions[{prompt:?}]");
        let pinned = object(pinned, &at)?;
        let arguments = sha256_hex(text(pinned, "argumentsHash", &at)?, &at)?;
        server.pins.push(pin(
            ItemKind::Prompt,
            prompt,
            Recipe::McpTrustArguments,
            arguments,
        ));
        text_pins(
            pinned,
            ItemKind::Prompt,
            prompt,
            &[("descriptionHash", "description"), ("titleHash", "title")],
            &at,
            server,
        )?;
    }
    let templates = top
        .get("resources")
        .and_then(|r| r.get("templates"))
        .and_then(Value::as_array);
    for (i, pinned) in templates.into_iter().flatten().enumerate() {
        let at = format!("resources.templates[{i}]");
        let pinned = object(pinned, &at)?;
        let uri = text(pinned, "uriTemplate", &at)?;
        let template = sha256_hex(text(pinned, "templateHash", &at)?, &at)?;
        server.pins.push(pin(
            ItemKind::ResourceTemplate,
            uri,
            Recipe::McpTrustTemplate,
            template,
        ));
        text_pins(
            pinned,
            ItemKind::ResourceTemplate,
            uri,
            &[("nameHash", "name"), ("descriptionHash", "description")],
            &at,
            server,
        )?;
    }
    Ok(())
}

fn read_warden(
    top: &Map<String, Value>,
    name: &str,
) -> Result<BTreeMap<String, DraftServer>, String> {
    let version = top.get("schema_version").and_then(Value::as_u64);
    if !matches!(version, Some(1..=4)) {
        return Err(format!(
            "warden.lock schema_version {}: this reads 1 to 4",
            top.get("schema_version").cloned().unwrap_or(Value::Null)
        ));
    }
    let identity = object(field(top, "server", "")?, "\"server\"")?;
    let mut server = DraftServer {
        launch: Some(warden_launch(identity)?),
        pins: Vec::new(),
    };
    for (kind, member, key_field) in [
        (ItemKind::Tool, "tools", "name"),
        (ItemKind::Prompt, "prompts", "name"),
        (ItemKind::Resource, "resources", "uri"),
    ] {
        let Some(entries) = top.get(member) else {
            continue;
        };
        let entries = entries
            .as_array()
            .ok_or_else(|| format!("{member:?} must be an array"))?;
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{member}[{i}]");
            warden_entry(object(entry, &at)?, kind, key_field, &at, &mut server)?;
        }
    }
    Ok(BTreeMap::from([(name.to_string(), server)]))
}

/// A warden lock's server identity, its digest checked: a command, or (version 4) a URL.
fn warden_launch(identity: &Map<String, Value>) -> Result<Launch, String> {
    let (launch, covered) = match identity.get("url").and_then(Value::as_str) {
        Some(url) => (
            Launch::Http {
                url: url.to_string(),
                header_names: Vec::new(),
                context: None,
            },
            json!({"url": url}),
        ),
        None => {
            let command = text(identity, "command", "server")?;
            let args: Vec<String> = field(identity, "args", "server")?
                .as_array()
                .ok_or("server: \"args\" must be an array")?
                .iter()
                .map(|a| {
                    a.as_str()
                        .map(str::to_owned)
                        .ok_or("server: \"args\" must hold strings")
                })
                .collect::<Result<_, _>>()?;
            let covered = json!({"command": command, "args": args});
            (Launch::command(command, &args), covered)
        }
    };
    if sha256_hex(text(identity, "command_digest", "server")?, "server")? != prefixed(&covered) {
        return Err(
            "server.command_digest is not the digest of its launch: the file was edited".into(),
        );
    }
    Ok(launch)
}

/// One warden entry: its own digest checked, its field hashes pinned.
fn warden_entry(
    entry: &Map<String, Value>,
    kind: ItemKind,
    key_field: &str,
    at: &str,
    server: &mut DraftServer,
) -> Result<(), String> {
    let key = text(entry, key_field, at)?;
    if let Some(recorded) = entry.get("entry_digest") {
        let mut without = entry.clone();
        without.remove("entry_digest");
        let recorded = sha256_hex(recorded.as_str().unwrap_or_default(), at)?;
        if recorded != prefixed(&Value::Object(without)) {
            return Err(format!(
                "{at}: entry_digest does not match the entry: the file was edited"
            ));
        }
    }
    for (member, recipe) in [
        ("description_hash", Recipe::WardenDescription),
        ("input_schema_hash", Recipe::WardenInputSchema),
        ("arguments_hash", Recipe::WardenArguments),
        (
            "annotations_hash",
            Recipe::WardenValue("annotations".into()),
        ),
        (
            "output_schema_hash",
            Recipe::WardenValue("outputSchema".into()),
        ),
    ] {
        if let Some(hash) = entry.get(member) {
            let hash = sha256_hex(hash.as_str().unwrap_or_default(), at)?;
            server.pins.push(pin(kind, key, recipe, hash));
        }
    }
    // A resource keeps its name and MIME type in clear.
    if kind == ItemKind::Resource {
        for (member, of) in [("name", "name"), ("mime_type", "mimeType")] {
            if let Some(kept) = entry.get(member) {
                let value = String::from_utf8_lossy(&crate::core::canonical::to_canonical(kept))
                    .into_owned();
                server
                    .pins
                    .push(pin(kind, key, Recipe::Kept(of.into()), value));
            }
        }
    }
    Ok(())
}

fn prefixed(value: &Value) -> String {
    use sha2::{Digest as _, Sha256};
    let hash = Sha256::digest(crate::core::canonical::to_canonical(value));
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn read_mcp_scan(top: &Map<String, Value>) -> Result<BTreeMap<String, DraftServer>, String> {
    let mut servers: BTreeMap<String, DraftServer> = BTreeMap::new();
    for (key, entity) in top {
        let at = format!("[{key:?}]");
        let entity = object(entity, &at)?;
        let kind_name = text(entity, "type", &at)?;
        let (kind, marker) = match kind_name {
            "tool" => (ItemKind::Tool, ".tool."),
            "prompt" => (ItemKind::Prompt, ".prompt."),
            "resource" => (ItemKind::Resource, ".resource."),
            "resource template" => (ItemKind::ResourceTemplate, ".resource template."),
            other => return Err(format!("{at}: entity type {other:?} is unknown")),
        };
        let mut parts = key.match_indices(marker);
        let (Some((split, _)), None) = (parts.next(), parts.next()) else {
            return Err(format!(
                "{at}: cannot tell the server from the {kind_name} in this key"
            ));
        };
        let (server, item) = (&key[..split], &key[split + marker.len()..]);
        // mcp-scan keeps the description it approved beside its MD5: that text is compared.
        let Some(description) = entity.get("description").and_then(Value::as_str) else {
            continue;
        };
        servers
            .entry(server.to_string())
            .or_default()
            .pins
            .push(pin(
                kind,
                item,
                Recipe::McpScanDescription,
                description.to_string(),
            ));
    }
    Ok(servers)
}

impl Draft {
    /// The draft as mcplock writes it (canonical JSON; the command line pretty-prints it).
    pub fn to_value(&self) -> Value {
        let servers: Map<String, Value> = self
            .servers
            .iter()
            .map(|(name, server)| {
                let pins: Vec<Value> = server.pins.iter().map(pin_json).collect();
                let launch = server.launch.as_ref().map_or(Value::Null, Launch::to_json);
                (name.clone(), json!({"launch": launch, "pins": pins}))
            })
            .collect();
        let signature = match &self.signature {
            SignatureCheck::Absent => json!({"status": "absent"}),
            SignatureCheck::NotChecked { key } => json!({"status": "not-checked", "key": key}),
            SignatureCheck::Valid { key, signed_at } => {
                json!({"status": "valid", "key": key, "signedAt": signed_at})
            }
        };
        json!({
            DRAFT_MARKER: DRAFT_VERSION,
            "from": self.from.as_str(),
            "signature": signature,
            "source": {"file": self.source, "sha256": self.source_sha256},
            "servers": servers,
        })
    }

    /// Reads a draft mcplock wrote (strictly: anything else is refused).
    pub fn from_value(value: &Value) -> Result<Draft, String> {
        let top = object(value, "the draft")?;
        if top.get(DRAFT_MARKER).and_then(Value::as_u64) != Some(DRAFT_VERSION) {
            return Err(format!("{DRAFT_MARKER:?} must be {DRAFT_VERSION}"));
        }
        let from = Peer::parse(text(top, "from", "the draft")?).ok_or("\"from\" names no peer")?;
        let source = object(field(top, "source", "the draft")?, "\"source\"")?;
        let signature = object(field(top, "signature", "the draft")?, "\"signature\"")?;
        let signature = match text(signature, "status", "signature")? {
            "absent" => SignatureCheck::Absent,
            "not-checked" => SignatureCheck::NotChecked {
                key: text(signature, "key", "signature")?.to_string(),
            },
            "valid" => SignatureCheck::Valid {
                key: text(signature, "key", "signature")?.to_string(),
                signed_at: text(signature, "signedAt", "signature")?.to_string(),
            },
            other => return Err(format!("signature status {other:?} is unknown")),
        };
        let mut servers = BTreeMap::new();
        for (name, server) in object(field(top, "servers", "the draft")?, "\"servers\"")? {
            let at = format!("servers[{name:?}]");
            let server = object(server, &at)?;
            let launch = match field(server, "launch", &at)? {
                Value::Null => None,
                Value::Object(launch) => {
                    Some(Launch::from_json(launch).map_err(|e| format!("{at}.launch: {e}"))?)
                }
                _ => return Err(format!("{at}.launch must be an object or null")),
            };
            let pins = field(server, "pins", &at)?
                .as_array()
                .ok_or_else(|| format!("{at}.pins must be an array"))?
                .iter()
                .map(|p| read_pin(p, &at))
                .collect::<Result<_, _>>()?;
            servers.insert(name.clone(), DraftServer { launch, pins });
        }
        Ok(Draft {
            from,
            source: text(source, "file", "source")?.to_string(),
            source_sha256: text(source, "sha256", "source")?.to_string(),
            signature,
            servers,
        })
    }
}

fn pin_json(pin: &Pin) -> Value {
    let mut out = json!({
        "kind": pin.kind.field(),
        "recipe": pin.recipe.name(),
        "value": pin.value,
    });
    if let Some(key) = &pin.key {
        out["key"] = key.clone().into();
    }
    match &pin.recipe {
        Recipe::McpLockSurface(coverage) => out["coverage"] = json!(coverage),
        Recipe::McpTrustText(of) | Recipe::WardenValue(of) | Recipe::Kept(of) => {
            out["field"] = of.clone().into()
        }
        _ => {}
    }
    out
}

fn read_pin(value: &Value, at: &str) -> Result<Pin, String> {
    let pin = object(value, &format!("{at}.pins[]"))?;
    let kind_name = text(pin, "kind", at)?;
    let kind = ItemKind::ALL
        .into_iter()
        .find(|k| k.field() == kind_name)
        .ok_or_else(|| format!("{at}: kind {kind_name:?} is unknown"))?;
    let coverage: Option<Vec<String>> = pin.get("coverage").map(|c| {
        c.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    });
    let of = pin.get("field").and_then(Value::as_str);
    let recipe = Recipe::from_name(text(pin, "recipe", at)?, of, coverage.as_deref())
        .ok_or_else(|| format!("{at}: a pin's recipe is unknown"))?;
    let key = match pin.get("key") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(format!("{at}: a pin's key must be a string")),
    };
    if key.is_none() != recipe.is_whole() {
        return Err(format!("{at}: a pin's key does not fit its recipe"));
    }
    Ok(Pin {
        kind,
        key,
        recipe,
        value: text(pin, "value", at)?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer_file(path: &str) -> Value {
        let bytes = std::fs::read(format!(
            "{}/testdata/peers/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("peer test data is committed");
        crate::core::json::parse_strict(&bytes).expect("peer test data is JSON")
    }

    /// Every committed peer file is detected as its own format only, and read.
    #[test]
    fn each_peers_own_files_are_detected_and_read() {
        let files = [
            (
                "toolpin-mcp-lock-1/test/fixtures/spec/positive/remote-with-surface.json",
                Peer::McpLockV1,
            ),
            (
                "toolpin-mcp-lock-1/test/fixtures/spec/positive/minimal-package.json",
                Peer::McpLockV1,
            ),
            ("toolpin-v2-sample/mcp-lock.json", Peer::ToolPin),
            ("mcptrust/testdata/golden/mcp-lock.v3.json", Peer::McpTrust),
            (
                "mcp-warden/examples/pinned-servers/server-memory/warden.lock",
                Peer::Warden,
            ),
            (
                "mcp-warden/examples/pinned-servers/server-everything/warden.lock",
                Peer::Warden,
            ),
            ("mcp-warden/tests/fixtures/clean.warden.lock", Peer::Warden),
        ];
        for (path, peer) in files {
            let document = peer_file(path);
            assert_eq!(detect(&document), [peer], "{path}");
            let servers = read(peer, &document, "named").unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!servers.is_empty(), "{path}");
        }
    }

    #[test]
    fn what_each_file_pins_is_kept_with_its_launch() {
        let memory = read(
            Peer::Warden,
            &peer_file("mcp-warden/examples/pinned-servers/server-memory/warden.lock"),
            "memory",
        )
        .unwrap();
        let server = &memory["memory"];
        assert_eq!(
            server.launch,
            Some(Launch::command(
                "npx",
                &[
                    "-y".into(),
                    "@modelcontextprotocol/server-memory@2026.1.26".into()
                ]
            ))
        );
        assert!(
            server
                .pins
                .iter()
                .any(|p| p.key.as_deref() == Some("add_observations")
                    && p.recipe == Recipe::WardenInputSchema)
        );
        let golden = read(
            Peer::McpTrust,
            &peer_file("mcptrust/testdata/golden/mcp-lock.v3.json"),
            "x",
        )
        .unwrap();
        let server = &golden["test-server"];
        assert_eq!(server.launch, None);
        assert_eq!(
            server
                .pins
                .iter()
                .filter(|p| p.kind == ItemKind::ResourceTemplate)
                .count(),
            8
        );
        // Its committed v2 file holds placeholder hashes (refused below): made real here.
        let mut v2 = peer_file("mcptrust/internal/policy/testdata/lockfile_v2_with_artifact.json");
        assert_eq!(detect(&v2), [Peer::McpTrust]);
        v2["tools"]["read_file"] = json!({
            "description_hash": format!("sha256:{}", "a".repeat(64)),
            "input_schema_hash": "",
            "risk_level": "LOW"
        });
        let v2 = read(Peer::McpTrust, &v2, "fs").unwrap();
        assert_eq!(
            v2["fs"].launch,
            Some(Launch::command(
                "npx",
                &["-y".into(), "@test/server".into(), "/tmp".into()]
            ))
        );
        let toolpin = read(
            Peer::ToolPin,
            &peer_file("toolpin-v2-sample/mcp-lock.json"),
            "x",
        )
        .unwrap();
        assert!(
            toolpin["ac.inference.sh/mcp:claude"]
                .launch
                .as_ref()
                .is_some_and(Launch::is_http)
        );
    }

    #[test]
    fn an_edited_warden_entry_is_refused() {
        let mut document = peer_file("mcp-warden/tests/fixtures/clean.warden.lock");
        document["tools"][0]["description_hash"] = json!(format!("sha256:{}", "0".repeat(64)));
        let error = read(Peer::Warden, &document, "x").unwrap_err();
        assert!(error.contains("entry_digest does not match"), "{error}");
        // MCPTrust's placeholder hashes are not hashes.
        let error = read(
            Peer::McpTrust,
            &peer_file("mcptrust/internal/policy/testdata/lockfile_v2_with_artifact.json"),
            "x",
        );
        assert!(error.is_err());
    }

    #[test]
    fn a_draft_reads_back_as_written() {
        let document = peer_file("mcptrust/testdata/golden/mcp-lock.v3.json");
        let draft = Draft {
            from: Peer::McpTrust,
            source: "mcp-lock.json".into(),
            source_sha256: "00".into(),
            signature: SignatureCheck::Valid {
                key: "k".into(),
                signed_at: "t".into(),
            },
            servers: read(Peer::McpTrust, &document, "x").unwrap(),
        };
        assert_eq!(Draft::from_value(&draft.to_value()), Ok(draft));
    }
}
