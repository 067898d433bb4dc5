//! Fail closed at the edges: files that are also inputs, symlinked lockfiles, unreadable
//! outputs, concurrent writers, signals, escaped processes and relaunching from an unverified
//! lockfile (issue 13).

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

fn mcplock(dir: &Path, args: &[&str]) -> Run {
    run_in(dir, args, Duration::from_secs(60))
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
    mcplock(d, &["lock", "--", fixture_bin(), "--flags-file", &flags]).expect_success();
    fs::write(d.join("flags"), "--tools\n3").unwrap();
    mcplock(
        d,
        &[
            "lock",
            "--update",
            "--",
            fixture_bin(),
            "--flags-file",
            &flags,
        ],
    )
    .expect_success();
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
