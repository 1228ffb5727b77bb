//! The `modelvet` binary: parse arguments, run the library, print, pick the exit code.
//!
//! Exit codes: 0 everything verified or accepted, 1 something rejected or failed
//! verification, 2 usage or operational error.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            // clap prints usage errors to stderr and --help/--version to stdout.
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            cli::print_error(&error);
            ExitCode::from(2)
        }
    }
}
