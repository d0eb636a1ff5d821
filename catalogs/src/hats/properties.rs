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

/// What a catalog holds (`dataproduct_type` / `catalog_type`): the types HATS defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogType {
    Object,
    Source,
    Margin,
    Index,
    Association,
    Map,
}

impl CatalogType {
    pub const ALL: [CatalogType; 6] = [
        CatalogType::Object,
        CatalogType::Source,
        CatalogType::Margin,
        CatalogType::Index,
        CatalogType::Association,
        CatalogType::Map,
    ];

    /// The type a `dataproduct_type` value names; `None` for anything HATS does not define.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            CatalogType::Object => "object",
            CatalogType::Source => "source",
            CatalogType::Margin => "margin",
            CatalogType::Index => "index",
            CatalogType::Association => "association",
            CatalogType::Map => "map",
        }
    }

    /// Object, source and margin catalogs hold positions; the others need not.
    pub fn is_positional(&self) -> bool {
        matches!(
            self,
            CatalogType::Object | CatalogType::Source | CatalogType::Margin
        )
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
    /// True when `hats_col_healpix` names the index column (rather than the default), so
    /// a catalog without that column is an error instead of one read by RA/Dec.
    pub healpix_column_given: bool,
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

/// Parses Java-style properties: `key=value` (or `key:value`) lines, `#`/`!` comments,
/// blank lines ignored. Never fails: a line without a separator is a key with an empty value.
pub fn parse_java_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
            continue;
        }
        let (k, v) = l.split_once(['=', ':']).unwrap_or((l, ""));
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
                let bytes = std::fs::read(&p)
                    .map_err(|e| plan_datafusion_err!("cannot read {}: {e}", p.display()))?;
                return Self::from_properties_bytes(&bytes, &p);
            }
        }
        let p = root.join("catalog_info.json");
        if p.is_file() {
            let bytes = std::fs::read(&p)
                .map_err(|e| plan_datafusion_err!("cannot read {}: {e}", p.display()))?;
            return Self::from_catalog_info_bytes(&bytes, &p);
        }
        if !root.exists() {
            return plan_err!("HATS catalog {} does not exist", root.display());
        }
        plan_err!(
            "{} is not a HATS catalog: it has no hats.properties, properties or catalog_info.json",
            root.display()
        )
    }

    /// The contents of a HATS `hats.properties` / `properties` file. `source_file` is only
    /// used to name the file in errors and to default the catalog name to its directory.
    pub fn from_properties_bytes(bytes: &[u8], source_file: &Path) -> Result<Self> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| plan_datafusion_err!("{}: not UTF-8 text: {e}", source_file.display()))?;
        Self::from_properties_text(text, source_file)
    }

    /// As [`Self::from_properties_bytes`], from text.
    pub fn from_properties_text(text: &str, source_file: &Path) -> Result<Self> {
        Self::from_hats(parse_java_properties(text), source_file.to_path_buf())
    }

    /// The contents of a HiPSCat `catalog_info.json`.
    pub fn from_catalog_info_bytes(bytes: &[u8], source_file: &Path) -> Result<Self> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| plan_datafusion_err!("{}: not UTF-8 text: {e}", source_file.display()))?;
        Self::from_hipscat(text, source_file.to_path_buf())
    }

    /// The key that names the RA column in this catalog's properties file.
    pub fn ra_key(&self) -> &'static str {
        match self.layout {
            Layout::Hats => "hats_col_ra",
            Layout::Hipscat => "ra_column",
        }
    }

    /// The key that names the Dec column in this catalog's properties file.
    pub fn dec_key(&self) -> &'static str {
        match self.layout {
            Layout::Hats => "hats_col_dec",
            Layout::Hipscat => "dec_column",
        }
    }

    fn from_hats(raw: BTreeMap<String, String>, source_file: PathBuf) -> Result<Self> {
        let file = source_file.display();
        let need = |key: &str| -> Result<String> {
            raw.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| plan_datafusion_err!("{file}: required key '{key}' is missing"))
        };
        let type_value = need("dataproduct_type")?;
        let Some(catalog_type) = CatalogType::parse(&type_value) else {
            return plan_err!(
                "{file}: dataproduct_type '{type_value}' is not a HATS catalog type (one of {})",
                known_types()
            );
        };
        let (ra_column, dec_column) = if catalog_type.is_positional() {
            (need("hats_col_ra")?, need("hats_col_dec")?)
        } else {
            (
                raw.get("hats_col_ra").cloned().unwrap_or_default(),
                raw.get("hats_col_dec").cloned().unwrap_or_default(),
            )
        };
        let total_rows = match raw.get("hats_nrows") {
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                plan_datafusion_err!("{file}: hats_nrows '{v}' is not a row count")
            })?),
            None => None,
        };
        let margin_threshold_arcsec = match raw.get("hats_margin_threshold") {
            Some(v) => Some(margin_threshold(
                v.parse::<f64>().ok(),
                v,
                &file,
                "hats_margin_threshold",
            )?),
            None => None,
        };
        if let Some(order) = raw.get("hats_col_healpix_order") {
            if order != "29" {
                return plan_err!(
                    "{file}: hats_col_healpix_order={order} is not supported (pz reads order 29)"
                );
            }
        }
        let npix_suffix = raw
            .get("hats_npix_suffix")
            .cloned()
            .unwrap_or_else(|| ".parquet".to_string());
        // The suffix is appended to `Npix=N`: anything but a directory marker or a file
        // extension would point outside the pixel's own path.
        let suffix_ok = npix_suffix == "/"
            || (npix_suffix.len() > 1
                && npix_suffix.starts_with('.')
                && !npix_suffix.contains(['/', '\\'])
                && npix_suffix != "..");
        if !suffix_ok {
            return plan_err!(
                "{file}: hats_npix_suffix '{npix_suffix}' is neither '/' nor a file extension such as '.parquet'"
            );
        }
        let healpix_given = raw
            .get("hats_col_healpix")
            .filter(|v| !v.is_empty())
            .cloned();
        Ok(CatalogProperties {
            layout: Layout::Hats,
            name: raw
                .get("obs_collection")
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| dir_name(&source_file)),
            catalog_type,
            total_rows,
            ra_column,
            dec_column,
            healpix_column_given: healpix_given.is_some(),
            healpix_column: Some(healpix_given.unwrap_or_else(|| "_healpix_29".to_string())),
            npix_suffix,
            primary_table_url: raw.get("hats_primary_table_url").cloned(),
            margin_threshold_arcsec,
            source_file,
            raw,
        })
    }

    fn from_hipscat(text: &str, source_file: PathBuf) -> Result<Self> {
        let file = source_file.display();
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| plan_datafusion_err!("{file}: not valid JSON: {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| plan_datafusion_err!("{file}: expected a JSON object"))?;
        let get = |k: &str| obj.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let type_value = get("catalog_type").ok_or_else(|| {
            plan_datafusion_err!("{file}: required key 'catalog_type' is missing")
        })?;
        let Some(catalog_type) = CatalogType::parse(&type_value) else {
            return plan_err!(
                "{file}: catalog_type '{type_value}' is not a HiPSCat catalog type (one of {})",
                known_types()
            );
        };
        let total_rows = match obj.get("total_rows") {
            None | Some(serde_json::Value::Null) => None,
            Some(x) => Some(x.as_u64().ok_or_else(|| {
                plan_datafusion_err!("{file}: total_rows {x} is not a row count")
            })?),
        };
        let margin_threshold_arcsec = match obj.get("margin_threshold") {
            None | Some(serde_json::Value::Null) => None,
            Some(x) => Some(margin_threshold(
                x.as_f64(),
                &x.to_string(),
                &file,
                "margin_threshold",
            )?),
        };
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
            name: get("catalog_name")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| dir_name(&source_file)),
            catalog_type,
            total_rows,
            ra_column: get("ra_column").unwrap_or_else(|| "ra".to_string()),
            dec_column: get("dec_column").unwrap_or_else(|| "dec".to_string()),
            healpix_column: Some("_hipscat_index".to_string()),
            healpix_column_given: false,
            npix_suffix: ".parquet".to_string(),
            primary_table_url: get("primary_catalog"),
            margin_threshold_arcsec,
            source_file,
            raw,
        })
    }
}

fn known_types() -> String {
    CatalogType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A margin width must be a finite, non-negative number of arcseconds: NaN would disable a
/// margin silently and infinity would let it stand in for neighbours it does not hold.
fn margin_threshold(
    parsed: Option<f64>,
    text: &str,
    file: &std::path::Display<'_>,
    key: &str,
) -> Result<f64> {
    match parsed {
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => {
            plan_err!("{file}: {key} '{text}' is not a width in arcseconds (a finite number >= 0)")
        }
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

    fn props(text: &str) -> Result<CatalogProperties> {
        CatalogProperties::from_properties_text(text, Path::new("/x/cat/hats.properties"))
    }

    #[test]
    fn unknown_dataproduct_type_is_an_error() {
        let e = props("dataproduct_type=banana\nhats_col_ra=ra\nhats_col_dec=dec\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dataproduct_type 'banana'")
                && e.contains("/x/cat/hats.properties")
                && e.contains("object, source, margin"),
            "{e}"
        );
        let p = props("dataproduct_type= Margin \nhats_col_ra=ra\nhats_col_dec=dec\n").unwrap();
        assert_eq!(p.catalog_type, CatalogType::Margin);
        let e = CatalogProperties::from_catalog_info_bytes(
            br#"{"catalog_type": "banana"}"#,
            Path::new("/x/catalog_info.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("catalog_type 'banana'"), "{e}");
    }

    #[test]
    fn numbers_out_of_their_domain_are_errors() {
        let base = "dataproduct_type=margin\nhats_col_ra=ra\nhats_col_dec=dec\n";
        for bad in ["NaN", "inf", "-1", "five"] {
            let e = props(&format!("{base}hats_margin_threshold={bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("hats_margin_threshold '{bad}'")), "{e}");
        }
        assert_eq!(
            props(&format!("{base}hats_margin_threshold=5.0\n"))
                .unwrap()
                .margin_threshold_arcsec,
            Some(5.0)
        );
        let e = props(&format!("{base}hats_nrows=-3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("hats_nrows '-3'"), "{e}");
        for bad in ["../../etc", "", "x", ".", "./a"] {
            let e = props(&format!("{base}hats_npix_suffix={bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("hats_npix_suffix"), "{bad}: {e}");
        }
        assert_eq!(
            props(&format!("{base}hats_npix_suffix=/\n"))
                .unwrap()
                .npix_suffix,
            "/"
        );
        let e = CatalogProperties::from_catalog_info_bytes(
            br#"{"catalog_type": "object", "total_rows": -5}"#,
            Path::new("/x/catalog_info.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("total_rows -5"), "{e}");
    }

    #[test]
    fn healpix_column_given_or_defaulted() {
        let base = "dataproduct_type=object\nhats_col_ra=ra\nhats_col_dec=dec\n";
        let p = props(base).unwrap();
        assert_eq!(p.healpix_column.as_deref(), Some("_healpix_29"));
        assert!(!p.healpix_column_given);
        let p = props(&format!("{base}hats_col_healpix=hp\n")).unwrap();
        assert_eq!(p.healpix_column.as_deref(), Some("hp"));
        assert!(p.healpix_column_given);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap stand-in for the fuzzer: every prefix and a few byte soups.
        let sample = "dataproduct_type=object\nhats_col_ra=ra\nhats_col_dec=dec\nhats_nrows=10\n\
                      hats_margin_threshold=5\nhats_npix_suffix=/\n=\n:\n\u{e9}=\u{1F600}\n";
        for end in 0..=sample.len() {
            let b = &sample.as_bytes()[..end];
            let _ = CatalogProperties::from_properties_bytes(b, Path::new("p"));
            let _ = CatalogProperties::from_catalog_info_bytes(b, Path::new("p"));
        }
        for soup in [
            &b"\xff\xfe=\x00"[..],
            b"{",
            b"[]",
            b"{\"catalog_type\": 7}",
            b"\n\r\n==",
        ] {
            let _ = CatalogProperties::from_properties_bytes(soup, Path::new("p"));
            let _ = CatalogProperties::from_catalog_info_bytes(soup, Path::new("p"));
        }
    }
}
