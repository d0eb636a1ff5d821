//! The Training Set Maker: reference redshifts cross-matched to the object catalog, with a
//! reproducible training/validation split, written with its provenance.
//!
//! Everything is SQL over pz's functions; [`TsmConfig::sql`] is the query, so the same
//! result is reachable from any SQL client.

use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_datafusion_err, plan_err, DataFusionError, Result};
use serde::Serialize;

use super::inputs::{ColumnCheck, Expect};
use super::output::{quote_ident, quote_str, StagedDir};
use super::provenance::{checksum, InputRecord};
use crate::PzContext;

/// Standard names of the reference catalog's columns, and where to find them. The optional
/// ones: `None` takes the standard name when the catalog has it; a name given must exist.
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
            z_err: None,
            z_flag: None,
            survey: None,
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
    /// What was accepted but may not be what was meant, one line each.
    pub warnings: Vec<String>,
}

/// The working tables' names; errors from inside the SQL name them, and are given back in
/// the user's words (see [`TsmConfig::user_error`]).
const RED_INPUT: &str = "tsm_redshift_input";
const RED: &str = "tsm_redshift";
const OBJ: &str = "tsm_objects";

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

/// A magnitude column (`mag_g`, `g_cModelMag`), not its error.
fn is_mag(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    (l.starts_with("mag") || l.ends_with("mag")) && !l.contains("err")
}

/// `g_cModelFlux` → `g_cModelMag`, `flux_g` → `mag_g`.
fn flux_to_mag_name(name: &str) -> String {
    name.replace("Flux", "Mag")
        .replace("flux", "mag")
        .replace("FLUX", "MAG")
}

impl TsmConfig {
    fn validate(&self) -> Result<()> {
        let r = self.radius_arcsec;
        if !r.is_finite() || r <= 0.0 {
            return plan_err!("tsm: --radius-arcsec must be positive and finite, got {r}");
        }
        let max = pz_catalogs::PzOptions::default().max_radius_arcsec()?;
        if r > max {
            return plan_err!(
                "tsm: --radius-arcsec {r} is above the cross-match maximum of {max} arcsec ({} sets it)",
                pz_catalogs::config::MAX_RADIUS_ENV
            );
        }
        if !(1..=1000).contains(&self.n_neighbors) {
            return plan_err!(
                "tsm: --n-neighbors must be from 1 to 1000, got {}",
                self.n_neighbors
            );
        }
        if !(0.0..=1.0).contains(&self.train_fraction) {
            return plan_err!(
                "tsm: --train-fraction must be within [0, 1], got {}",
                self.train_fraction
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.object_columns {
            if c.trim().is_empty() {
                return plan_err!("tsm: --columns has an empty column name");
            }
            if !seen.insert(c.as_str()) {
                return plan_err!("tsm: --columns names '{c}' twice");
            }
        }
        for (what, p) in [("--redshift", &self.redshift), ("--objects", &self.objects)] {
            if !p.exists() {
                return plan_err!("tsm: {what} {} does not exist", p.display());
            }
        }
        if super::output::input_kind(&self.objects) != "HATS" {
            return plan_err!(
                "tsm: --objects {} is not a HATS catalog (no hats.properties or properties file)",
                self.objects.display()
            );
        }
        Ok(())
    }

    /// An error from inside the pipeline, with the working tables named by the files they
    /// stand for.
    pub fn user_error(&self, e: DataFusionError) -> DataFusionError {
        let text = e.strip_backtrace();
        let red = format!("--redshift {}", self.redshift.display());
        let obj = format!("--objects {}", self.objects.display());
        let mut renamed = text.clone();
        for (from, to) in [
            (format!("'{RED_INPUT}'"), red.clone()),
            (format!("'{RED}'"), red.clone()),
            (format!("'{OBJ}'"), obj.clone()),
            (RED_INPUT.to_string(), red.clone()),
            (RED.to_string(), red),
            (OBJ.to_string(), obj),
        ] {
            renamed = renamed.replace(&from, &to);
        }
        if renamed == text {
            e
        } else {
            DataFusionError::Plan(renamed)
        }
    }

    /// Registers the inputs as `tsm_redshift_input`, `tsm_redshift` (standard names and
    /// types) and `tsm_objects`, after checking the reference catalog's columns row by row.
    async fn register(&self, ctx: &PzContext) -> Result<()> {
        let rs = self.redshift.display().to_string();
        let kind = super::output::input_kind(&self.redshift);
        let opts = if kind == "CSV" {
            " OPTIONS ('format.has_header' 'true')"
        } else {
            ""
        };
        if let Err(e) = ctx
            .run_last(&format!(
                "CREATE EXTERNAL TABLE {RED_INPUT} STORED AS {kind} LOCATION {}{opts}",
                quote_str(&rs)
            ))
            .await
        {
            return Err(super::inputs::registration_error(
                "tsm: --redshift ",
                &self.redshift,
                kind,
                e,
            )
            .await);
        }
        ctx.run_last(&format!(
            "CREATE EXTERNAL TABLE {OBJ} STORED AS HATS LOCATION {}",
            quote_str(&self.objects.display().to_string())
        ))
        .await?;
        let schema = ctx.ctx.table(RED_INPUT).await?.schema().as_arrow().clone();
        let has = |c: &str| schema.field_with_name(c).is_ok();
        let mut select = Vec::new();
        let mut checks = Vec::new();
        let m = &self.columns;
        for (std, flag, src, expect) in [
            ("id", "--id-column", Some(&m.id), Some(Expect::Present)),
            ("ra", "--ra-column", Some(&m.ra), Some(Expect::Ra)),
            ("dec", "--dec-column", Some(&m.dec), Some(Expect::Dec)),
            ("z", "--z-column", Some(&m.z), Some(Expect::Number)),
            (
                "z_err",
                "--z-err-column",
                m.z_err.as_ref(),
                Some(Expect::Number),
            ),
            ("z_flag", "--z-flag-column", m.z_flag.as_ref(), None),
            ("survey", "--survey-column", m.survey.as_ref(), None),
        ] {
            let c = match src {
                Some(c) if has(c) => c.clone(),
                None if has(std) => std.to_string(),
                None => continue,
                Some(c) => {
                    return plan_err!(
                        "tsm: {rs} has no column '{c}' for {std} (from {flag}; columns: {})",
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            };
            if let Some(expect) = expect {
                checks.push(ColumnCheck::new(&c, std, expect));
            }
            let t = schema.field_with_name(&c)?.data_type();
            // crossmatch takes positions in floating point; text that reads as numbers is
            // made numbers (check_rows, below, vouches for every value first).
            let cast = match std {
                "ra" | "dec" => t != &DataType::Float64,
                "z" | "z_err" => !t.is_numeric(),
                _ => false,
            };
            if cast {
                select.push(format!("CAST({} AS DOUBLE) AS {std}", quote_ident(&c)));
            } else {
                select.push(format!("{} AS {std}", quote_ident(&c)));
            }
        }
        super::inputs::check_rows("tsm: --redshift ", &self.redshift, kind, &checks).await?;
        ctx.run_last(&format!(
            "CREATE VIEW {RED} AS SELECT {} FROM {RED_INPUT}",
            select.join(", ")
        ))
        .await?;
        Ok(())
    }

    /// The query that makes the training set from the registered inputs.
    pub async fn sql(&self, ctx: &PzContext) -> Result<String> {
        Ok(self.sql_and_warnings(ctx).await?.0)
    }

    async fn sql_and_warnings(&self, ctx: &PzContext) -> Result<(String, Vec<String>)> {
        let mut warnings = Vec::new();
        let red = ctx.ctx.table(RED).await?.schema().as_arrow().clone();
        let obj = ctx.ctx.table(OBJ).await?.schema().as_arrow().clone();
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
                (true, true) => format!("{c}_{RED}"),
                (true, false) => format!("{c}_{OBJ}"),
                (false, _) => c.to_string(),
            }
        };
        let names = |v: &[String]| v.join(", ");
        if self.flux_to_mag && !keep.iter().any(|c| is_flux(c)) {
            return plan_err!(
                "tsm: --flux-to-mag, but {} no flux column (a name with 'flux' and no 'err'): {}",
                if self.object_columns.is_empty() {
                    "the object catalog has"
                } else {
                    "--columns names"
                },
                names(&keep)
            );
        }
        if self.ebv_column.is_some() {
            let mags: Vec<&String> = keep
                .iter()
                .filter(|c| is_mag(c) || (self.flux_to_mag && is_flux(c)))
                .collect();
            if !mags.iter().any(|c| band_of(c).is_some()) {
                return plan_err!(
                    "tsm: --deredden, but there is no magnitude column of an LSST band (e.g. mag_g, g_cModelMag{}) among: {}",
                    if self.flux_to_mag { ", or a flux" } else { "" },
                    names(&keep)
                );
            }
            for c in mags.iter().filter(|c| band_of(c).is_none()) {
                warnings.push(format!(
                    "tsm: --deredden: '{c}' names no band (u, g, r, i, z, y), so it is not dereddened"
                ));
            }
        }
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
            } else if is_mag(c) {
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
        // seeded_uniform takes an integer or a text key: integers of any width as BIGINT,
        // anything else by its text (casting text to BIGINT would fail on 'x0').
        let id_type = red.field_with_name("id")?.data_type();
        let key = if id_type.is_integer() {
            "CAST(id AS BIGINT)"
        } else {
            "CAST(id AS VARCHAR)"
        };
        cols.push(format!(
            "seeded_uniform({}, {key}) < {} AS is_training_set",
            self.seed as i64, self.train_fraction
        ));
        let sql = format!(
            "SELECT {} FROM crossmatch('{RED}', '{OBJ}', {}, {}, {}) ORDER BY id, match_rank",
            cols.join(", "),
            self.radius_arcsec,
            self.n_neighbors,
            self.unique
        );
        Ok((sql, warnings))
    }

    pub async fn run(&self) -> Result<TsmSummary> {
        self.run_inner().await.map_err(|e| self.user_error(e))
    }

    async fn run_inner(&self) -> Result<TsmSummary> {
        let t0 = Instant::now();
        self.validate()?;
        StagedDir::check_free(&self.out, "tsm")?;
        // A context of its own: the working tables never meet the user's registrations.
        let ctx = PzContext::ephemeral();
        self.register(&ctx).await?;
        let (sql, warnings) = self.sql_and_warnings(&ctx).await?;
        let staged = StagedDir::create(&self.out, "tsm")?;
        let mut summary = self
            .write(&ctx, &sql, staged.path(), t0)
            .await
            .map_err(|e| staged.user_error(e))?;
        staged.commit()?;
        summary.output = self.out.join(&summary.output);
        summary.warnings = warnings;
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
                rows: super::output::count(ctx, &format!("SELECT count(*) FROM {RED_INPUT}"))
                    .await?,
                sha256: checksum(&self.redshift)?,
            },
            InputRecord {
                role: "objects".into(),
                path: canonical(&self.objects),
                rows: super::output::count(ctx, &format!("SELECT count(*) FROM {OBJ}")).await?,
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
            warnings: Vec::new(),
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
