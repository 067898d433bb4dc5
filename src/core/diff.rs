//! Semantic drift between two locks of the same servers, graded by severity.
//!
//! Every change names its server, its item (if any), a JSON pointer inside the definition, a
//! stable class code and a severity (DESIGN.md's model): critical when the agent may now be
//! asked or allowed to do more, moderate when model-visible text or output changed, info for
//! what cannot change behaviour. docs/diff.md lists every class.

use crate::core::canonical::{differing_pointers, to_canonical};
use crate::core::findings;
use crate::core::json::pointer_escape;
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::registry::Record;
use crate::core::snapshot::{ItemKind, Items};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// How serious a change is. Ordered: `Info < Moderate < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Moderate,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Moderate => "moderate",
            Severity::Critical => "critical",
        }
    }
}

/// What kind of change it is. The kebab-case codes are stable (they appear in JSON output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    ServerAdded,
    ServerRemoved,
    LaunchChanged,
    ArtifactChanged,
    AuthorizationServerChanged,
    AuthorizationScopesChanged,
    AuthorizationChanged,
    ServerInfoChanged,
    ServerVersionChanged,
    ProtocolVersionChanged,
    CapabilitiesChanged,
    ClientCapabilitiesChanged,
    InstructionsChanged,
    ListServed,
    ListUnserved,
    ListUnservedCodeChanged,
    ItemAdded,
    ItemRemoved,
    TextChanged,
    TextWhitespaceOnly,
    SchemaPropertyAdded,
    SchemaPropertyRemoved,
    SchemaBecameRequired,
    SchemaBecameOptional,
    SchemaTypeChanged,
    SchemaEnumWidened,
    SchemaEnumNarrowed,
    SchemaConstraintLoosened,
    SchemaConstraintTightened,
    SchemaConstraintChanged,
    SchemaAdditionalPropertiesLoosened,
    SchemaAdditionalPropertiesTightened,
    SchemaAnnotationChanged,
    SchemaChanged,
    AnnotationLessSafe,
    AnnotationSafer,
    AnnotationChanged,
    OutputSchemaChanged,
    PromptArgumentAdded,
    PromptArgumentRemoved,
    PromptArgumentChanged,
    MetaChanged,
    FieldChanged,
    ResourcesLockingChanged,
    RegistryRepositoryChanged,
    RegistryStatusChanged,
    RegistryChanged,
    ConfusableName,
    Revoked,
    UnclassifiedChange,
}

impl Class {
    /// Every class, in declaration order.
    pub const ALL: [Class; 50] = [
        Class::ServerAdded,
        Class::ServerRemoved,
        Class::LaunchChanged,
        Class::ArtifactChanged,
        Class::AuthorizationServerChanged,
        Class::AuthorizationScopesChanged,
        Class::AuthorizationChanged,
        Class::ServerInfoChanged,
        Class::ServerVersionChanged,
        Class::ProtocolVersionChanged,
        Class::CapabilitiesChanged,
        Class::ClientCapabilitiesChanged,
        Class::InstructionsChanged,
        Class::ListServed,
        Class::ListUnserved,
        Class::ListUnservedCodeChanged,
        Class::ItemAdded,
        Class::ItemRemoved,
        Class::TextChanged,
        Class::TextWhitespaceOnly,
        Class::SchemaPropertyAdded,
        Class::SchemaPropertyRemoved,
        Class::SchemaBecameRequired,
        Class::SchemaBecameOptional,
        Class::SchemaTypeChanged,
        Class::SchemaEnumWidened,
        Class::SchemaEnumNarrowed,
        Class::SchemaConstraintLoosened,
        Class::SchemaConstraintTightened,
        Class::SchemaConstraintChanged,
        Class::SchemaAdditionalPropertiesLoosened,
        Class::SchemaAdditionalPropertiesTightened,
        Class::SchemaAnnotationChanged,
        Class::SchemaChanged,
        Class::AnnotationLessSafe,
        Class::AnnotationSafer,
        Class::AnnotationChanged,
        Class::OutputSchemaChanged,
        Class::PromptArgumentAdded,
        Class::PromptArgumentRemoved,
        Class::PromptArgumentChanged,
        Class::MetaChanged,
        Class::FieldChanged,
        Class::ResourcesLockingChanged,
        Class::RegistryRepositoryChanged,
        Class::RegistryStatusChanged,
        Class::RegistryChanged,
        Class::ConfusableName,
        Class::Revoked,
        Class::UnclassifiedChange,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Class::ServerAdded => "server-added",
            Class::ServerRemoved => "server-removed",
            Class::LaunchChanged => "launch-changed",
            Class::ArtifactChanged => "artifact-changed",
            Class::AuthorizationServerChanged => "authorization-server-changed",
            Class::AuthorizationScopesChanged => "authorization-scopes-changed",
            Class::AuthorizationChanged => "authorization-changed",
            Class::ServerInfoChanged => "server-info-changed",
            Class::ServerVersionChanged => "server-version-changed",
            Class::ProtocolVersionChanged => "protocol-version-changed",
            Class::CapabilitiesChanged => "capabilities-changed",
            Class::ClientCapabilitiesChanged => "client-capabilities-changed",
            Class::InstructionsChanged => "instructions-changed",
            Class::ListServed => "list-served",
            Class::ListUnserved => "list-unserved",
            Class::ListUnservedCodeChanged => "list-unserved-code-changed",
            Class::ItemAdded => "item-added",
            Class::ItemRemoved => "item-removed",
            Class::TextChanged => "text-changed",
            Class::TextWhitespaceOnly => "text-whitespace-only",
            Class::SchemaPropertyAdded => "schema-property-added",
            Class::SchemaPropertyRemoved => "schema-property-removed",
            Class::SchemaBecameRequired => "schema-became-required",
            Class::SchemaBecameOptional => "schema-became-optional",
            Class::SchemaTypeChanged => "schema-type-changed",
            Class::SchemaEnumWidened => "schema-enum-widened",
            Class::SchemaEnumNarrowed => "schema-enum-narrowed",
            Class::SchemaConstraintLoosened => "schema-constraint-loosened",
            Class::SchemaConstraintTightened => "schema-constraint-tightened",
            Class::SchemaConstraintChanged => "schema-constraint-changed",
            Class::SchemaAdditionalPropertiesLoosened => "schema-additional-properties-loosened",
            Class::SchemaAdditionalPropertiesTightened => "schema-additional-properties-tightened",
            Class::SchemaAnnotationChanged => "schema-annotation-changed",
            Class::SchemaChanged => "schema-changed",
            Class::AnnotationLessSafe => "annotation-less-safe",
            Class::AnnotationSafer => "annotation-safer",
            Class::AnnotationChanged => "annotation-changed",
            Class::OutputSchemaChanged => "output-schema-changed",
            Class::PromptArgumentAdded => "prompt-argument-added",
            Class::PromptArgumentRemoved => "prompt-argument-removed",
            Class::PromptArgumentChanged => "prompt-argument-changed",
            Class::MetaChanged => "meta-changed",
            Class::FieldChanged => "field-changed",
            Class::ResourcesLockingChanged => "resources-locking-changed",
            Class::RegistryRepositoryChanged => "registry-repository-changed",
            Class::RegistryStatusChanged => "registry-status-changed",
            Class::RegistryChanged => "registry-changed",
            Class::ConfusableName => "confusable-name",
            Class::Revoked => "revoked",
            Class::UnclassifiedChange => "unclassified-change",
        }
    }
}

/// Each class's usual severity (a change may be graded higher, e.g. text that gains a
/// poisoning finding, or anything about a resource template) and what it means: the help text
/// of its SARIF rule (docs/diff.md has the same table). Every class is listed once (tested).
const ABOUT: [(Class, Severity, &str); 50] = {
    use Severity::{Critical, Info, Moderate};
    [
        (
            Class::ServerAdded,
            Critical,
            "a server appeared in the lock",
        ),
        (
            Class::ServerRemoved,
            Critical,
            "a server disappeared from the lock",
        ),
        (
            Class::LaunchChanged,
            Critical,
            "the command or URL that starts the server changed",
        ),
        (
            Class::ArtifactChanged,
            Critical,
            "the package, image or file the launch runs changed (another version or digest), or can no longer be resolved",
        ),
        (
            Class::AuthorizationServerChanged,
            Critical,
            "a remote server's OAuth issuer, authorization servers or resource identifier changed (tokens would go to, or come from, someone else)",
        ),
        (
            Class::AuthorizationScopesChanged,
            Moderate,
            "a remote server's OAuth scopes changed: moderate when it names new ones, info when it only names fewer",
        ),
        (
            Class::AuthorizationChanged,
            Moderate,
            "a remote server now takes OAuth where it was locked without, or no longer does",
        ),
        (
            Class::ServerInfoChanged,
            Moderate,
            "serverInfo fields other than version changed",
        ),
        (
            Class::ServerVersionChanged,
            Info,
            "serverInfo.version changed",
        ),
        (
            Class::ProtocolVersionChanged,
            Info,
            "the negotiated protocol version changed",
        ),
        (
            Class::CapabilitiesChanged,
            Moderate,
            "the server's advertised capabilities changed",
        ),
        (
            Class::ClientCapabilitiesChanged,
            Info,
            "what mcplock declared to the server changed",
        ),
        (
            Class::InstructionsChanged,
            Moderate,
            "the server's instructions changed (critical when the new text gains a poisoning finding)",
        ),
        (
            Class::ListServed,
            Critical,
            "a list the server did not serve is served now",
        ),
        (
            Class::ListUnserved,
            Moderate,
            "a list the server served is now refused",
        ),
        (
            Class::ListUnservedCodeChanged,
            Info,
            "an unserved list answers with another error code",
        ),
        (
            Class::ItemAdded,
            Critical,
            "a tool, prompt, resource template or resource appeared",
        ),
        (
            Class::ItemRemoved,
            Critical,
            "a tool, prompt, resource template or resource disappeared",
        ),
        (
            Class::TextChanged,
            Moderate,
            "a description or title changed, where tool poisoning lives (critical when the new text gains a poisoning finding)",
        ),
        (
            Class::TextWhitespaceOnly,
            Info,
            "text changed only in whitespace",
        ),
        (
            Class::SchemaPropertyAdded,
            Critical,
            "the input schema accepts a new property",
        ),
        (
            Class::SchemaPropertyRemoved,
            Moderate,
            "the input schema no longer accepts a property",
        ),
        (
            Class::SchemaBecameRequired,
            Moderate,
            "a property became required",
        ),
        (
            Class::SchemaBecameOptional,
            Critical,
            "a property is no longer required",
        ),
        (Class::SchemaTypeChanged, Critical, "a schema type changed"),
        (
            Class::SchemaEnumWidened,
            Critical,
            "an enum gained values or was removed",
        ),
        (
            Class::SchemaEnumNarrowed,
            Moderate,
            "an enum lost values or was added",
        ),
        (
            Class::SchemaConstraintLoosened,
            Critical,
            "a schema bound was loosened or removed",
        ),
        (
            Class::SchemaConstraintTightened,
            Moderate,
            "a schema bound was tightened or added",
        ),
        (
            Class::SchemaConstraintChanged,
            Critical,
            "a pattern, format or const was replaced (it may widen)",
        ),
        (
            Class::SchemaAdditionalPropertiesLoosened,
            Critical,
            "additionalProperties or unevaluatedProperties opened",
        ),
        (
            Class::SchemaAdditionalPropertiesTightened,
            Moderate,
            "additionalProperties closed",
        ),
        (
            Class::SchemaAnnotationChanged,
            Moderate,
            "a schema annotation (default, examples, deprecated...) changed",
        ),
        (
            Class::SchemaChanged,
            Critical,
            "a schema keyword whose effect cannot be judged changed ($ref, anyOf, oneOf...)",
        ),
        (
            Class::AnnotationLessSafe,
            Critical,
            "a tool annotation moved toward less safe (readOnlyHint, destructiveHint, openWorldHint)",
        ),
        (
            Class::AnnotationSafer,
            Info,
            "a tool annotation moved toward safe",
        ),
        (
            Class::AnnotationChanged,
            Info,
            "a tool annotation was restated with the same effect",
        ),
        (
            Class::OutputSchemaChanged,
            Moderate,
            "the output schema changed",
        ),
        (
            Class::PromptArgumentAdded,
            Moderate,
            "a prompt gained an argument",
        ),
        (
            Class::PromptArgumentRemoved,
            Moderate,
            "a prompt lost an argument",
        ),
        (
            Class::PromptArgumentChanged,
            Moderate,
            "a prompt argument changed",
        ),
        (
            Class::MetaChanged,
            Moderate,
            "_meta changed (critical when its text gains a poisoning finding)",
        ),
        (
            Class::FieldChanged,
            Moderate,
            "icons, mimeType, execution or an unknown field changed",
        ),
        (
            Class::ResourcesLockingChanged,
            Moderate,
            "one side locked static resources and the other did not",
        ),
        (
            Class::RegistryRepositoryChanged,
            Critical,
            "the MCP Registry entry names another source repository (another id: deleted and recreated) or another registry name",
        ),
        (
            Class::RegistryStatusChanged,
            Moderate,
            "the MCP Registry's status of the entry changed (active, deprecated, deleted)",
        ),
        (
            Class::RegistryChanged,
            Moderate,
            "the MCP Registry entry's version or packages changed, or an entry is recorded on one side only",
        ),
        (
            Class::ConfusableName,
            Critical,
            "a name now looks like another's (same UTS #39 skeleton)",
        ),
        (
            Class::Revoked,
            Critical,
            "the server or item is on the revocation list",
        ),
        (
            Class::UnclassifiedChange,
            Critical,
            "a difference no classifier explains: never waved through",
        ),
    ]
};

impl Class {
    /// The usual severity of the class and what it means ([`ABOUT`]).
    pub fn about(self) -> (Severity, &'static str) {
        ABOUT.iter().find(|(class, _, _)| *class == self).map_or(
            // Unreachable while the table lists every class: fail closed all the same.
            (
                Severity::Critical,
                "a difference no classifier explains: never waved through",
            ),
            |(_, severity, text)| (*severity, *text),
        )
    }
}

/// One piece of a word-level text diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Words {
    Equal(String),
    Delete(String),
    Insert(String),
}

/// What a change is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    Server,
    Item(ItemKind, String),
}

/// One change.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub server: String,
    pub subject: Subject,
    /// JSON pointer inside the item's definition (or the server field), `""` for the whole.
    pub path: String,
    pub class: Class,
    pub severity: Severity,
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// For text: the word-level diff.
    pub words: Option<Vec<Words>>,
    /// Poisoning findings the new text has that the old one did not.
    pub findings: Vec<&'static str>,
}

impl Change {
    /// For a change inside an item: whether it is material in SEP-3140's sense (anything but
    /// its title and icons); `None` for a server-level change.
    pub fn material(&self) -> Option<bool> {
        match self.subject {
            Subject::Item(..) => Some(crate::core::peers::sep3140::is_material(&self.path)),
            Subject::Server => None,
        }
    }
}

/// A change before it knows its server and subject.
struct Delta {
    path: String,
    class: Class,
    severity: Severity,
    old: Option<Value>,
    new: Option<Value>,
    words: Option<Vec<Words>>,
    findings: Vec<&'static str>,
}

impl Delta {
    fn new(
        path: &str,
        class: Class,
        severity: Severity,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> Delta {
        Delta {
            path: path.to_string(),
            class,
            severity,
            old: old.cloned(),
            new: new.cloned(),
            words: None,
            findings: Vec::new(),
        }
    }
}

/// Bounds on the work a diff does for people (never on what it reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffLimits {
    /// Texts with more words than this (old and new together), or more than 16 times as many
    /// bytes, get no word-level diff (Myers is quadratic in the worst case): the change shows
    /// the whole text replaced, with both lengths and digests. The change itself is reported
    /// as always.
    pub max_text_diff_words: usize,
}

impl Default for DiffLimits {
    fn default() -> Self {
        DiffLimits {
            max_text_diff_words: 5_000,
        }
    }
}

/// Every change from `old` to `new`, in a deterministic order (server, subject, path, class).
pub fn diff(old: &Lockfile, new: &Lockfile) -> Vec<Change> {
    diff_with(old, new, DiffLimits::default())
}

/// [`diff`] with explicit [`DiffLimits`].
pub fn diff_with(old: &Lockfile, new: &Lockfile, limits: DiffLimits) -> Vec<Change> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = old.servers.keys().chain(new.servers.keys()).collect();
    for name in names {
        match (old.servers.get(name), new.servers.get(name)) {
            (Some(a), Some(b)) => server_changes(name, a, b, &mut out),
            (Some(_), None) => out.push(whole(name, Subject::Server, Class::ServerRemoved)),
            (None, Some(_)) => out.push(whole(name, Subject::Server, Class::ServerAdded)),
            (None, None) => {}
        }
    }
    let recorded: BTreeSet<&String> = old.registry.keys().chain(new.registry.keys()).collect();
    for name in recorded {
        out.extend(registry_changes(
            name,
            old.registry.get(name),
            new.registry.get(name),
        ));
    }
    out.sort_by(|a, b| {
        (&a.server, &a.subject, &a.path, a.class).cmp(&(&b.server, &b.subject, &b.path, b.class))
    });
    confusable_names(old, new, &mut out);
    word_diffs(&mut out, limits);
    out
}

/// The changes from one recorded entry to another for server `server`: another repository (or
/// registry name) is critical; another status, version or packages moderate; an entry recorded
/// on one side only moderate. Any canonical difference gives at least one change.
pub fn registry_changes(server: &str, old: Option<&Record>, new: Option<&Record>) -> Vec<Change> {
    let change = |path: &str, class, severity, old: Option<Value>, new: Option<Value>| Change {
        server: server.to_string(),
        subject: Subject::Server,
        path: format!("/registry{path}"),
        class,
        severity,
        old,
        new,
        words: None,
        findings: Vec::new(),
    };
    let (old, new) = match (old, new) {
        (None, None) => return Vec::new(),
        (Some(a), Some(b)) if a == b => return Vec::new(),
        (Some(a), Some(b)) => (a, b),
        (a, b) => {
            let show = |r: Option<&Record>| r.map(Record::to_json);
            return vec![change(
                "",
                Class::RegistryChanged,
                Severity::Moderate,
                show(a),
                show(b),
            )];
        }
    };
    let mut out = Vec::new();
    let repo = |r: &Record| {
        r.repository
            .as_ref()
            .map(|_| r.to_json()["repository"].clone())
    };
    if old.repository != new.repository {
        out.push(change(
            "/repository",
            Class::RegistryRepositoryChanged,
            Severity::Critical,
            repo(old),
            repo(new),
        ));
    }
    if old.name != new.name {
        out.push(change(
            "/name",
            Class::RegistryRepositoryChanged,
            Severity::Critical,
            Some(json!(old.name)),
            Some(json!(new.name)),
        ));
    }
    if old.status != new.status {
        out.push(change(
            "/status",
            Class::RegistryStatusChanged,
            Severity::Moderate,
            old.status.clone().map(Value::from),
            new.status.clone().map(Value::from),
        ));
    }
    if old.version != new.version {
        out.push(change(
            "/version",
            Class::RegistryChanged,
            Severity::Moderate,
            Some(json!(old.version)),
            Some(json!(new.version)),
        ));
    }
    if old.packages != new.packages {
        let list = |r: &Record| Some(r.to_json()["packages"].clone());
        out.push(change(
            "/packages",
            Class::RegistryChanged,
            Severity::Moderate,
            list(old),
            list(new),
        ));
    }
    out
}

/// Every server or item of `new` a revocation list revokes: one critical change each (the
/// reason and time as the new value), whatever else changed.
pub fn revoked(new: &Lockfile, list: &crate::core::revocation::Revocations) -> Vec<Change> {
    let mut out: Vec<Change> = list
        .applying_to(new)
        .into_iter()
        .map(|(server, item, r)| {
            let subject = match item {
                None => Subject::Server,
                Some((kind, key)) => Subject::Item(kind, key),
            };
            Change {
                new: Some(serde_json::json!({"reason": r.reason, "revokedAt": r.revoked_at})),
                ..whole(&server, subject, Class::Revoked)
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.server, &a.subject, &a.path, a.class).cmp(&(&b.server, &b.subject, &b.path, b.class))
    });
    out
}

/// An item whose name now looks like another's (same UTS #39 skeleton, in its server or
/// another) where it did not before: a look-alike an agent can be steered to.
fn confusable_names(old: &Lockfile, new: &Lockfile, out: &mut Vec<Change>) {
    let before = crate::core::confusable::confusables(old);
    for ((server, kind, key), others) in crate::core::confusable::confusables(new) {
        let had = before
            .get(&(server.clone(), kind, key.clone()))
            .cloned()
            .unwrap_or_default();
        if others.iter().all(|o| had.contains(o)) {
            continue;
        }
        out.push(Change {
            old: Some(serde_json::json!(had)),
            new: Some(serde_json::json!(others)),
            ..whole(&server, Subject::Item(kind, key), Class::ConfusableName)
        });
    }
    out.sort_by(|a, b| {
        (&a.server, &a.subject, &a.path, a.class).cmp(&(&b.server, &b.subject, &b.path, b.class))
    });
}

/// Fills in the word-level diff of every text change (marked by an empty `words`), within
/// `limits`.
fn word_diffs(changes: &mut [Change], limits: DiffLimits) {
    let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).unwrap_or("").to_owned();
    let wanted: Vec<usize> = (0..changes.len())
        .filter(|&i| changes[i].words.as_ref().is_some_and(Vec::is_empty))
        .collect();
    let computed = crate::core::parallel::map(&wanted, |&i| {
        words(&text(&changes[i].old), &text(&changes[i].new), limits)
    });
    for (i, words) in wanted.into_iter().zip(computed) {
        changes[i].words = Some(words);
    }
}

fn words(old: &str, new: &str, limits: DiffLimits) -> Vec<Words> {
    let count = old.split_whitespace().count() + new.split_whitespace().count();
    let max = limits.max_text_diff_words;
    if count > max || old.len() + new.len() > max.saturating_mul(16) {
        let whole = |t: &str| {
            format!(
                "[{} chars, {}]",
                t.chars().count(),
                crate::core::canonical::Digest::of_bytes(t.as_bytes())
            )
        };
        return vec![Words::Delete(whole(old)), Words::Insert(whole(new))];
    }
    similar::utils::diff_words(similar::Algorithm::Myers, old, new)
        .into_iter()
        .map(|(tag, text)| match tag {
            similar::ChangeTag::Equal => Words::Equal(text.to_string()),
            similar::ChangeTag::Delete => Words::Delete(text.to_string()),
            similar::ChangeTag::Insert => Words::Insert(text.to_string()),
        })
        .collect()
}

fn whole(server: &str, subject: Subject, class: Class) -> Change {
    Change {
        server: server.to_string(),
        subject,
        path: String::new(),
        class,
        severity: Severity::Critical,
        old: None,
        new: None,
        words: None,
        findings: Vec::new(),
    }
}

/// Most differing places examined per item (or server header) when checking that every
/// difference is explained; past it, an unexplained remainder is reported as one change.
const MAX_POINTERS: usize = 4096;
/// Most catch-all changes reported per item (or server header).
const MAX_CATCH_ALL: usize = 32;

/// `value` as its RFC 8785 form reads back, so that `==` on the result is equality of canonical
/// forms: numbers become the number their canonical text parses to (`10`, `10.0` and `1e1` one
/// value); strings and names read back as they are. Built by one walk, not by writing the
/// canonical text and parsing it (the same result: a property test holds them equal).
fn normalized(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(normalized_map(map)),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Number(_) => {
            let text = to_canonical(value);
            serde_json::from_slice(&text).unwrap_or_else(|_| value.clone())
        }
        other => other.clone(),
    }
}

fn normalized_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| (k.clone(), normalized(v)))
        .collect()
}

/// The changes within one server, word diffs included (default limits).
pub fn diff_server(name: &str, old: &ServerLock, new: &ServerLock, out: &mut Vec<Change>) {
    let start = out.len();
    server_changes(name, old, new, out);
    word_diffs(&mut out[start..], DiffLimits::default());
}

/// The changes within one server. Equality is canonical equality throughout: two entries whose
/// digests are equal give no change, and every place where the canonical forms differ is
/// explained by a classified change or reported as `unclassified-change`.
fn server_changes(name: &str, old: &ServerLock, new: &ServerLock, out: &mut Vec<Change>) {
    let mut deltas = Vec::new();
    let (ho, hn) = (
        Value::Object(old.header_json()),
        Value::Object(new.header_json()),
    );
    if ho != hn {
        let (ho, hn) = (normalized(&ho), normalized(&hn));
        if ho != hn {
            header_deltas(&ho, &hn, &mut deltas);
            unserved_deltas(old, new, &mut deltas);
            explain(&ho, &hn, false, &mut deltas);
        }
    }
    match (&old.resources, &new.resources) {
        (Some(_), Some(_)) | (None, None) => {}
        (a, b) => {
            let keys = |r: &Option<Items>| {
                r.as_ref()
                    .map(|items| Value::from(items.keys().cloned().collect::<Vec<_>>()))
            };
            deltas.push(Delta::new(
                "/resources",
                Class::ResourcesLockingChanged,
                Severity::Moderate,
                keys(a).as_ref(),
                keys(b).as_ref(),
            ));
        }
    }
    for d in deltas {
        out.push(attach(name, Subject::Server, d));
    }
    for kind in ItemKind::ALL {
        if let (Some(a), Some(b)) = (old.items(kind), new.items(kind)) {
            diff_items(name, kind, a, b, out);
        }
    }
}

/// Server-level fields, classified. `old` and `new` are the normalized header objects
/// ([`ServerLock::header_json`]).
fn header_deltas(old: &Value, new: &Value, deltas: &mut Vec<Delta>) {
    let null = Value::Null;
    let field = |v: &'_ Value, k: &str| -> Value { v.get(k).cloned().unwrap_or(Value::Null) };
    deltas.extend(launch_delta(&field(old, "launch"), &field(new, "launch")));
    deltas.extend(artifact_delta(
        &field(old, "artifact"),
        &field(new, "artifact"),
    ));
    authorization_deltas(
        &field(old, "authorization"),
        &field(new, "authorization"),
        deltas,
    );
    server_info_deltas(&field(old, "serverInfo"), &field(new, "serverInfo"), deltas);
    let (pv_old, pv_new) = (field(old, "protocolVersion"), field(new, "protocolVersion"));
    if pv_old != pv_new {
        deltas.push(Delta::new(
            "/protocolVersion",
            Class::ProtocolVersionChanged,
            Severity::Info,
            Some(&pv_old),
            Some(&pv_new),
        ));
    }
    leaf_deltas(
        "/capabilities",
        old.get("capabilities").unwrap_or(&null),
        new.get("capabilities").unwrap_or(&null),
        (Class::CapabilitiesChanged, Severity::Moderate),
        deltas,
    );
    let (cc_old, cc_new) = (
        field(old, "clientCapabilities"),
        field(new, "clientCapabilities"),
    );
    if cc_old != cc_new {
        deltas.push(Delta::new(
            "/clientCapabilities",
            Class::ClientCapabilitiesChanged,
            Severity::Info,
            Some(&cc_old),
            Some(&cc_new),
        ));
    }
    let text = |v: &Value| {
        v.get("instructions")
            .and_then(|i| i.get("text"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if field(old, "instructions") != field(new, "instructions") {
        let (text_old, text_new) = (text(old), text(new));
        let mut d = text_delta("/instructions", text_old.as_deref(), text_new.as_deref());
        if d.class == Class::TextChanged {
            d.class = Class::InstructionsChanged;
        }
        deltas.push(d);
    }
}

/// Another launch: critical, each side described as a person reads it.
fn launch_delta(old: &Value, new: &Value) -> Option<Delta> {
    if old == new {
        return None;
    }
    let show = |l: &Value| {
        let described = l
            .as_object()
            .and_then(|l| crate::core::launch::Launch::from_json(l).ok())
            .map(|l| l.describe_with_names());
        Value::from(described.unwrap_or_else(|| l.to_string()))
    };
    Some(Delta::new(
        "/launch",
        Class::LaunchChanged,
        Severity::Critical,
        Some(&show(old)),
        Some(&show(new)),
    ))
}

/// Another artifact: critical when what ran before was known, news (info) when the lock only
/// comes to record more of the same code.
fn artifact_delta(old: &Value, new: &Value) -> Option<Delta> {
    if old == new {
        return None;
    }
    let read = |a: &Value| crate::core::artifact::Artifact::from_json(a).ok();
    let (was, now) = (read(old), read(new));
    // What ran before was known: anything else is other code (critical). Before, nothing
    // was pinned (an older lockfile, or unresolved), or only its name, version and digest
    // (before version 5), and those agree: that more is now recorded is news.
    use crate::core::artifact::{Comparison, compare};
    let severity = match now.as_ref().map(|n| compare(was.as_ref(), n)) {
        Some(Comparison::NotPinned | Comparison::ContentNotPinned) => Severity::Info,
        None if was.as_ref().and_then(|a| a.resolved()).is_none() => Severity::Info,
        _ => Severity::Critical,
    };
    let show = |a: &Option<crate::core::artifact::Artifact>, raw: &Value| match a {
        Some(a) => Value::from(a.describe()),
        None if raw.is_null() => Value::from("not recorded"),
        None => raw.clone(),
    };
    Some(Delta::new(
        "/artifact",
        Class::ArtifactChanged,
        severity,
        Some(&show(&was, old)),
        Some(&show(&now, new)),
    ))
}

/// The OAuth surface: another issuer, authorization server or resource is critical; new scopes
/// moderate, fewer info; a surface on one side only moderate. Anything else that differs (a
/// hand-made value that does not read) is still reported, critical.
fn authorization_deltas(old: &Value, new: &Value, deltas: &mut Vec<Delta>) {
    use crate::core::authz::AuthSurface;
    if old == new {
        return;
    }
    let (was, now) = (AuthSurface::from_json(old), AuthSurface::from_json(new));
    let (was, now) = match (old.is_null(), new.is_null(), was, now) {
        (false, false, Ok(was), Ok(now)) => (was, now),
        (true, false, _, _) | (false, true, _, _) => {
            deltas.push(Delta::new(
                "/authorization",
                Class::AuthorizationChanged,
                Severity::Moderate,
                Some(old),
                Some(new),
            ));
            return;
        }
        _ => {
            deltas.push(Delta::new(
                "/authorization",
                Class::AuthorizationServerChanged,
                Severity::Critical,
                Some(old),
                Some(new),
            ));
            return;
        }
    };
    let mut critical = |pointer: &str, a: Value, b: Value| {
        if a != b {
            deltas.push(Delta::new(
                pointer,
                Class::AuthorizationServerChanged,
                Severity::Critical,
                Some(&a),
                Some(&b),
            ));
        }
    };
    critical(
        "/authorization/issuer",
        json!(was.issuer),
        json!(now.issuer),
    );
    critical(
        "/authorization/authorizationServers",
        json!(was.authorization_servers),
        json!(now.authorization_servers),
    );
    critical(
        "/authorization/resource",
        json!(was.resource),
        json!(now.resource),
    );
    if was.scopes_supported != now.scopes_supported {
        let added = now
            .scopes_supported
            .iter()
            .any(|s| !was.scopes_supported.contains(s));
        deltas.push(Delta::new(
            "/authorization/scopesSupported",
            Class::AuthorizationScopesChanged,
            if added {
                Severity::Moderate
            } else {
                Severity::Info
            },
            Some(&json!(was.scopes_supported)),
            Some(&json!(now.scopes_supported)),
        ));
    }
}

/// `serverInfo`: its version as info, anything else in it as moderate.
fn server_info_deltas(old: &Value, new: &Value, deltas: &mut Vec<Delta>) {
    if old == new {
        return;
    }
    let version = |v: &Value| v.get("version").cloned();
    if version(old) != version(new) {
        deltas.push(Delta::new(
            "/serverInfo/version",
            Class::ServerVersionChanged,
            Severity::Info,
            version(old).as_ref(),
            version(new).as_ref(),
        ));
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(o) = &mut v {
            o.remove("version");
        }
        v
    };
    leaf_deltas(
        "/serverInfo",
        &strip(old),
        &strip(new),
        (Class::ServerInfoChanged, Severity::Moderate),
        deltas,
    );
}

/// Reports, as `unclassified-change` (critical, both values shown), every place where the
/// canonical forms of `old` and `new` differ that no classified delta covers. A delta covers
/// the places at, under or above its path. `prompt` translates prompt-argument positions into
/// the names the argument classifier uses.
fn explain(old: &Value, new: &Value, prompt: bool, deltas: &mut Vec<Delta>) {
    let pointers = differing_pointers(old, new, MAX_POINTERS);
    let truncated = pointers.len() == MAX_POINTERS;
    let paths: Vec<String> = deltas.iter().map(|d| d.path.clone()).collect();
    let mut added = 0;
    for p in pointers {
        let mut candidates = vec![p.clone()];
        if prompt {
            candidates.extend(argument_paths(&p, old, new));
        }
        if candidates
            .iter()
            .any(|c| paths.iter().any(|d| related(d, c)))
        {
            continue;
        }
        if added == MAX_CATCH_ALL {
            break;
        }
        deltas.push(Delta::new(
            &p,
            Class::UnclassifiedChange,
            Severity::Critical,
            old.pointer(&p),
            new.pointer(&p),
        ));
        added += 1;
    }
    if truncated && added == 0 && !deltas.iter().any(|d| d.path.is_empty()) {
        // Too many differences to check one by one: say so rather than assume them explained.
        deltas.push(Delta::new(
            "",
            Class::UnclassifiedChange,
            Severity::Critical,
            None,
            None,
        ));
    }
}

/// True when one JSON pointer is the other or lies under it.
fn related(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| y == x || (y.starts_with(x) && y[x.len()..].starts_with('/'));
    a.is_empty() || b.is_empty() || under(a, b) || under(b, a)
}

/// `/arguments/<index>/rest` as the classifier names it on either side: `/arguments/<name>/rest`.
fn argument_paths(pointer: &str, old: &Value, new: &Value) -> Vec<String> {
    let Some(rest) = pointer.strip_prefix("/arguments/") else {
        return Vec::new();
    };
    let (index, tail) = rest.split_once('/').map_or((rest, ""), |(i, t)| (i, t));
    if index.parse::<usize>().is_err() {
        return Vec::new();
    }
    [old, new]
        .into_iter()
        .filter_map(|side| side.pointer(&format!("/arguments/{index}")))
        .map(|arg| {
            let name = arg.get("name").and_then(Value::as_str).unwrap_or("");
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!("/{tail}")
            };
            format!("/arguments/{}{tail}", pointer_escape(name))
        })
        .collect()
}

/// A list advertised but not served (recorded with its error code) that starts or stops being
/// served, or answers another code. Items that appear or vanish with it are reported per item.
fn unserved_deltas(old: &ServerLock, new: &ServerLock, out: &mut Vec<Delta>) {
    for kind in ItemKind::ALL {
        let (a, b) = (old.unserved.get(&kind), new.unserved.get(&kind));
        let code = |c: Option<&i64>| c.map(|c| serde_json::json!({ "code": c }));
        let (class, severity) = match (a, b) {
            (Some(x), Some(y)) if x == y => continue,
            (None, None) => continue,
            (Some(_), None) => (Class::ListServed, Severity::Critical),
            (None, Some(_)) => (Class::ListUnserved, Severity::Moderate),
            (Some(_), Some(_)) => (Class::ListUnservedCodeChanged, Severity::Info),
        };
        out.push(Delta::new(
            &format!("/unserved/{}", kind.field()),
            class,
            severity,
            code(a).as_ref(),
            code(b).as_ref(),
        ));
    }
}

fn attach(server: &str, subject: Subject, d: Delta) -> Change {
    Change {
        server: server.to_string(),
        subject,
        path: d.path,
        class: d.class,
        severity: d.severity,
        old: d.old,
        new: d.new,
        words: d.words,
        findings: d.findings,
    }
}

fn diff_items(server: &str, kind: ItemKind, old: &Items, new: &Items, out: &mut Vec<Change>) {
    // Digests first: only the items whose digests differ are parsed and classified, on all
    // cores (each item's changes in key order, as one thread would give them).
    let mut changed = Vec::new();
    for (key, a) in old {
        match new.get(key) {
            None => out.push(whole(
                server,
                Subject::Item(kind, key.clone()),
                Class::ItemRemoved,
            )),
            Some(b) if a.digest() != b.digest() => changed.push((key, a, b)),
            Some(_) => {}
        }
    }
    let classified = crate::core::parallel::map(&changed, |(key, a, b)| {
        item_changes(server, kind, key, a, b)
    });
    out.extend(classified.into_iter().flatten());
    for key in new.keys().filter(|k| !old.contains_key(*k)) {
        out.push(whole(
            server,
            Subject::Item(kind, key.clone()),
            Class::ItemAdded,
        ));
    }
}

/// The classified changes of one item whose digests differ.
fn item_changes(
    server: &str,
    kind: ItemKind,
    key: &str,
    a: &crate::core::definition::Definition,
    b: &crate::core::definition::Definition,
) -> Vec<Change> {
    let subject = Subject::Item(kind, key.to_string());
    let (x, y) = (normalized_map(&a.to_map()), normalized_map(&b.to_map()));
    if x == y {
        return Vec::new();
    }
    let mut deltas = diff_definition(kind, &x, &y);
    let (a, b) = (Value::Object(x), Value::Object(y));
    explain(&a, &b, kind == ItemKind::Prompt, &mut deltas);
    deltas
        .into_iter()
        .map(|mut d| {
            // Any change to a resource template (what URIs the agent may read) is critical.
            if kind == ItemKind::ResourceTemplate {
                d.severity = Severity::Critical;
            }
            attach(server, subject.clone(), d)
        })
        .collect()
}

fn diff_definition(
    kind: ItemKind,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Vec<Delta> {
    let mut out = Vec::new();
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        let path = format!("/{}", pointer_escape(key));
        match (kind, key.as_str()) {
            (_, "description" | "title") => out.push(text_delta(&path, str_of(a), str_of(b))),
            (ItemKind::Tool, "inputSchema") => {
                schema_diff(
                    &path,
                    a.unwrap_or(&Value::Null),
                    b.unwrap_or(&Value::Null),
                    &mut out,
                );
            }
            (ItemKind::Tool, "annotations") => annotations_diff(&path, a, b, &mut out),
            (ItemKind::Tool, "outputSchema") => leaf_deltas(
                &path,
                or_null(a),
                or_null(b),
                (Class::OutputSchemaChanged, Severity::Moderate),
                &mut out,
            ),
            (ItemKind::Prompt, "arguments") => arguments_diff(&path, a, b, &mut out),
            (_, "_meta") => meta_diff(&path, or_null(a), or_null(b), &mut out),
            _ => leaf_deltas(
                &path,
                or_null(a),
                or_null(b),
                (Class::FieldChanged, Severity::Moderate),
                &mut out,
            ),
        }
    }
    out
}

fn or_null(v: Option<&Value>) -> &Value {
    v.unwrap_or(&Value::Null)
}

fn str_of(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

/// A change of model-visible text: whitespace-only is info, anything else moderate, and
/// critical when the new text gains a poisoning finding.
fn text_delta(path: &str, old: Option<&str>, new: Option<&str>) -> Delta {
    let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let whitespace_only = matches!((old, new), (Some(a), Some(b)) if collapse(a) == collapse(b));
    let gained = findings::gained(old, new);
    let (class, severity) = if !gained.is_empty() {
        (Class::TextChanged, Severity::Critical)
    } else if whitespace_only {
        (Class::TextWhitespaceOnly, Severity::Info)
    } else {
        (Class::TextChanged, Severity::Moderate)
    };
    Delta {
        path: path.to_string(),
        class,
        severity,
        old: old.map(Value::from),
        new: new.map(Value::from),
        // Filled in by `word_diffs`, within the diff's limits.
        words: Some(Vec::new()),
        findings: gained,
    }
}

/// One delta of the given class per differing leaf.
fn leaf_deltas(
    path: &str,
    old: &Value,
    new: &Value,
    grade: (Class, Severity),
    out: &mut Vec<Delta>,
) {
    leaf_diff(path, old, new, &mut |p, a, b| {
        out.push(Delta::new(p, grade.0, grade.1, a, b));
    });
}

/// Receives (path, old, new) for each differing leaf.
type Emit<'a> = dyn FnMut(&str, Option<&Value>, Option<&Value>) + 'a;

/// Generic change detection: one change per differing leaf (objects are descended, arrays and
/// scalars compared whole).
fn leaf_diff(path: &str, old: &Value, new: &Value, emit: &mut Emit<'_>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let p = format!("{path}/{}", pointer_escape(key));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => leaf_diff(&p, x, y, emit),
                    (x, y) => emit(&p, x, y),
                }
            }
        }
        (Value::Null, _) => emit(path, None, Some(new)),
        (_, Value::Null) => emit(path, Some(old), None),
        _ => emit(path, Some(old), Some(new)),
    }
}

fn meta_diff(path: &str, old: &Value, new: &Value, out: &mut Vec<Delta>) {
    leaf_diff(path, old, new, &mut |p, a, b| {
        let mut d = Delta::new(p, Class::MetaChanged, Severity::Moderate, a, b);
        // Text moved into _meta still reaches some clients' models: poisoning there is critical.
        let (ta, tb) = (a.map(all_text), b.map(all_text));
        d.findings = findings::gained(ta.as_deref(), tb.as_deref());
        if !d.findings.is_empty() {
            d.severity = Severity::Critical;
        }
        out.push(d);
    });
}

/// Every string inside a value, one per line (for findings in structured fields).
fn all_text(value: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                out.push_str(k);
                out.push('\n');
                walk(x, out);
            }),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(value, &mut out);
    out
}

const UPPER_BOUNDS: [&str; 6] = [
    "maxLength",
    "maxItems",
    "maxProperties",
    "maximum",
    "exclusiveMaximum",
    "maxContains",
];
const LOWER_BOUNDS: [&str; 6] = [
    "minLength",
    "minItems",
    "minProperties",
    "minimum",
    "exclusiveMinimum",
    "minContains",
];
const OTHER_CONSTRAINTS: [&str; 7] = [
    "pattern",
    "format",
    "multipleOf",
    "uniqueItems",
    "const",
    "contentMediaType",
    "contentEncoding",
];
const SCHEMA_ANNOTATIONS: [&str; 7] = [
    "default",
    "examples",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$schema",
];

/// Input-schema drift, classified by whether it widens (critical) or narrows (moderate) what
/// the agent may send. Unknown or structural keywords (`$ref`, `anyOf`, `if`...) are critical:
/// their effect cannot be judged, so they are not waved through.
fn schema_diff(path: &str, old: &Value, new: &Value, out: &mut Vec<Delta>) {
    if old == new {
        return;
    }
    let (Value::Object(a), Value::Object(b)) = (old, new) else {
        out.push(Delta::new(
            path,
            Class::SchemaChanged,
            Severity::Critical,
            Some(old),
            Some(new),
        ));
        return;
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        if x == y {
            continue;
        }
        let p = format!("{path}/{}", pointer_escape(key));
        let k = key.as_str();
        if k == "type" {
            out.push(Delta::new(
                &p,
                Class::SchemaTypeChanged,
                Severity::Critical,
                x,
                y,
            ));
        } else if k == "properties" {
            properties_diff(&p, x, y, out);
        } else if k == "required" {
            required_diff(&p, x, y, out);
        } else if k == "enum" {
            enum_diff(&p, x, y, out);
        } else if UPPER_BOUNDS.contains(&k) || LOWER_BOUNDS.contains(&k) {
            bound_diff(&p, UPPER_BOUNDS.contains(&k), x, y, out);
        } else if OTHER_CONSTRAINTS.contains(&k) {
            let (class, severity) = match (x, y) {
                (Some(_), None) => (Class::SchemaConstraintLoosened, Severity::Critical),
                (None, Some(_)) => (Class::SchemaConstraintTightened, Severity::Moderate),
                _ => (Class::SchemaConstraintChanged, Severity::Critical),
            };
            out.push(Delta::new(&p, class, severity, x, y));
        } else if k == "additionalProperties" || k == "unevaluatedProperties" {
            additional_diff(&p, x, y, out);
        } else if k == "items" && x.is_some_and(Value::is_object) && y.is_some_and(Value::is_object)
        {
            schema_diff(&p, or_null(x), or_null(y), out);
        } else if k == "description" || k == "title" {
            out.push(text_delta(&p, str_of(x), str_of(y)));
        } else if SCHEMA_ANNOTATIONS.contains(&k) {
            out.push(Delta::new(
                &p,
                Class::SchemaAnnotationChanged,
                Severity::Moderate,
                x,
                y,
            ));
        } else {
            out.push(Delta::new(
                &p,
                Class::SchemaChanged,
                Severity::Critical,
                x,
                y,
            ));
        }
    }
}

fn properties_diff(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Delta>) {
    let empty = Map::new();
    let a = old.and_then(Value::as_object).unwrap_or(&empty);
    let b = new.and_then(Value::as_object).unwrap_or(&empty);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let p = format!("{path}/{}", pointer_escape(key));
        match (a.get(key), b.get(key)) {
            (Some(x), Some(y)) => schema_diff(&p, x, y, out),
            (None, y @ Some(_)) => {
                out.push(Delta::new(
                    &p,
                    Class::SchemaPropertyAdded,
                    Severity::Critical,
                    None,
                    y,
                ));
            }
            (x @ Some(_), None) => {
                out.push(Delta::new(
                    &p,
                    Class::SchemaPropertyRemoved,
                    Severity::Moderate,
                    x,
                    None,
                ));
            }
            (None, None) => {}
        }
    }
}

fn string_set(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn required_diff(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Delta>) {
    let (a, b) = (string_set(old), string_set(new));
    for name in b.difference(&a) {
        let v = Value::from(name.clone());
        out.push(Delta::new(
            path,
            Class::SchemaBecameRequired,
            Severity::Moderate,
            None,
            Some(&v),
        ));
    }
    for name in a.difference(&b) {
        let v = Value::from(name.clone());
        out.push(Delta::new(
            path,
            Class::SchemaBecameOptional,
            Severity::Critical,
            Some(&v),
            None,
        ));
    }
}

fn enum_diff(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Delta>) {
    match (old, new) {
        // An enum removed lets any value through; an enum added restricts.
        (Some(_), None) => out.push(Delta::new(
            path,
            Class::SchemaEnumWidened,
            Severity::Critical,
            old,
            None,
        )),
        (None, Some(_)) => out.push(Delta::new(
            path,
            Class::SchemaEnumNarrowed,
            Severity::Moderate,
            None,
            new,
        )),
        _ => {
            let (a, b) = (string_set(old), string_set(new));
            let added: Vec<Value> = b.difference(&a).cloned().map(Value::from).collect();
            let removed: Vec<Value> = a.difference(&b).cloned().map(Value::from).collect();
            if !added.is_empty() {
                out.push(Delta::new(
                    path,
                    Class::SchemaEnumWidened,
                    Severity::Critical,
                    None,
                    Some(&Value::Array(added)),
                ));
            }
            if !removed.is_empty() {
                out.push(Delta::new(
                    path,
                    Class::SchemaEnumNarrowed,
                    Severity::Moderate,
                    Some(&Value::Array(removed)),
                    None,
                ));
            }
        }
    }
}

fn bound_diff(
    path: &str,
    upper: bool,
    old: Option<&Value>,
    new: Option<&Value>,
    out: &mut Vec<Delta>,
) {
    let loosened = match (old.and_then(Value::as_f64), new.and_then(Value::as_f64)) {
        (Some(a), Some(b)) => Some(if upper { b > a } else { b < a }),
        (Some(_), None) if new.is_none() => Some(true),
        (None, Some(_)) if old.is_none() => Some(false),
        _ => None,
    };
    let (class, severity) = match loosened {
        Some(true) => (Class::SchemaConstraintLoosened, Severity::Critical),
        Some(false) => (Class::SchemaConstraintTightened, Severity::Moderate),
        None => (Class::SchemaConstraintChanged, Severity::Critical),
    };
    out.push(Delta::new(path, class, severity, old, new));
}

fn additional_diff(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Delta>) {
    // Absent means "anything is allowed", like `true`.
    let openness = |v: Option<&Value>| match v {
        None | Some(Value::Bool(true)) => 2,
        Some(Value::Bool(false)) => 0,
        Some(_) => 1,
    };
    let (a, b) = (openness(old), openness(new));
    if a == 1 && b == 1 {
        schema_diff(path, or_null(old), or_null(new), out);
    } else if b > a {
        out.push(Delta::new(
            path,
            Class::SchemaAdditionalPropertiesLoosened,
            Severity::Critical,
            old,
            new,
        ));
    } else if b < a {
        out.push(Delta::new(
            path,
            Class::SchemaAdditionalPropertiesTightened,
            Severity::Moderate,
            old,
            new,
        ));
    }
}

/// Tool annotations, compared with the spec's defaults filled in: a hint moving toward less
/// safe is critical, toward safer info.
fn annotations_diff(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Delta>) {
    // (hint, default, the value that is the safe one)
    const HINTS: [(&str, bool, bool); 4] = [
        ("readOnlyHint", false, true),
        ("destructiveHint", true, false),
        ("idempotentHint", false, true),
        ("openWorldHint", true, false),
    ];
    let empty = Map::new();
    let a = old.and_then(Value::as_object).unwrap_or(&empty);
    let b = new.and_then(Value::as_object).unwrap_or(&empty);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        if x == y {
            continue;
        }
        let p = format!("{path}/{}", pointer_escape(key));
        if key == "title" {
            out.push(text_delta(&p, str_of(x), str_of(y)));
            continue;
        }
        let Some(&(_, default, safe)) = HINTS.iter().find(|(h, _, _)| h == key) else {
            out.push(Delta::new(
                &p,
                Class::FieldChanged,
                Severity::Moderate,
                x,
                y,
            ));
            continue;
        };
        let effective = |v: Option<&Value>| match v {
            None => Some(default),
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => None,
        };
        let (class, severity) = match (effective(x), effective(y)) {
            (Some(p0), Some(p1)) if p0 == p1 => (Class::AnnotationChanged, Severity::Info),
            (Some(_), Some(p1)) if p1 == safe => (Class::AnnotationSafer, Severity::Info),
            (Some(_), Some(_)) if key == "idempotentHint" => {
                (Class::AnnotationLessSafe, Severity::Moderate)
            }
            (Some(_), Some(_)) => (Class::AnnotationLessSafe, Severity::Critical),
            _ => (Class::AnnotationChanged, Severity::Moderate),
        };
        out.push(Delta::new(&p, class, severity, x, y));
    }
}

fn arguments_diff(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Delta>) {
    let by_name = |v: Option<&Value>| -> Vec<(String, Value)> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|arg| {
                        let name = arg
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        (name, arg.clone())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (a, b) = (by_name(old), by_name(new));
    let find = |list: &[(String, Value)], name: &str| {
        list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    };
    let names: BTreeSet<&String> = a.iter().chain(b.iter()).map(|(n, _)| n).collect();
    for name in names {
        let p = format!("{path}/{}", pointer_escape(name));
        match (find(&a, name), find(&b, name)) {
            (None, Some(y)) => out.push(Delta::new(
                &p,
                Class::PromptArgumentAdded,
                Severity::Moderate,
                None,
                Some(&y),
            )),
            (Some(x), None) => out.push(Delta::new(
                &p,
                Class::PromptArgumentRemoved,
                Severity::Moderate,
                Some(&x),
                None,
            )),
            (Some(x), Some(y)) if x != y => {
                leaf_diff(&p, &x, &y, &mut |q, u, v| {
                    if q.ends_with("/description") || q.ends_with("/title") {
                        out.push(text_delta(q, str_of(u), str_of(v)));
                    } else {
                        out.push(Delta::new(
                            q,
                            Class::PromptArgumentChanged,
                            Severity::Moderate,
                            u,
                            v,
                        ));
                    }
                });
            }
            _ => {}
        }
    }
}

/// Counts per severity.
pub fn summary(changes: &[Change]) -> [usize; 3] {
    let mut counts = [0; 3];
    for c in changes {
        counts[c.severity as usize] += 1;
    }
    counts
}

#[cfg(test)]
mod tests;
