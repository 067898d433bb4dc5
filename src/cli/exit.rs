//! Errors as the user sees them, and the exit-code contract.

/// The exit-code classes of DESIGN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// 0: clean.
    Clean,
    /// 1: a definite "no".
    No,
    /// 2: usage or input error.
    Usage,
    /// 3: the server could not be started, timed out or broke the protocol.
    Server,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Clean => 0,
            ExitKind::No => 1,
            ExitKind::Usage => 2,
            ExitKind::Server => 3,
        }
    }
}

/// A failure to report: one headline (what failed and what to do), then optional detail lines.
#[derive(Debug)]
pub struct CliError {
    pub kind: ExitKind,
    pub headline: String,
    pub details: Vec<String>,
    /// In `--format json` mode, the error as JSON for stdout.
    pub json_stdout: Option<String>,
}

/// A usage or input error (exit 2).
pub fn usage(message: impl Into<String>) -> CliError {
    CliError::new(ExitKind::Usage, message)
}

/// A definite "no" (exit 1).
pub fn no(message: impl Into<String>) -> CliError {
    CliError::new(ExitKind::No, message)
}

/// Reads an input file of at most `limit` bytes; missing or unreadable is a usage error that
/// names `what` it is.
pub fn read_input(path: &std::path::Path, limit: u64, what: &str) -> Result<Vec<u8>, CliError> {
    crate::edge::fs::read_bounded(path, limit)
        .map_err(|e| usage(e.to_string()))?
        .ok_or_else(|| usage(format!("{what} {} does not exist", path.display())))
}

impl CliError {
    pub fn new(kind: ExitKind, headline: impl Into<String>) -> CliError {
        CliError {
            kind,
            headline: headline.into(),
            details: Vec::new(),
            json_stdout: None,
        }
    }

    pub fn render(&self) -> String {
        // A definite "no" is an answer, not a malfunction.
        let label = if self.kind == ExitKind::No {
            ""
        } else {
            "error: "
        };
        let mut out = format!("mcplock: {label}{}\n", self.headline);
        for line in &self.details {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}
