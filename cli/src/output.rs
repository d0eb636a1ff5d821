//! Printing or writing a result as a table, CSV, JSON lines or Parquet.

use std::io::Write;
use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::CliError;

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

pub fn write(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: Format,
    output: Option<&Path>,
) -> Result<(), CliError> {
    let mut buf: Vec<u8> = Vec::new();
    match format {
        Format::Table => {
            let text = pretty_format_batches(batches)?;
            writeln!(buf, "{text}").map_err(CliError::io("stdout"))?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut buf);
            if batches.is_empty() {
                // The header still says what the columns are.
                w.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Parquet => {
            if output.is_none() {
                return Err(CliError::Usage(
                    "--format parquet needs --output <file>".into(),
                ));
            }
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    match output {
        Some(path) => write_whole(path, &buf),
        None => std::io::stdout()
            .write_all(&buf)
            .map_err(CliError::io("stdout")),
    }
}

/// Writes `bytes` to `path` through a temporary sibling renamed into place, so a failed
/// write (a full disk) leaves neither a truncated file nor the temporary one.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.pz-tmp-{}", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::Io {
            path: path.to_path_buf(),
            source: e,
        });
    }
    Ok(())
}
