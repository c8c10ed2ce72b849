//! `heimdall generate`: the man pages and shell completions, made from
//! the clap definitions themselves (clap_mangen, clap_complete), so they
//! cannot drift from the options. The copies the package installs live in
//! deploy/man and deploy/completions; a test keeps them current
//! (`HEIMDALL_BLESS=1` rewrites them).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{CommandFactory as _, Subcommand};
use clap_complete::Shell;

/// What to generate.
#[derive(Debug, Subcommand)]
pub(crate) enum Generate {
    /// Man pages: heimdall(1) on stdout, or with --out-dir heimdall.1 and
    /// one page per subcommand (heimdall-ctl.1, ...).
    Man {
        /// Write every page into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// The completion script for SHELL, on stdout.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
    },
}

/// The command tree the pages and scripts are made from.
fn command() -> clap::Command {
    crate::Cli::command()
}

/// One man page: `cmd` under the title `title` (`heimdall-ctl-status`),
/// its usage naming the full command (`heimdall ctl status`).
fn render_page(cmd: clap::Command, path: &[&str]) -> anyhow::Result<Vec<u8>> {
    let page = if path.is_empty() {
        cmd
    } else {
        cmd.display_name(format!("heimdall-{}", path.join("-")))
            .bin_name(format!("heimdall {}", path.join(" ")))
            .version(env!("CARGO_PKG_VERSION"))
    };
    let title = page
        .get_display_name()
        .unwrap_or_else(|| page.get_name())
        .to_owned();
    let mut out = Vec::new();
    clap_mangen::Man::new(page).title(title).render(&mut out)?;
    Ok(out)
}

/// heimdall(1).
pub(crate) fn man_page() -> anyhow::Result<Vec<u8>> {
    render_page(command(), &[])
}

/// `cmd`'s subcommands' pages, and theirs, depth first, each named
/// `heimdall-A-B.1` for `heimdall A B`: every page another one refers to
/// exists.
fn sub_pages(
    cmd: &clap::Command,
    path: &mut Vec<String>,
    out: &mut Vec<(String, Vec<u8>)>,
) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        path.push(sub.get_name().to_owned());
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        out.push((
            format!("heimdall-{}.1", names.join("-")),
            render_page(sub.clone(), &names)?,
        ));
        sub_pages(sub, path, out)?;
        path.pop();
    }
    Ok(())
}

/// The completion script for `shell`.
pub(crate) fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "heimdall", &mut out);
    out
}

/// Every man page, by file name.
pub(crate) fn all_man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = vec![("heimdall.1".to_owned(), man_page()?)];
    sub_pages(&command(), &mut Vec::new(), &mut pages)?;
    Ok(pages)
}

fn write_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, page) in all_man_pages()? {
        let path = dir.join(&name);
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Run `heimdall generate ...`.
pub(crate) fn run(what: &Generate) -> anyhow::Result<()> {
    match what {
        Generate::Man { out_dir: Some(dir) } => write_pages(dir),
        Generate::Man { out_dir: None } => {
            std::io::stdout().write_all(&man_page()?)?;
            Ok(())
        }
        Generate::Completions { shell } => {
            std::io::stdout().write_all(&completions(*shell))?;
            Ok(())
        }
    }
}
