//! SQL entry points: `CREATE EXTERNAL TABLE … STORED AS HATS`, `hats('<dir>')` and
//! `hats_info('<dir>')`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{Session, TableFunctionImpl, TableProviderFactory};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::logical_expr::{CreateExternalTable, Expr};

use super::table::{HatsTable, MarginSpec};

/// OPTIONS keys a HATS table accepts (with or without a `hats.` or `format.` prefix).
pub const HATS_OPTIONS: &[&str] = &["margin"];

fn option<'a>(options: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    options
        .get(key)
        .or_else(|| options.get(&format!("hats.{key}")))
        .or_else(|| options.get(&format!("format.{key}")))
        .map(String::as_str)
}

/// Makes HATS tables for `CREATE EXTERNAL TABLE name STORED AS HATS LOCATION '<dir>'
/// [OPTIONS ('margin' '<dir>' | 'none')]`.
#[derive(Debug, Default)]
pub struct HatsTableFactory;

#[async_trait]
impl TableProviderFactory for HatsTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        for key in cmd.options.keys() {
            let bare = key
                .strip_prefix("hats.")
                .or_else(|| key.strip_prefix("format."))
                .unwrap_or(key);
            if !HATS_OPTIONS.contains(&bare) {
                return plan_err!(
                    "CREATE EXTERNAL TABLE {}: unknown HATS option '{bare}' (known: {})",
                    cmd.name,
                    HATS_OPTIONS.join(", ")
                );
            }
        }
        let margin = MarginSpec::parse(option(&cmd.options, "margin"));
        let Some(location) = cmd.locations.first().cloned() else {
            return plan_err!(
                "CREATE EXTERNAL TABLE {} STORED AS HATS needs a LOCATION",
                cmd.name
            );
        };
        if cmd.locations.len() > 1 {
            return plan_err!(
                "CREATE EXTERNAL TABLE {}: a HATS table has one LOCATION",
                cmd.name
            );
        }
        let table = tokio::task::spawn_blocking(move || HatsTable::open(&location, margin))
            .await
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))??;
        Ok(Arc::new(table))
    }
}

fn string_arg(fname: &str, args: &[Expr], i: usize) -> Result<Option<String>> {
    match args.get(i) {
        None => Ok(None),
        Some(Expr::Literal(ScalarValue::Utf8(Some(s)), _))
        | Some(Expr::Literal(ScalarValue::LargeUtf8(Some(s)), _))
        | Some(Expr::Literal(ScalarValue::Utf8View(Some(s)), _)) => Ok(Some(s.clone())),
        Some(other) => plan_err!(
            "{fname}: argument {} must be a string literal, got {other}",
            i + 1
        ),
    }
}

/// `hats('<dir>' [, '<margin dir>' | 'none'])`: read a HATS catalog without registering it.
#[derive(Debug, Default)]
pub struct HatsTableFunction;

impl TableFunctionImpl for HatsTableFunction {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let Some(location) = string_arg("hats", args, 0)? else {
            return plan_err!("hats('<catalog dir>' [, '<margin dir>']) needs a catalog directory");
        };
        let margin = MarginSpec::parse(string_arg("hats", args, 1)?.as_deref());
        Ok(Arc::new(HatsTable::open(&location, margin)?))
    }
}

/// `hats_info('<dir>')`: one row per fact about a catalog (type, rows, partitions, columns,
/// margin, primary).
#[derive(Debug, Default)]
pub struct HatsInfoFunction;

impl TableFunctionImpl for HatsInfoFunction {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let Some(location) = string_arg("hats_info", args, 0)? else {
            return plan_err!("hats_info('<catalog dir>') needs a catalog directory");
        };
        let margin = MarginSpec::parse(string_arg("hats_info", args, 1)?.as_deref());
        let t = HatsTable::open(&location, margin)?;
        let c = &t.catalog;
        let p = &c.properties;
        let mut rows: Vec<(String, String)> = vec![
            ("name".into(), p.name.clone()),
            ("dataproduct_type".into(), p.catalog_type.as_str().into()),
            ("layout".into(), format!("{:?}", p.layout).to_lowercase()),
            ("location".into(), c.root.display().to_string()),
            (
                "rows".into(),
                p.total_rows.map(|r| r.to_string()).unwrap_or_default(),
            ),
            ("partitions".into(), c.partitions.len().to_string()),
            ("partition_list".into(), c.partition_source.into()),
            ("max_order".into(), c.max_order().to_string()),
            ("ra_column".into(), p.ra_column.clone()),
            ("dec_column".into(), p.dec_column.clone()),
            (
                "healpix_column".into(),
                p.healpix_column.clone().unwrap_or_default(),
            ),
            ("columns".into(), c.schema.fields().len().to_string()),
        ];
        if c.is_margin() {
            rows.push((
                "primary".into(),
                c.primary_catalog_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            ));
            rows.push((
                "margin_threshold_arcsec".into(),
                p.margin_threshold_arcsec
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ));
        }
        if let Some(m) = &t.margin {
            rows.push(("margin".into(), m.root.display().to_string()));
            rows.push((
                "margin_threshold_arcsec".into(),
                m.properties
                    .margin_threshold_arcsec
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ));
            rows.push((
                "margin_rows".into(),
                m.properties
                    .total_rows
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
            ));
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.0.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.1.as_str()),
                )),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
