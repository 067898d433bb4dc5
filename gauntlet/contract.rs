//! The output contract, end to end: every subcommand, given a bad input in JSON mode, prints one
//! JSON document on stdout with a documented code and the matching exit status; every
//! subcommand's `--help` is a golden snapshot; completions and man pages cover every command.

use crate::common::mcplock_bin;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs mcplock in `dir` with a HOME of its own (no host config of the machine leaks in) and a
/// fixed terminal width.
fn mcplock(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(mcplock_bin())
        .current_dir(dir)
        .args(args)
        .env("HOME", dir)
        .env("COLUMNS", "100")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("APPDATA")
        .stdin(Stdio::null())
        .output()
        .expect("start mcplock");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every code docs/exit-codes.md documents, with its exit status.
fn documented_codes() -> BTreeMap<String, i32> {
    let docs = std::fs::read_to_string(crate::common::repo().join("docs/exit-codes.md")).unwrap();
    let table = docs.split("\n## Codes\n").nth(1).expect("a Codes section");
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            (
                cells[0]
                    .trim_start_matches("| `")
                    .trim_end_matches('`')
                    .to_string(),
                cells[1].parse().expect("an exit status"),
            )
        })
        .collect()
}

/// Every leaf command path of the clap model (`["policy", "check"]`, `["scan"]`, ...).
fn leaf_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, at: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = at.to_vec();
            path.push(sub.get_name().to_string());
            if sub.has_subcommands() {
                walk(sub, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut root = mcplock::cli::command();
    root.build();
    let mut out = Vec::new();
    walk(&root, &[], &mut out);
    out
}

/// A bad input for each leaf command, and the code it must be refused with.
fn bad_inputs() -> BTreeMap<&'static str, (Vec<&'static str>, &'static str)> {
    BTreeMap::from([
        (
            "scan",
            (vec!["scan", "--", "/nonexistent/server"], "server-failed"),
        ),
        (
            "lock",
            (vec!["lock", "--", "/nonexistent/server"], "server-failed"),
        ),
        (
            "hosts",
            (
                vec!["hosts", "--host", "no-such-host"],
                "host-config-invalid",
            ),
        ),
        // No JSON output at all: the refusal is the document.
        (
            "wrap",
            (vec!["wrap", "--allow-unsigned"], "format-unsupported"),
        ),
        ("unwrap", (vec!["unwrap"], "format-unsupported")),
        (
            "proxy",
            (
                vec!["proxy", "--allow-unsigned", "--", "x"],
                "format-unsupported",
            ),
        ),
        (
            "completions",
            (vec!["completions", "bash"], "format-unsupported"),
        ),
        ("man", (vec!["man"], "format-unsupported")),
        (
            "revoke",
            (
                vec![
                    "revoke", "--server", "s", "--tool", "t", "--prompt", "p", "--reason", "r",
                ],
                "usage",
            ),
        ),
        (
            "approve",
            (
                vec![
                    "approve", "--server", "s", "--tool", "t", "--by", "a", "--reason", "r",
                ],
                "input-missing",
            ),
        ),
        (
            "keygen",
            (
                vec!["keygen", "--private", "taken", "--public", "p"],
                "output-exists",
            ),
        ),
        (
            "sign",
            (
                vec!["sign", "missing.json", "--key", "taken"],
                "key-invalid",
            ),
        ),
        ("canonical", (vec!["canonical", "bad.json"], "json-invalid")),
        (
            "verify",
            (vec!["verify", "bad.json", "--key", "taken"], "json-invalid"),
        ),
        ("diff", (vec!["diff", "only-one.json"], "usage")),
        (
            "review",
            (
                vec!["review", "--lockfile", "missing.json"],
                "input-missing",
            ),
        ),
        (
            "policy check",
            (
                vec!["policy", "check", "--preset", "nope"],
                "policy-invalid",
            ),
        ),
        (
            "policy explain",
            (
                vec!["policy", "explain", "--policy", "missing.yaml"],
                "input-missing",
            ),
        ),
        (
            "policy presets",
            (vec!["policy", "presets", "--bogus"], "usage"),
        ),
        (
            "bundle export",
            (
                vec!["bundle", "export", "--lockfile", "missing.json"],
                "usage",
            ),
        ),
        (
            "bundle verify",
            (vec!["bundle", "verify", "missing.zip"], "input-missing"),
        ),
        (
            "gateway token",
            (
                vec![
                    "gateway",
                    "token",
                    "--agents",
                    "agents.json",
                    "--agent",
                    "bad name",
                ],
                "usage",
            ),
        ),
        (
            "gateway subject",
            (
                vec![
                    "gateway",
                    "subject",
                    "--agents",
                    "agents.json",
                    "--agent",
                    "ci",
                    "--subject",
                    "ci",
                    "--grant",
                    "bad grant",
                ],
                "usage",
            ),
        ),
        (
            "audit verify",
            (vec!["audit", "verify", "missing.jsonl"], "input-missing"),
        ),
        (
            "import",
            (vec!["import", "missing-warden.lock"], "input-missing"),
        ),
        // Its output is another tool's file: --format json is refused, naming mcp-lock/1.
        (
            "export",
            (
                vec!["export", "--lockfile", "missing.json"],
                "format-unsupported",
            ),
        ),
    ])
}

#[test]
fn every_subcommand_refuses_bad_input_with_one_json_document_and_a_documented_code() {
    let codes = documented_codes();
    let cases = bad_inputs();
    let leaves: Vec<String> = leaf_paths().iter().map(|p| p.join(" ")).collect();
    for leaf in &leaves {
        assert!(
            cases.contains_key(leaf.as_str()),
            "no bad-input case for `{leaf}`"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("taken"), "x").unwrap();
    std::fs::write(dir.path().join("bad.json"), "{\"a\": 1, \"a\": 2}").unwrap();
    for (leaf, (args, expected)) in &cases {
        assert!(
            leaves.contains(&leaf.to_string()),
            "`{leaf}` is not a command"
        );
        // `--format json` before the argv (a global flag) and, for the rest, after it.
        for placement in [0, 1] {
            let mut argv: Vec<&str> = args.clone();
            let at = if placement == 0 {
                0
            } else {
                argv.iter().position(|a| *a == "--").unwrap_or(argv.len())
            };
            argv.splice(at..at, ["--format", "json"]);
            let (status, stdout, stderr) = mcplock(dir.path(), &argv);
            let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
                panic!("`mcplock {argv:?}`: stdout is not one JSON document ({e}):\n{stdout}")
            });
            let code = doc["error"]["code"].as_str().unwrap_or_default();
            assert_eq!(
                code, *expected,
                "`mcplock {argv:?}`: {doc}\nstderr: {stderr}"
            );
            let exit = codes.get(code).copied();
            assert_eq!(
                exit,
                Some(status),
                "`{code}` is documented with another exit status"
            );
            assert_eq!(doc["error"]["exitCode"], status, "{doc}");
            assert!(
                !doc["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty()
            );
            // People still read it on stderr.
            assert!(
                stderr.contains("mcplock") || stderr.contains("error"),
                "{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

#[test]
fn every_subcommand_with_json_output_answers_with_one_json_document_when_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty.jsonl"), "").unwrap();
    let fixture = [
        crate::common::fixture_bin(),
        "--tools",
        "2",
        "--name",
        "fixture",
    ];
    let with_fixture = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(fixture.iter())
            .map(|s| s.to_string())
            .collect()
    };
    // In order: each may use what the ones before it wrote.
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "keygen",
            vec!["keygen", "--private", "k.key", "--public", "k.pub"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        ("lock", with_fixture(&["lock", "--"])),
        ("scan", with_fixture(&["scan", "--"])),
        (
            "approve",
            [
                "approve",
                "--server",
                "fixture",
                "--tool",
                "tool_00000",
                "--by",
                "a",
                "--reason",
                "r",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "sign",
            ["sign", "mcp-lock.json", "--key", "k.key"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "verify",
            ["verify", "mcp-lock.json", "--key", "k.pub"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "canonical",
            ["canonical", "mcp-lock.json"].map(String::from).to_vec(),
        ),
        (
            "diff",
            ["diff", "mcp-lock.json", "mcp-lock.json"]
                .map(String::from)
                .to_vec(),
        ),
        ("hosts", ["hosts"].map(String::from).to_vec()),
        (
            "review",
            ["review", "--lockfile", "mcp-lock.json"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "revoke",
            [
                "revoke",
                "--server",
                "other",
                "--reason",
                "r",
                "--list",
                "revoked.json",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "policy presets",
            ["policy", "presets"].map(String::from).to_vec(),
        ),
        (
            "policy check",
            ["policy", "check", "--preset", "baseline"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "policy explain",
            ["policy", "explain", "--preset", "strict"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "bundle export",
            [
                "bundle",
                "export",
                "--lockfile",
                "mcp-lock.json",
                "--key",
                "k.key",
                "-o",
                "b.zip",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "bundle verify",
            ["bundle", "verify", "b.zip", "--key", "k.pub"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "gateway token",
            [
                "gateway",
                "token",
                "--agents",
                "agents.json",
                "--agent",
                "ci",
                "--grant",
                "fixture",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "gateway subject",
            [
                "gateway",
                "subject",
                "--agents",
                "agents.json",
                "--agent",
                "ci-bot",
                "--subject",
                "ci",
                "--grant",
                "fixture",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "audit verify",
            ["audit", "verify", "empty.jsonl"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "import",
            vec![
                "import".to_string(),
                crate::common::repo()
                    .join("testdata/peers/mcp-warden/tests/fixtures/clean.warden.lock")
                    .to_string_lossy()
                    .into_owned(),
                "-o".to_string(),
                "imported-draft.json".to_string(),
            ],
        ),
    ];
    let leaves: Vec<String> = leaf_paths().iter().map(|p| p.join(" ")).collect();
    for leaf in &leaves {
        let json = mcplock::cli::formats_for(
            leaf.split(' ').next().unwrap_or_default(),
            leaf.split(' ').nth(1),
        )
        .contains(&mcplock::cli::Format::Json);
        let covered = cases.iter().any(|(name, _)| name == leaf);
        assert_eq!(
            json, covered,
            "`{leaf}`: has JSON output {json}, has a success case {covered}"
        );
    }
    for (name, args) in &cases {
        let mut argv: Vec<&str> = vec!["--format", "json"];
        argv.extend(args.iter().map(String::as_str));
        let (status, stdout, stderr) = mcplock(d, &argv);
        // 1 is an answer (a policy rule that fails), not a failure to answer.
        assert!(
            status == 0 || status == 1,
            "`{name}` exited {status}: {stderr}"
        );
        let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("`{name}`: stdout is not one JSON document ({e}):\n{stdout}")
        });
        assert!(doc.is_object(), "`{name}`: {doc}");
        if status == 1 {
            assert!(
                doc["code"].is_string() || doc["error"]["code"].is_string(),
                "`{name}`: a no without a code: {doc}"
            );
        }
    }
}

#[test]
fn a_refusal_in_sarif_or_markdown_is_a_document_of_that_format() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, _) = mcplock(
        dir.path(),
        &["diff", "a.json", "b.json", "--format", "sarif"],
    );
    assert_eq!(status, 2);
    let log: Value = serde_json::from_str(&stdout).expect("a SARIF log");
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert_eq!(invocation["exitCode"], 2);
    assert_eq!(
        invocation["toolExecutionNotifications"][0]["descriptor"]["id"],
        "input-missing"
    );
    let (status, stdout, _) = mcplock(
        dir.path(),
        &["--format", "markdown", "diff", "a.json", "b.json"],
    );
    assert_eq!(status, 2);
    assert!(stdout.starts_with("**mcplock: "), "{stdout}");
    assert!(stdout.contains("`input-missing`, exit 2"), "{stdout}");
}

#[test]
fn the_proxy_refuses_the_host_with_the_failure_code_in_the_error_data() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(mcplock_bin())
        .current_dir(dir.path())
        .args([
            "proxy",
            "--allow-unsigned",
            "--lockfile",
            "missing.json",
            "--",
            "server",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let request = r#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{}}"#;
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{request}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("one JSON-RPC answer");
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["error"]["code"], -32010);
    assert_eq!(answer["error"]["data"]["code"], "input-missing", "{answer}");
}

#[test]
fn help_of_every_command_is_a_golden_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    let mut root = mcplock::cli::command();
    root.build();
    for sub in root.get_subcommands().filter(|s| s.get_name() != "help") {
        paths.push(vec![sub.get_name().to_string()]);
        for leaf in sub.get_subcommands().filter(|s| s.get_name() != "help") {
            paths.push(vec![
                sub.get_name().to_string(),
                leaf.get_name().to_string(),
            ]);
        }
    }
    for path in paths {
        let mut argv: Vec<&str> = path.iter().map(String::as_str).collect();
        argv.push("--help");
        let (status, stdout, stderr) = mcplock(dir.path(), &argv);
        assert_eq!(status, 0, "{argv:?}: {stderr}");
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help-{}", path.join("-"))
        };
        insta::assert_snapshot!(name, stdout);
    }
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let leaves = leaf_paths();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (status, script, stderr) = mcplock(dir.path(), &["completions", shell]);
        assert_eq!(status, 0, "{shell}: {stderr}");
        for path in &leaves {
            let leaf = path.last().unwrap();
            assert!(
                script.contains(leaf.as_str()),
                "{shell} completion lacks {leaf}"
            );
        }
        assert!(
            script.contains("format"),
            "{shell} completion lacks --format"
        );
    }
    // The bash script must at least parse.
    let (_, script, _) = mcplock(dir.path(), &["completions", "bash"]);
    let file = dir.path().join("mcplock.bash");
    std::fs::write(&file, script).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let man = dir.path().join("man");
    std::fs::create_dir(&man).unwrap();
    let (status, listed, stderr) = mcplock(dir.path(), &["man", "--out-dir", "man"]);
    assert_eq!(status, 0, "{stderr}");
    for path in &leaves {
        let file = format!("mcplock-{}.1", path.join("-"));
        let page = man.join(&file);
        let text = std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("no {page:?}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page:?} is not roff"
        );
        assert!(
            text.contains("Formats (\\-\\-format)"),
            "{page:?} does not name its formats"
        );
        assert!(
            listed.lines().any(|l| l == format!("man/{file}")),
            "{listed}"
        );
    }
    let (status, root, _) = mcplock(dir.path(), &["man"]);
    assert_eq!(status, 0);
    assert!(root.contains(".TH mcplock 1"), "{root}");
    let (status, _, stderr) = mcplock(dir.path(), &["man", "--out-dir", "nowhere"]);
    assert_eq!(status, 2, "{stderr}");
}

/// Issue 28: every "no" a command answers (a report, not an error) carries its documented code
/// in JSON, and the exit status is the one documented for that code: diff's drift, review's
/// undecided change, policy check's failed rule, bundle verify's unchecked bundle, lock
/// --host's failed server and stale lock, and a policy rule that does not compile.
#[test]
fn every_no_a_command_answers_in_json_carries_its_documented_code() {
    let codes = documented_codes();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = crate::common::fixture_bin();
    let ok = |args: &[&str]| {
        let (status, stdout, stderr) = mcplock(d, args);
        assert_eq!(status, 0, "{args:?}: {stdout}\n{stderr}");
    };
    ok(&["keygen", "--private", "k.key", "--public", "k.pub"]);
    ok(&["lock", "--", fixture, "--tools", "2", "--name", "fixture"]);
    ok(&[
        "lock",
        "--lockfile",
        "more.json",
        "--",
        fixture,
        "--tools",
        "3",
        "--name",
        "fixture",
    ]);
    // A server whose offer follows a file: locked as it is, then changed.
    std::fs::write(d.join("fixture.flags"), "").unwrap();
    ok(&[
        "lock",
        "--lockfile",
        "moving.json",
        "--",
        fixture,
        "--tools",
        "2",
        "--flags-file",
        "fixture.flags",
        "--name",
        "moving",
    ]);
    std::fs::write(
        d.join("fixture.flags"),
        "--patch-tool\ntool_00001\n{\"description\": \"changed\"}\n",
    )
    .unwrap();
    ok(&["sign", "mcp-lock.json", "--key", "k.key"]);
    ok(&[
        "bundle",
        "export",
        "--lockfile",
        "mcp-lock.json",
        "--key",
        "k.key",
        "-o",
        "b.zip",
    ]);
    std::fs::write(
        d.join("fails.yaml"),
        "name: t\nrules:\n  - id: never\n    severity: error\n    expr: \"false\"\n    message: never holds\n",
    )
    .unwrap();
    std::fs::write(
        d.join("broken.yaml"),
        "name: t\nrules:\n  - id: broken\n    severity: error\n    expr: \"servers.all(s, s.name == )\"\n    message: m\n",
    )
    .unwrap();
    let config = |name: &str, command: &str| {
        let path = d.join(name);
        std::fs::write(
            &path,
            serde_json::json!({"mcpServers": {"fixture": {"command": command, "args": ["--tools", "4"]}}})
                .to_string(),
        )
        .unwrap();
        path.to_string_lossy().into_owned()
    };
    let missing = config("missing.json", "/nonexistent/mcp-server");
    let changed = config("changed.json", fixture);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["diff", "mcp-lock.json", "more.json", "--fail-on", "info"],
            "drift",
        ),
        (vec!["review", "--lockfile", "moving.json"], "drift"),
        (
            vec!["policy", "check", "--policy", "fails.yaml"],
            "policy-failed",
        ),
        (
            vec!["policy", "check", "--policy", "broken.yaml"],
            "policy-invalid",
        ),
        (vec!["bundle", "verify", "b.zip"], "bundle-invalid"),
        (
            vec!["lock", "--host", "cursor", "--config", &missing],
            "server-failed",
        ),
        (
            vec!["lock", "--host", "cursor", "--config", &changed, "--check"],
            "lock-stale",
        ),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["--format", "json"];
        argv.extend(&args);
        let (status, stdout, stderr) = mcplock(d, &argv);
        let doc: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{args:?}: not one JSON document ({e}): {stdout}\n{stderr}")
        });
        let code = doc["code"]
            .as_str()
            .or_else(|| doc["error"]["code"].as_str())
            .unwrap_or_default();
        assert_eq!(code, expected, "{args:?}: {doc}\n{stderr}");
        assert_eq!(codes.get(code).copied(), Some(status), "{args:?}: {doc}");
    }
}
