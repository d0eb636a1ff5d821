//! The CLI's one error type.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::Io { path, source }
    }

    /// One line for the terminal: DataFusion's context chain without its type prefixes.
    pub fn one_line(&self) -> String {
        let s = match self {
            CliError::DataFusion(e) => strip(e),
            other => other.to_string(),
        };
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn strip(e: &DataFusionError) -> String {
    let s = e.strip_backtrace();
    let mut s = s.as_str();
    for p in [
        "Error during planning: ",
        "Execution error: ",
        "External error: ",
        "Arrow error: ",
        "Parquet error: ",
        "SQL error: ",
        "This feature is not implemented: ",
    ] {
        while let Some(rest) = s.strip_prefix(p) {
            s = rest;
        }
    }
    s.to_string()
}
