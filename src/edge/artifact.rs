//! Finding the artifact a local launch runs, on this machine, before or after it runs.
//!
//! Everything comes from what the package managers installed, never from a guess: npm's
//! lock metadata in the tree npx or node would run from, pip's RECORD (each listed file is
//! checked against it), the engine's own image metadata, or the bytes of the file. The same
//! resolution serves `lock` (after the server ran, so npx has installed what it runs),
//! `verify --artifacts`, a live `diff`, and the proxy before it starts a server. When the
//! answer is not certain, the artifact is [`Artifact::Unresolved`] with the reason.

use crate::core::artifact::{
    Artifact, Content, Kind, NpmSpec, PyRequirement, Resolved, Target, basename,
    normalize_python_name, split_image, target,
};
use crate::core::bundle::hex;
use crate::core::launch::Launch;
use base64::Engine as _;
use content::{Budget, Files};
use serde_json::Value;
use sha2::{Digest as _, Sha256, Sha512};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest file hashed (a server's executable or script).
const MAX_FILE_BYTES: u64 = 1 << 30;
/// The most files of one Python distribution checked against its RECORD, and their bytes.
const MAX_RECORD_FILES: usize = 20_000;
const MAX_RECORD_BYTES: u64 = 1 << 30;
/// The largest metadata file read (package.json, lock metadata, RECORD, METADATA).
const MAX_METADATA_BYTES: u64 = 64 << 20;
/// How long an image engine may take to describe an image.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(20);

/// The artifact `launch` runs, as installed now; `None` for a remote server (nothing runs here).
pub fn resolve(launch: &Launch) -> Option<Artifact> {
    let Launch::Stdio {
        command, args, cwd, ..
    } = launch
    else {
        return None;
    };
    let cwd = match cwd {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::current_dir() {
            Ok(dir) => dir,
            Err(e) => return Some(Artifact::unresolved(format!("no working directory: {e}"))),
        },
    };
    Some(match resolve_target(&cwd, command, args) {
        Ok(artifact) => artifact,
        Err(reason) => Artifact::unresolved(reason),
    })
}

fn resolve_target(cwd: &Path, command: &str, args: &[String]) -> Result<Artifact, String> {
    match target(command, args) {
        Target::Unreadable(reason) => Err(reason),
        Target::Npx { package, .. } => npx(
            cwd,
            &package,
            &npm_cache_dir()?,
            npm_global_lib(cwd).as_deref(),
        ),
        Target::Uvx {
            uvx, requirement, ..
        } => uvx_environment(cwd, &uvx, &requirement),
        Target::PythonRunner { tool, package } => Err(format!(
            "{tool} chooses and installs {package:?} at every start, in an environment of its own that mcplock cannot name; install it into a virtual environment and launch its console script (or use uvx) to pin it"
        )),
        Target::PythonModule { python, module } => {
            let python = find_program(cwd, &python)?;
            let site = venv_site_packages(&python)?;
            let dist = find_distribution(&site, |dist| record_has_module(dist, &module))?
                .ok_or_else(|| {
                    format!(
                        "no installed distribution in {} provides the module {module:?}",
                        site.display()
                    )
                })?;
            let artifact = pypi(&site, &dist, &python, true)?;
            // `python -m` puts the working directory first on sys.path.
            let mut budget = Budget::new();
            let cwd_part = content::python_path_entry(cwd, &mut budget)?;
            Ok(with_part(artifact, "working-directory", cwd_part))
        }
        Target::Oci { engine, image, .. } => oci(cwd, &engine, &image),
        Target::Program { command, script } => program(cwd, &command, script.as_deref()),
    }
}

/// Version managers whose shims stand for another program: a shim `ROOT/shims/NAME` (ROOT named
/// as here) runs what `MANAGER which NAME` names, which depends on the working directory (a
/// `.python-version` file, say).
const SHIM_MANAGERS: [(&str, &str); 6] = [
    (".pyenv", "pyenv"),
    (".asdf", "asdf"),
    (".nodenv", "nodenv"),
    (".rbenv", "rbenv"),
    (".goenv", "goenv"),
    ("mise", "mise"),
];

/// What a version manager's shim at `found` runs from `cwd`, resolved (`None` when `found` is
/// not a shim). A lock records what the shim runs, so a host that finds the same interpreter
/// by another PATH (a GUI host has another PATH than a terminal) runs what was locked, and the
/// proxy starts that interpreter itself.
pub(crate) fn shim_target(cwd: &Path, found: &Path) -> Result<Option<PathBuf>, String> {
    let (Some(dir), Some(name)) = (found.parent(), found.file_name()) else {
        return Ok(None);
    };
    if dir.file_name().is_none_or(|d| d != "shims") {
        return Ok(None);
    }
    let Some(root) = dir.parent() else {
        return Ok(None);
    };
    let root_name = root.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some((_, manager)) = SHIM_MANAGERS
        .iter()
        .find(|(r, _)| root_name.as_deref() == Some(*r))
    else {
        return Ok(None);
    };
    let program = [
        root.join("bin").join(manager),
        root.join("libexec").join(manager),
    ]
    .into_iter()
    .find(|p| is_executable(p))
    .map_or_else(|| find_program(cwd, manager), Ok)?;
    let name = name.to_string_lossy();
    let answer = run_bounded_in(&program, &["which", &name], Some(cwd)).map_err(|e| {
        format!(
            "{} is a {manager} shim, and `{manager} which {name}` did not say what it runs ({e}); give the launch the interpreter's absolute path instead",
            found.display()
        )
    })?;
    let target = PathBuf::from(answer.lines().next().unwrap_or_default().trim());
    if !target.is_absolute() || !is_executable(&target) {
        return Err(format!(
            "{} is a {manager} shim, and `{manager} which {name}` named no program ({:?}); give the launch the interpreter's absolute path instead",
            found.display(),
            target.display().to_string()
        ));
    }
    real(&target).map(Some)
}

/// `command` as the launch would find it: a path relative to `cwd`, or a name on PATH.
pub fn find_program(cwd: &Path, command: &str) -> Result<PathBuf, String> {
    if command.contains('/') {
        let path = cwd.join(command);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{} is not a file", path.display()))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| cwd.join(dir).join(command))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("{command:?} is not on PATH"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn real(path: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A direct program: a file inside an npm package, a Python console script, or a file.
fn program(cwd: &Path, command: &str, script: Option<&str>) -> Result<Artifact, String> {
    let mut found = find_program(cwd, command)?;
    // A version manager's shim: what it runs is the program (and what the proxy starts).
    if let Some(target) = shim_target(cwd, &found)? {
        found = target;
    }
    let executable = real(&found)?;
    if let Some(script) = script {
        let script = real(&cwd.join(script))?;
        if let Some(artifact) = npm_package_of(&script)? {
            return Ok(artifact);
        }
        return Ok(Artifact::Resolved(Resolved {
            kind: Kind::File,
            name: script.display().to_string(),
            version: None,
            digest: sha256_file(&script)?,
            interpreter: Some((executable.display().to_string(), sha256_file(&executable)?)),
            content: Some(script_content(&found, &script)?),
            pinned: true,
        }));
    }
    if let Some(artifact) = npm_package_of(&executable)? {
        return Ok(artifact);
    }
    if let Some(python) = shebang_python(&executable)? {
        let site = venv_site_packages(&python)?;
        let script_name = basename(command).to_string();
        let dist = find_distribution(&site, |dist| has_console_script(dist, &script_name))?
            .ok_or_else(|| {
                format!(
                    "no distribution in {} declares the console script {script_name:?}",
                    site.display()
                )
            })?;
        let artifact = pypi(&site, &dist, &python, true)?;
        return console_script(artifact, &executable);
    }
    let program = content::file_part(&executable, &mut Budget::new())?;
    Ok(Artifact::Resolved(Resolved {
        kind: Kind::File,
        name: executable.display().to_string(),
        version: None,
        digest: sha256_file(&executable)?,
        interpreter: None,
        content: Some(Content::from([("program".to_string(), program)])),
        pinned: true,
    }))
}

/// A console script: its own code after the `#!` line (the line names the venv's
/// interpreter, whose environment the artifact pins), and what Python imports from its
/// directory (`sys.path[0]`) ahead of the standard library.
fn console_script(artifact: Artifact, script: &Path) -> Result<Artifact, String> {
    let bytes = crate::edge::fs::read_bounded(script, MAX_METADATA_BYTES)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is gone", script.display()))?;
    let body = script_body(&bytes);
    let mut budget = Budget::new();
    let mut files = Files::default();
    let name = script.file_name().map_or_else(PathBuf::new, PathBuf::from);
    files.add_bytes(&name, body, &mut budget)?;
    let dir = script.parent().unwrap_or(Path::new("/"));
    let beside = content::python_path_entry(dir, &mut budget)?;
    let artifact = with_part(artifact, "script", files.into_part());
    Ok(with_part(artifact, "script-directory", beside))
}

/// A script's code after its `#!` line (the line names the interpreter, which is pinned apart).
fn script_body(bytes: &[u8]) -> &[u8] {
    match bytes.strip_prefix(b"#!") {
        Some(rest) => rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&[][..], |at| &rest[at + 1..]),
        None => bytes,
    }
}

/// `artifact` with one more part of content.
fn with_part(artifact: Artifact, name: &str, part: crate::core::artifact::Part) -> Artifact {
    match artifact {
        Artifact::Resolved(mut r) => {
            r.content
                .get_or_insert_with(Content::new)
                .insert(name.to_string(), part);
            Artifact::Resolved(r)
        }
        other => other,
    }
}

/// What an interpreter given `script` loads from beside it. Python: what it imports from the
/// script's directory (`sys.path[0]`) ahead of the standard library, and for a venv's
/// interpreter the venv's site-packages. Others (node, sh, ...): every file under the
/// script's directory but hidden entries (node resolves `./x` there and bare names in its
/// `node_modules` first).
fn script_content(interpreter: &Path, script: &Path) -> Result<Content, String> {
    let mut budget = Budget::new();
    let dir = script.parent().unwrap_or(Path::new("/"));
    let name = basename(&interpreter.to_string_lossy()).to_string();
    if !name.starts_with("python") {
        let beside = content::tree_part(dir, &mut budget)?;
        return Ok(Content::from([("script-directory".to_string(), beside)]));
    }
    let mut content = Content::from([(
        "script-directory".to_string(),
        content::python_path_entry(dir, &mut budget)?,
    )]);
    if let Ok(site) = venv_site_packages(interpreter) {
        let mut files = Files::default();
        files.add_tree(&site, &|_| false, &mut budget)?;
        content.insert("site-packages".to_string(), files.into_part());
    }
    Ok(content)
}

// ---- npm ----

/// npx, as libnpmexec decides: the package in the local project's tree, else the global one,
/// else the npx cache directory named after the spec as given. `global` is the directory that
/// holds the global `node_modules`.
fn npx(
    cwd: &Path,
    package: &NpmSpec,
    cache: &Path,
    global: Option<&Path>,
) -> Result<Artifact, String> {
    let (root, version, pinned) = npx_install(cwd, package, cache, global)?;
    npm_artifact(&root, &package.name, &version, pinned)
}

/// Where npx would find `package`: the directory holding the `node_modules` it runs from, the
/// version installed there, and whether the launch pins it.
fn npx_install(
    cwd: &Path,
    package: &NpmSpec,
    cache: &Path,
    global: Option<&Path>,
) -> Result<(PathBuf, String, bool), String> {
    let local = npm_prefix(cwd);
    for root in local.iter().map(PathBuf::as_path).chain(global) {
        let dir = root.join("node_modules").join(&package.name);
        let Some(version) = installed_version(&dir)? else {
            continue;
        };
        let satisfied = match &package.spec {
            None => true,
            Some(s) if s == "*" => true,
            Some(_) if package.exact_version().is_some() => {
                package.exact_version() == Some(version.as_str())
            }
            // npx runs this install if it satisfies the range, else another: deciding that
            // needs npm's range semantics, so say it rather than risk naming the wrong code.
            Some(range) => {
                return Err(format!(
                    "{} {version} is installed in {}; whether npx runs it for {range:?} depends on npm's range rules: name an exact version (`mcplock lock --pin` does)",
                    package.name,
                    root.display()
                ));
            }
        };
        if satisfied {
            return Ok((root.to_path_buf(), version, true));
        }
    }
    let hash = hex(&Sha512::digest(package.raw.as_bytes()));
    let tree = cache.join("_npx").join(&hash[..16]);
    let dir = tree.join("node_modules").join(&package.name);
    let Some(version) = installed_version(&dir)? else {
        return Err(format!(
            "npx would fetch {} from the registry at start: it is not installed in the project ({}), globally, nor in the npx cache ({})",
            package.raw,
            local.map_or_else(|| cwd.display().to_string(), |p| p.display().to_string()),
            tree.display()
        ));
    };
    if let Some(exact) = package.exact_version()
        && exact != version
    {
        return Err(format!(
            "the npx cache holds {} {version}, not the {exact} the launch names",
            package.name
        ));
    }
    // A bare name, a range or a tag: npx asks the registry at start and may run a newer one.
    let pinned = package.exact_version().is_some();
    Ok((tree, version, pinned))
}

/// The directory of npm's global `node_modules`: `<prefix>/lib`, the prefix from
/// `npm_config_prefix`, else the one node is installed under (`/usr` for `/usr/bin/node`).
fn npm_global_lib(cwd: &Path) -> Option<PathBuf> {
    let prefix = ["npm_config_prefix", "NPM_CONFIG_PREFIX"]
        .into_iter()
        .find_map(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
        .map(PathBuf::from)
        .or_else(|| {
            let node = real(&find_program(cwd, "node").ok()?).ok()?;
            Some(node.parent()?.parent()?.to_path_buf())
        })?;
    Some(prefix.join("lib"))
}

/// npm's local prefix: the nearest directory up from `cwd` with a package.json or node_modules.
fn npm_prefix(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors()
        .find(|d| d.join("package.json").is_file() || d.join("node_modules").is_dir())
        .map(Path::to_path_buf)
}

/// npm's cache: `npm_config_cache`, else `~/.npm`.
fn npm_cache_dir() -> Result<PathBuf, String> {
    for key in ["npm_config_cache", "NPM_CONFIG_CACHE"] {
        if let Some(dir) = std::env::var_os(key).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".npm"))
        .ok_or_else(|| "neither npm_config_cache nor HOME is set: no npx cache to look in".into())
}

fn read_json(path: &Path) -> Result<Option<Value>, String> {
    let Some(bytes) =
        crate::edge::fs::read_bounded(path, MAX_METADATA_BYTES).map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

/// The version in `dir/package.json`, if a package is installed there.
fn installed_version(dir: &Path) -> Result<Option<String>, String> {
    let Some(manifest) = read_json(&dir.join("package.json"))? else {
        return Ok(None);
    };
    manifest
        .get("version")
        .and_then(Value::as_str)
        .map(|v| Some(v.to_string()))
        .ok_or_else(|| format!("{}/package.json has no version", dir.display()))
}

/// The package installed at `<root>/node_modules/<name>`, with the integrity npm recorded for
/// it when it installed it (the hidden lockfile, else the project's package-lock.json).
fn npm_artifact(root: &Path, name: &str, version: &str, pinned: bool) -> Result<Artifact, String> {
    let key = format!("node_modules/{name}");
    for lock in [
        root.join("node_modules/.package-lock.json"),
        root.join("package-lock.json"),
        root.join("npm-shrinkwrap.json"),
    ] {
        let Some(metadata) = read_json(&lock)? else {
            continue;
        };
        let Some(entry) = metadata.get("packages").and_then(|p| p.get(&key)) else {
            continue;
        };
        let locked = entry.get("version").and_then(Value::as_str);
        if locked != Some(version) {
            return Err(format!(
                "{} records {name} {}, but {version} is installed: the tree was changed without npm",
                lock.display(),
                locked.unwrap_or("without a version")
            ));
        }
        let Some(integrity) = entry.get("integrity").and_then(Value::as_str) else {
            return Err(format!(
                "{} records no registry integrity for {name} (installed from a directory, a link or git?)",
                lock.display()
            ));
        };
        return Ok(Artifact::Resolved(Resolved {
            kind: Kind::Npm,
            name: name.to_string(),
            version: Some(version.to_string()),
            digest: integrity.to_string(),
            interpreter: None,
            content: Some(npm_content(&root.join("node_modules"), name)?),
            pinned,
        }));
    }
    Err(format!(
        "no npm lock metadata under {} records {name}: cannot tell which tarball was installed",
        root.display()
    ))
}

/// The package's own files (`package`: its directory but its nested `node_modules`) and
/// every package node can load from the tree it is installed in (`dependencies`: every file
/// under `modules` but the package's own and npm's dot-entries, `.bin` links and
/// `.package-lock.json`, which node never loads by a package name).
fn npm_content(modules: &Path, name: &str) -> Result<Content, String> {
    npm_content_into(modules, name, None)
}

/// [`npm_content`], every file also copied under `copy` (as a `node_modules` of its own).
fn npm_content_into(modules: &Path, name: &str, copy: Option<&Path>) -> Result<Content, String> {
    let files = || copy.map_or_else(Files::default, Files::copying_to);
    let mut budget = Budget::new();
    let own = Path::new(name);
    let nested = own.join("node_modules");
    let mut package = copy.map_or_else(Files::default, |c| Files::copying_to(&c.join(name)));
    package.add_tree(
        &modules.join(name),
        &|rel| rel == Path::new("node_modules"),
        &mut budget,
    )?;
    let mut dependencies = files();
    let not_a_dependency = |rel: &Path| {
        let hidden = rel.components().count() == 1
            && rel.as_os_str().as_encoded_bytes().first() == Some(&b'.');
        hidden || (rel.starts_with(own) && rel != own && !rel.starts_with(&nested))
    };
    dependencies.add_tree(modules, &not_a_dependency, &mut budget)?;
    Ok(Content::from([
        ("dependencies".to_string(), dependencies.into_part()),
        ("package".to_string(), package.into_part()),
    ]))
}

/// Where a file inside `.../node_modules/<name>/` sits: the directory holding that
/// `node_modules`, the package's name, and the package's directory.
fn npm_place(file: &Path) -> Option<(PathBuf, String, PathBuf)> {
    let parts: Vec<&std::ffi::OsStr> = file.iter().collect();
    let at = parts.iter().rposition(|p| *p == "node_modules")?;
    let first = parts.get(at + 1).and_then(|p| p.to_str())?;
    let (name, depth) = if first.starts_with('@') {
        let second = parts.get(at + 2).and_then(|p| p.to_str())?;
        (format!("{first}/{second}"), 3)
    } else {
        (first.to_string(), 2)
    };
    let root: PathBuf = parts[..at].iter().collect();
    let dir: PathBuf = parts[..at + depth].iter().collect();
    Some((root, name, dir))
}

/// The npm package a file belongs to, when it is inside `.../node_modules/<name>/`.
fn npm_package_of(file: &Path) -> Result<Option<Artifact>, String> {
    let Some((root, name, dir)) = npm_place(file) else {
        return Ok(None);
    };
    let version =
        installed_version(&dir)?.ok_or_else(|| format!("{} has no package.json", dir.display()))?;
    npm_artifact(&root, &name, &version, true).map(Some)
}

// ---- PyPI ----

/// The Python interpreter named by a script's `#!` line, when it is one.
fn shebang_python(script: &Path) -> Result<Option<PathBuf>, String> {
    let mut head = [0u8; 512];
    let mut file = std::fs::File::open(script).map_err(|e| format!("{}: {e}", script.display()))?;
    let n = file
        .read(&mut head)
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let Some(line) = head[..n].strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(line.split(|&b| b == b'\n').next().unwrap_or(b""));
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(None);
    };
    let interpreter = if basename(first) == "env" {
        words.next().unwrap_or("")
    } else {
        first
    };
    let name = basename(interpreter);
    if !name.starts_with("python") {
        return Ok(None);
    }
    Ok(Some(PathBuf::from(interpreter)))
}

/// The site-packages of the virtual environment `python` belongs to.
fn venv_site_packages(python: &Path) -> Result<PathBuf, String> {
    let venv = python
        .parent()
        .and_then(Path::parent)
        .filter(|v| v.join("pyvenv.cfg").is_file())
        .ok_or_else(|| {
            format!(
                "{} is not the interpreter of a virtual environment, so which packages it imports is decided at run time; run the server from a venv",
                python.display()
            )
        })?;
    let lib = venv.join("lib");
    let entries = std::fs::read_dir(&lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no site-packages under {}", lib.display())),
        _ => Err(format!(
            "more than one site-packages under {}",
            lib.display()
        )),
    }
}

/// The one `*.dist-info` directory in `site` for which `pick` holds.
fn find_distribution(
    site: &Path,
    pick: impl Fn(&Path) -> Result<bool, String>,
) -> Result<Option<PathBuf>, String> {
    let entries = std::fs::read_dir(site).map_err(|e| format!("{}: {e}", site.display()))?;
    let mut dists: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dist-info"))
        .collect();
    dists.sort();
    let mut chosen = None;
    for dist in dists {
        if pick(&dist)? {
            if let Some(other) = &chosen {
                return Err(format!(
                    "two distributions match ({} and {}): cannot tell which runs",
                    Path::new(other).display(),
                    dist.display()
                ));
            }
            chosen = Some(dist);
        }
    }
    Ok(chosen)
}

fn read_text(path: &Path) -> Result<Option<String>, String> {
    crate::edge::fs::read_bounded(path, MAX_METADATA_BYTES)
        .map_err(|e| e.to_string())
        .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

fn has_console_script(dist: &Path, script: &str) -> Result<bool, String> {
    console_script_entry(dist, script).map(|entry| entry.is_some())
}

/// The entry point (`module:object`) a distribution declares for the console script `script`.
fn console_script_entry(dist: &Path, script: &str) -> Result<Option<String>, String> {
    let Some(text) = read_text(&dist.join("entry_points.txt"))? else {
        return Ok(None);
    };
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[console_scripts]";
        } else if in_section
            && let Some((name, value)) = line.split_once('=')
            && name.trim() == script
        {
            return Ok(Some(value.trim().to_string()));
        }
    }
    Ok(None)
}

fn record_has_module(dist: &Path, module: &str) -> Result<bool, String> {
    let Some(record) = read_text(&dist.join("RECORD"))? else {
        return Ok(false);
    };
    let top = module.split('.').next().unwrap_or(module);
    let package = format!("{top}/__init__.py,");
    let single = format!("{top}.py,");
    Ok(record
        .lines()
        .any(|l| l.starts_with(&package) || l.starts_with(&single)))
}

/// uvx: uv itself names the environment it runs a requirement in. It is asked offline (it
/// installs nothing from the network) to run that environment's interpreter with `-I -S`, so
/// nothing the environment installed runs, and that interpreter prints its own path.
fn uvx_environment(cwd: &Path, uvx: &str, requirement: &PyRequirement) -> Result<Artifact, String> {
    let python = uvx_python(cwd, uvx, requirement)?;
    let site = venv_site_packages(&python)?;
    let wanted = normalize_python_name(&requirement.name);
    let dist = find_distribution(&site, |dist| {
        let file = dist.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = file
            .as_deref()
            .and_then(|f| f.split('-').next())
            .unwrap_or("");
        Ok(normalize_python_name(name) == wanted)
    })?
    .ok_or_else(|| format!("uv's environment {} holds no {wanted}", site.display()))?;
    let artifact = pypi(&site, &dist, &python, requirement.exact.is_some())?;
    if let (Some(exact), Some(found)) = (&requirement.exact, artifact.resolved())
        && found.version.as_deref() != Some(exact.as_str())
    {
        return Err(format!(
            "uv's environment holds {wanted} {}, not the {exact} the launch names",
            found.version.as_deref().unwrap_or("?")
        ));
    }
    Ok(artifact)
}

/// The interpreter of the environment uv names for `requirement`, asked offline (nothing is
/// fetched, nothing the environment installed runs).
fn uvx_python(cwd: &Path, uvx: &str, requirement: &PyRequirement) -> Result<PathBuf, String> {
    let program = find_program(cwd, uvx)?;
    let answer = run_bounded(
        &program,
        &[
            "--offline",
            "--from",
            &requirement.raw,
            "python",
            "-I",
            "-S",
            "-c",
            "import sys; print(sys.executable)",
        ],
    )
    .map_err(|e| {
        format!(
            "uvx cannot name an environment for {} without the network ({e}): it would install one at start",
            requirement.raw
        )
    })?;
    Ok(PathBuf::from(answer.trim()))
}

/// A distribution: name and version from METADATA; the digest over its RECORD's entries for
/// the files it installed into site-packages (not the per-install files: INSTALLER,
/// REQUESTED, direct_url.json, scripts outside site-packages whose `#!` names this venv),
/// after every file RECORD lists with a hash was checked against it.
/// Its content: every file in the site-packages it runs from (its own files, whether RECORD
/// lists a hash for them or not, its dependencies, bytecode, and the start-up hooks: `*.pth`,
/// `sitecustomize.py`, `usercustomize.py`), and the interpreter's own binary.
fn pypi(site: &Path, dist: &Path, python: &Path, pinned: bool) -> Result<Artifact, String> {
    let metadata = read_text(&dist.join("METADATA"))?
        .ok_or_else(|| format!("{} has no METADATA", dist.display()))?;
    let header = |key: &str| {
        metadata
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
    };
    let (Some(name), Some(version)) = (header("Name:"), header("Version:")) else {
        return Err(format!(
            "{}/METADATA has no Name or Version",
            dist.display()
        ));
    };
    let record = read_text(&dist.join("RECORD"))?.ok_or_else(|| {
        format!(
            "{} has no RECORD: cannot tell what it installed",
            dist.display()
        )
    })?;
    let dist_name = dist
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let per_install =
        ["INSTALLER", "REQUESTED", "direct_url.json", "RECORD"].map(|f| format!("{dist_name}/{f}"));
    let mut covered = Vec::new();
    let (mut files, mut bytes) = (0usize, 0u64);
    for line in record.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.rsplitn(3, ',');
        let (_size, hash, path) = (fields.next(), fields.next(), fields.next());
        let (Some(hash), Some(path)) = (hash, path) else {
            return Err(format!(
                "{}/RECORD has a malformed line {line:?}",
                dist.display()
            ));
        };
        if hash.is_empty() {
            continue;
        }
        let Some(expected) = hash.strip_prefix("sha256=") else {
            return Err(format!(
                "{}/RECORD uses a hash other than sha256 for {path}",
                dist.display()
            ));
        };
        files += 1;
        if files > MAX_RECORD_FILES {
            return Err(format!("{name} lists more than {MAX_RECORD_FILES} files"));
        }
        let file = site.join(path);
        let content = crate::edge::fs::read_bounded(&file, MAX_RECORD_BYTES)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "{} (listed in the RECORD of {name}) is missing",
                    file.display()
                )
            })?;
        bytes += content.len() as u64;
        if bytes > MAX_RECORD_BYTES {
            return Err(format!(
                "{name} installs more than {MAX_RECORD_BYTES} bytes"
            ));
        }
        let actual =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&content));
        if actual != expected {
            return Err(format!(
                "{} differs from what the RECORD of {name} {version} says was installed: it was modified after installation",
                file.display()
            ));
        }
        if !path.starts_with("../") && !per_install.iter().any(|p| p == path) {
            covered.push(format!("{path},{hash}"));
        }
    }
    covered.sort();
    let digest = Sha256::digest(covered.join("\n").as_bytes());
    Ok(Artifact::Resolved(Resolved {
        kind: Kind::Pypi,
        name,
        version: Some(version),
        digest: format!("sha256:{}", hex(&digest)),
        interpreter: None,
        content: Some(environment_content(site, python)?),
        pinned,
    }))
}

fn environment_content(site: &Path, python: &Path) -> Result<Content, String> {
    let mut budget = Budget::new();
    let mut files = Files::default();
    files.add_tree(site, &|_| false, &mut budget)?;
    let interpreter = content::file_part(&real(python)?, &mut budget)?;
    Ok(Content::from([
        ("interpreter".to_string(), interpreter),
        ("site-packages".to_string(), files.into_part()),
    ]))
}

// ---- OCI ----

fn oci(cwd: &Path, engine: &str, image: &str) -> Result<Artifact, String> {
    let (repo, tag, digest) = split_image(image);
    if let Some(digest) = digest {
        return Ok(Artifact::Resolved(Resolved {
            kind: Kind::Oci,
            name: repo.to_string(),
            version: tag.map(str::to_string),
            digest: digest.to_string(),
            interpreter: None,
            content: None,
            pinned: true,
        }));
    }
    let program = find_program(cwd, engine)?;
    let output = run_bounded(
        &program,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            image,
        ],
    )
    .map_err(|e| format!("{engine} image inspect {image}: {e} (is the image present locally?)"))?;
    let digests: Vec<String> = serde_json::from_str(output.trim())
        .map_err(|e| format!("{engine} image inspect {image} answered unexpectedly: {e}"))?;
    let short = |r: &str| {
        r.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .to_string()
    };
    let matching: Vec<&String> = digests
        .iter()
        .filter(|d| d.split('@').next().map(short) == Some(short(repo)))
        .collect();
    let chosen = match (matching.as_slice(), digests.as_slice()) {
        ([one], _) => *one,
        ([], [only]) => only,
        ([], []) => {
            return Err(format!(
                "the image {image} has no registry digest (built locally, never pushed or pulled)"
            ));
        }
        _ => {
            return Err(format!(
                "the image {image} has several registry digests: name one with @sha256:"
            ));
        }
    };
    let Some((_, digest)) = chosen.split_once('@') else {
        return Err(format!("{engine} gave the digest {chosen:?} without @"));
    };
    Ok(Artifact::Resolved(Resolved {
        kind: Kind::Oci,
        name: repo.to_string(),
        version: Some(tag.unwrap_or("latest").to_string()),
        digest: digest.to_string(),
        interpreter: None,
        content: None,
        pinned: false,
    }))
}

/// Runs a program with a deadline and bounded output; its stdout on success.
fn run_bounded(program: &Path, args: &[&str]) -> Result<String, String> {
    run_bounded_in(program, args, None)
}

/// [`run_bounded`] in the directory `cwd`.
fn run_bounded_in(program: &Path, args: &[&str], cwd: Option<&Path>) -> Result<String, String> {
    let mut command = std::process::Command::new(program);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let mut child = command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Stopped with the servers if mcplock is interrupted while it waits.
    let _registered = crate::edge::children::register(child.id());
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(1 << 20).read_to_end(&mut out);
        out
    });
    let deadline = std::time::Instant::now() + ENGINE_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", ENGINE_TIMEOUT.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let out = reader.join().map_err(|_| "reading its output failed")?;
    if !status.success() {
        return Err(format!("exited with {status}"));
    }
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// The SHA-256 (`sha256:` hex) of the npm package file whose registry integrity is
/// `integrity` (`sha512-...`), read from npm's cache (cacache keeps a file under its sha512):
/// what a registry entry's `fileSha256` is checked against. `Err` says why it cannot be read.
pub fn npm_tarball_sha256(integrity: &str) -> Result<String, String> {
    let sha512 = integrity
        .strip_prefix("sha512-")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|bytes| bytes.len() == 64)
        .ok_or_else(|| format!("{integrity:?} is not an npm sha512 integrity"))?;
    let name = hex(&sha512);
    let path = npm_cache_dir()?
        .join("_cacache/content-v2/sha512")
        .join(&name[..2])
        .join(&name[2..4])
        .join(&name[4..]);
    if !path.is_file() {
        return Err(format!(
            "the package file is not in npm's cache ({})",
            path.display()
        ));
    }
    let size = path
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        ));
    }
    // What is read is checked against the integrity it is filed under.
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if Sha512::digest(&bytes).as_slice() != sha512.as_slice() {
        return Err(format!(
            "{} is not the file its integrity names",
            path.display()
        ));
    }
    Ok(format!("sha256:{}", hex(&Sha256::digest(&bytes))))
}

// ---- files ----

fn sha256_file(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let copied = std::io::copy(&mut (&mut file).take(MAX_FILE_BYTES + 1), &mut hasher)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if copied > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        ));
    }
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}

mod content;
mod private_dir;
pub mod run;
#[cfg(test)]
mod tests;
