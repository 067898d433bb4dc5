//! The enforcement decision of the runtime proxy, as a pure function over (message, locked
//! server, session state): what may pass from a server to the host, and which host calls may
//! reach the server. No I/O: the proxy's loop only moves frames and applies these decisions.
//!
//! The rules (issue 14, DESIGN.md "Runtime enforcement"):
//! - a list page is checked item by item: an item is forwarded, exactly as served, only when its
//!   canonical digest equals the locked one; unlocked and drifted items are withheld;
//! - a call (`tools/call`, `prompts/get`, `resources/read`, `completion/complete`) passes only
//!   when its item is locked, matched the lock when last listed, and is still listed in this
//!   session;
//! - the arguments of `tools/call` must satisfy the locked `inputSchema` (JSON Schema, the draft
//!   its `$schema` names, 2020-12 when it names none; no reference is ever fetched); a schema
//!   that cannot be compiled denies every call of its tool;
//! - the server's self-description (`initialize` or `server/discover` result) must match the
//!   lock: protocol version, capabilities, `serverInfo`, instructions.

use crate::core::canonical::Digest;
use crate::core::lockfile::ServerLock;
use crate::core::snapshot::ItemKind;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The JSON-RPC error code of every call the proxy denies (implementation-defined range).
pub const DENIED: i64 = -32010;

/// What the proxy does with what differs from the lock (`--on-drift`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDrift {
    /// Unlocked and drifted items are withheld from list pages and their calls denied; a
    /// server whose self-description differs from the lock is blocked.
    #[default]
    Withhold,
    /// Any unlocked or drifted item makes its whole list answer an error, and nothing of that
    /// kind may be called; server drift blocks.
    Block,
    /// Shadow mode: what the lock would refuse (an unlocked or drifted item, arguments outside
    /// the locked schema, server drift) is let through and audited as a warning. Malformed
    /// requests and calls to items never listed stay denied.
    Warn,
}

impl Reason {
    /// Whether the refusal comes from the lock (and so `--on-drift warn` lets it through), as
    /// opposed to a malformed request or an item the host was never shown.
    pub fn is_drift(&self) -> bool {
        matches!(
            self,
            Reason::NotLocked
                | Reason::Drifted { .. }
                | Reason::OutsideSchema(_)
                | Reason::SchemaUnusable(_)
        )
    }
}

/// Why an item or a call does not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The lock has no such item.
    NotLocked,
    /// Served with a definition whose digest differs from the locked one.
    Drifted { locked: Digest, served: Digest },
    /// Locked, but not listed (or withheld) in this session: a host may only call what it was
    /// shown.
    NotListed,
    /// The request does not name an item in the way its method requires.
    Malformed(String),
    /// The arguments of a call fall outside the locked `inputSchema`.
    OutsideSchema(String),
    /// The locked `inputSchema` cannot be used to check arguments (missing, or not a schema
    /// the validator can compile): the call cannot be judged, so it is denied.
    SchemaUnusable(String),
    /// On the revocation list (the reason it gives).
    Revoked(String),
    /// Locked, but outside what the calling agent was granted (the gateway).
    NotGranted,
}

impl Reason {
    /// A short stable code for audit logs and error data.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotLocked => "not-locked",
            Reason::Drifted { .. } => "drifted",
            Reason::NotListed => "not-listed",
            Reason::Malformed(_) => "malformed",
            Reason::OutsideSchema(_) => "outside-schema",
            Reason::SchemaUnusable(_) => "schema-unusable",
            Reason::Revoked(_) => "revoked",
            Reason::NotGranted => "not-granted",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Reason::NotLocked => "it is not in the lockfile".into(),
            Reason::Drifted { locked, served } => {
                format!("the server serves it as {served}, the lock approved {locked}")
            }
            Reason::NotListed => "it was not listed to the host in this session".into(),
            Reason::Malformed(what) => what.clone(),
            Reason::OutsideSchema(what) => {
                format!("its arguments are outside the locked inputSchema: {what}")
            }
            Reason::SchemaUnusable(what) => {
                format!("its locked inputSchema cannot check arguments: {what}")
            }
            Reason::Revoked(why) => format!("it is revoked: {why}"),
            Reason::NotGranted => {
                "it is not in this agent's grant (an administrator adds it: mcplock gateway token --grant SERVER/TOOL)".into()
            }
        }
    }
}

/// The locked server, with every item's digest and every tool's argument validator built once.
pub struct Locked<'a> {
    pub server: &'a ServerLock,
    /// What of the server the caller may use at all (the gateway: an agent's grant).
    scope: Scope,
    digests: BTreeMap<ItemKind, BTreeMap<String, Digest>>,
    validators: BTreeMap<String, Result<jsonschema::Validator, String>>,
    /// For the tools whose locked definition has an `outputSchema`.
    output_validators: BTreeMap<String, Result<jsonschema::Validator, String>>,
}

/// Compiles a locked `inputSchema` without ever fetching a reference (no network, no files).
fn compile_input_schema(tool: &Map<String, Value>) -> Result<jsonschema::Validator, String> {
    let schema = tool
        .get("inputSchema")
        .ok_or_else(|| "the locked tool has no inputSchema".to_string())?;
    compile_schema(schema, "inputSchema")
}

fn compile_schema(schema: &Value, what: &str) -> Result<jsonschema::Validator, String> {
    if !schema.is_object() {
        return Err(format!("the locked {what} is not an object"));
    }
    jsonschema::options()
        .with_retriever(NoRetrieval)
        .build(schema)
        .map_err(|e| e.masked().to_string())
}

struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external reference {uri} is never fetched").into())
    }
}

impl<'a> Locked<'a> {
    pub fn new(server: &'a ServerLock) -> Locked<'a> {
        Locked {
            server,
            scope: Scope::All,
            digests: server.item_digests(),
            validators: server
                .tools
                .iter()
                .map(|(name, tool)| (name.clone(), compile_input_schema(&tool.to_map())))
                .collect(),
            output_validators: server
                .tools
                .iter()
                .filter_map(|(name, tool)| {
                    let schema = tool.get("outputSchema")?;
                    Some((name.clone(), compile_schema(&schema, "outputSchema")))
                })
                .collect(),
        }
    }

    /// Whether `tool` has a locked `outputSchema` its results are held to.
    pub fn has_output_schema(&self, tool: &str) -> bool {
        self.output_validators.contains_key(tool)
    }

    /// Checks a result's `structuredContent` against the locked `outputSchema` of `tool`; the
    /// error is the JSON pointer of the first violation (empty when the schema itself cannot
    /// be compiled: then no result is taken as matching it).
    pub fn check_output(&self, tool: &str, structured: &Value) -> Result<(), String> {
        match self.output_validators.get(tool) {
            None => Ok(()),
            Some(Err(_)) => Err(String::new()),
            Some(Ok(validator)) => validator
                .validate(structured)
                .map_err(|e| e.instance_path().to_string()),
        }
    }

    /// Locked tools whose `inputSchema` cannot be compiled, with why: their calls are denied.
    pub fn unusable_schemas(&self) -> Vec<(&str, &str)> {
        self.validators
            .iter()
            .filter_map(|(name, v)| v.as_ref().err().map(|e| (name.as_str(), e.as_str())))
            .collect()
    }

    /// Checks a call's arguments (absent arguments are an empty object) against the locked
    /// `inputSchema` of `tool`.
    pub fn check_arguments(&self, tool: &str, arguments: Option<&Value>) -> Result<(), Reason> {
        let validator = match self.validators.get(tool) {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(Reason::SchemaUnusable(e.clone())),
            None => return Err(Reason::NotLocked),
        };
        let empty = Value::Object(Map::new());
        let arguments = arguments.unwrap_or(&empty);
        // Only the first violation is named, without the argument's value.
        match validator.validate(arguments) {
            Ok(()) => Ok(()),
            Err(e) => Err(Reason::OutsideSchema(format!(
                "{} (at {:?})",
                e.masked(),
                e.instance_path().to_string()
            ))),
        }
    }

    /// The locked digest of one item, if the lock has it.
    pub fn digest(&self, kind: ItemKind, key: &str) -> Option<Digest> {
        self.digests.get(&kind)?.get(key).copied()
    }

    /// The lock held to `scope`: what is outside it is withheld from every listing, whatever
    /// the mode, and denied as [`Reason::NotGranted`].
    pub fn within(mut self, scope: Scope) -> Locked<'a> {
        self.scope = scope;
        self
    }

    /// Whether the caller may use this item at all.
    pub fn admits(&self, kind: ItemKind, key: &str) -> bool {
        self.scope.admits(kind, key)
    }

    /// Whether the lock covers `kind` at all (static resources only with `lock --resources`).
    pub fn covers(&self, kind: ItemKind) -> bool {
        self.server.items(kind).is_some()
    }
}

/// What of a locked server a caller may use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Everything the lock holds.
    #[default]
    All,
    /// These tools, and nothing else of the server.
    Tools(BTreeSet<String>),
}

impl Scope {
    /// Whether an item is inside the scope.
    pub fn admits(&self, kind: ItemKind, key: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Tools(tools) => kind == ItemKind::Tool && tools.contains(key),
        }
    }

    /// Whether everything `self` admits, `wider` admits too.
    pub fn is_within(&self, wider: &Scope) -> bool {
        match (self, wider) {
            (_, Scope::All) => true,
            (Scope::All, Scope::Tools(_)) => false,
            (Scope::Tools(narrow), Scope::Tools(wide)) => narrow.is_subset(wide),
        }
    }

    /// The items of `server` that `wider` admits and `self` does not: what a narrowing from
    /// `wider` to `self` takes away.
    pub fn taken_from(&self, wider: &Scope, server: &ServerLock) -> Vec<(ItemKind, String)> {
        ItemKind::ALL
            .into_iter()
            .flat_map(|kind| {
                server
                    .items(kind)
                    .into_iter()
                    .flat_map(|items| items.keys())
                    .filter(move |key| wider.admits(kind, key) && !self.admits(kind, key))
                    .map(move |key| (kind, key.clone()))
            })
            .collect()
    }
}

/// What this session has shown the host: per kind, the keys forwarded at their last listing.
/// Bounded by what the lock holds (only locked, matching items are ever recorded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    listed: BTreeMap<ItemKind, BTreeSet<String>>,
    /// Locked items the last listing of their kind withheld for drifting, with the locked and
    /// served digests: a call to one is denied as drifted, not as never shown. Bounded by
    /// what the lock holds.
    drifted: BTreeMap<ItemKind, BTreeMap<String, (Digest, Digest)>>,
    revoked: Revoked,
}

/// What a revocation list takes away from this server: all of it, or items, with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    pub server: Option<String>,
    pub items: BTreeMap<ItemKind, BTreeMap<String, String>>,
}

impl Revoked {
    /// What `list` revokes of the server locked as `name`.
    pub fn of(
        list: &crate::core::revocation::Revocations,
        name: &str,
        locked: &Locked<'_>,
    ) -> Revoked {
        let mut out = Revoked {
            server: list
                .of_server(name, locked.server.digest(name))
                .map(|r| r.reason.clone()),
            items: BTreeMap::new(),
        };
        for kind in ItemKind::ALL {
            for key in locked.server.items(kind).into_iter().flat_map(|i| i.keys()) {
                if let Some(r) = list.of_item(name, kind, key, locked.digest(kind, key)) {
                    out.items
                        .entry(kind)
                        .or_default()
                        .insert(key.clone(), r.reason.clone());
                }
            }
        }
        out
    }

    /// Why `key` of `kind` may not be used, if it is revoked.
    pub fn reason(&self, kind: ItemKind, key: &str) -> Option<&str> {
        self.server
            .as_deref()
            .or_else(|| self.items.get(&kind)?.get(key).map(String::as_str))
    }

    /// The kinds whose revoked items differ between `self` and `other` (what a host must
    /// list again), all of them when the whole server's state changed.
    pub fn kinds_changed(&self, other: &Revoked) -> Vec<ItemKind> {
        ItemKind::ALL
            .into_iter()
            .filter(|k| self.server != other.server || self.items.get(k) != other.items.get(k))
            .collect()
    }
}

impl Session {
    /// Takes a revocation list's verdict for this server into account from now on; returns
    /// the kinds whose revocations changed.
    pub fn set_revoked(&mut self, revoked: Revoked) -> Vec<ItemKind> {
        let changed = self.revoked.kinds_changed(&revoked);
        self.revoked = revoked;
        changed
    }

    /// Why `key` of `kind` is revoked, if it is.
    pub fn revoked(&self, kind: ItemKind, key: &str) -> Option<&str> {
        self.revoked.reason(kind, key)
    }

    /// Whether the host has been shown a listing of `kind` (and so may need telling when what
    /// it may call of it changes).
    pub fn has_listed(&self, kind: ItemKind) -> bool {
        self.listed.contains_key(&kind)
    }

    pub fn is_listed(&self, kind: ItemKind, key: &str) -> bool {
        self.listed
            .get(&kind)
            .is_some_and(|keys| keys.contains(key))
    }

    /// The keys of `kind` the host may call now.
    pub fn listed(&self, kind: ItemKind) -> BTreeSet<String> {
        self.listed.get(&kind).cloned().unwrap_or_default()
    }

    /// Nothing of `kind` may be called until it is listed (and checked) again.
    pub fn forget(&mut self, kind: ItemKind) {
        self.listed.remove(&kind);
    }

    /// After the proxy's own re-listing (`found`): of what the host was shown (`shown`), only
    /// what the re-listing found still matching the lock may be called. A re-listing never adds
    /// what the host has not been shown; what it found drifted among what was shown is denied
    /// as drifted from now on.
    pub fn restrict(&mut self, kind: ItemKind, shown: &BTreeSet<String>, found: &Session) {
        let still = found.listed(kind);
        let keep: BTreeSet<String> = shown.intersection(&still).cloned().collect();
        self.listed.insert(kind, keep);
        let drifted = found
            .drifted
            .get(&kind)
            .into_iter()
            .flatten()
            .filter(|(key, _)| shown.contains(*key))
            .map(|(key, digests)| (key.clone(), *digests))
            .collect();
        self.drifted.insert(kind, drifted);
    }
}

/// One item a list page held back, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withheld {
    pub key: String,
    pub reason: Reason,
}

impl Withheld {
    /// The locked and served digests, when the item was withheld for drifting.
    pub fn digests(&self) -> (Option<Digest>, Option<Digest>) {
        match &self.reason {
            Reason::Drifted { locked, served } => (Some(*locked), Some(*served)),
            _ => (None, None),
        }
    }
}

impl Session {
    /// `--on-drift warn`: what a page withheld for differing from the lock (not for being
    /// malformed) is recorded as shown, so its calls are judged as if it matched.
    pub fn admit_drifted(&mut self, kind: ItemKind, withheld: &[Withheld]) {
        for w in withheld.iter().filter(|w| w.reason.is_drift()) {
            self.listed.entry(kind).or_default().insert(w.key.clone());
        }
    }
}

/// A page as served, for shadow mode (`--on-drift warn`): what differs from the lock is let
/// through, never what is outside the caller's grant.
pub fn shadow_page(
    kind: ItemKind,
    mut served: Map<String, Value>,
    withheld: &[Withheld],
) -> Map<String, Value> {
    let ungranted: BTreeSet<&str> = withheld
        .iter()
        .filter(|w| w.reason == Reason::NotGranted)
        .map(|w| w.key.as_str())
        .collect();
    if let (false, Some(Value::Array(items))) = (ungranted.is_empty(), served.get_mut(kind.field()))
    {
        items.retain(|item| {
            let key = item.get(kind.key_field()).and_then(Value::as_str);
            !key.is_some_and(|k| ungranted.contains(k))
        });
    }
    served
}

/// A list page after enforcement: the page to forward and what was held back.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedPage {
    pub forward: Map<String, Value>,
    pub withheld: Vec<Withheld>,
}

/// Checks one page of a `*/list` result of `kind`. Matching items are forwarded unchanged and
/// recorded as listed; the others are withheld. `first_page` starts a fresh listing (what was
/// listed before no longer counts); later pages add to it. A kind the lock does not cover
/// withholds everything.
pub fn check_list_page(
    kind: ItemKind,
    mut result: Map<String, Value>,
    first_page: bool,
    locked: &Locked<'_>,
    session: &mut Session,
) -> CheckedPage {
    let revoked = &session.revoked;
    let listed = session.listed.entry(kind).or_default();
    let drifted = session.drifted.entry(kind).or_default();
    if first_page {
        listed.clear();
        drifted.clear();
    }
    let items = match result.remove(kind.field()) {
        Some(Value::Array(items)) => items,
        Some(other) => {
            result.insert(kind.field().into(), Value::Array(Vec::new()));
            return CheckedPage {
                forward: result,
                withheld: vec![Withheld {
                    key: String::new(),
                    reason: Reason::Malformed(format!(
                        "\"{}\" is {other}, not an array",
                        kind.field()
                    )),
                }],
            };
        }
        None => Vec::new(),
    };
    let mut forward = Vec::with_capacity(items.len());
    let mut withheld = Vec::new();
    for item in items {
        let Some(key) = item.get(kind.key_field()).and_then(Value::as_str) else {
            withheld.push(Withheld {
                key: String::new(),
                reason: Reason::Malformed(format!(
                    "an item without a string \"{}\"",
                    kind.key_field()
                )),
            });
            continue;
        };
        let key = key.to_string();
        let verdict = match locked.digest(kind, &key) {
            _ if !locked.admits(kind, &key) => Err(Reason::NotGranted),
            _ if revoked.reason(kind, &key).is_some() => Err(Reason::Revoked(
                revoked.reason(kind, &key).unwrap_or_default().to_string(),
            )),
            None => Err(Reason::NotLocked),
            Some(expected) => {
                let served = Digest::of_value(&item);
                if served == expected && !listed.contains(&key) {
                    Ok(())
                } else if served == expected {
                    // The same key twice in one listing: an agent could not tell them apart.
                    Err(Reason::Malformed(format!("{key:?} is listed twice")))
                } else {
                    Err(Reason::Drifted {
                        locked: expected,
                        served,
                    })
                }
            }
        };
        match verdict {
            Ok(()) => {
                drifted.remove(&key);
                listed.insert(key);
                forward.push(item);
            }
            Err(reason) => {
                if let Reason::Drifted { locked, served } = &reason {
                    drifted.insert(key.clone(), (*locked, *served));
                }
                withheld.push(Withheld { key, reason })
            }
        }
    }
    result.insert(kind.field().into(), Value::Array(forward));
    CheckedPage {
        forward: result,
        withheld,
    }
}

/// The item a request names (`None` for a method that names none).
pub fn called_item(
    method: &str,
    params: Option<&Value>,
) -> Option<Result<(ItemKind, String), Reason>> {
    let field = |name: &str| -> Result<String, Reason> {
        params
            .and_then(|p| p.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Reason::Malformed(format!("{method} without a string \"{name}\"")))
    };
    Some(match method {
        "tools/call" => field("name").map(|n| (ItemKind::Tool, n)),
        "prompts/get" => field("name").map(|n| (ItemKind::Prompt, n)),
        // A subscription asks for a resource's updates: it is held to what a read would be.
        "resources/read" | "resources/subscribe" => field("uri").map(|u| (ItemKind::Resource, u)),
        "completion/complete" => {
            let reference = params.and_then(|p| p.get("ref"));
            match (
                reference
                    .and_then(|r| r.get("type"))
                    .and_then(Value::as_str),
                reference,
            ) {
                (Some("ref/prompt"), Some(r)) => r
                    .get("name")
                    .and_then(Value::as_str)
                    .map(|n| (ItemKind::Prompt, n.to_string()))
                    .ok_or_else(|| Reason::Malformed("a prompt reference without a name".into())),
                (Some("ref/resource"), Some(r)) => r
                    .get("uri")
                    .and_then(Value::as_str)
                    .map(|u| (ItemKind::ResourceTemplate, u.to_string()))
                    .ok_or_else(|| Reason::Malformed("a resource reference without a uri".into())),
                _ => Err(Reason::Malformed(
                    "completion/complete without a prompt or resource reference".into(),
                )),
            }
        }
        _ => return None,
    })
}

/// Whether a host request may reach the server: `Ok` for methods that call no item, and for
/// calls to an item that is locked and listed in this session; the reason otherwise.
pub fn check_call(
    method: &str,
    params: Option<&Value>,
    locked: &Locked<'_>,
    session: &Session,
) -> Result<(), Reason> {
    if method == "subscriptions/listen" {
        return check_subscriptions(params, locked, session);
    }
    let Some(item) = called_item(method, params) else {
        return Ok(());
    };
    let (kind, key) = item?;
    if !locked.admits(kind, &key) {
        return Err(Reason::NotGranted);
    }
    if let Some(why) = session.revoked(kind, &key) {
        return Err(Reason::Revoked(why.to_string()));
    }
    if kind == ItemKind::Resource {
        return check_resource(&key, locked, session);
    }
    if locked.digest(kind, &key).is_none() {
        return Err(Reason::NotLocked);
    }
    if !session.is_listed(kind, &key) {
        return Err(match session.drifted.get(&kind).and_then(|d| d.get(&key)) {
            Some(&(locked, served)) => Reason::Drifted { locked, served },
            None => Reason::NotListed,
        });
    }
    if method == "tools/call" {
        locked.check_arguments(&key, params.and_then(|p| p.get("arguments")))?;
    }
    Ok(())
}

/// Resource URIs one `subscriptions/listen` may name, at most.
pub const MAX_SUBSCRIPTIONS: usize = 1_024;

/// A 2026-07-28 `subscriptions/listen`: every resource it subscribes to is held to what a read
/// of it would be (`resourceSubscriptions` replaced `resources/subscribe`).
fn check_subscriptions(
    params: Option<&Value>,
    locked: &Locked<'_>,
    session: &Session,
) -> Result<(), Reason> {
    let uris = match params
        .and_then(|p| p.get("notifications"))
        .and_then(|n| n.get("resourceSubscriptions"))
    {
        None => return Ok(()),
        Some(Value::Array(uris)) if uris.len() <= MAX_SUBSCRIPTIONS => uris,
        Some(Value::Array(_)) => {
            return Err(Reason::Malformed(format!(
                "more than {MAX_SUBSCRIPTIONS} resourceSubscriptions"
            )));
        }
        Some(_) => {
            return Err(Reason::Malformed(
                "resourceSubscriptions is not a list".into(),
            ));
        }
    };
    for uri in uris {
        let uri = uri.as_str().ok_or_else(|| {
            Reason::Malformed("a resourceSubscriptions entry is not a string".into())
        })?;
        if let Some(why) = session.revoked(ItemKind::Resource, uri) {
            return Err(Reason::Revoked(why.to_string()));
        }
        check_resource(uri, locked, session)?;
    }
    Ok(())
}

/// A static resource that was listed, or a URI one of the listed templates produces.
fn check_resource(key: &str, locked: &Locked<'_>, session: &Session) -> Result<(), Reason> {
    if locked.covers(ItemKind::Resource) && session.is_listed(ItemKind::Resource, key) {
        return Ok(());
    }
    let templates = session.listed.get(&ItemKind::ResourceTemplate);
    let expands = templates
        .into_iter()
        .flatten()
        .filter(|template| {
            session
                .revoked(ItemKind::ResourceTemplate, template)
                .is_none()
        })
        .any(|template| template_matches(template, key));
    if expands {
        Ok(())
    } else if locked.digest(ItemKind::Resource, key).is_some() {
        Err(Reason::NotListed)
    } else {
        Err(Reason::NotLocked)
    }
}

/// Whether `uri` is one that the RFC 6570 template could expand to, judged conservatively:
/// literal text must match exactly; a simple `{var}` matches one or more characters other
/// than `/`, `\\`, `?`, `#` and `&`, never a dot segment or an encoded separator; any other
/// expression form (`{+var}`, `{/var}`, `{?var}`, lists,
/// modifiers) matches nothing, so a call it would allow is denied rather than guessed.
pub fn template_matches(template: &str, uri: &str) -> bool {
    #[derive(Debug)]
    enum Part<'t> {
        Literal(&'t str),
        Var,
    }
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        parts.push(Part::Literal(&rest[..open]));
        let Some(close) = rest[open..].find('}') else {
            return false;
        };
        let expression = &rest[open + 1..open + close];
        let simple = !expression.is_empty()
            && expression
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !simple {
            return false;
        }
        parts.push(Part::Var);
        rest = &rest[open + close + 1..];
    }
    parts.push(Part::Literal(rest));
    if parts.len() > 256 || uri.len() > 8192 || !safe_value(uri) {
        return false;
    }
    // Which positions of `uri` can be reached after each part, as one sweep per part: linear
    // in the URI for a variable, whatever the template (no backtracking blow-up).
    let bytes = uri.as_bytes();
    let n = bytes.len();
    // For each position, where the run a variable may cover from there ends (the next
    // separator, or the end).
    let mut run_end = vec![n; n + 1];
    for i in (0..n).rev() {
        run_end[i] = if b"/?#&\\".contains(&bytes[i]) {
            i
        } else {
            run_end[i + 1]
        };
    }
    let mut reachable = vec![false; n + 1];
    reachable[0] = true;
    for part in &parts {
        let mut next = vec![false; n + 1];
        match part {
            Part::Literal(l) => {
                for at in (0..=n).filter(|&at| reachable[at]) {
                    if uri[at..].starts_with(l) {
                        next[at + l.len()] = true;
                    }
                }
            }
            Part::Var => {
                // p is reachable if some reachable `at` < p has p <= run_end[at].
                let mut limit: Option<usize> = None;
                for p in 1..=n {
                    if reachable[p - 1] {
                        limit = Some(limit.map_or(run_end[p - 1], |l| l.max(run_end[p - 1])));
                    }
                    next[p] = limit.is_some_and(|l| p <= l) && uri.is_char_boundary(p);
                }
            }
        }
        if !next.contains(&true) {
            return false;
        }
        reachable = next;
    }
    reachable[n]
}

/// No dot segment and no percent-encoded separator anywhere in a URI a template is matched
/// against: the server would see a path the template's author did not mean (`..`, `%2F`,
/// `%5C`).
fn safe_value(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    let dot_segment = lower.split(['/', '\\', '?', '#']).any(|segment| {
        segment == "."
            || segment == ".."
            || segment == "%2e%2e"
            || segment == ".%2e"
            || segment == "%2e."
    });
    // A control character (CR, LF, NUL, ESC, ...) in a URI is one a server may read as a line
    // or a command separator; percent-encoded ones too.
    let control = uri.chars().any(char::is_control)
        || ["%0a", "%0d", "%09", "%1b", "%7f"]
            .iter()
            .any(|encoded| lower.contains(encoded));
    !dot_segment
        && !control
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !lower.contains("%00")
}

/// A difference between the server's self-description and the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerDrift {
    /// `protocolVersion`, `capabilities`, `serverInfo` or `instructions`.
    pub field: &'static str,
}

/// The server's self-description as the proxy relays it (an `initialize` or `server/discover`
/// result), against the lock. The protocol version is what host and server agreed on, not the
/// server's to change, so it is not held to the lock; capabilities are compared only when the
/// host speaks the generation the lock recorded (`same_generation`), because a server describes
/// itself differently in the two results. Everything else must match.
pub fn check_hello(
    result: &Map<String, Value>,
    same_generation: bool,
    locked: &Locked<'_>,
) -> Vec<ServerDrift> {
    let empty = Map::new();
    let capabilities = result
        .get("capabilities")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let info = result.get("serverInfo").or_else(|| {
        result
            .get("_meta")
            .and_then(|m| m.get("io.modelcontextprotocol/serverInfo"))
    });
    let instructions = result.get("instructions").and_then(Value::as_str);
    check_server(
        &locked.server.protocol_version,
        capabilities,
        info,
        instructions,
        locked,
    )
    .into_iter()
    .filter(|d| same_generation || d.field != "capabilities")
    .collect()
}

/// Compares what the server says about itself (its `initialize` result, or a `server/discover`
/// result with the serverInfo from `_meta`) with the lock. Values are compared as canonical
/// JSON; every field that differs is named.
pub fn check_server(
    protocol_version: &str,
    capabilities: &Map<String, Value>,
    server_info: Option<&Value>,
    instructions: Option<&str>,
    locked: &Locked<'_>,
) -> Vec<ServerDrift> {
    let lock = locked.server;
    let same = |a: &Value, b: &Value| Digest::of_value(a) == Digest::of_value(b);
    let mut out = Vec::new();
    if protocol_version != lock.protocol_version {
        out.push(ServerDrift {
            field: "protocolVersion",
        });
    }
    if !same(
        &Value::Object(capabilities.clone()),
        &Value::Object(lock.capabilities.clone()),
    ) {
        out.push(ServerDrift {
            field: "capabilities",
        });
    }
    let null = Value::Null;
    if !same(
        server_info.unwrap_or(&null),
        lock.server_info.as_ref().unwrap_or(&null),
    ) {
        out.push(ServerDrift {
            field: "serverInfo",
        });
    }
    if instructions != lock.instructions.as_deref() {
        out.push(ServerDrift {
            field: "instructions",
        });
    }
    out
}

pub mod verdict;

#[cfg(test)]
mod tests;
