//! The stable codes of failures and refusals (docs/exit-codes.md) and the exit status each
//! one decides. They live in the core so every layer's error can say which code it is
//! ([`Coded`]); the command line renders them.

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
    ImportUnconfirmed = "import-unconfirmed", No,
        "the lockfile is an import draft: an item another tool approved is served otherwise now, or is gone, or the draft is not confirmed yet (`lock --check`, then `lock`)";
    PeerFileInvalid = "peer-file-invalid", Usage,
        "a file to import is none of the formats mcplock reads, could be more than one, or fails its format's own checks";
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

/// An error that knows its stable code: a command passes it up with `?` and the code, the
/// message and the exit status go with it.
pub trait Coded: std::fmt::Display {
    fn code(&self) -> Code;
}
