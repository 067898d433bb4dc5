//! What a long-running command (the gateway, the proxy) says on stderr as it runs: one line per
//! event, for people (`mcplock: COMPONENT: MESSAGE`) or, once [`use_json`] was called, one JSON
//! object per line for a log collector (`time`, `level`, `component`, `message` and the event's
//! fields). Every message is cleaned of the secrets this process knows before it is written.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// From now on every event is written as one JSON object per line.
pub fn use_json() {
    JSON.store(true, Ordering::SeqCst);
}

/// Events are written as JSON (a server's own stderr is then not copied through: its tail is
/// named when it goes away).
pub fn is_json() -> bool {
    JSON.load(Ordering::SeqCst)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
        }
    }
}

/// The line an event is written as.
pub fn line(
    json: bool,
    (time, level): (&str, Level),
    component: &str,
    message: &str,
    fields: &[(&str, &str)],
) -> String {
    let message = crate::edge::secrets::redact(message);
    if json {
        let mut object = serde_json::Map::new();
        for (key, value) in fields {
            object.insert((*key).to_string(), serde_json::json!(value));
        }
        object.insert("time".into(), serde_json::json!(time));
        object.insert("level".into(), serde_json::json!(level.as_str()));
        object.insert("component".into(), serde_json::json!(component));
        object.insert("message".into(), serde_json::json!(message));
        return serde_json::Value::Object(object).to_string();
    }
    let mut text = format!("mcplock: {component}: {message}");
    if !fields.is_empty() {
        let shown: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!(" ({})", shown.join(", ")));
    }
    text
}

/// Writes one event on stderr.
pub fn say(level: Level, component: &str, message: &str, fields: &[(&str, &str)]) {
    let json = JSON.load(Ordering::SeqCst);
    let time = if json {
        crate::edge::clock::now()
    } else {
        String::new()
    };
    eprintln!("{}", line(json, (&time, level), component, message, fields));
}

pub fn info(component: &str, message: &str, fields: &[(&str, &str)]) {
    say(Level::Info, component, message, fields);
}

pub fn warn(component: &str, message: &str, fields: &[(&str, &str)]) {
    say(Level::Warn, component, message, fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line_for_people_or_one_json_object() {
        let fields = [("session", "ab12"), ("agent", "ci")];
        let human = line(
            false,
            ("", Level::Info),
            "gateway",
            "session opened",
            &fields,
        );
        assert_eq!(
            human,
            "mcplock: gateway: session opened (session=ab12, agent=ci)"
        );
        let json = line(
            true,
            ("2026-12-07T00:00:00Z", Level::Warn),
            "proxy",
            "a\nb",
            &fields,
        );
        assert!(!json.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["level"], "warn");
        assert_eq!(value["message"], "a\nb");
        assert_eq!(value["agent"], "ci");
        // A field cannot pass for the event's own keys.
        let forged = line(
            true,
            ("t", Level::Info),
            "gateway",
            "m",
            &[("level", "debug")],
        );
        let value: serde_json::Value = serde_json::from_str(&forged).unwrap();
        assert_eq!(value["level"], "info");
    }
}
