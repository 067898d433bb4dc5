//! Reading the lockfile a command stands on, finding a server's entry in it, and relaunching
//! the servers it records (after checking its signature when asked).

use super::entries::{env_lookup, launch_accepts};
use super::exit::{Code, fail};
use super::files::MAX_LOCKFILE_BYTES;
use super::live::{Reading, capabilities, scan_endpoint};
use super::{CliError, ServerArgs, SignatureCheck};
use crate::core::launch::Launch;
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::text::escape;
use crate::edge::fs::read_bounded;
use crate::mcp::{ProtocolChoice, ProtocolVersion};
use crate::transport::Endpoint;
use crate::transport::process::ServerCommand;
use std::path::Path;

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
    if read_bounded(path, MAX_LOCKFILE_BYTES)?.is_none() {
        return Err(missing());
    }
    let trusted = super::trusted::open(path, trust, "refusing to start the commands recorded in")?;
    match &trusted.signer {
        Some(signer) => eprintln!(
            "mcplock: {} is signed by {signer}; relaunching the servers it records",
            path.display()
        ),
        None => eprintln!(
            "mcplock: warning: the commands relaunched below come from {}, whose signature was not checked (pass --key or --bundle to verify it before anything starts)",
            path.display()
        ),
    }
    let locked = trusted.lockfile;
    let mut old = Lockfile::default();
    let mut new = Lockfile::default();
    for (server_name, entry) in &locked.servers {
        if name.is_some_and(|n| n != server_name) {
            continue;
        }
        let (endpoint, reading) = relaunch_endpoint(server_name, entry, server)?;
        super::authorization::hold(entry, &endpoint);
        let reached = endpoint.clone();
        let live = match relaunch_one(server_name, entry, endpoint, &reading).await {
            Ok(live) => live,
            Err(error) => {
                let drift = super::authorization::drift(&reached, Some(entry));
                return Err(drift.unwrap_or(error));
            }
        };
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

/// Scans the server `launch` starts (as a lock would record it, placeholders filled) the way a
/// relaunch does: the launch another tool recorded, for `import`'s confirmation. Static
/// resources are read when `resources`.
pub async fn relaunch_launch(
    server_name: &str,
    launch: &Launch,
    resources: bool,
    server: &ServerArgs,
) -> Result<ServerLock, CliError> {
    let entry = ServerLock {
        launch: launch.clone(),
        artifact: None,
        authorization: None,
        server_info: None,
        protocol_version: String::new(),
        capabilities: Default::default(),
        client_capabilities: Default::default(),
        instructions: None,
        tools: Default::default(),
        prompts: Default::default(),
        resource_templates: Default::default(),
        resources: resources.then(Default::default),
        unserved: Default::default(),
    };
    let (endpoint, reading) = relaunch_endpoint(server_name, &entry, server)?;
    relaunch_one(server_name, &entry, endpoint, &reading).await
}

/// What starts (or reaches) a locked server again as the lock records it, placeholders filled
/// from the environment, and how to read it: `server` gives the bounds, the `--env` values
/// and, for a remote server, the headers; the lock gives the rest.
fn relaunch_endpoint(
    server_name: &str,
    entry: &ServerLock,
    server: &ServerArgs,
) -> Result<(Endpoint, Reading), CliError> {
    let endpoint = match &entry.launch {
        Launch::Stdio { .. } => locked_command(server_name, entry, server.env_values()?)?,
        // A remote server is reached again at its URL, with the headers given now (their
        // values were never recorded): they must be the ones it was locked with.
        Launch::Http {
            url,
            header_names,
            context,
        } => {
            let mut remote = server.remote.endpoint_at(&filled(server_name, url)?)?;
            remote.context = context.clone();
            let endpoint = Endpoint::Http(remote);
            if endpoint.launch().header_names() != header_names.as_slice() {
                return Err(fail(
                    Code::Usage,
                    format!(
                        "server {server_name:?} ({}) was locked with the headers [{}]; pass them again (--header 'Name: value', --bearer-env VAR), their values are never recorded",
                        escape(&crate::core::launch::redact_url(url)),
                        header_names.join(", ")
                    ),
                ));
            }
            endpoint
        }
    };
    let mut reading = server.reading();
    if server.declare.is_empty() {
        reading.opts.client_capabilities =
            capabilities(&super::declared_from(&entry.client_capabilities));
    }
    // Keep the lock's generation: a server that also speaks a newer protocol is the same
    // server, the comparison stays like for like, and no probe is needed.
    reading.opts.protocol = protocol_like(server.protocol, Some(entry));
    Ok((endpoint, reading))
}

/// A locked command as the lock records it, placeholders filled from the environment, with
/// `env` passed: what the gateway starts for a session (never anything from the wire), and
/// what a relaunch starts. `None`-like errors name the variable that is missing.
pub fn locked_command(
    server_name: &str,
    entry: &ServerLock,
    env: Vec<(String, String)>,
) -> Result<Endpoint, CliError> {
    let Launch::Stdio {
        command, args, cwd, ..
    } = &entry.launch
    else {
        return Err(fail(
            Code::Usage,
            format!("server {server_name:?} is a remote server, not a command"),
        ));
    };
    if let Some(missing) = missing_env_key(entry) {
        return Err(fail(
            Code::EnvMissing,
            format!(
                "server {server_name:?} was locked with the environment variable {missing}; set it before starting it"
            ),
        ));
    }
    Ok(Endpoint::Stdio(ServerCommand {
        program: filled(server_name, command)?,
        args: args
            .iter()
            .map(|value| filled(server_name, value))
            .collect::<Result<_, _>>()?,
        env,
        cwd: cwd.as_ref().map(std::path::PathBuf::from),
    }))
}

/// Scans a server started again by [`relaunch_endpoint`]; its entry as it is now, the launch recorded
/// as the lock has it.
async fn relaunch_one(
    server_name: &str,
    entry: &ServerLock,
    endpoint: Endpoint,
    reading: &Reading,
) -> Result<ServerLock, CliError> {
    // As the lock records it: placeholders, not the values they were filled with.
    let shown = match &entry.launch {
        Launch::Stdio { command, args, .. } => ServerCommand {
            program: command.clone(),
            args: args.clone(),
            env: Vec::new(),
            cwd: None,
        }
        .display(),
        Launch::Http { .. } => entry.launch.describe(),
    };
    eprintln!("mcplock: relaunching {}: {shown}", escape(server_name));
    let mut scanned = scan_endpoint(reading, endpoint).await.map_err(|mut e| {
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
