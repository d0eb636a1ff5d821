//! Bulk ingest: a stream of Arrow batches becomes a Parquet table in the data directory,
//! registered and persisted like `CREATE EXTERNAL TABLE`.
//!
//! Nothing is visible until it is whole. Batches are written to a staging file
//! (`ingested/.staging/`) that is renamed into the table's directory only after the last
//! batch is on disk; a new table's directory is registered only after that. A stream that
//! fails or stops midway, or a process killed midway, leaves at most a staging file, which
//! the next process to open the data directory removes.
//!
//! Each ingested table has a directory of its own, `ingested/<name>-<stamp>/`: appending
//! adds a part file to it; replacing writes a new directory and re-registers the table on
//! it, then removes the old one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::{exec_datafusion_err, plan_err, Result};
use datafusion::datasource::listing::ListingTable;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use futures::{Stream, StreamExt};

use crate::data_dir::DataDir;
use crate::PzContext;

/// What to do with the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestAction {
    /// Make a new table; it must not exist.
    Create,
    /// Add the rows to a table made by ingest; the schemas must be equal.
    Append,
    /// Make the table anew with these rows, whatever it was (a table made otherwise keeps
    /// its files; only the registration is replaced).
    Replace,
}

/// Ingested tables live under this directory of the data directory.
const INGESTED: &str = "ingested";
const STAGING: &str = ".staging";

/// A name for a new file or directory no other ingest (of this or another process) uses.
fn stamp() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Table names ingest accepts: an SQL identifier that needs no quoting.
pub fn check_table_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > 128 {
        return plan_err!(
            "'{name}' is not a table name ingest accepts: letters, digits and '_', starting with a letter or '_', at most 128"
        );
    }
    Ok(())
}

/// A staging file removed when dropped, unless it was moved into place.
struct Staged {
    path: PathBuf,
    kept: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl DataDir {
    fn ingested_dir(&self) -> PathBuf {
        self.root.join(INGESTED)
    }

    /// Removes staging files left by processes that no longer run (killed mid-ingest).
    pub fn remove_stale_ingest_files(&self) -> Vec<PathBuf> {
        let staging = self.ingested_dir().join(STAGING);
        let Ok(entries) = std::fs::read_dir(&staging) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let pid = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| {
                p == std::process::id() || Path::new("/proc").join(p.to_string()).exists()
            });
            if !alive && std::fs::remove_file(&path).is_ok() {
                removed.push(path);
            }
        }
        removed
    }
}

impl PzContext {
    /// Writes `batches` (of `schema`) as table `name` by `action`; returns the rows written.
    pub async fn ingest<S>(
        &self,
        name: &str,
        action: IngestAction,
        schema: SchemaRef,
        batches: S,
    ) -> Result<u64>
    where
        S: Stream<Item = Result<RecordBatch>> + Send + Unpin,
    {
        check_table_name(name)?;
        let Some(dd) = &self.data_dir else {
            return plan_err!("ingest needs a data directory to write table '{name}' into");
        };
        let existing = self.ctx.table_provider(name).await.ok();
        let existing_dir = existing
            .as_ref()
            .and_then(|t| ingested_location(dd, t.as_ref()));
        match (action, &existing) {
            (IngestAction::Create, Some(_)) => {
                return plan_err!("table '{name}' already exists; append to it or replace it")
            }
            (IngestAction::Append, None) => {
                return plan_err!("table '{name}' does not exist; create it first")
            }
            (IngestAction::Append, Some(t)) => {
                if existing_dir.is_none() {
                    return plan_err!(
                        "table '{name}' was not made by ingest, so rows cannot be appended to it; replace it, or ingest into a new table"
                    );
                }
                same_columns(name, &t.schema(), &schema)?;
            }
            _ => {}
        }

        let staging = dd.ingested_dir().join(STAGING);
        std::fs::create_dir_all(&staging)
            .map_err(|e| exec_datafusion_err!("cannot create {}: {e}", staging.display()))?;
        let mut staged = Staged {
            path: staging.join(format!("{}.parquet", stamp())),
            kept: false,
        };
        let rows = write_parquet(&staged.path, name, schema, batches).await?;
        let part = format!("part-{}.parquet", stamp());

        // Appending adds a file to the table's directory; anything else writes a new one.
        let (dir, old_dir) = match (action, existing_dir) {
            (IngestAction::Append, Some(dir)) => (dir, None),
            (_, old_dir) => {
                let dir = dd.ingested_dir().join(format!("{name}-{}", stamp()));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| exec_datafusion_err!("cannot create {}: {e}", dir.display()))?;
                (dir, old_dir)
            }
        };
        move_into(&mut staged, &dir.join(&part))?;
        // Field metadata (a column's UCD, a PDF's grid) is read back, not skipped as
        // DataFusion does by default. Registered again even when appending:
        // re-registering drops the session's cached listing of the directory, which would
        // otherwise hide the new file.
        let replace = if existing.is_some() {
            "OR REPLACE "
        } else {
            ""
        };
        let ddl = format!(
            "CREATE {replace}EXTERNAL TABLE \"{name}\" STORED AS PARQUET LOCATION '{}/' OPTIONS ('format.skip_metadata' 'false')",
            dir.display().to_string().replace('\'', "''")
        );
        if let Err(e) = self.run_script(&ddl).await {
            if action == IngestAction::Append {
                let _ = std::fs::remove_file(dir.join(&part));
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
        if let Some(old) = old_dir {
            // Queries planned before the swap may still read it; they fail rather than see
            // a mix. The data directory holds no other copy to keep.
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(rows)
    }
}

/// The directory of `table` when it is an ingested table of `dd`.
fn ingested_location(
    dd: &DataDir,
    table: &dyn datafusion::catalog::TableProvider,
) -> Option<PathBuf> {
    let any: &dyn std::any::Any = table;
    let listing = any.downcast_ref::<ListingTable>()?;
    let [url] = listing.table_paths().as_slice() else {
        return None;
    };
    let path = url::Url::parse(url.as_str()).ok()?.to_file_path().ok()?;
    let root = std::fs::canonicalize(dd.ingested_dir()).ok()?;
    let path = std::fs::canonicalize(path).ok()?;
    (path.starts_with(&root) && path != root).then_some(path)
}

/// Appended rows must have the table's columns: the same names and types, in order.
fn same_columns(name: &str, table: &Schema, incoming: &Schema) -> Result<()> {
    if table.fields().len() != incoming.fields().len() {
        return plan_err!(
            "table '{name}' has {} columns; the rows sent have {}",
            table.fields().len(),
            incoming.fields().len()
        );
    }
    for (i, (t, s)) in table.fields().iter().zip(incoming.fields()).enumerate() {
        if t.name() != s.name() || !same_type(t.data_type(), s.data_type()) {
            return plan_err!(
                "column {} of table '{name}' is '{}' {}; the rows sent have '{}' {}",
                i + 1,
                t.name(),
                t.data_type(),
                s.name(),
                s.data_type()
            );
        }
    }
    Ok(())
}

/// Types equal as stored: the table reads Parquet strings and binaries as views, whichever
/// of the string (or binary) encodings the client sends.
fn same_type(table: &DataType, sent: &DataType) -> bool {
    use DataType::*;
    let strings = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let binaries = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView);
    table.equals_datatype(sent)
        || (strings(table) && strings(sent))
        || (binaries(table) && binaries(sent))
}

fn move_into(staged: &mut Staged, to: &Path) -> Result<()> {
    std::fs::rename(&staged.path, to).map_err(|e| {
        exec_datafusion_err!(
            "cannot move {} to {}: {e}",
            staged.path.display(),
            to.display()
        )
    })?;
    staged.kept = true;
    Ok(())
}

async fn write_parquet<S>(path: &Path, name: &str, schema: SchemaRef, mut batches: S) -> Result<u64>
where
    S: Stream<Item = Result<RecordBatch>> + Send + Unpin,
{
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| exec_datafusion_err!("cannot create {}: {e}", path.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer = AsyncArrowWriter::try_new(file, Arc::clone(&schema), Some(props))?;
    let mut rows = 0u64;
    let mut n = 0usize;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        n += 1;
        if batch.schema().fields() != schema.fields() {
            return plan_err!(
                "batch {n} sent for table '{name}' has columns ({}), not the stream's ({})",
                crate::column_list(&batch.schema()),
                crate::column_list(&schema)
            );
        }
        rows += batch.num_rows() as u64;
        writer.write(&batch).await?;
    }
    writer.finish().await?;
    let mut file = writer.into_inner();
    use tokio::io::AsyncWriteExt;
    file.flush()
        .await
        .and(file.sync_all().await)
        .map_err(|e| exec_datafusion_err!("cannot write {}: {e}", path.display()))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array};
    use datafusion::arrow::datatypes::Field;

    fn batch(ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("z", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(Float64Array::from(
                    ids.iter().map(|i| *i as f64 / 10.0).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    }

    async fn count(ctx: &PzContext, name: &str) -> i64 {
        let out = ctx
            .run_last(&format!("SELECT count(*) AS n FROM {name}"))
            .await
            .unwrap()
            .unwrap();
        out.batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }

    fn stream(
        batches: Vec<Result<RecordBatch>>,
    ) -> impl Stream<Item = Result<RecordBatch>> + Send + Unpin {
        futures::stream::iter(batches)
    }

    #[tokio::test]
    async fn ingest_creates_appends_replaces_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let dd = DataDir::new(dir.path());
        let ctx = PzContext::open(dd.clone()).await.unwrap();
        let schema = batch(&[1]).schema();
        let n = ctx
            .ingest(
                "zcat",
                IngestAction::Create,
                Arc::clone(&schema),
                stream(vec![Ok(batch(&[1, 2, 3]))]),
            )
            .await
            .unwrap();
        assert_eq!(n, 3);
        let again = ctx
            .ingest(
                "zcat",
                IngestAction::Create,
                Arc::clone(&schema),
                stream(vec![Ok(batch(&[4]))]),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(again.contains("already exists"), "{again}");
        ctx.ingest(
            "zcat",
            IngestAction::Append,
            Arc::clone(&schema),
            stream(vec![Ok(batch(&[4, 5]))]),
        )
        .await
        .unwrap();
        assert_eq!(count(&ctx, "zcat").await, 5);

        // A new process sees the table as it was left.
        let reopened = PzContext::open(dd.clone()).await.unwrap();
        assert_eq!(count(&reopened, "zcat").await, 5);

        ctx.ingest(
            "zcat",
            IngestAction::Replace,
            Arc::clone(&schema),
            stream(vec![Ok(batch(&[9]))]),
        )
        .await
        .unwrap();
        assert_eq!(count(&ctx, "zcat").await, 1);
        let dirs: Vec<_> = std::fs::read_dir(dir.path().join(INGESTED))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != STAGING)
            .collect();
        assert_eq!(dirs.len(), 1, "the replaced table's directory is gone");
    }

    #[tokio::test]
    async fn files_added_outside_pz_are_seen_after_the_listing_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = PzContext::open(DataDir::new(dir.path())).await.unwrap();
        let schema = batch(&[1]).schema();
        ctx.ingest(
            "grows",
            IngestAction::Create,
            Arc::clone(&schema),
            stream(vec![Ok(batch(&[1, 2]))]),
        )
        .await
        .unwrap();
        assert_eq!(count(&ctx, "grows").await, 2);
        // An operator drops another part into the table's directory by hand.
        let table_dir = std::fs::read_dir(dir.path().join(INGESTED))
            .unwrap()
            .flatten()
            .find(|e| e.file_name() != STAGING)
            .unwrap()
            .path();
        let file = std::fs::File::create(table_dir.join("by-hand.parquet")).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
        w.write(&batch(&[3, 4, 5])).unwrap();
        w.close().unwrap();
        tokio::time::sleep(crate::LIST_FILES_TTL + std::time::Duration::from_millis(500)).await;
        assert_eq!(count(&ctx, "grows").await, 5);
    }

    #[tokio::test]
    async fn a_stream_that_fails_midway_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = PzContext::open(DataDir::new(dir.path())).await.unwrap();
        let schema = batch(&[1]).schema();
        let broken = stream(vec![
            Ok(batch(&[1, 2])),
            Err(exec_datafusion_err!("the client went away")),
        ]);
        let e = ctx
            .ingest("half", IngestAction::Create, Arc::clone(&schema), broken)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("went away"), "{e}");
        assert!(ctx.ctx.table_provider("half").await.is_err());
        let staged = std::fs::read_dir(dir.path().join(INGESTED).join(STAGING))
            .unwrap()
            .count();
        assert_eq!(staged, 0);
        let dirs = std::fs::read_dir(dir.path().join(INGESTED))
            .unwrap()
            .count();
        assert_eq!(dirs, 1, "only the staging directory");

        // Appended rows must match the table's columns, and the error names the column.
        ctx.ingest(
            "t",
            IngestAction::Create,
            Arc::clone(&schema),
            stream(vec![Ok(batch(&[1]))]),
        )
        .await
        .unwrap();
        let other = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("zphot", DataType::Float64, false),
        ]));
        let e = ctx
            .ingest("t", IngestAction::Append, other, stream(vec![]))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("column 2") && e.contains("'zphot'"), "{e}");
        for bad in ["", "1abc", "a b", "x;DROP", "é"] {
            assert!(check_table_name(bad).is_err(), "{bad}");
        }
    }
}
