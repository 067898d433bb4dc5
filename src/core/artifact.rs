//! The artifact behind a locked server: the package, image or file whose code a launch runs.
//!
//! A lockfile pins what a server offers; this pins what runs. For a local launch mcplock
//! records which npm package, PyPI distribution, OCI image or file the argv executes, with its
//! exact version and digest, or records that it could not tell and why. This module is the
//! pure part: the model and its JSON, reading an argv into what it asks for ([`Target`]),
//! comparing two artifacts, and rewriting an argv to the exact version ([`pin`]). Finding the
//! artifact on the machine is [`crate::edge::artifact`].

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// What a launch was found to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Artifact {
    Resolved(Resolved),
    /// Not resolved; `reason` says why, so a reader knows what is not pinned.
    Unresolved {
        reason: String,
    },
}

/// A resolved artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub kind: Kind,
    /// npm or PyPI package name, image repository, or the file's absolute path.
    pub name: String,
    /// The exact version (npm, PyPI), the tag (OCI, when named by tag); none for a file.
    pub version: Option<String>,
    /// npm: the registry integrity (`sha512-...`); PyPI: `sha256:` of the distribution's
    /// RECORD, whose every listed file was checked against it; OCI: the image digest;
    /// file: `sha256:` of its bytes.
    pub digest: String,
    /// The interpreter that runs a script file, with the `sha256:` of its bytes.
    pub interpreter: Option<(String, String)>,
    /// What runs, by content (lockfile version 5): named parts (`package`, `dependencies`,
    /// `site-packages`, `interpreter`, `script`, `script-directory`, ...), each a digest over
    /// every file in it. `None` for an image or a bare executable, whose `digest` already is
    /// its content, and for an artifact recorded before content was pinned.
    pub content: Option<Content>,
    /// True when a start cannot pick another version by itself (a path, an exact version,
    /// an image digest); false when the launch floats (`npx -y pkg`, an image tag).
    pub pinned: bool,
}

/// The content of an artifact: its parts by name.
pub type Content = BTreeMap<String, Part>;

/// One part of an artifact's content: a digest over every file in it (path and bytes, in
/// byte order of the paths), with how many files and bytes it covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
}

impl Part {
    fn to_json(&self) -> Value {
        json!({"bytes": self.bytes, "digest": self.digest, "files": self.files})
    }

    fn from_json(name: &str, value: &Value) -> Result<Part, ArtifactError> {
        let bad = || {
            ArtifactError(format!(
                "content part {name:?} must be {{\"bytes\", \"digest\", \"files\"}}: two counts and a sha256 digest"
            ))
        };
        let map = value.as_object().filter(|m| m.len() == 3).ok_or_else(bad)?;
        let count = |k: &str| map.get(k).and_then(Value::as_u64).ok_or_else(bad);
        let digest = map
            .get("digest")
            .and_then(Value::as_str)
            .filter(|d| is_sha256(d))
            .ok_or_else(bad)?;
        Ok(Part {
            digest: digest.to_string(),
            files: count("files")?,
            bytes: count("bytes")?,
        })
    }

    /// `sha256:0123456789ab… (N files)`.
    fn describe(&self) -> String {
        let short = self.digest.get(..19).unwrap_or(&self.digest);
        let unit = if self.files == 1 { "file" } else { "files" };
        format!("{short}… ({} {unit})", self.files)
    }
}

fn is_sha256(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn content_from_json(value: &Value) -> Result<Content, ArtifactError> {
    let map = value
        .as_object()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ArtifactError("\"content\" must be a non-empty object of parts".into()))?;
    map.iter()
        .map(|(name, part)| Ok((name.clone(), Part::from_json(name, part)?)))
        .collect()
}

/// The parts of `content` in one line: `package sha256:… (12 files), dependencies …`.
pub fn describe_content(content: &Content) -> String {
    content
        .iter()
        .map(|(name, part)| format!("{name} {}", part.describe()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parts whose content differs between `locked` and `now` (added and removed parts too).
pub fn changed_parts(locked: &Content, now: &Content) -> Vec<String> {
    let mut names: Vec<&String> = locked.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| locked.get(*n) != now.get(*n))
        .map(|n| {
            let side = |c: &Content| c.get(n).map_or_else(|| "absent".into(), Part::describe);
            format!("{n}: locked {}, now {}", side(locked), side(now))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Npm,
    Pypi,
    Oci,
    File,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Npm => "npm",
            Kind::Pypi => "pypi",
            Kind::Oci => "oci",
            Kind::File => "file",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Npm, Kind::Pypi, Kind::Oci, Kind::File]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Why a recorded artifact cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("artifact: {0}")]
pub struct ArtifactError(String);

impl Artifact {
    pub fn unresolved(reason: impl Into<String>) -> Artifact {
        Artifact::Unresolved {
            reason: reason.into(),
        }
    }

    pub fn resolved(&self) -> Option<&Resolved> {
        match self {
            Artifact::Resolved(r) => Some(r),
            Artifact::Unresolved { .. } => None,
        }
    }

    /// The recorded form (sorted keys; `version` and `interpreter` only when known).
    pub fn to_json(&self) -> Value {
        match self {
            Artifact::Unresolved { reason } => json!({"kind": "unresolved", "reason": reason}),
            Artifact::Resolved(r) => {
                let mut out = Map::new();
                out.insert("digest".into(), json!(r.digest));
                if let Some((name, digest)) = &r.interpreter {
                    out.insert(
                        "interpreter".into(),
                        json!({"digest": digest, "name": name}),
                    );
                }
                if let Some(content) = &r.content {
                    let parts: Map<String, Value> = content
                        .iter()
                        .map(|(name, part)| (name.clone(), part.to_json()))
                        .collect();
                    out.insert("content".into(), Value::Object(parts));
                }
                out.insert("kind".into(), json!(r.kind.as_str()));
                out.insert("name".into(), json!(r.name));
                out.insert("pinned".into(), json!(r.pinned));
                if let Some(version) = &r.version {
                    out.insert("version".into(), json!(version));
                }
                Value::Object(out)
            }
        }
    }

    /// Reads the recorded form strictly: exactly the fields of its kind, every one typed.
    pub fn from_json(value: &Value) -> Result<Artifact, ArtifactError> {
        let bad = |m: &str| ArtifactError(m.to_string());
        let map = value.as_object().ok_or_else(|| bad("expected an object"))?;
        let text = |key: &str| -> Result<String, ArtifactError> {
            match map.get(key) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(_) => Err(bad(&format!("\"{key}\" must be a non-empty string"))),
                None => Err(bad(&format!("missing \"{key}\""))),
            }
        };
        let kind = text("kind")?;
        let allowed: &[&str] = if kind == "unresolved" {
            &["kind", "reason"]
        } else {
            &[
                "content",
                "digest",
                "interpreter",
                "kind",
                "name",
                "pinned",
                "version",
            ]
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(&format!("unknown field {unknown:?} for kind {kind:?}")));
        }
        if kind == "unresolved" {
            return Ok(Artifact::unresolved(text("reason")?));
        }
        let kind = Kind::parse(&kind).ok_or_else(|| {
            bad(&format!(
                "unknown kind {kind:?} (expected npm, pypi, oci, file or unresolved)"
            ))
        })?;
        let version = match map.get("version") {
            None => None,
            Some(_) => Some(text("version")?),
        };
        let interpreter = match map.get("interpreter") {
            None => None,
            Some(Value::Object(i))
                if i.len() == 2
                    && matches!(i.get("name"), Some(Value::String(_)))
                    && matches!(i.get("digest"), Some(Value::String(_))) =>
            {
                let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                Some((s("name"), s("digest")))
            }
            Some(_) => {
                return Err(bad(
                    "\"interpreter\" must be {\"digest\", \"name\"} strings",
                ));
            }
        };
        let pinned = match map.get("pinned") {
            Some(Value::Bool(b)) => *b,
            _ => return Err(bad("\"pinned\" must be true or false")),
        };
        let content = map.get("content").map(content_from_json).transpose()?;
        Ok(Artifact::Resolved(Resolved {
            kind,
            name: text("name")?,
            version,
            digest: text("digest")?,
            interpreter,
            content,
            pinned,
        }))
    }

    /// What runs, in one line.
    pub fn describe(&self) -> String {
        match self {
            Artifact::Unresolved { reason } => format!("not resolved: {reason}"),
            Artifact::Resolved(r) => {
                let mut out = format!("{} {}", r.kind.as_str(), r.name);
                if let Some(v) = &r.version {
                    out.push_str(&format!(" {v}"));
                }
                out.push_str(&format!(" ({})", r.digest));
                if let Some((name, digest)) = &r.interpreter {
                    out.push_str(&format!(", run by {name} ({digest})"));
                }
                match &r.content {
                    Some(content) => {
                        out.push_str(&format!("; content {}", describe_content(content)))
                    }
                    None if r.kind != Kind::Oci => out.push_str("; content not recorded"),
                    None => {}
                }
                out
            }
        }
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// How what runs now stands against what was locked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// The same code: kind, name, version, digest, interpreter and content are equal.
    Same,
    /// Something else runs, or the locked artifact can no longer be resolved (fail closed:
    /// what cannot be shown to be the same is reported as changed).
    Changed,
    /// The lock recorded no resolved artifact: nothing is pinned to compare against.
    NotPinned,
    /// The lock recorded the artifact by name, version and digest but not its content (a
    /// lockfile before version 5): those agree, and the files that run are not pinned.
    ContentNotPinned,
}

/// Compares the artifact resolved now with the one locked (`None`: an older lockfile).
pub fn compare(locked: Option<&Artifact>, now: &Artifact) -> Comparison {
    let Some(l) = locked.and_then(Artifact::resolved) else {
        return Comparison::NotPinned;
    };
    let Artifact::Resolved(n) = now else {
        return Comparison::Changed;
    };
    let same_identity = l.kind == n.kind
        && l.name == n.name
        && l.version == n.version
        && l.digest == n.digest
        && l.interpreter == n.interpreter;
    match (&l.content, &n.content) {
        _ if !same_identity => Comparison::Changed,
        (None, Some(_)) => Comparison::ContentNotPinned,
        (l, n) if l == n => Comparison::Same,
        _ => Comparison::Changed,
    }
}

/// What an argv asks to run, read from the argv alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `npx [-y] pkg[@spec] ...`; `index` is the position of the package in the args.
    Npx { package: NpmSpec, index: usize },
    /// `uvx [--from] spec ...`; `index` is the position of the requirement in the args.
    Uvx {
        uvx: String,
        requirement: PyRequirement,
        index: usize,
    },
    /// `pipx run pkg ...`.
    PythonRunner { tool: String, package: String },
    /// `python -m module ...`.
    PythonModule { python: String, module: String },
    /// `docker|podman run ... image ...`; `index` is the position of the image in the args.
    Oci {
        engine: String,
        image: String,
        index: usize,
    },
    /// A program, and for an interpreter the script it runs.
    Program {
        command: String,
        script: Option<String>,
    },
    /// The argv cannot be read with certainty.
    Unreadable(String),
}

/// An npm package as npx is given it: `name`, `name@version`, `name@range` or `name@tag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpmSpec {
    /// As given (npx hashes this to name its cache directory).
    pub raw: String,
    pub name: String,
    /// The part after `@`, if any.
    pub spec: Option<String>,
}

impl NpmSpec {
    pub fn parse(raw: &str) -> Option<NpmSpec> {
        let (scope, rest) = match raw.strip_prefix('@') {
            Some(rest) => {
                let slash = rest.find('/')?;
                (Some(&rest[..slash]), &rest[slash + 1..])
            }
            None => (None, raw),
        };
        let (base, spec) = match rest.split_once('@') {
            Some((b, s)) => (b, Some(s.to_string())),
            None => (rest, None),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        };
        if !valid(base) || scope.is_some_and(|s| !valid(s)) || spec.as_deref() == Some("") {
            return None;
        }
        let name = match scope {
            Some(s) => format!("@{s}/{base}"),
            None => base.to_string(),
        };
        Some(NpmSpec {
            raw: raw.to_string(),
            name,
            spec,
        })
    }

    /// An exact version (`1.2.3`, `1.2.3-rc.1`): npx runs exactly it or fetches exactly it.
    pub fn exact_version(&self) -> Option<&str> {
        let spec = self.spec.as_deref()?;
        let core = spec.split(['-', '+']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        (parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
        .then_some(spec)
    }
}

/// The file name of a path-like command.
pub fn basename(command: &str) -> &str {
    command.rsplit('/').next().unwrap_or(command)
}

fn is_python(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Interpreters whose first non-option argument is the script they run.
pub fn is_interpreter(name: &str) -> bool {
    is_python(name)
        || matches!(
            name,
            "node" | "nodejs" | "deno" | "bun" | "sh" | "bash" | "zsh" | "ruby" | "perl"
        )
}

// `docker run` / `podman run` options that take a value as the next argument. An option not
// listed here and not in BOOLEAN_RUN_FLAGS makes the argv unreadable: guessing would pick the
// wrong argument as the image.
const VALUED_RUN_FLAGS: &[&str] = &[
    "-a",
    "--attach",
    "--add-host",
    "--annotation",
    "--blkio-weight",
    "--cap-add",
    "--cap-drop",
    "--cgroup-parent",
    "--cgroupns",
    "--cidfile",
    "--cpu-period",
    "--cpu-quota",
    "--cpu-rt-period",
    "--cpu-rt-runtime",
    "-c",
    "--cpu-shares",
    "--cpus",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--detach-keys",
    "--device",
    "--device-cgroup-rule",
    "--device-read-bps",
    "--device-read-iops",
    "--device-write-bps",
    "--device-write-iops",
    "--dns",
    "--dns-option",
    "--dns-search",
    "--domainname",
    "--entrypoint",
    "-e",
    "--env",
    "--env-file",
    "--expose",
    "--gpus",
    "--group-add",
    "--health-cmd",
    "--health-interval",
    "--health-retries",
    "--health-start-period",
    "--health-timeout",
    "-h",
    "--hostname",
    "--ip",
    "--ip6",
    "--ipc",
    "--isolation",
    "--label-file",
    "-l",
    "--label",
    "--link",
    "--log-driver",
    "--log-opt",
    "--mac-address",
    "-m",
    "--memory",
    "--memory-reservation",
    "--memory-swap",
    "--memory-swappiness",
    "--mount",
    "--name",
    "--network",
    "--net",
    "--network-alias",
    "--oom-score-adj",
    "--pid",
    "--pids-limit",
    "--platform",
    "-p",
    "--publish",
    "--pull",
    "--restart",
    "--runtime",
    "--security-opt",
    "--shm-size",
    "--stop-signal",
    "--stop-timeout",
    "--storage-opt",
    "--sysctl",
    "--tmpfs",
    "--ulimit",
    "-u",
    "--user",
    "--userns",
    "--uts",
    "-v",
    "--volume",
    "--volume-driver",
    "--volumes-from",
    "-w",
    "--workdir",
];
const BOOLEAN_RUN_FLAGS: &[&str] = &[
    "-d",
    "--detach",
    "-i",
    "--interactive",
    "-t",
    "--tty",
    "--rm",
    "--init",
    "--privileged",
    "-P",
    "--publish-all",
    "--read-only",
    "--no-healthcheck",
    "--oom-kill-disable",
    "-q",
    "--quiet",
    "--sig-proxy",
];

/// Reads what `command args` asks to run.
pub fn target(command: &str, args: &[String]) -> Target {
    let name = basename(command);
    match name {
        "npx" => npx_target(args),
        "uvx" => uvx_target(command, args),
        "pipx" if args.first().is_some_and(|a| a == "run") => {
            match args[1..].iter().find(|a| !a.starts_with('-')) {
                Some(p) => Target::PythonRunner {
                    tool: "pipx run".into(),
                    package: p.clone(),
                },
                None => Target::Unreadable("pipx run without a package".into()),
            }
        }
        "docker" | "podman" => oci_target(name, args),
        _ if is_python(name) && args.first().is_some_and(|a| a == "-m") => match args.get(1) {
            Some(module) => Target::PythonModule {
                python: command.to_string(),
                module: module.clone(),
            },
            None => Target::Unreadable("python -m without a module".into()),
        },
        _ if is_interpreter(name) => match script_argument(args) {
            Some(script) => Target::Program {
                command: command.to_string(),
                script: Some(script),
            },
            None => Target::Unreadable(format!(
                "{name} runs inline code or code from its input (no script file among its arguments): nothing on disk to pin"
            )),
        },
        _ => Target::Program {
            command: command.to_string(),
            script: None,
        },
    }
}

/// The first argument that is not an option: the script an interpreter runs. Options that
/// take a value in the next argument (`-r mod`) are stepped over.
fn script_argument(args: &[String]) -> Option<String> {
    const VALUED: &[&str] = &[
        "-r",
        "--require",
        "--import",
        "--loader",
        "-C",
        "--conditions",
    ];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if matches!(a.as_str(), "-e" | "--eval" | "-p" | "--print" | "-c" | "-") {
            return None;
        }
        if VALUED.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            return Some(a.clone());
        }
        i += 1;
    }
    None
}

/// A PyPI requirement as uvx is given it: `name`, `name==1.2.3`, `name>=1`, `name[extra]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyRequirement {
    pub raw: String,
    /// The distribution name as given (compare with [`normalize_python_name`]).
    pub name: String,
    /// The exact version after `==`, if that is the whole specifier.
    pub exact: Option<String>,
}

impl PyRequirement {
    pub fn parse(raw: &str) -> Option<PyRequirement> {
        let end = raw
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .unwrap_or(raw.len());
        let (name, rest) = raw.split_at(end);
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return None;
        }
        let exact = rest
            .strip_prefix("==")
            .filter(|v| {
                !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".+!-_".contains(c))
            })
            .map(str::to_string);
        if exact.is_none() && !rest.is_empty() && !rest.starts_with(['<', '>', '=', '!', '~', '['])
        {
            return None;
        }
        Some(PyRequirement {
            raw: raw.to_string(),
            name: name.to_string(),
            exact,
        })
    }
}

/// PEP 503's normalized form of a distribution name: lowercase, runs of `-_.` as one `-`.
pub fn normalize_python_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if "-_.".contains(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn uvx_target(command: &str, args: &[String]) -> Target {
    let (index, raw) = match args {
        [from, spec, ..] if from == "--from" => (1, spec),
        [first, ..] if first.starts_with('-') => {
            return Target::Unreadable(format!(
                "uvx option {first:?} is not resolved by this mcplock; name the package first, or with --from"
            ));
        }
        [spec, ..] => (0, spec),
        [] => return Target::Unreadable("uvx without a package".into()),
    };
    match PyRequirement::parse(raw) {
        Some(requirement) => Target::Uvx {
            uvx: command.to_string(),
            requirement,
            index,
        },
        None => Target::Unreadable(format!(
            "{raw:?} is not a PyPI requirement mcplock reads (a path, URL or git spec is not resolved)"
        )),
    }
}

fn npx_target(args: &[String]) -> Target {
    for (i, a) in args.iter().enumerate() {
        match a.as_str() {
            "-y" | "--yes" | "-q" | "--quiet" | "--no-install" => continue,
            "-p" | "--package" | "-c" | "--call" => {
                return Target::Unreadable(format!(
                    "npx {a} is not resolved by this mcplock; name the package as npx's first argument"
                ));
            }
            _ if a.starts_with('-') => {
                return Target::Unreadable(format!("npx option {a:?} is not understood"));
            }
            _ => {
                return match NpmSpec::parse(a) {
                    Some(package) => Target::Npx { package, index: i },
                    None => Target::Unreadable(format!(
                        "{a:?} is not an npm registry package (a path, URL or git spec is not resolved)"
                    )),
                };
            }
        }
    }
    Target::Unreadable("npx without a package".into())
}

fn oci_target(engine: &str, args: &[String]) -> Target {
    let start = match args {
        [run, ..] if run == "run" => 1,
        [container, run, ..] if container == "container" && run == "run" => 2,
        _ => {
            return Target::Unreadable(format!("{engine} without `run`: no image to resolve"));
        }
    };
    let mut i = start;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') {
            break;
        }
        let flag = a.split('=').next().unwrap_or(a);
        if a.contains('=') && flag.starts_with("--") {
            i += 1;
        } else if VALUED_RUN_FLAGS.contains(&flag) {
            i += 2;
        } else if BOOLEAN_RUN_FLAGS.contains(&flag)
            || (a.len() > 2
                && !a.starts_with("--")
                && a[1..]
                    .chars()
                    .all(|c| BOOLEAN_RUN_FLAGS.contains(&format!("-{c}").as_str())))
        {
            i += 1;
        } else {
            return Target::Unreadable(format!(
                "{engine} run option {a:?} is not understood, so the image argument is not certain"
            ));
        }
    }
    match args.get(i) {
        Some(image) => Target::Oci {
            engine: engine.to_string(),
            image: image.clone(),
            index: i,
        },
        None => Target::Unreadable(format!("{engine} run without an image")),
    }
}

/// An OCI reference split into repository, tag and digest.
pub fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (&rest[..at], Some(&rest[at + 1..]), digest)
        }
        None => (rest, None, digest),
    }
}

/// The args of a launch rewritten to run exactly `artifact`: `npx pkg@1.2.3`, `image@sha256:…`.
/// `None` when there is nothing to rewrite (a path already names what runs, or it is pinned).
pub fn pin(command: &str, args: &[String], artifact: &Artifact) -> Option<Vec<String>> {
    let resolved = artifact.resolved()?;
    if resolved.pinned {
        return None;
    }
    let mut out = args.to_vec();
    match (target(command, args), resolved.kind) {
        (Target::Npx { package, index }, Kind::Npm) if package.name == resolved.name => {
            out[index] = format!("{}@{}", resolved.name, resolved.version.as_deref()?);
        }
        (
            Target::Uvx {
                requirement, index, ..
            },
            Kind::Pypi,
        ) if normalize_python_name(&requirement.name) == normalize_python_name(&resolved.name) => {
            out[index] = format!("{}=={}", requirement.name, resolved.version.as_deref()?);
        }
        (Target::Oci { image, index, .. }, Kind::Oci) => {
            let (repo, _, _) = split_image(&image);
            out[index] = format!("{repo}@{}", resolved.digest);
        }
        _ => return None,
    }
    Some(out)
}

impl crate::core::code::Coded for ArtifactError {
    fn code(&self) -> crate::core::code::Code {
        // A recorded artifact is part of the lockfile.
        crate::core::code::Code::LockfileInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn npm(version: &str, pinned: bool) -> Artifact {
        Artifact::Resolved(Resolved {
            kind: Kind::Npm,
            name: "@scope/pkg".into(),
            version: Some(version.into()),
            digest: "sha512-abc".into(),
            interpreter: None,
            content: Some(content("package", 'a')),
            pinned,
        })
    }

    fn content(part: &str, hex: char) -> Content {
        Content::from([(
            part.to_string(),
            Part {
                digest: format!("sha256:{}", hex.to_string().repeat(64)),
                files: 2,
                bytes: 10,
            },
        )])
    }

    #[test]
    fn round_trips_and_reads_strictly() {
        let file = Artifact::Resolved(Resolved {
            kind: Kind::File,
            name: "/srv/server.js".into(),
            version: None,
            digest: format!("sha256:{}", "0".repeat(64)),
            interpreter: Some(("/usr/bin/node".into(), "sha256:1".into())),
            content: None,
            pinned: true,
        });
        for a in [npm("1.2.3", false), file, Artifact::unresolved("why")] {
            assert_eq!(Artifact::from_json(&a.to_json()).unwrap(), a);
        }
        for bad in [
            json!({"kind": "npm", "name": "x", "digest": "d"}),
            json!({"kind": "npm", "name": "x", "digest": "d", "pinned": true, "extra": 1}),
            json!({"kind": "rpm", "name": "x", "digest": "d", "pinned": true}),
            json!({"kind": "unresolved"}),
            json!({"kind": "unresolved", "reason": "r", "name": "x"}),
            json!({"kind": "npm", "name": "", "digest": "d", "pinned": true}),
            json!("npm"),
            json!({"kind": "npm", "name": "x", "digest": "d", "pinned": true, "content": {}}),
            json!({"kind": "npm", "name": "x", "digest": "d", "pinned": true,
                   "content": {"package": {"digest": "sha256:00", "files": 1, "bytes": 1}}}),
            json!({"kind": "npm", "name": "x", "digest": "d", "pinned": true,
                   "content": {"package": {"digest": format!("sha256:{}", "0".repeat(64)),
                                           "files": -1, "bytes": 1}}}),
        ] {
            assert!(Artifact::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn comparison_fails_closed() {
        let locked = npm("1.2.3", true);
        assert_eq!(
            compare(Some(&locked), &npm("1.2.3", false)),
            Comparison::Same
        );
        assert_eq!(
            compare(Some(&locked), &npm("1.2.4", true)),
            Comparison::Changed
        );
        assert_eq!(
            compare(Some(&locked), &Artifact::unresolved("gone")),
            Comparison::Changed
        );
        assert_eq!(
            compare(Some(&Artifact::unresolved("x")), &locked),
            Comparison::NotPinned
        );
        assert_eq!(compare(None, &locked), Comparison::NotPinned);
    }

    #[test]
    fn issue_26_content_is_compared_and_a_lock_without_it_says_so() {
        let locked = npm("1.2.3", true);
        let with = |c: Option<Content>| {
            let Artifact::Resolved(mut r) = npm("1.2.3", true) else {
                unreachable!()
            };
            r.content = c;
            Artifact::Resolved(r)
        };
        // One edited file in the package: same name, version and integrity, other content.
        let edited = with(Some(content("package", 'b')));
        assert_eq!(compare(Some(&locked), &edited), Comparison::Changed);
        let extra = with(Some(
            content("package", 'a')
                .into_iter()
                .chain(content("dependencies", 'c'))
                .collect(),
        ));
        assert_eq!(compare(Some(&locked), &extra), Comparison::Changed);
        // A version 4 record (no content) against the same package now: a warning, not a pass.
        let old = with(None);
        assert_eq!(compare(Some(&old), &locked), Comparison::ContentNotPinned);
        assert!(old.describe().ends_with("content not recorded"), "{old}");
        // ... and still changed when the version differs.
        assert_eq!(
            compare(Some(&old), &npm("1.2.4", true)),
            Comparison::Changed
        );
        let (Some(l), Some(n)) = (
            locked.resolved().and_then(|r| r.content.as_ref()),
            extra.resolved().and_then(|r| r.content.as_ref()),
        ) else {
            unreachable!()
        };
        let parts = changed_parts(l, n);
        assert_eq!(parts.len(), 1, "{parts:?}");
        assert!(parts[0].starts_with("dependencies: locked absent, now sha256:cccc"));
    }

    #[test]
    fn reads_what_an_argv_runs() {
        let t = target("npx", &args(&["-y", "@scope/pkg@^1.2", "--flag"]));
        let Target::Npx { package, index } = t else {
            panic!("{t:?}")
        };
        assert_eq!(
            (package.name.as_str(), package.spec.as_deref(), index),
            ("@scope/pkg", Some("^1.2"), 1)
        );
        assert_eq!(package.exact_version(), None);
        assert_eq!(
            NpmSpec::parse("pkg@1.2.3-rc.1").unwrap().exact_version(),
            Some("1.2.3-rc.1")
        );
        assert!(matches!(
            target("npx", &args(&["./local"])),
            Target::Unreadable(_)
        ));
        assert!(matches!(
            target("npx", &args(&["-p", "x", "y"])),
            Target::Unreadable(_)
        ));
        assert_eq!(
            target(
                "/usr/bin/docker",
                &args(&[
                    "run",
                    "-i",
                    "--rm",
                    "-e",
                    "K=v",
                    "--name",
                    "n",
                    "ghcr.io/o/img:1",
                    "serve"
                ])
            ),
            Target::Oci {
                engine: "docker".into(),
                image: "ghcr.io/o/img:1".into(),
                index: 7
            }
        );
        assert_eq!(
            target("docker", &args(&["run", "-it", "--env=A=1", "img"])),
            Target::Oci {
                engine: "docker".into(),
                image: "img".into(),
                index: 3
            }
        );
        assert!(matches!(
            target("docker", &args(&["run", "--mystery", "x", "img"])),
            Target::Unreadable(_)
        ));
        assert_eq!(
            target("python3.12", &args(&["-m", "mcp_server_sqlite"])),
            Target::PythonModule {
                python: "python3.12".into(),
                module: "mcp_server_sqlite".into()
            }
        );
        assert_eq!(
            target(
                "node",
                &args(&["--require", "x", "dist/index.js", "--port"])
            ),
            Target::Program {
                command: "node".into(),
                script: Some("dist/index.js".into())
            }
        );
        assert!(matches!(
            target("node", &args(&["-e", "code"])),
            Target::Unreadable(_)
        ));
        assert!(matches!(
            target("/bin/sh", &args(&["-c", "exec x"])),
            Target::Unreadable(_)
        ));
        let Target::Uvx {
            requirement, index, ..
        } = target(
            "uvx",
            &args(&["--from", "Mcp_Server.sqlite==2025.4.25", "serve"]),
        )
        else {
            panic!("not uvx")
        };
        assert_eq!(
            (
                requirement.name.as_str(),
                requirement.exact.as_deref(),
                index
            ),
            ("Mcp_Server.sqlite", Some("2025.4.25"), 1)
        );
        assert_eq!(
            normalize_python_name(&requirement.name),
            "mcp-server-sqlite"
        );
        let Target::Uvx { requirement, .. } = target("uvx", &args(&["pkg>=1,<2"])) else {
            panic!("not uvx")
        };
        assert_eq!(requirement.exact, None);
        for bad in [&["--python", "3.12", "pkg"][..], &["./local"], &[]] {
            assert!(
                matches!(target("uvx", &args(bad)), Target::Unreadable(_)),
                "{bad:?}"
            );
        }
        assert!(matches!(
            target("pipx", &args(&["run", "pkg"])),
            Target::PythonRunner { .. }
        ));
    }

    #[test]
    fn pins_a_floating_launch() {
        let pypi = Artifact::Resolved(Resolved {
            kind: Kind::Pypi,
            name: "mcp-server-sqlite".into(),
            version: Some("2025.4.25".into()),
            digest: "sha256:x".into(),
            interpreter: None,
            content: None,
            pinned: false,
        });
        assert_eq!(
            pin(
                "uvx",
                &args(&["mcp_server_sqlite", "--db-path", "d"]),
                &pypi
            ),
            Some(args(&["mcp_server_sqlite==2025.4.25", "--db-path", "d"]))
        );
        assert_eq!(
            pin(
                "uvx",
                &args(&["--from", "mcp-server-sqlite>=2025", "mcp-server-sqlite"]),
                &pypi
            ),
            Some(args(&[
                "--from",
                "mcp-server-sqlite==2025.4.25",
                "mcp-server-sqlite"
            ]))
        );
        assert_eq!(
            pin(
                "npx",
                &args(&["-y", "@scope/pkg", "serve"]),
                &npm("1.2.3", false)
            ),
            Some(args(&["-y", "@scope/pkg@1.2.3", "serve"]))
        );
        assert_eq!(
            pin(
                "npx",
                &args(&["-y", "@scope/pkg@1.2.3"]),
                &npm("1.2.3", true)
            ),
            None
        );
        let image = Artifact::Resolved(Resolved {
            kind: Kind::Oci,
            name: "ghcr.io/o/img".into(),
            version: Some("1".into()),
            digest: "sha256:abc".into(),
            interpreter: None,
            content: None,
            pinned: false,
        });
        assert_eq!(
            pin("docker", &args(&["run", "-i", "ghcr.io/o/img:1"]), &image),
            Some(args(&["run", "-i", "ghcr.io/o/img@sha256:abc"]))
        );
        assert_eq!(
            split_image("localhost:5000/a/b:2@sha256:x"),
            ("localhost:5000/a/b", Some("2"), Some("sha256:x"))
        );
        assert_eq!(
            split_image("localhost:5000/a"),
            ("localhost:5000/a", None, None)
        );
    }
}
