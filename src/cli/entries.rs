//! Finding a server's entry in a lockfile: by name, or by the launch it was locked with
//! (placeholders read as the environment here fills them).

use crate::core::launch::Launch;
use crate::core::lockfile::{Lockfile, ServerLock};

/// The value of an environment variable here, for a placeholder a lock recorded.
pub fn env_lookup(var: &str) -> Option<String> {
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
            Launch::Http {
                url,
                header_names,
                context,
            },
            Launch::Http {
                url: given_url,
                header_names: given_names,
                context: given_context,
            },
        ) => {
            header_names == given_names
                && context == given_context
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
    named_or_matching(lockfile, name, launch, true)
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
    named_or_matching(lockfile, name, launch, false)
}

/// The entry named `name`, else the only one matching `launch` (its variable names too when
/// `env` is set).
fn named_or_matching<'a>(
    lockfile: &'a Lockfile,
    name: Option<&str>,
    launch: &Launch,
    env: bool,
) -> Option<&'a ServerLock> {
    let name = name
        .map(str::to_owned)
        .or_else(|| only_match(lockfile, launch, env))?;
    lockfile.servers.get(&name)
}

/// The credential contexts a remote server reached as `launch` (whatever its own context) is
/// locked under, for a refusal that names them.
pub fn contexts_of(lockfile: &Lockfile, launch: &Launch) -> Vec<String> {
    let shared = launch.without_context();
    lockfile
        .servers
        .values()
        .filter(|s| launch_accepts(&s.launch.without_context(), &shared))
        .filter_map(|s| s.launch.context().map(str::to_owned))
        .collect()
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
