//! Progress of long work on a terminal: a bar on stderr with a line per finished step, shown
//! only when a person is watching (human output, stderr a terminal); otherwise nothing.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static SHOWN: AtomicBool = AtomicBool::new(false);

/// Decided once, at start: progress is shown for human output on a terminal.
pub fn enable(human: bool) {
    use std::io::IsTerminal;
    SHOWN.store(human && std::io::stderr().is_terminal(), Ordering::Relaxed);
}

/// A bar counting `len` steps of `what` ("servers"); hidden unless enabled.
pub fn bar(len: usize, what: &str) -> ProgressBar {
    if !SHOWN.load(Ordering::Relaxed) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{{spinner}} {{pos}}/{{len}} {what} {{elapsed}}"))
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
