//! The artifact behind a locked server, against what `testdata/servers/install.sh` installed:
//! a server run from node_modules, one through `npx` from a warm npx cache of our own, a venv
//! console script, one through `uvx` from a uv cache of our own, another version of a package swapped in behind the same launch, a script
//! edited behind an identical tool surface, and a launch that cannot be resolved.

mod common;

use common::*;
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
    assert_eq!(lockfile(d)["lockfileVersion"], 4);
    let artifact = &only_entry(d)["artifact"];
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
