//! `completions` and `man`: shell completions and man pages from the clap model that parses
//! the command line, so they cannot drift from it.

use super::exit::{Code, fail};
use super::{CliError, CompletionsArgs, ManArgs, Output};
use crate::edge::fs::write_atomic;

pub fn completions(args: CompletionsArgs) -> Output {
    let mut command = super::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "mcplock", &mut script);
    Output::text(None, String::from_utf8_lossy(&script).into_owned())
}

pub fn man(args: ManArgs) -> Result<Output, CliError> {
    let pages = pages()?;
    let Some(dir) = args.out_dir else {
        let (_, root) = pages.into_iter().next().unwrap_or_default();
        return Ok(Output::text(None, root));
    };
    if !dir.is_dir() {
        return Err(fail(
            Code::InputMissing,
            format!(
                "--out-dir {}: no such directory (create it first)",
                dir.display()
            ),
        ));
    }
    let mut written = String::new();
    for (file, text) in &pages {
        let path = dir.join(file);
        write_atomic(&path, text.as_bytes())?;
        written.push_str(&format!("{}\n", path.display()));
    }
    Ok(Output::text(None, written))
}

/// Every page: `mcplock.1` first, then one per command and subcommand, by file name.
pub fn pages() -> Result<Vec<(String, String)>, CliError> {
    let mut root = super::command();
    root.build();
    let mut pages = vec![("mcplock.1".to_string(), render(root.clone())?)];
    collect(&root, "mcplock", &mut pages)?;
    Ok(pages)
}

fn collect(
    parent: &clap::Command,
    prefix: &str,
    pages: &mut Vec<(String, String)>,
) -> Result<(), CliError> {
    for sub in parent
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("{prefix}-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(name.replace('-', " "));
        pages.push((format!("{name}.1"), render(page)?));
        collect(sub, &name, pages)?;
    }
    Ok(())
}

fn render(command: clap::Command) -> Result<String, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .map_err(|e| fail(Code::Internal, format!("cannot render a man page: {e}")))?;
    String::from_utf8(out).map_err(|e| fail(Code::Internal, e.to_string()))
}
