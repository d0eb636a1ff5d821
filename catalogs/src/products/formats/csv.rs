//! CSV uploads (a header line, comma-separated): column types inferred from the first
//! rows, then every row decoded as it streams in and written as Parquet. A row with the
//! wrong number of fields, or a value that is not of its column's type, is refused naming
//! the line.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use datafusion::arrow::csv::reader::Format as CsvFormat;
use datafusion::arrow::csv::ReaderBuilder;
use futures::StreamExt;
use parquet::arrow::AsyncArrowWriter;

use super::{converted_name, TableRead};
use crate::products::storage::ProductStorage;
use crate::store::StoreError;

/// Bytes read to infer the column types.
const INFER_BYTES: usize = 1 << 20;
/// Rows read to infer them, at most.
const INFER_ROWS: usize = 10_000;
const BATCH_ROWS: usize = 64 * 1024;

pub(super) async fn read(
    storage: &ProductStorage,
    key: &str,
    name: &str,
    staging_folder: &str,
) -> Result<TableRead, StoreError> {
    let bad = |e: &dyn std::fmt::Display| StoreError::Invalid(format!("{name}: {e}"));
    // The head of the file, cut after its last whole line, to infer the schema from.
    let mut head = BytesMut::new();
    {
        let mut stream = storage.read(key).await?;
        while head.len() < INFER_BYTES {
            match stream.next().await {
                Some(chunk) => head.extend_from_slice(&chunk?),
                None => break,
            }
        }
    }
    if head.is_empty() {
        return Err(StoreError::Invalid(format!(
            "{name}: empty file (a CSV table needs a header line)"
        )));
    }
    let whole_lines = match head.iter().rposition(|b| *b == b'\n') {
        Some(i) if head.len() >= INFER_BYTES => i + 1,
        _ => head.len(),
    };
    let (schema, _) = CsvFormat::default()
        .with_header(true)
        .infer_schema(&head[..whole_lines], Some(INFER_ROWS))
        .map_err(|e| bad(&e))?;
    if schema.fields().is_empty() {
        return Err(StoreError::Invalid(format!(
            "{name}: no columns in the header"
        )));
    }
    let schema = Arc::new(schema);

    let out_key = converted_name(staging_folder);
    let writer = storage.buffered_writer(&out_key);
    let mut writer = AsyncArrowWriter::try_new(writer, Arc::clone(&schema), None)
        .map_err(|e| StoreError::Storage(format!("cannot write {out_key}: {e}")))?;
    let mut decoder = ReaderBuilder::new(Arc::clone(&schema))
        .with_header(true)
        .with_batch_size(BATCH_ROWS)
        .build_decoder();
    let mut stream = storage.read(key).await?;
    let mut buffered = Bytes::new();
    let mut n_rows = 0u64;
    let mut ended = false;
    loop {
        if buffered.is_empty() && !ended {
            match stream.next().await {
                Some(chunk) => buffered = chunk?,
                None => ended = true,
            }
        }
        let consumed = decoder.decode(&buffered).map_err(|e| bad(&e))?;
        buffered.advance(consumed);
        if consumed == 0 || decoder.capacity() == 0 || (ended && buffered.is_empty()) {
            match decoder.flush().map_err(|e| bad(&e))? {
                Some(batch) => {
                    n_rows += batch.num_rows() as u64;
                    writer
                        .write(&batch)
                        .await
                        .map_err(|e| StoreError::Storage(format!("cannot write {out_key}: {e}")))?;
                }
                None if ended => break,
                None => {}
            }
        }
    }
    writer
        .close()
        .await
        .map_err(|e| StoreError::Storage(format!("cannot complete {out_key}: {e}")))?;
    Ok(TableRead {
        schema,
        n_rows,
        converted_key: Some(out_key),
    })
}
