//! Tables named by string arguments of table functions (`crossmatch('specz', 'objects', …)`,
//! `photoz_table('knn', '/data/x.parquet')`), found without blocking the thread.
//!
//! DataFusion 55 calls a table function synchronously while it plans, but finding a table
//! may need I/O: a file or URL table lists files and infers a schema through its object
//! store. Waiting for that inside the call would block a tokio worker, and hang outright on
//! a current-thread runtime or with a store that needs the reactor. So, as DataFusion does
//! for the tables of a `FROM` clause, the inputs are looked up asynchronously before
//! planning ([`resolve_table_function_inputs`]) and handed to the call through the session
//! config ([`ResolvedInputs`]). At call time only lookups that complete at once (registered
//! tables) are made; nothing waits.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::{CatalogProviderList, SchemaProvider, Session, TableProvider};
use datafusion::common::config::CatalogOptions;
use datafusion::common::{
    plan_datafusion_err, plan_err, ResolvedTableReference, Result, TableReference,
};
use datafusion::execution::session_state::SessionState;
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, TableFactor, Value, Visit, Visitor,
};
use futures::FutureExt;
use std::ops::ControlFlow;

/// Table functions whose arguments (0-based positions) name tables.
pub const TABLE_ARGUMENTS: &[(&str, &[usize])] = &[("crossmatch", &[0, 1]), ("photoz_table", &[1])];

/// Inputs resolved ahead of planning, by the name as written in the call.
#[derive(Debug, Default, Clone)]
pub struct ResolvedInputs {
    tables: HashMap<String, Arc<dyn TableProvider>>,
}

impl ResolvedInputs {
    pub fn get(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        self.tables.get(name).cloned()
    }
}

/// What a name given to a table function stands for.
pub enum Input {
    /// A table (registered, or a file/URL table resolved before planning), with the short
    /// name its columns are qualified by.
    Table(String, Arc<dyn TableProvider>),
    /// A HATS catalog directory; the caller opens it with its own margin choice.
    HatsDir,
}

/// True when `name` is a directory holding a HATS or HiPSCat catalog.
pub fn is_hats_dir(name: &str) -> bool {
    let path = std::path::Path::new(name);
    path.join("hats.properties").is_file()
        || path.join("properties").is_file()
        || path.join("catalog_info.json").is_file()
}

/// Resolves `name` for table function `function` without waiting: a registered table in
/// `registered` (looked up only if that completes at once), else a HATS directory, else a
/// table [`resolve_table_function_inputs`] found before planning. `Ok(None)`: unknown.
pub fn resolve_input(
    session: &dyn Session,
    registered: &Arc<dyn CatalogProviderList>,
    function: &str,
    name: &str,
) -> Result<Option<Input>> {
    let pre = session
        .config()
        .get_extension::<ResolvedInputs>()
        .and_then(|r| r.get(name));
    let reference = TableReference::from(name);
    let short = reference.table().to_string();
    match lookup_now(session, registered, &reference) {
        Lookup::Found(p) => return Ok(Some(Input::Table(short, p))),
        Lookup::Failed(e) => {
            return Err(plan_datafusion_err!(
                "{function}: looking up table '{name}': {}",
                e.message()
            ))
        }
        Lookup::Pending => {
            // A catalog that answers asynchronously: only a lookup made before planning
            // can be used.
            if let Some(p) = pre {
                return Ok(Some(Input::Table(short, p)));
            }
            return plan_err!(
                "{function}: table '{name}' is in a catalog that answers asynchronously and was not resolved before planning (plan the statement through pz's session, or register the table first)"
            );
        }
        Lookup::Absent => {}
    }
    if is_hats_dir(name) {
        return Ok(Some(Input::HatsDir));
    }
    Ok(pre.map(|p| Input::Table(display_name(name), p)))
}

enum Lookup {
    Found(Arc<dyn TableProvider>),
    Absent,
    Pending,
    Failed(datafusion::error::DataFusionError),
}

fn lookup_now(
    session: &dyn Session,
    catalogs: &Arc<dyn CatalogProviderList>,
    r: &TableReference,
) -> Lookup {
    let Some((_, schema)) = schema_of(catalogs.as_ref(), &session.config_options().catalog, r)
    else {
        return Lookup::Absent;
    };
    match schema.table(r.table()).now_or_never() {
        None => Lookup::Pending,
        Some(Ok(Some(p))) => Lookup::Found(p),
        Some(Ok(None)) => Lookup::Absent,
        Some(Err(e)) => Lookup::Failed(e),
    }
}

/// The name a file table's columns are qualified by: its file name without extension.
fn display_name(name: &str) -> String {
    let last = name
        .trim_end_matches('/')
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name);
    let stem = last.split('.').next().unwrap_or(last);
    if stem.is_empty() {
        name.to_string()
    } else {
        stem.to_string()
    }
}

/// Looks up, asynchronously, every table named by a string argument of the table functions
/// in [`TABLE_ARGUMENTS`] anywhere in `statement`, through the session's catalogs (file and
/// URL tables included), and stores what it finds in `state`'s config for the calls to
/// use. HATS directories are left to the functions. Call it on the state that will plan
/// `statement`.
pub async fn resolve_table_function_inputs(
    state: &mut SessionState,
    statement: &DFStatement,
) -> Result<()> {
    let names = table_function_inputs(statement);
    if names.is_empty() {
        return Ok(());
    }
    let mut tables = HashMap::new();
    for (function, name) in names {
        if tables.contains_key(&name) || is_hats_dir(&name) {
            continue;
        }
        let found = lookup(state, &name)
            .await
            .map_err(|e| plan_datafusion_err!("{function}: table '{name}': {}", e.message()))?;
        if let Some(p) = found {
            tables.insert(name, p);
        }
    }
    state
        .config_mut()
        .set_extension(Arc::new(ResolvedInputs { tables }));
    Ok(())
}

/// The table `name` stands for in the session's catalogs: as a (possibly qualified)
/// reference, else as one bare name (how a quoted file path or URL is looked up).
async fn lookup(state: &SessionState, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
    let parsed = TableReference::from(name);
    let bare = TableReference::bare(name);
    let mut refs = vec![parsed.clone()];
    if parsed != bare {
        refs.push(bare);
    }
    for r in refs {
        let Some((r, schema)) = schema_of(
            state.catalog_list().as_ref(),
            &state.config_options().catalog,
            &r,
        ) else {
            continue;
        };
        if let Some(p) = schema.table(&r.table).await? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// (function, name) for every string literal a table function of [`TABLE_ARGUMENTS`] takes
/// as a table, in the order they appear.
pub fn table_function_inputs(statement: &DFStatement) -> Vec<(&'static str, String)> {
    let mut v = ArgVisitor(Vec::new());
    visit(statement, &mut v);
    v.0
}

fn visit(statement: &DFStatement, v: &mut ArgVisitor) {
    match statement {
        DFStatement::Statement(s) => {
            let _ = s.visit(v);
        }
        DFStatement::CopyTo(c) => {
            if let CopyToSource::Query(q) = &c.source {
                let _ = q.visit(v);
            }
        }
        DFStatement::Explain(e) => visit(&e.statement, v),
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {}
    }
}

struct ArgVisitor(Vec<(&'static str, String)>);

impl Visitor for ArgVisitor {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let Some((function, args)) = table_arguments(factor) {
            for arg in args {
                if let TableArgument::Name(s) = arg.value {
                    self.0.push((function, s));
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// One argument of a table function that takes tables (see [`TABLE_ARGUMENTS`]).
pub struct TableArgumentAt {
    /// 0-based position in the call.
    pub position: usize,
    pub value: TableArgument,
}

pub enum TableArgument {
    /// A string literal: the table's name, path or URL.
    Name(String),
    /// Anything else (a column, an expression): no table can be named this way.
    NotAString,
}

/// When `factor` calls a table function of [`TABLE_ARGUMENTS`]: its name and the
/// arguments at its table positions (those the call has).
pub fn table_arguments(factor: &TableFactor) -> Option<(&'static str, Vec<TableArgumentAt>)> {
    let TableFactor::Table {
        name,
        args: Some(args),
        ..
    } = factor
    else {
        return None;
    };
    let fname = name.0.last().and_then(|p| p.as_ident())?;
    let (function, positions) = TABLE_ARGUMENTS
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(&fname.value))?;
    let found = positions
        .iter()
        .filter_map(|&position| {
            let arg = args.args.get(position)?;
            let value = match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))) => match &v.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                        TableArgument::Name(s.clone())
                    }
                    _ => TableArgument::NotAString,
                },
                _ => TableArgument::NotAString,
            };
            Some(TableArgumentAt { position, value })
        })
        .collect();
    Some((function, found))
}

/// The schema `reference` lives in among `catalogs`, and the reference resolved against
/// the session's default catalog and schema; `None` when that catalog or schema does not
/// exist. The one place a table reference is resolved for lookups.
pub fn schema_of(
    catalogs: &dyn CatalogProviderList,
    defaults: &CatalogOptions,
    reference: &TableReference,
) -> Option<(ResolvedTableReference, Arc<dyn SchemaProvider>)> {
    let r = reference
        .clone()
        .resolve(&defaults.default_catalog, &defaults.default_schema);
    let schema = catalogs.catalog(&r.catalog)?.schema(&r.schema)?;
    Some((r, schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn inputs(sql: &str) -> Vec<(&'static str, String)> {
        let stmt = DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        table_function_inputs(&stmt)
    }

    #[test]
    fn finds_table_arguments_wherever_the_call_is() {
        assert_eq!(
            inputs("SELECT * FROM crossmatch('a', '/x/b.parquet', 1.0)"),
            vec![
                ("crossmatch", "a".into()),
                ("crossmatch", "/x/b.parquet".into())
            ]
        );
        assert_eq!(
            inputs(
                "EXPLAIN WITH t AS (SELECT * FROM photoz_table('knn', 'o')) \
                 SELECT * FROM t JOIN (SELECT 1) s ON true"
            ),
            vec![("photoz_table", "o".into())]
        );
        assert_eq!(
            inputs("COPY (SELECT * FROM CROSSMATCH('l', 'r', 1.0)) TO '/tmp/x' STORED AS PARQUET"),
            vec![("crossmatch", "l".into()), ("crossmatch", "r".into())]
        );
        assert!(inputs("SELECT * FROM hats('/dir')").is_empty());
        assert!(inputs("SELECT 1").is_empty());
    }

    #[test]
    fn file_tables_are_named_by_their_stem() {
        assert_eq!(display_name("/data/specz.parquet"), "specz");
        assert_eq!(display_name("s3://b/cat/objects/"), "objects");
        assert_eq!(display_name("x"), "x");
    }
}
