//! `crossmatch('<left>', '<right>', radius_arcsec [, n_neighbors [, unique]])` in SQL.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
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

    fn resolve(&self, name: &str) -> Result<(Arc<HatsTable>, String)> {
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
            return match (p.as_ref() as &dyn std::any::Any).downcast_ref::<HatsTable>() {
                Some(h) => Ok((Arc::new(h.clone()), r.table().to_string())),
                None => plan_err!(
                    "crossmatch: table '{name}' is not a HATS table; write it as one first \
                     (COPY (SELECT …) TO '<dir>' STORED AS HATS) and register that"
                ),
            };
        }
        let path = std::path::Path::new(name);
        if path.join("hats.properties").is_file()
            || path.join("properties").is_file()
            || path.join("catalog_info.json").is_file()
        {
            let t = HatsTable::open(name, MarginSpec::Auto)?;
            let short = t.catalog.name().to_string();
            return Ok((Arc::new(t), short));
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
                "crossmatch: radius_arcsec {radius} is above the maximum of {} arcsec",
                self.max_radius_arcsec
            );
        }
        let k =
            match literal(args, 3) {
                None => 1,
                Some(v) => match v.cast_to(&datafusion::arrow::datatypes::DataType::Int64) {
                    Ok(ScalarValue::Int64(Some(k))) if k >= 1 && k <= 1000 => k as usize,
                    _ => return plan_err!(
                        "crossmatch: n_neighbors must be a whole number from 1 to 1000, got {v}"
                    ),
                },
            };
        let unique = match literal(args, 4) {
            None => false,
            Some(ScalarValue::Boolean(Some(b))) => b,
            Some(v) => return plan_err!("crossmatch: unique must be true or false, got {v}"),
        };
        let (left, left_name) = self.resolve(&name(0)?)?;
        let (right, right_name) = self.resolve(&name(1)?)?;
        for (t, side) in [(&left, "left"), (&right, "right")] {
            let p = &t.catalog.properties;
            if p.ra_column.is_empty() || p.dec_column.is_empty() {
                return plan_err!("crossmatch: the {side} table has no RA/Dec columns");
            }
        }
        let spec = CrossmatchSpec {
            left,
            right,
            left_name,
            right_name,
            radius_arcsec: radius,
            n_neighbors: k,
            unique,
        };
        Ok(Arc::new(CrossmatchTable {
            schema: spec.output_schema(),
            spec,
        }))
    }
}

/// The result of a `crossmatch(...)` call as a table.
#[derive(Debug)]
pub struct CrossmatchTable {
    spec: CrossmatchSpec,
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
        let exec: Arc<dyn ExecutionPlan> = Arc::new(CrossmatchExec::try_new(
            self.spec.clone(),
            state.config().target_partitions(),
        )?);
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
