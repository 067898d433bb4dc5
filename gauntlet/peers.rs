//! Other tools' formats (issue 32): our lock exported as mcp-lock/1 and held to what others
//! check it with: ToolPin's own published JSON Schema for the format, and each digest
//! recomputed outside mcplock (Python's json and hashlib) from the servers' own listings.

use crate::common::{real_component, repo, run_in};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// Checks `export` in Python, independently of mcplock: the document against ToolPin's schema,
/// each entry's integrity, its surface hash from `listings` (server name: scan snapshot file),
/// and its config digest from the lockfile's launch; and each scanned tool's SEP-3140 content
/// hash in the scan's `contentHashes`. Prints "ok" or fails.
const CHECK: &str = r#"
import base64, hashlib, json, sys
import jsonschema
schema, exported, lockfile, listings = sys.argv[1:5]
doc = json.load(open(exported))
jsonschema.Draft202012Validator(json.load(open(schema))).validate(doc)
canon = lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
digest = lambda v: "sha256-" + base64.b64encode(hashlib.sha256(canon(v)).digest()).decode()
lock = json.load(open(lockfile))
scans = json.loads(listings)
for entry in doc["entries"]:
    body = {k: v for k, v in entry.items() if k != "integrity"}
    assert entry["integrity"] == digest(body), entry["name"]
    tools = json.load(open(scans[entry["name"]]))["tools"]
    records = sorted(({k: t[k] for k in ("name", "description", "inputSchema") if k in t} for t in tools), key=lambda r: r["name"])
    assert entry["surface"]["hash"] == digest(records), entry["name"]
    assert entry["surface"]["toolCount"] == len(tools)
    assert entry["configDigest"] == digest(lock["servers"][entry["name"]]["launch"]), entry["name"]
    assert entry["extensions"]["dev.mcplock"]["digest"] == lock["servers"][entry["name"]]["digest"]
for name, path in scans.items():
    scan = json.load(open(path))
    for tool in scan["tools"]:
        body = {k: v for k, v in tool.items() if k != "contentHash"}
        sep3140 = "sha256-" + base64.urlsafe_b64encode(hashlib.sha256(canon(body)).digest()).decode().rstrip("=")
        assert scan["contentHashes"]["tools"][tool["name"]] == sep3140, (name, tool["name"])
print("ok")
"#;

#[test]
fn a_lock_is_exported_as_mcp_lock_1_that_its_own_schema_and_an_independent_check_accept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A package (npm), a remote server over https, and a script (which mcp-lock/1 cannot hold).
    let everything = real_component("node/node_modules/.bin/mcp-server-everything");
    let tls = d.join("tls");
    std::fs::create_dir(&tls).unwrap();
    let remote = crate::common::remote::hostile_https("tools", &tls);
    let remote_url = format!("https://127.0.0.1:{}/mcp", remote.port);
    let ca = tls.join("ca.pem").to_string_lossy().into_owned();
    let script = d.join("server.py");
    std::fs::write(
        &script,
        "from mcp.server.mcpserver import MCPServer\ns = MCPServer(name='script')\n@s.tool()\ndef hi() -> str:\n    \"\"\"Say hi.\"\"\"\n    return 'hi'\ns.run()\n",
    )
    .unwrap();
    let python = real_component("python/.venv/bin/python");
    let servers: [(&str, Vec<String>); 3] = [
        (
            "everything",
            vec!["--".into(), everything.clone(), "stdio".into()],
        ),
        (
            "remote",
            vec![
                "--url".into(),
                remote_url.clone(),
                "--cacert".into(),
                ca.clone(),
            ],
        ),
        (
            "script",
            vec![
                "--".into(),
                python.clone(),
                script.to_string_lossy().into_owned(),
            ],
        ),
    ];
    let mut listings = serde_json::Map::new();
    for (name, server) in &servers {
        let mut lock = vec!["lock", "--name", name];
        let mut scan = vec!["scan", "--format", "json"];
        let (flags, command): (Vec<&str>, Vec<&str>) = {
            let all: Vec<&str> = server.iter().map(String::as_str).collect();
            match all.iter().position(|a| *a == "--") {
                Some(at) => (all[..at].to_vec(), all[at..].to_vec()),
                None => (all.clone(), Vec::new()),
            }
        };
        lock.extend(&flags);
        lock.extend(&command);
        scan.extend(&flags);
        scan.extend(&command);
        run_in(d, &lock, T).expect_success();
        let scanned = run_in(d, &scan, T);
        scanned.expect_success();
        let file = d.join(format!("{name}.scan.json"));
        std::fs::write(&file, &scanned.stdout).unwrap();
        listings.insert(name.to_string(), file.to_string_lossy().into_owned().into());
    }
    let args = [
        "export",
        "--format",
        "mcp-lock/1",
        "--at",
        "2026-12-08T10:00:00Z",
        "-o",
        "v1.json",
    ];
    let exported = run_in(d, &args, T);
    exported.expect_success();
    // What could not be carried is said, server by server.
    assert!(
        exported.stderr.contains("script: left out: it runs a file"),
        "{}",
        exported.stderr
    );
    assert!(
        exported
            .stderr
            .contains("everything: exported without its 4 prompts"),
        "{}",
        exported.stderr
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(d.join("v1.json")).unwrap()).unwrap();
    let names: Vec<&str> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["everything", "remote"]);
    assert_eq!(doc["entries"][1]["target"]["url"], remote_url.as_str());
    // mcplock's own reading of the format finds nothing wrong with it either.
    assert_eq!(
        mcplock::core::peers::mcp_lock_v1::validate(&doc),
        Vec::new(),
        "{doc}"
    );
    // Checked outside mcplock.
    let schema =
        repo().join("testdata/peers/toolpin-mcp-lock-1/schemas/mcp-lockfile-v1.schema.json");
    let checked = std::process::Command::new(&python)
        .args(["-c", CHECK])
        .arg(&schema)
        .arg(d.join("v1.json"))
        .arg(d.join("mcp-lock.json"))
        .arg(Value::Object(listings).to_string())
        .output()
        .unwrap();
    assert!(
        checked.status.success() && String::from_utf8_lossy(&checked.stdout).contains("ok"),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // The same lock and time give the same bytes.
    let again = run_in(
        d,
        &[
            "export",
            "--format",
            "mcp-lock/1",
            "--at",
            "2026-12-08T10:00:00Z",
        ],
        T,
    );
    again.expect_success();
    assert_eq!(
        again.stdout.as_bytes(),
        std::fs::read(d.join("v1.json")).unwrap()
    );
}
