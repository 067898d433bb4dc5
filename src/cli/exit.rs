//! Errors as the user sees them, and the exit-code contract: every failure carries a stable,
//! documented code (docs/exit-codes.md) and the code decides the exit status.

use serde_json::{Map, Value};

pub use crate::core::code::{Code, Coded, ExitKind};

/// A failure to report: one headline (what failed and what to do), then optional detail lines.
/// Rendered by `main` in the format asked for.
#[derive(Debug)]
pub struct CliError {
    pub code: Code,
    pub headline: String,
    pub details: Vec<String>,
    /// More top-level fields of the `--format json` document (beside `error`): what a pipeline
    /// needs to act on the failure, e.g. the changes a `lock` refused.
    pub extra: Map<String, Value>,
    /// What the command found before it failed, for people: printed on stdout in human mode.
    pub human_report: Option<String>,
}

/// A layer's error becomes the user's with its own code and message (`?` in a command).
impl<E: Coded> From<E> for CliError {
    fn from(error: E) -> CliError {
        CliError::new(error.code(), error.to_string())
    }
}

/// A failure with its code.
pub fn fail(code: Code, message: impl Into<String>) -> CliError {
    CliError::new(code, message)
}

/// Reads an input file of at most `limit` bytes; missing or unreadable is a usage error that
/// names `what` it is.
pub fn read_input(path: &std::path::Path, limit: u64, what: &str) -> Result<Vec<u8>, CliError> {
    crate::edge::fs::read_bounded(path, limit)?.ok_or_else(|| {
        fail(
            Code::InputMissing,
            format!("{what} {} does not exist", path.display()),
        )
    })
}

impl CliError {
    pub fn new(code: Code, headline: impl Into<String>) -> CliError {
        CliError {
            code,
            headline: headline.into(),
            details: Vec::new(),
            extra: Map::new(),
            human_report: None,
        }
    }

    pub fn kind(&self) -> ExitKind {
        self.code.exit()
    }

    pub fn with_details(mut self, details: Vec<String>) -> CliError {
        self.details = details;
        self
    }

    /// For stderr: the headline, then the details indented.
    pub fn render(&self) -> String {
        // A definite "no" is an answer, not a malfunction.
        let label = if self.kind() == ExitKind::No {
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

    /// The `--format json` document: `{"error": {code, exitCode, message, details}}` and the
    /// extra fields.
    pub fn to_json(&self) -> Value {
        let mut doc = self.extra.clone();
        doc.insert(
            "error".into(),
            serde_json::json!({
                "code": self.code.as_str(),
                "details": self.details,
                "exitCode": self.kind().code(),
                "message": self.headline,
            }),
        );
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 28: a layer's error passed up with `?` keeps its own code and its message.
    #[test]
    fn a_layer_error_keeps_its_code_and_message() {
        let exists: CliError = crate::edge::fs::FsError::Exists {
            path: "k.key".into(),
        }
        .into();
        assert_eq!(exists.code, Code::OutputExists);
        assert!(exists.headline.contains("k.key"), "{}", exists.headline);
        let format: CliError = crate::hosts::formats::FormatError("bad".into()).into();
        assert_eq!(format.code, Code::HostConfigInvalid);
        assert_eq!(format.kind(), ExitKind::Usage);
    }

    #[test]
    fn codes_are_unique_kebab_case_and_never_clean() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    && !text.starts_with('-')
                    && !text.ends_with('-'),
                "{text} is not kebab-case"
            );
            assert_ne!(code.exit(), ExitKind::Clean, "{text} exits 0");
            assert!(!code.summary().is_empty());
        }
    }

    #[test]
    fn docs_list_every_code_with_its_exit_status_and_meaning() {
        let docs = include_str!("../../docs/exit-codes.md");
        let table = docs.split("\n## Codes\n").nth(1).unwrap_or_default();
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| `")).collect();
        for code in Code::ALL {
            let row = format!(
                "| `{}` | {} | {} |",
                code.as_str(),
                code.exit().code(),
                code.summary().replace('|', "\\|")
            );
            assert!(
                rows.contains(&row.as_str()),
                "docs/exit-codes.md lacks {row}"
            );
        }
        assert_eq!(
            rows.len(),
            Code::ALL.len(),
            "docs/exit-codes.md lists a code that is not one"
        );
    }

    #[test]
    fn the_json_document_carries_code_and_exit_code() {
        let mut error = fail(Code::LockChanged, "would change").with_details(vec!["a".into()]);
        error
            .extra
            .insert("changes".into(), serde_json::json!(["x"]));
        let doc = error.to_json();
        assert_eq!(doc["error"]["code"], "lock-changed");
        assert_eq!(doc["error"]["exitCode"], 1);
        assert_eq!(doc["error"]["details"][0], "a");
        assert_eq!(doc["changes"][0], "x");
    }
}
