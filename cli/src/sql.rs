//! `pz sql`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use pz_engine::{DataDir, PzContext};

use crate::error::CliError;
use crate::output::{self, Format};

#[derive(clap::Args, Debug)]
pub struct SqlArgs {
    /// SQL to run; several `;`-separated statements are allowed, the last one's result is
    /// printed.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    command: Option<String>,
    /// A file of SQL statements to run.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the result to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn run(args: &SqlArgs, data_dir: &Option<PathBuf>) -> Result<(), CliError> {
    let dir = crate::resolve_data_dir(data_dir)?;
    let ctx = PzContext::open(DataDir::new(dir)).await?;
    for w in &ctx.warnings {
        eprintln!("warning: {w}");
    }
    let script = match (&args.command, &args.file) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(f)) => Some(std::fs::read_to_string(f).map_err(CliError::io(f))?),
        (None, None) => None,
    };
    match script {
        Some(sql) => {
            if let Some(last) = ctx.run_last(&sql).await? {
                output::write(
                    &last.schema,
                    &last.batches,
                    args.format,
                    args.output.as_deref(),
                )?;
            }
            Ok(())
        }
        None => interactive(&ctx, args.format).await,
    }
}

/// A prompt: statements end with `;`; `\q` or end of input quits; errors do not.
async fn interactive(ctx: &PzContext, format: Format) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    let mut pending = String::new();
    let prompt = |cont: bool| {
        print!("{}", if cont { "  -> " } else { "pz> " });
        let _ = std::io::stdout().flush();
    };
    prompt(false);
    for line in stdin.lock().lines() {
        let line = line.map_err(CliError::io("stdin"))?;
        let t = line.trim();
        if pending.is_empty() && (t == "\\q" || t == "exit" || t == "quit") {
            return Ok(());
        }
        pending.push_str(&line);
        pending.push('\n');
        if t.ends_with(';') {
            match ctx.run_script(&pending).await {
                Ok(results) => {
                    if let Some(last) = results.last() {
                        output::write(&last.schema, &last.batches, format, None)?;
                    }
                }
                Err(e) => eprintln!("error: {}", CliError::from(e).one_line()),
            }
            pending.clear();
        }
        prompt(!pending.is_empty());
    }
    println!();
    Ok(())
}
