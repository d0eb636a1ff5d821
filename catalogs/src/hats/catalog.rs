//! Opening a HATS catalog: properties, partition list, schema, linked margin.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::{plan_datafusion_err, plan_err, Result};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::pixel::Pixel;
use super::properties::{CatalogProperties, CatalogType, Layout};

/// One leaf of the partition tree.
#[derive(Debug, Clone)]
pub struct Partition {
    pub pixel: Pixel,
    /// The pixel's file, or its directory when `npix_suffix` is `/`.
    pub path: PathBuf,
    /// Rows, when the catalog's metadata says.
    pub num_rows: Option<u64>,
}

impl Partition {
    /// The Parquet files of this partition, with their sizes; a missing file is an error
    /// naming it.
    pub fn files(&self, catalog: &Path) -> Result<Vec<(PathBuf, u64)>> {
        let meta = std::fs::metadata(&self.path).map_err(|_| {
            plan_datafusion_err!(
                "HATS catalog {}: partition Norder={}/Npix={} is listed in its metadata but {} is missing",
                catalog.display(),
                self.pixel.order(),
                self.pixel.npix(),
                self.path.display()
            )
        })?;
        if meta.is_file() {
            return Ok(vec![(self.path.clone(), meta.len())]);
        }
        let mut files = Vec::new();
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| plan_datafusion_err!("cannot list {}: {e}", self.path.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| plan_datafusion_err!("{}: {e}", self.path.display()))?;
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "parquet") {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.push((p, len));
            }
        }
        files.sort();
        Ok(files)
    }
}

/// An opened HATS (or HiPSCat) catalog.
#[derive(Debug, Clone)]
pub struct HatsCatalog {
    /// Absolute, canonical directory of the catalog.
    pub root: PathBuf,
    pub properties: CatalogProperties,
    /// Leaves in nested order (ascending `_healpix_29`).
    pub partitions: Vec<Partition>,
    pub schema: SchemaRef,
    /// Where the partition list came from, for display.
    pub partition_source: &'static str,
}

impl HatsCatalog {
    /// Opens the catalog at `location` (a local path or `file://` URL).
    pub fn open(location: &str) -> Result<Self> {
        let root = local_path(location)?;
        let root = std::fs::canonicalize(&root)
            .map_err(|_| plan_datafusion_err!("HATS catalog {} does not exist", root.display()))?;
        let mut properties = CatalogProperties::read(&root)?;
        let dataset = match properties.layout {
            Layout::Hats => root.join("dataset"),
            Layout::Hipscat => root.clone(),
        };
        let (mut partitions, partition_source) = read_partition_list(&root, &dataset, &properties)?;
        partitions.sort_by_key(|p| p.pixel.range29().start);
        for w in partitions.windows(2) {
            if w[0].pixel.overlaps(&w[1].pixel) {
                return plan_err!(
                    "HATS catalog {}: partitions Norder={}/Npix={} and Norder={}/Npix={} overlap",
                    root.display(),
                    w[0].pixel.order(),
                    w[0].pixel.npix(),
                    w[1].pixel.order(),
                    w[1].pixel.npix()
                );
            }
        }
        check_row_count(&root, &properties, &partitions, partition_source)?;
        let schema = read_schema(&root, &dataset, &partitions)?;
        check_columns(&root, &mut properties, &schema)?;
        Ok(HatsCatalog {
            root,
            properties,
            partitions,
            schema,
            partition_source,
        })
    }

    /// Checks that a partition file's schema agrees with the catalog's: every catalog
    /// column present, with the catalog's type (string and binary encodings, and
    /// dictionaries of them, count as one). Otherwise the file would be read with nulls
    /// for the missing column, or fail later in a cast that names neither file nor column.
    pub fn check_file_schema(&self, file: &Path, file_schema: &Schema) -> Result<()> {
        for f in self.schema.fields() {
            let Ok(got) = file_schema.field_with_name(f.name()) else {
                return plan_err!(
                    "HATS catalog {}: partition file {} has no column '{}', which the catalog's schema has",
                    self.root.display(),
                    file.display(),
                    f.name()
                );
            };
            if !same_type(got.data_type(), f.data_type()) {
                return plan_err!(
                    "HATS catalog {}: partition file {} has column '{}' as {}, but the catalog's schema says {}",
                    self.root.display(),
                    file.display(),
                    f.name(),
                    got.data_type(),
                    f.data_type()
                );
            }
        }
        Ok(())
    }

    /// Reads the footer of a partition file and checks its schema (see
    /// [`Self::check_file_schema`]).
    pub fn check_file(&self, file: &Path) -> Result<()> {
        let f = File::open(file)
            .map_err(|e| plan_datafusion_err!("cannot open {}: {e}", file.display()))?;
        let meta = ArrowReaderMetadata::load(&f, Default::default()).map_err(|e| {
            plan_datafusion_err!("{} is not a readable Parquet file: {e}", file.display())
        })?;
        self.check_file_schema(file, meta.schema())
    }

    pub fn name(&self) -> &str {
        &self.properties.name
    }

    pub fn is_margin(&self) -> bool {
        self.properties.catalog_type == CatalogType::Margin
    }

    /// Deepest partition order (0 for an empty catalog).
    pub fn max_order(&self) -> u8 {
        self.partitions
            .iter()
            .map(|p| p.pixel.order())
            .max()
            .unwrap_or(0)
    }

    /// For a margin catalog: its primary catalog's directory, resolved from
    /// `hats_primary_table_url` (relative to the margin's own directory, or absolute).
    pub fn primary_catalog_dir(&self) -> Option<PathBuf> {
        let url = self.properties.primary_table_url.as_deref()?;
        let p = local_path(url).ok()?;
        let p = if p.is_absolute() {
            p
        } else {
            self.root.join(p)
        };
        Some(std::fs::canonicalize(&p).unwrap_or(p))
    }

    /// Finds the margin catalog of this (primary) catalog among its sibling directories:
    /// margins whose `hats_primary_table_url` resolves here. With several, the widest.
    pub fn discover_margin(&self) -> Result<Option<HatsCatalog>> {
        let Some(parent) = self.root.parent() else {
            return Ok(None);
        };
        let Ok(entries) = std::fs::read_dir(parent) else {
            return Ok(None);
        };
        let mut best: Option<HatsCatalog> = None;
        for entry in entries.flatten() {
            let dir = entry.path();
            if dir == self.root || !dir.is_dir() {
                continue;
            }
            let Ok(props) = CatalogProperties::read(&dir) else {
                continue;
            };
            if props.catalog_type != CatalogType::Margin {
                continue;
            }
            let margin = HatsCatalog::open(&dir.to_string_lossy())?;
            if margin.primary_catalog_dir().as_deref() != Some(self.root.as_path()) {
                continue;
            }
            let wider = match &best {
                None => true,
                Some(b) => {
                    margin.properties.margin_threshold_arcsec.unwrap_or(0.0)
                        > b.properties.margin_threshold_arcsec.unwrap_or(0.0)
                }
            };
            if wider {
                best = Some(margin);
            }
        }
        Ok(best)
    }
}

/// Turns a location (path or `file://` URL) into a local path.
pub fn local_path(location: &str) -> Result<PathBuf> {
    if let Some(rest) = location.strip_prefix("file://") {
        return Ok(PathBuf::from(rest));
    }
    if location.contains("://") {
        return plan_err!(
            "HATS location '{location}': only local paths and file:// URLs are supported so far"
        );
    }
    Ok(PathBuf::from(location))
}

fn read_partition_list(
    root: &Path,
    dataset: &Path,
    props: &CatalogProperties,
) -> Result<(Vec<Partition>, &'static str)> {
    let csv = root.join("partition_info.csv");
    let metadata = dataset.join("_metadata");
    if csv.is_file() {
        let bytes = std::fs::read(&csv)
            .map_err(|e| plan_datafusion_err!("cannot read {}: {e}", csv.display()))?;
        return Ok((
            parse_partition_info(&bytes, &csv, dataset, &props.npix_suffix)?,
            "partition_info.csv",
        ));
    }
    if metadata.is_file() {
        return Ok((
            partitions_from_metadata(&metadata, dataset, props)?,
            "_metadata",
        ));
    }
    plan_err!(
        "HATS catalog {}: no partition list: neither partition_info.csv nor {} exists",
        root.display(),
        metadata.display()
    )
}

/// Parses the bytes of a `partition_info.csv`: a header naming `Norder` and `Npix` (and
/// optionally `num_rows`; other columns such as `Dir` are ignored), then one pixel per line.
/// `file` names the file in errors; partition paths are `dataset/Norder=K/Dir=D/Npix=N` +
/// `npix_suffix`. Any input gives a list or an error naming the file and line, never a panic.
pub fn parse_partition_info(
    bytes: &[u8],
    file: &Path,
    dataset: &Path,
    npix_suffix: &str,
) -> Result<Vec<Partition>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| plan_datafusion_err!("{}: not UTF-8 text: {e}", file.display()))?;
    // pandas may write a byte-order mark; it is not part of the first column's name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| plan_datafusion_err!("{}: empty file", file.display()))?
        .1
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(iorder), Some(ipix)) = (col("Norder"), col("Npix")) else {
        return plan_err!(
            "{}: header must name Norder and Npix columns",
            file.display()
        );
    };
    let irows = col("num_rows");
    let mut out = Vec::new();
    for (i, line) in lines {
        let lineno = i + 1;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let parse = |idx: usize, what: &str| -> Result<u64> {
            cells
                .get(idx)
                .and_then(|c| c.parse::<u64>().ok())
                .ok_or_else(|| {
                    plan_datafusion_err!("{} line {lineno}: bad {what} in '{line}'", file.display())
                })
        };
        let order = parse(iorder, "Norder")?;
        let npix = parse(ipix, "Npix")?;
        // An order past u8 is as impossible as one past 29; Pixel::new words both.
        let px = Pixel::new(u8::try_from(order).unwrap_or(u8::MAX), npix).map_err(|e| {
            let why = e.message();
            let why = why.split_once(": ").map_or(why.as_ref(), |(_, w)| w);
            plan_datafusion_err!(
                "{} line {lineno}: Norder={order}/Npix={npix} is not a HEALPix pixel: {why}",
                file.display()
            )
        })?;
        let num_rows = match irows {
            None => None,
            Some(idx) => Some(parse(idx, "num_rows")?),
        };
        out.push(Partition {
            pixel: px,
            path: dataset.join(px.relative_path(npix_suffix)),
            num_rows,
        });
    }
    Ok(out)
}

/// Reads the partition list from `_metadata` row groups' file paths, with row counts.
fn partitions_from_metadata(
    metadata: &Path,
    dataset: &Path,
    props: &CatalogProperties,
) -> Result<Vec<Partition>> {
    let f = File::open(metadata)
        .map_err(|e| plan_datafusion_err!("cannot open {}: {e}", metadata.display()))?;
    let reader = SerializedFileReader::new(f).map_err(|e| {
        plan_datafusion_err!("{} is not a readable Parquet file: {e}", metadata.display())
    })?;
    let mut rows: BTreeMap<Pixel, u64> = BTreeMap::new();
    for rg in reader.metadata().row_groups() {
        let Some(path) = rg.columns().first().and_then(|c| c.file_path()) else {
            return plan_err!(
                "{}: a row group has no file_path, cannot tell its partition",
                metadata.display()
            );
        };
        let px = pixel_from_path(path)
            .map_err(|e| plan_datafusion_err!("{}: {}", metadata.display(), e.message()))?;
        let n = u64::try_from(rg.num_rows()).map_err(|_| {
            plan_datafusion_err!(
                "{}: a row group of {path} has {} rows",
                metadata.display(),
                rg.num_rows()
            )
        })?;
        let e = rows.entry(px).or_default();
        *e = e.saturating_add(n);
    }
    Ok(rows
        .into_iter()
        .map(|(px, n)| Partition {
            pixel: px,
            path: dataset.join(px.relative_path(&props.npix_suffix)),
            num_rows: Some(n),
        })
        .collect())
}

/// Parses `.../Norder=K/Dir=D/Npix=N[.parquet][/...]` into a pixel; a path without both
/// parts, or naming a pixel HEALPix does not have, is an error.
pub fn pixel_from_path(path: &str) -> Result<Pixel> {
    let mut order = None;
    let mut npix = None;
    for part in path.split(['/', '\\']) {
        if let Some(v) = part.strip_prefix("Norder=") {
            order = Some(v);
        } else if let Some(v) = part.strip_prefix("Npix=") {
            npix = Some(v.split('.').next().unwrap_or(v));
        }
    }
    let (Some(order), Some(npix)) = (order, npix) else {
        return plan_err!("file_path '{path}' names no Norder=/Npix= pixel");
    };
    let (Ok(o), Ok(n)) = (order.parse::<u8>(), npix.parse::<u64>()) else {
        return plan_err!("file_path '{path}': Norder={order}/Npix={npix} is not a HEALPix pixel");
    };
    Pixel::new(o, n).map_err(|e| plan_datafusion_err!("file_path '{path}': {}", e.message()))
}

/// The partition list must account for the rows the properties promise: a list that lost
/// its lines (a header alone) would otherwise read as an empty catalog.
fn check_row_count(
    root: &Path,
    props: &CatalogProperties,
    partitions: &[Partition],
    source: &str,
) -> Result<()> {
    let Some(total) = props.total_rows else {
        return Ok(());
    };
    if partitions.is_empty() && total > 0 {
        return plan_err!(
            "HATS catalog {}: {source} lists no partitions, but {} says the catalog has {total} rows",
            root.display(),
            props.source_file.display()
        );
    }
    let counts: Option<Vec<u64>> = partitions.iter().map(|p| p.num_rows).collect();
    if let Some(counts) = counts {
        let listed = counts.iter().fold(0u64, |a, &b| a.saturating_add(b));
        if listed != total {
            return plan_err!(
                "HATS catalog {}: {source} counts {listed} rows over its {} partitions, but {} says {total}",
                root.display(),
                partitions.len(),
                props.source_file.display()
            );
        }
    }
    Ok(())
}

/// The columns the properties name must exist with a usable type: RA/Dec floating point
/// (an integer or string "position" gives wrong matches, not an error), the HEALPix index
/// an integer. A defaulted index column that is absent means "prune by RA/Dec".
fn check_columns(root: &Path, props: &mut CatalogProperties, schema: &Schema) -> Result<()> {
    for (key, col) in [
        (props.ra_key(), &props.ra_column),
        (props.dec_key(), &props.dec_column),
    ] {
        if col.is_empty() {
            continue;
        }
        let Ok(field) = schema.field_with_name(col) else {
            return plan_err!(
                "HATS catalog {}: {key} names column '{col}', which is not in the schema ({})",
                root.display(),
                props.source_file.display()
            );
        };
        if !is_float(field.data_type()) {
            return plan_err!(
                "HATS catalog {}: {key} names column '{col}' of type {}; a coordinate column must be floating point degrees ({})",
                root.display(),
                field.data_type(),
                props.source_file.display()
            );
        }
    }
    if props.layout == Layout::Hats {
        if let Some(col) = props.healpix_column.clone() {
            match schema.field_with_name(&col) {
                Ok(f) if matches!(f.data_type(), DataType::Int64 | DataType::UInt64) => {}
                Ok(f) => {
                    return plan_err!(
                        "HATS catalog {}: hats_col_healpix names column '{col}' of type {}; the HEALPix index must be a 64-bit integer ({})",
                        root.display(),
                        f.data_type(),
                        props.source_file.display()
                    )
                }
                Err(_) if props.healpix_column_given => {
                    return plan_err!(
                        "HATS catalog {}: hats_col_healpix names column '{col}', which is not in the schema ({})",
                        root.display(),
                        props.source_file.display()
                    )
                }
                Err(_) => props.healpix_column = None,
            }
        }
    }
    Ok(())
}

/// Floating-point types, the only ones a coordinate in degrees can have.
pub fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

/// Types equal up to how strings and bytes are stored (dictionaries included): Parquet
/// writers differ there while the values read the same.
fn same_type(a: &DataType, b: &DataType) -> bool {
    fn family(t: &DataType) -> &DataType {
        match t {
            DataType::Dictionary(_, v) => family(v),
            DataType::LargeUtf8 | DataType::Utf8View => &DataType::Utf8,
            DataType::LargeBinary | DataType::BinaryView => &DataType::Binary,
            other => other,
        }
    }
    a == b || family(a) == family(b)
}

fn read_schema(root: &Path, dataset: &Path, partitions: &[Partition]) -> Result<SchemaRef> {
    let mut candidates = vec![dataset.join("_common_metadata"), dataset.join("_metadata")];
    if let Some(first) = partitions.first() {
        if let Ok(files) = first.files(root) {
            candidates.extend(files.into_iter().map(|(p, _)| p));
        } else {
            candidates.push(first.path.clone());
        }
    }
    for path in candidates {
        if !path.is_file() {
            continue;
        }
        let f = File::open(&path)
            .map_err(|e| plan_datafusion_err!("cannot open {}: {e}", path.display()))?;
        let meta = ArrowReaderMetadata::load(&f, Default::default()).map_err(|e| {
            plan_datafusion_err!("{} is not a readable Parquet file: {e}", path.display())
        })?;
        // Keep the field-level metadata but drop pandas' bookkeeping at schema level.
        let schema = meta.schema().as_ref().clone();
        let mut md = schema.metadata().clone();
        md.remove("pandas");
        return Ok(Arc::new(schema.with_metadata(md)));
    }
    plan_err!(
        "HATS catalog {}: no schema: no _common_metadata, _metadata or partition file found",
        root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(order: u8, npix: u64) -> Pixel {
        Pixel::new(order, npix).unwrap()
    }

    #[test]
    fn pixel_paths() {
        assert_eq!(
            pixel_from_path("Norder=5/Dir=0/Npix=4111.parquet").unwrap(),
            px(5, 4111)
        );
        assert_eq!(
            pixel_from_path("dataset/Norder=6/Dir=10000/Npix=16537/part0.parquet").unwrap(),
            px(6, 16537)
        );
        let e = pixel_from_path("x.parquet").unwrap_err().to_string();
        assert!(e.contains("names no Norder=/Npix="), "{e}");
    }

    #[test]
    fn impossible_pixels_in_paths_are_errors() {
        for (path, words) in [
            ("Norder=30/Dir=0/Npix=0.parquet", "at most 29"),
            ("Norder=255/Dir=0/Npix=1.parquet", "at most 29"),
            ("Norder=256/Dir=0/Npix=1.parquet", "Norder=256/Npix=1"),
            ("Norder=0/Dir=0/Npix=12.parquet", "Npix 0 to 11"),
            ("Norder=1/Dir=0/Npix=-1.parquet", "Norder=1/Npix=-1"),
        ] {
            let e = pixel_from_path(path).unwrap_err().to_string();
            assert!(e.contains(words) && e.contains(path), "{path}: {e}");
        }
    }

    fn parse(text: &str) -> Result<Vec<Partition>> {
        parse_partition_info(
            text.as_bytes(),
            Path::new("/c/partition_info.csv"),
            Path::new("/c/dataset"),
            ".parquet",
        )
    }

    #[test]
    fn partition_info_lines() {
        let parts =
            parse("\u{feff}Norder,Dir,Npix,num_rows\r\n5,0,4111,10\r\n\r\n6,10000,16537,3\n")
                .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].pixel, px(6, 16537));
        assert_eq!(parts[1].num_rows, Some(3));
        assert_eq!(
            parts[0].path,
            Path::new("/c/dataset/Norder=5/Dir=0/Npix=4111.parquet")
        );
        let e = parse("Norder,Npix\n30,0\n").unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("Norder=30/Npix=0"),
            "{e}"
        );
        let e = parse("Norder,Npix\n300,0\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("Norder=300"), "{e}");
        let e = parse("Norder,Npix\n1,48\n").unwrap_err().to_string();
        assert!(e.contains("Npix 0 to 47"), "{e}");
        let e = parse("Norder,Npix,num_rows\n1,4,many\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad num_rows"), "{e}");
        let e = parse("Norder,Npix\n1\n").unwrap_err().to_string();
        assert!(e.contains("bad Npix"), "{e}");
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("empty file"), "{e}");
        assert!(parse("Norder,Npix\n").unwrap().is_empty());
    }

    #[test]
    fn partition_info_arbitrary_bytes_never_panic() {
        let sample = "\u{feff}Norder,Npix,num_rows\n5,4111,18446744073709551615\n29,6917529027641081855,1\n,,\n\u{e9},\u{1F600}\n";
        for end in 0..=sample.len() {
            let _ = parse_partition_info(
                &sample.as_bytes()[..end],
                Path::new("p"),
                Path::new("d"),
                "/",
            );
        }
        for soup in [
            &b"\xff\xfe"[..],
            b"Npix,Norder\n\x00,\x00",
            b",,,\n,,,",
            b"Norder,Npix\n99999999999999999999,1",
        ] {
            let _ = parse_partition_info(soup, Path::new("p"), Path::new("d"), ".parquet");
        }
    }

    #[test]
    fn string_encodings_are_one_type() {
        assert!(same_type(&DataType::Utf8, &DataType::LargeUtf8));
        assert!(same_type(
            &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            &DataType::Utf8View
        ));
        assert!(!same_type(&DataType::Utf8, &DataType::Int64));
        assert!(!same_type(&DataType::Float32, &DataType::Float64));
    }
}
