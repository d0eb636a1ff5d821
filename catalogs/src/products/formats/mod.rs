//! Reading what people upload as tables: each format's reader checks that a staged file is
//! a table, reads its schema and row count, and (for formats DataFusion does not scan)
//! writes the same rows as Parquet, which is what SQL then reads. Every error names the
//! file, and the line, column or part that is wrong.

mod csv;
mod parquet;

use datafusion::arrow::datatypes::SchemaRef;

use super::storage::ProductStorage;
use crate::store::StoreError;

/// What an uploaded file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
    Fits,
    Hdf5,
    /// A HATS catalog in a `.tar` or `.zip`.
    HatsArchive,
    /// Anything else: kept and served as bytes, never read.
    Opaque,
}

impl Format {
    pub fn of_name(name: &str) -> Format {
        let lower = name.to_ascii_lowercase();
        let ends = |exts: &[&str]| exts.iter().any(|e| lower.ends_with(e));
        if ends(&[".parquet", ".pq"]) {
            Format::Parquet
        } else if ends(&[".csv"]) {
            Format::Csv
        } else if ends(&[".fits", ".fit", ".fts"]) {
            Format::Fits
        } else if ends(&[".hdf5", ".h5", ".hdf"]) {
            Format::Hdf5
        } else if ends(&[".tar", ".zip"]) {
            Format::HatsArchive
        } else {
            Format::Opaque
        }
    }

    /// The media type a download announces.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Csv => "text/csv",
            Format::Fits => "application/fits",
            Format::Hdf5 => "application/x-hdf5",
            Format::HatsArchive => "application/x-tar",
            Format::Opaque => "application/octet-stream",
        }
    }

    pub fn is_table(self) -> bool {
        !matches!(self, Format::Opaque)
    }
}

/// A staged file read as a table.
#[derive(Debug, Clone)]
pub struct TableRead {
    pub schema: SchemaRef,
    pub n_rows: u64,
    /// The staged Parquet file SQL reads, when it is not the upload itself.
    pub converted_key: Option<String>,
}

/// Reads the staged file `key` (uploaded as `name`) as a table of `format`, writing a
/// Parquet copy into `staging_folder` when the format needs one.
pub async fn read_table(
    storage: &ProductStorage,
    key: &str,
    name: &str,
    format: Format,
    staging_folder: &str,
) -> Result<TableRead, StoreError> {
    match format {
        Format::Parquet => parquet::read(storage, key, name).await,
        Format::Csv => csv::read(storage, key, name, staging_folder).await,
        Format::Fits | Format::Hdf5 | Format::HatsArchive => Err(StoreError::Invalid(format!(
            "{name}: this server does not read {format:?} tables yet; upload Parquet or CSV"
        ))),
        Format::Opaque => Err(StoreError::Invalid(format!(
            "{name}: not a table format pz reads (Parquet, CSV)"
        ))),
    }
}

/// The Parquet file SQL reads for a converted upload.
pub fn converted_name(staging_folder: &str) -> String {
    format!("{staging_folder}/table.parquet")
}
