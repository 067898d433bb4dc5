//! Where each server of a Codex config (TOML) is written: the byte range of its
//! `[mcp_servers.NAME]` table with its sub-tables, found from the parser's own spans (a line
//! that looks like a table header inside a multi-line string is text, a quoted name may hold
//! `]` or `.`). A server written so that it has no one range mcplock can replace (an inline
//! table, dotted keys, its sub-table after another table) gets the reason, never a guess.

use super::formats::FormatError;
use std::ops::Range;
use toml_edit::{Item, Table};

/// Each server under `mcp_servers`, in the file's order: its name and the range of its text,
/// or why it cannot be rewritten as one range.
pub type Entries = Vec<(String, Result<Range<usize>, String>)>;

pub fn entries(text: &str) -> Result<Entries, FormatError> {
    let doc = toml_edit::Document::parse(text)
        .map_err(|e| FormatError(format!("not valid TOML: {e}")))?;
    let root = doc.as_table();
    let Some(item) = root.get("mcp_servers") else {
        return Ok(Vec::new());
    };
    let Some(servers) = item.as_table() else {
        let names: Vec<String> = item
            .as_table_like()
            .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_default();
        let why = "mcp_servers is written as one inline table; write each server as a [mcp_servers.NAME] table to wrap it";
        return Ok(names
            .into_iter()
            .map(|n| (n, Err(why.to_string())))
            .collect());
    };
    let mut headers = Vec::new();
    table_headers(root, &mut Vec::new(), &mut headers);
    Ok(servers
        .iter()
        .map(|(key, item)| (key.to_string(), range_of(text, key, item, &headers)))
        .collect())
}

/// Every table header written in the document: where it starts and the path it names.
fn table_headers(table: &Table, path: &mut Vec<String>, out: &mut Vec<(usize, Vec<String>)>) {
    for (key, item) in table.iter() {
        path.push(key.to_string());
        match item {
            Item::Table(t) => {
                // An implicit table (`mcp_servers` of `[mcp_servers.a]`) or a dotted one has
                // no header of its own.
                if let Some(span) = t.span().filter(|_| !t.is_implicit() && !t.is_dotted()) {
                    out.push((span.start, path.clone()));
                }
                table_headers(t, path, out);
            }
            Item::ArrayOfTables(array) => {
                for t in array.iter() {
                    if let Some(span) = t.span() {
                        out.push((span.start, path.clone()));
                    }
                    table_headers(t, path, out);
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// The first and last byte of everything written for `table` (its header, its values, its
/// sub-tables).
fn extent(table: &Table, first: &mut usize, last: &mut usize) {
    fn take(span: Option<Range<usize>>, first: &mut usize, last: &mut usize) {
        if let Some(span) = span {
            *first = (*first).min(span.start);
            *last = (*last).max(span.end);
        }
    }
    take(table.span(), first, last);
    for (_, item) in table.iter() {
        match item {
            Item::Value(value) => take(value.span(), first, last),
            Item::Table(t) => extent(t, first, last),
            Item::ArrayOfTables(array) => {
                for t in array.iter() {
                    extent(t, first, last);
                }
            }
            Item::None => {}
        }
    }
}

fn range_of(
    text: &str,
    key: &str,
    item: &Item,
    headers: &[(usize, Vec<String>)],
) -> Result<Range<usize>, String> {
    let table = match item {
        Item::Table(t) if t.span().is_some() && !t.is_dotted() && !t.is_implicit() => t,
        Item::Table(_) => {
            return Err(format!(
                "it is written with dotted keys or only through its sub-tables; write it as a [mcp_servers.{key}] table to wrap it"
            ));
        }
        _ => {
            return Err(format!(
                "it is an inline table under [mcp_servers]; write it as a [mcp_servers.{key}] table to wrap it"
            ));
        }
    };
    let (mut first, mut last) = (usize::MAX, 0);
    extent(table, &mut first, &mut last);
    let start = text[..first].rfind('\n').map_or(0, |i| i + 1);
    let end = text[last..].find('\n').map_or(text.len(), |i| last + i + 1);
    let ours = |path: &[String]| path.len() >= 2 && path[0] == "mcp_servers" && path[1] == key;
    if let Some((_, other)) = headers
        .iter()
        .find(|(at, path)| (start..end).contains(at) && !ours(path))
    {
        return Err(format!(
            "its tables are not together in the file ([{}] lies between them); put its sub-tables right after [mcp_servers.{key}] to wrap it",
            other.join(".")
        ));
    }
    Ok(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(text: &str) -> Vec<(String, Result<String, String>)> {
        entries(text)
            .unwrap()
            .into_iter()
            .map(|(k, r)| (k, r.map(|r| text[r].to_string())))
            .collect()
    }

    #[test]
    fn each_server_is_its_table_with_its_sub_tables() {
        let text = "# top\n[mcp_servers.a]\ncommand = \"npx\"\ndescription = \"\"\"\n[mcp_servers.evil]\n\"\"\"\n[mcp_servers.a.env]\nK = \"v\" # note\n\n# about b\n[mcp_servers.\"we]i.rd\"]\ncommand = \"u\"\n";
        let got = ranges(text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0].1.as_deref().unwrap(),
            "[mcp_servers.a]\ncommand = \"npx\"\ndescription = \"\"\"\n[mcp_servers.evil]\n\"\"\"\n[mcp_servers.a.env]\nK = \"v\" # note\n"
        );
        assert_eq!(got[1].0, "we]i.rd");
        assert_eq!(
            got[1].1.as_deref().unwrap(),
            "[mcp_servers.\"we]i.rd\"]\ncommand = \"u\"\n"
        );
    }

    #[test]
    fn a_server_without_one_range_gets_the_reason() {
        let late = "[mcp_servers.a]\ncommand = \"x\"\n[mcp_servers.b]\ncommand = \"y\"\n[mcp_servers.a.env]\nK = \"v\"\n";
        let got = ranges(late);
        assert!(
            got[0]
                .1
                .as_ref()
                .unwrap_err()
                .contains("[mcp_servers.b] lies between")
        );
        assert!(got[1].1.is_ok());
        let dotted = "mcp_servers.a.command = \"x\"\n";
        assert!(
            ranges(dotted)[0]
                .1
                .as_ref()
                .unwrap_err()
                .contains("dotted keys")
        );
        let inline = "[mcp_servers]\na = { command = \"x\" }\n";
        assert!(
            ranges(inline)[0]
                .1
                .as_ref()
                .unwrap_err()
                .contains("inline table")
        );
        let whole = "mcp_servers = { a = { command = \"x\" } }\n";
        assert!(
            ranges(whole)[0]
                .1
                .as_ref()
                .unwrap_err()
                .contains("one inline table")
        );
    }
}
