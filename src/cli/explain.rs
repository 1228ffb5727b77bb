//! `modelvet explain`: what a finding code means, or the table of all codes.

use clap::Args;

use modelvet::finding::Code;

use crate::cli::write_stdout;

/// Explain finding codes: one, or all of them with their default severity.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  modelvet explain
  modelvet explain pickle-dangerous-global")]
pub struct ExplainArgs {
    /// A finding code, such as `pickle-format`.
    code: Option<String>,
}

pub fn run(args: ExplainArgs) -> anyhow::Result<u8> {
    let codes: Vec<Code> = match &args.code {
        None => Code::ALL.to_vec(),
        Some(wanted) => match Code::ALL.iter().find(|code| code.as_str() == wanted) {
            Some(code) => vec![*code],
            None => anyhow::bail!(
                "unknown finding code `{}`; `modelvet explain` lists them all",
                modelvet::finding::quote(wanted)
            ),
        },
    };
    write_stdout(|out| {
        for code in codes {
            writeln!(
                out,
                "{:<28} {:<8}  {}",
                code.as_str(),
                code.default_severity().as_str(),
                code.summary()
            )?;
        }
        Ok(())
    })?;
    Ok(0)
}
