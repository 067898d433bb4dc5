//! Whether a server offers the same thing every time it starts.
//!
//! Some servers build their descriptions from an unordered set, or stamp a start time into a
//! field, so two starts of the same unchanged server differ. Locking such a server would report
//! drift on every re-scan (or pass by luck). `lock --repeat N` scans N times and compares the
//! lock entries with [`between_starts`]: every difference is named by its item and the JSON
//! pointer where the canonical forms part.

use crate::core::canonical::differing_pointers;
use crate::core::diff::Subject;
use crate::core::json::pointer_escape;
use crate::core::lockfile::ServerLock;
use crate::core::snapshot::ItemKind;
use serde_json::Value;

/// One place that differed between two starts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unstable {
    pub subject: Subject,
    /// JSON pointer inside the item's definition, or into the server entry for the server.
    /// For an item listed by one start only, `None`.
    pub pointer: Option<String>,
}

impl Unstable {
    /// `tool "x" /description`, `server /instructions`, `tool "y" (listed by some starts only)`.
    pub fn describe(&self, escape: impl Fn(&str) -> String) -> String {
        let subject = match &self.subject {
            Subject::Server => "server".to_string(),
            Subject::Item(kind, key) => format!("{} {:?}", kind.noun(), escape(key)),
        };
        match &self.pointer {
            Some(p) if p.is_empty() => format!("{subject} (the whole value)"),
            Some(p) => format!("{subject} {}", escape(p)),
            None => format!("{subject} (listed by some starts only)"),
        }
    }
}

/// Every place where `other` differs from `first`, at most `limit`, in a stable order. Empty iff
/// the two entries have the same digest.
pub fn between_starts(first: &ServerLock, other: &ServerLock, limit: usize) -> Vec<Unstable> {
    let mut out = Vec::new();
    let header = |s: &ServerLock| Value::Object(s.header_json());
    for pointer in differing_pointers(&header(first), &header(other), limit) {
        out.push(Unstable {
            subject: Subject::Server,
            pointer: Some(pointer),
        });
    }
    for kind in ItemKind::ALL {
        let (a, b) = match (first.items(kind), other.items(kind)) {
            (Some(a), Some(b)) => (a, b),
            (None, None) => continue,
            // Resources locked on one side only: the entry's shape differs as a whole.
            _ => {
                out.push(Unstable {
                    subject: Subject::Server,
                    pointer: Some(format!("/{}", pointer_escape(kind.field()))),
                });
                continue;
            }
        };
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            if out.len() >= limit {
                return out;
            }
            let subject = Subject::Item(kind, key.clone());
            match (a.get(key), b.get(key)) {
                (Some(x), Some(y)) => {
                    let (x, y) = (x.to_value(), y.to_value());
                    for pointer in differing_pointers(&x, &y, limit - out.len()) {
                        out.push(Unstable {
                            subject: subject.clone(),
                            pointer: Some(pointer),
                        });
                    }
                }
                _ => out.push(Unstable {
                    subject,
                    pointer: None,
                }),
            }
        }
    }
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn server(description: &str, extra_tool: bool) -> ServerLock {
        let mut tools = vec![json!({"name": "t", "description": description,
            "inputSchema": {"type": "object", "properties": {"n": {"maximum": 10}}}})];
        if extra_tool {
            tools.push(json!({"name": "u"}));
        }
        crate::core::testkit::server_lock(tools)
    }

    #[test]
    fn names_every_place_and_nothing_else() {
        let a = server("reads a, b", false);
        assert!(between_starts(&a, &a.clone(), 10).is_empty());
        let mut b = server("reads b, a", true);
        b.instructions = Some("hi".into());
        b.tools.get_mut("t").unwrap().edit(|t| {
            t["inputSchema"]["properties"]["n"]["maximum"] = json!(1e1);
        });
        let got: Vec<String> = between_starts(&a, &b, 10)
            .iter()
            .map(|u| u.describe(str::to_owned))
            .collect();
        assert_eq!(
            got,
            [
                "server /instructions",
                "tool \"t\" /description",
                "tool \"u\" (listed by some starts only)"
            ]
        );
        assert_eq!(between_starts(&a, &b, 2).len(), 2);
        // Equal digests, no differences; different digests, some.
        assert_eq!(
            between_starts(&a, &b, 10).is_empty(),
            a.digest("s") == b.digest("s")
        );
    }
}
