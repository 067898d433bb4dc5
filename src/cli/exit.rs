//! Errors as the user sees them, and the exit-code contract: every failure carries a stable,
//! documented code (docs/exit-codes.md) and the code decides the exit status.

use serde_json::{Map, Value};

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

macro_rules! codes {
    ($($variant:ident = $text:literal, $exit:ident, $summary:literal;)*) => {
        /// The stable codes of failures and refusals. A code is never renamed or reused: it is
        /// what pipelines match on (`--format json`: `error.code`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// The exit status this code ends the command with.
            pub fn exit(self) -> ExitKind {
                match self {
                    $(Code::$variant => ExitKind::$exit,)*
                }
            }

            /// One line on what the code means (docs/exit-codes.md lists them all).
            pub fn summary(self) -> &'static str {
                match self {
                    $(Code::$variant => $summary,)*
                }
            }
        }
    };
}

codes! {
    SignatureInvalid = "signature-invalid", No,
        "a signature does not hold over this lockfile, or names another key, identity or issuer";
    LockStale = "lock-stale", No,
        "`lock --check`: the lockfile would change";
    LockChanged = "lock-changed", No,
        "`lock`: the server's entry would change; review the changes, then `lock --update`";
    Drift = "drift", No,
        "`diff`: drift at or above --fail-on (the report lists each change with its class); `review`: a change left undecided, or one served otherwise than as reviewed";
    PolicyFailed = "policy-failed", No,
        "a policy rule failed, or could not be evaluated (fail-closed)";
    Revoked = "revoked", No,
        "a revocation list revokes a locked server or item";
    RevocationsUntrusted = "revocations-untrusted", No,
        "a revocation list is unsigned, wrongly signed, or older than one already accepted, where signatures are checked";
    NotLocked = "not-locked", No,
        "a server a host runs is not locked, or not with the launch its config gives";
    LaunchMismatch = "launch-mismatch", No,
        "`proxy`: the command or URL to run is not the one the lock approved";
    ArtifactChanged = "artifact-changed", No,
        "the package, image or file a locked server runs is not the one the lock recorded";
    BundleInvalid = "bundle-invalid", No,
        "an audit bundle does not verify";
    AuditLogBroken = "audit-log-broken", No,
        "an audit log's hash chain does not hold";
    ConfigChangedUnderUs = "config-changed", No,
        "`wrap`/`unwrap`: the config file changed while it was being rewritten; nothing was written";
    LockfileRejected = "lockfile-rejected", No,
        "the signature holds, but the signed lockfile fails its own checks";
    Usage = "usage", Usage,
        "the arguments do not fit together, or a flag or value is unknown";
    FormatUnsupported = "format-unsupported", Usage,
        "the command has no output in the --format asked for";
    InputMissing = "input-missing", Usage,
        "a file the command needs does not exist";
    InputUnreadable = "input-unreadable", Usage,
        "a file cannot be read: permissions, over its size limit, not UTF-8, not a ZIP";
    JsonInvalid = "json-invalid", Usage,
        "a file is not strict JSON (duplicate keys, trailing data, invalid UTF-8)";
    LockfileInvalid = "lockfile-invalid", Usage,
        "the lockfile fails its strict read (shape, version, a digest)";
    SnapshotInvalid = "snapshot-invalid", Usage,
        "a snapshot is not one mcplock can read";
    ServerNotFound = "server-not-found", Usage,
        "no server of that name or launch in the lockfile or the host configs";
    KeyInvalid = "key-invalid", Usage,
        "a key is not a usable Ed25519 PEM key, or a private key others may read";
    SignatureMalformed = "signature-malformed", Usage,
        "a signature envelope or Sigstore bundle is missing or malformed, or keyless signing failed";
    PolicyInvalid = "policy-invalid", Usage,
        "a policy file or preset cannot be read or compiled";
    HostConfigInvalid = "host-config-invalid", Usage,
        "a host config cannot be found, read or rewritten";
    RevocationsInvalid = "revocations-invalid", Usage,
        "a revocation list or approval cannot be read or written as asked";
    EnvMissing = "env-missing", Usage,
        "an environment variable the locked server needs is not set";
    OutputExists = "output-exists", Usage,
        "refusing to overwrite a file (a key, an output)";
    WriteFailed = "write-failed", Usage,
        "a file or stdout cannot be written";
    Interrupted = "interrupted", Usage,
        "a signal stopped the command before it wrote a file; that file is unchanged (the process exits 128 + the signal's number)";
    Internal = "internal", Usage,
        "mcplock could not start a thread or its runtime";
    ServerFailed = "server-failed", Server,
        "the server could not be started, timed out, or broke the protocol";
    ServerUnstable = "server-unstable", Server,
        "the server offered something different at each start (`--repeat`)";
}

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

/// A failure with its code.
pub fn fail(code: Code, message: impl Into<String>) -> CliError {
    CliError::new(code, message)
}

/// Reads an input file of at most `limit` bytes; missing or unreadable is a usage error that
/// names `what` it is.
pub fn read_input(path: &std::path::Path, limit: u64, what: &str) -> Result<Vec<u8>, CliError> {
    crate::edge::fs::read_bounded(path, limit)
        .map_err(|e| fail(Code::InputUnreadable, e.to_string()))?
        .ok_or_else(|| {
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
