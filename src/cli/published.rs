//! A lockfile or revocation list published at a URL (`--lockfile https://…`,
//! `--revocations https://…`), so every replica converges on the same one. It is kept as a local
//! mirror, which the file-based machinery reads as before (the gateway's reload watch, the
//! revocation watch): the URL and its signature (`URL.sig`) are polled with their ETags, and what
//! comes is verified as it will be used (and a revocation list must not be older than the one
//! mirrored) before it replaces the mirror, signature first. A fetch or a verification that fails
//! keeps the mirror as it was, says so once on stderr and tells the health observer (the
//! gateway's metrics); the first one must succeed, unless a mirror from an earlier run is there.

use super::CliError;
use super::exit::{Code, fail};
use crate::transport::fetch::{Fetched, Published};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often a published source is polled.
pub const POLL: Duration = Duration::from_secs(5);

/// Checks a staged copy (its signature beside it, as `default_signature_path` names it).
pub type Verify = dyn Fn(&Path) -> Result<(), String> + Send + Sync;
/// Hears, after each poll, whether the mirror is what is published (`true`) or not.
pub type Health = dyn Fn(&str, bool) + Send + Sync;

/// Whether `text` (a path as given on the command line) names a URL.
pub fn is_url(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|p| p.starts_with("https://") || p.starts_with("http://"))
}

pub struct Mirror {
    /// `lockfile` or `revocations`.
    name: &'static str,
    file: Published,
    signature: Published,
    /// The mirror, and its signature beside it.
    path: PathBuf,
    /// The latest bytes fetched of each (verified or not): a new signature is checked with the
    /// file fetched last, and the other way round.
    fetched: (Option<Vec<u8>>, Option<Vec<u8>>),
    verify: Box<Verify>,
    health: Option<Arc<Health>>,
    healthy: bool,
}

impl Mirror {
    /// A mirror of `url` at `path` (made private to this process), at most `cap` bytes.
    pub fn new(
        name: &'static str,
        url: &str,
        path: PathBuf,
        cap: usize,
        verify: Box<Verify>,
    ) -> Result<Mirror, CliError> {
        let bad = |e: String| fail(Code::Usage, format!("--{name} {url}: {e}"));
        let file = Published::new(url, cap).map_err(bad)?;
        let signature = Published::new(&format!("{url}.sig"), 64 << 10).map_err(bad)?;
        Ok(Mirror {
            name,
            file,
            signature,
            path,
            fetched: (None, None),
            verify,
            health: None,
            healthy: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn observe(&mut self, health: Arc<Health>) {
        self.health = Some(health);
    }

    /// The first fetch: it must bring a verified copy, unless a mirror from an earlier run is
    /// there (then it is said, and the mirror is used as its reader verifies it).
    pub async fn first(&mut self) -> Result<(), CliError> {
        match self.refresh().await {
            Ok(_) => Ok(()),
            Err(why) if self.path.exists() => {
                let text = format!(
                    "{} is not fetched ({why}); the copy mirrored earlier at {} is used until it is",
                    self.file.url(),
                    self.path.display()
                );
                crate::edge::log::warn("published", &text, &[]);
                self.healthy = false;
                Ok(())
            }
            Err(why) => Err(fail(
                Code::InputUnreadable,
                format!("--{} {}: {why}", self.name, self.file.url()),
            )),
        }
    }

    /// Polls every `every` until the process ends.
    pub async fn run(mut self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            let result = self.refresh().await;
            self.heard(result.as_ref().err());
        }
    }

    /// One poll: both fetched; when either changed, the pair staged, verified and installed.
    /// `Ok(true)`: the mirror changed.
    pub async fn refresh(&mut self) -> Result<bool, String> {
        let file = self.file.fetch().await?;
        let signature = self.signature.fetch().await?;
        let changed = !matches!(
            (&file, &signature),
            (Fetched::Unchanged, Fetched::Unchanged)
        );
        match file {
            Fetched::Body(bytes) => self.fetched.0 = Some(bytes),
            Fetched::Missing => return Err("not published there (404)".into()),
            Fetched::Unchanged => {}
        }
        match signature {
            Fetched::Body(bytes) => self.fetched.1 = Some(bytes),
            Fetched::Missing => self.fetched.1 = None,
            Fetched::Unchanged => {}
        }
        if !changed && self.path.exists() {
            return Ok(false);
        }
        self.install()?;
        Ok(true)
    }

    /// Stages what was fetched beside the mirror, verifies it, then puts it in place.
    fn install(&mut self) -> Result<(), String> {
        let Some(bytes) = &self.fetched.0 else {
            return Err("nothing fetched yet".into());
        };
        let staged = staging_path(&self.path);
        let staged_signature = super::files::default_signature_path(&staged);
        let io = |e: crate::edge::fs::FsError| e.to_string();
        crate::edge::fs::write_atomic_private(&staged, bytes).map_err(io)?;
        match &self.fetched.1 {
            Some(signature) => {
                crate::edge::fs::write_atomic_private(&staged_signature, signature).map_err(io)?
            }
            None => remove(&staged_signature)?,
        }
        let verified = (self.verify)(&staged);
        if let Err(why) = verified {
            // What does not hold is never read again: the next change is fetched in full.
            self.file.forget();
            self.signature.forget();
            return Err(why);
        }
        let signature = super::files::default_signature_path(&self.path);
        match &self.fetched.1 {
            Some(bytes) => crate::edge::fs::write_atomic_private(&signature, bytes).map_err(io)?,
            None => remove(&signature)?,
        }
        crate::edge::fs::write_atomic_private(&self.path, bytes).map_err(io)
    }

    /// Says once per change whether the mirror is what is published.
    fn heard(&mut self, failed: Option<&String>) {
        if let Some(health) = &self.health {
            health(self.name, failed.is_none());
        }
        let healthy = failed.is_none();
        if healthy == self.healthy {
            return;
        }
        self.healthy = healthy;
        let url = self.file.url().to_string();
        match failed {
            None => {
                let text = format!("{url} is fetched and verified again");
                crate::edge::log::info("published", &text, &[]);
            }
            Some(why) => {
                let remedy = match self.name {
                    "revocations" => {
                        "publish a newer list signed with the key given (`mcplock revoke --list FILE --key PRIVATE`, then upload FILE and FILE.sig)"
                    }
                    _ => {
                        "publish the lockfile with its signature (`mcplock sign --key PRIVATE`, then upload the lockfile and its .sig)"
                    }
                };
                let text = format!(
                    "{url} is not taken: {why}; the last one verified ({}) stays in force; {remedy}",
                    self.path.display()
                );
                crate::edge::log::warn("published", &text, &[]);
            }
        }
    }
}

/// Where a fetched copy waits for its verification: beside the mirror.
fn staging_path(mirror: &Path) -> PathBuf {
    let mut name = mirror.file_name().unwrap_or_default().to_owned();
    name.push(".fetched");
    mirror.with_file_name(name)
}

fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The directory of this process's own mirrors, when no `--state-dir` is given.
fn own_dir() -> PathBuf {
    std::env::temp_dir().join(format!("mcplock-published-{}", std::process::id()))
}

/// Removes this process's own mirrors (at its end; those under `--state-dir` stay for the next
/// run).
pub fn clean_up() {
    let _ = std::fs::remove_dir_all(own_dir());
}

/// The directory mirrors are kept in: `--state-dir`, else a directory of this process's own.
pub fn mirror_dir(state_dir: Option<&Path>) -> Result<PathBuf, CliError> {
    let dir = match state_dir {
        Some(dir) => dir.join("published"),
        None => own_dir(),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(Code::InputUnreadable, format!("{}: {e}", dir.display())))?;
    Ok(dir)
}
