//! Owning a server process: spawning it (argv executed directly, never through a shell, in a
//! process group of its own), draining its stderr into a bounded tail, stopping it (input
//! closed, TERM, KILL to the whole group, helpers that escaped the group included) and ending
//! every live server when mcplock is interrupted. One owner for every command that starts a
//! server (scan, lock, diff, policy) and for the proxy, which talks over the raw pipes.

use crate::core::text::escape;
use crate::transport::conn::Input;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCommand {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment variables, on top of mcplock's own environment.
    pub env: Vec<(String, String)>,
    /// The directory to run it in (mcplock's own when `None`).
    pub cwd: Option<std::path::PathBuf>,
}

impl ServerCommand {
    /// The command line as a person would type it, with arguments quoted where needed.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        escape(arg)
    } else {
        format!("'{}'", escape(&arg.replace('\'', "'\\''")))
    }
}

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {program:?}: no such program (is it installed and on PATH?)")]
    NotFound { program: String },
    #[error("cannot start {program:?}: permission denied (is it executable?)")]
    PermissionDenied { program: String },
    #[error("cannot start {program:?}: {source}")]
    Other {
        program: String,
        source: std::io::Error,
    },
}

/// The last bytes a server wrote to stderr.
struct StderrTail {
    bytes: VecDeque<u8>,
    cap: usize,
    total: u64,
}

impl StderrTail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let chunk = &chunk[chunk.len().saturating_sub(self.cap)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.cap);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }
}

/// A view of the server's stderr for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StderrReport {
    /// The last lines, escaped so they cannot drive the terminal.
    pub lines: Vec<String>,
    /// Everything the server wrote to stderr, in bytes.
    pub total_bytes: u64,
}

/// Default bytes of stderr kept for error messages.
pub const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// The pipes to a started server.
pub struct Pipes {
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
}

/// A running server process.
pub struct ServerProcess {
    child: Child,
    pgid: Option<Pid>,
    stderr: Arc<Mutex<StderrTail>>,
    stderr_task: JoinHandle<()>,
    /// Its entry in [`LIVE`]; `None` once stopped.
    live: Option<u64>,
}

/// A server started and not yet shut down: what a signal handler needs to end it.
struct Live {
    id: u64,
    pgid: Pid,
    /// Closes the server's input, once its owner has said how ([`ServerProcess::watch_input`]).
    input: Option<Input>,
}

/// Every server process group alive, so that SIGINT, SIGTERM or SIGHUP can end them all
/// ([`stop_all`]) before mcplock exits.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());
static NEXT_LIVE: AtomicU64 = AtomicU64::new(1);
/// Whether this process ever started a server (so there may be escaped descendants to end).
static STARTED_ANY: AtomicBool = AtomicBool::new(false);

fn live() -> std::sync::MutexGuard<'static, Vec<Live>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes this process the reaper of its orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`):
/// a server's helper that leaves the server's process group (`setsid`, `setpgid`) and outlives
/// the server is reparented to mcplock instead of init, so [`end_escaped`] can end it. Best
/// effort: false where the kernel refuses.
pub fn become_subreaper() -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_child_subreaper(true).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// One process as /proc shows it.
struct ProcEntry {
    pid: Pid,
    ppid: i32,
    pgrp: i32,
    zombie: bool,
}

/// Every process visible in /proc (empty where there is no /proc).
fn processes() -> Vec<ProcEntry> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?;
        let ppid = fields.next()?.parse().ok()?;
        let pgrp = fields.next()?.parse().ok()?;
        Some(ProcEntry {
            pid: Pid::from_raw(pid),
            ppid,
            pgrp,
            zombie: state == "Z" || state == "X",
        })
    })
    .collect()
}

/// Live (non-zombie) members of process group `pgid`.
fn group_members(pgid: Pid) -> Vec<Pid> {
    processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid.as_raw() && !p.zombie)
        .map(|p| p.pid)
        .collect()
}

/// Waits up to `limit` until `alive()` is empty; true if it became empty.
async fn wait_until_empty(limit: Duration, alive: impl Fn() -> Vec<Pid>) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if alive().is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends every server still running: closes their input and waits `grace`, then TERM to each
/// process group and waits `grace`, then KILL; then ends escaped descendants. For the signal
/// path: the command's own futures are suspended, so this does what their shutdown would.
pub async fn stop_all(grace: Duration) {
    // The helpers mcplock itself runs (asked what a launch runs) end at once.
    crate::edge::children::kill_all();
    let servers: Vec<Live> = std::mem::take(&mut *live());
    for server in &servers {
        if let Some(input) = &server.input {
            input.close().await;
        }
    }
    let groups: Vec<Pid> = servers.iter().map(|s| s.pgid).collect();
    let alive = || -> Vec<Pid> { groups.iter().flat_map(|g| group_members(*g)).collect() };
    if !wait_until_empty(grace, alive).await {
        for group in &groups {
            let _ = killpg(*group, Signal::SIGTERM);
        }
        if !wait_until_empty(grace, alive).await {
            for group in &groups {
                let _ = killpg(*group, Signal::SIGKILL);
            }
            // A helper that left the group is reparented to us only once its parent is gone:
            // wait for that before looking for escaped descendants.
            wait_until_empty(grace, alive).await;
        }
    }
    end_escaped(grace).await;
}

/// Ends and reaps the descendants that escaped their server's process group and were
/// reparented to mcplock (see [`become_subreaper`]): TERM, `grace`, KILL. Called when no
/// server is running, so every child left is such an orphan (or a zombie to reap).
pub async fn end_escaped(grace: Duration) {
    if !STARTED_ANY.load(Ordering::Relaxed) || !live().is_empty() {
        return;
    }
    let me = std::process::id() as i32;
    let orphans: Vec<Pid> = processes()
        .into_iter()
        .filter(|p| p.ppid == me)
        .map(|p| p.pid)
        .collect();
    if orphans.is_empty() {
        return;
    }
    let alive = || -> Vec<Pid> {
        processes()
            .into_iter()
            .filter(|p| p.ppid == me && !p.zombie && orphans.contains(&p.pid))
            .map(|p| p.pid)
            .collect()
    };
    for pid in alive() {
        let _ = kill(pid, Signal::SIGTERM);
    }
    if !wait_until_empty(grace, alive).await {
        for pid in alive() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        wait_until_empty(grace, alive).await;
    }
    for pid in orphans {
        // Reap, so nothing is left a zombie; never blocks (WNOHANG) on one that lingers.
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
    }
}

impl ServerProcess {
    /// Spawns the server. Must be called inside a tokio runtime.
    pub fn spawn(cmd: &ServerCommand) -> Result<(ServerProcess, Pipes), SpawnError> {
        Self::spawn_with(cmd, false)
    }

    /// Spawns the server with its stderr also copied, as it comes, to mcplock's own stderr
    /// (the proxy: a host shows its servers' stderr to the user).
    pub fn spawn_teeing_stderr(cmd: &ServerCommand) -> Result<(ServerProcess, Pipes), SpawnError> {
        Self::spawn_with(cmd, true)
    }

    fn spawn_with(cmd: &ServerCommand, tee: bool) -> Result<(ServerProcess, Pipes), SpawnError> {
        let mut command = Command::new(&cmd.program);
        if let Some(cwd) = &cmd.cwd {
            command.current_dir(cwd);
        }
        command
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| {
            let program = cmd.program.clone();
            match source.kind() {
                std::io::ErrorKind::NotFound => SpawnError::NotFound { program },
                std::io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied { program },
                _ => SpawnError::Other { program, source },
            }
        })?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SpawnError::Other {
                program: cmd.program.clone(),
                source: std::io::Error::other("the child's pipes were not created"),
            });
        };
        let tail = Arc::new(Mutex::new(StderrTail {
            bytes: VecDeque::new(),
            cap: STDERR_TAIL_BYTES,
            total: 0,
        }));
        let sink = Arc::clone(&tail);
        let stderr_task = tokio::spawn(async move {
            let mut chunk = vec![0u8; 16 * 1024];
            let mut own = tee.then(tokio::io::stderr);
            while let Ok(n) = stderr.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(&chunk[..n]);
                // Our own stderr gone (the host closed it) must not stop the drain.
                if let Some(out) = own.as_mut()
                    && (out.write_all(&chunk[..n]).await.is_err() || out.flush().await.is_err())
                {
                    own = None;
                }
            }
        });
        STARTED_ANY.store(true, Ordering::Relaxed);
        let live_id = pgid.map(|pgid| {
            let id = NEXT_LIVE.fetch_add(1, Ordering::Relaxed);
            live().push(Live {
                id,
                pgid,
                input: None,
            });
            id
        });
        let process = ServerProcess {
            child,
            pgid,
            stderr: tail,
            stderr_task,
            live: live_id,
        };
        Ok((process, Pipes { stdin, stdout }))
    }

    /// Tells the signal path how to close this server's input (stdin is owned by whoever talks
    /// to the server).
    /// The server's process id, while it has not been reaped.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn watch_input(&self, input: Input) {
        if let Some(id) = self.live
            && let Some(entry) = live().iter_mut().find(|l| l.id == id)
        {
            entry.input = Some(input);
        }
    }

    /// The last `max_lines` lines the server wrote to stderr.
    pub fn stderr_report(&self, max_lines: usize) -> StderrReport {
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let (front, back) = tail.bytes.as_slices();
        let text = String::from_utf8_lossy(&[front, back].concat()).into_owned();
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let lines = all[all.len().saturating_sub(max_lines)..]
            .iter()
            .map(|l| escape(l))
            .collect();
        StderrReport {
            lines,
            total_bytes: tail.total,
        }
    }

    /// Waits until the server's own process has exited (cancel-safe; the status stays known to
    /// [`ServerProcess::stop`]). Helpers it started may live on.
    pub async fn wait(&mut self) -> Option<ExitStatus> {
        self.child.wait().await.ok()
    }

    /// Stops the server once its input is closed: waits up to `grace`, then TERM to the process
    /// group and waits up to `grace`, then KILL. Whatever else is left in the group afterwards
    /// (helpers the server started) gets the same treatment. Returns the exit status and the
    /// signal it took, if any.
    pub async fn stop(&mut self, grace: Duration) -> (Option<ExitStatus>, Option<&'static str>) {
        let mut escalated_to = None;
        let mut status = wait_for(&mut self.child, grace).await;
        if status.is_none() {
            escalated_to = Some("TERM");
            self.signal_group(Signal::SIGTERM);
            status = wait_for(&mut self.child, grace).await;
        }
        if status.is_none() {
            escalated_to = Some("KILL");
            self.signal_group(Signal::SIGKILL);
            status = self.child.wait().await.ok();
        }
        self.reap_group(grace).await;
        (status, escalated_to)
    }

    /// Waits up to `grace` for the stderr drain to end (a leftover grandchild may hold stderr
    /// open), stops it, and forgets the server: it is stopped.
    pub async fn finish(&mut self, grace: Duration) {
        let _ = tokio::time::timeout(grace, &mut self.stderr_task).await;
        self.stderr_task.abort();
        if let Some(id) = self.live.take() {
            live().retain(|l| l.id != id);
        }
    }

    fn signal_group(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH means the group is already empty: nothing to stop.
            let _ = killpg(pgid, signal);
        }
    }

    fn group_alive(&self) -> bool {
        self.pgid.is_some_and(|pgid| killpg(pgid, None).is_ok())
    }

    async fn reap_group(&self, grace: Duration) {
        if !self.group_alive() {
            return;
        }
        self.signal_group(Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while self.group_alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.group_alive() {
            self.signal_group(Signal::SIGKILL);
        }
    }
}

impl Drop for ServerProcess {
    /// A server dropped without being stopped (its command was abandoned) is killed with its
    /// whole group at once: there is no one left to wait for a graceful stop.
    fn drop(&mut self) {
        if let Some(id) = self.live.take() {
            self.signal_group(Signal::SIGKILL);
            live().retain(|l| l.id != id);
        }
    }
}

async fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => None,
    }
}

impl crate::core::code::Coded for SpawnError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::ServerFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_last_bytes() {
        let mut tail = StderrTail {
            bytes: VecDeque::new(),
            cap: 8,
            total: 0,
        };
        tail.push(b"0123456789");
        tail.push(b"ab");
        assert_eq!(tail.bytes.iter().copied().collect::<Vec<_>>(), b"456789ab");
        assert_eq!(tail.total, 12);
    }

    #[test]
    fn displays_commands_quoted() {
        let cmd = ServerCommand {
            program: "npx".into(),
            args: vec!["-y".into(), "a b".into(), "it's".into()],
            env: vec![],
            cwd: None,
        };
        assert_eq!(cmd.display(), "npx -y 'a b' 'it'\\''s'");
    }
}
