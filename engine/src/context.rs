//! `PzContext`: a session plus the data directory, so registrations persist.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProviderList;
use datafusion::common::Result;
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;

use crate::data_dir::DataDir;
use datafusion::common::plan_err;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use pz_sql::PzStatement;
use pz_udfs::photoz::{Algorithm, Model, ModelRegistry};

/// What one statement produced.
#[derive(Debug)]
pub struct StatementOutcome {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

pub struct PzContext {
    pub ctx: SessionContext,
    pub data_dir: Option<DataDir>,
    /// Registrations that could not be restored, one line each.
    pub warnings: Vec<String>,
    /// The session's catalogs without the URL-table layer over them: only what was
    /// registered (see [`PzContext::registered_only_state`]).
    registered: Arc<dyn CatalogProviderList>,
    /// The session's state before the URL-table layer was put over its catalogs. Kept
    /// rather than rebuilt per query: building a state registers every function again,
    /// which cost more than planning a small query.
    registered_only: SessionState,
}

impl PzContext {
    /// A context with no persistence.
    pub fn ephemeral() -> Self {
        Self::from_state(crate::session_state(SessionConfig::new()), None)
    }

    /// A context over `state`, with file and URL names usable as tables (`FROM 'x.parquet'`).
    pub fn from_state(state: SessionState, data_dir: Option<DataDir>) -> Self {
        let registered = Arc::clone(state.catalog_list());
        let registered_only = state.clone();
        PzContext {
            ctx: SessionContext::new_with_state(state).enable_url_table(),
            data_dir,
            warnings: Vec::new(),
            registered,
            registered_only,
        }
    }

    /// The session's state where a name in `FROM` finds only registered tables and views,
    /// never a file or URL: what a caller who may only read what an admin registered plans
    /// with.
    pub fn registered_only_state(&self) -> SessionState {
        let mut state = self.registered_only.clone();
        // The settings as they are now (an admin's `SET` included); catalogs, functions and
        // the runtime are shared with the session already.
        *state.config_mut() = self.ctx.copied_config();
        state
    }

    /// True when `table` names a registered table or view (not a file or URL).
    pub fn is_registered(&self, table: &datafusion::common::TableReference) -> bool {
        // Read in place: `ctx.state()` would copy the whole state for one setting.
        let state = self.ctx.state_ref();
        let state = state.read();
        pz_catalogs::resolve::schema_of(
            self.registered.as_ref(),
            &state.config_options().catalog,
            table,
        )
        .is_some_and(|(r, s)| s.table_exist(&r.table))
    }

    /// A context whose registered tables live in `data_dir`; tables registered before are
    /// restored (one that cannot be is reported in `warnings`, not fatal).
    pub async fn open(data_dir: DataDir) -> Result<Self> {
        Self::open_with_config(data_dir, SessionConfig::new()).await
    }

    pub async fn open_with_config(data_dir: DataDir, config: SessionConfig) -> Result<Self> {
        let state = crate::session_state(config);
        let registered = Arc::clone(state.catalog_list());
        let registered_only = state.clone();
        let ctx = SessionContext::new_with_state(state).enable_url_table();
        let mut warnings = Vec::new();
        for f in data_dir.remove_stale_ingest_files() {
            warnings.push(format!(
                "removed {}, left by an ingest that did not finish",
                f.display()
            ));
        }
        let models = crate::model_registry(&ctx.state());
        for (path, bytes) in data_dir.model_files() {
            // Listed under the name its file stands for: the one DROP MODEL finds it by.
            let listed = DataDir::model_name_of(&path);
            match bytes
                .map_err(|e| format!("cannot read it: {e}"))
                .and_then(|b| Model::from_bytes(&b).map_err(|e| e.message().into_owned()))
            {
                Ok(mut m) => {
                    if m.name != listed {
                        warnings.push(format!(
                            "model file {} holds model '{}'; it is listed as '{listed}'",
                            path.display(),
                            m.name
                        ));
                        m.name = listed;
                    }
                    models.insert_stored(m, path);
                }
                Err(e) => {
                    warnings.push(format!(
                        "model '{listed}' ({}) could not be restored: {e}; SHOW MODELS lists it as unusable, DROP MODEL {listed} removes it",
                        path.display()
                    ));
                    models.insert_unusable(&listed, path, e);
                }
            }
        }
        for (name, ddl) in data_dir.tables()? {
            if let Err(e) = ctx.sql(&ddl).await {
                warnings.push(format!("table '{name}' could not be restored: {e}"));
            }
        }
        // Views after the tables they read; a view of a view waits for a later round.
        let mut pending: Vec<(String, String)> = data_dir.views()?.into_iter().collect();
        loop {
            let before = pending.len();
            let mut failed = Vec::new();
            for (name, ddl) in pending {
                if let Err(e) = ctx.sql(&ddl).await {
                    failed.push((name, ddl, e));
                }
            }
            if failed.is_empty() {
                break;
            }
            if failed.len() == before {
                for (name, _, e) in failed {
                    warnings.push(format!("view '{name}' could not be restored: {e}"));
                }
                break;
            }
            pending = failed.into_iter().map(|(n, d, _)| (n, d)).collect();
        }
        Ok(PzContext {
            ctx,
            data_dir: Some(data_dir),
            warnings,
            registered,
            registered_only,
        })
    }

    /// Runs every statement of a script; returns each one's result.
    pub async fn run_script(&self, sql: &str) -> Result<Vec<StatementOutcome>> {
        let mut out = Vec::new();
        for stmt in pz_sql::parse_pz_statements(sql)? {
            out.push(self.run_pz_statement(stmt).await?);
        }
        Ok(out)
    }

    /// The models this session can use in `photoz()`.
    pub fn models(&self) -> ModelRegistry {
        crate::model_registry(&self.ctx.state())
    }

    /// Runs one statement, pz's model statements included.
    pub async fn run_pz_statement(&self, stmt: PzStatement) -> Result<StatementOutcome> {
        let one = |batch: RecordBatch| StatementOutcome {
            schema: batch.schema(),
            batches: vec![batch],
        };
        let models = self.models();
        match stmt {
            PzStatement::Sql(s) => self.run_statement(s).await,
            PzStatement::CreateModel(c) => {
                // Fail fast on a bad algorithm or name clash, before running the query.
                Algorithm::parse(&c.algorithm)?;
                if c.name.is_empty() {
                    return plan_err!("CREATE MODEL needs a name that is not empty");
                }
                if models.contains(&c.name) {
                    if c.if_not_exists {
                        let m = models.get(&c.name)?;
                        return Ok(one(crate::models::created_batch(&m)?));
                    }
                    if !c.or_replace {
                        return plan_err!("model '{}' already exists (use CREATE OR REPLACE MODEL, or DROP MODEL first)", c.name);
                    }
                }
                let query_sql = c.query.to_string();
                let mut state = self.ctx.state();
                let stmt = Statement::Statement(Box::new(SqlStatement::Query(c.query)));
                pz_catalogs::resolve::resolve_table_function_inputs(&mut state, &stmt).await?;
                let plan = state.statement_to_plan(stmt).await?;
                let df = self.ctx.execute_logical_plan(plan).await?;
                let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
                let batches = df.collect().await?;
                let model = crate::models::inform(
                    c.name.clone(),
                    &c.algorithm,
                    c.options,
                    schema,
                    batches,
                    query_sql,
                )
                .await?;
                let m = match &self.data_dir {
                    Some(dd) => {
                        let replaced = models.file_of(&model.name);
                        let path = dd.save_model(&model.name, &model.to_bytes()?)?;
                        // The model replaced may sit in another file (listed in another case).
                        if let Some(old) = replaced.filter(|old| *old != path) {
                            dd.remove_model_file(&old)?;
                        }
                        models.insert_stored(model, path)
                    }
                    None => models.insert(model),
                };
                Ok(one(crate::models::created_batch(&m)?))
            }
            PzStatement::DropModel { name, if_exists } => {
                // Usable or not (a corrupt file is listed too), by the name it is listed under.
                match models.remove_entry(&name) {
                    Some(m) => {
                        if let Some(dd) = &self.data_dir {
                            match &m.file {
                                Some(f) => dd.remove_model_file(f)?,
                                None => dd.remove_model(&m.name)?,
                            }
                        }
                        Ok(one(crate::models::message_batch(format!(
                            "dropped model {}",
                            m.name
                        ))?))
                    }
                    None if if_exists => Ok(one(crate::models::message_batch(format!(
                        "no model {name}"
                    ))?)),
                    None => Err(models.get(&name).err().unwrap_or_else(|| {
                        datafusion::common::DataFusionError::Plan(format!("unknown model '{name}'"))
                    })),
                }
            }
            PzStatement::ShowModels => Ok(one(crate::models::show_batch(
                &models.list(),
                &models.unusable(),
            )?)),
            PzStatement::DescribeModel { name } => Ok(one(crate::models::describe_batch(
                models.get(&name)?.as_ref(),
            )?)),
        }
    }

    /// Runs a script and returns the last statement's result.
    pub async fn run_last(&self, sql: &str) -> Result<Option<StatementOutcome>> {
        Ok(self.run_script(sql).await?.pop())
    }

    pub async fn run_statement(&self, mut stmt: Statement) -> Result<StatementOutcome> {
        // A local COPY writes to a temporary sibling first: a failed one leaves nothing.
        let staged = match &mut stmt {
            Statement::CopyTo(c) => crate::pipelines::output::StagedCopy::prepare(c)?,
            Statement::Explain(e) if e.options.analyze => match e.statement.as_mut() {
                Statement::CopyTo(c) => crate::pipelines::output::StagedCopy::prepare(c)?,
                _ => None,
            },
            _ => None,
        };
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
        let dropped_views = pz_sql::dropped_views(&stmt);
        let view = pz_sql::created_view(&stmt);
        let mut state = self.ctx.state();
        // Tables named inside crossmatch()/photoz_table() are found before planning, which
        // cannot wait for them.
        pz_catalogs::resolve::resolve_table_function_inputs(&mut state, &stmt).await?;
        let run = async {
            let plan = state.statement_to_plan(stmt).await?;
            let df = self.ctx.execute_logical_plan(plan).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            Ok::<_, datafusion::error::DataFusionError>((schema, df.collect().await?))
        };
        let (schema, batches) = match staged {
            Some(copy) => {
                let out = run.await.map_err(|e| copy.user_error(e))?;
                copy.commit()?;
                out
            }
            None => run.await?,
        };
        if let Some(dd) = &self.data_dir {
            if let Some((name, ddl)) = persist {
                dd.remember_table(&name, &ddl)?;
            }
            for name in dropped {
                dd.forget_table(&name)?;
            }
            if let Some((name, ddl)) = view {
                dd.remember_view(&name, &ddl)?;
            }
            for name in dropped_views {
                dd.forget_view(&name)?;
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
