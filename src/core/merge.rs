//! The one rule for putting a freshly scanned server into a lockfile, shared by `lock` and
//! `lock --host`: how the entry stands against what is locked under its name, and whether the
//! command's mode lets it be written.

use crate::core::diff::{Change, diff_server};
use crate::core::lockfile::{Lockfile, ServerLock};

/// How a scanned entry stands against the lockfile.
#[derive(Debug, PartialEq)]
pub enum Standing {
    /// Not locked under its name.
    New,
    /// Locked with the same digest.
    Unchanged,
    /// Locked otherwise: what changed.
    Changed(Vec<Change>),
}

/// What a command lets a merge do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--check`: write nothing; any difference is a refusal.
    Check,
    /// `--update`: a changed entry is accepted.
    Update,
    /// The default: a new entry is written, a changed one refused.
    Add,
}

/// How `entry` stands against what `lockfile` locks under `name`.
pub fn standing(lockfile: &Lockfile, name: &str, entry: &ServerLock) -> Standing {
    match lockfile.servers.get(name) {
        None => Standing::New,
        Some(old) if old.digest(name) == entry.digest(name) => Standing::Unchanged,
        Some(old) => {
            let mut changes = Vec::new();
            diff_server(name, old, entry, &mut changes);
            Standing::Changed(changes)
        }
    }
}

/// Whether `mode` lets an entry that stands so be written (an unchanged one needs no write
/// and is never a refusal).
pub fn accepts(standing: &Standing, mode: Mode) -> bool {
    match (standing, mode) {
        (Standing::Unchanged, _) => true,
        (_, Mode::Check) => false,
        (Standing::New, _) => true,
        (Standing::Changed(_), Mode::Update) => true,
        (Standing::Changed(_), Mode::Add) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::server_lock;
    use serde_json::json;

    fn locked_server(tools: &[&str]) -> ServerLock {
        server_lock(
            tools
                .iter()
                .map(|t| json!({"name": t, "inputSchema": {"type": "object"}}))
                .collect(),
        )
    }

    #[test]
    fn a_change_is_written_only_under_update_and_nothing_under_check() {
        let entry = locked_server(&["a"]);
        let other = locked_server(&["a", "b"]);
        let mut lockfile = Lockfile::default();
        assert_eq!(standing(&lockfile, "s", &entry), Standing::New);
        lockfile.servers.insert("s".into(), entry.clone());
        assert_eq!(standing(&lockfile, "s", &entry), Standing::Unchanged);
        let changed = standing(&lockfile, "s", &other);
        assert!(
            matches!(&changed, Standing::Changed(c) if !c.is_empty()),
            "{changed:?}"
        );
        for (s, mode, written) in [
            (Standing::New, Mode::Add, true),
            (Standing::New, Mode::Update, true),
            (Standing::New, Mode::Check, false),
            (Standing::Unchanged, Mode::Check, true),
            (changed, Mode::Add, false),
        ] {
            assert_eq!(accepts(&s, mode), written, "{s:?} {mode:?}");
        }
        let changed = standing(&lockfile, "s", &other);
        assert!(accepts(&changed, Mode::Update));
        assert!(!accepts(&changed, Mode::Check));
    }
}
