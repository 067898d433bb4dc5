//! An entry of the official MCP Registry (`server.json`, schema 2025-12-11, or the registry
//! API's `{"server", "_meta"}` answer) as a lock records it: the name, version, repository and
//! packages it published, and the status the registry gave it. A lock keeps these per server
//! (lockfile version 7) so that a later entry can be held to them: another repository (a
//! deleted and recreated repository has another id) is critical drift.

use serde_json::{Map, Value, json};

/// The registry's own `_meta` key.
const OFFICIAL: &str = "io.modelcontextprotocol.registry/official";
/// Most packages one record keeps.
const MAX_PACKAGES: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub url: String,
    pub source: String,
    pub id: Option<String>,
    pub subfolder: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub registry_type: String,
    pub identifier: String,
    pub version: Option<String>,
    /// Lowercase hex, as the schema has it.
    pub file_sha256: Option<String>,
}

/// What a lock records of a registry entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub version: String,
    pub repository: Option<Repository>,
    pub packages: Vec<Package>,
    /// `active`, `deprecated` or `deleted`, when the entry came with the registry's metadata.
    pub status: Option<String>,
}

fn text(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{at}{key} must be a string")),
    }
}

fn required(map: &Map<String, Value>, key: &str, at: &str) -> Result<String, String> {
    text(map, key, at)?.ok_or_else(|| format!("{at}{key} is missing"))
}

fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Record {
    /// Reads a `server.json` document, or the registry API's answer for one server.
    pub fn from_server_json(document: &Value) -> Result<Record, String> {
        let top = document.as_object().ok_or("not a JSON object")?;
        let (server, outer_meta) = match top.get("server") {
            Some(Value::Object(server)) => (server, top.get("_meta")),
            _ => (top, None),
        };
        let status = [outer_meta, server.get("_meta")]
            .into_iter()
            .flatten()
            .find_map(|meta| meta.get(OFFICIAL)?.get("status"))
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or("the registry status must be a string")
            })
            .transpose()?;
        if let Some(s) = &status
            && !matches!(s.as_str(), "active" | "deprecated" | "deleted")
        {
            return Err(format!(
                "registry status {s:?} is none of active, deprecated, deleted"
            ));
        }
        let repository = match server.get("repository") {
            None | Some(Value::Null) => None,
            Some(Value::Object(r)) => Some(Repository {
                url: required(r, "url", "repository.")?,
                source: required(r, "source", "repository.")?,
                id: text(r, "id", "repository.")?,
                subfolder: text(r, "subfolder", "repository.")?,
            }),
            Some(_) => return Err("repository must be an object".into()),
        };
        let mut packages = Vec::new();
        let listed = match server.get("packages") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(list)) => list.as_slice(),
            Some(_) => return Err("packages must be an array".into()),
        };
        if listed.len() > MAX_PACKAGES {
            return Err(format!("more than {MAX_PACKAGES} packages"));
        }
        for (i, package) in listed.iter().enumerate() {
            let at = format!("packages[{i}].");
            let package = package
                .as_object()
                .ok_or_else(|| format!("packages[{i}] must be an object"))?;
            let file_sha256 = text(package, "fileSha256", &at)?;
            if let Some(hash) = &file_sha256
                && !is_hex64(hash)
            {
                return Err(format!(
                    "{at}fileSha256 {hash:?} is not 64 lowercase hex digits"
                ));
            }
            packages.push(Package {
                registry_type: required(package, "registryType", &at)?,
                identifier: required(package, "identifier", &at)?,
                version: text(package, "version", &at)?,
                file_sha256,
            });
        }
        packages.sort();
        Ok(Record {
            name: required(server, "name", "")?,
            version: required(server, "version", "")?,
            repository,
            packages,
            status,
        })
    }

    /// The form a lockfile records (sorted keys; absent members left out).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert("version".into(), json!(self.version));
        if let Some(r) = &self.repository {
            let mut repo = Map::new();
            repo.insert("source".into(), json!(r.source));
            repo.insert("url".into(), json!(r.url));
            if let Some(id) = &r.id {
                repo.insert("id".into(), json!(id));
            }
            if let Some(sub) = &r.subfolder {
                repo.insert("subfolder".into(), json!(sub));
            }
            out.insert("repository".into(), Value::Object(repo));
        }
        let packages: Vec<Value> = self
            .packages
            .iter()
            .map(|p| {
                let mut package = Map::new();
                package.insert("identifier".into(), json!(p.identifier));
                package.insert("registryType".into(), json!(p.registry_type));
                if let Some(v) = &p.version {
                    package.insert("version".into(), json!(v));
                }
                if let Some(h) = &p.file_sha256 {
                    package.insert("fileSha256".into(), json!(h));
                }
                Value::Object(package)
            })
            .collect();
        out.insert("packages".into(), Value::Array(packages));
        if let Some(status) = &self.status {
            out.insert("status".into(), json!(status));
        }
        Value::Object(out)
    }

    /// Reads the recorded form back strictly: exactly what [`Record::to_json`] writes.
    pub fn from_json(value: &Value) -> Result<Record, String> {
        let record = Record::from_server_json(&registry_form_as_server_json(value)?)?;
        if record.to_json() != *value {
            return Err("not in the form mcplock writes (members, order of packages)".into());
        }
        Ok(record)
    }

    /// Whether the registry has withdrawn the entry.
    pub fn withdrawn(&self) -> bool {
        matches!(self.status.as_deref(), Some("deprecated" | "deleted"))
    }
}

/// The recorded form with its status moved back under the registry's `_meta`, so one reader
/// reads both forms.
fn registry_form_as_server_json(value: &Value) -> Result<Value, String> {
    let mut map = value
        .as_object()
        .cloned()
        .ok_or("a registry record must be an object")?;
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "name" | "version" | "repository" | "packages" | "status"
        ) {
            return Err(format!("unknown member {key:?}"));
        }
    }
    if let Some(status) = map.remove("status") {
        map.insert("_meta".into(), json!({OFFICIAL: {"status": status}}));
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/peers/mcp-registry-server-json/registry-examples-valid-with-package.json"
        );
        crate::core::json::parse_strict(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn the_registrys_own_example_reads_and_its_record_reads_back() {
        let record = Record::from_server_json(&example()).unwrap();
        assert_eq!(record.name, "io.github.user/local-weather");
        assert_eq!(
            record.packages[0].identifier,
            "@modelcontextprotocol/server-weather"
        );
        assert_eq!(record.status, None);
        assert_eq!(Record::from_json(&record.to_json()), Ok(record));
    }

    #[test]
    fn the_api_answer_gives_the_status_and_a_bad_hash_is_refused() {
        let answer = json!({
            "server": example(),
            "_meta": {OFFICIAL: {"status": "deprecated", "isLatest": true}}
        });
        let record = Record::from_server_json(&answer).unwrap();
        assert!(record.withdrawn());
        assert_eq!(Record::from_json(&record.to_json()), Ok(record));
        let mut bad = example();
        bad["packages"][0]["fileSha256"] = json!("ABC");
        assert!(
            Record::from_server_json(&bad)
                .unwrap_err()
                .contains("fileSha256")
        );
    }
}
