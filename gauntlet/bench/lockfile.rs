//! Benchmark: reading and digest-checking a 10,000-tool lockfile, and canonicalize + digest
//! throughput. Run through `gauntlet/bench/lockfile_bench.sh` (it compares with sha256sum and
//! records peak memory); by itself: `cargo bench --bench lockfile -- generate|read|throughput PATH`.

use mcplock::core::canonical::{Digest, to_canonical};
use mcplock::core::lockfile::{Lockfile, ServerLock};
use mcplock::core::snapshot::{ItemKind, Launch, index_items};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn tool(i: usize) -> Value {
    json!({
        "name": format!("tool_{i:05}"),
        "title": format!("Tool {i}"),
        "description": format!("Tool number {i}. Reads a file from the workspace and returns its text; never writes."),
        "inputSchema": {"type": "object", "properties": {
            "path": {"type": "string", "maxLength": 256, "description": "Workspace-relative path"},
            "ratio": {"type": "number", "maximum": 1.5, "minimum": 0.25},
            "mode": {"type": "string", "enum": ["text", "binary", "auto"]}
        }, "required": ["path"], "additionalProperties": false},
        "outputSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}, "text": {"type": "string"}}},
        "annotations": {"readOnlyHint": true, "destructiveHint": false, "openWorldHint": false},
        "icons": [{"src": "data:image/png;base64,AAAA", "mimeType": "image/png", "sizes": ["16x16"]}],
        "_meta": {"com.example/index": i, "com.example/weight": 0.5}
    })
}

fn generate(tools: usize) -> Vec<u8> {
    generate_with(tools, |_| {})
}

/// The same lockfile with every 20th tool (5%) changed: a description and a schema bound.
fn generate_changed(tools: usize) -> Vec<u8> {
    generate_with(tools, |t| {
        let i = t["_meta"]["com.example/index"].as_u64().unwrap_or(0);
        if i % 20 == 0 {
            t["description"] = json!(format!("Tool number {i}. Reads and writes files anywhere."));
            t["inputSchema"]["properties"]["path"]["maxLength"] = json!(4096);
        }
    })
}

/// The same lockfile with every tool changed (a description).
fn generate_all_changed(tools: usize) -> Vec<u8> {
    generate_with(tools, |t| {
        let i = t["_meta"]["com.example/index"].as_u64().unwrap_or(0);
        t["description"] = json!(format!("Tool number {i}. Reads and writes files anywhere."));
    })
}

fn generate_with(tools: usize, edit: impl Fn(&mut Value)) -> Vec<u8> {
    let server = ServerLock {
        authorization: None,
        artifact: None,
        launch: Launch::Stdio {
            command: "node".into(),
            args: vec!["server.js".into()],
            env_keys: vec![],
            cwd: None,
        },
        server_info: Some(json!({"name": "bench", "version": "1.0.0"})),
        protocol_version: "2025-11-25".into(),
        capabilities: json!({"tools": {"listChanged": true}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        client_capabilities: Map::new(),
        instructions: Some("Benchmark server.".into()),
        tools: index_items(
            ItemKind::Tool,
            (0..tools).map(|i| {
                let mut t = tool(i);
                edit(&mut t);
                t
            }),
        )
        .expect("unique names"),
        prompts: BTreeMap::new(),
        resource_templates: BTreeMap::new(),
        resources: None,
        unserved: Default::default(),
    };
    Lockfile {
        servers: BTreeMap::from([("bench".to_string(), server)]),
        approvals: Vec::new(),
        registry: Default::default(),
    }
    .to_pretty()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(f());
                start.elapsed()
            })
            .collect(),
    )
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (mode, path) = match args.as_slice() {
        [mode, path, ..] => (mode.as_str(), path.as_str()),
        _ => {
            eprintln!(
                "usage: lockfile generate|generate-changed|generate-all-changed|read|throughput|call-policy PATH [TOOLS]"
            );
            std::process::exit(2);
        }
    };
    // How many tools the generated lockfile holds (10,000 unless given).
    let tools: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    match mode {
        "generate" => {
            let bytes = generate(tools);
            std::fs::write(path, &bytes).expect("write lockfile");
            println!("wrote {path}: {} bytes", bytes.len());
        }
        "generate-changed" => {
            let bytes = generate_changed(tools);
            std::fs::write(path, &bytes).expect("write lockfile");
            println!("wrote {path}: {} bytes (5% of tools changed)", bytes.len());
        }
        "generate-all-changed" => {
            let bytes = generate_all_changed(tools);
            std::fs::write(path, &bytes).expect("write lockfile");
            println!("wrote {path}: {} bytes (every tool changed)", bytes.len());
        }
        "read" => {
            let bytes = std::fs::read(path).expect("read lockfile");
            let before = peak_rss_kib();
            let lock = Lockfile::parse(&bytes).expect("valid lockfile");
            let after = peak_rss_kib();
            let tools = lock.servers.values().map(|s| s.tools.len()).sum::<usize>();
            drop(lock);
            let t = time(15, || Lockfile::parse(&bytes).expect("valid lockfile"));
            println!(
                "strict read + every digest checked, {tools} tools, {} bytes: median {:.1} ms; peak RSS {} KiB (file read: {} KiB)",
                bytes.len(),
                t.as_secs_f64() * 1e3,
                after,
                before
            );
        }
        "throughput" => {
            let bytes = std::fs::read(path).expect("read lockfile");
            let value: Value = serde_json::from_slice(&bytes).expect("json");
            let canonical = to_canonical(&value);
            let t_canon = time(15, || Digest::of_bytes(&to_canonical(&value)));
            let t_sha = time(15, || Digest::of_bytes(&canonical));
            let mb = canonical.len() as f64 / 1e6;
            println!(
                "canonicalize + sha256 of the parsed document: {:.1} ms ({:.0} MB/s of canonical output); sha256 alone of the same {} bytes in-process: {:.1} ms ({:.0} MB/s)",
                t_canon.as_secs_f64() * 1e3,
                mb / t_canon.as_secs_f64(),
                canonical.len(),
                t_sha.as_secs_f64() * 1e3,
                mb / t_sha.as_secs_f64()
            );
        }
        "call-policy" => {
            // What the proxy does per tools/call with `--policy`: the input built once, each
            // call judged by compiled call rules (reading the tool, the server and arguments).
            let bytes = std::fs::read(path).expect("read lockfile");
            let lock = Lockfile::parse(&bytes).expect("valid lockfile");
            let policy = mcplock::core::policy::parse_policy(
                "bench.yaml",
                "name: bench\nrules:\n  - id: read-only-relative\n    on: call\n    expr: \"mcp.tool.annotations.readOnlyHint && !mcp.call.arguments.path.startsWith('/')\"\n    message: m\n    severity: error\n  - id: schema-bound\n    on: call\n    expr: \"mcp.tool.inputSchema.properties.path.maxLength <= 256 && mcp.server.name == 'bench'\"\n    message: m\n    severity: error\n",
            )
            .expect("policy");
            let rules = mcplock::core::policy::compile(policy.rules).expect("compiles");
            let input = mcplock::core::policy::Input::new(&lock);
            let (server, entry) = lock.servers.iter().next().expect("a server");
            let names: Vec<&String> = entry.tools.keys().collect();
            let arguments = json!({"path": "docs/readme.md"});
            let calls = 10_000;
            let t = time(5, || {
                for i in 0..calls {
                    let tool = names[i % names.len()];
                    let verdict = mcplock::core::policy::evaluate_call(
                        &rules,
                        &input,
                        mcplock::core::policy::Call::new(server, tool, &arguments),
                        &|| true,
                    );
                    assert!(matches!(verdict, mcplock::core::policy::CallVerdict::Allow));
                }
            });
            println!(
                "call rules (2 rules) on a {}-tool server: {:.2} us per call (median of 5 runs of {calls} calls)",
                names.len(),
                t.as_secs_f64() * 1e6 / calls as f64
            );
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}
