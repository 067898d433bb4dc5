//! Shared helpers for the gauntlet: run the real binary with a deadline, find the fixture and
//! the real third-party servers.
#![allow(dead_code)]

pub mod gw;
pub mod infra;
pub mod mutate;
pub mod remote;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn mcplock_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mcplock")
}

pub fn fixture_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mcplock-fixture")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The result of one mcplock run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code and that stderr mentions `needle`.
    pub fn expect_failure(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code, code,
            "exit code; stderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        assert!(
            self.stderr.contains(needle),
            "stderr does not mention {needle:?}:\n{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "mcplock panicked:\n{}",
            self.stderr
        );
    }

    pub fn expect_success(&self) {
        assert_eq!(
            self.code, 0,
            "exit code; stderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
    }
}

/// Runs mcplock with `args`; a run that outlives `deadline` is killed and fails the test, so a
/// hang is a failure rather than a stuck suite.
pub fn run_with(args: &[&str], deadline: Duration) -> Run {
    run_in(Path::new("."), args, deadline)
}

/// Like [`run_with`], in directory `dir`.
pub fn run_in(dir: &Path, args: &[&str], deadline: Duration) -> Run {
    run_in_env(dir, args, &[], deadline)
}

/// Like [`run_in`], with the environment variables `env` added.
pub fn run_in_env(dir: &Path, args: &[&str], env: &[(&str, &str)], deadline: Duration) -> Run {
    let start = Instant::now();
    let child = Command::new(mcplock_bin())
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mcplock");
    let pid = child.id();
    // Collect output on another thread so a large stdout never blocks the child on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Output {
        status,
        stdout,
        stderr,
    } = match rx.recv_timeout(deadline) {
        Ok(output) => output.expect("collect output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("mcplock {args:?} hung for more than {deadline:?}");
        }
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

pub fn run(args: &[&str]) -> Run {
    run_with(args, Duration::from_secs(60))
}

/// `mcplock scan <flags> -- <fixture> <fixture flags>`.
pub fn scan_fixture(flags: &[&str], fixture_flags: &[&str]) -> Run {
    let mut args = vec!["scan"];
    args.extend_from_slice(flags);
    args.push("--");
    args.push(fixture_bin());
    args.extend_from_slice(fixture_flags);
    run(&args)
}

/// Path of a real server component installed by testdata/servers/install.sh. Missing is a
/// failure with instructions, never a skip.
pub fn real_component(relative: &str) -> String {
    let path = repo().join("testdata/servers").join(relative);
    assert!(
        Path::new(&path).exists(),
        "real MCP server component missing: {}\nrun `testdata/servers/install.sh` first (CI does)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

pub fn everything_server() -> Vec<String> {
    vec![
        "node".into(),
        real_component("node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
        "stdio".into(),
    ]
}

pub fn python_server() -> Vec<String> {
    vec![
        real_component("python/.venv/bin/python"),
        real_component("python/pinned_server.py"),
    ]
}

/// tailwindcss-mcp-server (npm, on the TypeScript SDK 0.6): prints two lines on stdout before
/// its first message.
pub fn tailwind_server() -> Vec<String> {
    vec![
        "node".into(),
        real_component("node/node_modules/tailwindcss-mcp-server/build/index.js"),
    ]
}

/// mcp-server-sqlite (PyPI, on the low-level Python SDK 1.x): advertises resources but has no
/// templates handler. `db` is created on first start.
pub fn sqlite_server(db: &Path) -> Vec<String> {
    vec![
        real_component("sqlite/.venv/bin/mcp-server-sqlite"),
        "--db-path".into(),
        db.to_string_lossy().into_owned(),
    ]
}

pub fn names(listing: &Value) -> Vec<String> {
    listing
        .as_array()
        .unwrap_or_else(|| panic!("not a listing: {listing}"))
        .iter()
        .map(|item| {
            item.get("name")
                .or_else(|| item.get("uriTemplate"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Runs the official Python SDK's host (testdata/servers/python/proxy_client.py) against
/// `argv`, a proxy that must refuse: the host's first request gets the refusal. Returns what
/// the host printed and its stderr.
pub fn host_refused(dir: &Path, argv: &[&str]) -> (String, String) {
    let python = real_component("python/.venv/bin/python");
    let script = repo().join("testdata/servers/python/proxy_client.py");
    let out = Command::new(python)
        .current_dir(dir)
        .arg(script)
        .arg("[]")
        .arg("--")
        .args(argv)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the host session succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("mcplock proxy refused to start the server"),
        "{stderr}"
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// Tries `attempt` every 100 ms until it gives a value, for at most `within`; past that, panics
/// with `what` and what the last attempt said (`Err`).
pub fn eventually<T>(
    what: &str,
    within: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => panic!("{what}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Asserts that the JSON file `document` (or its member `member`) is valid against the JSON
/// Schema `schema`, checked outside mcplock by the Python `jsonschema` package (with the
/// validator of the draft the schema declares).
pub fn assert_valid_against(schema: &Path, document: &Path, member: Option<&str>) {
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1]))\n\
        doc=json.load(open(sys.argv[2]))\n\
        doc=doc[sys.argv[3]] if sys.argv[3] else doc\n\
        jsonschema.validators.validator_for(schema)(schema).validate(doc)\n";
    let checked = Command::new(real_component("python/.venv/bin/python"))
        .args(["-c", script])
        .arg(schema)
        .arg(document)
        .arg(member.unwrap_or(""))
        .output()
        .expect("run python");
    assert!(
        checked.status.success(),
        "{} against {}: {}",
        document.display(),
        schema.display(),
        String::from_utf8_lossy(&checked.stderr)
    );
}
