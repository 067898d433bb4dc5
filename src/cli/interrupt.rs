//! A stop asked for by a signal, seen by work that runs off the async loop (rewriting host
//! configs): such work checks it before each point of no return and stops there, so a signal
//! never leaves a file half-done and never goes unanswered while a long rewrite runs.

use super::CliError;
use super::exit::{Code, fail};
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks every check from now on to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// An error when a stop was asked for before `path` was written (it is left as it was).
pub fn check(path: &std::path::Path) -> Result<(), CliError> {
    if REQUESTED.load(Ordering::SeqCst) {
        return Err(fail(
            Code::Interrupted,
            format!(
                "stopped before {} was written; it is unchanged (run the command again to finish)",
                path.display()
            ),
        ));
    }
    Ok(())
}
