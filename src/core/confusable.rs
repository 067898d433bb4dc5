//! Names that look alike: two tools (or prompts, or templates) whose names differ but share a
//! UTS #39 skeleton — `read_file` and `read_fіle` with a Cyrillic і — in one server or across
//! the servers of one lockfile. An agent that picks a tool by name can be steered to the
//! look-alike (tool shadowing).

use crate::core::lockfile::Lockfile;
use crate::core::snapshot::ItemKind;
use std::collections::BTreeMap;

/// The kinds whose names an agent chooses between.
pub const KINDS: [ItemKind; 3] = [ItemKind::Tool, ItemKind::Prompt, ItemKind::ResourceTemplate];

/// The UTS #39 skeleton of a name: equal skeletons look the same.
pub fn skeleton(name: &str) -> String {
    unicode_security::skeleton(name).collect()
}

/// One item: its server, kind and key.
pub type Item = (String, ItemKind, String);

/// For every item that has look-alikes, the other items of the same kind (in its server or
/// another) whose name differs but shares its skeleton, each as `server/name`, sorted. O
/// (n log n) in the number of items.
pub fn confusables(lockfile: &Lockfile) -> BTreeMap<Item, Vec<String>> {
    among(lockfile.servers.iter().flat_map(|(server, lock)| {
        KINDS.into_iter().flat_map(move |kind| {
            lock.items(kind)
                .into_iter()
                .flat_map(|items| items.keys())
                .map(move |key| (server.as_str(), kind, key.as_str()))
        })
    }))
}

/// [`confusables`] among one scanned server's items (named `server`).
pub fn in_snapshot(
    server: &str,
    snapshot: &crate::core::snapshot::Snapshot,
) -> BTreeMap<Item, Vec<String>> {
    among(KINDS.into_iter().flat_map(|kind| {
        snapshot
            .items(kind)
            .into_iter()
            .flat_map(|items| items.keys())
            .map(move |key| (server, kind, key.as_str()))
    }))
}

/// One line per item with look-alikes, for a report.
pub fn notes(found: &BTreeMap<Item, Vec<String>>, server: Option<&str>) -> Vec<String> {
    found
        .iter()
        .filter(|((s, _, _), _)| server.is_none_or(|only| s == only))
        .map(|((_, kind, key), others)| {
            format!(
                "{} \"{}\" looks like {} (same UTS #39 skeleton): an agent can be steered to the look-alike",
                kind.noun(),
                crate::core::text::escape_non_ascii(key),
                others
                    .iter()
                    .map(|o| format!("\"{}\"", crate::core::text::escape_non_ascii(o)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect()
}

fn among<'a>(
    items: impl Iterator<Item = (&'a str, ItemKind, &'a str)>,
) -> BTreeMap<Item, Vec<String>> {
    let mut groups: BTreeMap<(ItemKind, String), Vec<(&str, &str)>> = BTreeMap::new();
    for (server, kind, key) in items {
        groups
            .entry((kind, skeleton(key)))
            .or_default()
            .push((server, key));
    }
    let mut out: BTreeMap<Item, Vec<String>> = BTreeMap::new();
    for ((kind, _), members) in groups {
        for (server, key) in &members {
            let mut others: Vec<String> = members
                .iter()
                .filter(|(_, other)| other != key)
                .map(|(s, other)| format!("{s}/{other}"))
                .collect();
            if others.is_empty() {
                continue;
            }
            others.sort();
            others.dedup();
            out.insert((server.to_string(), kind, key.to_string()), others);
        }
    }
    out
}

/// One line per item of `server` that has look-alikes, for a report.
pub fn notes_for(lockfile: &Lockfile, server: &str) -> Vec<String> {
    notes(&confusables(lockfile), Some(server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::server_lock;
    use serde_json::json;

    #[test]
    fn a_homoglyph_is_confusable_in_one_server_and_across_servers() {
        assert_eq!(skeleton("read_fіle"), skeleton("read_file"));
        assert_ne!(skeleton("read_file"), skeleton("write_file"));
        let tool = |name: &str| json!({"name": name, "inputSchema": {"type": "object"}});
        let lockfile = Lockfile {
            servers: BTreeMap::from([
                (
                    "files".to_string(),
                    server_lock(vec![tool("read_file"), tool("write_file")]),
                ),
                (
                    "other".to_string(),
                    server_lock(vec![tool("read_fіle"), tool("list")]),
                ),
                ("same".to_string(), server_lock(vec![tool("read_file")])),
            ]),
            approvals: Vec::new(),
            registry: Default::default(),
        };
        let found = confusables(&lockfile);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            found[&("files".to_string(), ItemKind::Tool, "read_file".to_string())],
            ["other/read_fіle"]
        );
        assert_eq!(
            found[&("other".to_string(), ItemKind::Tool, "read_fіle".to_string())],
            ["files/read_file", "same/read_file"]
        );
        // The same name in two servers is not a look-alike (hosts tell servers apart by name).
        assert!(
            !found[&("same".to_string(), ItemKind::Tool, "read_file".to_string())]
                .contains(&"files/read_file".to_string())
        );
    }
}
