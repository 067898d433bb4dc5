//! `mcplock wrap` and `mcplock unwrap`: a host's config rewritten so its servers run through
//! `mcplock proxy`, and back, with the backup and the record of each entry's original text.

use super::exit::{Code, fail};
use super::files::load_lockfile;
use super::hosts::selected;
use super::rewriting::{
    BACKUP, Change, after_written, read_record, rewrite_checked, rewrite_error, rewrite_file,
    side_file, write_private, write_record,
};
use super::{CliError, HostArgs, Output, UnwrapArgs, WrapArgs};
use crate::core::text::escape;
use crate::hosts::rewrite::{self, Originals, ProxySettings};
use crate::hosts::{ConfigFile, Host};
use std::fmt::Write as _;
use std::path::PathBuf;

/// How a wrapped entry names the files and the program it runs. A user's config is this
/// machine's: absolute paths (a host starts the proxy from anywhere). A project's config is a
/// team's (committed): `mcplock` from the host's PATH, and files inside the project relative to
/// it: `${workspaceFolder}/…` where the host expands that (VS Code, Cursor), else a relative
/// path (the host starts a project's servers in the project). A file outside the project keeps
/// its absolute path, with a warning.
#[derive(Default)]
struct Placement {
    project: Option<(PathBuf, bool)>,
    warnings: std::cell::RefCell<Vec<String>>,
}

impl Placement {
    fn for_file(file: &ConfigFile, project: &std::path::Path) -> Placement {
        let portable = (file.scope == crate::hosts::Scope::Project).then(|| {
            let variable = matches!(file.host, Host::VsCode | Host::Cursor);
            (project.to_path_buf(), variable)
        });
        Placement {
            project: portable,
            warnings: Default::default(),
        }
    }

    fn place(&self, p: &std::path::Path) -> Result<String, CliError> {
        let absolute = std::path::absolute(p)
            .map_err(|e| fail(Code::Usage, format!("{}: {e}", p.display())))?;
        let Some((project, variable)) = &self.project else {
            return Ok(absolute.display().to_string());
        };
        match absolute.strip_prefix(project) {
            Ok(inside) if *variable => Ok(format!("${{workspaceFolder}}/{}", inside.display())),
            Ok(inside) => Ok(inside.display().to_string()),
            Err(_) => {
                self.warnings.borrow_mut().push(format!(
                    "{} is outside the project: the project's config names it by its absolute path, which other machines may not have",
                    absolute.display()
                ));
                Ok(absolute.display().to_string())
            }
        }
    }

    /// The mcplock the entries run.
    fn program(&self) -> Result<String, CliError> {
        if self.project.is_some() {
            if crate::edge::artifact::find_program(std::path::Path::new("."), "mcplock").is_err() {
                self.warnings.borrow_mut().push(
                    "the project's entries run `mcplock` from the host's PATH, and it is not on this PATH: install it (cargo install --locked --path . --bin mcplock)".into(),
                );
            }
            return Ok("mcplock".into());
        }
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .map_err(|e| {
                fail(
                    Code::Usage,
                    format!("cannot find the mcplock executable: {e}"),
                )
            })
    }
}

/// The proxy flags `wrap` writes into every entry: only what differs from the proxy's
/// defaults, paths absolute (a host starts the proxy from anywhere).
fn proxy_options(args: &WrapArgs, place: &Placement) -> Result<Vec<String>, CliError> {
    let mut options = Vec::new();
    fn value(v: &impl clap::ValueEnum) -> String {
        v.to_possible_value()
            .map(|p| p.get_name().to_string())
            .unwrap_or_default()
    }
    if args.on_drift != super::OnDriftArg::Withhold {
        options.extend(["--on-drift".to_string(), value(&args.on_drift)]);
    }
    if args.on_response_finding != super::OnResponseArg::Warn {
        options.extend([
            "--on-response-finding".to_string(),
            value(&args.on_response_finding),
        ]);
    }
    for policy in &args.policies {
        if !policy.is_file() {
            return Err(fail(
                Code::InputMissing,
                format!("--policy {}: no such file", policy.display()),
            ));
        }
        options.extend(["--policy".to_string(), place.place(policy)?]);
    }
    for preset in &args.presets {
        options.extend(["--preset".to_string(), preset.clone()]);
    }
    Ok(options)
}

/// The config files of the selected hosts that exist (the files of Continue's folder one by
/// one), or the one --config names.
fn config_files(args: &HostArgs) -> Result<Vec<ConfigFile>, CliError> {
    let hosts = selected(args)?;
    if let Some(config) = &args.config {
        if !config.is_file() {
            return Err(fail(
                Code::HostConfigInvalid,
                format!("--config {}: no such file", config.display()),
            ));
        }
        return Ok(vec![ConfigFile::new(
            hosts[0],
            crate::hosts::Scope::User,
            config.clone(),
        )]);
    }
    let (home, project) = super::hosts::home_and_project()?;
    let mut files = Vec::new();
    for host in hosts {
        for file in host.locations(&home, &project) {
            if file.path.is_dir() {
                let mut inside: Vec<PathBuf> = std::fs::read_dir(&file.path)
                    .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                    .unwrap_or_default();
                inside.retain(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"));
                inside.sort();
                files.extend(
                    inside
                        .into_iter()
                        .map(|p| ConfigFile::new(host, file.scope, p)),
                );
            } else if file.path.is_file() {
                files.push(file);
            }
        }
    }
    Ok(files)
}

/// How every wrapped entry of a file starts the proxy: this mcplock, the signature check, the
/// lockfile and the proxy's options, placed as `place` says.
fn proxy_settings(args: &WrapArgs, place: &Placement) -> Result<ProxySettings, CliError> {
    let mut trust: Vec<String> = Vec::new();
    if let Some(key) = &args.check.key {
        trust.extend(["--key".to_string(), place.place(key)?]);
        if let Some(signature) = &args.check.signature {
            trust.extend(["--signature".to_string(), place.place(signature)?]);
        }
    } else if let Some(bundle) = &args.check.bundle {
        trust.extend(["--bundle".to_string(), place.place(bundle)?]);
        if let Some(identity) = &args.check.identity {
            trust.extend(["--identity".to_string(), identity.clone()]);
        }
        if let Some(re) = &args.check.identity_regexp {
            trust.extend(["--identity-regexp".to_string(), re.clone()]);
        }
        if let Some(issuer) = &args.check.issuer {
            trust.extend(["--issuer".to_string(), issuer.clone()]);
        }
    } else if args.allow_unsigned {
        trust.push("--allow-unsigned".into());
    } else {
        return Err(fail(
            Code::Usage,
            "say how the proxy checks the lockfile: --key PUBLIC, --bundle with --identity and --issuer, or --allow-unsigned",
        ));
    }
    let mcplock = place.program()?;
    Ok(ProxySettings {
        mcplock,
        trust,
        lockfile: place.place(&args.lockfile)?,
        options: proxy_options(args, place)?,
        audit_dir: match &args.audit {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    fail(Code::WriteFailed, format!("--audit {}: {e}", dir.display()))
                })?;
                let placed = place.place(dir)?;
                if place.project.is_some() && !placed.starts_with('/') {
                    place.warnings.borrow_mut().push(format!(
                        "the audit logs are written inside the project ({}): keep that directory out of git",
                        dir.display()
                    ));
                }
                Some(placed)
            }
            None => None,
        },
    })
}

pub fn wrap(args: WrapArgs) -> Result<Output, CliError> {
    // A flag that does not fit is refused before any file is read.
    proxy_settings(&args, &Placement::default())?;
    let (_, project) = super::hosts::home_and_project()?;
    let lockfile = load_lockfile(&args.lockfile)?;
    let files = config_files(&args.hosts)?;
    if files.is_empty() {
        return Err(fail(
            Code::HostConfigInvalid,
            "no config file of that host here (docs/hosts.md lists where each host keeps it; --config names one)",
        ));
    }
    let mut stdout = String::new();
    let mut warnings = Vec::new();
    let mut written = Vec::new();
    for file in &files {
        let place = Placement::for_file(file, &project);
        let settings = proxy_settings(&args, &place)?;
        for warning in place.warnings.into_inner() {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        let wrapped_now: std::cell::RefCell<Option<Originals>> = std::cell::RefCell::new(None);
        let out = rewrite_file(
            file,
            args.dry_run,
            |text| {
                let result = match file.host {
                    Host::Codex => rewrite::wrap_toml(text, &settings),
                    Host::Continue => rewrite::wrap_yaml(text, &settings),
                    host => rewrite::wrap_json(host, text, &settings),
                }
                .map_err(|e| rewrite_error(file, e))?;
                let mut summary = format!("{} server(s) wrapped", result.originals.len());
                for (name, why) in &result.skipped {
                    let _ = write!(summary, "; {} left as it is: {}", escape(name), escape(why));
                }
                *wrapped_now.borrow_mut() = Some(result.originals);
                Ok(Change {
                    text: result.text,
                    edits: result.edits,
                    summary,
                })
            },
            |before| {
                let originals = wrapped_now.borrow().clone().unwrap_or_default();
                save_undo(file, before, originals)
            },
        )
        .map_err(|e| after_written(e, &written, "wrapped", "unwrap"))?;
        stdout.push_str(&out);
        let Some(originals) = wrapped_now.into_inner() else {
            continue;
        };
        if !args.dry_run && !originals.is_empty() {
            written.push(file.path.display().to_string());
        }
        let unlocked: Vec<String> = originals
            .keys()
            .filter_map(|path| path.last())
            .filter(|name| {
                lockfile
                    .as_ref()
                    .is_none_or(|l| !l.servers.contains_key(name.as_str()))
            })
            .map(|name| escape(name))
            .collect();
        if let Some(line) = not_locked(&unlocked, &args.lockfile, file.host) {
            warnings.push(line);
        }
    }
    for warning in warnings {
        eprintln!("mcplock: warning: {warning}");
    }
    Ok(Output::text(None, stdout))
}

/// One warning for the wrapped servers of a file the lockfile does not hold (a few named, the
/// rest counted: a config of thousands of entries gets one line, not thousands).
fn not_locked(names: &[String], lockfile: &std::path::Path, host: Host) -> Option<String> {
    const NAMED: usize = 5;
    let (first, rest) = names.split_at(names.len().min(NAMED));
    let listed = match (first, rest.len()) {
        ([], _) => return None,
        ([one], 0) => format!("{one} is"),
        (_, 0) => format!("{} are", first.join(", ")),
        (_, more) => format!("{} and {more} more are", first.join(", ")),
    };
    Some(format!(
        "{listed} not locked in {}: the host cannot start them through the proxy until you lock them (mcplock lock --host {})",
        lockfile.display(),
        host.id()
    ))
}

/// Unwrapping restores each entry's text from before the wrap; an entry edited since (a
/// rotated token in its env, an argument added) would lose the edit. Refused, naming what
/// was edited (names, never values), unless `force`; the restored text must still parse.
fn edits_kept(file: &ConfigFile, before: &str, after: &str, force: bool) -> Result<(), CliError> {
    let edited = rewrite::differing(file.host, file.scope, before, after).map_err(|e| {
        fail(
            Code::HostConfigInvalid,
            format!(
                "refusing to write {}: the unwrapped text would not read as the host reads it ({e}); nothing was written",
                file.path.display()
            ),
        )
    })?;
    if edited.is_empty() || force {
        return Ok(());
    }
    let named: Vec<String> = edited
        .iter()
        .map(|(server, what)| format!("{} ({})", escape(server), escape(&what.join(", "))))
        .collect();
    Err(fail(
        Code::ConfigChangedUnderUs,
        format!(
            "{}: edited since it was wrapped: {}; unwrapping would undo that. Make the same edit to the entry's original later, or rerun with --force to restore the original as it was",
            file.path.display(),
            named.join("; ")
        ),
    ))
}

/// What undoes a wrap, saved before the config changes: the file as it was before mcplock
/// first wrapped it (never overwritten), and each entry's original text in the record.
fn save_undo(file: &ConfigFile, before: &str, originals: Originals) -> Result<(), CliError> {
    if originals.is_empty() {
        return Ok(());
    }
    let backup = side_file(file, BACKUP)?;
    if !backup.exists() && read_record(file)?.is_empty() {
        write_private(&backup, before.as_bytes())?;
    }
    let mut record = read_record(file)?;
    record.extend(originals);
    write_record(file, &record)
}

fn unwrap_text(
    file: &ConfigFile,
    text: &str,
    originals: &Originals,
) -> Result<rewrite::Restored, crate::hosts::formats::FormatError> {
    match file.host {
        Host::Codex => rewrite::unwrap_toml(text, originals),
        Host::Continue => rewrite::unwrap_yaml(text, originals),
        host => rewrite::unwrap_json(host, text, originals),
    }
}

pub fn unwrap(args: UnwrapArgs) -> Result<Output, CliError> {
    let files = config_files(&args.hosts)?;
    let mut stdout = String::new();
    let mut any = false;
    let mut written = Vec::new();
    for file in &files {
        let record = read_record(file)?;
        if record.is_empty() {
            continue;
        }
        any = true;
        let mut count = 0;
        let force = args.force;
        let out = rewrite_checked(
            file,
            args.dry_run,
            |text| {
                let restored =
                    unwrap_text(file, text, &record).map_err(|e| rewrite_error(file, e))?;
                count = restored.count;
                Ok(Change {
                    summary: format!("{count} server(s) unwrapped"),
                    text: restored.text,
                    edits: restored.edits,
                })
            },
            |_| Ok(()),
            |file, before, after| edits_kept(file, before, after, force),
        )
        .map_err(|e| after_written(e, &written, "unwrapped", "wrap"))?;
        stdout.push_str(&out);
        if !args.dry_run && count > 0 {
            written.push(file.path.display().to_string());
            // Every wrapped entry is restored: the record has served its purpose.
            write_record(file, &Originals::new())?;
        }
    }
    if !any {
        // Nothing wrapped is not a failure: the configs are as unwrap would leave them.
        stdout.push_str("nothing to unwrap: no config of that host has a wrap record (FILE.mcplock-wrap.json beside a user's config; for a project's, in ~/.local/state/mcplock/wrap)\n");
    }
    Ok(Output::text(None, stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 27: unwrapping an entry edited since it was wrapped (a rotated token) would undo
    /// the edit: refused, naming the edit without its value, unless --force.
    #[test]
    fn issue_27_unwrap_keeps_an_edit_made_to_a_wrapped_entry_unless_forced() {
        let file = ConfigFile::new(
            Host::ClaudeDesktop,
            crate::hosts::Scope::User,
            std::path::PathBuf::from("c.json"),
        );
        let original = "{\"mcpServers\": {\"s\": {\"command\": \"srv\", \"env\": {\"API_TOKEN\": \"old-token-1\"}}}}\n";
        let settings = ProxySettings {
            mcplock: "/usr/bin/mcplock".into(),
            trust: vec!["--allow-unsigned".into()],
            lockfile: "/l.json".into(),
            options: Vec::new(),
            audit_dir: None,
        };
        let wrapped = rewrite::wrap_json(Host::ClaudeDesktop, original, &settings).unwrap();
        let edited = wrapped.text.replace("old-token-1", "new-token-2");
        assert_ne!(edited, wrapped.text);
        let restored = rewrite::unwrap_json(Host::ClaudeDesktop, &edited, &wrapped.originals)
            .unwrap()
            .text;
        let refused = edits_kept(&file, &edited, &restored, false).unwrap_err();
        assert!(
            refused.headline.contains("env API_TOKEN"),
            "{}",
            refused.headline
        );
        assert!(
            !refused.headline.contains("new-token-2") && !refused.headline.contains("old-token-1"),
            "{}",
            refused.headline
        );
        edits_kept(&file, &edited, &restored, true).unwrap();
        // Not edited: unwrapped without a word.
        let clean = rewrite::unwrap_json(Host::ClaudeDesktop, &wrapped.text, &wrapped.originals)
            .unwrap()
            .text;
        edits_kept(&file, &wrapped.text, &clean, false).unwrap();
    }

    /// Issue 27: a project's config gets portable entries (mcplock from PATH, files relative
    /// to the project); a user's keeps absolute paths; a file outside the project is named.
    #[test]
    fn issue_27_a_project_config_names_files_relative_to_the_project() {
        let project = std::path::Path::new("/work/team");
        let at = |host, scope, name: &str| ConfigFile::new(host, scope, project.join(name));
        let vscode = Placement::for_file(
            &at(
                Host::VsCode,
                crate::hosts::Scope::Project,
                ".vscode/mcp.json",
            ),
            project,
        );
        assert_eq!(
            vscode.place(&project.join("locks/mcp-lock.json")).unwrap(),
            "${workspaceFolder}/locks/mcp-lock.json"
        );
        assert_eq!(vscode.program().unwrap(), "mcplock");
        let claude = Placement::for_file(
            &at(Host::ClaudeCode, crate::hosts::Scope::Project, ".mcp.json"),
            project,
        );
        assert_eq!(
            claude.place(&project.join("mcp-lock.json")).unwrap(),
            "mcp-lock.json"
        );
        assert!(claude.warnings.borrow().is_empty());
        assert_eq!(
            claude
                .place(std::path::Path::new("/etc/mcp/team.pub"))
                .unwrap(),
            "/etc/mcp/team.pub"
        );
        assert!(claude.warnings.borrow()[0].contains("outside the project"));
        let user = Placement::for_file(
            &at(Host::ClaudeDesktop, crate::hosts::Scope::User, "c.json"),
            project,
        );
        assert_eq!(
            user.place(&project.join("mcp-lock.json")).unwrap(),
            "/work/team/mcp-lock.json"
        );
        assert!(user.program().unwrap().starts_with('/'));
    }
}
