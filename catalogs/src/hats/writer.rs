//! Writing HATS v1.0 catalogs, as hats-import lays them out.
//!
//! Rows get `_healpix_29` as their first column and are sorted by it (then by the optional
//! sort columns); leaves come from adaptive partitioning of an order-`highest_order`
//! histogram; each leaf is one zstd Parquet file; `partition_info.csv`, `hats.properties`
//! (and its HiPS twin `properties`), `dataset/_common_metadata` and `dataset/_metadata`
//! describe the whole. The catalog is built in a temporary sibling directory and renamed
//! into place at the end, so a failure leaves nothing behind.
//!
//! Rows are held in memory while they are sorted: the writer suits catalogs that fit in RAM
//! (tens of millions of rows); larger imports belong to a partition-by-partition pipeline.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches, lexsort_to_indices, take, SortColumn};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{exec_datafusion_err, exec_err, plan_datafusion_err, plan_err, Result};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataBuilder, ParquetMetaDataWriter};
use parquet::file::properties::WriterProperties;
use pz_udfs::astro::healpix::healpix_nested;

use super::catalog::is_float;
use super::pixel::{align_partitions, Pixel, ORDER_29};

/// How to write a catalog.
#[derive(Debug, Clone)]
pub struct HatsWriteOptions {
    /// `obs_collection`; defaults to the output directory's name.
    pub catalog_name: Option<String>,
    pub ra_column: String,
    pub dec_column: String,
    /// Most rows a leaf may hold (hats-import's `pixel_threshold`).
    pub pixel_threshold: u64,
    /// Order of the histogram partitioning starts from (hats-import's `highest_healpix_order`).
    pub highest_order: u8,
    pub lowest_order: u8,
    /// Keep a lone non-empty pixel at its order instead of merging it with three empty ones.
    pub drop_empty_siblings: bool,
    /// Columns that order rows within one `_healpix_29` value.
    pub sort_columns: Vec<String>,
    /// `hats_creation_date`; `None` writes the current time. Fixed dates make byte-identical
    /// output possible.
    pub creation_date: Option<String>,
    /// Replace an existing catalog at the output path.
    pub overwrite: bool,
}

impl Default for HatsWriteOptions {
    fn default() -> Self {
        HatsWriteOptions {
            catalog_name: None,
            ra_column: "ra".into(),
            dec_column: "dec".into(),
            pixel_threshold: 1_000_000,
            highest_order: 10,
            lowest_order: 0,
            drop_empty_siblings: true,
            sort_columns: Vec::new(),
            creation_date: None,
            overwrite: false,
        }
    }
}

impl HatsWriteOptions {
    /// Applies `key=value` options (as COPY's OPTIONS give them). Unknown keys and values
    /// outside an option's domain are errors; [`Self::validate`] checks how they combine.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        let bare = key
            .strip_prefix("format.")
            .or_else(|| key.strip_prefix("hats."))
            .unwrap_or(key);
        let num = |v: &str| -> Result<u64> {
            v.trim().parse::<u64>().map_err(|_| {
                plan_datafusion_err!("HATS option '{bare}': '{v}' is not a whole number")
            })
        };
        match bare {
            "catalog_name" | "name" => self.catalog_name = Some(value.to_string()),
            "ra" | "ra_column" => self.ra_column = value.trim().to_string(),
            "dec" | "dec_column" => self.dec_column = value.trim().to_string(),
            "pixel_threshold" | "threshold" => {
                let n = num(value)?;
                if n == 0 {
                    return plan_err!(
                        "HATS option '{bare}': 0 is not a pixel threshold (the most rows a partition may hold; at least 1)"
                    );
                }
                self.pixel_threshold = n;
            }
            "highest_order" => self.highest_order = order(bare, num(value)?)?,
            "lowest_order" => self.lowest_order = order(bare, num(value)?)?,
            "drop_empty_siblings" => self.drop_empty_siblings = boolean(bare, value)?,
            "sort_columns" => {
                self.sort_columns = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "creation_date" => self.creation_date = Some(value.trim().to_string()),
            "overwrite" => self.overwrite = boolean(bare, value)?,
            _ => {
                return plan_err!(
                    "unknown HATS write option '{bare}' (known: catalog_name, ra, dec, \
                     pixel_threshold, highest_order, lowest_order, drop_empty_siblings, \
                     sort_columns, creation_date, overwrite)"
                )
            }
        }
        Ok(())
    }

    /// Checks every option's domain and how they combine, so a bad set fails before any row
    /// is read or any file written.
    pub fn validate(&self) -> Result<()> {
        if self.pixel_threshold == 0 {
            return plan_err!("HATS write: pixel_threshold must be at least 1, got 0");
        }
        order("highest_order", u64::from(self.highest_order))?;
        order("lowest_order", u64::from(self.lowest_order))?;
        if self.lowest_order > self.highest_order {
            return plan_err!(
                "HATS write: lowest_order {} is above highest_order {}",
                self.lowest_order,
                self.highest_order
            );
        }
        for (key, v) in [("ra", &self.ra_column), ("dec", &self.dec_column)] {
            if v.is_empty() {
                return plan_err!("HATS option '{key}': the column name is empty");
            }
            property_value(key, v)?;
        }
        if self.ra_column == self.dec_column {
            return plan_err!(
                "HATS options 'ra' and 'dec' both name column '{}'",
                self.ra_column
            );
        }
        if let Some(name) = &self.catalog_name {
            if name.trim().is_empty() {
                return plan_err!("HATS option 'catalog_name': the name is empty");
            }
            property_value("catalog_name", name)?;
        }
        if let Some(date) = &self.creation_date {
            if date.is_empty() {
                return plan_err!("HATS option 'creation_date': the date is empty");
            }
            property_value("creation_date", date)?;
        }
        for c in &self.sort_columns {
            property_value("sort_columns", c)?;
            if c.contains(',') {
                return plan_err!(
                    "HATS option 'sort_columns': column '{c}' contains a comma, which hats_cols_sort cannot hold"
                );
            }
        }
        Ok(())
    }
}

/// Values go into `hats.properties` lines as they are: a line break or other control
/// character would end the line and smuggle in keys of its own.
fn property_value(key: &str, v: &str) -> Result<()> {
    if v.chars().any(char::is_control) {
        return plan_err!(
            "HATS option '{key}': {v:?} contains a line break or control character, which hats.properties cannot hold"
        );
    }
    Ok(())
}

fn order(key: &str, v: u64) -> Result<u8> {
    match u8::try_from(v) {
        Ok(o) if o <= ORDER_29 => Ok(o),
        _ => plan_err!("HATS option '{key}': order {v} is outside 0..=29"),
    }
}

fn boolean(key: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => plan_err!("HATS option '{key}': '{v}' is not true or false"),
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct HatsWriteSummary {
    pub root: PathBuf,
    pub rows: u64,
    /// Leaves with their row counts, in nested order.
    pub partitions: Vec<(Pixel, u64)>,
}

/// Writes `batches` (all of `schema`) as a HATS catalog at `out`.
pub fn write_hats(
    batches: &[RecordBatch],
    schema: SchemaRef,
    out: &Path,
    opts: &HatsWriteOptions,
) -> Result<HatsWriteSummary> {
    opts.validate()?;
    if out.exists() {
        let empty = out.is_dir()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !empty && !opts.overwrite {
            return plan_err!(
                "HATS write: {} already exists; remove it or set the 'overwrite' option",
                out.display()
            );
        }
    }
    let all = concat_batches(&schema, batches)?;
    let (ra, dec) = (
        column_f64(&all, &opts.ra_column)?,
        column_f64(&all, &opts.dec_column)?,
    );

    // Spatial index of every row; a row without a position cannot be placed.
    let mut h29 = Vec::with_capacity(all.num_rows());
    for row in 0..all.num_rows() {
        if ra.is_null(row) || dec.is_null(row) {
            return exec_err!(
                "HATS write: row {row} has a null {} or {}: every row needs a position",
                opts.ra_column,
                opts.dec_column
            );
        }
        let h = healpix_nested(ORDER_29, ra.value(row), dec.value(row)).map_err(|e| {
            exec_datafusion_err!(
                "HATS write: row {row} ({}={}, {}={}): {}",
                opts.ra_column,
                ra.value(row),
                opts.dec_column,
                dec.value(row),
                e.message()
            )
        })?;
        match h {
            Some(h) => h29.push(h as i64),
            None => {
                return exec_err!(
                    "HATS write: row {row} has a NaN or infinite position ({}={}, {}={})",
                    opts.ra_column,
                    ra.value(row),
                    opts.dec_column,
                    dec.value(row)
                )
            }
        }
    }
    let h29 = Int64Array::from(h29);

    // `_healpix_29` first; an input copy of it is replaced by the recomputed one.
    let mut fields = vec![Arc::new(Field::new("_healpix_29", DataType::Int64, false))];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(h29.clone())];
    for (f, c) in schema.fields().iter().zip(all.columns()) {
        if f.name() != "_healpix_29" {
            fields.push(f.clone());
            columns.push(c.clone());
        }
    }
    let out_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));

    let mut sort = vec![SortColumn {
        values: Arc::new(h29) as ArrayRef,
        options: None,
    }];
    for name in &opts.sort_columns {
        let idx = out_schema.index_of(name).map_err(|_| {
            exec_datafusion_err!("HATS write: sort column '{name}' is not in the input")
        })?;
        sort.push(SortColumn {
            values: columns[idx].clone(),
            options: None,
        });
    }
    let indices = lexsort_to_indices(&sort, None)?;
    let sorted: Vec<ArrayRef> = columns
        .iter()
        .map(|c| take(c.as_ref(), &indices, None))
        .collect::<std::result::Result<_, _>>()?;
    let sorted = RecordBatch::try_new(out_schema.clone(), sorted)?;
    let sorted_h29 = sorted
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| exec_datafusion_err!("HATS write: _healpix_29 is not Int64"))?
        .clone();

    let shift = 2 * (ORDER_29 - opts.highest_order) as u32;
    let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
    for h in sorted_h29.values() {
        *histogram.entry((*h as u64) >> shift).or_default() += 1;
    }
    let leaves = align_partitions(
        &histogram,
        opts.highest_order,
        opts.lowest_order,
        opts.pixel_threshold,
        opts.drop_empty_siblings,
    )?;

    // Build everything in a temporary sibling, then move it into place.
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "catalog".into());
    if opts.catalog_name.is_none() {
        // The directory's name becomes obs_collection.
        property_value("catalog_name", &name)?;
    }
    std::fs::create_dir_all(parent)
        .map_err(|e| exec_datafusion_err!("HATS write: cannot create {}: {e}", parent.display()))?;
    let tmp = parent.join(format!(".{name}.pz-tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = write_tree(&tmp, &sorted, &sorted_h29, &leaves, &name, opts);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| {
            exec_datafusion_err!("HATS write: cannot replace {}: {e}", out.display())
        })?;
    }
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        exec_datafusion_err!(
            "HATS write: cannot move the catalog to {}: {e}",
            out.display()
        )
    })?;
    Ok(HatsWriteSummary {
        root: out.to_path_buf(),
        rows: sorted.num_rows() as u64,
        partitions: leaves,
    })
}

fn column_f64(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    let Ok(idx) = batch.schema().index_of(name) else {
        return plan_err!(
            "HATS write: position column '{name}' is not in the input (columns: {})",
            batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let t = batch.schema().field(idx).data_type().clone();
    if !is_float(&t) {
        return plan_err!(
            "HATS write: position column '{name}' is {t}; RA and Dec must be floating point degrees"
        );
    }
    let c = cast(batch.column(idx), &DataType::Float64)
        .map_err(|e| exec_datafusion_err!("HATS write: column '{name}' is not numeric: {e}"))?;
    Ok(c.as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| exec_datafusion_err!("HATS write: column '{name}' is not numeric"))?
        .clone())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> datafusion::error::DataFusionError + '_ {
    move |e| exec_datafusion_err!("HATS write: {}: {e}", path.display())
}

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_max_row_group_row_count(Some(500_000))
        .build()
}

fn write_tree(
    root: &Path,
    sorted: &RecordBatch,
    h29: &Int64Array,
    leaves: &[(Pixel, u64)],
    name: &str,
    opts: &HatsWriteOptions,
) -> Result<()> {
    let dataset = root.join("dataset");
    std::fs::create_dir_all(&dataset).map_err(io(&dataset))?;
    let schema = sorted.schema();
    let values = h29.values();
    let mut metadata_parts: Vec<(String, ParquetMetaData)> = Vec::new();
    let mut bytes = 0u64;
    for (px, count) in leaves {
        let range = px.range29();
        let start = values.partition_point(|&h| (h as u64) < range.start);
        let end = values.partition_point(|&h| (h as u64) < range.end);
        if (end - start) as u64 != *count {
            return exec_err!(
                "HATS write: leaf Norder={}/Npix={} holds {} rows, the histogram said {count}",
                px.order(),
                px.npix(),
                end - start
            );
        }
        let rel = px.relative_path(".parquet");
        let path = dataset.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let file = File::create(&path).map_err(io(&path))?;
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))?;
        w.write(&sorted.slice(start, end - start))?;
        let md = w.close()?;
        bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        metadata_parts.push((rel, md));
    }

    // _common_metadata: the schema alone.
    let common = dataset.join("_common_metadata");
    let w = ArrowWriter::try_new(
        File::create(&common).map_err(io(&common))?,
        schema.clone(),
        None,
    )?;
    w.close()?;

    // _metadata: every leaf's row groups, each column chunk pointing at its file.
    write_summary_metadata(&dataset.join("_metadata"), &metadata_parts)?;

    // partition_info.csv
    let mut csv = String::from("Norder,Npix\n");
    for (px, _) in leaves {
        csv.push_str(&format!("{},{}\n", px.order(), px.npix()));
    }
    let p = root.join("partition_info.csv");
    std::fs::write(&p, csv).map_err(io(&p))?;

    let props = properties_text(sorted.num_rows() as u64, leaves, bytes, name, opts);
    for file in ["hats.properties", "properties"] {
        let p = root.join(file);
        std::fs::write(&p, &props).map_err(io(&p))?;
    }
    Ok(())
}

fn write_summary_metadata(path: &Path, parts: &[(String, ParquetMetaData)]) -> Result<()> {
    let Some((_, first)) = parts.first() else {
        // An empty catalog: the schema-only file stands in.
        return Ok(());
    };
    let mut builder = ParquetMetaDataBuilder::new(first.file_metadata().clone());
    for (rel, md) in parts {
        for rg in md.row_groups() {
            let columns = rg
                .columns()
                .iter()
                .map(|c| c.clone().into_builder().set_file_path(rel.clone()).build())
                .collect::<parquet::errors::Result<Vec<_>>>()?;
            builder = builder.add_row_group(
                rg.clone()
                    .into_builder()
                    .set_column_metadata(columns)
                    .build()?,
            );
        }
    }
    let merged = builder.build();
    let mut f = File::create(path).map_err(io(path))?;
    f.write_all(b"PAR1").map_err(io(path))?;
    ParquetMetaDataWriter::new(&mut f, &merged).finish()?;
    f.flush().map_err(io(path))?;
    Ok(())
}

fn properties_text(
    rows: u64,
    leaves: &[(Pixel, u64)],
    bytes: u64,
    name: &str,
    opts: &HatsWriteOptions,
) -> String {
    let max_order = leaves.iter().map(|(p, _)| p.order()).max().unwrap_or(0);
    let sky_fraction: f64 = leaves
        .iter()
        .map(|(p, _)| Pixel::count_at(p.order()).map_or(0.0, |n| 1.0 / n as f64))
        .sum();
    let date = opts.creation_date.clone().unwrap_or_else(now_utc);
    let catalog_name = opts
        .catalog_name
        .clone()
        .unwrap_or_else(|| name.to_string());
    let mut s = String::from("#HATS catalog\n");
    let mut kv = |k: &str, v: String| s.push_str(&format!("{k}={v}\n"));
    kv("obs_collection", catalog_name);
    kv("dataproduct_type", "object".into());
    kv("hats_nrows", rows.to_string());
    kv("hats_col_ra", opts.ra_column.clone());
    kv("hats_col_dec", opts.dec_column.clone());
    kv("hats_col_healpix", "_healpix_29".into());
    kv("hats_col_healpix_order", "29".into());
    kv("hats_npix_suffix", ".parquet".into());
    kv("hats_max_rows", opts.pixel_threshold.to_string());
    if !opts.sort_columns.is_empty() {
        kv("hats_cols_sort", opts.sort_columns.join(","));
    }
    kv("hats_estsize", (bytes / 1024).to_string());
    kv("moc_sky_fraction", format!("{sky_fraction:.5}"));
    kv("hats_builder", format!("pz v{}", env!("CARGO_PKG_VERSION")));
    kv("hats_creation_date", date);
    kv("hats_version", "v1.0".into());
    kv("hats_order", max_order.to_string());
    s
}

/// The current UTC time as `YYYY-MM-DDTHH:MMUTC`, as hats writes it.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}
