//! `PzContext`: a session plus the data directory, so registrations persist.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;

use crate::data_dir::DataDir;

/// What one statement produced.
pub struct StatementOutcome {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

pub struct PzContext {
    pub ctx: SessionContext,
    pub data_dir: Option<DataDir>,
    /// Registrations that could not be restored, one line each.
    pub warnings: Vec<String>,
}

impl PzContext {
    /// A context with no persistence.
    pub fn ephemeral() -> Self {
        PzContext {
            ctx: crate::session_context(),
            data_dir: None,
            warnings: Vec::new(),
        }
    }

    /// A context whose registered tables live in `data_dir`; tables registered before are
    /// restored (one that cannot be is reported in `warnings`, not fatal).
    pub async fn open(data_dir: DataDir) -> Result<Self> {
        Self::open_with_config(data_dir, SessionConfig::new()).await
    }

    pub async fn open_with_config(data_dir: DataDir, config: SessionConfig) -> Result<Self> {
        let ctx = SessionContext::new_with_state(crate::session_state(config)).enable_url_table();
        let mut warnings = Vec::new();
        for (name, ddl) in data_dir.tables()? {
            if let Err(e) = ctx.sql(&ddl).await {
                warnings.push(format!("table '{name}' could not be restored: {e}"));
            }
        }
        Ok(PzContext {
            ctx,
            data_dir: Some(data_dir),
            warnings,
        })
    }

    /// Runs every statement of a script; returns each one's result.
    pub async fn run_script(&self, sql: &str) -> Result<Vec<StatementOutcome>> {
        let mut out = Vec::new();
        for stmt in pz_sql::parse_statements(sql)? {
            out.push(self.run_statement(stmt).await?);
        }
        Ok(out)
    }

    /// Runs a script and returns the last statement's result.
    pub async fn run_last(&self, sql: &str) -> Result<Option<StatementOutcome>> {
        Ok(self.run_script(sql).await?.pop())
    }

    pub async fn run_statement(&self, stmt: Statement) -> Result<StatementOutcome> {
        let persist = match (&stmt, &self.data_dir) {
            (Statement::CreateExternalTable(c), Some(_)) if !c.temporary => {
                let locations: Vec<String> = c.locations.iter().map(|l| absolute(l)).collect();
                Some((
                    c.name.to_string(),
                    pz_sql::external_table_ddl(c, &locations),
                ))
            }
            _ => None,
        };
        let dropped = pz_sql::dropped_tables(&stmt);
        let state = self.ctx.state();
        let plan = state.statement_to_plan(stmt).await?;
        let df = self.ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        if let Some(dd) = &self.data_dir {
            if let Some((name, ddl)) = persist {
                dd.remember_table(&name, &ddl)?;
            }
            for name in dropped {
                dd.forget_table(&name)?;
            }
        }
        Ok(StatementOutcome { schema, batches })
    }
}

/// Makes a local path absolute so a persisted table works from any directory.
fn absolute(location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    match std::fs::canonicalize(location) {
        Ok(p) => p.display().to_string(),
        Err(_) => location.to_string(),
    }
}
