//! Revocation: pulling an approval back. A revocation list names servers and items (by name,
//! and optionally by digest) that must no longer be used, whatever the lockfile says; `verify`,
//! `diff`, `policy` and the proxy honour it. Lifting a revocation is as strong an act as
//! approving, so a list is signed (same key as the lockfile, its own payload type) wherever
//! signatures are checked, and it carries a sequence that only grows: a list older than one
//! already accepted (a rollback) is refused ([`Revocations::supersedes`]).

use crate::core::canonical::{Digest, to_canonical};
use crate::core::json::parse_strict;
use crate::core::snapshot::ItemKind;
use serde_json::{Map, Value, json};

/// Format version of a revocation list (1 had no sequence; it is still read, as sequence 0).
pub const FORMAT: u64 = 2;
/// Most entries a list may hold.
pub const MAX_ENTRIES: usize = 100_000;

/// One revocation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Revoked {
    /// The server's name in the lockfile.
    pub server: String,
    /// The item revoked; `None` revokes the whole server.
    pub item: Option<(ItemKind, String)>,
    /// Only this locked digest (of the item, or of the server entry); `None`: whatever digest.
    pub digest: Option<Digest>,
    pub reason: String,
    /// RFC 3339, UTC.
    pub revoked_at: String,
}

impl Revoked {
    /// For people: `server "files"`, `tool "read_file" of "files"`.
    pub fn describe(&self) -> String {
        match &self.item {
            None => format!("server {:?}", self.server),
            Some((kind, key)) => format!("{} {key:?} of {:?}", kind.noun(), self.server),
        }
    }

    fn to_json(&self) -> Value {
        let (kind, name) = match &self.item {
            Some((kind, key)) => (json!(kind.noun()), json!(key)),
            None => (Value::Null, Value::Null),
        };
        json!({
            "digest": self.digest.map(|d| d.to_string()),
            "kind": kind,
            "name": name,
            "reason": self.reason,
            "revokedAt": self.revoked_at,
            "server": self.server,
        })
    }
}

/// A revocation that applies: the server, the item (`None`: the whole server), and the entry.
pub type Applying<'a> = (String, Option<(ItemKind, String)>, &'a Revoked);

/// A revocation list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revocations {
    /// Grows by one with every list `mcplock revoke` writes; 0 for a version 1 list.
    pub sequence: u64,
    /// When this sequence was written (RFC 3339, UTC); none for a version 1 list.
    pub issued_at: Option<String>,
    pub entries: Vec<Revoked>,
}

/// Why a list cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RevocationError(pub String);

fn kind_of(noun: &str) -> Option<ItemKind> {
    ItemKind::ALL.into_iter().find(|k| k.noun() == noun)
}

impl Revocations {
    /// Reads a list strictly: its version, exactly the known fields, no duplicate entries.
    pub fn parse(bytes: &[u8]) -> Result<Revocations, RevocationError> {
        let fail = |m: String| RevocationError(m);
        let doc = parse_strict(bytes).map_err(|e| fail(e.to_string()))?;
        let top = doc
            .as_object()
            .ok_or_else(|| fail("not a JSON object".into()))?;
        let (sequence, issued_at) = match top.get("mcplockRevocations").and_then(Value::as_u64) {
            Some(1) if top.len() == 2 && top.contains_key("revoked") => (0, None),
            Some(1) => {
                return Err(fail(
                    "expected exactly \"mcplockRevocations\" and \"revoked\"".into(),
                ));
            }
            Some(FORMAT) => {
                const FIELDS: [&str; 4] = ["issuedAt", "mcplockRevocations", "revoked", "sequence"];
                if top.len() != FIELDS.len() || FIELDS.iter().any(|f| !top.contains_key(*f)) {
                    return Err(fail(format!(
                        "expected exactly the fields {}",
                        FIELDS.join(", ")
                    )));
                }
                let sequence = top["sequence"]
                    .as_u64()
                    .ok_or_else(|| fail("\"sequence\" is not a whole number".into()))?;
                let issued_at = top["issuedAt"]
                    .as_str()
                    .ok_or_else(|| fail("\"issuedAt\" is not a string".into()))?;
                (sequence, Some(issued_at.to_string()))
            }
            _ => {
                return Err(fail(format!(
                    "no \"mcplockRevocations\": {FORMAT}: this is not an mcplock revocation list (or a newer one)"
                )));
            }
        };
        let list = top["revoked"]
            .as_array()
            .ok_or_else(|| fail("\"revoked\" is not a list".into()))?;
        if list.len() > MAX_ENTRIES {
            return Err(fail(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entries = Vec::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            let at = |m: &str| fail(format!("revoked[{i}]: {m}"));
            let e: &Map<String, Value> = entry.as_object().ok_or_else(|| at("not an object"))?;
            const FIELDS: [&str; 6] = ["digest", "kind", "name", "reason", "revokedAt", "server"];
            if e.len() != FIELDS.len() || FIELDS.iter().any(|f| !e.contains_key(*f)) {
                return Err(at(&format!(
                    "expected exactly the fields {}",
                    FIELDS.join(", ")
                )));
            }
            let text = |f: &str| {
                e[f].as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| at(&format!("{f} is not a string")))
            };
            let item = match (&e["kind"], &e["name"]) {
                (Value::Null, Value::Null) => None,
                (Value::String(kind), Value::String(name)) => Some((
                    kind_of(kind).ok_or_else(|| at(&format!("unknown kind {kind:?}")))?,
                    name.clone(),
                )),
                _ => {
                    return Err(at(
                        "kind and name are both strings, or both null (the whole server)",
                    ));
                }
            };
            let digest = match &e["digest"] {
                Value::Null => None,
                Value::String(d) => {
                    Some(Digest::parse(d).ok_or_else(|| at("digest is not sha256:<64 hex>"))?)
                }
                _ => return Err(at("digest is not a string or null")),
            };
            entries.push(Revoked {
                server: text("server")?,
                item,
                digest,
                reason: text("reason")?,
                revoked_at: text("revokedAt")?,
            });
        }
        Ok(Revocations {
            sequence,
            issued_at,
            entries,
        })
    }

    /// Whether this list may replace `last`, the one accepted before: its sequence must not be
    /// lower (a rollback to an older signed list), and an equal sequence must hold the same
    /// list (every change takes a new sequence).
    pub fn supersedes(&self, last: &Revocations) -> Result<(), RevocationError> {
        if self.sequence < last.sequence {
            return Err(RevocationError(format!(
                "it is older (sequence {}) than the list already accepted (sequence {}): a rollback",
                self.sequence, last.sequence
            )));
        }
        if self.sequence == last.sequence && self.canonical() != last.canonical() {
            return Err(RevocationError(format!(
                "it changes the list accepted as sequence {} without a new sequence",
                self.sequence
            )));
        }
        Ok(())
    }

    /// The canonical document (entries in a fixed order), pretty-printed with a newline.
    pub fn to_pretty(&self) -> Vec<u8> {
        let mut entries = self.entries.clone();
        entries.sort();
        entries.dedup();
        let doc = json!({
            "issuedAt": self.issued_at.clone().unwrap_or_default(),
            "mcplockRevocations": FORMAT,
            "revoked": entries.iter().map(Revoked::to_json).collect::<Vec<_>>(),
            "sequence": self.sequence,
        });
        let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The bytes a signature of this list covers (its canonical form).
    pub fn canonical(&self) -> Vec<u8> {
        to_canonical(&serde_json::from_slice::<Value>(&self.to_pretty()).unwrap_or(Value::Null))
    }

    /// The revocation that applies to server `name` (locked with `digest`) as a whole.
    pub fn of_server(&self, name: &str, digest: Digest) -> Option<&Revoked> {
        self.entries
            .iter()
            .find(|r| r.server == name && r.item.is_none() && r.digest.is_none_or(|d| d == digest))
    }

    /// The revocation that applies to one item (locked with `digest`, if it is locked).
    pub fn of_item(
        &self,
        server: &str,
        kind: ItemKind,
        key: &str,
        digest: Option<Digest>,
    ) -> Option<&Revoked> {
        self.entries.iter().find(|r| {
            r.server == server
                && r.item.as_ref().is_some_and(|(k, n)| *k == kind && n == key)
                && (r.digest.is_none() || r.digest == digest)
        })
    }

    /// Every revocation that applies to what `lockfile` approves: (server, item, revocation).
    pub fn applying_to<'a>(
        &'a self,
        lockfile: &crate::core::lockfile::Lockfile,
    ) -> Vec<Applying<'a>> {
        let mut out = Vec::new();
        // Digests are computed only for what an entry names: most servers and items are on no
        // list, and hashing every definition of a large lockfile is most of the cost.
        for (name, server) in &lockfile.servers {
            let named: Vec<&Revoked> = self.entries.iter().filter(|r| r.server == *name).collect();
            if named.is_empty() {
                continue;
            }
            if named.iter().any(|r| r.item.is_none())
                && let Some(r) = self.of_server(name, server.digest(name))
            {
                out.push((name.clone(), None, r));
            }
            for kind in ItemKind::ALL {
                for (key, definition) in server.items(kind).into_iter().flatten() {
                    let mentioned = named
                        .iter()
                        .any(|r| r.item.as_ref().is_some_and(|(k, n)| *k == kind && n == key));
                    if !mentioned {
                        continue;
                    }
                    let digest = Some(definition.digest());
                    if let Some(r) = self.of_item(name, kind, key, digest) {
                        out.push((name.clone(), Some((kind, key.clone())), r));
                    }
                }
            }
        }
        out
    }
}

impl crate::core::code::Coded for RevocationError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::RevocationsInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::lockfile::Lockfile;
    use crate::core::testkit::server_lock;
    use std::collections::BTreeMap;

    fn lockfile() -> Lockfile {
        Lockfile {
            servers: BTreeMap::from([(
                "files".to_string(),
                server_lock(vec![
                    json!({"name": "read_file", "inputSchema": {"type": "object"}}),
                    json!({"name": "write_file", "inputSchema": {"type": "object"}}),
                ]),
            )]),
            approvals: Vec::new(),
            registry: Default::default(),
        }
    }

    fn revoke(item: Option<&str>, digest: Option<Digest>) -> Revoked {
        Revoked {
            server: "files".into(),
            item: item.map(|n| (ItemKind::Tool, n.to_string())),
            digest,
            reason: "exfiltrates".into(),
            revoked_at: "2026-11-30T10:00:00Z".into(),
        }
    }

    #[test]
    fn a_list_reads_back_what_it_writes_and_refuses_the_rest() {
        let list = Revocations {
            sequence: 3,
            issued_at: Some("2026-12-01T00:00:00Z".into()),
            entries: vec![
                revoke(Some("read_file"), None),
                revoke(None, Some(Digest::of_bytes(b"x"))),
            ],
        };
        let bytes = list.to_pretty();
        let back = Revocations::parse(&bytes).unwrap();
        assert_eq!(back.to_pretty(), bytes, "deterministic bytes");
        assert_eq!(back.entries.len(), 2);
        for bad in [
            r#"{"revoked": []}"#,
            r#"{"mcplockRevocations": 3, "revoked": []}"#,
            r#"{"mcplockRevocations": 2, "revoked": []}"#,
            r#"{"mcplockRevocations": 2, "revoked": [], "sequence": -1, "issuedAt": ""}"#,
            r#"{"mcplockRevocations": 1, "revoked": [], "sequence": 1}"#,
            r#"{"mcplockRevocations": 1, "revoked": [{"server": "s"}]}"#,
            r#"{"mcplockRevocations": 1, "revoked": [{"server": "s", "kind": "tool", "name": null, "digest": null, "reason": "", "revokedAt": ""}]}"#,
            r#"{"mcplockRevocations": 1, "revoked": [{"server": "s", "kind": "gadget", "name": "x", "digest": null, "reason": "", "revokedAt": ""}]}"#,
        ] {
            assert!(Revocations::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn revocations_apply_by_name_and_by_digest() {
        let lock = lockfile();
        let server = &lock.servers["files"];
        let read = server.item_digests()[&ItemKind::Tool]["read_file"];
        // By name: whatever the digest.
        let by_name = Revocations {
            entries: vec![revoke(Some("read_file"), None)],
            ..Default::default()
        };
        let hits = by_name.applying_to(&lock);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].1, Some((ItemKind::Tool, "read_file".to_string())));
        // By digest: only that definition.
        let other = Revocations {
            entries: vec![revoke(
                Some("read_file"),
                Some(Digest::of_bytes(b"another")),
            )],
            ..Default::default()
        };
        assert!(other.applying_to(&lock).is_empty());
        let exact = Revocations {
            entries: vec![revoke(Some("read_file"), Some(read))],
            ..Default::default()
        };
        assert_eq!(exact.applying_to(&lock).len(), 1);
        // The whole server.
        let all = Revocations {
            entries: vec![revoke(None, None)],
            ..Default::default()
        };
        assert_eq!(all.applying_to(&lock)[0].1, None);
        assert!(all.of_server("files", server.digest("files")).is_some());
        assert!(all.of_server("other", server.digest("files")).is_none());
    }

    #[test]
    fn issue_26_a_list_older_than_the_one_accepted_is_refused() {
        let accepted = Revocations {
            sequence: 5,
            issued_at: Some("2026-12-01T00:00:00Z".into()),
            entries: vec![revoke(Some("read_file"), None)],
        };
        let rollback = Revocations {
            sequence: 4,
            ..accepted.clone()
        };
        assert!(rollback.supersedes(&accepted).is_err());
        // The same sequence with the revocation lifted is refused too.
        let lifted = Revocations {
            entries: Vec::new(),
            ..accepted.clone()
        };
        assert!(lifted.supersedes(&accepted).is_err());
        assert!(accepted.supersedes(&accepted).is_ok());
        let newer = Revocations {
            sequence: 6,
            entries: Vec::new(),
            ..accepted.clone()
        };
        assert!(newer.supersedes(&accepted).is_ok());
        // A version 1 list reads as sequence 0.
        let v1 = Revocations::parse(br#"{"mcplockRevocations": 1, "revoked": []}"#).unwrap();
        assert_eq!((v1.sequence, v1.issued_at), (0, None));
    }
}
