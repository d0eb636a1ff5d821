//! `pz validate`: photo-z estimates against reference redshifts. Every number is computed
//! in SQL with pz's metric aggregates (so it scales and equals what a user gets in SQL);
//! the outputs are `metrics.json` and a self-contained `report.html`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{exec_datafusion_err, plan_err, Result};
use pz_udfs::metrics::pdf_arg::{integral, GridSource, PdfColumn};
use pz_udfs::photoz::grid::ZGrid;
use serde::Serialize;

use super::output::{count, input_kind, quote_ident, quote_str, StagedDir};
use crate::PzContext;

/// The science targets of DMTN-049 and Schmidt et al. (2020) for 0 < z < 2, i < 25.
pub const TARGET_SIGMA: f64 = 0.05;
pub const TARGET_BIAS: f64 = 0.003;
pub const TARGET_OUTLIERS: f64 = 0.10;

#[derive(Debug, Clone)]
pub struct ValidateConfig {
    /// A table of the session, or a Parquet/CSV file or HATS directory.
    pub pz: String,
    pub truth: String,
    pub id_column: String,
    pub zphot_column: String,
    pub pdf_column: String,
    /// None: the first of `redshift`, `z_true`, `ztrue`, `z`, `specz` in the truth table.
    pub ztrue_column: Option<String>,
    /// None: `mag_i` from the truth table, else from the photo-z table, else no magnitude plots.
    pub mag_column: Option<String>,
    pub tomo_edges: Vec<f64>,
    pub out: PathBuf,
    /// Shown in the report's heading.
    pub title: String,
}

impl ValidateConfig {
    pub fn new(pz: &str, truth: &str, out: &Path) -> Self {
        ValidateConfig {
            pz: pz.into(),
            truth: truth.into(),
            id_column: "objectId".into(),
            zphot_column: "z_mode".into(),
            pdf_column: "pdf".into(),
            ztrue_column: None,
            mag_column: None,
            tomo_edges: vec![0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 2.0, 3.0],
            out: out.to_path_buf(),
            title: "Photo-z validation".into(),
        }
    }
}

/// The point and PDF metrics of one group of objects.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MetricSet {
    pub n: u64,
    pub bias: Option<f64>,
    pub sigma_nmad: Option<f64>,
    pub sigma_iqr: Option<f64>,
    pub outlier_frac_0p15: Option<f64>,
    pub outlier_rate_rail: Option<f64>,
    pub pit_ks: Option<f64>,
    pub pit_cvm: Option<f64>,
    pub pit_ad: Option<f64>,
    pub pit_outlier_rate: Option<f64>,
    pub cde_loss: Option<f64>,
    pub crps: Option<f64>,
    pub brier: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TomoBin {
    pub bin: i32,
    pub z_lo: f64,
    pub z_hi: f64,
    pub metrics: MetricSet,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub metric: String,
    pub value: Option<f64>,
    pub requirement: String,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub pz: String,
    pub truth: String,
    pub columns: BTreeMap<String, String>,
    pub grid: ZGrid,
    pub n_pz: u64,
    pub n_truth: u64,
    pub n_matched: u64,
    pub n_pdf_unusable: u64,
    pub n_pdf_renormalised: u64,
    pub n_ztrue_off_grid: u64,
    pub warnings: Vec<String>,
    pub overall: MetricSet,
    pub tomo_edges: Vec<f64>,
    pub tomo: Vec<TomoBin>,
    pub target_selection: String,
    pub targets: Vec<Target>,
    pub seconds: f64,
}

const METRIC_SQL: &str = "count(*), pz_bias(zphot, ztrue), pz_sigma_nmad(zphot, ztrue), \
    pz_sigma_iqr(zphot, ztrue), pz_outlier_frac(zphot, ztrue), pz_outlier_rate_rail(zphot, ztrue), \
    pz_pit_ks(pz_pit(pdf, ztrue)), pz_pit_cvm(pz_pit(pdf, ztrue)), pz_pit_ad(pz_pit(pdf, ztrue)), \
    pz_pit_outlier_rate(pz_pit(pdf, ztrue)), pz_cde_loss(pdf, ztrue), pz_crps(pdf, ztrue), \
    pz_brier(pdf, ztrue)";
const METRIC_COLUMNS: usize = 13;

fn metric_set(v: &[Option<f64>]) -> MetricSet {
    MetricSet {
        n: v[0].unwrap_or(0.0) as u64,
        bias: v[1],
        sigma_nmad: v[2],
        sigma_iqr: v[3],
        outlier_frac_0p15: v[4],
        outlier_rate_rail: v[5],
        pit_ks: v[6],
        pit_cvm: v[7],
        pit_ad: v[8],
        pit_outlier_rate: v[9],
        cde_loss: v[10],
        crps: v[11],
        brier: v[12],
    }
}

/// Rows of a query with every column read as f64 (null → None).
pub async fn f64_rows(ctx: &PzContext, sql: &str) -> Result<Vec<Vec<Option<f64>>>> {
    let batches = ctx.ctx.sql(sql).await?.collect().await?;
    let mut rows = Vec::new();
    for b in &batches {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Float64))
            .collect::<std::result::Result<_, _>>()?;
        for i in 0..b.num_rows() {
            rows.push(
                cols.iter()
                    .map(|c| {
                        let c = c.as_primitive::<Float64Type>();
                        c.is_valid(i).then(|| c.value(i))
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// A table name of the session, or a path registered under `alias`.
async fn source(ctx: &PzContext, what: &str, given: &str, alias: &str) -> Result<String> {
    if ctx.ctx.table_exist(given).unwrap_or(false) {
        return Ok(quote_ident(given));
    }
    let path = Path::new(given);
    if !path.exists() {
        return plan_err!(
            "validate: {what} '{given}' is neither a table of this session nor an existing file or directory"
        );
    }
    let kind = input_kind(path);
    let opts = if kind == "CSV" {
        " OPTIONS ('format.has_header' 'true')"
    } else {
        ""
    };
    ctx.run_script(&format!(
        "DROP TABLE IF EXISTS {alias}; CREATE EXTERNAL TABLE {alias} STORED AS {kind} LOCATION {}{opts}",
        quote_str(given)
    ))
    .await?;
    Ok(alias.to_string())
}

async fn columns_of(ctx: &PzContext, table: &str) -> Result<Vec<String>> {
    let df = ctx
        .ctx
        .sql(&format!("SELECT * FROM {table} LIMIT 0"))
        .await?;
    Ok(df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

fn require(what: &str, given: &str, cols: &[String], col: &str, flag: &str) -> Result<()> {
    if cols.iter().any(|c| c == col) {
        Ok(())
    } else {
        plan_err!(
            "validate: {what} '{given}' has no column '{col}' (set it with {flag}); its columns: {}",
            cols.join(", ")
        )
    }
}

async fn no_duplicate_ids(ctx: &PzContext, what: &str, table: &str, id: &str) -> Result<()> {
    let sql = format!(
        "SELECT CAST({id} AS VARCHAR), count(*) FROM {table} GROUP BY {id} HAVING count(*) > 1 LIMIT 1"
    );
    let batches = ctx.ctx.sql(&sql).await?.collect().await?;
    if let Some(b) = batches.iter().find(|b| b.num_rows() > 0) {
        let idv = string_at(b, 0)?;
        let n = cast(b.column(1), &DataType::Float64)?;
        return plan_err!(
            "validate: {what} has id {idv} {} times; ids must be unique to pair estimates with redshifts",
            n.as_primitive::<Float64Type>().value(0)
        );
    }
    Ok(())
}

impl ValidateConfig {
    /// Runs the validation and writes `metrics.json` and `report.html` into `out` (which must
    /// not exist or be empty; nothing is left behind on error).
    pub async fn run(&self, ctx: &PzContext) -> Result<Validation> {
        let started = std::time::Instant::now();
        StagedDir::check_free(&self.out, "validate")?;
        if self.tomo_edges.len() < 2
            || self
                .tomo_edges
                .windows(2)
                .any(|w| w[0].is_nan() || w[1].is_nan() || w[0] >= w[1])
        {
            return plan_err!(
                "validate: --tomo-edges must be at least two increasing redshifts, got {:?}",
                self.tomo_edges
            );
        }
        let pz = source(ctx, "--pz", &self.pz, "pz_validate_estimates").await?;
        let truth = source(ctx, "--truth", &self.truth, "pz_validate_truth").await?;
        let pz_cols = columns_of(ctx, &pz).await?;
        let truth_cols = columns_of(ctx, &truth).await?;
        let id = &self.id_column;
        require("--pz", &self.pz, &pz_cols, id, "--id-column")?;
        require("--truth", &self.truth, &truth_cols, id, "--id-column")?;
        require(
            "--pz",
            &self.pz,
            &pz_cols,
            &self.zphot_column,
            "--zphot-column",
        )?;
        require("--pz", &self.pz, &pz_cols, &self.pdf_column, "--pdf-column")?;
        let ztrue = match &self.ztrue_column {
            Some(c) => {
                require("--truth", &self.truth, &truth_cols, c, "--ztrue-column")?;
                c.clone()
            }
            None => match ["redshift", "z_true", "ztrue", "z", "specz"]
                .iter()
                .find(|c| truth_cols.iter().any(|t| t == *c))
            {
                Some(c) => c.to_string(),
                None => {
                    return plan_err!(
                        "validate: --truth '{}' has none of the columns redshift, z_true, ztrue, z, specz; name the true redshift with --ztrue-column (its columns: {})",
                        self.truth,
                        truth_cols.join(", ")
                    )
                }
            },
        };
        let mag = match &self.mag_column {
            Some(m) if truth_cols.contains(m) => Some(format!("t.{}", quote_ident(m))),
            Some(m) if pz_cols.contains(m) => Some(format!("p.{}", quote_ident(m))),
            Some(m) => {
                return plan_err!(
                    "validate: neither input has the magnitude column '{m}' (--mag-column)"
                )
            }
            None if truth_cols.iter().any(|c| c == "mag_i") => Some("t.mag_i".to_string()),
            None if pz_cols.iter().any(|c| c == "mag_i") => Some("p.mag_i".to_string()),
            None => None,
        };
        let qid = quote_ident(id);
        no_duplicate_ids(ctx, "--pz", &pz, &qid).await?;
        no_duplicate_ids(ctx, "--truth", &truth, &qid).await?;
        let n_pz = count(ctx, &format!("SELECT count(*) FROM {pz}")).await?;
        let n_truth = count(ctx, &format!("SELECT count(*) FROM {truth}")).await?;
        let mag_sel = mag
            .as_ref()
            .map(|m| format!(", CAST({m} AS DOUBLE) AS mag"))
            .unwrap_or_default();
        ctx.run_script(&format!(
            "DROP VIEW IF EXISTS pz_validate_pairs; CREATE VIEW pz_validate_pairs AS \
             SELECT p.{qid} AS id, CAST(p.{} AS DOUBLE) AS zphot, p.{} AS pdf, CAST(t.{} AS DOUBLE) AS ztrue{mag_sel} \
             FROM {pz} p JOIN {truth} t ON p.{qid} = t.{qid}",
            quote_ident(&self.zphot_column),
            quote_ident(&self.pdf_column),
            quote_ident(&ztrue)
        ))
        .await?;
        let n_matched = count(ctx, "SELECT count(*) FROM pz_validate_pairs").await?;
        let mut warnings = Vec::new();
        if n_matched == 0 {
            return plan_err!(
                "validate: no {id} of --pz '{}' ({n_pz} rows) is in --truth '{}' ({n_truth} rows)",
                self.pz,
                self.truth
            );
        }
        if n_matched < n_pz {
            let example = ctx
                .ctx
                .sql(&format!(
                    "SELECT CAST({qid} AS VARCHAR) FROM {pz} WHERE {qid} NOT IN (SELECT {qid} FROM {truth}) LIMIT 1"
                ))
                .await?
                .collect()
                .await?;
            let ex = example
                .iter()
                .find(|b| b.num_rows() > 0)
                .map(|b| string_at(b, 0))
                .transpose()?
                .unwrap_or_default();
            warnings.push(format!(
                "{} of {n_pz} photo-z rows have no reference redshift (e.g. {id} {ex}); they are left out",
                n_pz - n_matched
            ));
        }
        if n_matched < n_truth {
            warnings.push(format!(
                "{} of {n_truth} reference redshifts have no photo-z; they are left out",
                n_truth - n_matched
            ));
        }

        // The grid, and the PDFs that needed care, in one streaming pass.
        let df = ctx
            .ctx
            .sql("SELECT pdf, ztrue FROM pz_validate_pairs")
            .await?;
        let pdf_field = df.schema().field(0).clone();
        let source = pz_udfs::metrics::pdf_arg::resolve_grid("validate", &pdf_field, None)?;
        let mut grid = None;
        let (mut unusable, mut renormalised, mut off_grid) = (0u64, 0u64, 0u64);
        let mut stream = df.execute_stream().await?;
        let mut buf = Vec::new();
        use futures::StreamExt;
        while let Some(b) = stream.next().await {
            let b: RecordBatch = b?;
            let pdfs = PdfColumn::new("validate", b.column(0))?;
            let zt = cast(b.column(1), &DataType::Float64)?;
            let zt = zt.as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                let Some(p) = pdfs.row(i, &mut buf) else {
                    unusable += 1;
                    continue;
                };
                let g = match grid {
                    Some(g) => g,
                    None => {
                        let g = source.grid_for("validate", p.len()).map_err(|e| {
                            exec_datafusion_err!(
                                "validate: column '{}' of '{}': {e}",
                                self.pdf_column,
                                self.pz
                            )
                        })?;
                        grid = Some(g);
                        g
                    }
                };
                if p.len() != g.nz {
                    return plan_err!(
                        "validate: PDF lengths differ in column '{}' of '{}': {} and {}",
                        self.pdf_column,
                        self.pz,
                        g.nz,
                        p.len()
                    );
                }
                let a = integral(p, &g);
                if !(a.is_finite() && a > 0.0) || p.iter().any(|v| !v.is_finite() || *v < 0.0) {
                    unusable += 1;
                } else if (a - 1.0).abs() > 0.01 {
                    renormalised += 1;
                }
                if zt.is_valid(i) && (zt.value(i) < g.zmin || zt.value(i) > g.zmax) {
                    off_grid += 1;
                }
            }
        }
        let grid = grid.unwrap_or_else(|| match source {
            GridSource::Fixed(g) => g,
            _ => ZGrid::default(),
        });
        if unusable > 0 {
            warnings.push(format!(
                "{unusable} objects have no usable PDF (null, all zero, negative or not finite); they count in the point metrics only"
            ));
        }
        if renormalised > 0 {
            warnings.push(format!(
                "{renormalised} PDFs do not integrate to 1 within 1 % on the grid; the PDF metrics normalise them first"
            ));
        }
        if off_grid > 0 {
            warnings.push(format!(
                "{off_grid} reference redshifts lie outside the PDF grid [{}, {}]: their PIT is 0 or 1 and their CDE loss uses the nearest grid point",
                grid.zmin, grid.zmax
            ));
        }

        let overall = f64_rows(ctx, &format!("SELECT {METRIC_SQL} FROM pz_validate_pairs")).await?;
        let overall = metric_set(&overall[0]);
        let edges = self
            .tomo_edges
            .iter()
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let tomo_rows = f64_rows(
            ctx,
            &format!(
                "SELECT bin, {METRIC_SQL} FROM (SELECT *, pz_tomo_bin(zphot, [{edges}]) AS bin FROM pz_validate_pairs) \
                 WHERE bin IS NOT NULL GROUP BY bin ORDER BY bin"
            ),
        )
        .await?;
        let tomo: Vec<TomoBin> = tomo_rows
            .iter()
            .map(|r| {
                let b = r[0].unwrap_or(0.0) as i32;
                TomoBin {
                    bin: b,
                    z_lo: self.tomo_edges[(b - 1) as usize],
                    z_hi: self.tomo_edges[b as usize],
                    metrics: metric_set(&r[1..1 + METRIC_COLUMNS]),
                }
            })
            .collect();
        let (selection, where_targets) = match mag {
            Some(_) => (
                "0 < z_true < 2 and i < 25".to_string(),
                "ztrue > 0 AND ztrue < 2 AND mag < 25",
            ),
            None => {
                warnings.push(
                    "no i magnitude (mag_i) in either input: the science-target selection uses 0 < z_true < 2 only, and the magnitude plots are left out".into(),
                );
                (
                    "0 < z_true < 2 (no magnitude column)".to_string(),
                    "ztrue > 0 AND ztrue < 2",
                )
            }
        };
        let sel = f64_rows(
            ctx,
            &format!(
                "SELECT count(*), pz_sigma_nmad(zphot, ztrue), pz_bias(zphot, ztrue), pz_outlier_rate_rail(zphot, ztrue) \
                 FROM pz_validate_pairs WHERE {where_targets}"
            ),
        )
        .await?;
        let sel = &sel[0];
        let targets = vec![
            Target {
                metric: "σ_NMAD of dz".into(),
                value: sel[1],
                requirement: format!("< {TARGET_SIGMA} (σ_z < 0.05(1+z))"),
                pass: sel[1].is_some_and(|v| v < TARGET_SIGMA),
            },
            Target {
                metric: "|bias| (median dz)".into(),
                value: sel[2],
                requirement: format!("< {TARGET_BIAS}"),
                pass: sel[2].is_some_and(|v| v.abs() < TARGET_BIAS),
            },
            Target {
                metric: "outlier fraction, |dz| > max(0.06, 3σ_IQR)".into(),
                value: sel[3],
                requirement: format!("< {TARGET_OUTLIERS}"),
                pass: sel[3].is_some_and(|v| v < TARGET_OUTLIERS),
            },
        ];

        let mut columns = BTreeMap::new();
        columns.insert("id".to_string(), id.clone());
        columns.insert("zphot".to_string(), self.zphot_column.clone());
        columns.insert("pdf".to_string(), self.pdf_column.clone());
        columns.insert("ztrue".to_string(), ztrue.clone());
        if let Some(m) = &mag {
            columns.insert("mag".to_string(), m.clone());
        }
        let mut v = Validation {
            pz: self.pz.clone(),
            truth: self.truth.clone(),
            columns,
            grid,
            n_pz,
            n_truth,
            n_matched,
            n_pdf_unusable: unusable,
            n_pdf_renormalised: renormalised,
            n_ztrue_off_grid: off_grid,
            warnings,
            overall,
            tomo_edges: self.tomo_edges.clone(),
            tomo,
            target_selection: format!("{selection}: {} objects", sel[0].unwrap_or(0.0) as u64),
            targets,
            seconds: 0.0,
        };
        let plots = crate::report::plots(ctx, &v, mag.is_some()).await?;
        v.seconds = started.elapsed().as_secs_f64();
        let staged = StagedDir::create(&self.out, "validate")?;
        let json = serde_json::to_string_pretty(&v)
            .map_err(|e| exec_datafusion_err!("validate: metrics.json: {e}"))?;
        write(&staged.path().join("metrics.json"), json.as_bytes())?;
        let html = crate::report::html(&self.title, &v, &plots);
        write(&staged.path().join("report.html"), html.as_bytes())?;
        staged.commit()?;
        Ok(v)
    }
}

/// Row `i` of a batch's first column as text.
fn string_at(b: &RecordBatch, i: usize) -> Result<String> {
    let c = cast(b.column(0), &DataType::Utf8)?;
    Ok(c.as_string::<i32>().value(i).to_string())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| exec_datafusion_err!("{}: {e}", path.display()))
}
