//! Fail closed at the edges: files that are also inputs, symlinked lockfiles, unreadable
//! outputs, concurrent writers, signals, escaped processes and relaunching from an unverified
//! lockfile (issue 13).

use crate::common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

fn mcplock(dir: &Path, args: &[&str]) -> Run {
    run_in(dir, args, Duration::from_secs(60))
}

/// `mcplock lock <args> -- <fixture> --flags-file <flags>` in `dir`: the fixture's behaviour
/// can change behind an unchanged command line.
fn lock_flags(dir: &Path, args: &[&str], flags: &str) -> Run {
    let mut all = vec!["lock"];
    all.extend_from_slice(args);
    all.extend(["--", fixture_bin(), "--flags-file", flags]);
    mcplock(dir, &all)
}

/// A signed lockfile of the fixture in `dir`: mcp-lock.json, .sig, mcplock.key/.pub.
fn signed(dir: &Path) {
    mcplock(dir, &["lock", "--", fixture_bin(), "--tools", "2"]).expect_success();
    mcplock(dir, &["keygen"]).expect_success();
    mcplock(dir, &["sign", "--key", "mcplock.key"]).expect_success();
}

#[test]
fn regression_issue_13_an_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed(d);
    let before = fs::read(d.join("mcp-lock.json")).unwrap();
    mcplock(
        d,
        &[
            "sign",
            "mcp-lock.json",
            "--key",
            "mcplock.key",
            "-o",
            "mcp-lock.json",
        ],
    )
    .expect_failure(2, "is the input mcp-lock.json");
    mcplock(
        d,
        &[
            "sign",
            "mcp-lock.json",
            "--key",
            "mcplock.key",
            "-o",
            "mcplock.key",
        ],
    )
    .expect_failure(2, "is the input mcplock.key");
    // Through a link too.
    std::os::unix::fs::symlink(d.join("mcp-lock.json"), d.join("alias.json")).unwrap();
    mcplock(
        d,
        &[
            "sign",
            "mcp-lock.json",
            "--key",
            "mcplock.key",
            "-o",
            "alias.json",
        ],
    )
    .expect_failure(2, "would destroy that input");
    for output in ["mcp-lock.json", "mcp-lock.json.sig", "mcplock.key"] {
        mcplock(
            d,
            &[
                "bundle",
                "export",
                "--key",
                "mcplock.key",
                "-o",
                output,
                "--force",
            ],
        )
        .expect_failure(2, "would destroy that input");
    }
    assert_eq!(fs::read(d.join("mcp-lock.json")).unwrap(), before);
    mcplock(d, &["verify", "--key", "mcplock.pub"]).expect_success();
}

#[test]
fn regression_issue_13_an_unreadable_bundle_output_is_not_taken_for_absent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    signed(d);
    // A directory cannot be read as a file (permission bits do not stop root, this does).
    fs::create_dir(d.join("approval.zip")).unwrap();
    fs::write(d.join("approval.zip/keep"), b"mine").unwrap();
    mcplock(d, &["bundle", "export", "--key", "mcplock.key"])
        .expect_failure(2, "cannot tell what the existing --output holds");
    assert_eq!(fs::read(d.join("approval.zip/keep")).unwrap(), b"mine");
}

#[test]
fn regression_issue_13_a_symlinked_lockfile_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("shared")).unwrap();
    std::os::unix::fs::symlink("shared/team-lock.json", d.join("mcp-lock.json")).unwrap();
    let flags = d.join("flags");
    fs::write(&flags, "--tools\n2").unwrap();
    let flags = flags.to_string_lossy().into_owned();
    lock_flags(d, &[], &flags).expect_success();
    fs::write(d.join("flags"), "--tools\n3").unwrap();
    lock_flags(d, &["--update"], &flags).expect_success();
    let link = fs::symlink_metadata(d.join("mcp-lock.json")).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "the link was replaced by a file"
    );
    let target: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("shared/team-lock.json")).unwrap()).unwrap();
    assert_eq!(
        target["servers"]["mcplock-fixture"]["tools"]
            .as_object()
            .unwrap()
            .len(),
        3,
        "the target is stale"
    );
}

/// True while `pid` exists and is not a zombie.
fn alive(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        })
        .unwrap_or(false)
}

/// Waits up to 5 s for `path` to hold a pid.
fn pid_from(path: &Path) -> String {
    for _ in 0..250 {
        if let Ok(text) = fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return text.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never appeared", path.display());
}

/// Waits up to 10 s for every pid to be gone.
fn all_gone(pids: &[String]) -> bool {
    (0..500).any(|_| {
        let gone = pids.iter().all(|p| !alive(p));
        if !gone {
            std::thread::sleep(Duration::from_millis(20));
        }
        gone
    })
}

#[test]
fn regression_issue_13_a_helper_that_leaves_the_process_group_is_ended_too() {
    let dir = tempfile::tempdir().unwrap();
    let escaped = dir.path().join("escaped.pid");
    let run = scan_fixture(&[], &["--spawn-escaped", escaped.to_str().unwrap()]);
    run.expect_success();
    let pid = pid_from(&escaped);
    assert!(
        all_gone(std::slice::from_ref(&pid)),
        "the helper {pid} that called setsid() survived the scan"
    );
}

#[test]
fn regression_issue_13_signals_end_the_servers_whole_process_group() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    for (signal, code) in [
        (Signal::SIGINT, 130),
        (Signal::SIGTERM, 143),
        (Signal::SIGHUP, 129),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (server, child, escaped) = (d.join("s.pid"), d.join("c.pid"), d.join("e.pid"));
        // A server that ignores end of input (and, the first time, TERM, as do its helpers)
        // and never answers tools/list: mcplock is mid-scan when the signal comes.
        let trap = if signal == Signal::SIGINT {
            "trap '' TERM; "
        } else {
            ""
        };
        let script = format!(
            "{trap}exec {} --ignore-stdin-close --silent-on tools/list --pid-file {} --spawn-grandchild {} --spawn-escaped {}",
            fixture_bin(),
            server.display(),
            child.display(),
            escaped.display()
        );
        let mut mcplock = std::process::Command::new(mcplock_bin())
            .args(["scan", "--", "sh", "-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pids = [pid_from(&server), pid_from(&child), pid_from(&escaped)];
        std::thread::sleep(Duration::from_millis(300));
        kill(Pid::from_raw(mcplock.id() as i32), signal).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = mcplock.wait();
            let mut stderr = String::new();
            if let Some(mut e) = mcplock.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            let _ = tx.send((status, stderr));
        });
        let (status, stderr) = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("mcplock did not exit after {signal}"));
        waiter.join().unwrap();
        assert_eq!(status.unwrap().code(), Some(code), "{signal}: {stderr}");
        assert!(
            stderr.contains("every server it started was stopped"),
            "{stderr}"
        );
        assert!(
            all_gone(&pids),
            "{signal}: a process of the server survived: {pids:?}"
        );
    }
}

#[test]
fn regression_issue_13_relaunching_from_a_lockfile_checks_its_signature_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flags = d.join("flags").to_string_lossy().into_owned();
    fs::write(&flags, "--tools\n2").unwrap();
    lock_flags(d, &[], &flags).expect_success();
    mcplock(d, &["keygen"]).expect_success();
    mcplock(d, &["sign", "--key", "mcplock.key"]).expect_success();

    let run = mcplock(d, &["diff"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("whose signature was not checked"),
        "{}",
        run.stderr
    );
    let run = mcplock(d, &["diff", "--key", "mcplock.pub"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("is signed by key sha256:"),
        "{}",
        run.stderr
    );
    mcplock(d, &["lock", "--check", "--key", "mcplock.pub"]).expect_success();

    // Someone rewrites the lockfile (here: re-locks a different server into it) without
    // re-signing. A relaunch must start nothing it records.
    let started = d.join("started.pid").to_string_lossy().into_owned();
    fs::write(&flags, format!("--tools\n3\n--pid-file\n{started}")).unwrap();
    lock_flags(d, &["--update"], &flags).expect_success();
    fs::remove_file(&started).unwrap();
    for args in [
        &["diff", "--key", "mcplock.pub"][..],
        &["lock", "--check", "--key", "mcplock.pub"][..],
    ] {
        mcplock(d, args).expect_failure(1, "refusing to start the commands recorded in");
        assert!(!Path::new(&started).exists(), "{args:?} started a server");
    }
    // Unverified, it runs (and says so); the lock is current, so no drift.
    mcplock(d, &["lock", "--check"]).expect_success();
    assert!(Path::new(&started).exists());
    // A server after `--` is not relaunched from the lockfile: the flags would check nothing.
    mcplock(
        d,
        &[
            "lock",
            "--check",
            "--key",
            "mcplock.pub",
            "--",
            fixture_bin(),
        ],
    )
    .expect_failure(2, "none is started from the lockfile");
}

#[test]
fn lock_check_without_a_server_relaunches_every_locked_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flags = d.join("flags").to_string_lossy().into_owned();
    fs::write(&flags, "--tools\n2").unwrap();
    lock_flags(d, &[], &flags).expect_success();
    mcplock(
        d,
        &[
            "lock",
            "--name",
            "other",
            "--",
            fixture_bin(),
            "--tools",
            "1",
        ],
    )
    .expect_success();
    let run = mcplock(d, &["lock", "--check"]);
    run.expect_success();
    assert!(
        run.stdout.contains("2 server(s) match their lock"),
        "{}",
        run.stdout
    );
    fs::write(&flags, "--tools\n2\n--description-suffix\n Now with more.").unwrap();
    let run = mcplock(d, &["lock", "--check"]);
    run.expect_failure(
        1,
        "server(s) \"mcplock-fixture\" no longer match their lock",
    );
    mcplock(d, &["lock", "--check", "--name", "other"]).expect_success();
}

#[test]
fn audit_verify_checks_the_chain_and_the_head() {
    use mcplock::core::audit::{Chain, Decision, Entry};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut chain = Chain::default();
    let mut log = Vec::new();
    for (i, decision) in [Decision::Forward, Decision::Deny, Decision::Withhold]
        .into_iter()
        .enumerate()
    {
        log.extend(chain.append(&Entry {
            time: format!("2026-11-30T10:00:0{i}Z"),
            server: "files".into(),
            method: "tools/call".into(),
            item: Some("read".into()),
            locked: None,
            served: None,
            decision,
            reason: None,
            request: None,
            response: None,
            payload: None,
            who: None,
        }));
    }
    fs::write(d.join("audit.jsonl"), &log).unwrap();
    let head = chain.head().to_string();
    let run = mcplock(d, &["audit", "verify", "audit.jsonl", "--head", &head]);
    run.expect_success();
    assert!(
        run.stdout
            .contains("3 entries in an unbroken chain (1 denied, 1 withheld)"),
        "{}",
        run.stdout
    );
    // Cut off its last line: still a chain, but not the head kept elsewhere.
    let cut = log
        .split_inclusive(|b| *b == b'\n')
        .take(2)
        .flatten()
        .copied()
        .collect::<Vec<u8>>();
    fs::write(d.join("cut.jsonl"), &cut).unwrap();
    mcplock(d, &["audit", "verify", "cut.jsonl"]).expect_success();
    mcplock(d, &["audit", "verify", "cut.jsonl", "--head", &head])
        .expect_failure(1, "cut off its end");
    // A decision rewritten: the next line names the break.
    let edited = String::from_utf8(log)
        .unwrap()
        .replacen("\"deny\"", "\"forward\"", 1);
    fs::write(d.join("edited.jsonl"), edited).unwrap();
    mcplock(d, &["audit", "verify", "edited.jsonl"]).expect_failure(1, "line 3:");
    mcplock(d, &["audit", "verify", "missing.jsonl"]).expect_failure(2, "does not exist");
}
