//! `pz validate`: photo-z estimates against reference redshifts. Every number is computed
//! in SQL with pz's metric aggregates (so it scales and equals what a user gets in SQL);
//! the outputs are `metrics.json` and a self-contained `report.html`.
//!
//! The command's own tables (inputs given as paths, the matched pairs) live in a private
//! session whose extra catalog only it can see; the caller's session, and the tables kept
//! in the data directory, are read but never written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider,
};
use datafusion::common::{exec_datafusion_err, plan_err, Result};
use datafusion::execution::session_state::SessionStateBuilder;
use pz_udfs::metrics::pdf_arg::{clean, normalise, Excluded, GridSource, PdfColumn};
use pz_udfs::photoz::grid::ZGrid;
use serde::Serialize;

use super::output::{count, input_kind, quote_ident, quote_str, StagedDir};
use crate::PzContext;

/// The catalog of a validation's private session that holds its working tables.
pub const WORK_CATALOG: &str = "pz_validate";
/// The matched pairs (id, zphot, pdf, ztrue [, mag]) every metric and plot is computed on.
pub const PAIRS: &str = "pz_validate.work.pairs";

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
    /// The grid the PDFs are sampled on, as (zmin, zmax) with the PDFs' length as the number
    /// of points; None: the pdf column's pz metadata, else z = 0..3 with 301 points.
    pub grid: Option<(f64, f64)>,
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
            grid: None,
            out: out.to_path_buf(),
            title: "Photo-z validation".into(),
        }
    }
}

/// The point and PDF metrics of one group of objects.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MetricSet {
    /// Matched objects in the group.
    pub n: u64,
    /// Objects in the point metrics (a photo-z and a true redshift).
    pub n_point: u64,
    /// Objects in the PDF metrics (a usable PDF and a true redshift).
    pub n_pdf: u64,
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
    /// Where the grid came from: `--zmin/--zmax`, the pdf column's metadata, or the default.
    pub grid_source: String,
    pub n_pz: u64,
    pub n_truth: u64,
    pub n_matched: u64,
    /// Matched objects with a null true redshift: in no metric.
    pub n_ztrue_null: u64,
    /// Matched objects with a null photo-z: in no point metric.
    pub n_zphot_null: u64,
    /// Objects with a true redshift whose PDF the PDF metrics leave out (they count in the
    /// point metrics); `pdf_excluded` says why, by reason.
    pub n_pdf_excluded: u64,
    pub pdf_excluded: BTreeMap<String, u64>,
    /// PDFs used with negative round-off (within 1e-6 of their peak) read as zero.
    pub n_pdf_roundoff_zeroed: u64,
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

/// The grid arguments every PDF function of a validation gets: the grid the scan settled,
/// given explicitly so that SQL reads the PDFs exactly as the scan checked them.
pub fn grid_args(g: &ZGrid) -> String {
    format!("{:?}, {:?}", g.zmin, g.zmax)
}

/// Every metric of one group, in the order [`metric_set`] reads them.
fn metric_sql(g: &ZGrid) -> String {
    let a = grid_args(g);
    format!(
        "count(*), count(zphot + ztrue), count(*) - pz_pdf_excluded(pdf, ztrue, {a}), \
         pz_bias(zphot, ztrue), pz_sigma_nmad(zphot, ztrue), pz_sigma_iqr(zphot, ztrue), \
         pz_outlier_frac(zphot, ztrue), pz_outlier_rate_rail(zphot, ztrue), \
         pz_pit_ks(pz_pit(pdf, ztrue, {a})), pz_pit_cvm(pz_pit(pdf, ztrue, {a})), \
         pz_pit_ad(pz_pit(pdf, ztrue, {a})), pz_pit_outlier_rate(pz_pit(pdf, ztrue, {a})), \
         pz_cde_loss(pdf, ztrue, {a}), pz_crps(pdf, ztrue, {a}), pz_brier(pdf, ztrue, {a})"
    )
}
const METRIC_COLUMNS: usize = 15;

fn metric_set(v: &[Option<f64>]) -> MetricSet {
    let n = |x: Option<f64>| x.unwrap_or(0.0) as u64;
    MetricSet {
        n: n(v[0]),
        n_point: n(v[1]),
        n_pdf: n(v[2]),
        bias: v[3],
        sigma_nmad: v[4],
        sigma_iqr: v[5],
        outlier_frac_0p15: v[6],
        outlier_rate_rail: v[7],
        pit_ks: v[8],
        pit_cvm: v[9],
        pit_ad: v[10],
        pit_outlier_rate: v[11],
        cde_loss: v[12],
        crps: v[13],
        brier: v[14],
    }
}

/// A session that sees every table of `ctx` but keeps its own in a catalog of its own, and
/// persists nothing: a validation's working tables can neither replace a table the user
/// registered nor end up in the data directory.
fn private_session(ctx: &PzContext) -> Result<PzContext> {
    let state = ctx.ctx.state();
    let theirs = Arc::clone(state.catalog_list());
    let list = MemoryCatalogProviderList::new();
    for name in theirs.catalog_names() {
        if let Some(c) = theirs.catalog(&name) {
            list.register_catalog(name, c);
        }
    }
    let work = MemoryCatalogProvider::new();
    work.register_schema("work", Arc::new(MemorySchemaProvider::new()))?;
    list.register_catalog(WORK_CATALOG.to_string(), Arc::new(work));
    let state = SessionStateBuilder::new_from_existing(state)
        .with_catalog_list(Arc::new(list))
        .build();
    Ok(PzContext::from_state(state, None))
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

/// A table name of the session, or a path registered under `alias` (a name in the private
/// session's own catalog).
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
        "CREATE EXTERNAL TABLE {alias} STORED AS {kind} LOCATION {}{opts}",
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
        if let Some((zmin, zmax)) = self.grid {
            ZGrid::new(zmin, zmax, 2)
                .map_err(|e| exec_datafusion_err!("validate: --zmin {zmin} --zmax {zmax}: {e}"))?;
        }
        let work = private_session(ctx)?;
        let ctx = &work;
        let pz = source(ctx, "--pz", &self.pz, "pz_validate.work.estimates").await?;
        let truth = source(ctx, "--truth", &self.truth, "pz_validate.work.truth").await?;
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
            "CREATE VIEW {PAIRS} AS \
             SELECT p.{qid} AS id, CAST(p.{} AS DOUBLE) AS zphot, p.{} AS pdf, CAST(t.{} AS DOUBLE) AS ztrue{mag_sel} \
             FROM {pz} p JOIN {truth} t ON p.{qid} = t.{qid}",
            quote_ident(&self.zphot_column),
            quote_ident(&self.pdf_column),
            quote_ident(&ztrue)
        ))
        .await?;
        let n_matched = count(ctx, &format!("SELECT count(*) FROM {PAIRS}")).await?;
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

        let scan = self.scan(ctx, &ztrue).await?;
        let grid = scan.grid;
        if scan.ztrue_null > 0 {
            warnings.push(format!(
                "{} matched objects have a null true redshift (e.g. {id} {}); they are in no metric",
                scan.ztrue_null,
                scan.ztrue_null_example.as_deref().unwrap_or("")
            ));
        }
        if scan.zphot_null > 0 {
            warnings.push(format!(
                "{} matched objects have a null photo-z in '{}' (e.g. {id} {}); they are left out of the point metrics",
                scan.zphot_null,
                self.zphot_column,
                scan.zphot_null_example.as_deref().unwrap_or("")
            ));
        }
        let n_pdf_excluded: u64 = scan.excluded.values().map(|(n, _)| n).sum();
        if n_pdf_excluded > 0 {
            let why: Vec<String> = scan
                .excluded
                .iter()
                .map(|(r, (n, ex))| format!("{n} with {} (e.g. {id} {ex})", r.describe()))
                .collect();
            warnings.push(format!(
                "{n_pdf_excluded} PDFs cannot be normalised and are left out of the PDF metrics (their objects count in the point metrics): {}",
                why.join("; ")
            ));
        }
        if scan.roundoff > 0 {
            warnings.push(format!(
                "{} PDFs hold negative round-off (within 1e-6 of their peak, as qp writes beside a PDF's support); it is read as zero and the PDFs are used",
                scan.roundoff
            ));
        }
        if scan.renormalised > 0 {
            warnings.push(format!(
                "{} PDFs do not integrate to 1 within 1 % on the grid; the PDF metrics normalise them first",
                scan.renormalised
            ));
        }
        if scan.off_grid > 0 {
            warnings.push(format!(
                "{} reference redshifts lie outside the PDF grid [{}, {}]: their PIT is 0 or 1 and their CDE loss uses the nearest grid point",
                scan.off_grid, grid.zmin, grid.zmax
            ));
        }

        let metric_cols = metric_sql(&grid);
        let overall = f64_rows(ctx, &format!("SELECT {metric_cols} FROM {PAIRS}")).await?;
        let overall = metric_set(&overall[0]);
        let n_pdf_expected = n_matched - scan.ztrue_null - n_pdf_excluded;
        if overall.n_pdf != n_pdf_expected {
            return plan_err!(
                "validate: the PDF metrics used {} PDFs where the scan of '{}' found {n_pdf_expected} usable; this is a bug in pz",
                overall.n_pdf,
                self.pz
            );
        }
        let edges = self
            .tomo_edges
            .iter()
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let tomo_rows = f64_rows(
            ctx,
            &format!(
                "SELECT bin, {metric_cols} FROM (SELECT *, pz_tomo_bin(zphot, [{edges}]) AS bin FROM {PAIRS}) \
                 WHERE bin IS NOT NULL GROUP BY bin ORDER BY bin"
            ),
        )
        .await?;
        // Every bin is listed, an empty one with n = 0, so a bin nothing fell into is seen.
        let tomo: Vec<TomoBin> = (1..self.tomo_edges.len())
            .map(|b| {
                let metrics = tomo_rows
                    .iter()
                    .find(|r| r[0] == Some(b as f64))
                    .map(|r| metric_set(&r[1..1 + METRIC_COLUMNS]))
                    .unwrap_or_default();
                TomoBin {
                    bin: b as i32,
                    z_lo: self.tomo_edges[b - 1],
                    z_hi: self.tomo_edges[b],
                    metrics,
                }
            })
            .collect();
        let empty: Vec<String> = tomo
            .iter()
            .filter(|b| b.metrics.n == 0)
            .map(|b| format!("{} ({} ≤ z_phot < {})", b.bin, b.z_lo, b.z_hi))
            .collect();
        if !empty.is_empty() {
            warnings.push(format!(
                "no object falls in tomographic bin {}; its metrics are empty",
                empty.join(", ")
            ));
        }
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
                "SELECT count(zphot), pz_sigma_nmad(zphot, ztrue), pz_bias(zphot, ztrue), pz_outlier_rate_rail(zphot, ztrue) \
                 FROM {PAIRS} WHERE {where_targets}"
            ),
        )
        .await?;
        let sel = &sel[0];
        let n_selected = sel[0].unwrap_or(0.0) as u64;
        if n_selected == 0 {
            warnings.push(format!(
                "no object with a photo-z has {selection}: the science targets cannot be evaluated and are marked FAIL"
            ));
        }
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
            grid_source: scan.grid_source,
            n_pz,
            n_truth,
            n_matched,
            n_ztrue_null: scan.ztrue_null,
            n_zphot_null: scan.zphot_null,
            n_pdf_excluded,
            pdf_excluded: Excluded::ALL
                .iter()
                .map(|r| {
                    let n = scan.excluded.get(r).map_or(0, |(n, _)| *n);
                    (r.key().to_string(), n)
                })
                .collect(),
            n_pdf_roundoff_zeroed: scan.roundoff,
            n_pdf_renormalised: scan.renormalised,
            n_ztrue_off_grid: scan.off_grid,
            warnings,
            overall,
            tomo_edges: self.tomo_edges.clone(),
            tomo,
            target_selection: format!("{selection}: {n_selected} objects"),
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

    /// One streaming pass over the pairs: settles the grid, checks every PDF fits it and
    /// every redshift is a number (errors name the object), and counts what the metrics
    /// will leave out and why.
    async fn scan(&self, ctx: &PzContext, ztrue_col: &str) -> Result<Scan> {
        use futures::StreamExt;
        let df = ctx
            .ctx
            .sql(&format!(
                "SELECT CAST(id AS VARCHAR) AS id, pdf, ztrue, zphot FROM {PAIRS}"
            ))
            .await?;
        let pdf_field = df.schema().field(1).clone();
        let id = &self.id_column;
        let at = || format!("column '{}' of --pz '{}'", self.pdf_column, self.pz);
        let source = pz_udfs::metrics::pdf_arg::resolve_grid("validate", &pdf_field, self.grid)
            .map_err(|e| {
                exec_datafusion_err!(
                    "validate: {}: {}{}",
                    at(),
                    e.strip_backtrace(),
                    self.grid_advice()
                )
            })?;
        let grid_source = match source {
            GridSource::Limits { .. } => "--zmin/--zmax",
            GridSource::Fixed(_) => "the pdf column's metadata",
            GridSource::Default => "the default (z = 0..3, 301 points)",
        }
        .to_string();
        let mut s = Scan {
            grid: match source {
                GridSource::Fixed(g) => g,
                _ => ZGrid::default(),
            },
            grid_source,
            ..Scan::default()
        };
        // (length, the id of the first PDF), to name both sides of a length mismatch.
        let mut first: Option<(usize, String)> = None;
        let mut stream = df.execute_stream().await?;
        let mut buf = Vec::new();
        while let Some(b) = stream.next().await {
            let b: RecordBatch = b?;
            let ids = cast(b.column(0), &DataType::Utf8)?;
            let ids = ids.as_string::<i32>();
            let pdfs = PdfColumn::new("validate", b.column(1))?;
            let zt = cast(b.column(2), &DataType::Float64)?;
            let zt = zt.as_primitive::<Float64Type>();
            let zp = cast(b.column(3), &DataType::Float64)?;
            let zp = zp.as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                let idv = if ids.is_valid(i) {
                    ids.value(i)
                } else {
                    "NULL"
                };
                let z = zt.is_valid(i).then(|| zt.value(i));
                match z {
                    None => {
                        s.ztrue_null += 1;
                        s.ztrue_null_example.get_or_insert_with(|| idv.to_string());
                    }
                    Some(z) if !(z.is_finite() && z > -1.0) => {
                        return plan_err!(
                            "validate: the true redshift of {id} {idv} is {z} (column '{ztrue_col}' of --truth '{}'); true redshifts must be finite numbers > -1 (a missing one may be NULL: it is left out and counted)",
                            self.truth
                        );
                    }
                    Some(_) => {}
                }
                if !zp.is_valid(i) {
                    s.zphot_null += 1;
                    s.zphot_null_example.get_or_insert_with(|| idv.to_string());
                } else if !zp.value(i).is_finite() {
                    return plan_err!(
                        "validate: the photo-z of {id} {idv} is {} (column '{}' of --pz '{}'); photo-z values must be finite numbers (a missing one may be NULL: it is left out and counted)",
                        zp.value(i),
                        self.zphot_column,
                        self.pz
                    );
                }
                let Some(p) = pdfs.row(i, &mut buf) else {
                    if z.is_some() {
                        s.exclude(Excluded::Null, idv);
                    }
                    continue;
                };
                let len = p.len();
                if let Some(why) = source.mismatch(len) {
                    return plan_err!(
                        "validate: the PDF of {id} {idv} ({}) has {len} values but {why}{}",
                        at(),
                        self.grid_advice()
                    );
                }
                match &first {
                    None => {
                        if let GridSource::Limits { zmin, zmax } = source {
                            s.grid = ZGrid::new(zmin, zmax, len).map_err(|e| {
                                exec_datafusion_err!(
                                    "validate: --zmin {zmin} --zmax {zmax} with PDFs of {len} values ({}): {e}",
                                    at()
                                )
                            })?;
                        }
                        first = Some((len, idv.to_string()));
                    }
                    Some((n0, id0)) if *n0 != len => {
                        return plan_err!(
                            "validate: PDFs of different lengths in {}: {id} {id0} has {n0} values, {id} {idv} has {len}; every PDF must be on the same grid",
                            at()
                        );
                    }
                    Some(_) => {}
                }
                let Some(z) = z else {
                    continue;
                };
                match clean(&mut buf) {
                    Err(why) => {
                        s.exclude(why, idv);
                        continue;
                    }
                    Ok(zeroed) => s.roundoff += (zeroed > 0) as u64,
                }
                match normalise(&mut buf, &s.grid) {
                    Err(why) => {
                        s.exclude(why, idv);
                        continue;
                    }
                    Ok(area) if (area - 1.0).abs() > 0.01 => s.renormalised += 1,
                    Ok(_) => {}
                }
                if z < s.grid.zmin || z > s.grid.zmax {
                    s.off_grid += 1;
                }
            }
        }
        Ok(s)
    }

    /// What to do when the PDFs do not fit the grid, in this command's terms.
    fn grid_advice(&self) -> &'static str {
        if self.grid.is_some() {
            "; --zmin/--zmax set the grid's limits, and its number of points is the PDFs' length"
        } else {
            "; give the limits of the grid the PDFs are sampled on with --zmin and --zmax (the number of points is the PDFs' length)"
        }
    }
}

/// What the scan of the pairs found.
#[derive(Default)]
struct Scan {
    grid: ZGrid,
    grid_source: String,
    ztrue_null: u64,
    ztrue_null_example: Option<String>,
    zphot_null: u64,
    zphot_null_example: Option<String>,
    /// Reason → (count, the first object's id).
    excluded: BTreeMap<Excluded, (u64, String)>,
    roundoff: u64,
    renormalised: u64,
    off_grid: u64,
}

impl Scan {
    fn exclude(&mut self, why: Excluded, id: &str) {
        self.excluded
            .entry(why)
            .or_insert_with(|| (0, id.to_string()))
            .0 += 1;
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
