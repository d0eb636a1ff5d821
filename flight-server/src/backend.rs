//! Planning and running statements for a caller, and listing what is served: the
//! [`QueryBackend`] the protocol layer talks to, and [`PzBackend`], pz's session over its data
//! directory. The protocol layer never touches a session itself, so each side can be tested
//! alone.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{ParamValues, TableReference};
use datafusion::datasource::TableType;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::memory::MemoryStream;
use pz_engine::PzContext;
use pz_sql::PzStatement;

use crate::auth::Principal;
use crate::error::ServeError;
use crate::executor::QueryRuntime;
use crate::limits::{self, Admission, Limits};
use crate::plan_cache::PlanCache;
use crate::policy;

/// What planning a statement told.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The schema of what the statement returns.
    pub schema: SchemaRef,
    /// One field per `$n` placeholder, in order (type `Null` when the planner cannot tell).
    pub parameters: SchemaRef,
    /// The result, when the statement had effects and so ran when it was planned.
    pub result: Option<Vec<RecordBatch>>,
    /// The statement was not run, and what it returns is known only once it runs
    /// (`schema` is empty): statements with effects, when not asked to run them.
    pub deferred: bool,
}

/// One table or view as Flight SQL lists it.
#[derive(Debug, Clone)]
pub struct TableEntry {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    /// `TABLE`, `VIEW` or `LOCAL TEMPORARY`.
    pub table_type: &'static str,
    pub arrow_schema: SchemaRef,
}

/// What an ingest asks for (Flight SQL's `CommandStatementIngest`, as ADBC's
/// `adbc_ingest` modes send it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRequest {
    pub table: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub temporary: bool,
    /// When the table does not exist: make it (`true`) or fail.
    pub create_if_missing: bool,
    pub if_exists: IfExists,
}

/// What an ingest does to a table that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    Fail,
    Append,
    Replace,
}

/// Batches sent by a client, decoded.
pub type IngestStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = datafusion::error::Result<RecordBatch>> + Send + 'static>,
>;

/// The session the server serves.
#[tonic::async_trait]
pub trait QueryBackend: Send + Sync + 'static {
    /// Plans `sql` (one statement) for `who`, with `parameters` bound if given. A statement
    /// that is not a query (one with effects, or pz's SHOW MODELS) is run now, once, when
    /// `run` is set, and otherwise only checked ([`Planned::deferred`]).
    async fn prepare(
        &self,
        who: &Principal,
        sql: &str,
        parameters: Option<ParamValues>,
        run: bool,
    ) -> Result<Planned, ServeError>;

    /// Runs `sql` for `who` and streams its result: the schema (the same [`Self::prepare`]
    /// gives) and the batches, produced as the client reads them.
    async fn execute(
        &self,
        who: &Principal,
        sql: &str,
        parameters: Option<ParamValues>,
    ) -> Result<(SchemaRef, SendableRecordBatchStream), ServeError>;

    /// Writes `batches` (of `schema`) into the table `request` names, for `who`; returns
    /// the rows written. Nothing is visible unless all of it is.
    async fn ingest(
        &self,
        who: &Principal,
        request: IngestRequest,
        schema: SchemaRef,
        batches: IngestStream,
    ) -> Result<u64, ServeError>;

    /// Every catalog name.
    fn catalogs(&self) -> Vec<String>;

    /// Every (catalog, schema).
    fn schemas(&self) -> Vec<(String, String)>;

    /// Every table and view, with its schema.
    async fn tables(&self) -> Result<Vec<TableEntry>, ServeError>;

    /// The registered table or view `path` names: `[table]`, `[schema, table]` or
    /// `[catalog, schema, table]`.
    async fn table(&self, path: &[String]) -> Result<TableEntry, ServeError>;
}

/// [`QueryBackend`] over a pz session.
pub struct PzBackend {
    ctx: Arc<PzContext>,
    limits: Limits,
    admission: Admission,
    runtime: QueryRuntime,
    plans: PlanCache,
}

impl PzBackend {
    /// Serves `ctx`; queries and statements run on `runtime`.
    pub fn new(ctx: Arc<PzContext>, limits: Limits, runtime: QueryRuntime) -> Self {
        PzBackend {
            ctx,
            limits,
            admission: Admission::default(),
            runtime,
            plans: PlanCache::default(),
        }
    }

    fn one_statement(sql: &str) -> Result<PzStatement, ServeError> {
        let mut stmts = pz_sql::parse_pz_statements(sql)?;
        match stmts.len() {
            1 => Ok(stmts.remove(0)),
            0 => Err(ServeError::invalid("no SQL statement in the request")),
            n => Err(ServeError::invalid(format!(
                "one SQL statement per request, got {n}"
            ))),
        }
    }

    /// The logical plan of a read-only SQL statement, planned where `who` may look.
    async fn plan(
        &self,
        who: &Principal,
        stmt: datafusion::sql::parser::Statement,
    ) -> Result<
        (
            datafusion::execution::session_state::SessionState,
            LogicalPlan,
        ),
        ServeError,
    > {
        let mut state = if who.admin {
            self.ctx.ctx.state()
        } else {
            self.ctx.registered_only_state()
        };
        pz_catalogs::resolve::resolve_table_function_inputs(&mut state, &stmt).await?;
        let plan = state.statement_to_plan(stmt).await?;
        Ok((state, plan))
    }

    /// Checks `sql` for `who`: the statement, and whether it only reads and can be planned.
    fn checked(&self, who: &Principal, sql: &str) -> Result<PzStatement, ServeError> {
        let stmt = Self::one_statement(sql)?;
        policy::check(who, &stmt, &|t| self.ctx.is_registered(t))?;
        Ok(stmt)
    }

    /// Runs a statement that is not a plain query (pz's own, or one with effects) to the end.
    async fn run_now(
        &self,
        stmt: PzStatement,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), ServeError> {
        let ctx = Arc::clone(&self.ctx);
        self.runtime
            .run(async move {
                let out = ctx.run_pz_statement(stmt).await?;
                Ok((out.schema, out.batches))
            })
            .await
    }
}

/// Whether planning gives the whole answer (a query) rather than running a statement.
fn is_plannable_query(stmt: &PzStatement) -> bool {
    matches!(stmt, PzStatement::Sql(_)) && policy::is_read_only(stmt)
}

fn parameter_schema(plan: &LogicalPlan) -> Result<SchemaRef, ServeError> {
    let mut fields: Vec<(usize, Field)> = Vec::new();
    for (name, field) in plan.get_parameter_fields()? {
        let n: usize = name.trim_start_matches('$').parse().map_err(|_| {
            ServeError::invalid(format!("parameter {name} is not positional ($1, $2, …)"))
        })?;
        let f = match field {
            Some(f) => f
                .as_ref()
                .clone()
                .with_name(name.clone())
                .with_nullable(true),
            None => Field::new(name.clone(), DataType::Null, true),
        };
        fields.push((n, f));
    }
    fields.sort_by_key(|(n, _)| *n);
    Ok(Arc::new(Schema::new(
        fields.into_iter().map(|(_, f)| f).collect::<Vec<_>>(),
    )))
}

#[tonic::async_trait]
impl QueryBackend for PzBackend {
    async fn prepare(
        &self,
        who: &Principal,
        sql: &str,
        parameters: Option<ParamValues>,
        run: bool,
    ) -> Result<Planned, ServeError> {
        let stmt = self.checked(who, sql)?;
        if !is_plannable_query(&stmt) {
            if parameters.is_some() {
                return Err(ServeError::invalid(
                    "parameters bind only into queries, not into statements that change what is served",
                ));
            }
            if !run {
                return Ok(Planned {
                    schema: Arc::new(Schema::empty()),
                    parameters: Arc::new(Schema::empty()),
                    result: None,
                    deferred: true,
                });
            }
            let (schema, batches) = self.run_now(stmt).await?;
            return Ok(Planned {
                schema,
                parameters: Arc::new(Schema::empty()),
                result: Some(batches),
                deferred: false,
            });
        }
        let PzStatement::Sql(stmt) = stmt else {
            return Err(ServeError::Internal("a query that is not SQL".into()));
        };
        let (state, plan) = self.plan(who, stmt).await?;
        let parameter_schema = parameter_schema(&plan)?;
        let plan = match parameters {
            Some(p) => plan.with_param_values(p)?,
            None => {
                self.plans
                    .keep(&who.user, who.admin, sql, state, plan.clone());
                plan
            }
        };
        Ok(Planned {
            schema: Arc::new(plan.schema().as_arrow().clone()),
            parameters: parameter_schema,
            result: None,
            deferred: false,
        })
    }

    async fn execute(
        &self,
        who: &Principal,
        sql: &str,
        parameters: Option<ParamValues>,
    ) -> Result<(SchemaRef, SendableRecordBatchStream), ServeError> {
        // Planned at GetFlightInfo a moment ago (and checked then, for the same user).
        let kept = match parameters {
            None => self.plans.take(&who.user, who.admin, sql),
            Some(_) => None,
        };
        let (permit, state, plan) = match kept {
            Some((state, plan)) => {
                let permit = self
                    .admission
                    .admit(&who.user, self.limits.queries_per_user)?;
                (permit, state, plan)
            }
            None => {
                let stmt = self.checked(who, sql)?;
                if !is_plannable_query(&stmt) {
                    let (schema, batches) = self.run_now(stmt).await?;
                    let stream = MemoryStream::try_new(batches, Arc::clone(&schema), None)?;
                    return Ok((schema, Box::pin(stream)));
                }
                let PzStatement::Sql(stmt) = stmt else {
                    return Err(ServeError::Internal("a query that is not SQL".into()));
                };
                let permit = self
                    .admission
                    .admit(&who.user, self.limits.queries_per_user)?;
                let (state, plan) = self.plan(who, stmt).await?;
                let plan = match parameters {
                    Some(p) => plan.with_param_values(p)?,
                    None => plan,
                };
                (permit, state, plan)
            }
        };
        // The logical schema is the one FlightInfo announced; the physical one may differ
        // in nullability, and the encoder re-stamps every batch with the announced one.
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let runtime = limits::query_runtime(&state, self.limits.query_memory_bytes)?;
        let stream = self.runtime.stream(Arc::clone(&schema), async move {
            let physical = state.create_physical_plan(&plan).await?;
            let task = TaskContext::from(&state);
            let task = match runtime {
                Some(r) => task.with_runtime(r),
                None => task,
            };
            execute_stream(physical, Arc::new(task))
        });
        Ok((
            schema,
            limits::bounded(stream, self.limits.query_time, permit),
        ))
    }

    async fn ingest(
        &self,
        who: &Principal,
        request: IngestRequest,
        schema: SchemaRef,
        batches: IngestStream,
    ) -> Result<u64, ServeError> {
        policy::check_ingest(who, &request.table)?;
        if request.temporary {
            return Err(ServeError::Unimplemented(
                "temporary tables: ingest makes tables that persist in the data directory".into(),
            ));
        }
        let state = self.ctx.ctx.state();
        let opts = &state.config_options().catalog;
        if request
            .catalog
            .as_deref()
            .is_some_and(|c| c != opts.default_catalog)
            || request
                .schema
                .as_deref()
                .is_some_and(|s| s != opts.default_schema)
        {
            return Err(ServeError::invalid(format!(
                "ingest writes into catalog '{}' and schema '{}', not {}.{}",
                opts.default_catalog,
                opts.default_schema,
                request.catalog.as_deref().unwrap_or(&opts.default_catalog),
                request.schema.as_deref().unwrap_or(&opts.default_schema),
            )));
        }
        pz_engine::ingest::check_table_name(&request.table)?;
        let exists = self.ctx.ctx.table_exist(request.table.as_str())?;
        let action = match (exists, request.if_exists, request.create_if_missing) {
            (false, _, true) => pz_engine::IngestAction::Create,
            (false, _, false) => {
                return Err(ServeError::NotFound(format!(
                    "table '{}' does not exist, and this ingest only appends (create it first, or ingest with mode create_append)",
                    request.table
                )))
            }
            (true, IfExists::Fail, _) => {
                return Err(ServeError::AlreadyExists(format!(
                    "table '{}' already exists (ingest mode create); use append or replace",
                    request.table
                )))
            }
            (true, IfExists::Append, _) => pz_engine::IngestAction::Append,
            (true, IfExists::Replace, _) => pz_engine::IngestAction::Replace,
        };
        let ctx = Arc::clone(&self.ctx);
        self.runtime
            .run(async move { Ok(ctx.ingest(&request.table, action, schema, batches).await?) })
            .await
    }

    fn catalogs(&self) -> Vec<String> {
        let mut names = self.ctx.ctx.catalog_names();
        names.sort();
        names
    }

    fn schemas(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for c in self.catalogs() {
            if let Some(cat) = self.ctx.ctx.catalog(&c) {
                let mut names = cat.schema_names();
                names.sort();
                out.extend(names.into_iter().map(|s| (c.clone(), s)));
            }
        }
        out
    }

    async fn tables(&self) -> Result<Vec<TableEntry>, ServeError> {
        let mut out = Vec::new();
        for (c, s) in self.schemas() {
            let Some(schema) = self.ctx.ctx.catalog(&c).and_then(|cat| cat.schema(&s)) else {
                continue;
            };
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                let Some(table) = schema.table(&name).await? else {
                    continue;
                };
                out.push(entry(&c, &s, name, table.as_ref()));
            }
        }
        Ok(out)
    }

    async fn table(&self, path: &[String]) -> Result<TableEntry, ServeError> {
        let reference = match path {
            [t] => TableReference::bare(t.as_str()),
            [s, t] => TableReference::partial(s.as_str(), t.as_str()),
            [c, s, t] => TableReference::full(c.as_str(), s.as_str(), t.as_str()),
            _ => {
                return Err(ServeError::invalid(format!(
                    "a path descriptor names a table as [table], [schema, table] or [catalog, schema, table], got {} parts",
                    path.len()
                )))
            }
        };
        let missing = || ServeError::NotFound(format!("table '{}' not found", path.join(".")));
        if !self.ctx.is_registered(&reference) {
            return Err(missing());
        }
        let state = self.ctx.ctx.state();
        let (r, schema) = pz_catalogs::resolve::schema_of(
            state.catalog_list().as_ref(),
            &state.config_options().catalog,
            &reference,
        )
        .ok_or_else(missing)?;
        let table = schema.table(&r.table).await?.ok_or_else(missing)?;
        Ok(entry(
            &r.catalog,
            &r.schema,
            r.table.to_string(),
            table.as_ref(),
        ))
    }
}

fn entry(catalog: &str, schema: &str, name: String, table: &dyn TableProvider) -> TableEntry {
    TableEntry {
        catalog: catalog.to_string(),
        schema: schema.to_string(),
        name,
        table_type: match table.table_type() {
            TableType::Base => "TABLE",
            TableType::View => "VIEW",
            TableType::Temporary => "LOCAL TEMPORARY",
        },
        arrow_schema: table.schema(),
    }
}
