//! Opening a HATS catalog: properties, partition list, schema, linked margin.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
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
                self.pixel.order,
                self.pixel.pixel,
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
        let properties = CatalogProperties::read(&root)?;
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
                    w[0].pixel.order,
                    w[0].pixel.pixel,
                    w[1].pixel.order,
                    w[1].pixel.pixel
                );
            }
        }
        let schema = read_schema(&root, &dataset, &partitions)?;
        for (what, col) in [
            ("RA", &properties.ra_column),
            ("Dec", &properties.dec_column),
        ] {
            if !col.is_empty() && schema.field_with_name(col).is_err() {
                return plan_err!(
                    "HATS catalog {}: {what} column '{col}' named in {} is not in the schema",
                    root.display(),
                    properties.source_file.display()
                );
            }
        }
        Ok(HatsCatalog {
            root,
            properties,
            partitions,
            schema,
            partition_source,
        })
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
            .map(|p| p.pixel.order)
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
        let text = std::fs::read_to_string(&csv)
            .map_err(|e| plan_datafusion_err!("cannot read {}: {e}", csv.display()))?;
        return Ok((
            parse_partition_csv(&text, &csv, dataset, props)?,
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

fn parse_partition_csv(
    text: &str,
    file: &Path,
    dataset: &Path,
    props: &CatalogProperties,
) -> Result<Vec<Partition>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| plan_datafusion_err!("{}: empty file", file.display()))?
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
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let parse = |idx: usize, what: &str| -> Result<u64> {
            cells
                .get(idx)
                .and_then(|c| c.parse::<u64>().ok())
                .ok_or_else(|| {
                    plan_datafusion_err!(
                        "{} line {}: bad {what} in '{line}'",
                        file.display(),
                        i + 2
                    )
                })
        };
        let order = parse(iorder, "Norder")?;
        let pixel = parse(ipix, "Npix")?;
        if order > 29 || pixel >= Pixel::count_at(order as u8) {
            return plan_err!(
                "{} line {}: Norder={order}/Npix={pixel} is not a HEALPix pixel",
                file.display(),
                i + 2
            );
        }
        let num_rows = irows
            .and_then(|idx| cells.get(idx))
            .and_then(|c| c.parse().ok());
        let px = Pixel::new(order as u8, pixel);
        out.push(Partition {
            pixel: px,
            path: dataset.join(px.relative_path(&props.npix_suffix)),
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
        let px = pixel_from_path(path).ok_or_else(|| {
            plan_datafusion_err!(
                "{}: file_path '{path}' names no Norder/Npix",
                metadata.display()
            )
        })?;
        *rows.entry(px).or_default() += rg.num_rows() as u64;
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

/// Parses `.../Norder=K/Dir=D/Npix=N[.parquet][/...]` into a pixel.
pub fn pixel_from_path(path: &str) -> Option<Pixel> {
    let mut order = None;
    let mut pixel = None;
    for part in path.split(['/', '\\']) {
        if let Some(v) = part.strip_prefix("Norder=") {
            order = v.parse::<u8>().ok();
        } else if let Some(v) = part.strip_prefix("Npix=") {
            let v = v.split('.').next().unwrap_or(v);
            pixel = v.parse::<u64>().ok();
        }
    }
    Some(Pixel::new(order?, pixel?))
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

    #[test]
    fn pixel_paths() {
        assert_eq!(
            pixel_from_path("Norder=5/Dir=0/Npix=4111.parquet"),
            Some(Pixel::new(5, 4111))
        );
        assert_eq!(
            pixel_from_path("dataset/Norder=6/Dir=10000/Npix=16537/part0.parquet"),
            Some(Pixel::new(6, 16537))
        );
        assert_eq!(pixel_from_path("x.parquet"), None);
    }
}
