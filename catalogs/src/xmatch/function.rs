//! `crossmatch('<left>', '<right>', radius_arcsec [, n_neighbors [, unique]])` in SQL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProviderList, Session, TableFunctionImpl};
use datafusion::common::{plan_err, Result, ScalarValue, TableReference};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;

use super::exec::{CrossmatchExec, CrossmatchSpec};
use crate::hats::table::{HatsTable, MarginSpec};
use crate::hats::writer::{write_hats, HatsWriteOptions};

/// Largest radius accepted unless configured otherwise (arcsec).
pub const DEFAULT_MAX_RADIUS_ARCSEC: f64 = 60.0;

/// The `crossmatch` table function. Tables are looked up by name among the registered
/// tables; a HATS catalog directory works too.
#[derive(Debug)]
pub struct CrossmatchFunction {
    catalogs: Arc<dyn CatalogProviderList>,
    pub max_radius_arcsec: f64,
}

impl CrossmatchFunction {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>) -> Self {
        CrossmatchFunction {
            catalogs,
            max_radius_arcsec: DEFAULT_MAX_RADIUS_ARCSEC,
        }
    }

    fn resolve(&self, name: &str) -> Result<Side> {
        let r = TableReference::from(name);
        let catalog = r.catalog().unwrap_or("datafusion");
        let schema = r.schema().unwrap_or("public");
        let found = self
            .catalogs
            .catalog(catalog)
            .and_then(|c| c.schema(schema))
            .map(|s| futures::executor::block_on(s.table(r.table())))
            .transpose()?
            .flatten();
        if let Some(p) = found {
            let short = r.table().to_string();
            return match (p.as_ref() as &dyn std::any::Any).downcast_ref::<HatsTable>() {
                Some(h) => Ok(Side::Hats(Arc::new(h.clone()), short)),
                None => {
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
                    Ok(Side::Table {
                        provider: p,
                        name: short,
                        ra,
                        dec,
                    })
                }
            };
        }
        let path = std::path::Path::new(name);
        if path.join("hats.properties").is_file()
            || path.join("properties").is_file()
            || path.join("catalog_info.json").is_file()
        {
            let t = HatsTable::open(name, MarginSpec::Auto)?;
            let short = t.catalog.name().to_string();
            return Ok(Side::Hats(Arc::new(t), short));
        }
        plan_err!("crossmatch: unknown table '{name}' (neither a registered table nor a HATS catalog directory)")
    }
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

impl TableFunctionImpl for CrossmatchFunction {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        const USAGE: &str =
            "crossmatch('<left table>', '<right table>', radius_arcsec [, n_neighbors [, unique]])";
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
        let radius = match literal(args, 2).and_then(|v| {
            v.cast_to(&datafusion::arrow::datatypes::DataType::Float64)
                .ok()
        }) {
            Some(ScalarValue::Float64(Some(r))) => r,
            _ => return plan_err!("{USAGE}: radius_arcsec must be a number"),
        };
        if radius.is_nan() || radius <= 0.0 {
            return plan_err!("crossmatch: radius_arcsec must be positive, got {radius}");
        }
        if radius > self.max_radius_arcsec {
            return plan_err!(
                "crossmatch: radius_arcsec {radius} is above the maximum of {} arcsec (set PZ_CROSSMATCH_MAX_RADIUS_ARCSEC to change it)",
                self.max_radius_arcsec
            );
        }
        let k = match literal(args, 3) {
            None => 1,
            Some(v) => match v.cast_to(&datafusion::arrow::datatypes::DataType::Int64) {
                Ok(ScalarValue::Int64(Some(k))) if (1..=1000).contains(&k) => k as usize,
                _ => {
                    return plan_err!(
                        "crossmatch: n_neighbors must be a whole number from 1 to 1000, got {v}"
                    )
                }
            },
        };
        let unique = match literal(args, 4) {
            None => false,
            Some(ScalarValue::Boolean(Some(b))) => b,
            Some(v) => return plan_err!("crossmatch: unique must be true or false, got {v}"),
        };
        let left = self.resolve(&name(0)?)?;
        let right = self.resolve(&name(1)?)?;
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
