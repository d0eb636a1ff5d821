//! `photoz_table('<model>', '<table>')`: a model applied to a whole table. The model's
//! features are found by column name; identifier columns (`id`, `…id`, `…_id`), `ra`, `dec`
//! and the model's redshift column pass through; the photo-z struct is flattened into columns
//! (`z_mode`, …, `pdf`).

use std::sync::Arc;

use datafusion::catalog::{CatalogProviderList, Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::datasource::{provider_as_source, TableProvider, ViewTable};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{col, lit, Expr, LogicalPlanBuilder, ScalarUDF};
use pz_catalogs::hats::table::{HatsTable, MarginSpec};
use pz_catalogs::resolve::{resolve_input, Input};
use pz_udfs::photoz::photoz_udf::{output_field, PhotozFunc};
use pz_udfs::photoz::ModelRegistry;

#[derive(Debug)]
pub struct PhotozTableFunction {
    catalogs: Arc<dyn CatalogProviderList>,
    models: ModelRegistry,
}

impl PhotozTableFunction {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>, models: ModelRegistry) -> Self {
        PhotozTableFunction { catalogs, models }
    }

    /// The table `name` stands for, without waiting on I/O: file and URL tables come from
    /// the lookup made before planning (`pz_catalogs::resolve`), so planning never blocks
    /// a tokio worker.
    fn resolve(
        &self,
        session: &dyn Session,
        name: &str,
    ) -> Result<(String, Arc<dyn TableProvider>)> {
        match resolve_input(session, &self.catalogs, "photoz_table", name)? {
            Some(Input::Table(short, p)) => Ok((short, p)),
            Some(Input::HatsDir) => {
                let t = HatsTable::open(name, MarginSpec::Disabled)?;
                Ok((t.catalog.name().to_string(), Arc::new(t)))
            }
            None => plan_err!("photoz_table: unknown table '{name}' (neither a registered table nor a HATS catalog directory)"),
        }
    }
}

fn is_passthrough(name: &str, redshift: &str) -> bool {
    let l = name.to_lowercase();
    l == "id"
        || l.ends_with("id")
        || l.ends_with("_id")
        || l == "ra"
        || l == "dec"
        || l == redshift.to_lowercase()
}

impl TableFunctionImpl for PhotozTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        const USAGE: &str = "photoz_table('<model>', '<table>')";
        let session = args.session();
        let args = args.exprs();
        let text = |i: usize| -> Result<String> {
            match args.get(i) {
                Some(Expr::Literal(
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::Utf8View(Some(s))
                    | ScalarValue::LargeUtf8(Some(s)),
                    _,
                )) => Ok(s.clone()),
                _ => plan_err!("{USAGE}: argument {} must be a string literal", i + 1),
            }
        };
        if args.len() != 2 {
            return plan_err!("{USAGE}: got {} arguments", args.len());
        }
        let model = self.models.get(&text(0)?)?;
        let (table_name, provider) = self.resolve(session, &text(1)?)?;
        let schema = provider.schema();
        let find = |want: &str| {
            schema
                .fields()
                .iter()
                .find(|f| f.name().eq_ignore_ascii_case(want))
                .map(|f| f.name().clone())
        };
        let mut feature_exprs = vec![lit(model.name.clone())];
        let mut missing = Vec::new();
        for f in &model.features {
            match find(&f.column) {
                Some(c) => feature_exprs.push(col(datafusion::common::Column::new(
                    Some(table_name.clone()),
                    c,
                ))),
                None => missing.push(f.column.clone()),
            }
        }
        if !missing.is_empty() {
            return plan_err!(
                "photoz_table: table '{table_name}' lacks the model's feature column{} {} (it has: {})",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        let passthrough: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| is_passthrough(n, &model.photometry.redshift_column))
            .collect();
        let udf = Arc::new(ScalarUDF::new_from_impl(PhotozFunc::bound(Arc::clone(
            &model,
        ))));
        let call =
            Expr::ScalarFunction(ScalarFunction::new_udf(udf, feature_exprs)).alias("__photoz");
        let mut first: Vec<Expr> = passthrough
            .iter()
            .map(|c| col(datafusion::common::Column::new(Some(table_name.clone()), c)))
            .collect();
        first.push(call);
        let mut second: Vec<Expr> = passthrough
            .iter()
            .map(|c| col(datafusion::common::Column::new_unqualified(c)))
            .collect();
        let out = output_field(&model);
        let datafusion::arrow::datatypes::DataType::Struct(fields) = out.data_type() else {
            return plan_err!("photoz output is not a struct");
        };
        for f in fields.iter() {
            second.push(get_field(col("__photoz"), f.name().as_str()).alias(f.name()));
        }
        let plan = LogicalPlanBuilder::scan(table_name, provider_as_source(provider), None)?
            .project(first)?
            .project(second)?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}
