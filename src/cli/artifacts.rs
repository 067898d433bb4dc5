//! Holding what locked servers run now against the artifacts their lock recorded: `verify
//! --artifacts` for every locked local server, the proxy for the one it is about to start.

use super::exit::{Code, fail};
use super::{CliError, Output};
use crate::core::artifact::{Artifact, Comparison, changed_parts, compare};
use crate::core::launch::Launch;
use crate::core::lockfile;
use crate::core::text::escape;
use serde_json::{Value, json};
use std::path::Path;

/// One server's artifact, resolved now and compared with the lock.
pub struct Checked {
    pub comparison: Comparison,
    pub locked: Option<Artifact>,
    pub now: Artifact,
}

impl Checked {
    fn status(&self) -> &'static str {
        match self.comparison {
            Comparison::Same => "same",
            Comparison::Changed => "changed",
            Comparison::NotPinned => "not-pinned",
            Comparison::ContentNotPinned => "content-not-pinned",
        }
    }

    /// What differs, part by part, when both sides recorded content; empty otherwise.
    pub fn changed_parts(&self) -> Vec<String> {
        let content = |a: Option<&Artifact>| a.and_then(Artifact::resolved)?.content.clone();
        match (content(self.locked.as_ref()), content(Some(&self.now))) {
            (Some(locked), Some(now)) => changed_parts(&locked, &now),
            _ => Vec::new(),
        }
    }

    /// One line: what the lock recorded and what runs now.
    pub fn describe(&self, server: &str) -> String {
        let locked = self
            .locked
            .as_ref()
            .map_or_else(|| "none recorded".to_string(), Artifact::describe);
        format!(
            "{}: locked {}; now {}",
            escape(server),
            escape(&locked),
            escape(&self.now.describe())
        )
    }

    /// When the lock and this machine find the launch's program or interpreter at different
    /// paths: the likely cause (the PATH here is not the one the lock was made with, as a GUI
    /// host's is not a terminal's) and the fix.
    pub fn path_hint(&self) -> Option<String> {
        let locked = self.locked.as_ref().and_then(Artifact::resolved)?;
        let now = self.now.resolved()?;
        let paths = |r: &crate::core::artifact::Resolved| {
            r.interpreter
                .as_ref()
                .map(|(path, _)| path.clone())
                .unwrap_or_else(|| r.name.clone())
        };
        let (was, is) = (paths(locked), paths(now));
        (locked.kind == now.kind && was != is).then(|| {
            format!(
                "the launch finds {} here but {} where it was locked: the PATH differs (a host started from the desktop has another PATH than a terminal); give the command as an absolute path in the host's config and lock that, or lock from the environment the host runs in",
                escape(&is),
                escape(&was)
            )
        })
    }

    fn to_json(&self, server: &str) -> Value {
        json!({
            "locked": self.locked.as_ref().map(Artifact::to_json),
            "now": self.now.to_json(),
            "server": server,
            "status": self.status(),
        })
    }
}

/// Resolves what `launch` runs now and compares it with `locked`, what the lock recorded;
/// `None` for a remote server (nothing of it runs here).
pub fn check(locked: Option<&Artifact>, launch: &Launch) -> Option<Checked> {
    let now = crate::edge::artifact::resolve(launch)?;
    Some(Checked {
        comparison: compare(locked, &now),
        locked: locked.cloned(),
        now,
    })
}

/// `verify --artifacts`, once the signature and the lockfile's checks held: `servers` are the
/// entries that very check read (the file is not read again, so what is resolved, and may ask a
/// launch's own program, is what was verified).
pub fn after_verify(
    verified: Output,
    lockfile: &Path,
    servers: &lockfile::Checked,
) -> Result<Output, CliError> {
    let checked: Vec<(&String, Checked)> = servers
        .iter()
        .filter_map(|(name, s)| check(s.artifact.as_ref(), &s.launch).map(|c| (name, c)))
        .collect();
    let changed: Vec<String> = checked
        .iter()
        .filter(|(_, c)| c.comparison == Comparison::Changed)
        .flat_map(|(name, c)| {
            let parts = c.changed_parts().into_iter();
            std::iter::once(c.describe(name)).chain(parts.map(|p| format!("  content {p}")))
        })
        .collect();
    if !changed.is_empty() {
        return Err(fail(
            Code::ArtifactChanged,
            format!(
                "the signature holds, but locked server(s) in {} now run another artifact than the one locked (re-lock with `mcplock lock --update` if the new one is approved)",
                lockfile.display()
            ),
        )
        .with_details(changed));
    }
    let mut human = String::new();
    for (name, c) in &checked {
        let line = match c.comparison {
            Comparison::Same => format!("{}: {}", escape(name), escape(&c.now.describe())),
            _ => c.describe(name),
        };
        human.push_str(&format!("artifact {}: {line}\n", c.status()));
        if c.comparison == Comparison::ContentNotPinned {
            eprintln!("{}", content_not_pinned_warning(name));
        }
    }
    let json = checked.iter().map(|(name, c)| c.to_json(name)).collect();
    Ok(verified.with_section(&human, "artifacts", Value::Array(json)))
}

/// The warning for a server locked before content was pinned (lockfile version 4).
pub fn content_not_pinned_warning(server: &str) -> String {
    format!(
        "mcplock: warning: {}: the lock pins the artifact's name, version and digest but not the files that run (lockfile version 4): review and re-lock with `mcplock lock --update`, then sign again",
        escape(server)
    )
}
