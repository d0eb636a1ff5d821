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
            let Some(path) = output else {
                return Err(CliError::Usage(
                    "--format parquet needs --output <file>".into(),
                ));
            };
            let f = std::fs::File::create(path).map_err(CliError::io(path))?;
            let mut w = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
            return Ok(());
        }
    }
    match output {
        Some(path) => std::fs::write(path, &buf).map_err(CliError::io(path)),
        None => std::io::stdout()
            .write_all(&buf)
            .map_err(CliError::io("stdout")),
    }
}
