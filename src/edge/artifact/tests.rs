use super::*;
use serde_json::json;
use std::fs;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A project with `pkg` installed at `version`, its hidden lockfile saying `locked`.
fn npm_tree(root: &Path, version: &str, locked: serde_json::Value) {
    write(&root.join("package.json"), "{}");
    write(
        &root.join("node_modules/pkg/package.json"),
        &json!({"name": "pkg", "version": version}).to_string(),
    );
    write(&root.join("node_modules/pkg/index.js"), "//");
    write(
        &root.join("node_modules/.package-lock.json"),
        &json!({"packages": {"node_modules/pkg": locked}}).to_string(),
    );
}

fn resolved(a: Result<Artifact, String>) -> Resolved {
    match a {
        Ok(Artifact::Resolved(r)) => r,
        other => panic!("not resolved: {other:?}"),
    }
}

#[test]
fn npm_integrity_comes_from_what_npm_recorded_and_never_from_a_changed_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let script = root.join("node_modules/pkg/index.js");
    npm_tree(
        root,
        "1.0.0",
        json!({"version": "1.0.0", "integrity": "sha512-one"}),
    );
    let r = npm_package_of(&script).unwrap().unwrap();
    let r = resolved(Ok(r));
    assert_eq!(
        (
            r.name.as_str(),
            r.version.as_deref(),
            r.digest.as_str(),
            r.pinned
        ),
        ("pkg", Some("1.0.0"), "sha512-one", true)
    );
    // Files swapped without npm: the metadata no longer describes what is installed.
    npm_tree(
        root,
        "1.0.1",
        json!({"version": "1.0.0", "integrity": "sha512-one"}),
    );
    let e = npm_package_of(&script).unwrap_err();
    assert!(e.contains("changed without npm"), "{e}");
    // Installed from a directory or git: no registry integrity to pin.
    npm_tree(root, "1.0.0", json!({"version": "1.0.0"}));
    let e = npm_package_of(&script).unwrap_err();
    assert!(e.contains("no registry integrity"), "{e}");
    // Not inside node_modules: not an npm package.
    assert!(
        npm_package_of(&root.join("package.json"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn npx_looks_where_npx_runs_from() {
    let dir = tempfile::tempdir().unwrap();
    let (project, elsewhere, cache) = (
        dir.path().join("project"),
        dir.path().join("elsewhere"),
        dir.path().join("cache"),
    );
    fs::create_dir_all(&elsewhere).unwrap();
    npm_tree(
        &project,
        "1.0.0",
        json!({"version": "1.0.0", "integrity": "sha512-local"}),
    );
    let spec = |raw: &str| NpmSpec::parse(raw).unwrap();
    // The project's own install wins for a bare name and for its exact version.
    for raw in ["pkg", "pkg@1.0.0"] {
        let r = resolved(npx(&project.join("sub"), &spec(raw), &cache, None));
        assert_eq!(
            (r.digest.as_str(), r.pinned),
            ("sha512-local", true),
            "{raw}"
        );
    }
    // Another exact version: the npx cache directory named after the spec, as npx names it.
    let e = npx(&project, &spec("pkg@2.0.0"), &cache, None).unwrap_err();
    assert!(e.contains("would fetch pkg@2.0.0"), "{e}");
    let hash = hex(&Sha512::digest(b"pkg@2.0.0"));
    let tree = cache.join("_npx").join(&hash[..16]);
    npm_tree(
        &tree,
        "2.0.0",
        json!({"version": "2.0.0", "integrity": "sha512-two"}),
    );
    let r = resolved(npx(&project, &spec("pkg@2.0.0"), &cache, None));
    assert_eq!(
        (r.version.as_deref(), r.digest.as_str(), r.pinned),
        (Some("2.0.0"), "sha512-two", true)
    );
    // A bare name outside a project floats: npx asks the registry for a newer one at start.
    let hash = hex(&Sha512::digest(b"pkg"));
    npm_tree(
        &cache.join("_npx").join(&hash[..16]),
        "3.0.0",
        json!({"version": "3.0.0", "integrity": "sha512-three"}),
    );
    let r = resolved(npx(&elsewhere, &spec("pkg"), &cache, None));
    assert_eq!((r.version.as_deref(), r.pinned), (Some("3.0.0"), false));
    // Installed globally (and not in the project): npx runs that one.
    let global = dir.path().join("global/lib");
    npm_tree(
        &global,
        "4.0.0",
        json!({"version": "4.0.0", "integrity": "sha512-global"}),
    );
    let r = resolved(npx(&elsewhere, &spec("pkg"), &cache, Some(&global)));
    assert_eq!((r.digest.as_str(), r.pinned), ("sha512-global", true));
    // A range against an install: npm's range rules decide, so it is not guessed.
    let e = npx(&project, &spec("pkg@^1"), &cache, None).unwrap_err();
    assert!(e.contains("range rules"), "{e}");
    // The cache holds another version than the one named: not what would run.
    write(
        &tree.join("node_modules/pkg/package.json"),
        &json!({"name": "pkg", "version": "2.0.1"}).to_string(),
    );
    let e = npx(&elsewhere, &spec("pkg@2.0.0"), &cache, None).unwrap_err();
    assert!(e.contains("not the 2.0.0"), "{e}");
}

/// A site-packages with one distribution `demo` 1.2 installing `demo/__init__.py` and the
/// console script `demo-cli`; returns (site, dist-info).
fn python_dist(root: &Path) -> (PathBuf, PathBuf) {
    let site = root.join("venv/lib/python3.12/site-packages");
    let dist = site.join("demo-1.2.dist-info");
    let code = "print('hi')\n";
    write(&site.join("demo/__init__.py"), code);
    write(
        &dist.join("METADATA"),
        "Metadata-Version: 2.1\nName: demo\nVersion: 1.2\n\nlong text\nName: not-this\n",
    );
    write(
        &dist.join("entry_points.txt"),
        "[console_scripts]\ndemo-cli = demo:main\n",
    );
    write(&dist.join("INSTALLER"), "pip\n");
    let b64 = |t: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes()))
    };
    let record = format!(
        "demo/__init__.py,sha256={},{}\ndemo-1.2.dist-info/METADATA,sha256={},1\ndemo-1.2.dist-info/INSTALLER,sha256={},4\ndemo-1.2.dist-info/RECORD,,\n",
        b64(code),
        code.len(),
        b64(&fs::read_to_string(dist.join("METADATA")).unwrap()),
        b64("pip\n"),
    );
    write(&dist.join("RECORD"), &record);
    write(&root.join("venv/pyvenv.cfg"), "home = /usr/bin\n");
    write(&root.join("venv/bin/python"), "");
    (site, dist)
}

#[test]
fn a_python_distribution_is_pinned_by_its_checked_record() {
    let dir = tempfile::tempdir().unwrap();
    let (site, dist) = python_dist(dir.path());
    assert_eq!(
        venv_site_packages(&dir.path().join("venv/bin/python")).unwrap(),
        site
    );
    assert!(has_console_script(&dist, "demo-cli").unwrap());
    assert!(!has_console_script(&dist, "demo").unwrap());
    assert!(record_has_module(&dist, "demo.sub").unwrap());
    let first = resolved(pypi(
        &site,
        &dist,
        &dir.path().join("venv/bin/python"),
        true,
    ));
    assert_eq!(
        (first.name.as_str(), first.version.as_deref()),
        ("demo", Some("1.2"))
    );
    // The per-install INSTALLER is checked but not part of the digest: another installer
    // that wrote the same files gives the same artifact.
    fs::write(dist.join("INSTALLER"), "uv\n").unwrap();
    let record = fs::read_to_string(dist.join("RECORD")).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(b"uv\n"));
    let pip = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(b"pip\n"));
    fs::write(dist.join("RECORD"), record.replace(&pip, &b64)).unwrap();
    assert_eq!(
        resolved(pypi(
            &site,
            &dist,
            &dir.path().join("venv/bin/python"),
            true
        ))
        .digest,
        first.digest
    );
    // A file edited after installation is caught, not pinned.
    fs::write(
        site.join("demo/__init__.py"),
        "import os; os.system('curl evil')\n",
    )
    .unwrap();
    let e = pypi(&site, &dist, &dir.path().join("venv/bin/python"), true).unwrap_err();
    assert!(e.contains("modified after installation"), "{e}");
    // An interpreter outside a venv decides its packages at run time.
    let e = venv_site_packages(Path::new("/usr/bin/python3")).unwrap_err();
    assert!(
        e.contains("not the interpreter of a virtual environment"),
        "{e}"
    );
}

#[test]
fn an_image_is_pinned_by_the_digest_its_tag_resolved_to() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for the engine (no container engine here): it answers `image inspect`.
    let engine = dir.path().join("docker");
    let answer = |body: &str| {
        write(&engine, &format!("#!/bin/sh\n{body}\n"));
        fs::set_permissions(&engine, fs::Permissions::from_mode(0o755)).unwrap();
    };
    let engine_path = engine.to_str().unwrap();
    answer(r#"echo '["ghcr.io/o/other@sha256:bbb","ghcr.io/o/img@sha256:aaa"]'"#);
    let r = resolved(oci(dir.path(), engine_path, "ghcr.io/o/img:1"));
    assert_eq!(
        (
            r.name.as_str(),
            r.version.as_deref(),
            r.digest.as_str(),
            r.pinned
        ),
        ("ghcr.io/o/img", Some("1"), "sha256:aaa", false)
    );
    answer(r#"echo '["alpine@sha256:ccc"]'"#);
    assert_eq!(
        resolved(oci(dir.path(), engine_path, "docker.io/library/alpine")).digest,
        "sha256:ccc"
    );
    answer("echo '[]'");
    let e = oci(dir.path(), engine_path, "local/built").unwrap_err();
    assert!(e.contains("no registry digest"), "{e}");
    answer("exit 1");
    let e = oci(dir.path(), engine_path, "absent:1").unwrap_err();
    assert!(e.contains("exited with"), "{e}");
    // Named by digest: pinned without asking the engine.
    let r = resolved(oci(
        dir.path(),
        "/nonexistent/docker",
        "ghcr.io/o/img@sha256:ddd",
    ));
    assert_eq!((r.digest.as_str(), r.pinned), ("sha256:ddd", true));
}

#[test]
fn a_script_and_its_interpreter_are_pinned_by_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("server.sh"), "echo one\n");
    let launch = |args: &[&str]| Launch::Stdio {
        command: "sh".into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env_keys: vec![],
        cwd: Some(dir.path().display().to_string()),
    };
    let first = resolved(Ok(resolve(&launch(&["server.sh"])).unwrap()));
    assert_eq!(first.kind, Kind::File);
    assert!(first.name.ends_with("/server.sh"), "{}", first.name);
    assert!(first.interpreter.is_some());
    fs::write(dir.path().join("server.sh"), "echo two\n").unwrap();
    let second = resolved(Ok(resolve(&launch(&["server.sh"])).unwrap()));
    assert_ne!(first.digest, second.digest);
    assert_eq!(first.interpreter, second.interpreter);
    // Inline code is nothing on disk; a missing program is said so.
    assert!(matches!(
        resolve(&launch(&["-c", "echo"])),
        Some(Artifact::Unresolved { .. })
    ));
    let missing = Launch::Stdio {
        command: "no-such-program-here".into(),
        args: vec![],
        env_keys: vec![],
        cwd: None,
    };
    match resolve(&missing) {
        Some(Artifact::Unresolved { reason }) => {
            assert!(reason.contains("not on PATH"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let remote = Launch::Http {
        url: "https://example.invalid/mcp".into(),
        header_names: vec![],
        context: None,
    };
    assert_eq!(resolve(&remote), None);
}

fn part<'a>(r: &'a Resolved, name: &str) -> &'a crate::core::artifact::Part {
    r.content
        .as_ref()
        .and_then(|c| c.get(name))
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
}

#[test]
fn issue_26_an_edited_file_of_an_npm_package_or_its_dependencies_is_other_content() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let script = root.join("node_modules/pkg/index.js");
    npm_tree(
        root,
        "1.0.0",
        json!({"version": "1.0.0", "integrity": "sha512-one"}),
    );
    write(
        &root.join("node_modules/dep/index.js"),
        "module.exports = 1",
    );
    write(&root.join("node_modules/pkg/node_modules/inner/x.js"), "1");
    let first = resolved(Ok(npm_package_of(&script).unwrap().unwrap()));
    assert_eq!(part(&first, "package").files, 2, "{first:?}");
    assert_eq!(part(&first, "dependencies").files, 2, "{first:?}");
    // npm's own files and links are not what node loads by a package name.
    write(&root.join("node_modules/.cache/x"), "anything");
    assert_eq!(
        resolved(Ok(npm_package_of(&script).unwrap().unwrap())),
        first
    );
    // The package's own code edited; version and npm's metadata untouched.
    write(&script, "// exfiltrate");
    let edited = resolved(Ok(npm_package_of(&script).unwrap().unwrap()));
    assert_eq!(
        (edited.version.as_deref(), edited.digest.as_str()),
        (Some("1.0.0"), "sha512-one")
    );
    assert_ne!(part(&edited, "package"), part(&first, "package"));
    assert_eq!(part(&edited, "dependencies"), part(&first, "dependencies"));
    write(&script, "//");
    // A dependency edited, hoisted or nested.
    for dep in [
        "node_modules/dep/index.js",
        "node_modules/pkg/node_modules/inner/x.js",
    ] {
        write(&root.join(dep), "evil");
        let now = resolved(Ok(npm_package_of(&script).unwrap().unwrap()));
        assert_ne!(
            part(&now, "dependencies"),
            part(&first, "dependencies"),
            "{dep}"
        );
        assert_eq!(part(&now, "package"), part(&first, "package"), "{dep}");
        write(&root.join(dep), "1");
    }
}

#[test]
fn issue_26_bytecode_start_up_hooks_and_unhashed_files_of_site_packages_are_content() {
    let dir = tempfile::tempdir().unwrap();
    let (site, dist) = python_dist(dir.path());
    let python = dir.path().join("venv/bin/python");
    let first = resolved(pypi(&site, &dist, &python, true));
    assert!(part(&first, "interpreter").files == 1);
    let pyc = site.join("demo/__pycache__/__init__.cpython-312.pyc");
    write(&pyc, "compiled");
    let with_pyc = resolved(pypi(&site, &dist, &python, true));
    assert_ne!(
        part(&with_pyc, "site-packages"),
        part(&first, "site-packages")
    );
    // The RECORD digest is the same: it is the content that tells them apart.
    assert_eq!(with_pyc.digest, first.digest);
    for (path, text) in [
        ("demo/__pycache__/__init__.cpython-312.pyc", "replaced"),
        ("evil.pth", "import os; os.system('x')"),
        ("sitecustomize.py", "import os"),
        ("usercustomize.py", "import os"),
    ] {
        let before = resolved(pypi(&site, &dist, &python, true));
        write(&site.join(path), text);
        let now = resolved(pypi(&site, &dist, &python, true));
        assert_ne!(
            part(&now, "site-packages"),
            part(&before, "site-packages"),
            "{path}"
        );
    }
    // Another interpreter binary behind the venv's `python`.
    let before = resolved(pypi(&site, &dist, &python, true));
    write(&python, "another build");
    let now = resolved(pypi(&site, &dist, &python, true));
    assert_ne!(part(&now, "interpreter"), part(&before, "interpreter"));
}

#[test]
fn issue_26_a_module_beside_a_python_script_that_shadows_the_standard_library_is_content() {
    let dir = tempfile::tempdir().unwrap();
    let (site, _) = python_dist(dir.path());
    let python = dir.path().join("venv/bin/python");
    let scripts = dir.path().join("srv");
    write(&scripts.join("server.py"), "import json\n");
    let first = script_content(&python, &scripts.join("server.py")).unwrap();
    assert!(first.contains_key("site-packages"), "{first:?}");
    write(&scripts.join("notes.txt"), "not importable");
    assert_eq!(
        script_content(&python, &scripts.join("server.py")).unwrap(),
        first
    );
    write(&scripts.join("json.py"), "import os; os.system('x')\n");
    let now = script_content(&python, &scripts.join("server.py")).unwrap();
    assert_ne!(now["script-directory"], first["script-directory"]);
    assert_eq!(now["site-packages"], first["site-packages"]);
    fs::remove_file(scripts.join("json.py")).unwrap();
    write(&site.join("sitecustomize.py"), "import os\n");
    let now = script_content(&python, &scripts.join("server.py")).unwrap();
    assert_ne!(now["site-packages"], first["site-packages"]);
    // node: everything under the script's directory but hidden entries.
    let node = Path::new("/usr/bin/node");
    let js = script_content(node, &scripts.join("server.py")).unwrap();
    write(&scripts.join("lib/util.js"), "//");
    let now = script_content(node, &scripts.join("server.py")).unwrap();
    assert_ne!(now["script-directory"], js["script-directory"]);
}
