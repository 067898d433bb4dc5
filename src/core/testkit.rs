//! Test support shared by the core's tests: random JSON, random mutations of it, the
//! definitions real servers serve (testdata/listings), and a minimal locked server.

use crate::core::lockfile::ServerLock;
use crate::core::snapshot::{ItemKind, Items, Launch, Snapshot, index_items};

// Shared with the gauntlet, which cannot see this crate's test modules.
#[path = "../../gauntlet/common/mutate.rs"]
mod mutation;
pub use mutation::mutate;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// A locked server `s` (launched as `s`, protocol 2025-11-25, no capabilities) offering
/// `tools`; tests set what else they need with struct update syntax.
pub fn server_lock(tools: Vec<Value>) -> ServerLock {
    ServerLock {
        artifact: None,
        authorization: None,
        launch: Launch::Stdio {
            command: "s".into(),
            args: vec![],
            env_keys: vec![],
            cwd: None,
        },
        server_info: Some(serde_json::json!({"name": "s", "version": "1"})),
        protocol_version: "2025-11-25".into(),
        capabilities: Map::new(),
        client_capabilities: Map::new(),
        instructions: None,
        tools: index_items(ItemKind::Tool, tools).expect("test tools are well-formed"),
        prompts: Items::new(),
        resource_templates: Items::new(),
        resources: None,
        unserved: Default::default(),
    }
}

/// Any JSON value, four levels deep at most.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The recorded snapshots of real servers in testdata/listings (read once per test binary).
pub fn real_snapshots() -> Vec<Snapshot> {
    static CACHE: std::sync::OnceLock<Vec<Snapshot>> = std::sync::OnceLock::new();
    CACHE.get_or_init(read_snapshots).clone()
}

fn read_snapshots() -> Vec<Snapshot> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/listings");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.map(|e| e.path()).unwrap_or_default())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let snapshots: Vec<Snapshot> = files
        .iter()
        .map(|p| {
            let value: Value = serde_json::from_slice(&std::fs::read(p).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Snapshot::from_json(&value).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect();
    assert!(snapshots.len() >= 4, "testdata/listings is missing files");
    snapshots
}

/// Every item definition the recorded real servers serve, with its kind.
pub fn real_definitions() -> &'static [(ItemKind, Map<String, Value>)] {
    static CACHE: std::sync::OnceLock<Vec<(ItemKind, Map<String, Value>)>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(read_definitions)
}

fn read_definitions() -> Vec<(ItemKind, Map<String, Value>)> {
    let mut out = Vec::new();
    for snapshot in real_snapshots() {
        for kind in ItemKind::ALL {
            for def in snapshot
                .items(kind)
                .map(Items::values)
                .into_iter()
                .flatten()
            {
                out.push((kind, def.to_map()));
            }
        }
    }
    out
}
