//! Reading the lockfile a command stands on, finding a server's entry in it, and relaunching
//! the servers it records (after checking its signature when asked).

use super::exit::{Code, fail};
use super::scan::scan_server;
use super::{CliError, ServerArgs, SignatureCheck};
use crate::core::launch::Launch;
use crate::core::lockfile::{Checked, Lockfile, ServerLock};
use crate::core::signature::{Covered, frame_value, header_room, put_header};
use crate::core::text::escape;
use crate::edge::fs::read_bounded;
use crate::mcp::{ProtocolChoice, ProtocolVersion};
use std::path::Path;

pub use super::files::MAX_LOCKFILE_BYTES;

/// Reads and strictly checks a lockfile; `Ok(None)` when it does not exist.
pub fn load_lockfile(path: &Path) -> Result<Option<Lockfile>, CliError> {
    let bytes = read_bounded(path, MAX_LOCKFILE_BYTES)
        .map_err(|e| fail(Code::InputUnreadable, e.to_string()))?;
    bytes
        .map(|b| {
            Lockfile::parse(&b).map_err(|e| {
                fail(
                    Code::LockfileInvalid,
                    format!("{} is not a valid lockfile: {e}", path.display()),
                )
            })
        })
        .transpose()
}

/// Reads the lockfile at `path` for `verify`: `check` judges its signature over what it covers
/// while, side by side, the lockfile's own strict checks run (each takes a while on a large
/// file). A file in the form mcplock writes is canonicalized in one pass without building its
/// definitions; anything else is parsed strictly, which also says what is wrong with it.
/// Returns what `check` returned and what the strict read found per server.
pub fn verify_lockfile<T: Send>(
    path: &Path,
    check: impl FnOnce(Covered<'_>) -> Result<T, CliError> + Send,
) -> Result<(T, Checked), CliError> {
    let text = super::exit::read_input(path, MAX_LOCKFILE_BYTES, "lockfile")?;
    let (signed, counts) = match Lockfile::stream_text(&text, header_room()) {
        Some(mut streamed) => {
            drop(text);
            let start = put_header(&mut streamed.canonical);
            std::thread::scope(|scope| {
                let strict = scope.spawn(|| Lockfile::check_streamed(&streamed));
                let covered = Covered::in_frame(&streamed.canonical, start);
                (check(covered), strict.join())
            })
        }
        None => {
            let document = super::files::parse_lockfile_json(path, &text)?;
            drop(text);
            let (buffer, start) = frame_value(&document);
            std::thread::scope(|scope| {
                let strict = scope.spawn(|| Lockfile::check_value(&document));
                (check(Covered::in_frame(&buffer, start)), strict.join())
            })
        }
    };
    let signed = signed?;
    let counts = counts
        .map_err(|_| fail(Code::Internal, "internal error while reading the lockfile"))?
        .map_err(|e| {
            fail(
                Code::LockfileRejected,
                format!(
                    "the signature holds, but {} fails its own checks: {e}",
                    path.display()
                ),
            )
        })?;
    Ok((signed, counts))
}

/// The value of an environment variable here, for a placeholder a lock recorded.
fn env_lookup(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// True when `given` (the argv or URL a host passed, its placeholders already expanded, or not)
/// is the `locked` launch. A lock records `${VAR}`, `${env:VAR}` and `${VAR:-default}` as
/// written: each must stand for the value of that variable here (its default when unset), or
/// be passed as written. A command is held to its argv (the env it inherits is checked by name
/// elsewhere); a URL to the URL (normalized once expanded) and the names of its headers.
pub fn launch_accepts(locked: &Launch, given: &Launch) -> bool {
    match (locked, given) {
        (Launch::Stdio { .. }, Launch::Stdio { command, args, .. }) => {
            locked.is_command(command, args, &env_lookup)
        }
        (
            Launch::Http { url, header_names },
            Launch::Http {
                url: given_url,
                header_names: given_names,
            },
        ) => {
            header_names == given_names
                && (url == given_url
                    || crate::core::launch::expand_env(url, &env_lookup)
                        .and_then(|u| reqwest::Url::parse(&u).ok())
                        .is_some_and(|u| u.as_str() == given_url))
        }
        _ => false,
    }
}

/// The entry a live server will be held against, found before it is started: the one named
/// `name`, else the only entry locked with this launch (argv and env names, or URL and header
/// names; placeholders as [`launch_accepts`] reads them).
pub fn entry_for<'a>(
    lockfile: &'a Lockfile,
    name: Option<&str>,
    launch: &Launch,
) -> Option<&'a ServerLock> {
    let name = name
        .map(str::to_owned)
        .or_else(|| name_for(lockfile, launch))?;
    lockfile.servers.get(&name)
}

/// The name of the one locked server with this exact launch (command, arguments, variable
/// names and directory), if exactly one has it: a server locked from a host config under its
/// config key is found again by its command.
pub fn name_for(lockfile: &Lockfile, launch: &Launch) -> Option<String> {
    only_match(lockfile, launch, true)
}

/// Like [`entry_for`], matching a command whatever variables it is given (the ones it was
/// locked with may still be to add).
pub fn entry_ignoring_env<'a>(
    lockfile: &'a Lockfile,
    name: Option<&str>,
    launch: &Launch,
) -> Option<&'a ServerLock> {
    let name = name
        .map(str::to_owned)
        .or_else(|| only_match(lockfile, launch, false))?;
    lockfile.servers.get(&name)
}

/// The name of the only locked server whose launch accepts `launch` in the same directory,
/// comparing the variable names too when `env` is set.
fn only_match(lockfile: &Lockfile, launch: &Launch, env: bool) -> Option<String> {
    let mut matching = lockfile.servers.iter().filter(|(_, s)| {
        launch_accepts(&s.launch, launch)
            && (!env || s.launch.env_keys() == launch.env_keys())
            && s.launch.cwd() == launch.cwd()
    });
    let (first, _) = matching.next()?;
    matching.next().is_none().then(|| first.clone())
}

/// A recorded value with its environment placeholders filled from the environment, to start
/// the server as the host would; a variable that is not set is named (never a value).
fn filled(server_name: &str, value: &str) -> Result<String, CliError> {
    if !value.contains("${") {
        return Ok(value.to_string());
    }
    crate::core::launch::expand_env(value, &env_lookup).ok_or_else(|| {
        fail(
            Code::EnvMissing,
            format!(
                "server {server_name:?} was locked with the placeholder(s) in {}; set the variable(s) they name before relaunching",
                escape(value)
            ),
        )
    })
}

/// `text` with the value of every variable the placeholders of `launch` name (and of every env
/// var it was locked with) replaced by `***`: what the host or mcplock filled in must not be
/// printed back.
pub fn hide_placeholder_values(text: &str, launch: &Launch) -> String {
    let recorded: Vec<&str> = match launch {
        Launch::Stdio { command, args, .. } => std::iter::once(command.as_str())
            .chain(args.iter().map(String::as_str))
            .collect(),
        Launch::Http { url, .. } => vec![url.as_str()],
    };
    let mut vars: Vec<&str> = launch.env_keys().iter().map(String::as_str).collect();
    for value in recorded {
        for piece in crate::core::launch::pieces(value).unwrap_or_default() {
            if let crate::core::launch::Piece::Env { var, .. } = piece {
                vars.push(var);
            }
        }
    }
    let mut values: Vec<String> = vars
        .into_iter()
        .filter_map(env_lookup)
        .filter(|v| v.len() >= 4)
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for value in values {
        out = out.replace(&value, "***");
    }
    out
}

/// The first environment variable the server was locked with that is not set now: a relaunch
/// without it would not be the locked server.
pub fn missing_env_key(entry: &ServerLock) -> Option<&str> {
    let missing = entry
        .launch
        .env_keys()
        .iter()
        .find(|k| std::env::var_os(k).is_none())
        .map(String::as_str);
    // The secret values a relaunch hands the server: nothing mcplock prints may show them.
    for key in entry.launch.env_keys() {
        if let Ok(value) = std::env::var(key) {
            crate::edge::secrets::remember_named(key, &value);
        }
    }
    missing
}

/// `auto` becomes the era the lock recorded (no probe); an explicit `--protocol` is kept.
pub fn protocol_like(choice: ProtocolChoice, entry: Option<&ServerLock>) -> ProtocolChoice {
    match (
        choice,
        entry.and_then(|e| ProtocolVersion::parse(&e.protocol_version)),
    ) {
        (ProtocolChoice::Auto, Some(v)) => ProtocolChoice::Recorded(v),
        (choice, _) => choice,
    }
}

/// Relaunching starts the commands a lockfile records: code execution on the lockfile's word.
/// With `--key` or `--bundle` the lockfile's signature is checked first, over exactly the bytes
/// then used, and nothing starts unless it holds; without them mcplock says on stderr that the
/// commands come from an unverified file. Returns (locked, live) for every locked server (or
/// the one named).
pub async fn relaunch_locked(
    path: &Path,
    name: Option<&str>,
    server: &ServerArgs,
    trust: &SignatureCheck,
) -> Result<(Lockfile, Lockfile), CliError> {
    let missing = || {
        fail(
            Code::InputMissing,
            format!(
                "{} does not exist; lock first (`mcplock lock -- CMD`), or compare two files",
                path.display()
            ),
        )
    };
    if read_bounded(path, MAX_LOCKFILE_BYTES)
        .map_err(|e| fail(Code::InputUnreadable, e.to_string()))?
        .is_none()
    {
        return Err(missing());
    }
    let document = super::files::read_lockfile_json(path)?;
    match trust.verify_args(path) {
        Some(verify) => {
            let signer = super::keys::verify_document(&verify, &document).map_err(|mut e| {
                e.headline = format!(
                    "refusing to start the commands recorded in {}: {}",
                    path.display(),
                    e.headline
                );
                e
            })?;
            eprintln!(
                "mcplock: {} is signed by {signer}; relaunching the servers it records",
                path.display()
            );
        }
        None => eprintln!(
            "mcplock: warning: the commands relaunched below come from {}, whose signature was not checked (pass --key or --bundle to verify it before anything starts)",
            path.display()
        ),
    }
    let locked = Lockfile::from_owned_value(document).map_err(|e| {
        fail(
            Code::LockfileInvalid,
            format!("{} is not a valid lockfile: {e}", path.display()),
        )
    })?;
    let mut old = Lockfile::default();
    let mut new = Lockfile::default();
    for (server_name, entry) in &locked.servers {
        if name.is_some_and(|n| n != server_name) {
            continue;
        }
        let server_args = relaunch_args(server_name, entry, server)?;
        let live = relaunch_one(server_name, entry, &server_args).await?;
        old.servers.insert(server_name.clone(), entry.clone());
        new.servers.insert(server_name.clone(), live);
    }
    if old.servers.is_empty() {
        return Err(fail(
            Code::ServerNotFound,
            format!(
                "no server to compare: {} locks none{}",
                path.display(),
                name.map(|n| format!(" named {n:?}")).unwrap_or_default()
            ),
        ));
    }
    Ok((old, new))
}

/// The server arguments that start (or reach) a locked server again as the lock records it,
/// placeholders filled from the environment; `server` gives the bounds and, for a remote
/// server, the headers.
fn relaunch_args(
    server_name: &str,
    entry: &ServerLock,
    server: &ServerArgs,
) -> Result<ServerArgs, CliError> {
    if let Some(missing) = missing_env_key(entry) {
        return Err(fail(
            Code::EnvMissing,
            format!(
                "server {server_name:?} was locked with the environment variable {missing}; set it before relaunching"
            ),
        ));
    }
    let mut server_args = server.clone();
    match &entry.launch {
        Launch::Stdio {
            command, args, cwd, ..
        } => {
            // Headers given for the remote servers of the same file are not for this one.
            server_args.remote = super::RemoteArgs::default();
            server_args.cwd = cwd.as_ref().map(std::path::PathBuf::from);
            server_args.server = std::iter::once(command)
                .chain(args)
                .map(|value| filled(server_name, value))
                .collect::<Result<_, _>>()?;
        }
        // A remote server is reached again at its URL, with the headers given now (their
        // values were never recorded): they must be the ones it was locked with.
        Launch::Http { url, header_names } => {
            server_args.remote.url = Some(filled(server_name, url)?);
            let given = server_args.endpoint()?.launch();
            if given.header_names() != header_names.as_slice() {
                return Err(fail(
                    Code::Usage,
                    format!(
                        "server {server_name:?} ({}) was locked with the headers [{}]; pass them again (--header 'Name: value', --bearer-env VAR), their values are never recorded",
                        escape(&crate::core::launch::redact_url(url)),
                        header_names.join(", ")
                    ),
                ));
            }
        }
    }
    if server_args.declare.is_empty() {
        server_args.declare = super::declared_from(&entry.client_capabilities);
    }
    // Keep the lock's generation: a server that also speaks a newer protocol is the same
    // server, the comparison stays like for like, and no probe is needed.
    server_args.protocol = protocol_like(server_args.protocol, Some(entry));
    Ok(server_args)
}

/// Scans a server started by [`relaunch_args`]; its entry as it is now, the launch recorded
/// as the lock has it.
async fn relaunch_one(
    server_name: &str,
    entry: &ServerLock,
    server_args: &ServerArgs,
) -> Result<ServerLock, CliError> {
    // As the lock records it: placeholders, not the values they were filled with.
    let shown = match &entry.launch {
        Launch::Stdio { command, args, .. } => crate::transport::stdio::ServerCommand {
            program: command.clone(),
            args: args.clone(),
            env: Vec::new(),
            cwd: None,
        }
        .display(),
        Launch::Http { .. } => entry.launch.describe(),
    };
    eprintln!("mcplock: relaunching {}: {shown}", escape(server_name));
    let mut scanned = scan_server(server_args).await.map_err(|mut e| {
        e.headline = hide_placeholder_values(&e.headline, &entry.launch);
        for line in &mut e.details {
            *line = hide_placeholder_values(line, &entry.launch);
        }
        e
    })?;
    // Started as the lock says, placeholders filled: the live launch is the locked one,
    // compared like with like.
    if scanned
        .snapshot
        .launch
        .as_ref()
        .is_some_and(|live| launch_accepts(&entry.launch, live))
    {
        scanned.snapshot.launch = Some(entry.launch.clone());
    }
    ServerLock::from_snapshot(scanned.snapshot, entry.resources.is_some())
        .map_err(|e| fail(Code::ServerFailed, e.to_string()))
}
