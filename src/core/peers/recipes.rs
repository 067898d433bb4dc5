//! How each peer hashed what it approved, so that an imported pin can be recomputed from what a
//! server serves now (`mcplock import`, then `lock --check`). Each recipe is the peer's own,
//! read from its source at the commit testdata/peers/*/SOURCE.txt names; a value computed here
//! is compared with the peer's value as a string, so any difference (the server's or a
//! recipe's) means "not confirmed", never "confirmed".

use crate::core::canonical::{Digest, to_canonical};
use serde_json::{Map, Value};

/// One way a peer hashed (part of) an item, or every item of a kind at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipe {
    /// mcp-lock/1 `surface.hash`: every tool, reduced to `coverage`, sorted by name.
    McpLockSurface(Vec<String>),
    /// ToolPin v2 `toolSurfaceHash`: the same record set, hex.
    ToolPinSurface,
    /// ToolPin v2 `toolManifestHash`: name, description (or ""), inputSchema (or {}).
    ToolPinManifest,
    /// ToolPin v2 `toolDescriptionHash`: name, description (or "").
    ToolPinDescriptions,
    /// mcp-warden: RFC 8785 of the description (absent: "").
    WardenDescription,
    /// mcp-warden: RFC 8785 of the inputSchema (absent: {}).
    WardenInputSchema,
    /// mcp-warden: RFC 8785 of a prompt's arguments (absent: []).
    WardenArguments,
    /// mcp-warden (lock version 4): RFC 8785 of `field` as served (absent: null).
    WardenValue(String),
    /// A field the peer kept in clear: its RFC 8785 text (absent: null).
    Kept(String),
    /// MCPTrust: the description's bytes as served.
    McpTrustDescription,
    /// MCPTrust: Go's `json.Marshal` of the inputSchema with sorted keys ("" when absent or
    /// empty).
    McpTrustInputSchema,
    /// MCPTrust v3: a text with line ends normalized and trailing blanks trimmed, of `field`.
    McpTrustText(String),
    /// MCPTrust v3: RFC 8785 of a prompt's arguments, each reduced to name, description,
    /// required, sorted by name.
    McpTrustArguments,
    /// MCPTrust v3: RFC 8785 of `{uriTemplate, mimeType}`.
    McpTrustTemplate,
    /// mcp-scan keeps the description it approved: compared as text.
    McpScanDescription,
}

impl Recipe {
    /// The name a draft records.
    pub fn name(&self) -> &'static str {
        match self {
            Recipe::McpLockSurface(_) => "mcp-lock/1-surface",
            Recipe::ToolPinSurface => "toolpin-surface",
            Recipe::ToolPinManifest => "toolpin-manifest",
            Recipe::ToolPinDescriptions => "toolpin-descriptions",
            Recipe::WardenDescription => "warden-description",
            Recipe::WardenInputSchema => "warden-input-schema",
            Recipe::WardenArguments => "warden-arguments",
            Recipe::WardenValue(_) => "warden-value",
            Recipe::Kept(_) => "kept",
            Recipe::McpTrustDescription => "mcptrust-description",
            Recipe::McpTrustInputSchema => "mcptrust-input-schema",
            Recipe::McpTrustText(_) => "mcptrust-text",
            Recipe::McpTrustArguments => "mcptrust-arguments",
            Recipe::McpTrustTemplate => "mcptrust-template",
            Recipe::McpScanDescription => "mcp-scan-description",
        }
    }

    /// The recipe a draft names (with its field or coverage, when it has one).
    pub fn from_name(name: &str, field: Option<&str>, coverage: Option<&[String]>) -> Option<Self> {
        Some(match (name, field, coverage) {
            ("mcp-lock/1-surface", None, Some(c)) => Recipe::McpLockSurface(c.to_vec()),
            ("mcptrust-text", Some(f), None) => Recipe::McpTrustText(f.to_string()),
            ("warden-value", Some(f), None) => Recipe::WardenValue(f.to_string()),
            ("kept", Some(f), None) => Recipe::Kept(f.to_string()),
            (_, Some(_), _) | (_, _, Some(_)) => return None,
            ("toolpin-surface", ..) => Recipe::ToolPinSurface,
            ("toolpin-manifest", ..) => Recipe::ToolPinManifest,
            ("toolpin-descriptions", ..) => Recipe::ToolPinDescriptions,
            ("warden-description", ..) => Recipe::WardenDescription,
            ("warden-input-schema", ..) => Recipe::WardenInputSchema,
            ("warden-arguments", ..) => Recipe::WardenArguments,
            ("mcptrust-description", ..) => Recipe::McpTrustDescription,
            ("mcptrust-input-schema", ..) => Recipe::McpTrustInputSchema,
            ("mcptrust-arguments", ..) => Recipe::McpTrustArguments,
            ("mcptrust-template", ..) => Recipe::McpTrustTemplate,
            ("mcp-scan-description", ..) => Recipe::McpScanDescription,
            _ => return None,
        })
    }

    /// Whether the recipe covers every item of a kind at once (a surface hash).
    pub fn is_whole(&self) -> bool {
        matches!(
            self,
            Recipe::McpLockSurface(_)
                | Recipe::ToolPinSurface
                | Recipe::ToolPinManifest
                | Recipe::ToolPinDescriptions
        )
    }

    /// The fields of an item the recipe covers: what the peer approved of it.
    pub fn covers(&self) -> Vec<String> {
        let list: &[&str] = match self {
            Recipe::McpLockSurface(coverage) => return coverage.clone(),
            Recipe::McpTrustText(field) | Recipe::WardenValue(field) | Recipe::Kept(field) => {
                return vec![field.clone()];
            }
            Recipe::ToolPinSurface | Recipe::ToolPinManifest => {
                &["name", "description", "inputSchema"]
            }
            Recipe::ToolPinDescriptions => &["name", "description"],
            Recipe::WardenDescription
            | Recipe::McpTrustDescription
            | Recipe::McpScanDescription => &["description"],
            Recipe::WardenInputSchema | Recipe::McpTrustInputSchema => &["inputSchema"],
            Recipe::WardenArguments | Recipe::McpTrustArguments => &["arguments"],
            Recipe::McpTrustTemplate => &["uriTemplate", "mimeType"],
        };
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The value of a per-item recipe over `item` as served; `None` when the peer's own code
    /// could not have hashed it either (MCPTrust refuses a fractional number).
    pub fn of_item(&self, item: &Map<String, Value>) -> Option<String> {
        let field = |name: &str| item.get(name).filter(|v| !v.is_null());
        let text = |name: &str| field(name).and_then(Value::as_str).unwrap_or_default();
        Some(match self {
            Recipe::WardenDescription => warden(&Value::String(text("description").into())),
            Recipe::WardenInputSchema => {
                warden(field("inputSchema").unwrap_or(&Value::Object(Map::new())))
            }
            Recipe::WardenArguments => warden(&warden_arguments(field("arguments"))),
            Recipe::McpTrustDescription => prefixed_hex(text("description").as_bytes()),
            Recipe::McpTrustInputSchema => match field("inputSchema") {
                None => String::new(),
                Some(Value::Object(m)) if m.is_empty() => String::new(),
                Some(schema) => prefixed_hex(&go_json(schema)?),
            },
            Recipe::McpTrustText(name) => prefixed_hex(normalize_lines(text(name)).as_bytes()),
            Recipe::WardenValue(name) => warden(field(name).unwrap_or(&Value::Null)),
            Recipe::Kept(name) => {
                String::from_utf8_lossy(&to_canonical(field(name).unwrap_or(&Value::Null)))
                    .into_owned()
            }
            Recipe::McpTrustArguments => mcptrust_arguments(field("arguments"))?,
            Recipe::McpTrustTemplate => {
                let mut template = Map::new();
                template.insert("uriTemplate".into(), text("uriTemplate").into());
                if !text("mimeType").is_empty() {
                    template.insert("mimeType".into(), text("mimeType").into());
                }
                prefixed_hex(&jcs_integers(&Value::Object(template))?)
            }
            Recipe::McpScanDescription => text("description").to_string(),
            Recipe::McpLockSurface(_)
            | Recipe::ToolPinSurface
            | Recipe::ToolPinManifest
            | Recipe::ToolPinDescriptions => return None,
        })
    }

    /// The value of a whole-kind recipe over every item served.
    pub fn of_all(&self, items: &[Map<String, Value>]) -> Option<String> {
        match self {
            Recipe::McpLockSurface(coverage) => {
                let coverage: Vec<&str> = coverage.iter().map(String::as_str).collect();
                Some(super::mcp_lock_v1::surface_hash(items, &coverage))
            }
            Recipe::ToolPinSurface => Some(hex(&to_canonical(&records(items, by_utf16, |t| {
                ["name", "description", "inputSchema"]
                    .into_iter()
                    .filter_map(|f| t.get(f).map(|v| (f.to_string(), v.clone())))
                    .collect()
            })))),
            Recipe::ToolPinManifest => Some(hex(&to_canonical(&records(items, by_locale, |t| {
                let mut r = name_and_description(t);
                r.insert(
                    "inputSchema".into(),
                    t.get("inputSchema")
                        .filter(|v| !v.is_null())
                        .cloned()
                        .unwrap_or_else(|| Value::Object(Map::new())),
                );
                r
            })))),
            Recipe::ToolPinDescriptions => Some(hex(&to_canonical(&records(
                items,
                by_locale,
                name_and_description,
            )))),
            _ => None,
        }
    }
}

fn name_and_description(tool: &Map<String, Value>) -> Map<String, Value> {
    let mut record = Map::new();
    record.insert(
        "name".into(),
        tool.get("name").cloned().unwrap_or(Value::Null),
    );
    record.insert(
        "description".into(),
        tool.get("description")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| Value::String(String::new())),
    );
    record
}

/// The tools' records sorted by name as `order` sorts them.
fn records(
    items: &[Map<String, Value>],
    order: fn(&str, &str) -> std::cmp::Ordering,
    record: impl Fn(&Map<String, Value>) -> Map<String, Value>,
) -> Value {
    let mut sorted: Vec<&Map<String, Value>> = items.iter().collect();
    let name = |t: &Map<String, Value>| {
        t.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    sorted.sort_by(|a, b| order(&name(a), &name(b)));
    Value::Array(
        sorted
            .into_iter()
            .map(|t| Value::Object(record(t)))
            .collect(),
    )
}

fn by_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// JavaScript's `localeCompare` without a locale, as far as tool names go: ICU's root
/// collation puts punctuation before digits before letters and compares letters without case
/// first. A name outside ASCII falls back to code units; a wrong order only makes the hash
/// differ, which is reported as not confirmed.
fn by_locale(a: &str, b: &str) -> std::cmp::Ordering {
    fn weight(c: char) -> (u8, char) {
        match c {
            c if c.is_ascii_alphabetic() => (2, c.to_ascii_lowercase()),
            c if c.is_ascii_digit() => (1, c),
            c => (0, c),
        }
    }
    let primary = a.chars().map(weight).cmp(b.chars().map(weight));
    // Equal but for case: lower case first, as ICU's tertiary level does.
    primary.then_with(|| {
        a.chars()
            .map(|c| c.is_ascii_uppercase())
            .cmp(b.chars().map(|c| c.is_ascii_uppercase()))
    })
}

/// `sha256:` and hex, the form every peer here writes but ToolPin (mcplock's own digest form).
fn prefixed_hex(bytes: &[u8]) -> String {
    Digest::of_bytes(bytes).to_string()
}

/// Bare hex of SHA-256 (ToolPin's tool hashes).
fn hex(bytes: &[u8]) -> String {
    // `sha256:` and hex, without its prefix.
    Digest::of_bytes(bytes).to_string()["sha256:".len()..].to_string()
}

fn warden(value: &Value) -> String {
    Digest::of_value(value).to_string()
}

/// mcp-warden's prompt arguments as it hashes them: each with `name`, `description` and
/// `required` always present (null when not served), its other members only when not null.
fn warden_arguments(arguments: Option<&Value>) -> Value {
    let Some(Value::Array(arguments)) = arguments else {
        return arguments.cloned().unwrap_or(Value::Array(Vec::new()));
    };
    let normalized = arguments.iter().map(|argument| {
        let Value::Object(argument) = argument else {
            return argument.clone();
        };
        let mut out: Map<String, Value> = argument
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for key in ["name", "description", "required"] {
            out.entry(key).or_insert(Value::Null);
        }
        Value::Object(out)
    });
    Value::Array(normalized.collect())
}

/// MCPTrust's `normalizeString`: CRLF and CR become LF, blanks at line ends are trimmed.
fn normalize_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(|line| line.trim_end_matches([' ', '\t']))
        .collect::<Vec<_>>()
        .join("\n")
}

/// RFC 8785 of `value`, refused (as MCPTrust's `rejectFloats` does) when it holds a number,
/// since Go decodes every JSON number as a float.
fn jcs_integers(value: &Value) -> Option<Vec<u8>> {
    fn has_number(value: &Value) -> bool {
        match value {
            Value::Number(_) => true,
            Value::Array(items) => items.iter().any(has_number),
            Value::Object(map) => map.values().any(has_number),
            _ => false,
        }
    }
    (!has_number(value)).then(|| to_canonical(value))
}

fn mcptrust_arguments(arguments: Option<&Value>) -> Option<String> {
    let mut reduced: Vec<(String, Value)> = Vec::new();
    for argument in arguments.and_then(Value::as_array).into_iter().flatten() {
        let argument = argument.as_object()?;
        let name = argument.get("name").and_then(Value::as_str)?.to_string();
        let mut record = Map::new();
        record.insert("name".into(), name.clone().into());
        if let Some(d) = argument.get("description").and_then(Value::as_str)
            && !d.is_empty()
        {
            record.insert("description".into(), d.into());
        }
        if argument.get("required") == Some(&Value::Bool(true)) {
            record.insert("required".into(), true.into());
        }
        reduced.push((name, Value::Object(record)));
    }
    reduced.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let array = Value::Array(reduced.into_iter().map(|(_, r)| r).collect());
    Some(prefixed_hex(&jcs_integers(&array)?))
}

/// Go's `encoding/json` output for a decoded value with its keys sorted (MCPTrust's
/// canonicalization v1): keys in byte order, `<`, `>`, `&`, U+2028 and U+2029 escaped, and
/// numbers as Go prints a float64. A number Go would print otherwise than RFC 8785 does (an
/// exponent) gives `None`: not confirmable.
pub fn go_json(value: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    write_go(&mut out, value)?;
    Some(out)
}

fn write_go(out: &mut Vec<u8>, value: &Value) -> Option<()> {
    match value {
        Value::Null | Value::Bool(_) => out.extend_from_slice(value.to_string().as_bytes()),
        Value::Number(n) => {
            let float = n.as_f64()?;
            // Go prints an integral float64 below 1e21 without exponent, as RFC 8785 does; other
            // numbers may differ in form, so they are not recomputed.
            if float.fract() != 0.0 || float.abs() >= 1e21 {
                return None;
            }
            out.extend_from_slice(format!("{float:.0}").as_bytes());
        }
        Value::String(s) => write_go_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_string(out, key);
                out.push(b':');
                write_go(out, map.get(key)?)?;
            }
            out.push(b'}');
        }
    }
    Some(())
}

fn write_go_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn warden_hashes_an_absent_field_as_its_empty_value() {
        // sha256 of `""` and of `{}` (the gauntlet recomputes warden's hashes of real tools).
        assert_eq!(
            Recipe::WardenDescription.of_item(&Map::new()).as_deref(),
            Some("sha256:12ae32cb1ec02d01eda3581b127c1fee3b0dc53572ed6baf239721a03d82e126")
        );
        assert_eq!(
            Recipe::WardenInputSchema.of_item(&Map::new()).as_deref(),
            Some("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        );
    }

    #[test]
    fn mcptrust_hashes_follow_its_go_rules() {
        let tool = map(json!({"description": "a<b", "inputSchema": {"b": 1, "a": "&"}}));
        assert_eq!(
            go_json(&tool["inputSchema"]).as_deref(),
            Some(br#"{"a":"\u0026","b":1}"#.as_slice())
        );
        assert_eq!(
            Recipe::McpTrustInputSchema.of_item(&map(json!({"inputSchema": {}}))),
            Some(String::new())
        );
        assert_eq!(go_json(&json!({"x": 1.5})), None);
        assert_eq!(normalize_lines("a \r\nb\t\rc"), "a\nb\nc");
        // MCPTrust refuses numbers in what it hashes with RFC 8785.
        assert_eq!(
            Recipe::McpTrustArguments.of_item(&map(json!({"arguments": [{"name": 1}]}))),
            None
        );
    }

    /// ToolPin's v2 surface hash is the mcp-lock/1 surface hash over the same three fields, in
    /// hex rather than base64 (both are ToolPin's: `hashToolSurface` and the spec's vectors).
    #[test]
    fn toolpins_surface_hash_is_the_mcp_lock_surface_in_hex() {
        use base64::Engine as _;
        let tools: Vec<Map<String, Value>> = ["b", "a", "B"]
            .iter()
            .map(|n| map(json!({"name": n, "description": format!("Tool {n}"), "inputSchema": {"type": "object"}})))
            .collect();
        let coverage = ["name", "description", "inputSchema"]
            .map(String::from)
            .to_vec();
        let v1 = Recipe::McpLockSurface(coverage).of_all(&tools).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v1.trim_start_matches("sha256-"))
            .unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(Recipe::ToolPinSurface.of_all(&tools), Some(hex));
    }

    #[test]
    fn locale_order_puts_case_after_letters_and_punctuation_first() {
        let mut names = vec!["b", "B", "a_b", "ab", "a1", "A"];
        names.sort_by(|a, b| by_locale(a, b));
        assert_eq!(names, ["A", "a_b", "a1", "ab", "b", "B"]);
    }

    #[test]
    fn every_recipe_name_reads_back() {
        let all = [
            Recipe::McpLockSurface(vec!["name".into()]),
            Recipe::ToolPinSurface,
            Recipe::ToolPinManifest,
            Recipe::ToolPinDescriptions,
            Recipe::WardenDescription,
            Recipe::WardenInputSchema,
            Recipe::WardenArguments,
            Recipe::McpTrustDescription,
            Recipe::McpTrustInputSchema,
            Recipe::McpTrustText("name".into()),
            Recipe::WardenValue("annotations".into()),
            Recipe::Kept("mimeType".into()),
            Recipe::McpTrustArguments,
            Recipe::McpTrustTemplate,
            Recipe::McpScanDescription,
        ];
        for recipe in all {
            let (field, coverage) = match &recipe {
                Recipe::McpTrustText(f) | Recipe::WardenValue(f) | Recipe::Kept(f) => {
                    (Some(f.as_str()), None)
                }
                Recipe::McpLockSurface(c) => (None, Some(c.as_slice())),
                _ => (None, None),
            };
            assert_eq!(
                Recipe::from_name(recipe.name(), field, coverage),
                Some(recipe)
            );
        }
    }
}
