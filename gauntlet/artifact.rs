//! The artifact behind a locked server, against what `testdata/servers/install.sh` installed:
//! a server run from node_modules, one through `npx` from a warm npx cache of our own, a venv
//! console script, one through `uvx` from a uv cache of our own, another version of a package swapped in behind the same launch, a script
//! edited behind an identical tool surface, and a launch that cannot be resolved. Issue 26:
//! files edited inside a locked install (an npm package's own code, site-packages bytecode and
//! start-up hooks, a module beside a script), on copies of the installs, never the shared ones.

use crate::common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);
const EVERYTHING: &str = "@modelcontextprotocol/server-everything";

fn lockfile(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("mcp-lock.json")).unwrap()).unwrap()
}

/// The only server's entry in `dir/mcp-lock.json`.
fn only_entry(dir: &Path) -> Value {
    let doc = lockfile(dir);
    let servers = doc["servers"].as_object().unwrap();
    assert_eq!(servers.len(), 1, "{doc}");
    servers.values().next().unwrap().clone()
}

fn lock(dir: &Path, extra: &[&str], server: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["lock", "--format", "json"];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(server);
    run_in_env(dir, &args, env, T)
}

/// What npm recorded for `name` in the lock metadata of the tree at `root`, read here
/// independently of mcplock: (version, integrity).
fn npm_recorded(root: &Path, name: &str) -> (String, String) {
    let meta: Value =
        serde_json::from_slice(&fs::read(root.join("node_modules/.package-lock.json")).unwrap())
            .unwrap();
    let entry = &meta["packages"][format!("node_modules/{name}")];
    (
        entry["version"].as_str().unwrap().to_string(),
        entry["integrity"].as_str().unwrap().to_string(),
    )
}

fn strict_policy_failures(dir: &Path) -> Vec<String> {
    let run = run_in(
        dir,
        &["policy", "check", "--preset", "strict", "--format", "json"],
        T,
    );
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    run.json()["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["passed"] == false)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_server_run_from_node_modules_is_pinned_by_the_integrity_npm_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = real_component("node/node_modules/.bin/mcp-server-everything");
    lock(d, &[], &[bin.as_str()], &[]).expect_success();
    let (version, integrity) = npm_recorded(&repo().join("testdata/servers/node"), EVERYTHING);
    assert_eq!(lockfile(d)["lockfileVersion"], 5);
    let artifact = &only_entry(d)["artifact"];
    for part in ["package", "dependencies"] {
        let files = artifact["content"][part]["files"].as_u64().unwrap_or(0);
        assert!(files > 0, "{part}: {artifact}");
    }
    assert_eq!(artifact["kind"], "npm", "{artifact}");
    assert_eq!(artifact["name"], EVERYTHING);
    assert_eq!(artifact["version"], version.as_str());
    assert_eq!(artifact["digest"], integrity.as_str());
    assert!(integrity.starts_with("sha512-"), "{integrity}");
    assert_eq!(artifact["pinned"], true);
    // Signed and verified with the artifacts resolved again: the same.
    run_in(d, &["keygen"], T).expect_success();
    run_in(d, &["sign", "--key", "mcplock.key"], T).expect_success();
    let run = run_in(
        d,
        &[
            "verify",
            "--key",
            "mcplock.pub",
            "--artifacts",
            "--format",
            "json",
        ],
        T,
    );
    run.expect_success();
    let report = run.json();
    assert_eq!(report["artifacts"][0]["status"], "same", "{report}");
    assert_eq!(report["artifacts"][0]["now"], *artifact);
    assert!(
        strict_policy_failures(d)
            .iter()
            .all(|id| !id.starts_with("artifact-"))
    );
}

#[test]
fn npx_is_resolved_in_the_cache_npx_runs_from_and_a_floating_spec_is_pinned_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cache = real_component("npx-cache");
    // The tests' own npx cache (warmed by install.sh), and no registry: npx runs what it holds.
    let env = [
        ("npm_config_cache", cache.as_str()),
        ("npm_config_offline", "true"),
    ];
    let exact = format!("{EVERYTHING}@2026.8.31");
    lock(
        d,
        &["--name", "exact"],
        &["npx", "-y", exact.as_str()],
        &env,
    )
    .expect_success();
    let entry = &lockfile(d)["servers"]["exact"];
    // The directory npx installed the spec into says so in its package.json.
    let tree = fs::read_dir(Path::new(&cache).join("_npx"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let manifest: Value =
                serde_json::from_slice(&fs::read(p.join("package.json")).unwrap()).unwrap();
            manifest["_npx"]["packages"] == serde_json::json!([exact.as_str()])
        })
        .expect("install.sh warmed the npx cache");
    let (_, integrity) = npm_recorded(&tree, EVERYTHING);
    assert_eq!(entry["artifact"]["version"], "2026.8.31", "{entry}");
    assert_eq!(entry["artifact"]["digest"], integrity.as_str());
    assert_eq!(entry["artifact"]["pinned"], true);

    // A range floats: recorded, said so, and the strict preset refuses it.
    let range = format!("{EVERYTHING}@>=2026.8.31 <2026.8.32");
    let run = lock(
        d,
        &["--name", "floating"],
        &["npx", "-y", range.as_str()],
        &env,
    );
    run.expect_success();
    assert!(
        run.json()["notes"]
            .to_string()
            .contains("the launch floats"),
        "{}",
        run.stdout
    );
    assert_eq!(
        lockfile(d)["servers"]["floating"]["artifact"]["pinned"],
        false
    );
    assert!(strict_policy_failures(d).contains(&"artifact-is-pinned".to_string()));

    // --pin rewrites the launch to the version it ran and locks that launch.
    let run = lock(
        d,
        &["--name", "floating", "--update", "--pin"],
        &["npx", "-y", range.as_str()],
        &env,
    );
    run.expect_success();
    let entry = &lockfile(d)["servers"]["floating"];
    assert_eq!(
        entry["launch"]["args"],
        serde_json::json!(["-y", exact.as_str()]),
        "{entry}"
    );
    assert_eq!(entry["artifact"]["pinned"], true);
    assert_eq!(entry["artifact"]["digest"], integrity.as_str());
    assert!(
        strict_policy_failures(d)
            .iter()
            .all(|id| !id.starts_with("artifact-"))
    );
}

#[test]
fn a_venv_console_script_is_pinned_by_its_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = sqlite_server(&d.join("db.sqlite"));
    let argv: Vec<&str> = server.iter().map(String::as_str).collect();
    lock(d, &[], &argv, &[]).expect_success();
    let artifact = &only_entry(d)["artifact"];
    assert_eq!(artifact["kind"], "pypi", "{artifact}");
    assert_eq!(artifact["name"], "mcp-server-sqlite");
    assert_eq!(artifact["version"], "2025.4.25");
    assert!(
        artifact["digest"].as_str().unwrap().starts_with("sha256:"),
        "{artifact}"
    );
}

#[test]
fn uvx_is_resolved_in_the_environment_uv_names_and_the_same_wheel_is_the_same_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The tests' own uv cache (warmed by install.sh), its pins, and no index: uv runs what it holds.
    let (cache, pins) = (
        real_component("uv-cache"),
        real_component("sqlite/requirements.txt"),
    );
    let env = [
        ("UV_CACHE_DIR", cache.as_str()),
        ("UV_CONSTRAINT", pins.as_str()),
        ("UV_OFFLINE", "1"),
    ];
    let uvx = real_component("python/.venv/bin/uvx");
    let db = d.join("db.sqlite");
    let db = db.to_str().unwrap();
    let run = lock(
        d,
        &["--name", "uvx"],
        &[uvx.as_str(), "mcp-server-sqlite", "--db-path", db],
        &env,
    );
    run.expect_success();
    assert!(run.stdout.contains("the launch floats"), "{}", run.stdout);
    let floating = lockfile(d)["servers"]["uvx"]["artifact"].clone();
    assert_eq!(floating["kind"], "pypi", "{floating}");
    assert_eq!(floating["version"], "2025.4.25");
    assert_eq!(floating["pinned"], false);

    // The same wheel installed by pip into the sqlite venv is the same artifact: the digest
    // covers what the wheel installed, not how or where.
    let server = sqlite_server(&d.join("venv.sqlite"));
    let argv: Vec<&str> = server.iter().map(String::as_str).collect();
    lock(d, &["--name", "venv"], &argv, &[]).expect_success();
    assert_eq!(
        lockfile(d)["servers"]["venv"]["artifact"]["digest"],
        floating["digest"]
    );

    let run = lock(
        d,
        &["--name", "uvx", "--update", "--pin"],
        &[uvx.as_str(), "mcp-server-sqlite", "--db-path", db],
        &env,
    );
    run.expect_success();
    let entry = &lockfile(d)["servers"]["uvx"];
    assert_eq!(
        entry["launch"]["args"],
        serde_json::json!(["mcp-server-sqlite==2025.4.25", "--db-path", db]),
        "{entry}"
    );
    assert_eq!(entry["artifact"]["pinned"], true);
    assert_eq!(entry["artifact"]["digest"], floating["digest"]);
}

/// The Python SDK host through the proxy, which must refuse before anything starts.
fn proxy_refuses(dir: &Path, server: &[&str]) -> String {
    let mut argv = vec![mcplock_bin(), "proxy", "--key", "mcplock.pub", "--"];
    argv.extend_from_slice(server);
    host_refused(dir, &argv).1
}

fn relaunch_diff(dir: &Path) -> Value {
    let run = run_in(
        dir,
        &["diff", "--key", "mcplock.pub", "--format", "json"],
        T,
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stderr, run.stdout);
    run.json()
}

fn changes_of(report: &Value, class: &str) -> Vec<Value> {
    report["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .filter(|c| c["class"] == class)
        .cloned()
        .collect()
}

#[test]
fn another_version_behind_the_same_launch_is_critical_drift_and_is_not_started() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A project whose node_modules is npm's install of 2026.8.31; the launch is its bin.
    let project = d.join("project");
    fs::create_dir(&project).unwrap();
    let modules = project.join("node_modules");
    std::os::unix::fs::symlink(real_component("node/node_modules"), &modules).unwrap();
    let bin = project.join("node_modules/.bin/mcp-server-everything");
    let bin = bin.to_str().unwrap();
    lock(d, &["--name", "everything"], &[bin], &[]).expect_success();
    run_in(d, &["keygen"], T).expect_success();
    run_in(d, &["sign", "--key", "mcplock.key"], T).expect_success();
    let locked = only_entry(d)["artifact"]["version"].clone();

    // npm installs another version there (node-alt is npm's own install of 2026.8.18).
    fs::remove_file(&modules).unwrap();
    std::os::unix::fs::symlink(real_component("node-alt/node_modules"), &modules).unwrap();
    let run = run_in(d, &["verify", "--key", "mcplock.pub", "--artifacts"], T);
    run.expect_failure(1, "another artifact than the one locked");
    assert!(run.stderr.contains("2026.8.18"), "{}", run.stderr);

    let report = relaunch_diff(d);
    let artifact = changes_of(&report, "artifact-changed");
    assert_eq!(artifact.len(), 1, "{report}");
    assert_eq!(artifact[0]["severity"], "critical");
    assert!(
        artifact[0]["old"]
            .to_string()
            .contains(locked.as_str().unwrap())
    );
    assert!(artifact[0]["new"].to_string().contains("2026.8.18"));

    let stderr = proxy_refuses(d, &[bin]);
    assert!(stderr.contains("another artifact"), "{stderr}");
}

#[test]
fn an_edited_script_behind_an_identical_surface_is_still_critical() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = d.join("server.py");
    fs::copy(real_component("python/pinned_server.py"), &script).unwrap();
    let python = real_component("python/.venv/bin/python");
    let argv = [python.as_str(), script.to_str().unwrap()];
    lock(d, &["--name", "py"], &argv, &[]).expect_success();
    let artifact = only_entry(d)["artifact"].clone();
    assert_eq!(artifact["kind"], "file", "{artifact}");
    assert!(artifact["interpreter"]["digest"].is_string(), "{artifact}");
    run_in(d, &["keygen"], T).expect_success();
    run_in(d, &["sign", "--key", "mcplock.key"], T).expect_success();

    // Same tools, same text, other code: a line that changes nothing the lock pins.
    let mut code = fs::read_to_string(&script).unwrap();
    code.push_str("\n# exfiltrate later\n");
    fs::write(&script, code).unwrap();
    let report = relaunch_diff(d);
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{report}");
    assert_eq!(changes[0]["class"], "artifact-changed");
    assert_eq!(changes[0]["severity"], "critical");
    proxy_refuses(d, &argv);
}

#[test]
fn a_launch_that_cannot_be_resolved_is_recorded_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let everything = everything_server().join(" ");
    let run = lock(
        d,
        &["--name", "inline"],
        &["sh", "-c", &format!("exec {everything}")],
        &[],
    );
    run.expect_success();
    assert!(
        run.json()["notes"].to_string().contains("not pinned"),
        "{}",
        run.stdout
    );
    let artifact = &only_entry(d)["artifact"];
    assert_eq!(artifact["kind"], "unresolved", "{artifact}");
    assert!(
        artifact["reason"].as_str().unwrap().contains("inline code"),
        "{artifact}"
    );
    assert!(strict_policy_failures(d).contains(&"artifact-is-resolved".to_string()));
}

/// The directory `from` (through links: the shared install may be a link) copied into `to`
/// as `cp -a` copies what is inside it (links kept as links, modes and times kept).
fn copy_tree(from: &str, to: &Path) {
    let from = fs::canonicalize(from).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// Tampering is only ever done inside the test's own directory, never to a shared install.
fn assert_private(dir: &Path, path: &Path) {
    let parent = fs::canonicalize(path.parent().unwrap()).unwrap();
    assert!(
        parent.starts_with(fs::canonicalize(dir).unwrap()),
        "{} is outside the test's directory: never tamper with a shared install",
        path.display()
    );
}

fn verify_artifacts(dir: &Path) -> Run {
    run_in(dir, &["verify", "--key", "mcplock.pub", "--artifacts"], T)
}

fn lock_and_sign(dir: &Path, argv: &[&str]) {
    lock(dir, &["--name", "server"], argv, &[]).expect_success();
    run_in(dir, &["keygen"], T).expect_success();
    run_in(dir, &["sign", "--key", "mcplock.key"], T).expect_success();
    verify_artifacts(dir).expect_success();
}

/// Writes `text` to `path` (appends when `append`), runs `verify --artifacts`, which must
/// refuse naming `part`, then puts the file back as it was, and it verifies again.
fn tampered_is_refused(dir: &Path, path: &Path, text: &[u8], append: bool, part: &str) {
    assert_private(dir, path);
    let before = fs::read(path).ok();
    let mut bytes = if append {
        before.clone().unwrap()
    } else {
        vec![]
    };
    bytes.extend_from_slice(text);
    fs::write(path, bytes).unwrap();
    let run = verify_artifacts(dir);
    run.expect_failure(1, "another artifact than the one locked");
    assert!(
        run.stderr
            .contains(&format!("content {part}: locked sha256:")),
        "{}: {}",
        path.display(),
        run.stderr
    );
    match before {
        Some(bytes) => fs::write(path, bytes).unwrap(),
        None => fs::remove_file(path).unwrap(),
    }
    verify_artifacts(dir).expect_success();
}

#[test]
fn issue_26_edited_npm_dist_file_is_an_artifact_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let project = d.join("project");
    fs::create_dir(&project).unwrap();
    copy_tree(&real_component("node/node_modules"), &project);
    let bin = project.join("node_modules/.bin/mcp-server-everything");
    lock_and_sign(d, &[bin.to_str().unwrap()]);
    let package = project.join("node_modules").join(EVERYTHING);
    let (version, integrity) = npm_recorded(&project, EVERYTHING);
    // The package's own code, edited; its version and npm's lock metadata untouched.
    let code = package.join("dist/index.js");
    assert_private(d, &code);
    let mut edited = fs::read(&code).unwrap();
    edited.extend_from_slice(b"\n// exfiltrate later\n");
    fs::write(&code, &edited).unwrap();
    assert_eq!(npm_recorded(&project, EVERYTHING), (version, integrity));
    let run = verify_artifacts(d);
    run.expect_failure(1, "another artifact than the one locked");
    assert!(
        run.stderr.contains("content package: locked"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("artifact-changed") || run.code == 1);
    let stderr = proxy_refuses(d, &[bin.to_str().unwrap()]);
    assert!(stderr.contains("another artifact"), "{stderr}");
    let report = relaunch_diff(d);
    let changes = changes_of(&report, "artifact-changed");
    assert_eq!(changes.len(), 1, "{report}");
    assert_eq!(changes[0]["severity"], "critical");
}

#[test]
fn issue_26_edited_npm_dependency_file_is_an_artifact_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let project = d.join("project");
    fs::create_dir(&project).unwrap();
    copy_tree(&real_component("node/node_modules"), &project);
    let bin = project.join("node_modules/.bin/mcp-server-everything");
    lock_and_sign(d, &[bin.to_str().unwrap()]);
    let sdk = project.join("node_modules/@modelcontextprotocol/sdk/package.json");
    tampered_is_refused(d, &sdk, b" ", true, "dependencies");
}

/// A copy of the Python SDK venv and `pinned_server.py` beside it, locked and signed as
/// `VENV/bin/python SRV/server.py`; returns (site-packages, script directory).
fn locked_python_copy(d: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    copy_tree(&real_component("python/.venv"), &d.join("venv"));
    let srv = d.join("srv");
    fs::create_dir(&srv).unwrap();
    fs::copy(
        real_component("python/pinned_server.py"),
        srv.join("server.py"),
    )
    .unwrap();
    let python = d.join("venv/bin/python");
    let script = srv.join("server.py");
    lock_and_sign(d, &[python.to_str().unwrap(), script.to_str().unwrap()]);
    let artifact = only_entry(d)["artifact"].clone();
    assert_eq!(artifact["kind"], "file", "{artifact}");
    for part in ["script-directory", "site-packages"] {
        assert!(
            artifact["content"][part]["digest"].is_string(),
            "{artifact}"
        );
    }
    let lib = d.join("venv/lib");
    let site = fs::read_dir(&lib).unwrap().next().unwrap().unwrap().path();
    (site.join("site-packages"), srv)
}

#[test]
fn issue_26_replaced_pyc_in_site_packages_is_an_artifact_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (site, _) = locked_python_copy(d);
    let cache = site.join("mcp/__pycache__");
    let pyc = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("__init__.cpython"))
        .expect("pip compiled mcp/__init__.py");
    // Listed in RECORD without a hash: pip writes bytecode after the wheel's files.
    tampered_is_refused(d, &pyc, b"\0", true, "site-packages");
}

#[test]
fn issue_26_added_pth_or_sitecustomize_in_site_packages_is_an_artifact_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (site, _) = locked_python_copy(d);
    let hook = b"import os; os.system('touch /tmp/pwned')\n";
    for name in ["zz-evil.pth", "sitecustomize.py", "usercustomize.py"] {
        tampered_is_refused(d, &site.join(name), hook, false, "site-packages");
    }
}

#[test]
fn issue_26_module_beside_a_plain_script_shadowing_the_standard_library_is_an_artifact_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let srv = d.join("srv");
    fs::create_dir(&srv).unwrap();
    let script = srv.join("server.py");
    fs::copy(real_component("python/pinned_server.py"), &script).unwrap();
    let python = real_component("python/.venv/bin/python");
    let argv = [python.as_str(), script.to_str().unwrap()];
    lock_and_sign(d, &argv);
    // Data beside the script is not imported: still the same artifact.
    fs::write(srv.join("notes.txt"), "not code").unwrap();
    verify_artifacts(d).expect_success();
    // `json.py` beside the script comes first on sys.path: it shadows the standard library.
    let shadow = srv.join("json.py");
    fs::write(&shadow, "import os; os.system('touch /tmp/pwned')\n").unwrap();
    let run = verify_artifacts(d);
    run.expect_failure(1, "another artifact than the one locked");
    assert!(
        run.stderr.contains("content script-directory: locked"),
        "{}",
        run.stderr
    );
    let stderr = proxy_refuses(d, &argv);
    assert!(stderr.contains("another artifact"), "{stderr}");
    fs::remove_file(&shadow).unwrap();
    verify_artifacts(d).expect_success();
}

#[test]
fn issue_26_a_version_4_lock_reads_as_content_not_pinned_with_a_warning() {
    use mcplock::core::artifact::Artifact;
    use mcplock::core::lockfile::Lockfile;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = real_component("node/node_modules/.bin/mcp-server-everything");
    lock(d, &[], &[bin.as_str()], &[]).expect_success();
    // What mcplock wrote before issue 26: the same artifact without its content (version 4).
    let mut old = Lockfile::parse(&fs::read(d.join("mcp-lock.json")).unwrap()).unwrap();
    for server in old.servers.values_mut() {
        if let Some(Artifact::Resolved(r)) = &mut server.artifact {
            r.content = None;
        }
    }
    fs::write(d.join("mcp-lock.json"), old.to_pretty()).unwrap();
    assert_eq!(lockfile(d)["lockfileVersion"], 4);
    run_in(d, &["keygen"], T).expect_success();
    run_in(d, &["sign", "--key", "mcplock.key"], T).expect_success();
    let run = run_in(
        d,
        &[
            "verify",
            "--key",
            "mcplock.pub",
            "--artifacts",
            "--format",
            "json",
        ],
        T,
    );
    run.expect_success();
    assert_eq!(
        run.json()["artifacts"][0]["status"],
        "content-not-pinned",
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("not the files that run") && run.stderr.contains("lock --update"),
        "{}",
        run.stderr
    );
    // Re-locking records the content: info drift, then version 5.
    let run = lock(d, &["--update"], &[bin.as_str()], &[]);
    run.expect_success();
    assert_eq!(lockfile(d)["lockfileVersion"], 5);
}

/// A stdio MCP server of the standard library only, whose one tool answers `text`.
fn race_server(text: &str) -> String {
    format!(
        r#"import json, sys
TEXT = {text:?}
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    method = msg.get("method")
    if method == "initialize":
        result = {{"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {{"tools": {{}}}}, "serverInfo": {{"name": "race", "version": "1"}}}}
    elif method == "tools/list":
        result = {{"tools": [{{"name": "t", "inputSchema": {{"type": "object"}}}}]}}
    elif method == "tools/call":
        result = {{"content": [{{"type": "text", "text": TEXT}}]}}
    else:
        print(json.dumps({{"jsonrpc": "2.0", "id": msg["id"], "error": {{"code": -32601, "message": "no"}}}}), flush=True)
        continue
    print(json.dumps({{"jsonrpc": "2.0", "id": msg["id"], "result": result}}), flush=True)
"#
    )
}

/// One start of the proxy on `python3 server.py` in `dir`: the text its tool answered, or
/// `None` when the proxy refused to start the server.
fn one_proxied_call(dir: &Path) -> Option<String> {
    proxied_call_with_path(dir, None).ok()
}

#[test]
fn issue_26_a_script_swapped_between_its_check_and_its_start_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sources = tempfile::tempdir().unwrap();
    let good = sources.path().join("good.py");
    let bad = sources.path().join("bad.py");
    fs::write(&good, race_server("approved")).unwrap();
    fs::write(&bad, race_server("tampered")).unwrap();
    fs::copy(&good, d.join("server.py")).unwrap();
    lock(d, &[], &["python3", "server.py"], &[]).expect_success();
    // Someone swaps the script for another and back, as fast as they can, while the proxy
    // starts it again and again (each swap an atomic rename: every read sees one whole file).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = std::sync::Arc::clone(&stop);
        let d = d.to_path_buf();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let from = if swaps.is_multiple_of(2) { &bad } else { &good };
                let temp = d.join(".server.py.swap");
                fs::copy(from, &temp).unwrap();
                fs::rename(&temp, d.join("server.py")).unwrap();
                swaps += 1;
                std::thread::sleep(Duration::from_micros(300));
            }
            swaps
        })
    };
    let mut answers = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..150 {
        let answer = one_proxied_call(d).unwrap_or_else(|| "(refused)".into());
        *answers.entry(answer).or_default() += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = flipper.join().unwrap();
    assert!(swaps > 150, "the script was swapped only {swaps} times");
    // What runs is what was checked: never the tampered script, and starts do happen.
    assert_eq!(answers.get("tampered"), None, "{answers:?}");
    assert!(
        answers.get("approved").is_some_and(|n| *n > 0),
        "{answers:?}"
    );
}

/// Starts the proxy on `argv` (locked in `dir`) and waits for its server to answer initialize;
/// the proxy and the host end of its stdin.
fn started_proxy(
    dir: &Path,
    argv: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, std::process::ChildStdin) {
    use std::io::{BufRead, Write};
    let mut child = std::process::Command::new(mcplock_bin())
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(["proxy", "--allow-unsigned", "--"])
        .args(argv)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("\"result\""), "{line}");
    (child, stdin)
}

/// Starts the proxy on `argv` (locked in `dir`), waits for its server to answer initialize,
/// and returns the server process's command line as /proc shows it.
fn proxied_server_cmdline(dir: &Path, argv: &[&str], env: &[(&str, &str)]) -> String {
    let (mut child, stdin) = started_proxy(dir, argv, env);
    let proxy = child.id().to_string();
    let cmdline = fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    == Some(proxy.as_str())
            })
        })
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .next()
        .unwrap_or_default();
    drop(stdin);
    let _ = child.wait();
    cmdline
}

/// The private copies in `base`.
fn private_copies(base: &Path) -> Vec<std::path::PathBuf> {
    let mut copies: Vec<_> = fs::read_dir(base)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("mcplock-run-"))
        })
        .collect();
    copies.sort();
    copies
}

#[test]
fn a_private_copy_left_by_a_killed_proxy_is_removed_by_the_next_start() {
    // A copy of a virtual environment is about 100 MB: copies left by killed proxies once
    // filled a disk.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runtime = tempfile::tempdir().unwrap();
    let env = [("XDG_RUNTIME_DIR", runtime.path().to_str().unwrap())];
    let db = d.join("db.sqlite");
    let sqlite = sqlite_server(&db);
    let sqlite: Vec<&str> = sqlite.iter().map(String::as_str).collect();
    lock(d, &[], &sqlite, &[]).expect_success();

    let (mut killed, _stdin) = started_proxy(d, &sqlite, &env);
    let _ = killed.kill(); // SIGKILL: nothing of the proxy runs after it.
    let _ = killed.wait();
    let left = private_copies(runtime.path());
    assert_eq!(left.len(), 1, "{left:?}");

    let (mut next, stdin) = started_proxy(d, &sqlite, &env);
    let now = private_copies(runtime.path());
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, left, "the killed proxy's copy is still there");
    drop(stdin);
    let _ = next.wait();
    assert_eq!(
        private_copies(runtime.path()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn issue_26_real_servers_run_from_the_private_copy_that_was_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let everything = real_component("node/node_modules/.bin/mcp-server-everything");
    let db = d.join("db.sqlite");
    let sqlite = sqlite_server(&db);
    let sqlite: Vec<&str> = sqlite.iter().map(String::as_str).collect();
    let cache = real_component("npx-cache");
    let npx = vec![
        "npx",
        "-y",
        "@modelcontextprotocol/server-everything@2026.8.31",
    ];
    let npx_env = [("npm_config_cache", cache.as_str())];
    let (uv_cache, pins) = (
        real_component("uv-cache"),
        real_component("sqlite/requirements.txt"),
    );
    let uvx_env = [
        ("UV_CACHE_DIR", uv_cache.as_str()),
        ("UV_CONSTRAINT", pins.as_str()),
        ("UV_OFFLINE", "1"),
    ];
    let uvx = real_component("python/.venv/bin/uvx");
    let uvx_db = d.join("uvx.sqlite");
    let uvx_argv = vec![
        uvx.as_str(),
        "mcp-server-sqlite",
        "--db-path",
        uvx_db.to_str().unwrap(),
    ];
    for (argv, env) in [
        (vec![everything.as_str()], &[][..]),
        (sqlite, &[][..]),
        (npx, &npx_env[..]),
        (uvx_argv, &uvx_env[..]),
    ] {
        // A directory (and lockfile) per launch: two of them are the same server.
        let case = tempfile::tempdir().unwrap();
        let d = case.path();
        lock(d, &[], &argv, env).expect_success();
        let cmdline = proxied_server_cmdline(d, &argv, env);
        let run_dir = cmdline
            .split_whitespace()
            .find_map(|word| {
                let at = word.find("/mcplock-run-")?;
                let end = word[at + 1..].find('/').map_or(word.len(), |e| at + 1 + e);
                Some(word[..end].to_string())
            })
            .unwrap_or_else(|| panic!("{argv:?} ran as {cmdline:?}, not from a private copy"));
        // The private copy is gone with its session.
        assert!(
            !Path::new(&run_dir).exists(),
            "{run_dir} outlived its session"
        );
    }
}

/// One start of the proxy on `python3 server.py` in `dir` (with `path` as PATH when given): the
/// text its tool answered, or the error the host got.
fn proxied_call_with_path(dir: &Path, path: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut command = std::process::Command::new(mcplock_bin());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let mut child = command
        .current_dir(dir)
        .args(["proxy", "--allow-unsigned", "--", "python3", "server.py"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let requests = [
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"shim","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","arguments":{}}}"#,
    ];
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut answer = Err("no answer".to_string());
    for request in requests {
        if writeln!(stdin, "{request}").is_err() {
            break;
        }
        if request.contains("\"id\"") {
            let Some(Ok(line)) = lines.next() else { break };
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("error").is_some() {
                answer = Err(message["error"]["message"].to_string());
                break;
            }
            if let Some(text) = message["result"]["content"][0]["text"].as_str() {
                answer = Ok(text.to_string());
            }
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    answer.map_err(|e| format!("{e}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// Issue 27: a server locked from a shell whose `python3` is a version manager's shim (pyenv
/// style: `ROOT/shims/python3` running `pyenv exec`) records what the shim runs, so the proxy
/// started by a host whose PATH finds that interpreter directly runs it, as it does from the
/// shell, and is never refused for the PATH it was started with.
#[test]
fn issue_27_a_version_manager_shim_is_resolved_to_what_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("server.py"), race_server("approved")).unwrap();
    // The interpreter the shim stands for: the one the Python test environment is built on.
    let python = fs::canonicalize(real_component("python/.venv/bin/python")).unwrap();
    let python = python.to_str().unwrap().to_string();
    let tools = tempfile::tempdir().unwrap();
    let root = tools.path().join(".pyenv");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("shims")).unwrap();
    let pyenv = root.join("bin/pyenv");
    fs::write(
        &pyenv,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  which) echo {python} ;;\n  exec) shift 2; exec {python} \"$@\" ;;\n  *) exit 1 ;;\nesac\n"
        ),
    )
    .unwrap();
    let shim = root.join("shims/python3");
    fs::write(
        &shim,
        format!("#!/bin/sh\nexec {} exec python3 \"$@\"\n", pyenv.display()),
    )
    .unwrap();
    // The host's PATH finds the interpreter itself.
    let host_bin = tools.path().join("host-bin");
    fs::create_dir_all(&host_bin).unwrap();
    std::os::unix::fs::symlink(&python, host_bin.join("python3")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    for f in [&pyenv, &shim] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let base = "/usr/bin:/bin";
    let shell_path = format!("{}:{base}", root.join("shims").display());
    let host_path = format!("{}:{base}", host_bin.display());

    lock(d, &[], &["python3", "server.py"], &[("PATH", &shell_path)]).expect_success();
    let artifact = &only_entry(d)["artifact"];
    assert_eq!(
        artifact["interpreter"]["name"], python,
        "the lock records what the shim runs: {artifact}"
    );
    assert_eq!(
        proxied_call_with_path(d, Some(&host_path)).as_deref(),
        Ok("approved")
    );
    assert_eq!(
        proxied_call_with_path(d, Some(&shell_path)).as_deref(),
        Ok("approved")
    );
    // A host whose PATH finds another python3 (here a copy elsewhere): refused, saying why.
    let other_bin = tools.path().join("other-bin");
    fs::create_dir_all(&other_bin).unwrap();
    fs::copy(&python, other_bin.join("python3")).unwrap();
    let other_path = format!("{}:{base}", other_bin.display());
    let refused = proxied_call_with_path(d, Some(&other_path)).unwrap_err();
    assert!(
        refused.contains("the PATH differs") && refused.contains("absolute path"),
        "{refused}"
    );
}

/// Issue 27: `lock --host --pin` pins a host's floating `npx` launch in the host's own config,
/// wrapped or not: refused for a server already locked until --update, the change shown, the
/// proxy kept, the pinned launch locked, and the loop clean after it (hosts, lock --check,
/// unwrap keeping the pin).
#[test]
fn issue_27_lock_host_pin_pins_a_hosts_floating_launch_in_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    fs::create_dir_all(&home).unwrap();
    let cache = real_component("npx-cache");
    let range = format!("{EVERYTHING}@>=2026.8.31 <2026.8.32");
    let exact = format!("{EVERYTHING}@2026.8.31");
    let config = d.join(".cursor/mcp.json");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let original = format!(
        "{{\n  \"mcpServers\": {{\n    \"everything\": {{\"command\": \"npx\", \"args\": [\"-y\", \"{range}\"]}}\n  }}\n}}\n"
    );
    fs::write(&config, &original).unwrap();
    let home_env = home.to_str().unwrap();
    let env = [
        ("HOME", home_env),
        ("npm_config_cache", cache.as_str()),
        ("npm_config_offline", "true"),
    ];
    let mcplock = |args: &[&str]| run_in_env(d, args, &env, T);

    let run = mcplock(&["lock", "--host", "cursor", "--format", "json"]);
    run.expect_success();
    assert_eq!(
        lockfile(d)["servers"]["everything"]["artifact"]["pinned"],
        false
    );
    mcplock(&["wrap", "--host", "cursor", "--allow-unsigned"]).expect_success();
    let wrapped = fs::read_to_string(&config).unwrap();

    // Locked floating: pinning would change the locked launch, so it needs --update.
    let run = mcplock(&["lock", "--host", "cursor", "--pin", "--format", "json"]);
    run.expect_success();
    assert!(
        run.json()["notes"].to_string().contains("--pin --update"),
        "{}",
        run.stdout
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), wrapped);

    let run = mcplock(&["lock", "--host", "cursor", "--pin", "--update"]);
    run.expect_success();
    assert!(
        run.stdout.contains(&format!("-        \"{range}\""))
            && run.stdout.contains(&format!("+        \"{exact}\""))
            && run.stdout.contains("1 launch(es) pinned"),
        "the change is shown: {}",
        run.stdout
    );
    let now: Value = serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    let args: Vec<&str> = now["mcpServers"]["everything"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "proxy", "still wrapped: {args:?}");
    assert_eq!(&args[args.len() - 3..], ["npx", "-y", exact.as_str()]);
    let entry = &lockfile(d)["servers"]["everything"];
    assert_eq!(
        entry["launch"]["args"],
        serde_json::json!(["-y", exact.as_str()])
    );
    assert_eq!(entry["artifact"]["pinned"], true);

    // The loop is clean after it: the host runs what is locked, through the proxy.
    let run = mcplock(&["hosts", "--host", "cursor", "--format", "json"]);
    run.expect_success();
    assert!(run.stdout.contains("\"wrapped\""), "{}", run.stdout);
    mcplock(&["lock", "--host", "cursor", "--check"]).expect_success();
    // Unwrapping keeps the pin (the wrap record was pinned too): no "edited" refusal.
    mcplock(&["unwrap", "--host", "cursor"]).expect_success();
    let unwrapped = fs::read_to_string(&config).unwrap();
    assert_eq!(unwrapped, original.replace(&range, &exact));
}
