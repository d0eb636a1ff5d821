//! `crossmatch('<left>', '<right>', radius_arcsec [, n_neighbors [, unique]])` in SQL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;

use super::exec::{CrossmatchExec, CrossmatchSpec};
use crate::config::PzOptions;
use crate::hats::catalog::is_float;
use crate::hats::table::{HatsTable, MarginSpec};
use crate::hats::writer::{write_hats, HatsWriteOptions};
use crate::resolve::{resolve_input, Input};

pub use crate::config::DEFAULT_MAX_RADIUS_ARCSEC;

/// The `crossmatch` table function. Tables are looked up by name among the registered
/// tables; a HATS catalog directory works too, and so does a file or URL table when the
/// statement was prepared by [`crate::resolve::resolve_table_function_inputs`]. The
/// largest radius is the session's `pz.crossmatch_max_radius_arcsec`.
#[derive(Debug)]
pub struct CrossmatchFunction {
    catalogs: Arc<dyn CatalogProviderList>,
}

impl CrossmatchFunction {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>) -> Self {
        CrossmatchFunction { catalogs }
    }

    fn resolve(&self, session: &dyn Session, name: &str) -> Result<Side> {
        match resolve_input(session, &self.catalogs, "crossmatch", name)? {
            Some(Input::Table(short, p)) => {
                match (p.as_ref() as &dyn std::any::Any).downcast_ref::<HatsTable>() {
                    Some(h) => Ok(Side::Hats(Arc::new(h.clone()), short)),
                    None => plain_side(name, short, p),
                }
            }
            Some(Input::HatsDir) => {
                let t = HatsTable::open(name, MarginSpec::Auto)?;
                let short = t.catalog.name().to_string();
                Ok(Side::Hats(Arc::new(t), short))
            }
            None => plan_err!(
                "crossmatch: unknown table '{name}' (neither a registered table nor a HATS catalog directory)"
            ),
        }
    }
}

/// A non-HATS input: its RA/Dec columns, which must hold floating-point degrees (an integer
/// or string column would be cast into positions that match the wrong objects).
fn plain_side(name: &str, short: String, p: Arc<dyn TableProvider>) -> Result<Side> {
    let schema = p.schema();
    let ra = find_column(&schema, &["ra", "ra_deg", "raj2000"]);
    let dec = find_column(&schema, &["dec", "dec_deg", "dej2000", "decl"]);
    let (Some(ra), Some(dec)) = (ra, dec) else {
        return plan_err!(
            "crossmatch: table '{name}' needs ra and dec columns (it has: {})",
            schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    for c in [&ra, &dec] {
        let t = schema.field_with_name(c)?.data_type();
        if !is_float(t) {
            return plan_err!(
                "crossmatch: table '{name}' column '{c}' is {t}; ra and dec must be floating point degrees"
            );
        }
    }
    Ok(Side::Table {
        provider: p,
        name: short,
        ra,
        dec,
    })
}

fn literal(args: &[Expr], i: usize) -> Option<ScalarValue> {
    match args.get(i)? {
        Expr::Literal(v, _) => Some(v.clone()),
        Expr::Negative(e) => match e.as_ref() {
            Expr::Literal(v, _) => v.arithmetic_negate().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// `n_neighbors`: a whole number in 1..=1000. A float is accepted only when it is whole
/// (`2.0`), never rounded or truncated (`2.7` is an error).
fn n_neighbors(v: Option<ScalarValue>) -> Result<usize> {
    let Some(v) = v else {
        return Ok(1);
    };
    let whole = match &v {
        ScalarValue::Float16(Some(f)) => whole_f64(f64::from(*f)),
        ScalarValue::Float32(Some(f)) => whole_f64(f64::from(*f)),
        ScalarValue::Float64(Some(f)) => whole_f64(*f),
        ScalarValue::Decimal128(..) | ScalarValue::Decimal256(..) => None,
        other if other.data_type().is_integer() => match other.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(k))) => Some(k),
            _ => None,
        },
        _ => None,
    };
    match whole {
        Some(k) if (1..=1000).contains(&k) => Ok(k as usize),
        _ => plan_err!("crossmatch: n_neighbors must be a whole number from 1 to 1000, got {v}"),
    }
}

fn whole_f64(f: f64) -> Option<i64> {
    // Whole and small: the range check that follows only needs values near 1..=1000.
    (f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)
}

/// The session's largest radius: `pz.crossmatch_max_radius_arcsec`, whose default comes
/// from `PZ_CROSSMATCH_MAX_RADIUS_ARCSEC`. A session without pz's settings (not built by
/// pz's engine) reads the variable now.
fn max_radius(session: &dyn Session) -> Result<f64> {
    match session.config_options().extensions.get::<PzOptions>() {
        Some(o) => o.max_radius_arcsec(),
        None => PzOptions::default().max_radius_arcsec(),
    }
}

impl TableFunctionImpl for CrossmatchFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        const USAGE: &str =
            "crossmatch('<left table>', '<right table>', radius_arcsec [, n_neighbors [, unique]])";
        let session = args.session();
        let args = args.exprs();
        if !(3..=5).contains(&args.len()) {
            return plan_err!("{USAGE}: got {} arguments", args.len());
        }
        let name = |i: usize| -> Result<String> {
            match literal(args, i) {
                Some(ScalarValue::Utf8(Some(s)))
                | Some(ScalarValue::Utf8View(Some(s)))
                | Some(ScalarValue::LargeUtf8(Some(s))) => Ok(s),
                _ => plan_err!("{USAGE}: argument {} must be a table name in quotes", i + 1),
            }
        };
        // A number, not a string that happens to parse as one.
        let radius = match literal(args, 2)
            .filter(|v| v.data_type().is_numeric())
            .and_then(|v| v.cast_to(&DataType::Float64).ok())
        {
            Some(ScalarValue::Float64(Some(r))) => r,
            _ => return plan_err!("{USAGE}: radius_arcsec must be a number"),
        };
        if !radius.is_finite() || radius <= 0.0 {
            return plan_err!("crossmatch: radius_arcsec must be positive, got {radius}");
        }
        let max = max_radius(session)?;
        if radius > max {
            return plan_err!(
                "crossmatch: radius_arcsec {radius} is above the maximum of {max} arcsec (SET pz.crossmatch_max_radius_arcsec = <arcsec> to change it; its default comes from {})",
                crate::config::MAX_RADIUS_ENV
            );
        }
        let k = n_neighbors(literal(args, 3))?;
        let unique = match literal(args, 4) {
            None => false,
            Some(ScalarValue::Boolean(Some(b))) => b,
            Some(v) => return plan_err!("crossmatch: unique must be true or false, got {v}"),
        };
        let left = self.resolve(session, &name(0)?)?;
        let right = self.resolve(session, &name(1)?)?;
        for (t, side) in [(&left, "left"), (&right, "right")] {
            if let Side::Hats(h, _) = t {
                let p = &h.catalog.properties;
                if p.ra_column.is_empty() || p.dec_column.is_empty() {
                    return plan_err!("crossmatch: the {side} table has no RA/Dec columns");
                }
            }
        }
        let schema =
            CrossmatchSpec::schema_for(&left.schema(), &right.schema(), left.name(), right.name());
        Ok(Arc::new(CrossmatchTable {
            left,
            right,
            radius_arcsec: radius,
            n_neighbors: k,
            unique,
            schema,
        }))
    }
}

/// One input of a cross-match: a HATS table, or any table that gets partitioned by HEALPix
/// when the query runs.
#[derive(Debug, Clone)]
pub enum Side {
    Hats(Arc<HatsTable>, String),
    Table {
        provider: Arc<dyn TableProvider>,
        name: String,
        ra: String,
        dec: String,
    },
}

impl Side {
    fn name(&self) -> &str {
        match self {
            Side::Hats(_, n) | Side::Table { name: n, .. } => n,
        }
    }

    /// The schema as it will be matched: HATS tables as they are, others with
    /// `_healpix_29` in front.
    fn schema(&self) -> SchemaRef {
        match self {
            Side::Hats(h, _) => h.catalog.schema.clone(),
            Side::Table { provider, .. } => {
                let s = provider.schema();
                let mut fields = vec![Arc::new(Field::new("_healpix_29", DataType::Int64, false))];
                fields.extend(
                    s.fields()
                        .iter()
                        .filter(|f| f.name() != "_healpix_29")
                        .cloned(),
                );
                Arc::new(Schema::new(fields))
            }
        }
    }

    /// A HATS table for this side, writing a temporary catalog for a plain table.
    async fn to_hats(&self, state: &dyn Session, scratch: &TempCatalogs) -> Result<Arc<HatsTable>> {
        match self {
            Side::Hats(h, _) => Ok(Arc::clone(h)),
            Side::Table {
                provider,
                name,
                ra,
                dec,
            } => {
                let plan = provider.scan(state, None, &[], None).await?;
                let batches = datafusion::physical_plan::collect(plan, state.task_ctx()).await?;
                let schema = provider.schema();
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                let dir = scratch.next(name);
                let opts = HatsWriteOptions {
                    catalog_name: Some(name.clone()),
                    ra_column: ra.clone(),
                    dec_column: dec.clone(),
                    // Small leaves keep the matching local; big enough to stay cheap.
                    pixel_threshold: (rows as u64 / 64).clamp(10_000, 1_000_000),
                    highest_order: 12,
                    overwrite: true,
                    ..Default::default()
                };
                let out = dir.clone();
                tokio::task::spawn_blocking(move || write_hats(&batches, schema, &out, &opts))
                    .await
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?
                    .map_err(|e| {
                        datafusion::common::exec_datafusion_err!(
                            "crossmatch: partitioning table '{name}' by HEALPix: {}",
                            e.message()
                        )
                    })?;
                Ok(Arc::new(HatsTable::open(
                    &dir.display().to_string(),
                    MarginSpec::Disabled,
                )?))
            }
        }
    }
}

fn find_column(schema: &SchemaRef, names: &[&str]) -> Option<String> {
    for n in names {
        if let Some(f) = schema
            .fields()
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(n))
        {
            return Some(f.name().clone());
        }
    }
    None
}

/// Temporary catalogs written for plain tables; removed when the last plan using them goes.
#[derive(Debug)]
struct TempCatalogs {
    root: PathBuf,
    n: AtomicUsize,
}

impl TempCatalogs {
    fn new() -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "pz-xmatch-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        TempCatalogs {
            root,
            n: AtomicUsize::new(0),
        }
    }

    fn next(&self, name: &str) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.root
            .join(format!("{}-{safe}", self.n.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Drop for TempCatalogs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The result of a `crossmatch(...)` call as a table.
#[derive(Debug)]
pub struct CrossmatchTable {
    left: Side,
    right: Side,
    radius_arcsec: f64,
    n_neighbors: usize,
    unique: bool,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for CrossmatchTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let scratch = Arc::new(TempCatalogs::new());
        // Which input columns the projection needs (None: all).
        let (nl, nr) = (
            self.left.schema().fields().len(),
            self.right.schema().fields().len(),
        );
        let (left_read, right_read) = match projection {
            None => (None, None),
            Some(p) => {
                let ls = self.left.schema();
                let rs = self.right.schema();
                let l = p
                    .iter()
                    .filter(|&&i| i < nl)
                    .map(|&i| ls.field(i).name().clone())
                    .collect();
                let r = p
                    .iter()
                    .filter(|&&i| i >= nl && i < nl + nr)
                    .map(|&i| rs.field(i - nl).name().clone())
                    .collect();
                (Some(l), Some(r))
            }
        };
        let spec = CrossmatchSpec {
            left_read,
            right_read,
            left: self.left.to_hats(state, &scratch).await?,
            right: self.right.to_hats(state, &scratch).await?,
            left_name: self.left.name().to_string(),
            right_name: self.right.name().to_string(),
            radius_arcsec: self.radius_arcsec,
            n_neighbors: self.n_neighbors,
            unique: self.unique,
        };
        let exec: Arc<dyn ExecutionPlan> = Arc::new(
            CrossmatchExec::try_new(spec, state.config().target_partitions())?
                .with_scratch(scratch),
        );
        let Some(p) = projection else {
            return Ok(exec);
        };
        let exprs: Vec<ProjectionExpr> = p
            .iter()
            .map(|&i| {
                let name = self.schema.field(i).name().clone();
                ProjectionExpr {
                    expr: Arc::new(Column::new(&name, i)),
                    alias: name,
                }
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, exec)?))
    }
}
