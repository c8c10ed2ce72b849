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

/// heimdall(1), or the page of the subcommand `name` (`heimdall-NAME(1)`).
pub(crate) fn man_page(subcommand: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let root = command();
    let page = match subcommand {
        None => root,
        Some(name) => {
            let sub = root
                .find_subcommand(name)
                .with_context(|| format!("no subcommand {name:?}"))?
                .clone();
            sub.display_name(format!("heimdall-{name}"))
                .bin_name(format!("heimdall {name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let title = page
        .get_display_name()
        .unwrap_or_else(|| page.get_name())
        .to_owned();
    let mut out = Vec::new();
    clap_mangen::Man::new(page).title(title).render(&mut out)?;
    Ok(out)
}

/// The subcommands that get a page of their own.
pub(crate) fn man_subcommands() -> Vec<String> {
    command()
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| sub.get_name().to_owned())
        .collect()
}

/// The completion script for `shell`.
pub(crate) fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "heimdall", &mut out);
    out
}

/// Every man page, by file name.
pub(crate) fn all_man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = vec![("heimdall.1".to_owned(), man_page(None)?)];
    for name in man_subcommands() {
        pages.push((format!("heimdall-{name}.1"), man_page(Some(&name))?));
    }
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
            std::io::stdout().write_all(&man_page(None)?)?;
            Ok(())
        }
        Generate::Completions { shell } => {
            std::io::stdout().write_all(&completions(*shell))?;
            Ok(())
        }
    }
}
