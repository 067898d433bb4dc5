//! The short-lived helpers mcplock runs itself (a package manager or an image engine asked
//! what a launch runs): registered while they run, so the signal path that stops every server
//! (`transport::process::stop_all`) stops them too, and none outlives mcplock.

use std::collections::BTreeSet;
use std::sync::Mutex;

static HELPERS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn helpers() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    HELPERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A helper's registration, removed when dropped (after the helper was waited for, so its pid
/// is never signalled once it may be another process's).
pub struct Registered(u32);

impl Drop for Registered {
    fn drop(&mut self) {
        helpers().remove(&self.0);
    }
}

/// Registers the running helper `pid` until the returned guard is dropped.
pub fn register(pid: u32) -> Registered {
    helpers().insert(pid);
    Registered(pid)
}

/// Kills every registered helper (their owners reap them).
pub fn kill_all() {
    for pid in helpers().iter() {
        if let Ok(pid) = i32::try_from(*pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_helper_is_killed_and_an_unregistered_one_is_not() {
        let mut helper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let registered = register(helper.id());
        kill_all();
        let status = helper.wait().unwrap();
        assert!(!status.success(), "{status:?}");
        drop(registered);
        assert!(!helpers().contains(&helper.id()));
        assert!(
            other.try_wait().unwrap().is_none(),
            "never registered: left alone"
        );
        let _ = other.kill();
        let _ = other.wait();
    }
}
