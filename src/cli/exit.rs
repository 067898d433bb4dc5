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
