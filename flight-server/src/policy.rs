//! What a caller who is not an admin may run: read-only SQL over what an admin registered.
//!
//! Statements with effects (DDL, DML, COPY, SET, CREATE/DROP MODEL) are refused, and so is
//! every way of naming data by path: a file or URL in `FROM`, `hats('<dir>')`,
//! `hats_info('<dir>')`, and `crossmatch` / `photoz_table` inputs that are not registered
//! tables. The planner is also given a state whose catalogs hold only registered tables
//! ([`pz_engine::PzContext::registered_only_state`]), so a path these rules missed still finds
//! nothing; the rules are here to say clearly what is not allowed.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::common::TableReference;
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    ObjectName, Query, Statement as SqlStatement, TableFactor, Visit, Visitor,
};
use pz_catalogs::resolve::{table_arguments, TableArgument};
use pz_sql::PzStatement;

use crate::auth::Principal;
use crate::error::ServeError;

/// Table functions that read a directory named by their arguments.
const PATH_FUNCTIONS: &[&str] = &["hats", "hats_info"];

/// Whether `who` may ingest rows into `table`: admins add tables, readers only read.
pub fn check_ingest(who: &Principal, table: &str) -> Result<(), ServeError> {
    if who.admin {
        return Ok(());
    }
    Err(ServeError::PermissionDenied(format!(
        "ingest (adbc_ingest) into '{table}' is not allowed: only admins add tables; readers only read"
    )))
}

/// Whether a statement leaves everything as it was (and so may be run to learn its schema).
pub fn is_read_only(stmt: &PzStatement) -> bool {
    match stmt {
        PzStatement::ShowModels | PzStatement::DescribeModel { .. } => true,
        PzStatement::CreateModel(_) | PzStatement::DropModel { .. } => false,
        PzStatement::Sql(s) => is_read_only_sql(s),
    }
}

fn is_read_only_sql(stmt: &DFStatement) -> bool {
    match stmt {
        DFStatement::Statement(s) => {
            matches!(
                s.as_ref(),
                SqlStatement::Query(_)
                    | SqlStatement::ShowTables { .. }
                    | SqlStatement::ShowColumns { .. }
                    | SqlStatement::ShowVariable { .. }
                    | SqlStatement::ShowFunctions { .. }
                    | SqlStatement::ExplainTable { .. }
            ) || matches!(s.as_ref(), SqlStatement::Explain { statement, .. }
                if matches!(statement.as_ref(), SqlStatement::Query(_)))
        }
        DFStatement::Explain(e) => is_read_only_sql(&e.statement),
        DFStatement::CopyTo(_) | DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {
            false
        }
    }
}

/// A short name for what a statement does, for refusals.
fn kind(stmt: &PzStatement) -> String {
    match stmt {
        PzStatement::CreateModel(_) => "CREATE MODEL".into(),
        PzStatement::DropModel { .. } => "DROP MODEL".into(),
        PzStatement::ShowModels => "SHOW MODELS".into(),
        PzStatement::DescribeModel { .. } => "DESCRIBE MODEL".into(),
        PzStatement::Sql(DFStatement::CopyTo(_)) => "COPY".into(),
        PzStatement::Sql(DFStatement::CreateExternalTable(_)) => "CREATE EXTERNAL TABLE".into(),
        PzStatement::Sql(DFStatement::Reset(_)) => "RESET".into(),
        PzStatement::Sql(DFStatement::Explain(_)) => "EXPLAIN of a statement with effects".into(),
        PzStatement::Sql(DFStatement::Statement(s)) => {
            // The statement's leading keywords, as written.
            let text = s.to_string();
            let words: Vec<&str> = text.split_whitespace().take(3).collect();
            let n = match words.as_slice() {
                [a, b, ..]
                    if a.eq_ignore_ascii_case("create") || a.eq_ignore_ascii_case("drop") =>
                {
                    if b.eq_ignore_ascii_case("or") || b.eq_ignore_ascii_case("external") {
                        3
                    } else {
                        2
                    }
                }
                _ => 1,
            };
            words[..n.min(words.len())].join(" ").to_uppercase()
        }
    }
}

/// Refuses what `who` may not run. `is_registered` says whether a table reference names a
/// registered table or view.
pub fn check(
    who: &Principal,
    stmt: &PzStatement,
    is_registered: &dyn Fn(&TableReference) -> bool,
) -> Result<(), ServeError> {
    if who.admin {
        return Ok(());
    }
    if !is_read_only(stmt) {
        return Err(ServeError::PermissionDenied(format!(
            "{} is not allowed: user '{}' has read-only access (queries on registered tables); statements that change what is served are for admins",
            kind(stmt),
            who.user
        )));
    }
    let PzStatement::Sql(sql) = stmt else {
        return Ok(());
    };
    let mut v = RelationRules {
        ctes: HashSet::new(),
        refusal: None,
        is_registered,
    };
    let _ = visit(sql, &mut v);
    match v.refusal {
        Some(why) => Err(ServeError::PermissionDenied(format!(
            "{why}: user '{}' may read only tables an admin registered",
            who.user
        ))),
        None => Ok(()),
    }
}

fn visit<V: Visitor>(stmt: &DFStatement, v: &mut V) -> ControlFlow<V::Break> {
    match stmt {
        DFStatement::Statement(s) => s.visit(v),
        DFStatement::Explain(e) => visit(&e.statement, v),
        DFStatement::CopyTo(c) => match &c.source {
            CopyToSource::Query(q) => q.visit(v),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => ControlFlow::Continue(()),
    }
}

struct RelationRules<'a> {
    /// Names of common table expressions seen so far: a `FROM` of one is no table.
    ctes: HashSet<String>,
    refusal: Option<String>,
    is_registered: &'a dyn Fn(&TableReference) -> bool,
}

impl RelationRules<'_> {
    fn refuse(&mut self, why: String) -> ControlFlow<()> {
        self.refusal = Some(why);
        ControlFlow::Break(())
    }
}

/// `name` as written, and whether it was a quoted string (`FROM '/data/x.parquet'`).
fn name_text(name: &ObjectName) -> (String, bool) {
    let text = name.to_string();
    let quoted = text.starts_with('\'');
    (text, quoted)
}

fn looks_like_path(name: &str) -> bool {
    name.contains('/') || name.contains("://") || name.contains('\\')
}

impl Visitor for RelationRules<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, args, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let (text, quoted) = name_text(name);
        match args {
            None => {
                if quoted || looks_like_path(&text) {
                    return self.refuse(format!("reading {text} by its path is not allowed"));
                }
                if name.0.len() == 1 && self.ctes.contains(&text.trim_matches('"').to_lowercase()) {
                    return ControlFlow::Continue(());
                }
                // An unknown name is left to the planner, which reports it as not found.
                ControlFlow::Continue(())
            }
            Some(_) => {
                let function = name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_lowercase())
                    .unwrap_or_default();
                if PATH_FUNCTIONS.contains(&function.as_str()) {
                    return self.refuse(format!(
                        "{function}() opens a catalog by its path and is not allowed"
                    ));
                }
                let Some((_, table_args)) = table_arguments(factor) else {
                    return ControlFlow::Continue(());
                };
                for arg in table_args {
                    match arg.value {
                        TableArgument::Name(table)
                            if (self.is_registered)(&TableReference::from(table.as_str())) => {}
                        TableArgument::Name(table) => {
                            return self.refuse(format!(
                                "{function}() input '{table}' is not a registered table"
                            ))
                        }
                        TableArgument::NotAString => {
                            return self.refuse(format!(
                                "{function}() argument {} must name a registered table as a string",
                                arg.position + 1
                            ))
                        }
                    }
                }
                ControlFlow::Continue(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Principal {
        Principal {
            user: "ann".into(),
            admin: false,
        }
    }

    fn verdict(sql: &str) -> Result<(), String> {
        let stmt = pz_sql::parse_pz_statements(sql).unwrap().pop().unwrap();
        let registered = |t: &TableReference| matches!(t.table(), "objects" | "specz");
        check(&reader(), &stmt, &registered).map_err(|e| {
            assert!(matches!(e, ServeError::PermissionDenied(_)), "{e}");
            e.to_string()
        })
    }

    #[test]
    fn readers_may_query_what_is_registered() {
        for sql in [
            "SELECT * FROM objects",
            "SELECT count(*) FROM objects o JOIN specz s ON o.\"objectId\" = s.id",
            "WITH t AS (SELECT 1 AS a) SELECT * FROM t",
            "SELECT * FROM crossmatch('specz', 'objects', 1.0)",
            "SELECT * FROM generate_series(1, 3)",
            "EXPLAIN SELECT * FROM objects",
            "SHOW TABLES",
            "SHOW MODELS",
            "SELECT * FROM nosuch",
        ] {
            assert_eq!(verdict(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn readers_may_not_change_anything_or_reach_files() {
        for (sql, words) in [
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW is not allowed"),
            ("CREATE OR REPLACE VIEW v AS SELECT 1", "CREATE OR REPLACE"),
            ("DROP TABLE objects", "DROP TABLE is not allowed"),
            (
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'",
                "CREATE EXTERNAL TABLE",
            ),
            ("COPY (SELECT 1) TO '/tmp/x.parquet'", "COPY is not allowed"),
            ("INSERT INTO objects VALUES (1)", "INSERT is not allowed"),
            (
                "SET datafusion.execution.batch_size = 1",
                "SET is not allowed",
            ),
            (
                "CREATE MODEL m USING knn AS SELECT * FROM specz",
                "CREATE MODEL is not allowed",
            ),
            ("DROP MODEL m", "DROP MODEL is not allowed"),
            (
                "SELECT * FROM '/etc/passwd'",
                "reading '/etc/passwd' by its path",
            ),
            (
                "SELECT * FROM (SELECT * FROM 'x.parquet') t",
                "reading 'x.parquet' by its path",
            ),
            (
                "SELECT * FROM hats('/data/dp1')",
                "hats() opens a catalog by its path",
            ),
            ("SELECT * FROM hats_info('/data/dp1')", "hats_info()"),
            (
                "SELECT * FROM crossmatch('/data/specz.parquet', 'objects', 1.0)",
                "input '/data/specz.parquet' is not a registered table",
            ),
            (
                "SELECT * FROM photoz_table('knn', '/data/o')",
                "photoz_table() input '/data/o'",
            ),
            (
                "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/x.csv'",
                "not allowed",
            ),
        ] {
            let e = verdict(sql).expect_err(sql);
            assert!(e.contains(words), "{sql}: {e}");
        }
    }

    #[test]
    fn admins_may_do_anything() {
        let admin = Principal {
            user: "root".into(),
            admin: true,
        };
        let stmt = pz_sql::parse_pz_statements("COPY (SELECT 1) TO '/tmp/x.parquet'")
            .unwrap()
            .pop()
            .unwrap();
        assert!(check(&admin, &stmt, &|_| false).is_ok());
    }
}
