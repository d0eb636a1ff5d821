//! Catalog properties: HATS `hats.properties` / `properties`, HiPSCat `catalog_info.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::common::{plan_datafusion_err, plan_err, Result};

/// Which on-disk layout a catalog uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// HATS v1.0: properties file, partitions under `dataset/`.
    Hats,
    /// Older HiPSCat: `catalog_info.json`, `Norder=` folders at the root.
    Hipscat,
}

/// What a catalog holds (`dataproduct_type` / `catalog_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogType {
    Object,
    Source,
    Margin,
    Index,
    Association,
    Map,
    Other(String),
}

impl CatalogType {
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "object" => CatalogType::Object,
            "source" => CatalogType::Source,
            "margin" => CatalogType::Margin,
            "index" => CatalogType::Index,
            "association" => CatalogType::Association,
            "map" => CatalogType::Map,
            other => CatalogType::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CatalogType::Object => "object",
            CatalogType::Source => "source",
            CatalogType::Margin => "margin",
            CatalogType::Index => "index",
            CatalogType::Association => "association",
            CatalogType::Map => "map",
            CatalogType::Other(s) => s,
        }
    }
}

/// The properties pz needs from a catalog, plus every raw key for display.
#[derive(Debug, Clone)]
pub struct CatalogProperties {
    pub layout: Layout,
    pub name: String,
    pub catalog_type: CatalogType,
    pub total_rows: Option<u64>,
    pub ra_column: String,
    pub dec_column: String,
    /// Spatial index column (`_healpix_29` in HATS, `_hipscat_index` in HiPSCat).
    pub healpix_column: Option<String>,
    /// Suffix of a pixel's path: `.parquet` (one file) or `/` (a directory of files).
    pub npix_suffix: String,
    /// For margins: the primary catalog, as written (relative to the margin's directory or
    /// absolute).
    pub primary_table_url: Option<String>,
    pub margin_threshold_arcsec: Option<f64>,
    /// Which file the properties came from, for error messages.
    pub source_file: PathBuf,
    pub raw: BTreeMap<String, String>,
}

/// Parses Java-style properties: `key=value` lines, `#`/`!` comments, blank lines ignored.
pub fn parse_java_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
            continue;
        }
        let split = l.find(['=', ':']);
        let (k, v) = match split {
            Some(i) => (&l[..i], &l[i + 1..]),
            None => (l, ""),
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    out
}

impl CatalogProperties {
    /// Reads the properties of the catalog at `root`, trying `hats.properties`, `properties`
    /// and `catalog_info.json` in that order.
    pub fn read(root: &Path) -> Result<Self> {
        for name in ["hats.properties", "properties"] {
            let p = root.join(name);
            if p.is_file() {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| plan_datafusion_err!("cannot read {}: {e}", p.display()))?;
                return Self::from_hats(parse_java_properties(&text), p);
            }
        }
        let p = root.join("catalog_info.json");
        if p.is_file() {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| plan_datafusion_err!("cannot read {}: {e}", p.display()))?;
            return Self::from_hipscat(&text, p);
        }
        if !root.exists() {
            return plan_err!("HATS catalog {} does not exist", root.display());
        }
        plan_err!(
            "{} is not a HATS catalog: it has no hats.properties, properties or catalog_info.json",
            root.display()
        )
    }

    fn from_hats(raw: BTreeMap<String, String>, source_file: PathBuf) -> Result<Self> {
        let need = |key: &str| -> Result<String> {
            raw.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| {
                    plan_datafusion_err!(
                        "{}: required key '{key}' is missing",
                        source_file.display()
                    )
                })
        };
        let catalog_type = CatalogType::parse(&need("dataproduct_type")?);
        let positional = matches!(
            catalog_type,
            CatalogType::Object | CatalogType::Source | CatalogType::Margin
        );
        let (ra_column, dec_column) = if positional {
            (need("hats_col_ra")?, need("hats_col_dec")?)
        } else {
            (
                raw.get("hats_col_ra").cloned().unwrap_or_default(),
                raw.get("hats_col_dec").cloned().unwrap_or_default(),
            )
        };
        let total_rows = match raw.get("hats_nrows") {
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                plan_datafusion_err!(
                    "{}: hats_nrows '{v}' is not a row count",
                    source_file.display()
                )
            })?),
            None => None,
        };
        let margin_threshold_arcsec = match raw.get("hats_margin_threshold") {
            Some(v) => Some(v.parse::<f64>().map_err(|_| {
                plan_datafusion_err!(
                    "{}: hats_margin_threshold '{v}' is not a number",
                    source_file.display()
                )
            })?),
            None => None,
        };
        if let Some(order) = raw.get("hats_col_healpix_order") {
            if order != "29" {
                return plan_err!(
                    "{}: hats_col_healpix_order={order} is not supported (pz reads order 29)",
                    source_file.display()
                );
            }
        }
        Ok(CatalogProperties {
            layout: Layout::Hats,
            name: raw
                .get("obs_collection")
                .cloned()
                .unwrap_or_else(|| dir_name(&source_file)),
            catalog_type,
            total_rows,
            ra_column,
            dec_column,
            healpix_column: Some(
                raw.get("hats_col_healpix")
                    .cloned()
                    .unwrap_or_else(|| "_healpix_29".to_string()),
            ),
            npix_suffix: raw
                .get("hats_npix_suffix")
                .cloned()
                .unwrap_or_else(|| ".parquet".to_string()),
            primary_table_url: raw.get("hats_primary_table_url").cloned(),
            margin_threshold_arcsec,
            source_file,
            raw,
        })
    }

    fn from_hipscat(text: &str, source_file: PathBuf) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| plan_datafusion_err!("{}: not valid JSON: {e}", source_file.display()))?;
        let obj = v.as_object().ok_or_else(|| {
            plan_datafusion_err!("{}: expected a JSON object", source_file.display())
        })?;
        let get = |k: &str| obj.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let catalog_type = CatalogType::parse(&get("catalog_type").ok_or_else(|| {
            plan_datafusion_err!(
                "{}: required key 'catalog_type' is missing",
                source_file.display()
            )
        })?);
        let raw = obj
            .iter()
            .map(|(k, v)| {
                let s = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), s)
            })
            .collect();
        Ok(CatalogProperties {
            layout: Layout::Hipscat,
            name: get("catalog_name").unwrap_or_else(|| dir_name(&source_file)),
            catalog_type,
            total_rows: obj.get("total_rows").and_then(|x| x.as_u64()),
            ra_column: get("ra_column").unwrap_or_else(|| "ra".to_string()),
            dec_column: get("dec_column").unwrap_or_else(|| "dec".to_string()),
            healpix_column: Some("_hipscat_index".to_string()),
            npix_suffix: ".parquet".to_string(),
            primary_table_url: get("primary_catalog"),
            margin_threshold_arcsec: obj.get("margin_threshold").and_then(|x| x.as_f64()),
            source_file,
            raw,
        })
    }
}

fn dir_name(source_file: &Path) -> String {
    source_file
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "catalog".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_properties() {
        let p =
            parse_java_properties("#HATS catalog\nobs_collection=objects\n\n a = b = c \nflag\n");
        assert_eq!(p["obs_collection"], "objects");
        assert_eq!(p["a"], "b = c");
        assert_eq!(p["flag"], "");
    }

    #[test]
    fn missing_ra_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hats.properties"),
            "dataproduct_type=object\nhats_col_dec=dec\n",
        )
        .unwrap();
        let e = CatalogProperties::read(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("hats_col_ra") && e.contains("hats.properties"),
            "{e}"
        );
    }
}
