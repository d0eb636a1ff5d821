//! The Training Set Maker: reference redshifts cross-matched to the object catalog, with a
//! reproducible training/validation split, written with its provenance.
//!
//! Everything is SQL over pz's functions; [`TsmConfig::sql`] is the query, so the same
//! result is reachable from any SQL client.

use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::common::{exec_datafusion_err, plan_err, Result};
use serde::Serialize;

use super::output::{quote_ident, quote_str, StagedDir};
use super::provenance::{checksum, InputRecord};
use crate::PzContext;

/// Standard names of the reference catalog's columns, and where to find them.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnMap {
    pub id: String,
    pub ra: String,
    pub dec: String,
    pub z: String,
    pub z_err: Option<String>,
    pub z_flag: Option<String>,
    pub survey: Option<String>,
}

impl Default for ColumnMap {
    fn default() -> Self {
        ColumnMap {
            id: "id".into(),
            ra: "ra".into(),
            dec: "dec".into(),
            z: "z".into(),
            z_err: Some("z_err".into()),
            z_flag: Some("z_flag".into()),
            survey: Some("survey".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Parquet,
    Csv,
    Hats,
}

#[derive(Debug, Clone, Serialize)]
pub struct TsmConfig {
    pub redshift: PathBuf,
    pub objects: PathBuf,
    pub columns: ColumnMap,
    pub radius_arcsec: f64,
    pub n_neighbors: usize,
    pub unique: bool,
    /// Object columns to keep (all but `_healpix_29` when empty).
    pub object_columns: Vec<String>,
    /// Turn object flux columns (nJy) into AB magnitudes.
    pub flux_to_mag: bool,
    /// Column of E(B−V) in the object catalog, to deredden magnitudes.
    pub ebv_column: Option<String>,
    pub train_fraction: f64,
    pub seed: u64,
    pub out: PathBuf,
    pub format: OutputFormat,
}

#[derive(Debug, Serialize)]
pub struct TsmSummary {
    pub output: PathBuf,
    pub rows: u64,
    pub training_rows: u64,
    pub seconds: f64,
}

/// The LSST band a column is about, from names like `mag_g`, `g_cModelFlux`, `flux_g`.
fn band_of(name: &str) -> Option<char> {
    let lower = name.to_ascii_lowercase();
    for b in ['u', 'g', 'r', 'i', 'z', 'y'] {
        let s = b.to_string();
        if lower.starts_with(&format!("{s}_"))
            || lower.ends_with(&format!("_{s}"))
            || lower.contains(&format!("_{s}_"))
        {
            return Some(b);
        }
    }
    None
}

fn is_flux(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.contains("flux") && !l.contains("err")
}

/// `g_cModelFlux` → `g_cModelMag`, `flux_g` → `mag_g`.
fn flux_to_mag_name(name: &str) -> String {
    name.replace("Flux", "Mag")
        .replace("flux", "mag")
        .replace("FLUX", "MAG")
}

impl TsmConfig {
    fn validate(&self) -> Result<()> {
        if self.radius_arcsec.is_nan() || self.radius_arcsec <= 0.0 {
            return plan_err!(
                "tsm: --radius-arcsec must be positive, got {}",
                self.radius_arcsec
            );
        }
        if self.n_neighbors == 0 {
            return plan_err!("tsm: --n-neighbors must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.train_fraction) {
            return plan_err!(
                "tsm: --train-fraction must be within [0, 1], got {}",
                self.train_fraction
            );
        }
        for (what, p) in [("--redshift", &self.redshift), ("--objects", &self.objects)] {
            if !p.exists() {
                return plan_err!("tsm: {what} {} does not exist", p.display());
            }
        }
        Ok(())
    }

    /// Registers the inputs as `tsm_redshift_input`, `tsm_redshift` (standard names) and
    /// `tsm_objects`.
    async fn register(&self, ctx: &PzContext) -> Result<()> {
        let rs = self.redshift.display().to_string();
        let kind = super::output::input_kind(&self.redshift);
        let opts = if kind == "CSV" {
            " OPTIONS ('format.has_header' 'true')"
        } else {
            ""
        };
        ctx.run_script(&format!(
            "CREATE EXTERNAL TABLE tsm_redshift_input STORED AS {kind} LOCATION {}{opts};
             CREATE EXTERNAL TABLE tsm_objects STORED AS HATS LOCATION {};",
            quote_str(&rs),
            quote_str(&self.objects.display().to_string())
        ))
        .await?;
        let schema = ctx
            .ctx
            .table("tsm_redshift_input")
            .await?
            .schema()
            .as_arrow()
            .clone();
        let has = |c: &str| schema.field_with_name(c).is_ok();
        let mut select = Vec::new();
        let m = &self.columns;
        for (std, src, required) in [
            ("id", Some(&m.id), true),
            ("ra", Some(&m.ra), true),
            ("dec", Some(&m.dec), true),
            ("z", Some(&m.z), true),
            ("z_err", m.z_err.as_ref(), false),
            ("z_flag", m.z_flag.as_ref(), false),
            ("survey", m.survey.as_ref(), false),
        ] {
            match src {
                Some(c) if has(c) => select.push(format!("{} AS {std}", quote_ident(c))),
                Some(c) if required => {
                    return plan_err!(
                        "tsm: {rs} has no column '{c}' for {std} (columns: {})",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
                _ => {}
            }
        }
        ctx.run_last(&format!(
            "CREATE VIEW tsm_redshift AS SELECT {} FROM tsm_redshift_input",
            select.join(", ")
        ))
        .await?;
        Ok(())
    }

    /// The query that makes the training set from the registered inputs.
    pub async fn sql(&self, ctx: &PzContext) -> Result<String> {
        let red = ctx
            .ctx
            .table("tsm_redshift")
            .await?
            .schema()
            .as_arrow()
            .clone();
        let obj = ctx
            .ctx
            .table("tsm_objects")
            .await?
            .schema()
            .as_arrow()
            .clone();
        let keep: Vec<String> = if self.object_columns.is_empty() {
            obj.fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| n != "_healpix_29")
                .collect()
        } else {
            for c in &self.object_columns {
                if obj.field_with_name(c).is_err() {
                    return plan_err!(
                        "tsm: the object catalog has no column '{c}' (from --columns)"
                    );
                }
            }
            self.object_columns.clone()
        };
        if let Some(e) = &self.ebv_column {
            if obj.field_with_name(e).is_err() {
                return plan_err!(
                    "tsm: the object catalog has no E(B-V) column '{e}' (from --ebv-column)"
                );
            }
        }
        // Names in the crossmatch output: clashing ones carry the side's suffix.
        let out_name = |c: &str, left: bool| -> String {
            let clash = red.field_with_name(c).is_ok() && obj.field_with_name(c).is_ok();
            match (clash, left) {
                (true, true) => format!("{c}_tsm_redshift"),
                (true, false) => format!("{c}_tsm_objects"),
                (false, _) => c.to_string(),
            }
        };
        let mut cols = Vec::new();
        for f in red.fields() {
            cols.push(format!(
                "{} AS {}",
                quote_ident(&out_name(f.name(), true)),
                quote_ident(f.name())
            ));
        }
        let mag_expr = |expr: String, name: &str| -> String {
            match (&self.ebv_column, band_of(name)) {
                (Some(e), Some(b)) => format!(
                    "deredden({expr}, {}, '{b}')",
                    quote_ident(&out_name(e, false))
                ),
                _ => expr,
            }
        };
        for c in &keep {
            let src = quote_ident(&out_name(c, false));
            let alias = if red.field_with_name(c).is_ok() {
                format!("{c}_object")
            } else {
                c.clone()
            };
            let lower = c.to_ascii_lowercase();
            if self.flux_to_mag && is_flux(c) {
                let name = flux_to_mag_name(&alias);
                cols.push(format!(
                    "{} AS {}",
                    mag_expr(format!("flux_to_mag({src})"), &name),
                    quote_ident(&name)
                ));
                // Its error, when the catalog has one.
                for err in [format!("{c}Err"), format!("{c}_err"), format!("{c}err")] {
                    if obj.field_with_name(&err).is_ok() {
                        let ename = flux_to_mag_name(&err);
                        cols.push(format!(
                            "flux_err_to_mag_err({src}, {}) AS {}",
                            quote_ident(&out_name(&err, false)),
                            quote_ident(&ename)
                        ));
                    }
                }
            } else if self.flux_to_mag && lower.contains("flux") && lower.contains("err") {
                // Converted with its flux above.
                continue;
            } else if lower.starts_with("mag") && !lower.contains("err") {
                cols.push(format!(
                    "{} AS {}",
                    mag_expr(src.clone(), c),
                    quote_ident(&alias)
                ));
            } else {
                cols.push(format!("{src} AS {}", quote_ident(&alias)));
            }
        }
        cols.push("dist_arcsec".into());
        cols.push("match_rank".into());
        cols.push(format!(
            "seeded_uniform({}, CAST(id AS BIGINT)) < {} AS is_training_set",
            self.seed as i64, self.train_fraction
        ));
        Ok(format!(
            "SELECT {} FROM crossmatch('tsm_redshift', 'tsm_objects', {}, {}, {}) ORDER BY id, match_rank",
            cols.join(", "),
            self.radius_arcsec,
            self.n_neighbors,
            self.unique
        ))
    }

    pub async fn run(&self) -> Result<TsmSummary> {
        let t0 = Instant::now();
        self.validate()?;
        StagedDir::check_free(&self.out, "tsm")?;
        let ctx = PzContext::ephemeral();
        self.register(&ctx).await?;
        let sql = self.sql(&ctx).await?;
        let staged = StagedDir::create(&self.out, "tsm")?;
        let mut summary = self.write(&ctx, &sql, staged.path(), t0).await?;
        staged.commit()?;
        summary.output = self.out.join(&summary.output);
        Ok(summary)
    }

    async fn write(
        &self,
        ctx: &PzContext,
        sql: &str,
        dir: &Path,
        t0: Instant,
    ) -> Result<TsmSummary> {
        let (file, stored) = match self.format {
            OutputFormat::Parquet => ("training_set.parquet", "PARQUET"),
            OutputFormat::Csv => ("training_set.csv", "CSV"),
            OutputFormat::Hats => ("training_set", "HATS"),
        };
        let target = dir.join(file);
        ctx.run_last(&format!("CREATE TABLE tsm_result AS {sql}"))
            .await?;
        let opts = match self.format {
            OutputFormat::Csv => " OPTIONS ('format.has_header' 'true')",
            _ => "",
        };
        ctx.run_last(&format!(
            "COPY (SELECT * FROM tsm_result) TO {} STORED AS {stored}{opts}",
            quote_str(&target.display().to_string())
        ))
        .await?;
        let rows = super::output::count(ctx, "SELECT count(*) FROM tsm_result").await?;
        let training_rows =
            super::output::count(ctx, "SELECT count(*) FROM tsm_result WHERE is_training_set")
                .await?;
        let inputs = vec![
            InputRecord {
                role: "redshift".into(),
                path: canonical(&self.redshift),
                rows: super::output::count(ctx, "SELECT count(*) FROM tsm_redshift_input").await?,
                sha256: checksum(&self.redshift)?,
            },
            InputRecord {
                role: "objects".into(),
                path: canonical(&self.objects),
                rows: super::output::count(ctx, "SELECT count(*) FROM tsm_objects").await?,
                sha256: checksum(&self.objects)?,
            },
        ];
        let seconds = t0.elapsed().as_secs_f64();
        let provenance = serde_json::json!({
            "pipeline": "tsm",
            "pz_version": crate::PZ_VERSION,
            "config": self,
            "sql": sql,
            "inputs": inputs,
            "output": {"path": canonical(&self.out.join(file)), "rows": rows, "training_rows": training_rows},
            "seconds": seconds,
        });
        let p = dir.join("provenance.json");
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&provenance).map_err(|e| exec_datafusion_err!("{e}"))?,
        )
        .map_err(|e| exec_datafusion_err!("{}: {e}", p.display()))?;
        Ok(TsmSummary {
            output: PathBuf::from(file),
            rows,
            training_rows,
            seconds,
        })
    }
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_and_names() {
        assert_eq!(band_of("mag_g"), Some('g'));
        assert_eq!(band_of("g_cModelFlux"), Some('g'));
        assert_eq!(band_of("flux_y"), Some('y'));
        assert_eq!(band_of("objectId"), None);
        assert_eq!(flux_to_mag_name("g_cModelFlux"), "g_cModelMag");
        assert_eq!(flux_to_mag_name("flux_g"), "mag_g");
        assert!(is_flux("g_cModelFlux") && !is_flux("g_cModelFluxErr"));
    }
}
