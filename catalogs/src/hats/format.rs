//! `COPY (<query>) TO '<dir>' STORED AS HATS [OPTIONS (...)]`: HATS as a DataFusion output
//! format. Reading a single leaf file as this format reads it as Parquet.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{GetExt, Result, Statistics};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::datasource::physical_plan::{FileScanConfig, FileSinkConfig, FileSource};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::LexRequirement;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore};

use super::catalog::local_path;
use super::writer::{write_hats, HatsWriteOptions};

/// Registers as the `hats` file type.
#[derive(Debug, Default)]
pub struct HatsFormatFactory;

impl GetExt for HatsFormatFactory {
    fn get_ext(&self) -> String {
        "hats".to_string()
    }
}

impl FileFormatFactory for HatsFormatFactory {
    fn create(
        &self,
        _state: &dyn Session,
        format_options: &HashMap<String, String>,
    ) -> Result<Arc<dyn FileFormat>> {
        let mut opts = HatsWriteOptions::default();
        let mut keys: Vec<_> = format_options.iter().collect();
        keys.sort();
        for (k, v) in keys {
            opts.apply(k, v)?;
        }
        // Combinations (lowest above highest order, ra = dec) fail at planning, before the
        // query runs.
        opts.validate()?;
        Ok(Arc::new(HatsFormat {
            opts,
            parquet: ParquetFormat::default(),
        }))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(HatsFormat {
            opts: HatsWriteOptions::default(),
            parquet: ParquetFormat::default(),
        })
    }
}

#[derive(Debug)]
pub struct HatsFormat {
    pub opts: HatsWriteOptions,
    parquet: ParquetFormat,
}

#[async_trait]
impl FileFormat for HatsFormat {
    fn get_ext(&self) -> String {
        "hats".to_string()
    }

    fn get_ext_with_compression(&self, _c: &FileCompressionType) -> Result<String> {
        Ok("hats".to_string())
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        None
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        self.parquet.infer_schema(state, store, objects).await
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        self.parquet
            .infer_stats(state, store, table_schema, object)
            .await
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.parquet.create_physical_plan(state, conf).await
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        _state: &dyn Session,
        conf: FileSinkConfig,
        order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let sink = HatsSink {
            location: conf.original_url.clone(),
            schema: conf.output_schema().clone(),
            opts: self.opts.clone(),
        };
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(sink),
            order_requirements,
        )))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.parquet.file_source(table_schema)
    }
}

/// Collects the query's rows and writes them as a HATS catalog.
#[derive(Debug)]
pub struct HatsSink {
    pub location: String,
    pub schema: SchemaRef,
    pub opts: HatsWriteOptions,
}

impl DisplayAs for HatsSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "HatsSink: location={}, pixel_threshold={}, highest_order={}",
            self.location, self.opts.pixel_threshold, self.opts.highest_order
        )
    }
}

#[async_trait]
impl DataSink for HatsSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let schema = data.schema();
        let batches: Vec<_> = data.try_collect().await?;
        let out = local_path(&self.location)?;
        let opts = self.opts.clone();
        let summary =
            tokio::task::spawn_blocking(move || write_hats(&batches, schema, &out, &opts))
                .await
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))??;
        Ok(summary.rows)
    }
}
