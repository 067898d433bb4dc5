//! Starting a locked script or program from the very bytes that were checked. Hashing a file
//! and then running it by its path leaves a window: a file swapped in between runs unchecked.
//! So the proxy copies what a `file` artifact runs (the program, or the script with what its
//! interpreter loads from beside it) into a directory only this process can write, hashing
//! each file as it is copied, compares those digests with the lock, and starts the copy.
//!
//! An npm package run from its `node_modules` (a `.bin` link, or `node` given a file of the
//! package) is run the same way: the package and the tree it is installed in are copied, as
//! hashed, into a `node_modules` of the proxy's own, and node is given the copy of the file.
//!
//! A PyPI distribution's console script, or `python -m`, from a virtual environment runs from a
//! private environment: its site-packages copied as hashed, its `pyvenv.cfg`, and a `bin/python`
//! that links to the same interpreter (Python takes the environment beside the interpreter it
//! was started as).
//!
//! `npx` runs the copy of the package it would run (its `bin`), and `uvx` the copy of the
//! environment uv names, through a console-script wrapper mcplock writes from the entry point
//! the copied distribution declares.
//!
//! `python -m` imports from its working directory first: what it may import from there is
//! copied too, and the module is run with the copy in that place on `sys.path`.
//!
//! The interpreter itself (python, node) is not copied (a copied interpreter may no longer find
//! its libraries); the process started is checked instead: its running executable
//! (`/proc/PID/exe`, the very file the kernel mapped, which cannot be written while it runs) is
//! hashed and held to the lock before a single message passes ([`Private::check_started`]). A
//! private environment's `pyvenv.cfg` is written by mcplock from that checked interpreter, never
//! copied (its `home` names where the standard library is loaded from).

use super::content::{self, Budget, Files};
use super::private_dir::PrivateDir;
use super::{
    console_script_entry, find_distribution, find_program, npm_cache_dir, npm_content_into,
    npm_global_lib, npm_place, npx_install, read_json, real, script_body, shebang_python,
    uvx_python, venv_site_packages,
};
use crate::core::artifact::{Kind, Resolved, Target, basename, target};
use crate::core::bundle::hex;
use std::path::{Path, PathBuf};

/// A private copy of what a launch runs, and the argv that starts it. The copy lives as long
/// as this value.
pub struct Private {
    dir: PrivateDir,
    pub program: String,
    pub args: Vec<String>,
    /// The interpreter the started process must be running, as the lock pinned it.
    running: Option<Pinned>,
}

/// How the lock pinned an executable that is run where it is.
#[derive(Clone, Debug, PartialEq)]
enum Pinned {
    /// `sha256:` of its bytes (a script's interpreter).
    Bytes(String),
    /// A content part holding the one file `name` (a PyPI environment's `interpreter`).
    Part { name: PathBuf, digest: String },
}

impl Private {
    fn new(dir: PrivateDir, program: String, args: Vec<String>) -> Private {
        Private {
            dir,
            program,
            args,
            running: None,
        }
    }

    /// Where the copy is.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Holds the process started from this copy to the lock: the executable it runs (read
    /// through `/proc`, whatever its path now holds) must be the interpreter the lock pinned.
    /// The caller stops the process on an error, before any message passes. A process already
    /// gone (`None`) cannot be checked: an error too.
    pub fn check_started(&self, pid: Option<u32>) -> Result<(), String> {
        let pid = pid.ok_or("the server exited before its interpreter could be checked")?;
        let Some(pinned) = &self.running else {
            return Ok(());
        };
        check_executable(Path::new(&format!("/proc/{pid}/exe")), pinned)
    }
}

impl Pinned {
    fn locked(&self) -> &str {
        match self {
            Pinned::Bytes(digest) | Pinned::Part { digest, .. } => digest,
        }
    }

    /// The digest of `bytes` in the form the lock recorded.
    fn digest_of(&self, bytes: &[u8]) -> Result<String, String> {
        Ok(match self {
            Pinned::Bytes(_) => {
                use sha2::Digest as _;
                format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
            }
            Pinned::Part { name, .. } => {
                let mut files = Files::default();
                files.add_bytes(name, bytes, &mut Budget::new())?;
                files.into_part().digest
            }
        })
    }
}

/// Most bytes of an interpreter read to hold it to the lock.
const MAX_INTERPRETER_BYTES: u64 = 1 << 30;

fn read_interpreter(path: &Path) -> Result<Vec<u8>, String> {
    crate::edge::fs::read_bounded(path, MAX_INTERPRETER_BYTES)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is gone", path.display()))
}

fn check_executable(exe: &Path, pinned: &Pinned) -> Result<(), String> {
    let running = pinned.digest_of(&read_interpreter(exe)?)?;
    if running == pinned.locked() {
        return Ok(());
    }
    Err(format!(
        "the interpreter changed between its check and its start (the lock recorded {}, the process runs {running}); it was stopped before any message passed: see what changed with `mcplock verify --artifacts`",
        pinned.locked()
    ))
}

/// The interpreter at `path`, read once, must be the one pinned. The process started will be
/// held to it when it is a binary; an interpreter that is itself a `#!` script (a version
/// manager's shim) hands over to another program the lock does not name, so it is checked
/// here, just before the start, and not after.
fn to_hold(path: &Path, pinned: Pinned) -> Result<Option<Pinned>, String> {
    let bytes = read_interpreter(path)?;
    let digest = pinned.digest_of(&bytes)?;
    if digest != pinned.locked() {
        return Err(format!(
            "the interpreter {} changed since its check (the lock recorded {}, it is now {digest}); it is not started: see what changed with `mcplock verify --artifacts`",
            path.display(),
            pinned.locked()
        ));
    }
    Ok((!bytes.starts_with(b"#!")).then_some(pinned))
}

/// The launch `command args` (in `cwd`) started from a private copy of the `file` artifact
/// `locked` holds, every copied byte hashed and held to the lock. `None` when the launch runs
/// something else (a package, an image) or the lock pinned no content: it then starts as it
/// is. An error when what was copied is not what the lock recorded (it changed since the
/// check), or cannot be copied.
pub fn private_copy(
    command: &str,
    args: &[String],
    cwd: &Path,
    locked: &Resolved,
) -> Result<Option<Private>, String> {
    let Some(content) = locked.content.as_ref() else {
        return Ok(None);
    };
    let (command, script) = match (locked.kind, target(command, args)) {
        (Kind::File | Kind::Npm | Kind::Pypi, Target::Program { command, script }) => {
            (command, script)
        }
        (Kind::Pypi, Target::PythonModule { python, .. }) => (python, None),
        (
            Kind::Pypi,
            Target::Uvx {
                uvx,
                requirement,
                index,
            },
        ) => {
            let dir = PrivateDir::new()?;
            let (program, args) =
                copy_uvx(&uvx, &requirement, index, args, cwd, locked, dir.path())?;
            return environment(Private::new(dir, program, args), locked).map(Some);
        }
        (Kind::Npm, Target::Npx { package, index }) => {
            let dir = PrivateDir::new()?;
            let (program, args) = copy_npx(&package, &args[index + 1..], cwd, locked, dir.path())?;
            return Ok(Some(Private::new(dir, program, args)));
        }
        _ => return Ok(None),
    };
    let dir = PrivateDir::new()?;
    let expected = |part: &str| content.get(part).map(|p| p.digest.as_str());
    if locked.kind == Kind::Npm {
        let (program, args) = copy_npm(&command, script.as_deref(), args, cwd, locked, dir.path())?;
        return Ok(Some(Private::new(dir, program, args)));
    }
    if locked.kind == Kind::Pypi {
        let (program, args) = copy_pypi(&command, args, cwd, locked, dir.path())?;
        return environment(Private::new(dir, program, args), locked).map(Some);
    }
    match script {
        None => {
            let program = copy_program(&command, cwd, expected("program"), dir.path())?;
            Ok(Some(Private::new(dir, program, args.to_vec())))
        }
        Some(script) => {
            let args = copy_script(&command, &script, args, cwd, locked, dir.path())?;
            // A venv's python: its environment is copied too, and started from there.
            let program = match expected("site-packages") {
                Some(site) => {
                    let python = find_program(cwd, &command)?;
                    let venv = dir.path().join("mcplock-venv");
                    private_venv(&python, &venv, Some(site))?
                        .to_string_lossy()
                        .into_owned()
                }
                // A version manager's shim is not run: what it would run (checked) is.
                None => match super::shim_target(cwd, &find_program(cwd, &command)?)? {
                    Some(target) => target.to_string_lossy().into_owned(),
                    None => command,
                },
            };
            let mut private = Private::new(dir, program, args);
            if let Some((path, digest)) = &locked.interpreter {
                private.running = to_hold(Path::new(path), Pinned::Bytes(digest.clone()))?;
            }
            Ok(Some(private))
        }
    }
}

/// A private environment is started with its python, which is the interpreter the lock
/// pinned as the environment's `interpreter` part.
fn environment(mut private: Private, locked: &Resolved) -> Result<Private, String> {
    let python = real(Path::new(&private.program))?;
    let name = python
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| format!("{} names no file", python.display()))?;
    let digest = locked
        .content
        .as_ref()
        .and_then(|c| c.get("interpreter"))
        .map(|p| p.digest.clone())
        .ok_or_else(|| {
            "the lock recorded no digest of the interpreter; re-lock it (`mcplock lock --update`)"
                .to_string()
        })?;
    private.running = to_hold(&python, Pinned::Part { name, digest })?;
    Ok(private)
}

/// Copies the program `command` names into `into`, held to the lock's `program` part; returns
/// the copy's path.
fn copy_program(
    command: &str,
    cwd: &Path,
    expected: Option<&str>,
    into: &Path,
) -> Result<String, String> {
    let found = find_program(cwd, command)?;
    let program = match super::shim_target(cwd, &found)? {
        Some(target) => target,
        None => real(&found)?,
    };
    let name = program
        .file_name()
        .map_or_else(|| PathBuf::from("program"), PathBuf::from);
    let mut files = Files::copying_to(into);
    files.add_file(&program, &name, &mut Budget::new())?;
    held(&files.into_part().digest, expected, "the program")?;
    let copy = into.join(&name);
    make_executable(&copy)?;
    Ok(copy.to_string_lossy().into_owned())
}

/// Copies a script and what its interpreter loads from beside it into `into`; returns the
/// args with the script's argument pointing at the copy.
fn copy_script(
    command: &str,
    script: &str,
    args: &[String],
    cwd: &Path,
    locked: &Resolved,
    into: &Path,
) -> Result<Vec<String>, String> {
    let path = real(&cwd.join(script))?;
    let beside = path.parent().unwrap_or(Path::new("/"));
    let mut budget = Budget::new();
    let files = Files::copying_to(into);
    let part = if basename(command).starts_with("python") {
        content::python_path_entry_into(beside, &mut budget, files)?
    } else {
        content::tree_part_into(beside, &mut budget, files)?
    };
    let expected = locked
        .content
        .as_ref()
        .and_then(|c| c.get("script-directory"))
        .map(|p| p.digest.as_str());
    held(
        &part.digest,
        expected,
        "what the script loads from beside it",
    )?;
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} names no file", path.display()))?;
    let copy = into.join(name);
    // The script itself: already among the copied files, or copied now.
    let digest = if copy.exists() {
        content::hash_file(&copy, &mut budget)?.0
    } else {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&copy)
            .map_err(|e| format!("{}: {e}", copy.display()))?;
        content::hash_file_into(&path, &mut budget, Some(&mut file))?.0
    };
    held(
        &format!("sha256:{}", hex(&digest)),
        Some(locked.digest.as_str()),
        "the script",
    )?;
    let at = args
        .iter()
        .position(|a| a == script)
        .ok_or_else(|| format!("the script {script:?} is not among the arguments"))?;
    let mut args = args.to_vec();
    args[at] = copy.to_string_lossy().into_owned();
    Ok(args)
}

/// `npx [-y] pkg args`: the package npx would run (the project's, the global one, or its
/// cache's), copied with its tree; its `bin` started with `rest`, the arguments after the
/// package, as npx would.
fn copy_npx(
    package: &crate::core::artifact::NpmSpec,
    rest: &[String],
    cwd: &Path,
    locked: &Resolved,
    into: &Path,
) -> Result<(String, Vec<String>), String> {
    let cache = npm_cache_dir()?;
    let (root, _, _) = npx_install(cwd, package, &cache, npm_global_lib(cwd).as_deref())?;
    let dir = root.join("node_modules").join(&package.name);
    let manifest = read_json(&dir.join("package.json"))?
        .ok_or_else(|| format!("{} has no package.json", dir.display()))?;
    let bin = npx_bin(&manifest, &package.name)?;
    let entry = real(&dir.join(bin))?;
    copy_npm_entry(&entry, None, rest, locked, into)
}

/// The file npx runs of a package: its only `bin`, or the one named as the package (without
/// its scope).
fn npx_bin<'m>(manifest: &'m serde_json::Value, name: &str) -> Result<&'m str, String> {
    let unscoped = name.rsplit('/').next().unwrap_or(name);
    match manifest.get("bin") {
        Some(serde_json::Value::String(path)) => Ok(path),
        Some(serde_json::Value::Object(bins)) if bins.len() == 1 => bins
            .values()
            .next()
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("{name}'s bin is not a path")),
        Some(serde_json::Value::Object(bins)) => bins
            .get(unscoped)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("{name} has several bins and none named {unscoped:?}")),
        _ => Err(format!("{name} declares no bin for npx to run")),
    }
}

/// Copies the npm package a launch runs, with the tree it is installed in, into
/// `into/node_modules`; returns the program and args that start the copy of the same file.
fn copy_npm(
    command: &str,
    script: Option<&str>,
    args: &[String],
    cwd: &Path,
    locked: &Resolved,
    into: &Path,
) -> Result<(String, Vec<String>), String> {
    let entry = match script {
        Some(script) => real(&cwd.join(script))?,
        None => real(&find_program(cwd, command)?)?,
    };
    let (program, args) = copy_npm_entry(&entry, script, args, locked, into)?;
    Ok((
        if script.is_some() {
            command.to_string()
        } else {
            program
        },
        args,
    ))
}

/// Copies the package `entry` belongs to, with its tree, under `into`, each part held to the
/// lock; returns how to start the copy of `entry`: `script` replaced in `args` by the copy, or
/// (no script) the copy started as a node script or a program with `args`.
fn copy_npm_entry(
    entry: &Path,
    script: Option<&str>,
    args: &[String],
    locked: &Resolved,
    into: &Path,
) -> Result<(String, Vec<String>), String> {
    let (root, name, _) = npm_place(entry)
        .ok_or_else(|| format!("{} is not inside a node_modules", entry.display()))?;
    let modules = root.join("node_modules");
    let copy_root = into.join("node_modules");
    let copied = npm_content_into(&modules, &name, Some(&copy_root))?;
    let locked_content = locked.content.as_ref();
    for part in ["package", "dependencies"] {
        held(
            copied.get(part).map_or("", |p| p.digest.as_str()),
            locked_content
                .and_then(|c| c.get(part))
                .map(|p| p.digest.as_str()),
            &format!("the npm package's {part}"),
        )?;
    }
    let rel = entry
        .strip_prefix(&modules)
        .map_err(|_| format!("{} is not under {}", entry.display(), modules.display()))?;
    let copy = copy_root.join(rel);
    let copy_text = copy.to_string_lossy().into_owned();
    if let Some(script) = script {
        let at = args
            .iter()
            .position(|a| a == script)
            .ok_or_else(|| format!("the script {script:?} is not among the arguments"))?;
        let mut args = args.to_vec();
        args[at] = copy_text;
        return Ok(("node".to_string(), args));
    }
    // A `.bin` link: a node script (started with node, as its `#!` line asks), or a program.
    if is_node_script(&copy)? {
        let mut all = vec![copy_text];
        all.extend_from_slice(args);
        return Ok(("node".to_string(), all));
    }
    make_executable(&copy)?;
    Ok((copy_text, args.to_vec()))
}

/// Whether a file starts with a `#!` line naming node.
fn is_node_script(path: &Path) -> Result<bool, String> {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = file
        .read(&mut head)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let first = head[..n].split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(first.starts_with(b"#!") && first.windows(4).any(|w| w == b"node"))
}

/// A PyPI distribution's console script (`command` is the script, its `#!` line a venv's
/// python), or `command` a venv's python given `-m`: a private environment under `into`, and
/// the program and args that start the same code from it.
fn copy_pypi(
    command: &str,
    args: &[String],
    cwd: &Path,
    locked: &Resolved,
    into: &Path,
) -> Result<(String, Vec<String>), String> {
    let found = find_program(cwd, command)?;
    let content = locked.content.as_ref();
    let expected = |part: &str| content.and_then(|c| c.get(part)).map(|p| p.digest.as_str());
    let script = shebang_python(&found)?;
    let python = match &script {
        Some(python) => python.clone(),
        None => found.clone(),
    };
    let private_python = private_venv(&python, into, expected("site-packages"))?;
    let program = private_python.to_string_lossy().into_owned();
    if script.is_none() {
        return Ok((
            program,
            module_args(args, cwd, expected("working-directory"), into)?,
        ));
    }
    // The console script: its body after the `#!` line, and what Python imports beside it.
    let bin = private_python
        .parent()
        .ok_or_else(|| "the private environment has no bin".to_string())?;
    let beside = found.parent().unwrap_or(Path::new("/"));
    let mut budget = Budget::new();
    let part = content::python_path_entry_into(beside, &mut budget, Files::copying_to(bin))?;
    held(
        &part.digest,
        expected("script-directory"),
        "what the script loads from beside it",
    )?;
    let name = found
        .file_name()
        .ok_or_else(|| format!("{} names no file", found.display()))?;
    let copy = bin.join(name);
    let bytes = crate::edge::fs::read_bounded(&found, content::MAX_CONTENT_BYTES)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is gone", found.display()))?;
    let body = script_body(&bytes);
    let mut files = Files::default();
    files.add_bytes(Path::new(name), body, &mut budget)?;
    held(
        &files.into_part().digest,
        expected("script"),
        "the console script",
    )?;
    // Only the body runs: the `#!` line is a comment to the interpreter given the copy.
    std::fs::write(&copy, body).map_err(|e| format!("{}: {e}", copy.display()))?;
    let mut all = vec![copy.to_string_lossy().into_owned()];
    all.extend_from_slice(args);
    Ok((program, all))
}

/// Runs `module` as `-m` does (as `__main__`, `sys.argv[0]` its file), with the directory
/// given after the code in the place `-m` gives the working directory on `sys.path`.
const RUN_MODULE: &str = "import runpy, sys\n\
dir = sys.argv.pop(1)\n\
module = sys.argv.pop(1)\n\
if sys.path and sys.path[0] == '':\n    sys.path[0] = dir\n\
runpy.run_module(module, run_name='__main__', alter_sys=True)\n";

/// `python -m module args`: what the module may import from the working directory (where `-m`
/// looks first) is copied, held to the lock, and put in that place instead; the module runs as
/// `-m` would run it.
fn module_args(
    args: &[String],
    cwd: &Path,
    expected: Option<&str>,
    into: &Path,
) -> Result<Vec<String>, String> {
    let [flag, module, rest @ ..] = args else {
        return Err("python -m without a module".into());
    };
    if flag != "-m" {
        return Err(format!("expected -m first, found {flag:?}"));
    }
    let copy = into.join("mcplock-cwd");
    std::fs::create_dir_all(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
    let part = content::python_path_entry_into(cwd, &mut Budget::new(), Files::copying_to(&copy))?;
    held(
        &part.digest,
        expected,
        "what `python -m` imports from the working directory",
    )?;
    let mut all = vec![
        "-c".to_string(),
        RUN_MODULE.to_string(),
        copy.to_string_lossy().into_owned(),
        module.clone(),
    ];
    all.extend_from_slice(rest);
    Ok(all)
}

/// `uvx [--from REQ] CMD args`: the environment uv names, copied as a private environment;
/// `CMD` (the package's name without `--from`) started from a wrapper mcplock writes from the
/// console-script entry point the copied (checked) distribution declares.
fn copy_uvx(
    uvx: &str,
    requirement: &crate::core::artifact::PyRequirement,
    index: usize,
    args: &[String],
    cwd: &Path,
    locked: &Resolved,
    into: &Path,
) -> Result<(String, Vec<String>), String> {
    let (command, rest) = if index == 1 {
        let command = args
            .get(2)
            .ok_or_else(|| "uvx --from REQ without a command".to_string())?;
        (command.clone(), args.get(3..).unwrap_or_default())
    } else {
        (requirement.name.clone(), args.get(1..).unwrap_or_default())
    };
    let python = uvx_python(cwd, uvx, requirement)?;
    let expected = locked
        .content
        .as_ref()
        .and_then(|c| c.get("site-packages"))
        .map(|p| p.digest.as_str());
    let private_python = private_venv(&python, into, expected)?;
    let site = venv_site_packages(&private_python)?;
    let target = console_script_target(&site, &command)?;
    let wrapper = into.join("bin").join(&command);
    std::fs::write(&wrapper, entry_point_wrapper(&command, &target)?)
        .map_err(|e| format!("{}: {e}", wrapper.display()))?;
    let mut all = vec![wrapper.to_string_lossy().into_owned()];
    all.extend_from_slice(rest);
    Ok((private_python.to_string_lossy().into_owned(), all))
}

/// The `module:attr` a distribution in `site` declares for the console script `name`.
fn console_script_target(site: &Path, name: &str) -> Result<String, String> {
    let dist = find_distribution(site, |dist| Ok(console_script_entry(dist, name)?.is_some()))?
        .ok_or_else(|| {
            format!(
                "no distribution in {} declares the console script {name:?}",
                site.display()
            )
        })?;
    console_script_entry(&dist, name)?
        .ok_or_else(|| format!("{} lost its console script {name:?}", dist.display()))
}

/// The console-script wrapper installers write for `module:attr` (extras ignored): import,
/// call, exit with what it returns. Only dotted identifiers are accepted.
fn entry_point_wrapper(name: &str, target: &str) -> Result<String, String> {
    let target = target.split('[').next().unwrap_or(target).trim();
    let (module, attr) = target
        .split_once(':')
        .ok_or_else(|| format!("the entry point {target:?} names no object"))?;
    let (module, attr) = (module.trim(), attr.trim());
    let dotted = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                let mut chars = part.chars();
                chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                    && chars.all(|c| c == '_' || c.is_alphanumeric())
            })
    };
    if !dotted(module) || !dotted(attr) {
        return Err(format!("the entry point {target:?} is not module:object"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "the console script name {name:?} is not one mcplock writes a wrapper for"
        ));
    }
    let head = attr.split('.').next().unwrap_or(attr);
    Ok(format!(
        "import sys\nfrom {module} import {head}\nif __name__ == \"__main__\":\n    sys.argv[0] = {name:?}\n    sys.exit({attr}())\n"
    ))
}

/// A virtual environment under `into` for the venv `python` belongs to: its site-packages
/// copied as hashed (held to `expected`), its `pyvenv.cfg`, and `bin/python` linking to the
/// same interpreter. Returns that `bin/python`.
fn private_venv(python: &Path, into: &Path, expected: Option<&str>) -> Result<PathBuf, String> {
    let site = venv_site_packages(python)?;
    let venv = python
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in a venv", python.display()))?;
    let rel = site
        .strip_prefix(venv)
        .map_err(|_| format!("{} is not inside {}", site.display(), venv.display()))?;
    let mut files = Files::copying_to(&into.join(rel));
    files.add_tree(&site, &|_| false, &mut Budget::new())?;
    held(
        &files.into_part().digest,
        expected,
        "the environment's site-packages",
    )?;
    let io = |e: std::io::Error| format!("{}: {e}", into.display());
    let interpreter = real(python)?;
    let config = venv_config(&venv.join("pyvenv.cfg"), &interpreter)?;
    std::fs::write(into.join("pyvenv.cfg"), config).map_err(io)?;
    let bin = into.join("bin");
    std::fs::create_dir_all(&bin).map_err(io)?;
    let private_python = bin.join(python.file_name().unwrap_or("python".as_ref()));
    std::os::unix::fs::symlink(&interpreter, &private_python).map_err(io)?;
    Ok(private_python)
}

/// The private environment's `pyvenv.cfg`, written by mcplock: `home` (where Python finds its
/// standard library) is the directory of the interpreter that is checked when it starts,
/// whatever the original says; only whether system site-packages are visible is taken from the
/// original.
fn venv_config(original: &Path, interpreter: &Path) -> Result<String, String> {
    let text = crate::edge::fs::read_bounded(original, 64 * 1024)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is gone", original.display()))?;
    let text = String::from_utf8_lossy(&text);
    let system = text.lines().any(|line| {
        line.split_once('=').is_some_and(|(key, value)| {
            key.trim() == "include-system-site-packages" && value.trim() == "true"
        })
    });
    let home = interpreter
        .parent()
        .ok_or_else(|| format!("{} is in no directory", interpreter.display()))?;
    let home = home
        .to_str()
        .filter(|h| !h.contains('\n'))
        .ok_or_else(|| format!("{} is not a path pyvenv.cfg can hold", home.display()))?;
    Ok(format!(
        "home = {home}\ninclude-system-site-packages = {system}\n"
    ))
}

/// The digest of what was copied must be the locked one.
fn held(copied: &str, locked: Option<&str>, what: &str) -> Result<(), String> {
    match locked {
        Some(locked) if locked == copied => Ok(()),
        Some(locked) => Err(format!(
            "{what} changed between its check and its start (the lock recorded {locked}, the copy about to run is {copied}); it is not started: see what changed with `mcplock verify --artifacts`, and restart the server once the install holds still"
        )),
        None => Err(format!(
            "the lock recorded no digest of {what}; re-lock it (`mcplock lock --update`)"
        )),
    }
}

fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::artifact::Artifact;
    use crate::core::launch::Launch;

    fn resolved(command: &str, args: &[&str], cwd: &Path) -> Resolved {
        let launch = Launch::Stdio {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env_keys: Vec::new(),
            cwd: Some(cwd.to_string_lossy().into_owned()),
        };
        match super::super::resolve(&launch) {
            Some(Artifact::Resolved(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn issue_26_a_script_runs_from_a_private_copy_of_what_was_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("server.py"), "import helper\n").unwrap();
        std::fs::write(d.join("helper.py"), "X = 1\n").unwrap();
        std::fs::write(d.join("notes.txt"), "not imported\n").unwrap();
        let args = vec!["-u".to_string(), "server.py".to_string()];
        let locked = resolved("python3", &["-u", "server.py"], d);
        let private = private_copy("python3", &args, d, &locked).unwrap().unwrap();
        // python3 as found, or what it runs when it is a version manager's shim (pyenv's here).
        let found = find_program(d, "python3").unwrap();
        let expected = match super::super::shim_target(d, &found).unwrap() {
            Some(target) => target.to_string_lossy().into_owned(),
            None => "python3".to_string(),
        };
        assert_eq!(private.program, expected);
        assert_eq!(args[0], private.args[0]);
        let copy = Path::new(&private.args[1]);
        assert!(copy.starts_with(private.path()), "{copy:?}");
        assert_eq!(std::fs::read(copy).unwrap(), b"import helper\n");
        assert!(private.path().join("helper.py").is_file());
        assert!(!private.path().join("notes.txt").exists());
        // Only this process may write where the copy runs from.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(private.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        // A neighbour changed after the check: nothing is started.
        std::fs::write(d.join("helper.py"), "X = 2\n").unwrap();
        let refused = private_copy("python3", &args, d, &locked).err().unwrap();
        assert!(
            refused.contains("changed between its check and its start"),
            "{refused}"
        );
    }

    #[test]
    fn issue_26_a_program_runs_from_a_private_copy() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("server"), "#!/bin/sh\nexit 0\n").unwrap();
        make_executable(&d.join("server")).unwrap();
        let locked = resolved("./server", &[], d);
        let private = private_copy("./server", &[], d, &locked).unwrap().unwrap();
        assert!(Path::new(&private.program).starts_with(private.path()));
        assert_eq!(
            std::fs::read(&private.program).unwrap(),
            b"#!/bin/sh\nexit 0\n"
        );
        std::fs::write(d.join("server"), "#!/bin/sh\nexit 1\n").unwrap();
        assert!(private_copy("./server", &[], d, &locked).is_err());
    }

    #[test]
    fn issue_26_an_npm_package_runs_from_a_private_copy_of_its_tree() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let modules = d.join("node_modules");
        std::fs::create_dir_all(modules.join("pkg/dist")).unwrap();
        std::fs::create_dir_all(modules.join("dep")).unwrap();
        std::fs::write(
            modules.join(".package-lock.json"),
            r#"{"packages": {"node_modules/pkg": {"version": "1.0.0", "integrity": "sha512-AAAA"}}}"#,
        )
        .unwrap();
        std::fs::write(
            modules.join("pkg/package.json"),
            r#"{"name": "pkg", "version": "1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(modules.join("pkg/dist/index.js"), "require('dep')\n").unwrap();
        std::fs::write(modules.join("dep/index.js"), "module.exports = 1\n").unwrap();
        let script = "node_modules/pkg/dist/index.js";
        let locked = resolved("node", &[script], d);
        assert_eq!(locked.kind, Kind::Npm);
        let args = vec![script.to_string(), "--stdio".to_string()];
        let private = private_copy("node", &args, d, &locked).unwrap().unwrap();
        assert_eq!(private.program, "node");
        let copy = Path::new(&private.args[0]);
        assert_eq!(
            copy,
            private.path().join("node_modules/pkg/dist/index.js"),
            "{private:?}",
            private = private.args
        );
        assert_eq!(private.args[1], "--stdio");
        assert!(private.path().join("node_modules/dep/index.js").is_file());
        // A dependency changed after the check: nothing is started.
        std::fs::write(modules.join("dep/index.js"), "module.exports = 2\n").unwrap();
        let refused = private_copy("node", &args, d, &locked).err().unwrap();
        assert!(refused.contains("dependencies"), "{refused}");
    }

    /// The interpreter is not copied: the process started is held to the lock by what it
    /// runs, read through /proc (so a file swapped at the interpreter's path is caught).
    #[test]
    fn issue_26_a_started_process_is_held_to_the_pinned_interpreter() {
        let sleep = real(&find_program(Path::new("/"), "sleep").unwrap()).unwrap();
        let mut child = std::process::Command::new(&sleep)
            .arg("30")
            .spawn()
            .unwrap();
        let exe = PathBuf::from(format!("/proc/{}/exe", child.id()));
        let bytes = Pinned::Bytes(super::super::sha256_file(&sleep).unwrap());
        let name = PathBuf::from(sleep.file_name().unwrap());
        let part = Pinned::Part {
            digest: content::file_part(&sleep, &mut Budget::new())
                .unwrap()
                .digest,
            name: name.clone(),
        };
        let checked = (
            check_executable(&exe, &bytes),
            check_executable(&exe, &part),
        );
        let other = Pinned::Part {
            name,
            digest: "sha256:0000".into(),
        };
        let refused = check_executable(&exe, &other);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(checked, (Ok(()), Ok(())));
        let refused = refused.unwrap_err();
        assert!(
            refused.contains("changed between its check and its start"),
            "{refused}"
        );
        assert!(refused.contains("before any message passed"), "{refused}");

        // A binary interpreter is held after the start; a `#!` shim (pyenv's) only before it,
        // from the same bytes that were checked; one that changed is refused outright.
        assert_eq!(to_hold(&sleep, bytes.clone()), Ok(Some(bytes)));
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("python3");
        std::fs::write(&shim, "#!/bin/sh\nexec python3.12 \"$@\"\n").unwrap();
        let pinned = Pinned::Bytes(super::super::sha256_file(&shim).unwrap());
        assert_eq!(to_hold(&shim, pinned.clone()), Ok(None));
        std::fs::write(&shim, "#!/bin/sh\nexec evil \"$@\"\n").unwrap();
        let refused = to_hold(&shim, pinned).unwrap_err();
        assert!(refused.contains("changed since its check"), "{refused}");
    }

    /// A private environment's pyvenv.cfg is mcplock's: `home` (where the standard library is
    /// loaded from) is the checked interpreter's directory, never what the original says.
    #[test]
    fn issue_26_a_private_environment_takes_home_from_the_checked_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("pyvenv.cfg");
        std::fs::write(
            &cfg,
            "home = /tmp/evil/bin\ninclude-system-site-packages = true\nversion = 3.12.1\n",
        )
        .unwrap();
        let written = venv_config(&cfg, Path::new("/usr/local/bin/python3.12")).unwrap();
        assert_eq!(
            written,
            "home = /usr/local/bin\ninclude-system-site-packages = true\n"
        );
        std::fs::write(&cfg, "home = /tmp/evil/bin\n").unwrap();
        let written = venv_config(&cfg, Path::new("/usr/bin/python3")).unwrap();
        assert_eq!(
            written,
            "home = /usr/bin\ninclude-system-site-packages = false\n"
        );
    }

    /// `python -m`: what it may import from the working directory runs from the copy that was
    /// checked, as `-m` runs it (`__main__`, the module's file as `sys.argv[0]`).
    #[test]
    fn issue_26_python_m_imports_from_a_checked_copy_of_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("work");
        std::fs::create_dir(&cwd).unwrap();
        std::fs::write(
            cwd.join("hello_issue26.py"),
            "import sys\nprint(__name__, sys.argv[0].endswith('/mcplock-cwd/hello_issue26.py'), sys.argv[1:], 'checked')\n",
        )
        .unwrap();
        let expected = content::python_path_entry(&cwd, &mut Budget::new())
            .unwrap()
            .digest;
        let private = PrivateDir::new().unwrap();
        let args: Vec<String> = ["-m", "hello_issue26", "--flag"].map(String::from).into();
        let argv = module_args(&args, &cwd, Some(&expected), private.path()).unwrap();
        // Swapped after the copy: what runs is the copy.
        std::fs::write(cwd.join("hello_issue26.py"), "print('swapped')\n").unwrap();
        let out = std::process::Command::new("python3")
            .args(&argv)
            .current_dir(&cwd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "__main__ True ['--flag'] checked\n"
        );
        // Changed before the copy: nothing is started.
        let again = PrivateDir::new().unwrap();
        let refused = module_args(&args, &cwd, Some(&expected), again.path()).unwrap_err();
        assert!(
            refused.contains("changed between its check and its start"),
            "{refused}"
        );
    }

    #[test]
    fn npx_runs_the_only_bin_or_the_one_named_as_the_package() {
        let one = serde_json::json!({"bin": "dist/index.js"});
        assert_eq!(npx_bin(&one, "@scope/tool").unwrap(), "dist/index.js");
        let map = serde_json::json!({"bin": {"tool": "a.js", "other": "b.js"}});
        assert_eq!(npx_bin(&map, "@scope/tool").unwrap(), "a.js");
        let single = serde_json::json!({"bin": {"whatever": "c.js"}});
        assert_eq!(npx_bin(&single, "tool").unwrap(), "c.js");
        assert!(npx_bin(&serde_json::json!({"bin": {"x": "1", "y": "2"}}), "tool").is_err());
        assert!(npx_bin(&serde_json::json!({}), "tool").is_err());
    }

    #[test]
    fn a_console_script_wrapper_is_written_only_for_dotted_names() {
        let wrapper = entry_point_wrapper("mcp-server-x", "mcp_server_x.cli:main [extra]").unwrap();
        assert!(
            wrapper.contains("from mcp_server_x.cli import main\n"),
            "{wrapper}"
        );
        assert!(wrapper.contains("sys.exit(main())"), "{wrapper}");
        assert!(
            wrapper.contains("sys.argv[0] = \"mcp-server-x\""),
            "{wrapper}"
        );
        let nested = entry_point_wrapper("x", "pkg:App.run").unwrap();
        assert!(nested.contains("from pkg import App\n") && nested.contains("sys.exit(App.run())"));
        for bad in [
            "pkg",
            "pkg:main()",
            "os;import x:y",
            "pkg:__import__('os').system",
            ":main",
        ] {
            assert!(entry_point_wrapper("x", bad).is_err(), "{bad}");
        }
        assert!(entry_point_wrapper("x\"; import os", "pkg:main").is_err());
    }
}
