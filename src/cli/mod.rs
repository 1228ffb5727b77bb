//! Command-line definitions (clap) and dispatch to one file per subcommand. Only the binary
//! knows clap; the library receives plain option values.

mod explain;
mod scan;

use std::io::{self, IsTerminal, Write};

use clap::{Parser, Subcommand, ValueEnum};

use modelvet::report::human::Color;

/// Fetch, verify, scan and sandbox machine-learning models so that nothing unverified runs.
#[derive(Debug, Parser)]
#[command(name = "modelvet", version, about, long_about = None)]
pub struct Cli {
    /// When to colour human output (`NO_COLOR` set means never, unless `always`).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Scan(scan::ScanArgs),
    Explain(explain::ExplainArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Report formats shared by the subcommands that produce a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Human,
    /// The versioned JSON contract (see the `modelvet::report::json` docs).
    Json,
}

/// Runs the chosen subcommand and returns the exit code it stands for.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let color = match cli.color {
        ColorChoice::Always => Color::Always,
        ColorChoice::Never => Color::Never,
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
            if !no_color && io::stdout().is_terminal() {
                Color::Always
            } else {
                Color::Never
            }
        }
    };
    match cli.command {
        Command::Scan(args) => scan::run(args, color),
        Command::Explain(args) => explain::run(args),
    }
}

/// Prints an error and its causes to stderr, with a hint where one helps.
pub fn print_error(error: &anyhow::Error) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "error: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
}

/// Writes to stdout, treating a closed pipe (`modelvet scan ... | head`) as success.
pub fn write_stdout(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match render(&mut out).and_then(|()| out.flush()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
