//! Reading the rows of a few partitions, limited to `_healpix_29` ranges.

use std::fs::File;
use std::ops::Range;

use datafusion::arrow::array::{Array, BooleanArray, Float64Array, RecordBatch, UInt64Array};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::{exec_datafusion_err, Result};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::hats::catalog::HatsCatalog;
use crate::hats::pixel::{intersects_any, ORDER_29};
use crate::hats::properties::Layout;

/// Rows of `catalog`'s partitions `parts` whose position falls in `ranges` (order 29),
/// projected to `schema` (the catalog's schema, or a subset in its order).
pub fn read_partitions(
    catalog: &HatsCatalog,
    parts: &[usize],
    ranges: &[Range<u64>],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let mut batches = Vec::new();
    for &i in parts {
        let part = &catalog.partitions[i];
        for (path, _) in part.files(&catalog.root)? {
            let file = File::open(&path)
                .map_err(|e| exec_datafusion_err!("cannot open {}: {e}", path.display()))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
                exec_datafusion_err!("{} is not a readable Parquet file: {e}", path.display())
            })?;
            catalog.check_file_schema(&path, builder.schema())?;
            let reader = builder.with_batch_size(65_536).build().map_err(|e| {
                exec_datafusion_err!("{} is not a readable Parquet file: {e}", path.display())
            })?;
            for batch in reader {
                let batch =
                    batch.map_err(|e| exec_datafusion_err!("reading {}: {e}", path.display()))?;
                let batch = conform(&batch, schema, &path)?;
                let keep = in_ranges(catalog, &batch, ranges)?;
                batches.push(filter_record_batch(&batch, &keep)?);
            }
        }
    }
    Ok(concat_batches(schema, &batches)?)
}

/// Selects `schema`'s columns from a file batch, by name.
fn conform(batch: &RecordBatch, schema: &SchemaRef, path: &std::path::Path) -> Result<RecordBatch> {
    let mut cols = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let c = batch.column_by_name(f.name()).ok_or_else(|| {
            exec_datafusion_err!("{}: column '{}' is missing", path.display(), f.name())
        })?;
        cols.push(if c.data_type() == f.data_type() {
            c.clone()
        } else {
            cast(c, f.data_type()).map_err(|e| {
                exec_datafusion_err!(
                    "{}: column '{}' ({}) cannot be read as the catalog's {}: {e}",
                    path.display(),
                    f.name(),
                    c.data_type(),
                    f.data_type()
                )
            })?
        });
    }
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// Which rows lie in `ranges`: by `_healpix_29` in HATS catalogs, else from RA/Dec.
fn in_ranges(
    catalog: &HatsCatalog,
    batch: &RecordBatch,
    ranges: &[Range<u64>],
) -> Result<BooleanArray> {
    let props = &catalog.properties;
    if props.layout == Layout::Hats {
        if let Some(h) = props
            .healpix_column
            .as_deref()
            .and_then(|c| batch.column_by_name(c))
        {
            // The catalog checked it is Int64 or UInt64; a negative or null index places
            // the row nowhere.
            let h = cast(h, &DataType::UInt64)?;
            if let Some(h) = h.as_any().downcast_ref::<UInt64Array>() {
                return Ok(h
                    .iter()
                    .map(|v| Some(v.is_some_and(|v| contains(ranges, v))))
                    .collect());
            }
        }
    }
    let ra = f64_column(batch, &props.ra_column)?;
    let dec = f64_column(batch, &props.dec_column)?;
    Ok(ra
        .iter()
        .zip(dec.iter())
        .map(|(ra, dec)| {
            // A null coordinate has no position (the buffer under a null holds anything).
            let h = ra.zip(dec).and_then(|(ra, dec)| {
                pz_udfs::astro::healpix::healpix_nested(ORDER_29, ra, dec)
                    .ok()
                    .flatten()
            });
            Some(h.is_some_and(|h| contains(ranges, h)))
        })
        .collect())
}

fn contains(ranges: &[Range<u64>], h: u64) -> bool {
    h.checked_add(1)
        .is_some_and(|end| intersects_any(&(h..end), ranges))
}

/// A coordinate column as Float64, its nulls kept.
pub fn f64_column(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| exec_datafusion_err!("column '{name}' is missing"))?;
    let c = cast(c, &DataType::Float64)
        .map_err(|e| exec_datafusion_err!("column '{name}' is not numeric: {e}"))?;
    c.as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .ok_or_else(|| exec_datafusion_err!("column '{name}' is not numeric"))
}
