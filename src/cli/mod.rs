//! The command line: argument definitions, dispatch, output and exit codes.

mod artifacts;
mod audit;
mod authorization;
mod bundle;
mod changes;
mod confirm;
mod diff;
mod docs;
mod enforcement;
mod entries;
mod exit;
mod export;
mod files;
mod gateway;
mod hosts;
mod import;
mod interrupt;
mod keyless;
mod keys;
mod live;
mod lock;
mod locked;
mod policy;
mod progress;
mod proxy;
mod published;
mod registry;
mod render;
mod review;
mod revocations;
mod rewriting;
mod sarif;
mod scan;
mod trusted;
mod wrap;

pub use exit::{CliError, ExitKind};

use crate::transport::process;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes (the same for every command):
  0  clean: the command did what was asked and found nothing wrong
  1  a definite \"no\": drift at or above the threshold, a bad signature, a violated policy
  2  usage or input error: a bad flag, an unreadable or malformed file
  3  server error: the server could not be started, timed out, broke the protocol, or
     offered something different at each start (--repeat)
A broken pipe on stdout (e.g. `mcplock scan ... | head`) exits 0.";

/// Pin what an MCP server offers an AI agent.
///
/// mcplock records every tool, prompt, resource template and resource an MCP server serves,
/// locks and signs that record, diffs later scans against it by severity, checks it against
/// policies, and enforces it at run time: `mcplock proxy` (which `wrap` puts in your agent
/// hosts' configs) serves the host only what the signed lock holds.
#[derive(Debug, Parser)]
#[command(name = "mcplock", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Output format: human, json, markdown, sarif or mcp-lock/1 (which ones a command has:
    /// its --help).
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to a live server and print everything it offers.
    ///
    /// The server is started from the argv after `--`, run directly (never through a shell),
    /// in a process group of its own; it is stopped (stdin closed, then TERM, then KILL) when
    /// the scan ends. Every list is followed to its last page; any error, timeout or protocol
    /// violation fails the scan rather than print a partial listing.
    ///
    /// Tolerated, because it cannot hide a change, and reported in the notes: human lines on
    /// stdout such as start-up banners (skipped and counted; --strict-stdout refuses them), and
    /// a list the server advertises but answers with -32601/-32602 (recorded as unserved, never
    /// as empty). --repeat N starts the server N times and names whatever differs between starts.
    ///
    /// Examples:
    ///   mcplock scan -- npx -y @modelcontextprotocol/server-everything
    ///   mcplock scan --format json -- python3 my_server.py > snapshot.json
    ///   mcplock scan --declare roots,sampling,elicitation -- ./server --stdio
    ///   mcplock scan --repeat 3 -- uvx some-mcp-server
    #[command(verbatim_doc_comment)]
    Scan(ScanArgs),

    /// Scan a server and pin everything it offers in a lockfile.
    ///
    /// Writes (or updates) one server's entry in the lockfile: its launch command (env names,
    /// never values), identity, protocol version, capabilities, instructions and every tool,
    /// prompt and resource template as the complete definition served, each with the sha256
    /// digest of its RFC 8785 canonical form. Other servers in the file are left as they were.
    /// Locking an unchanged server gives a byte-identical file. If the server's entry would
    /// change, lock refuses and lists the changes unless --update is given.
    ///
    /// A server that offers something different at every start (descriptions built from an
    /// unordered set) would report drift on every re-scan: lock it with --repeat 3 to find out
    /// first; it refuses such a server unless --accept-unstable.
    ///
    /// Examples:
    ///   mcplock lock -- npx -y @modelcontextprotocol/server-everything
    ///   mcplock lock --name files -o team-lock.json -- python3 files_server.py
    ///   mcplock lock --repeat 3 -- uvx some-mcp-server
    ///   mcplock lock --check -- ./server      # in CI: exit 1 if the lock is stale
    ///   mcplock lock --check --key team.pub   # every locked server, relaunched once the
    ///                                         # lockfile's signature holds
    ///   mcplock lock --host all               # every server your hosts run (mcplock hosts)
    ///   mcplock lock --host cursor --config .cursor/mcp.json --jobs 4
    #[command(verbatim_doc_comment)]
    Lock(LockArgs),

    /// List the MCP servers your agent hosts run, from their config files.
    ///
    /// Reads the config files each host documents (user and project scope, in the current
    /// directory) for Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, Gemini CLI,
    /// Codex and Continue, and lists every server: host, scope, file, name, what it runs or
    /// reaches (env and header names only, never values), and whether the lockfile locks it.
    /// An entry that cannot be used (a VS Code ${input:...} prompt, an unset ${VAR}) says why.
    /// See docs/hosts.md for every format and path.
    ///
    /// Examples:
    ///   mcplock hosts
    ///   mcplock hosts --host vscode --format json
    ///   mcplock hosts --host claude-desktop --config ./claude_desktop_config.json
    #[command(verbatim_doc_comment)]
    Hosts(HostsArgs),

    /// Rewrite a host's config so each of its servers runs through `mcplock proxy`.
    ///
    /// Every server entry of the host's config files (or of --config) becomes `mcplock proxy`
    /// with the lockfile and the signature check you name, then the original command after
    /// `--` (or its URL with --url; header values move to the entry's env, never onto a
    /// command line). Only those entries' text changes; the rest of the file keeps its bytes.
    /// The diff is printed first (secret values masked); --dry-run stops there. The write is
    /// atomic, refused if the file changed since it was read, and keeps FILE.mcplock-backup
    /// (the file before the first wrap) and FILE.mcplock-wrap.json (each entry's original
    /// text, for unwrap; mode 0600: it holds what the config held). Wrapping twice changes
    /// nothing. Lock the servers first (`mcplock lock --host ...`): the proxy refuses what the
    /// lock does not hold.
    ///
    /// A project's config (.mcp.json, .cursor/mcp.json, .vscode/mcp.json, ...) is a team's:
    /// its entries run `mcplock` from the host's PATH and name files inside the project
    /// relative to it (${workspaceFolder}/... for VS Code and Cursor), and its backup and
    /// record go to ~/.local/state/mcplock/wrap, never into the project.
    ///
    /// Examples:
    ///   mcplock wrap --host claude-desktop --key /etc/mcp/team.pub --lockfile /etc/mcp/mcp-lock.json
    ///   mcplock wrap --host vscode --allow-unsigned --dry-run
    #[command(verbatim_doc_comment)]
    Wrap(WrapArgs),

    /// Undo `mcplock wrap`: put back each wrapped entry's original text.
    ///
    /// A file wrapped and unwrapped with nothing else changed is byte-identical to what it was.
    /// Entries edited since are restored one by one; the rest of the file stays as it is now.
    ///
    /// Example:
    ///   mcplock unwrap --host claude-desktop
    #[command(verbatim_doc_comment)]
    Unwrap(UnwrapArgs),

    /// Pull an approval back: add a server or an item to a revocation list.
    ///
    /// `verify --revocations`, `policy check --revocations` and `proxy --revocations` honour the
    /// list whatever the lockfile says; a running proxy picks up a change at its next message
    /// (or on SIGHUP) and tells the host the list changed. An entry names a whole server, or
    /// one tool, prompt or template of it, and only one locked definition when --digest is
    /// given. The write is atomic; --key signs the list (same key as the lockfile, its own
    /// payload type, FILE.sig): a signed list must then verify wherever it is read.
    ///
    /// Examples:
    ///   mcplock revoke --server files --tool read_file --reason "sends files to a third party"
    ///   mcplock revoke --server shady --reason "publisher compromised" --key team.key
    #[command(verbatim_doc_comment)]
    Revoke(RevokeArgs),

    /// Approve one tool as locked now (for tier 3: the tiers preset calls it only approved).
    ///
    /// Records who approved which tool of which server, with the tool's locked digest, in the
    /// lockfile's approvals (lockfile version 3). The approval holds while the tool's locked
    /// definition is that one: a re-lock that changes it needs a new approval. The approvals
    /// are part of the signed lockfile: sign it again afterwards.
    ///
    /// Example:
    ///   mcplock approve --server files --tool delete_file --by alice@example.com --reason "cleanup job"
    #[command(verbatim_doc_comment)]
    Approve(ApproveArgs),

    /// Generate an Ed25519 key pair for signing lockfiles.
    ///
    /// The private key is written as PEM PKCS#8 with mode 0600 and never overwrites an
    /// existing file; the public key as PEM SPKI. Both are standard: `openssl pkey -in
    /// mcplock.key -noout -text` reads them. The key id printed is the sha256 of the public
    /// key's DER SubjectPublicKeyInfo.
    ///
    /// Example:
    ///   mcplock keygen --private ~/.config/mcplock/team.key --public team.pub
    #[command(verbatim_doc_comment)]
    Keygen(KeygenArgs),

    /// Sign a lockfile with an Ed25519 key, or keylessly with Sigstore.
    ///
    /// With --key: signs the RFC 8785 canonical bytes of the lockfile, bound to what they are
    /// (DSSE pre-authentication encoding with the payload type
    /// "application/vnd.mcplock.lockfile+json; version=1"), and writes a small JSON envelope
    /// (default: LOCKFILE.sig). The private key must not be readable by group or others.
    ///
    /// With --sigstore: signs the same canonical bytes with a short-lived Fulcio certificate
    /// for your OIDC identity, logs the signature in Rekor, checks the result against the
    /// trust root and writes a Sigstore bundle (v0.3, default: LOCKFILE.sigstore.json).
    ///
    /// Reformatting the lockfile later does not break a signature; changing any value does.
    /// A lockfile that fails its own checks is not signed.
    ///
    /// Examples:
    ///   mcplock sign mcp-lock.json --key team.key
    ///   mcplock sign --sigstore        # in GitHub Actions with `permissions: id-token: write`
    #[command(verbatim_doc_comment)]
    Sign(SignArgs),

    /// Print the RFC 8785 canonical bytes of a lockfile: what every signature covers.
    ///
    /// For checking a keyless signature with other tools:
    ///   mcplock canonical mcp-lock.json > mcp-lock.canonical.json
    ///   sigstore verify identity --bundle mcp-lock.json.sigstore.json \
    ///     --cert-identity ID --cert-oidc-issuer ISSUER mcp-lock.canonical.json
    /// The lockfile must pass its own checks.
    #[command(verbatim_doc_comment)]
    Canonical(CanonicalArgs),

    /// Verify a lockfile's signature: the gate before an agent may start a server.
    ///
    /// With --key: exits 0 only if the envelope is well-formed and of a known version, it
    /// names the key given, the signature verifies over the canonical bytes of this lockfile,
    /// and the lockfile passes its strict read (every digest).
    ///
    /// With --bundle (Sigstore): the certificate chains to the trust root and was valid at the
    /// logged time, its SCT holds, the Rekor entry's inclusion proof, checkpoint and signed
    /// timestamp hold, the identity and issuer are the ones given (a regexp must match the
    /// whole identity), and the signature covers this lockfile's canonical bytes. There is no
    /// "any identity": --identity or --identity-regexp, and --issuer, are required.
    ///
    /// Exits 1 when a signature does not hold (naming the check that failed), 2 when an input
    /// is unreadable or malformed.
    ///
    /// Examples:
    ///   mcplock verify mcp-lock.json --key team.pub
    ///   mcplock verify --bundle mcp-lock.json.sigstore.json \
    ///     --identity https://github.com/acme/mcp/.github/workflows/lock.yml@refs/heads/main \
    ///     --issuer https://token.actions.githubusercontent.com
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),

    /// Show what changed since a server was locked, graded by severity.
    ///
    /// Three ways to call it:
    ///   mcplock diff [--key PUB]             every locked server, relaunched from its lock
    ///                                        (with --key or --bundle only once the
    ///                                        lockfile's signature holds)
    ///   mcplock diff -- CMD ARGS...          the lockfile against this live server
    ///   mcplock diff OLD NEW                 two lockfiles or `scan --format json` snapshots,
    ///                                        fully offline
    ///
    /// Every change names the item, a JSON pointer and a class: schema changes that widen what
    /// the agent may send, items added or removed, annotations moving toward less safe, and
    /// text that gains a poisoning finding are critical; changed descriptions, titles and
    /// instructions (where tool poisoning lives), output schemas and unknown fields are
    /// moderate; whitespace-only text, server version and protocol version are info. Text
    /// changes are shown word by word, with control characters made visible.
    ///
    /// Exit 1 when drift at or above --fail-on exists (default: moderate), 0 otherwise.
    ///
    /// Examples:
    ///   mcplock diff --fail-on critical
    ///   mcplock diff --format markdown -- npx -y @modelcontextprotocol/server-everything
    ///   mcplock diff approved-lock.json today.json --format json
    #[command(verbatim_doc_comment)]
    Diff(DiffArgs),

    /// Review what drifted: relaunch every locked server (or a host's), show each change, and
    /// accept or reject it.
    ///
    /// Accepted changes are re-locked exactly as shown (an --accept naming the digest the
    /// report showed is refused if the server serves something else by then); rejected ones
    /// keep their locked definition, so the proxy keeps withholding them. Each decision is
    /// recorded in LOCKFILE.reviews.jsonl (who, when, why, what, the digest). With --sign-key
    /// the lockfile is signed again; otherwise its stale signature is named.
    ///
    /// On a terminal, each change is asked about; in scripts, name them: SERVER (everything of
    /// it) or SERVER/KIND/KEY (KIND: tools, prompts, resourceTemplates, resources), optionally
    /// @sha256:... Exit 1 while a change is undecided.
    ///
    /// Examples:
    ///   mcplock review --key team.pub --sign-key team.key
    ///   mcplock review --host claude-desktop --accept 'files/tools/read_file@sha256:3f1c...' \
    ///       --reject files/tools/write_file --by alice --reason "schema fix only"
    #[command(verbatim_doc_comment)]
    Review(ReviewArgs),

    /// Check CEL policies over what servers offer (a lockfile or a live server).
    #[command(after_help = EXIT_CODES)]
    Policy(PolicyArgs),

    /// Export or verify an audit bundle: one ZIP an auditor can check offline.
    #[command(after_help = EXIT_CODES)]
    Bundle(BundleArgs),

    /// Stand between an agent host and a stdio server, enforcing the lock at run time.
    ///
    /// Meant to be the command a host starts instead of the server. Before anything starts,
    /// the lockfile is read strictly and its signature verified (--key, or --bundle with
    /// --identity and --issuer; unsigned only with --allow-unsigned), the server's entry is
    /// found by --name or by its exact argv, and the argv after `--` must be the locked one.
    /// Then every list page is checked item by item against the locked digests (matching items
    /// pass exactly as served, the rest are withheld), every call to a tool, prompt or resource
    /// not locked and listed in this session is denied (error -32010), as is a tools/call whose
    /// arguments fall outside the locked inputSchema; on list_changed the proxy re-lists and
    /// re-checks before the host hears of it, so a tool that drifts mid-session is denied from
    /// that moment. The server's self-description must match the lock, ids are translated
    /// both ways, and the server's own requests are refused unless --allow-server-requests.
    /// With --audit, one hash-chained JSON line per decision (`mcplock audit verify`).
    /// See docs/proxy.md.
    ///
    /// Example (a host's config):
    ///   "command": "mcplock",
    ///   "args": ["proxy", "--key", "team.pub", "--lockfile", "/etc/mcp/mcp-lock.json",
    ///            "--audit", "/var/log/mcp-audit.jsonl", "--", "npx", "-y", "some-server"]
    #[command(verbatim_doc_comment)]
    Proxy(ProxyArgs),

    /// Serve every locked server to agents over HTTP, each session held to the signed lock.
    ///
    /// Streamable HTTP (MCP 2025-11-25) at /servers/NAME/mcp on --listen (loopback only in
    /// this version: put a TLS reverse proxy in front to serve other machines). Every request
    /// needs an agent's bearer token from --agents (`mcplock gateway token` makes one) and a
    /// grant for the server; each agent session starts the server from its locked launch and
    /// runs the proxy's enforcement (lists checked item by item, drift withheld, calls only to
    /// locked, listed tools inside their locked schema, response inspection), narrowed to the
    /// agent's grant. Health at /healthz and /readyz. See docs/gateway.md.
    ///
    /// Example:
    ///   mcplock gateway token --agents agents.json --agent ci-bot --grant files
    ///   mcplock gateway --lockfile mcp-lock.json --key team.pub --agents agents.json \
    ///     --listen 127.0.0.1:8700
    #[command(verbatim_doc_comment, after_help = EXIT_CODES)]
    Gateway(GatewayArgs),

    /// Check a proxy audit log: the hash chain of its decisions.
    #[command(after_help = EXIT_CODES)]
    Audit(AuditArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    ///
    /// Generated from the same model that parses the command line, so it always matches this
    /// version of mcplock.
    ///
    /// Examples:
    ///   mcplock completions bash > ~/.local/share/bash-completion/completions/mcplock
    ///   mcplock completions zsh > "${fpath[1]}/_mcplock"
    ///   mcplock completions fish > ~/.config/fish/completions/mcplock.fish
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),

    /// Print the man page, or write one page per command into a directory.
    ///
    /// Generated from the same model that parses the command line (and shows --help).
    ///
    /// Examples:
    ///   mcplock man | man -l -
    ///   mcplock man --out-dir /usr/local/share/man/man1   # mcplock.1, mcplock-scan.1, ...
    #[command(verbatim_doc_comment)]
    Man(ManArgs),

    /// Write the lockfile in another tool's format, as far as that format carries it.
    ///
    /// `--format mcp-lock/1`: the draft vendor-neutral MCP install lockfile (ToolPin's spec;
    /// its digests and signature checked against the spec's published vectors). Each remote
    /// server at an https URL and each server run from an npm, PyPI or OCI package becomes an
    /// entry: its target, a surface hash over its tools' names, descriptions and input
    /// schemas, a config digest over its locked launch, and our entry digest under
    /// `extensions."dev.mcplock"`. What an entry cannot hold (prompts, resources,
    /// instructions, annotations, the files a package runs, header and environment names, an
    /// OAuth surface) is named on stderr, server by server; a server that has no place in the
    /// format (a local file, plain http) is left out and named. The file is no lock of ours:
    /// verify and enforce with mcp-lock.json.
    ///
    /// Examples:
    ///   mcplock export --format mcp-lock/1 > mcp-lock.v1.json
    ///   mcplock export --format mcp-lock/1 --lockfile team-lock.json --client cursor -o out.json
    #[command(verbatim_doc_comment)]
    Export(ExportArgs),

    /// Start from what another tool approved: read its lockfile into an import draft.
    ///
    /// Reads ToolPin (`lockfileVersion: 2`), mcp-lock/1, MCPTrust (`mcp-lock.json` 2.0 and
    /// 3.0), mcp-warden (`warden.lock`) and mcp-scan (`scanned_entities.json`) strictly; the
    /// format is told from the content unless --from names it. The draft keeps each server's
    /// launch and every hash the tool pinned. Nothing in it is trusted yet: `mcplock lock
    /// --check` then scans each server and says, item by item, whether it still matches what
    /// the tool approved (by the tool's own hash, recomputed), and `mcplock lock` locks only
    /// the confirmed items. Where the tool pinned less than mcplock does (a description and a
    /// schema, not the whole declaration), the confirmation says so per item.
    ///
    /// Until it is confirmed, every command that needs a lockfile refuses the draft and says
    /// so. An existing lockfile is never replaced by a draft; an earlier draft only with
    /// --update. A detached mcp-lock/1 signature (`mcp-lock.sig` beside the file, or
    /// --signature) is checked with --peer-key and the result is recorded.
    ///
    /// Examples:
    ///   mcplock import warden.lock
    ///   mcplock import mcp-lock.v1.json --peer-key toolpin.pub.pem
    ///   mcplock import ~/.mcp-scan/scanned_entities.json --host claude-desktop
    ///   mcplock import mcp-lock.json --from mcptrust -- npx -y @scope/server@1.2.3
    ///   mcplock lock --check && mcplock lock
    #[command(verbatim_doc_comment)]
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The other tool's file.
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,

    /// Its format, when it cannot be told from the content: toolpin, mcp-lock/1, mcptrust,
    /// warden or mcp-scan.
    #[arg(long, value_name = "FORMAT", value_parser = parse_peer)]
    pub from: Option<crate::core::peers::import::Peer>,

    /// The draft to write (confirmed in place by `mcplock lock`).
    #[arg(
        short = 'o',
        long = "lockfile",
        value_name = "PATH",
        default_value = "mcp-lock.json"
    )]
    pub lockfile: std::path::PathBuf,

    /// Replace an earlier import draft at the same path (a lockfile is never replaced).
    #[arg(long)]
    pub update: bool,

    /// The name of the one server a file pins (a warden or MCPTrust file) [default: the name
    /// the file gives, else the name of the file's directory].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// An mcp-lock/1 detached signature [default: mcp-lock.sig beside FILE, when there is one].
    #[arg(long, value_name = "FILE")]
    pub signature: Option<std::path::PathBuf>,

    /// The Ed25519 public key (PEM) the mcp-lock/1 signature must hold by.
    #[arg(long, value_name = "PEM")]
    pub peer_key: Option<std::path::PathBuf>,

    #[command(flatten, next_help_heading = "Servers the file records no launch for")]
    pub hosts: HostArgs,

    /// The command of the one server the file pins, when it records none (MCPTrust 3.0,
    /// mcp-scan).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_peer(name: &str) -> Result<crate::core::peers::import::Peer, String> {
    use crate::core::peers::import::Peer;
    Peer::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Peer::ALL.iter().map(|p| p.as_str()).collect();
        format!("one of {}", names.join(", "))
    })
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The lockfile to export.
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    /// Write the file here (atomically) instead of to stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,

    /// The client the entries are for (mcp-lock/1 names one: claude-code, cursor, ...).
    #[arg(long, value_name = "NAME", default_value = "generic", value_parser = parse_client)]
    pub client: String,

    /// The time written as each entry's resolvedAt and lockedAt, RFC 3339 (mcp-lock/1
    /// requires them; our lock records no time) [default: now; give it for the same bytes
    /// every time].
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub at: Option<String>,
}

fn parse_client(name: &str) -> Result<String, String> {
    let mut bytes = name.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(name.to_string())
    } else {
        Err("a client is lowercase letters, digits and '-' (e.g. claude-code)".into())
    }
}

fn parse_rfc3339(time: &str) -> Result<String, String> {
    let b = time.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        r.into_iter()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    let ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && time.ends_with('Z');
    if ok {
        Ok(time.to_string())
    } else {
        Err("expected an RFC 3339 time in UTC, e.g. 2026-12-08T10:00:00Z".into())
    }
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write mcplock.1 and one page per command (mcplock-scan.1, mcplock-policy-check.1, ...)
    /// into this existing directory instead of printing mcplock.1. Each write is atomic.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
}

/// The formats a (sub)command has output in: the one table `main` checks and `--help` shows.
pub fn formats_for(name: &str, sub: Option<&str>) -> &'static [Format] {
    use Format::{Human, Json, Markdown, McpLock1, Sarif};
    match (name, sub) {
        ("scan" | "lock", _) => &[Human, Json, Sarif],
        ("diff", _) | ("policy", Some("check")) => &[Human, Json, Markdown, Sarif],
        // Its stdout belongs to the host: JSON-RPC, never a report.
        ("proxy", _) => &[Human],
        // A server: its stdout is a log line at most.
        ("gateway", None) => &[Human],
        // A config diff for a person to read before it is written.
        ("wrap" | "unwrap", _) => &[Human],
        // Their stdout is the script or the page.
        ("completions" | "man", _) => &[Human],
        // Its stdout is the file written, in another tool's format.
        ("export", _) => &[McpLock1],
        _ => &[Human, Json],
    }
}

/// The command line as clap parses it, each command's help ending with its formats and the
/// exit codes (set here for every leaf, so not in the derive attributes): the model
/// behind parsing, `--help`, the man pages and the shell completions.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommands(|sub| {
        let name = sub.get_name().to_string();
        if sub.has_subcommands() {
            return sub.mut_subcommands(|leaf| {
                let after = formats_help(formats_for(&name, Some(leaf.get_name())));
                leaf.after_help(after)
            });
        }
        let after = formats_help(formats_for(&name, None));
        sub.after_help(after)
    })
}

fn formats_help(formats: &[Format]) -> String {
    let names: Vec<&str> = formats.iter().map(|f| f.as_str()).collect();
    format!("Formats (--format): {}\n\n{EXIT_CODES}", names.join(", "))
}

/// Checks that the command `matches` parsed (by the names clap matched) has output in
/// `format`.
fn check_format(matches: &clap::ArgMatches, format: Format) -> Result<(), CliError> {
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(());
    };
    let leaf = sub.subcommand_name();
    let formats = formats_for(name, leaf);
    if formats.contains(&format) {
        return Ok(());
    }
    let names: Vec<&str> = formats.iter().map(|f| f.as_str()).collect();
    let command = leaf.map_or(name.to_string(), |leaf| format!("{name} {leaf}"));
    Err(CliError::new(
        exit::Code::FormatUnsupported,
        format!(
            "`mcplock {command}` has no --format {}; it has: {}",
            format.as_str(),
            names.join(", ")
        ),
    ))
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The lockfile that says what this server may offer.
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    /// The locked server [default: the entry locked with exactly this argv].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    #[command(flatten)]
    pub check: SignatureCheck,

    /// Run from a lockfile whose signature is not checked (said on stderr at every start).
    #[arg(long, conflicts_with_all = ["key", "bundle"])]
    pub allow_unsigned: bool,

    /// Forward the server's own requests (sampling, elicitation, roots) to the host; by
    /// default the server gets an error.
    #[arg(long)]
    pub allow_server_requests: bool,

    /// Let a method outside the MCP protocol through (repeatable; exact name, e.g. an
    /// extension's `vendor/search`): a host request of it is forwarded and audited, a
    /// notification of it passes either way. Every other method the negotiated protocol
    /// version does not define is answered by the proxy (-32601) or dropped, and audited.
    #[arg(long = "allow-method", value_name = "NAME")]
    pub allow_methods: Vec<String>,

    /// Largest single message accepted from either side (suffixes K, M, KiB, MiB).
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub max_message_size: usize,

    /// What to do with what differs from the lock: `withhold` unlocked and drifted items from
    /// lists and deny their calls; `block` a whole list answer holding any of them; or `warn`
    /// (shadow mode: let it through, audited as a note). Server drift blocks unless `warn`.
    #[arg(long, value_enum, value_name = "ACTION", default_value = "withhold")]
    pub on_drift: OnDriftArg,

    /// What to do with a tool result, prompt or resource content that holds findings (hidden
    /// or tag characters, terminal escapes, instruction overrides, pseudo-system tags,
    /// concealment, secret paths; a structuredContent outside the locked outputSchema): `warn`
    /// (forward, audit each), `redact` (replace each with a marked placeholder), or `block`
    /// (answer the host with an error instead).
    #[arg(long, value_enum, value_name = "ACTION", default_value = "warn")]
    pub on_response_finding: OnResponseArg,

    #[command(flatten)]
    pub guard: GuardArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,

    /// The server to run, exactly as locked: everything after `--`, executed without a shell
    /// (or its --url, exactly as locked).
    #[arg(last = true, value_name = "CMD")]
    pub server: Vec<String>,
}

/// What a proxy or a gateway holds every session to besides the lock, and where it writes
/// what it decided (shared by `proxy` and `gateway`).
#[derive(Clone, Debug, Default, Args)]
pub struct GuardArgs {
    /// Append one hash-chained JSON line per decision to this file.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<std::path::PathBuf>,

    /// Also write the values of every call (its arguments, the server's result or error) into
    /// the audit log, each line's payload capped at 256 KiB. Off by default: calls carry user
    /// data and secrets; without it only their digests are written.
    #[arg(long, requires = "audit")]
    pub audit_payloads: bool,

    /// Sign a checkpoint into the audit log when the session (for a gateway: the gateway)
    /// opens and when it closes, with this Ed25519 private key (`mcplock keygen`): `mcplock
    /// audit verify --key PUBLIC` then tells a log cut short (it does not end with a signed
    /// close) without a head kept elsewhere.
    #[arg(long, value_name = "PRIVATE", requires = "audit")]
    pub audit_key: Option<std::path::PathBuf>,

    /// A revocation list (`mcplock revoke`) to honour: what it revokes is withheld from lists
    /// and denied (reason `revoked`). It is looked at before every message from the host: a
    /// change takes effect from the next one, and the host is sent list_changed. Unless
    /// --allow-unsigned it must be signed (with --key, or --revocations-key): one that is
    /// unsigned, wrongly signed or unreadable denies every call until it holds; one older than
    /// the list last accepted (its sequence) is refused and the last accepted stays in force,
    /// as it does when the file disappears. A list never written revokes nothing. An https://
    /// URL is where the list is published (its signature at URL.sig): it is fetched again
    /// every few seconds (conditional on its ETag) and verified before it replaces the copy in
    /// force; one that fails to come or to verify leaves the last verified in force.
    #[arg(long, value_name = "PATH|URL")]
    pub revocations: Option<std::path::PathBuf>,

    /// The public key the revocation list is signed with [default: --key].
    #[arg(long, value_name = "PUBLIC", requires = "revocations")]
    pub revocations_key: Option<std::path::PathBuf>,

    /// Where the last revocation list accepted is remembered, so that a restart refuses an
    /// older one too [default: the directory of --audit; without either, only until the
    /// process ends].
    #[arg(long, value_name = "DIR", requires = "revocations")]
    pub state_dir: Option<std::path::PathBuf>,

    /// A policy whose `on: call` rules every tools/call must pass (repeatable): the locked
    /// tool, the server, the call's arguments and the agent (`mcp.agent.name`, a gateway's)
    /// are judged before the call leaves; a failing
    /// `error` rule denies it with the rule's id and message (reason `policy`), a rule that
    /// does not evaluate cleanly denies too. Other rules are for `policy check`.
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<std::path::PathBuf>,

    /// A built-in preset whose `on: call` rules apply (repeatable).
    #[arg(long = "preset", value_name = "NAME")]
    pub presets: Vec<String>,

    /// Where the policies' `limits:` are counted: `redis://HOST:PORT` (or `rediss://` for TLS)
    /// shares every budget with each gateway and proxy given the same store; the password, if
    /// any, comes from the environment variable MCPLOCK_STATE_PASSWORD, never the URL. Without
    /// it, in this process. A decision the store cannot make is a refusal
    /// (`limits-unavailable`), unless --limits-fail-open names the call's tier.
    #[arg(long = "state", value_name = "URL")]
    pub state: Option<String>,

    /// With a `rediss://` --state: trust the CA certificates in this PEM file (a private CA)
    /// instead of the platform's roots.
    #[arg(long, value_name = "PEM", requires = "state")]
    pub state_cacert: Option<std::path::PathBuf>,

    /// Let calls of this trust tier through when the limits' store does not answer
    /// (repeatable; said on stderr). Calls of other tiers, and untiered ones, are refused.
    #[arg(long, value_name = "TIER", requires = "state")]
    pub limits_fail_open: Vec<String>,
}

/// `--on-drift` as typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnDriftArg {
    Withhold,
    Block,
    Warn,
}

impl From<OnDriftArg> for crate::core::enforce::OnDrift {
    fn from(arg: OnDriftArg) -> Self {
        match arg {
            OnDriftArg::Withhold => Self::Withhold,
            OnDriftArg::Block => Self::Block,
            OnDriftArg::Warn => Self::Warn,
        }
    }
}

/// `--on-response-finding` as typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnResponseArg {
    Warn,
    Redact,
    Block,
}

impl From<OnResponseArg> for crate::core::inspect::OnResponse {
    fn from(arg: OnResponseArg) -> Self {
        match arg {
            OnResponseArg::Warn => Self::Warn,
            OnResponseArg::Redact => Self::Redact,
            OnResponseArg::Block => Self::Block,
        }
    }
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify an audit log's hash chain; exit 1 naming the first line that breaks it.
    ///
    /// Every line must be canonical JSON of the known shape, carrying the hash of the line
    /// before it (the first carries sha256:000...0). An edited line breaks the chain at the
    /// line after it; a removed, inserted or reordered line where it happened. A log cut short
    /// at its end still chains: compare the printed head hash with one kept elsewhere, or pass
    /// it with --head.
    ///
    /// Example:
    ///   mcplock audit verify mcplock-audit.jsonl --head sha256:3f1c...
    #[command(verbatim_doc_comment)]
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// The audit log (JSON lines).
    #[arg(value_name = "FILE")]
    pub log: std::path::PathBuf,

    /// The hash the last line must have (kept outside the log, e.g. by a log shipper).
    #[arg(long, value_name = "SHA256")]
    pub head: Option<String>,

    /// The public key of the proxy's --audit-key: every checkpoint must verify with it, and
    /// every session must end with a signed close (one that does not was cut short, or its
    /// proxy was killed); a log still being written is checked up to its last line.
    #[arg(long, value_name = "PUBLIC")]
    pub key: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub command: BundleCommand,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Pack a signed lockfile into a deterministic ZIP for auditors.
    ///
    /// The bundle holds the lockfile, its signature, the signer's public key, README.txt
    /// (what was approved, for people), the policy and its result when --policy is given, and
    /// manifest.json (size and sha256 of every other member, and a summary). With --key the
    /// manifest is signed too (manifest.json.sig), so every byte is covered. Export refuses a
    /// lockfile whose signature does not verify, and an approval that fails its policy. Same
    /// inputs give the same bytes, whatever the clock, umask, file modes or directory.
    ///
    /// Examples:
    ///   mcplock bundle export --key team.key -o approval.zip
    ///   mcplock bundle export --public-key team.pub --policy team-policy.yaml
    #[command(verbatim_doc_comment)]
    Export(BundleExportArgs),

    /// Check a bundle offline, treating the ZIP as hostile, and show what it approves.
    ///
    /// Rejects path traversal, absolute paths, backslashes, duplicate names, symlinks,
    /// directories, encrypted entries, unknown members, entries not in the manifest or
    /// missing from the ZIP, size or hash mismatches, too many entries and members that
    /// inflate past a cap (zip bombs). Then checks the lockfile (strict read, summary), runs the
    /// policy again and compares the result, and verifies both signatures against --key.
    /// Nothing is extracted to disk.
    ///
    /// Without --key only integrity can be checked (a key inside the bundle proves nothing):
    /// exit 1 unless --integrity-only. A bundle with an unsigned manifest also needs
    /// --integrity-only. Exit 0 only when everything holds; 1 when a check fails; 2 when the
    /// input cannot be read.
    ///
    /// Example:
    ///   mcplock bundle verify approval.zip --key team.pub
    #[command(verbatim_doc_comment)]
    Verify(BundleVerifyArgs),
}

#[derive(Debug, Args)]
pub struct BundleExportArgs {
    /// Where to write the bundle.
    #[arg(short = 'o', long, value_name = "PATH", default_value = "approval.zip")]
    pub output: std::path::PathBuf,

    /// The signed lockfile to pack.
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    /// The lockfile's signature envelope [default: LOCKFILE.sig].
    #[arg(long, value_name = "PATH")]
    pub signature: Option<std::path::PathBuf>,

    /// The signer's Ed25519 private key: signs the manifest (and gives the public key).
    #[arg(long, value_name = "PRIVATE")]
    pub key: Option<std::path::PathBuf>,

    /// The signer's public key (PEM SPKI), when --key is not given.
    #[arg(long, value_name = "PUBLIC")]
    pub public_key: Option<std::path::PathBuf>,

    /// A policy file to evaluate over the lockfile and include with its result.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,

    /// Seconds the policy evaluation may take.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub eval_timeout: f64,

    /// Memory the policy evaluation may add to the process (suffixes K, M, G, KiB, MiB, GiB).
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_size)]
    pub eval_memory: usize,

    /// Replace an existing file at --output that holds something else.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct BundleVerifyArgs {
    /// The bundle to verify.
    #[arg(value_name = "BUNDLE")]
    pub bundle: std::path::PathBuf,

    /// The signer's Ed25519 public key (PEM SPKI), obtained from the signer, not the bundle.
    #[arg(long, value_name = "PUBLIC")]
    pub key: Option<std::path::PathBuf>,

    /// Accept a bundle whose authenticity cannot be fully established (no --key, or an
    /// unsigned manifest); integrity is still checked in full.
    #[arg(long)]
    pub integrity_only: bool,

    /// Seconds the policy evaluation may take.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub eval_timeout: f64,

    /// Memory the policy evaluation may add to the process (suffixes K, M, G, KiB, MiB, GiB).
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_size)]
    pub eval_memory: usize,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate policies; exit 1 when a rule fails, 2 when a policy is broken.
    ///
    /// Fail-closed: a rule that errors, reads a missing field or returns a non-boolean fails
    /// the check whatever its severity; `warn` only softens a rule that evaluated cleanly to
    /// false. Evaluation runs under a deadline (--eval-timeout). A server that cannot be
    /// scanned is exit 3, never an empty pass. docs/policy.md describes the input model.
    ///
    /// Examples:
    ///   mcplock policy check --preset baseline
    ///   mcplock policy check --policy team.yaml --lockfile mcp-lock.json --format json
    ///   mcplock policy check --preset strict -- npx -y @modelcontextprotocol/server-everything
    #[command(verbatim_doc_comment)]
    Check(PolicySource),

    /// Print each rule, what it checks, and which items it fails on (exits 0).
    Explain(PolicySource),

    /// List the presets built into mcplock.
    Presets,
}

#[derive(Debug, Args)]
pub struct PolicySource {
    /// A policy file (YAML; repeatable).
    #[arg(long, value_name = "FILE")]
    pub policy: Vec<std::path::PathBuf>,

    /// A built-in preset: baseline or strict (repeatable).
    #[arg(long, value_name = "NAME")]
    pub preset: Vec<String>,

    /// The lockfile to check (when no server is given after `--`).
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    /// Seconds the whole evaluation may take.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub eval_timeout: f64,

    /// Memory the policy evaluation may add to the process (suffixes K, M, G, KiB, MiB, GiB).
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_size)]
    pub eval_memory: usize,

    #[command(flatten, next_help_heading = "The servers a host runs")]
    pub hosts: HostArgs,

    /// A revocation list (`mcplock revoke`): what it revokes is `revoked` in the input model
    /// (the presets fail it).
    #[arg(long, value_name = "PATH")]
    pub revocations: Option<std::path::PathBuf>,

    /// The public key a signed revocation list must verify with.
    #[arg(long, value_name = "PUBLIC", requires = "revocations")]
    pub revocations_key: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub server: ServerArgs,
}

/// The severity threshold at or above which drift fails the command. One parser for every
/// command that takes `--fail-on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Critical,
    Moderate,
    Info,
    /// Report drift but always exit 0.
    Never,
}

impl FailOn {
    pub fn threshold(self) -> Option<crate::core::diff::Severity> {
        use crate::core::diff::Severity;
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Moderate => Some(Severity::Moderate),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Critical => "critical",
            FailOn::Moderate => "moderate",
            FailOn::Info => "info",
            FailOn::Never => "never",
        }
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old side: a lockfile or a `scan --format json` snapshot (with NEW).
    #[arg(value_name = "OLD")]
    pub old: Option<std::path::PathBuf>,

    /// The new side: a lockfile or a `scan --format json` snapshot.
    #[arg(value_name = "NEW")]
    pub new: Option<std::path::PathBuf>,

    /// The lockfile to compare live servers with.
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    /// The locked server to compare (default: the one the server reports, or the only one).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Compare two credential contexts of the servers locked under both, from the lockfile
    /// alone (`--between user admin`): each change is what the second context's credential is
    /// offered that the first's is not, or the other way round.
    #[arg(long, num_args = 2, value_names = ["CONTEXT", "OTHER"], value_parser = parse_context, conflicts_with_all = ["old", "server"])]
    pub between: Vec<String>,

    /// Fail (exit 1) on drift at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Moderate)]
    pub fail_on: FailOn,

    #[command(
        flatten,
        next_help_heading = "Before relaunching (the commands a lockfile records are code to run)"
    )]
    pub trust: SignatureCheck,

    /// Texts longer than this many words (old and new together) are shown replaced whole,
    /// with lengths and digests, instead of word by word (a word diff is quadratic at worst).
    /// Every change is still reported.
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    pub max_text_diff_words: usize,

    /// A revocation list (`mcplock revoke`): each server or item of the new side it revokes
    /// is a critical `revoked` change, whatever else changed. When the lockfile's signature
    /// is checked (--key, --bundle) the list must be signed too.
    #[arg(long, value_name = "PATH")]
    pub revocations: Option<std::path::PathBuf>,

    /// The public key the revocation list is signed with [default: --key].
    #[arg(long, value_name = "PUBLIC", requires = "revocations")]
    pub revocations_key: Option<std::path::PathBuf>,

    #[command(flatten, next_help_heading = "The servers a host runs")]
    pub hosts: HostArgs,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The lockfile reviewed against, and re-locked.
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    /// Only this locked server.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Accept a change (repeatable): SERVER or SERVER/KIND/KEY, optionally @sha256:... (the
    /// digest the report showed; refused if the server now serves another).
    #[arg(long, value_name = "WHAT")]
    pub accept: Vec<String>,

    /// Reject a change (repeatable): it stays as locked.
    #[arg(long, value_name = "WHAT")]
    pub reject: Vec<String>,

    /// Accept every change shown.
    #[arg(long)]
    pub accept_all: bool,

    /// Who reviews, as recorded [default: $USER].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,

    /// Why, as recorded.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    /// Sign the re-locked lockfile with this Ed25519 private key.
    #[arg(long, value_name = "PRIVATE")]
    pub sign_key: Option<std::path::PathBuf>,

    /// Show the changes and the decisions; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(
        flatten,
        next_help_heading = "Checking the lockfile before anything starts"
    )]
    pub trust: SignatureCheck,

    #[command(flatten, next_help_heading = "The servers a host runs")]
    pub hosts: HostArgs,

    #[command(flatten)]
    pub server: ServerArgs,
}

/// Which signature a lockfile must carry: an Ed25519 key and envelope, or a Sigstore bundle
/// with the identity and issuer it must name. Shared by `verify` and by the commands that
/// relaunch what a lockfile records (`diff`, `lock --check`).
#[derive(Clone, Debug, Default, Args)]
pub struct SignatureCheck {
    /// The signer's Ed25519 public key (PEM SPKI).
    #[arg(long, value_name = "PUBLIC", conflicts_with = "bundle")]
    pub key: Option<std::path::PathBuf>,

    /// The signature envelope [default: LOCKFILE.sig].
    #[arg(long, value_name = "PATH", conflicts_with = "bundle")]
    pub signature: Option<std::path::PathBuf>,

    /// A Sigstore bundle (from `sign --sigstore`, cosign or sigstore-python) over the
    /// lockfile's canonical bytes. Needs --identity or --identity-regexp, and --issuer.
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<std::path::PathBuf>,

    /// The exact signer identity: an email, or a URI such as
    /// https://github.com/ORG/REPO/.github/workflows/sign.yml@refs/heads/main.
    #[arg(
        long,
        value_name = "IDENTITY",
        requires = "bundle",
        conflicts_with = "identity_regexp"
    )]
    pub identity: Option<String>,

    /// A regular expression the WHOLE identity must match (it is anchored: ^(?:RE)$).
    #[arg(long, value_name = "RE", requires = "bundle")]
    pub identity_regexp: Option<String>,

    /// The OIDC issuer that vouched for the identity, e.g.
    /// https://token.actions.githubusercontent.com or https://accounts.google.com.
    #[arg(long, value_name = "URL", requires = "bundle")]
    pub issuer: Option<String>,

    /// The Sigstore trusted_root.json to verify against, offline [default: the public-good
    /// trust root built into mcplock].
    #[arg(long, value_name = "FILE", requires = "bundle")]
    pub trusted_root: Option<std::path::PathBuf>,
}

impl SignatureCheck {
    /// What `verify` would be given for `lockfile`; `None` when no check was asked for.
    pub fn verify_args(&self, lockfile: &std::path::Path) -> Option<VerifyArgs> {
        if self.key.is_none() && self.bundle.is_none() {
            return None;
        }
        Some(VerifyArgs {
            lockfile: lockfile.to_path_buf(),
            lockfile_flag: None,
            check: self.clone(),
            hosts: HostArgs::default(),
            revocations: None,
            revocations_key: None,
            artifacts: false,
        })
    }

    /// These flags verify a lockfile before its recorded commands are relaunched; with a
    /// server given after `--` nothing is relaunched from the lockfile, so they would check
    /// nothing.
    pub fn only_for_relaunch(&self) -> Result<(), CliError> {
        if self.key.is_some() || self.bundle.is_some() {
            return Err(CliError::new(
                exit::Code::Usage,
                "--key/--bundle verify a lockfile before its recorded commands are started; with a server after `--` none is started from the lockfile (verify it with `mcplock verify`)",
            ));
        }
        Ok(())
    }
}

/// The `--declare` choice that reproduces recorded client capabilities.
pub fn declared_from(caps: &serde_json::Map<String, serde_json::Value>) -> Vec<ClientCapability> {
    let mut out = Vec::new();
    for (key, cap) in [
        ("roots", ClientCapability::Roots),
        ("sampling", ClientCapability::Sampling),
        ("elicitation", ClientCapability::Elicitation),
    ] {
        if caps.contains_key(key) {
            out.push(cap);
        }
    }
    out
}

/// Output formats: one flag for every command (`mcplock --format json verify` or `mcplock
/// verify --format json`). A command refuses a format it has no output in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: untrusted text is shown with control characters escaped; errors on stderr.
    Human,
    /// Exactly one JSON document on stdout, also for errors and refusals
    /// (`{"error": {"code", "exitCode", "message", "details"}}`, docs/exit-codes.md).
    Json,
    /// Markdown for a pull-request comment or a CI job summary (diff, policy check).
    Markdown,
    /// SARIF 2.1.0 for code scanning (diff, policy check, and the findings of scan and lock).
    Sarif,
    /// The draft vendor-neutral mcp-lock/1 lockfile, for tools that read it (export).
    #[value(name = "mcp-lock/1")]
    McpLock1,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Markdown => "markdown",
            Format::Sarif => "sarif",
            Format::McpLock1 => "mcp-lock/1",
        }
    }
}

/// Client capabilities mcplock can declare to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum ClientCapability {
    Roots,
    Sampling,
    Elicitation,
}

#[derive(Clone, Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,

    /// The lockfile that says what each server may offer: a file, or an https:// URL where it
    /// is published (its signature at URL.sig), fetched again every --published-poll seconds
    /// and verified before it is used, so every replica converges on it.
    #[arg(long, value_name = "PATH|URL", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    #[command(flatten)]
    pub check: SignatureCheck,

    /// Serve from a lockfile whose signature is not checked (said on stderr at start).
    #[arg(long, conflicts_with_all = ["key", "bundle"])]
    pub allow_unsigned: bool,

    /// Where to listen (port 0 picks a free one; the address is printed on stderr). Without
    /// TLS only a loopback address is accepted.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8700")]
    pub listen: String,

    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The certificate's private key (PEM; mode 0600 or narrower).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// The agents file: each agent's token digests and grants (`mcplock gateway token`); mode
    /// 0600 or narrower.
    #[arg(long, value_name = "FILE")]
    pub agents: Option<std::path::PathBuf>,

    /// Accept OAuth access tokens (JWT, `typ: at+jwt`) from this issuer besides the agents
    /// file's tokens: signed with a key of its JWKS (found from its metadata), for
    /// --oauth-audience, unexpired, with the --oauth-scope scopes. The token's client maps to
    /// an agent (`mcplock gateway subject`). The token is never passed to a server.
    #[arg(long, value_name = "URL", requires = "oauth_audience")]
    pub oauth_issuer: Option<String>,

    /// This gateway's resource identifier, which a token's `aud` must hold (the URL agents
    /// reach it at, e.g. https://gw.example/mcp); published in its Protected Resource Metadata.
    #[arg(long, value_name = "URI", requires = "oauth_issuer")]
    pub oauth_audience: Option<String>,

    /// A scope every access token must hold (repeatable).
    #[arg(long = "oauth-scope", value_name = "SCOPE", requires = "oauth_issuer")]
    pub oauth_scopes: Vec<String>,

    /// Seconds of clock skew allowed on a token's exp and nbf.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub oauth_leeway: u64,

    /// An Origin a browser-based host may call from, besides loopback ones (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,

    /// Most host sessions open at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_sessions: usize,

    /// Seconds between two fetches of a lockfile or revocation list given as a URL (each
    /// fetch conditional on its ETag; what comes is verified before it is used).
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_seconds)]
    pub published_poll: f64,

    /// Serve every session of this locked server from one running server (repeatable). Only
    /// for a server that keeps nothing of one client from another: each session is still
    /// enforced on its own, but the server is started once, told no client's capabilities,
    /// and its log messages and requests to a client are not relayed.
    #[arg(long, value_name = "SERVER")]
    pub share: Vec<String>,

    /// A header the gateway sends a remote server that was locked with headers (`lock --url
    /// --header/--bearer-env`): `SERVER=Name: value` (repeatable). `${VAR}` in the value is read
    /// from the gateway's environment. Every header the server was locked with must be given,
    /// and no other; an agent's own token is never sent upstream.
    #[arg(long = "upstream-header", value_name = "'SERVER=NAME: VALUE'")]
    pub upstream_headers: Vec<String>,

    /// The gateway's own OAuth client for a remote server locked through OAuth (`lock --url
    /// --oauth-client-id`): `SERVER=CLIENT_ID:SECRET_VAR[:SCOPE,SCOPE...]` (repeatable), the
    /// secret read from the environment variable SECRET_VAR. Tokens are got by client
    /// credentials for the server's own URL, kept in memory, renewed when the server refuses
    /// one, and shared by the server's sessions; the authorization surface must be the locked
    /// one. An agent's own token is never sent upstream.
    #[arg(long = "upstream-oauth", value_name = "SERVER=CLIENT_ID:SECRET_VAR")]
    pub upstream_oauth: Vec<String>,

    /// Seconds a session may go without a request before it is ended (its server stopped).
    #[arg(long, value_name = "SECS", default_value_t = 900.0, value_parser = parse_seconds)]
    pub idle_timeout: f64,

    /// What to do with items that differ from the lock (as `mcplock proxy --on-drift`).
    #[arg(long, value_enum, value_name = "ACTION", default_value = "withhold")]
    pub on_drift: OnDriftArg,

    /// What to do with a result that holds findings (as `mcplock proxy
    /// --on-response-finding`).
    #[arg(long, value_enum, value_name = "ACTION", default_value = "warn")]
    pub on_response_finding: OnResponseArg,

    /// How it writes what it does on stderr: `human` lines, or `json` (one object per line:
    /// time, level, component, message, and the agent, session and server concerned).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "human")]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub guard: GuardArgs,
}

/// `--log-format` as typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, Subcommand)]
pub enum GatewayCommand {
    /// Add an agent, or a new token for one, and its grants; prints the token once.
    ///
    /// Only the token's SHA-256 digest is stored (the file is written 0600). A grant is a
    /// server (`--grant files`: all it offers, as locked) or one tool of it (`--grant
    /// files/read`); an agent with no grant may use nothing.
    #[command(after_help = EXIT_CODES)]
    Token(GatewayTokenArgs),

    /// Make an OAuth client (a token's `client_id`, else its `sub`) an agent, with its grants.
    ///
    /// With `gateway --oauth-issuer`, an access token from that issuer for this gateway is
    /// accepted, and its client is the agent named here. No token is made or stored. One
    /// subject is one agent.
    #[command(after_help = EXIT_CODES)]
    Subject(GatewaySubjectArgs),
}

#[derive(Clone, Debug, Args)]
pub struct GatewaySubjectArgs {
    /// The agents file (created when missing).
    #[arg(long, value_name = "FILE")]
    pub agents: std::path::PathBuf,

    /// The agent's name: letters, digits, '-', '_' and '.'.
    #[arg(long, value_name = "NAME")]
    pub agent: String,

    /// The client (`client_id`) or subject (`sub`) of its access tokens.
    #[arg(long, value_name = "ID")]
    pub subject: String,

    /// What the agent may use: SERVER or SERVER/TOOL (repeatable; added to its grants).
    #[arg(long = "grant", value_name = "SERVER[/TOOL]")]
    pub grants: Vec<String>,
}

#[derive(Clone, Debug, Args)]
pub struct GatewayTokenArgs {
    /// The agents file (created when missing).
    #[arg(long, value_name = "FILE")]
    pub agents: std::path::PathBuf,

    /// The agent's name: letters, digits, '-', '_' and '.'.
    #[arg(long, value_name = "NAME")]
    pub agent: String,

    /// What the agent may use: SERVER or SERVER/TOOL (repeatable; added to its grants).
    #[arg(long = "grant", value_name = "SERVER[/TOOL]")]
    pub grants: Vec<String>,
}

/// How to reach and read a server (shared by every command that starts one).
#[derive(Clone, Debug, Args)]
pub struct ServerArgs {
    /// Protocol version: `auto` probes with server/discover (2026-07-28) and falls back to the
    /// initialize handshake; or one of 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25,
    /// 2026-07-28 to require exactly that version.
    #[arg(long, value_name = "VERSION", default_value = "auto")]
    pub protocol: crate::mcp::ProtocolChoice,

    /// Client capabilities to declare (comma-separated). Some servers offer more tools to a more
    /// capable client; the choice is recorded in the snapshot. Default: none.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CAP,...")]
    pub declare: Vec<ClientCapability>,

    /// Environment variable for the server (repeatable): `NAME` passes mcplock's own value
    /// (so no secret is typed on the command line), `NAME=VALUE` sets one. Only names are
    /// recorded. A variable a locked server was locked with is passed by its name whenever it
    /// is set, so an exported secret relaunches it as locked.
    #[arg(long = "env", value_name = "NAME[=VALUE]", value_parser = parse_env_pair)]
    pub env: Vec<(String, Option<String>)>,

    /// The directory to run the server in (recorded, as an absolute path, with its command).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::path::PathBuf>,

    /// Seconds to wait for each answer from the server.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_seconds)]
    pub timeout: f64,

    /// Seconds `--protocol auto` waits for the server/discover probe alone. A legacy server may
    /// ignore the unknown method; after this bound the initialize handshake is offered too,
    /// and the first answer that decides wins (a slow-starting modern server still answers the
    /// probe first). Not used where a lock records the server's protocol (diff, lock --check).
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = parse_seconds)]
    pub probe_timeout: f64,

    /// Seconds the whole scan may take, server start-up included.
    #[arg(long, value_name = "SECS", default_value_t = 120.0, value_parser = parse_seconds)]
    pub scan_timeout: f64,

    /// Largest single message accepted from the server, in bytes (suffixes K, M, KiB, MiB).
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub max_message_size: usize,

    /// Refuse any line on the server's stdout that is not JSON. By default a human line (a
    /// start-up banner such as "... running on stdio") is skipped, counted and reported, as the
    /// official SDK clients do; it can never be taken for an answer. A line that starts like a
    /// message but does not parse, or is not UTF-8, is refused either way.
    #[arg(long)]
    pub strict_stdout: bool,

    /// Most pages followed per list (tools, prompts, templates, resources).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub max_pages: usize,

    /// Most items accepted per list.
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub max_items: usize,

    /// Most items accepted over all lists of one scan.
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    pub max_total_items: usize,

    /// Most bytes the server may send over one whole scan: every page, notification and
    /// skipped line (suffixes K, M, G, KiB, MiB, GiB).
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = parse_size)]
    pub max_scan_bytes: usize,

    #[command(flatten)]
    pub remote: RemoteArgs,

    /// The server to run: everything after `--` is its argv, executed without a shell.
    #[arg(last = true, value_name = "CMD")]
    pub server: Vec<String>,
}

/// OAuth clients by the server URL they are for (shared by clones of the flags).
pub type OAuthClients = std::sync::Arc<
    std::sync::Mutex<
        std::collections::BTreeMap<String, std::sync::Arc<crate::transport::oauth::OAuth>>,
    >,
>;

fn parse_context(name: &str) -> Result<String, String> {
    if crate::core::launch::valid_context(name) {
        Ok(name.to_string())
    } else {
        Err(
            "a context is a label of 1 to 64 letters, digits, '-', '_' or '.' (never a credential)"
                .into(),
        )
    }
}

/// A remote server and what it takes to reach it.
#[derive(Clone, Debug, Default, Args)]
pub struct RemoteArgs {
    /// A remote server's endpoint (Streamable HTTP), instead of a command after `--`. Plain
    /// http:// only to loopback (127.0.0.1, ::1, localhost) unless --allow-insecure-http.
    #[arg(long, value_name = "URL", conflicts_with = "server")]
    pub url: Option<String>,

    /// With --url: a header sent with every request, `'Name: value'` (repeatable). `${VAR}` in
    /// the value is replaced by that environment variable, so a secret need not be on the
    /// command line. Only the header's name is recorded, never its value.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,

    /// With --url: send `Authorization: Bearer <token>`, the token read from this environment
    /// variable (never from the command line; never shown, logged or recorded).
    #[arg(long, value_name = "VAR")]
    pub bearer_env: Option<String>,

    /// With --url, or relaunching a locked remote server: also trust the CA certificates in
    /// this PEM file (a private CA), besides the platform's roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,

    /// With --url: allow plain http:// to a host that is not loopback. Anyone on the path can
    /// then read and change what the server offers.
    #[arg(long, requires = "url")]
    pub allow_insecure_http: bool,

    /// With --url: the credential context this server is reached under, a label such as `user`
    /// or `admin` (never a credential). A server may offer each credential another surface: the
    /// lock keeps one entry per context (named NAME.CONTEXT by default), and the proxy, diff
    /// and policy pick the entry of the context given.
    #[arg(long, value_name = "NAME", value_parser = parse_context)]
    pub context: Option<String>,

    /// A remote server behind OAuth 2.1: log in as this client (registered with the server's
    /// authorization server). Discovery follows the server's 401; the token is asked for the
    /// server's own URL (RFC 8707), kept in memory only, never recorded or shown. A person logs
    /// in in a browser (the URL to open is printed on stderr) unless a client secret or a
    /// refresh token is given.
    #[arg(long, value_name = "ID")]
    pub oauth_client_id: Option<String>,

    /// With --oauth-client-id: the client's secret, read from this environment variable; the
    /// token is then got by client credentials (a machine, no person).
    #[arg(long, value_name = "VAR", requires = "oauth_client_id")]
    pub oauth_client_secret_env: Option<String>,

    /// With --oauth-client-id: a refresh token read from this environment variable (for CI:
    /// no browser).
    #[arg(long, value_name = "VAR", requires = "oauth_client_id")]
    pub oauth_refresh_token_env: Option<String>,

    /// With --oauth-client-id: a scope to ask for (repeatable) [default: those the server's
    /// 401 or its metadata names].
    #[arg(
        long = "oauth-scope",
        value_name = "SCOPE",
        requires = "oauth_client_id"
    )]
    pub oauth_scopes: Vec<String>,

    /// With a browser login: the loopback port its redirect comes back to (register
    /// http://127.0.0.1:PORT/callback with the authorization server) [default: any free port].
    #[arg(long, value_name = "PORT", requires = "oauth_client_id")]
    pub oauth_redirect_port: Option<u16>,

    /// With a browser login: how long to wait for it, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub oauth_login_timeout: u64,

    /// The OAuth clients made from these flags, one per server URL, made once so every start
    /// of a server (a --repeat, a relaunch) shares one login.
    #[arg(skip)]
    pub oauth: OAuthClients,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub repeat: RepeatArgs,

    #[command(flatten)]
    pub server: ServerArgs,
}

/// Starting a server several times to tell whether it offers the same thing each time.
#[derive(Clone, Debug, Args)]
pub struct RepeatArgs {
    /// Start and scan the server N times (one after another) and refuse, exit 3, if what it
    /// offers differs between starts, naming every item and JSON pointer that differed. A
    /// server that builds its descriptions from an unordered set would otherwise report drift
    /// on every re-scan, or pass by luck.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,

    /// With --repeat: when the starts differ, keep the first scan and say so instead of
    /// refusing (expect drift on re-scans of such a server).
    #[arg(long)]
    pub accept_unstable: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Key of this server in the lockfile [default: the serverInfo.name it reports].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The lockfile to write.
    #[arg(
        short = 'o',
        long = "lockfile",
        value_name = "PATH",
        default_value = "mcp-lock.json"
    )]
    pub lockfile: std::path::PathBuf,

    /// Also lock static resources (resources/list). Off by default: many servers list data
    /// there, not capability, and it changes often.
    #[arg(long)]
    pub resources: bool,

    /// Accept a changed server: rewrite its entry and print what changed.
    #[arg(long, conflicts_with = "check")]
    pub update: bool,

    /// Write nothing; exit 1 if the lockfile would change, 0 if not (for CI).
    #[arg(long)]
    pub check: bool,

    /// Rewrite a floating launch to the exact artifact it ran, then lock that launch:
    /// `npx -y pkg` becomes `npx -y pkg@1.2.3`, `uvx pkg` `uvx pkg==1.2.3`, `docker run ...
    /// image:tag` `image@sha256:...`. Put the pinned command (printed) in the host config too.
    /// With --host, the hosts' configs are rewritten to the pinned launches (the change is
    /// shown; a wrapped entry keeps its proxy); a server already locked needs --update too.
    #[arg(long, conflicts_with = "check")]
    pub pin: bool,

    /// The server's entry in the official MCP Registry (its `server.json`, or the registry
    /// API's answer for it): its name, version, repository and packages are recorded with the
    /// lock, and a package's fileSha256 is checked against the file the launch runs. A later
    /// entry naming another repository (another id: deleted and recreated) is critical drift;
    /// a deprecated or deleted status is reported by verify and given to policies.
    #[arg(long, value_name = "FILE", conflicts_with = "host")]
    pub registry_entry: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub repeat: RepeatArgs,

    #[command(
        flatten,
        next_help_heading = "Before relaunching (the commands a lockfile records are code to run)"
    )]
    pub trust: SignatureCheck,

    #[command(flatten, next_help_heading = "Every server a host runs")]
    pub hosts: HostArgs,

    /// With --host: servers scanned at once [default: the number of CPUs].
    #[arg(long, value_name = "N", requires = "host")]
    pub jobs: Option<usize>,

    #[command(flatten)]
    pub server: ServerArgs,
}

/// Which hosts' configs to read.
#[derive(Clone, Debug, Default, Args)]
pub struct HostArgs {
    /// The host whose servers to take: claude-desktop, claude-code, cursor, vscode, windsurf,
    /// gemini, codex, continue, or all.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,

    /// Read this config file (in the format of the one --host given) instead of the host's
    /// documented locations.
    #[arg(long, value_name = "FILE", requires = "host")]
    pub config: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The server (its name in the lockfile).
    #[arg(long, value_name = "NAME")]
    pub server: String,

    /// The tool approved, as the lockfile holds it now.
    #[arg(long, value_name = "NAME")]
    pub tool: String,

    /// Who approves (a name or an email).
    #[arg(long, value_name = "WHO")]
    pub by: String,

    /// Why.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// The lockfile.
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The server (its name in the lockfile).
    #[arg(long, value_name = "NAME")]
    pub server: String,

    /// Revoke only this tool of the server.
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,

    /// Revoke only this prompt of the server.
    #[arg(long, value_name = "NAME")]
    pub prompt: Option<String>,

    /// Revoke only this resource template (its uriTemplate) of the server.
    #[arg(long, value_name = "URI_TEMPLATE")]
    pub template: Option<String>,

    /// Revoke only the definition locked with this digest (sha256:...); by default whatever
    /// the lockfile holds under that name.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,

    /// Why: shown with every refusal this revocation causes.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,

    /// The revocation list to add to (created if missing).
    #[arg(
        long = "list",
        value_name = "PATH",
        default_value = "mcp-revocations.json"
    )]
    pub list: std::path::PathBuf,

    /// Sign the list with this Ed25519 private key (writes LIST.sig).
    #[arg(long, value_name = "PRIVATE")]
    pub key: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct WrapArgs {
    #[command(flatten)]
    pub hosts: HostArgs,

    /// The lockfile the proxy enforces (recorded as an absolute path).
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    #[command(flatten, next_help_heading = "How the proxy checks the lockfile")]
    pub check: SignatureCheck,

    /// Let the proxy run from an unsigned lockfile (it says so at every start).
    #[arg(long, conflicts_with_all = ["key", "bundle"])]
    pub allow_unsigned: bool,

    /// Give each wrapped server a hash-chained audit log in DIR (`NAME.audit.jsonl`, one per
    /// server, so no two proxies share a log); check one with `mcplock audit verify`.
    #[arg(
        long,
        value_name = "DIR",
        help_heading = "What each wrapped proxy does"
    )]
    pub audit: Option<std::path::PathBuf>,

    /// What each proxy does with what differs from the lock (see `mcplock proxy --help`);
    /// written into an entry only when not the default.
    #[arg(
        long,
        value_enum,
        value_name = "ACTION",
        default_value = "withhold",
        help_heading = "What each wrapped proxy does"
    )]
    pub on_drift: OnDriftArg,

    /// What each proxy does with a result that holds findings (see `mcplock proxy --help`);
    /// written into an entry only when not the default.
    #[arg(
        long,
        value_enum,
        value_name = "ACTION",
        default_value = "warn",
        help_heading = "What each wrapped proxy does"
    )]
    pub on_response_finding: OnResponseArg,

    /// A policy whose `on: call` rules each proxy applies (repeatable; recorded as an absolute
    /// path).
    #[arg(
        long = "policy",
        value_name = "FILE",
        help_heading = "What each wrapped proxy does"
    )]
    pub policies: Vec<std::path::PathBuf>,

    /// A built-in preset whose `on: call` rules each proxy applies (repeatable).
    #[arg(
        long = "preset",
        value_name = "NAME",
        help_heading = "What each wrapped proxy does"
    )]
    pub presets: Vec<String>,

    /// Print the diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UnwrapArgs {
    #[command(flatten)]
    pub hosts: HostArgs,

    /// Restore the original text of entries edited since they were wrapped (their edits,
    /// named without values, are then lost).
    #[arg(long)]
    pub force: bool,

    /// Print the diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct HostsArgs {
    #[command(flatten)]
    pub hosts: HostArgs,

    /// The lockfile to compare with.
    #[arg(long, value_name = "PATH", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key (PEM PKCS#8, mode 0600, never overwritten).
    #[arg(long, value_name = "PATH", default_value = "mcplock.key")]
    pub private: std::path::PathBuf,

    /// Where to write the public key (PEM SPKI).
    #[arg(long, value_name = "PATH", default_value = "mcplock.pub")]
    pub public: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The lockfile to sign.
    #[arg(value_name = "LOCKFILE", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    /// The lockfile to sign, named like every other command names it (instead of LOCKFILE).
    #[arg(long = "lockfile", value_name = "PATH", conflicts_with = "lockfile")]
    pub lockfile_flag: Option<std::path::PathBuf>,

    /// The Ed25519 private key (PEM PKCS#8, from `mcplock keygen`).
    #[arg(
        long,
        value_name = "PRIVATE",
        required_unless_present = "sigstore",
        conflicts_with = "sigstore"
    )]
    pub key: Option<std::path::PathBuf>,

    /// Sign keylessly with Sigstore: a short-lived Fulcio certificate for your OIDC identity,
    /// logged in Rekor; writes a Sigstore bundle (default: LOCKFILE.sigstore.json).
    #[arg(long)]
    pub sigstore: bool,

    /// The OIDC identity token (JWT) for --sigstore [default: $SIGSTORE_ID_TOKEN, else the
    /// CI's ambient token, e.g. GitHub Actions with `id-token: write`].
    #[arg(long, value_name = "JWT", requires = "sigstore")]
    pub identity_token: Option<String>,

    /// Fulcio (certificate authority) for --sigstore.
    #[arg(long, value_name = "URL", default_value = crate::crypto::sigstore::PUBLIC_GOOD_FULCIO)]
    pub fulcio_url: String,

    /// Rekor (transparency log) for --sigstore.
    #[arg(long, value_name = "URL", default_value = crate::crypto::sigstore::PUBLIC_GOOD_REKOR)]
    pub rekor_url: String,

    /// The instance's trusted_root.json, to check the new bundle before writing it
    /// [default: the public-good trust root built into mcplock].
    #[arg(long, value_name = "FILE", requires = "sigstore")]
    pub trusted_root: Option<std::path::PathBuf>,

    /// Where to write the signature [default: LOCKFILE.sig, or LOCKFILE.sigstore.json].
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The lockfile to verify.
    #[arg(value_name = "LOCKFILE", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,

    /// The lockfile to verify, named like every other command names it (instead of LOCKFILE).
    #[arg(long = "lockfile", value_name = "PATH", conflicts_with = "lockfile")]
    pub lockfile_flag: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub check: SignatureCheck,

    /// Also check that every server these hosts run is locked, under its config key, with
    /// the launch its config gives (exit 1 naming each one that is not).
    #[command(flatten, next_help_heading = "The servers a host runs")]
    pub hosts: HostArgs,

    /// A revocation list (`mcplock revoke`): exit 1 naming each locked server or item it
    /// revokes. It must be signed, with the same --key or with --revocations-key (an unsigned
    /// list could lift a revocation).
    #[arg(long, value_name = "PATH")]
    pub revocations: Option<std::path::PathBuf>,

    /// The public key the revocation list is signed with [default: --key].
    #[arg(long, value_name = "PUBLIC", requires = "revocations")]
    pub revocations_key: Option<std::path::PathBuf>,

    /// Also resolve, on this machine, the package, image or file each locked local server
    /// runs, and compare it with the artifact the lock recorded: exit 1 (`artifact-changed`)
    /// naming each one that is another version or digest, or can no longer be resolved.
    #[arg(long)]
    pub artifacts: bool,
}

#[derive(Debug, Args)]
pub struct CanonicalArgs {
    /// The lockfile.
    #[arg(value_name = "LOCKFILE", default_value = "mcp-lock.json")]
    pub lockfile: std::path::PathBuf,
}

fn parse_env_pair(s: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match s.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (s, None),
    };
    if name.is_empty() || name.contains('\0') || value.is_some_and(|v| v.contains('\0')) {
        return Err(format!("expected NAME or NAME=VALUE, got {s:?}"));
    }
    Ok((name.to_owned(), value.map(str::to_owned)))
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "expected a number of seconds between 0 and 86400, got {s:?}"
        )),
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let mult: usize = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return Err(format!("unknown size unit in {s:?}; use bytes or K, M, G")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n >= 1024)
        .ok_or_else(|| format!("expected a size of at least 1024 bytes, got {s:?}"))
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let (cli, matches) = match parse_argv() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let format = cli.format;
    progress::enable(format == Format::Human);
    if let Err(error) = check_format(&matches, format) {
        return report(error, format);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                CliError::new(
                    exit::Code::Internal,
                    format!("cannot start the async runtime: {e}"),
                ),
                format,
            );
        }
    };
    // Helpers that leave a server's process group are reparented to mcplock, not init, so
    // they can be ended with the rest.
    process::become_subreaper();
    // A proxy that honours a revocation list re-reads it on SIGHUP instead of stopping.
    let hangup_stops = !matches!(&cli.command, Command::Proxy(p) if p.guard.revocations.is_some());
    // The gateway handles its signals itself: it drains on SIGTERM and SIGINT and ends as a
    // command does, and re-reads what it watches on SIGHUP.
    let own_signals = matches!(&cli.command, Command::Gateway(g) if g.command.is_none());
    let waits = stops_at_a_safe_point(&cli.command);
    let outcome = runtime.block_on(async {
        let command = dispatch(cli.command);
        tokio::pin!(command);
        tokio::select! {
            outcome = &mut command => {
                process::end_escaped(SHUTDOWN_GRACE).await;
                Ok(outcome)
            }
            signal = async {
                if own_signals {
                    std::future::pending().await
                } else {
                    interrupted(hangup_stops).await
                }
            } => {
                let mut finished = None;
                if let Some(grace) = waits {
                    interrupt::request();
                    finished = tokio::time::timeout(grace, &mut command).await.ok();
                }
                // The command is suspended, not dropped: end its servers as shutdown would.
                process::stop_all(SHUTDOWN_GRACE).await;
                Err((signal, finished))
            }
        }
    });
    // A read of our stdin may still be blocked in a runtime thread (the proxy's host side, when
    // the server ended the session): exit without waiting for it.
    runtime.shutdown_background();
    match outcome {
        Ok(outcome) => finish(outcome, format),
        Err(((name, number), finished)) => {
            // What the command did before it stopped (the files it wrote) is still reported.
            if let Some(outcome) = finished {
                let _ = finish(outcome, format);
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "mcplock: interrupted by {name}; every server it started was stopped"
            );
            ExitCode::from(128 + number)
        }
    }
}

/// The command line parsed, or the exit code of a refusal (or of --help, --version) already
/// reported.
fn parse_argv() -> Result<(Cli, clap::ArgMatches), ExitCode> {
    use clap::FromArgMatches;
    let parsed = command().try_get_matches().and_then(|matches| {
        let cli = Cli::from_arg_matches(&matches)?;
        Ok((cli, matches))
    });
    parsed.map_err(|e| {
        // --help and --version are not errors.
        if !e.use_stderr() {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        let format = format_in_argv(std::env::args_os().skip(1));
        let _ = e.print();
        let rendered = e.to_string();
        let first = rendered.lines().next().unwrap_or("invalid arguments");
        let error = CliError::new(
            exit::Code::Usage,
            first.strip_prefix("error: ").unwrap_or(first).to_string(),
        );
        report_structured(&error, format)
    })
}

/// Runs one command.
async fn dispatch(command: Command) -> Result<Output, CliError> {
    match command {
        Command::Scan(args) => scan::run(args).await,
        Command::Lock(args) if args.hosts.host.is_some() => hosts::lock(args).await,
        Command::Lock(args) => lock::run(args).await,
        Command::Hosts(args) => hosts::list(args),
        Command::Wrap(args) => off_the_loop(move || wrap::wrap(args)).await,
        Command::Revoke(args) => revocations::revoke(args),
        Command::Approve(args) => revocations::approve(args),
        Command::Unwrap(args) => off_the_loop(move || wrap::unwrap(args)).await,
        Command::Keygen(args) => keys::keygen(args),
        Command::Sign(mut args) => {
            if let Some(path) = args.lockfile_flag.take() {
                args.lockfile = path;
            }
            keys::sign(args).await
        }
        Command::Verify(args) => verify(args),
        Command::Canonical(args) => keys::canonical(args),
        Command::Diff(args) => diff::run(args).await,
        Command::Review(args) => review::run(args).await,
        Command::Policy(args) => policy::run(args).await,
        Command::Bundle(args) => bundle::run(args).await,
        Command::Audit(args) => audit::run(args),
        Command::Proxy(args) => proxy::run(args).await,
        Command::Gateway(args) => gateway::run(args).await,
        Command::Completions(args) => Ok(docs::completions(args)),
        Command::Man(args) => docs::man(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
    }
}

/// Runs long synchronous work on a blocking thread, so a signal is still heard while it runs
/// (the work checks [`interrupt::check`] before each write).
async fn off_the_loop(
    work: impl FnOnce() -> Result<Output, CliError> + Send + 'static,
) -> Result<Output, CliError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        CliError::new(
            exit::Code::Internal,
            format!("the command's thread ended abnormally: {e}"),
        )
    })?
}

/// Whether a command, on a signal, is asked to stop at its next safe point and waited for
/// (what it wrote before is reported) so long, rather than dropped.
fn stops_at_a_safe_point(command: &Command) -> Option<std::time::Duration> {
    match command {
        Command::Wrap(_) | Command::Unwrap(_) => Some(SHUTDOWN_GRACE),
        _ => None,
    }
}

/// `verify`, of the lockfile alone or with the servers hosts run, then of a revocation list.
fn verify(mut args: VerifyArgs) -> Result<Output, CliError> {
    if let Some(path) = args.lockfile_flag.take() {
        args.lockfile = path;
    }
    let revocations = args.revocations.clone();
    let lockfile = args.lockfile.clone();
    let key = args
        .revocations_key
        .clone()
        .or_else(|| args.check.key.clone());
    let verified = if args.hosts.host.is_some() {
        hosts::verify(args)
    } else {
        keys::verify(args)
    };
    match (verified, revocations) {
        (Ok(out), Some(list)) => revocations::after_verify(out, &list, &lockfile, key.as_deref()),
        (result, _) => result,
    }
}

/// A command's outcome rendered in `format` and written: its exit code.
fn finish(outcome: Result<Output, CliError>, format: Format) -> ExitCode {
    let output = match outcome {
        Ok(output) => output,
        Err(error) => return report(error, format),
    };
    let code = output.exit();
    let stdout = match output.render(format) {
        Ok(stdout) => stdout,
        Err(error) => return report(error, format),
    };
    match emit(&stdout) {
        Ok(()) => ExitCode::from(code.code()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => report(
            CliError::new(exit::Code::WriteFailed, format!("cannot write output: {e}")),
            Format::Human,
        ),
    }
}

/// How long each stage of stopping a server (input closed, TERM) may take before the next.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Resolves when SIGINT, SIGTERM or SIGHUP arrives, with its name and number (exit code
/// 128 + number). Never resolves where the handlers cannot be installed.
/// With `hangup_stops` false, SIGHUP is left to the command (the proxy re-reads its
/// revocation list on it; the gateway, which waits on this itself to drain, reloads).
async fn interrupted(hangup_stops: bool) -> (&'static str, u8) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = int.recv() => return ("SIGINT", 2),
            _ = term.recv() => return ("SIGTERM", 15),
            _ = hup.recv() => if hangup_stops { return ("SIGHUP", 1) },
        }
    }
}

/// What a command produced: the code of its answer when that answer is "no" (the exit status
/// is derived from it, docs/exit-codes.md), and its report, which `main` renders in the format
/// asked for (a JSON report of a "no" carries the code). A command never looks at --format
/// (`formats_for` says which ones it has).
pub struct Output {
    pub code: Option<exit::Code>,
    body: Body,
}

enum Body {
    /// The same bytes in every format (a canonical lockfile, a script, a man page).
    Text(String),
    /// A report cheap to build both ways: text for people, one JSON document for machines.
    Report {
        human: String,
        json: serde_json::Value,
    },
    /// A report rendered only in the format asked for (large, or with Markdown and SARIF).
    Lazy(Box<dyn FnOnce(Format) -> Result<String, CliError> + Send>),
}

impl Output {
    pub fn text(code: Option<exit::Code>, text: String) -> Output {
        Output {
            code,
            body: Body::Text(text),
        }
    }

    pub fn report(code: Option<exit::Code>, human: String, json: serde_json::Value) -> Output {
        Output {
            code,
            body: Body::Report { human, json },
        }
    }

    /// How the process exits: derived from the code.
    pub fn exit(&self) -> ExitKind {
        self.code.map_or(ExitKind::Clean, exit::Code::exit)
    }

    /// A report with more said: `human` appended to its text and `key` added to its JSON
    /// object. Other bodies are returned as they are.
    pub fn with_section(self, human: &str, key: &str, value: serde_json::Value) -> Output {
        let body = match self.body {
            Body::Report {
                human: mut text,
                mut json,
            } => {
                text.push_str(human);
                if let Some(object) = json.as_object_mut() {
                    object.insert(key.to_string(), value);
                }
                Body::Report { human: text, json }
            }
            other => other,
        };
        Output {
            code: self.code,
            body,
        }
    }

    pub fn lazy(
        code: Option<exit::Code>,
        render: impl FnOnce(Format) -> Result<String, CliError> + Send + 'static,
    ) -> Output {
        Output {
            code,
            body: Body::Lazy(Box::new(render)),
        }
    }

    /// The human text and JSON document of a report (for a command that extends another's).
    pub fn into_report(self) -> Option<(String, serde_json::Value)> {
        match self.body {
            Body::Report { human, json } => Some((human, json)),
            _ => None,
        }
    }

    /// The report in `format` (one `formats_for` allows for the command).
    pub fn render(self, format: Format) -> Result<String, CliError> {
        let code = self.code;
        match self.body {
            Body::Text(text) => Ok(text),
            Body::Report { mut json, .. } if format == Format::Json => {
                with_code(&mut json, code);
                Ok(render::pretty(&json))
            }
            Body::Report { human, .. } => Ok(human),
            Body::Lazy(render) => {
                let text = render(format)?;
                match code {
                    // A "no" in JSON carries its code, whoever rendered the document.
                    Some(_) if format == Format::Json => {
                        let mut json: serde_json::Value =
                            serde_json::from_str(&text).map_err(|e| {
                                CliError::new(
                                    exit::Code::Internal,
                                    format!("a report is not JSON: {e}"),
                                )
                            })?;
                        with_code(&mut json, code);
                        Ok(render::pretty(&json))
                    }
                    _ => Ok(text),
                }
            }
        }
    }
}

/// A JSON report of a "no" gets `code` and `exitCode` (as an error's document does).
fn with_code(json: &mut serde_json::Value, code: Option<exit::Code>) {
    if let (Some(code), Some(object)) = (code, json.as_object_mut()) {
        object.insert("code".into(), serde_json::json!(code.as_str()));
        object.insert("exitCode".into(), serde_json::json!(code.exit().code()));
    }
}

fn emit(text: &str) -> std::io::Result<()> {
    let text = crate::edge::secrets::redact(text);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Reports a failure: always on stderr for people, and on stdout as a document of the format
/// asked for, so a pipeline never mistakes a failure for an empty result.
fn report(error: CliError, format: Format) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(crate::edge::secrets::redact(&error.render()).as_bytes());
    drop(err);
    report_structured(&error, format)
}

/// The stdout half of [`report`].
fn report_structured(error: &CliError, format: Format) -> ExitCode {
    let document = match format {
        Format::Human => error.human_report.clone(),
        Format::Json => Some(render::pretty(&error.to_json())),
        Format::Markdown => Some(render::markdown_error(error)),
        Format::Sarif => Some(render::pretty(&sarif::failed_run(error))),
        // Its stdout is another tool's lockfile: nothing is written there on a failure.
        Format::McpLock1 => None,
    };
    if let Some(text) = document {
        let _ = emit(&text);
    }
    ExitCode::from(error.kind().code())
}

/// The --format of an argv clap refused: what the user asked for, so even that refusal is
/// one document of the right format on stdout (an unknown value counts as human).
fn format_in_argv(args: impl Iterator<Item = std::ffi::OsString>) -> Format {
    let mut format = Format::Human;
    let mut args = args.map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        let value = match arg.strip_prefix("--format") {
            Some("") => args.next(),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        };
        if let Some(found) = value.and_then(|v| Format::from_str(&v, false).ok()) {
            format = found;
        }
    }
    format
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_sizes_seconds_and_env() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("10").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(parse_seconds("1.5"), Ok(1.5));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert_eq!(
            parse_env_pair("A=b=c"),
            Ok(("A".into(), Some("b=c".into())))
        );
        assert!(parse_env_pair("=x").is_err());
        assert_eq!(parse_env_pair("NAME"), Ok(("NAME".into(), None)));
    }
}
