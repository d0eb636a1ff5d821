//! Parquet uploads: read in place (SQL scans the uploaded file itself). The footer is read
//! to check the file and count its rows, and every row group's pages are decoded once, so
//! a file with a good footer and damaged pages is refused at upload, not at a reader's
//! query.

use futures::StreamExt;
use parquet::arrow::ParquetRecordBatchStreamBuilder;

use super::TableRead;
use crate::products::storage::ProductStorage;
use crate::store::StoreError;

pub(super) async fn read(
    storage: &ProductStorage,
    key: &str,
    name: &str,
) -> Result<TableRead, StoreError> {
    let not_parquet = |e: &dyn std::fmt::Display| {
        StoreError::Invalid(format!("{name}: not a readable Parquet file: {e}"))
    };
    let reader = storage.parquet_reader(key).await?;
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| not_parquet(&e))?;
    let schema = std::sync::Arc::clone(builder.schema());
    let declared = builder.metadata().file_metadata().num_rows();
    let mut stream = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| not_parquet(&e))?;
    let mut n_rows = 0u64;
    while let Some(batch) = stream.next().await {
        n_rows += batch.map_err(|e| not_parquet(&e))?.num_rows() as u64;
    }
    if n_rows != declared.max(0) as u64 {
        return Err(StoreError::Invalid(format!(
            "{name}: the footer declares {declared} rows but the pages hold {n_rows}"
        )));
    }
    Ok(TableRead {
        schema,
        n_rows,
        converted_key: None,
    })
}
