//! `modelvet completions` and `modelvet man`: shell completions and a man page, generated
//! from the clap definitions so they never drift from the real options.

use clap::{Args, CommandFactory};

use crate::cli::{write_stdout, Cli};

/// Print a shell completion script to stdout.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet completions bash > ~/.local/share/bash-completion/completions/modelvet
  modelvet completions zsh > ~/.zfunc/_modelvet
  modelvet completions fish > ~/.config/fish/completions/modelvet.fish")]
pub struct CompletionsArgs {
    shell: clap_complete::Shell,
}

/// Print the man page (roff) to stdout.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet man > modelvet.1 && man ./modelvet.1
  modelvet man | gzip > /usr/local/share/man/man1/modelvet.1.gz")]
pub struct ManArgs {}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<u8> {
    // Into memory first: clap_complete panics on a write error, and `| head` is a clean exit.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "modelvet", &mut script);
    write_stdout(|out| out.write_all(&script))?;
    Ok(0)
}

pub fn man(_: ManArgs) -> anyhow::Result<u8> {
    let page = clap_mangen::Man::new(Cli::command());
    write_stdout(|out| page.render(out))?;
    Ok(0)
}
