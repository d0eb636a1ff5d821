//! pz's SQL front end: splitting scripts into statements and the DDL pz persists.
//! (pz's own statements, such as `CREATE MODEL … AS SELECT`, are parsed here too as they
//! arrive.)

pub mod field_access;
pub mod model;
pub use model::{CreateModel, PzStatement};

use datafusion::common::{plan_datafusion_err, Result};
use datafusion::sql::parser::{CreateExternalTable, DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::{ObjectType, Statement as SqlStatement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

/// Stack of the thread that parses: sqlparser's recursion limit (50 levels) can still need
/// more than a 2 MiB worker thread has in a debug build, and the depth check walks up to
/// [`field_access::MAX_EXPR_DEPTH`] levels. Only the pages used are ever committed.
const PARSER_STACK_BYTES: usize = 256 << 20;

/// Runs `parse` on a thread with [`PARSER_STACK_BYTES`] of stack (on this thread if one
/// cannot be started), so no script can overflow the caller's stack.
fn on_parser_stack<T: Send>(parse: impl Fn() -> Result<T> + Sync) -> Result<T> {
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name("pz-sql-parse".into())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(s, &parse);
        match spawned {
            Ok(h) => h.join().unwrap_or_else(|_| {
                Err(plan_datafusion_err!(
                    "SQL: the parser failed on this script"
                ))
            }),
            Err(_) => parse(),
        }
    })
}

/// Parses a `;`-separated script into statements.
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    on_parser_stack(|| {
        let dialect = GenericDialect {};
        let mut parser = DFParserBuilder::new(sql)
            .with_dialect(&dialect)
            .build()
            .map_err(|e| plan_datafusion_err!("SQL syntax error: {e}"))?;
        let stmts = parser
            .parse_statements()
            .map_err(|e| plan_datafusion_err!("SQL syntax error: {e}"))?;
        stmts
            .into_iter()
            .map(|mut s| {
                field_access::rewrite_statement(&mut s)?;
                Ok(s)
            })
            .collect()
    })
}

/// Parses a `;`-separated script that may mix pz's model statements (`CREATE MODEL`, …)
/// with DataFusion SQL. Any text gives statements or an error.
pub fn parse_pz_statements(sql: &str) -> Result<Vec<PzStatement>> {
    on_parser_stack(|| model::parse_pz_statements(sql))
}

/// Table names a `DROP TABLE` statement removes (empty for anything else).
pub fn dropped_tables(stmt: &Statement) -> Vec<String> {
    dropped(stmt, ObjectType::Table)
}

/// View names a `DROP VIEW` statement removes (empty for anything else).
pub fn dropped_views(stmt: &Statement) -> Vec<String> {
    dropped(stmt, ObjectType::View)
}

fn dropped(stmt: &Statement, kind: ObjectType) -> Vec<String> {
    match stmt {
        Statement::Statement(s) => match s.as_ref() {
            SqlStatement::Drop {
                object_type, names, ..
            } if *object_type == kind => names.iter().map(|n| n.to_string()).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The name and statement of a `CREATE [OR REPLACE] VIEW` that outlives the session (not
/// `TEMPORARY`), as it is kept in the data directory.
pub fn created_view(stmt: &Statement) -> Option<(String, String)> {
    match stmt {
        Statement::Statement(s) => match s.as_ref() {
            SqlStatement::CreateView(v) if !v.temporary => {
                Some((v.name.to_string(), s.to_string()))
            }
            _ => None,
        },
        _ => None,
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// DDL that recreates an external table, with its locations replaced by `locations`
/// (absolute, so it works from any directory).
pub fn external_table_ddl(c: &CreateExternalTable, locations: &[String]) -> String {
    let mut s = format!("CREATE EXTERNAL TABLE {} ", c.name);
    if !c.columns.is_empty() {
        let cols: Vec<String> = c.columns.iter().map(|c| c.to_string()).collect();
        s.push_str(&format!("({}) ", cols.join(", ")));
    }
    s.push_str(&format!("STORED AS {} ", c.file_type));
    if !c.table_partition_cols.is_empty() {
        s.push_str(&format!(
            "PARTITIONED BY ({}) ",
            c.table_partition_cols.join(", ")
        ));
    }
    match locations {
        [one] => s.push_str(&format!("LOCATION {}", quote(one))),
        many => s.push_str(&format!(
            "LOCATION ({})",
            many.iter().map(|l| quote(l)).collect::<Vec<_>>().join(", ")
        )),
    }
    if !c.options.is_empty() {
        let opts: Vec<String> = c
            .options
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{} {}", quote(k), quote(&v))
            })
            .collect();
        s.push_str(&format!(" OPTIONS ({})", opts.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_round_trips_ddl() {
        let stmts = parse_statements(
            "CREATE EXTERNAL TABLE t STORED AS HATS LOCATION 'a b' OPTIONS ('margin' 'x''y'); \
             SELECT 1; DROP TABLE t",
        )
        .unwrap();
        assert_eq!(stmts.len(), 3);
        let Statement::CreateExternalTable(c) = &stmts[0] else {
            panic!("not a create")
        };
        let ddl = external_table_ddl(c, &["/abs/a b".to_string()]);
        assert_eq!(
            ddl,
            "CREATE EXTERNAL TABLE t STORED AS HATS LOCATION '/abs/a b' OPTIONS ('margin' 'x''y')"
        );
        let again = parse_statements(&ddl).unwrap();
        assert!(matches!(again[0], Statement::CreateExternalTable(_)));
        assert_eq!(dropped_tables(&stmts[2]), vec!["t".to_string()]);
        assert!(dropped_tables(&stmts[1]).is_empty());
    }

    #[test]
    fn arbitrary_scripts_never_panic() {
        // Scripts come from users (and, later, from network clients): any text must give
        // statements or an error, never a panic or a stack overflow.
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let pieces = [
            "CREATE", "OR", "REPLACE", "MODEL", "IF", "NOT", "EXISTS", "USING", "OPTIONS", "AS",
            "SELECT", "DROP", "SHOW", "MODELS", "DESCRIBE", "DESC", "COPY", "TO", "EXPLAIN", "(",
            ")", ",", ";", "'a'", "\"b\"", "-", "1", "x", ".", "[", "]", "f(1).z", "*", "FROM",
            "'", "\"", "$$", "--", "/*", "\u{0}", "é", " ", "\n",
        ];
        for _ in 0..5_000 {
            let n = (next() % 16) as usize;
            let sql: Vec<&str> = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            let _ = parse_pz_statements(&sql.join(" "));
            let _ = parse_statements(&sql.join(""));
        }
        for deep in [
            format!("SELECT {}1{}", "(".repeat(50_000), ")".repeat(50_000)),
            format!("SELECT {}1", "-".repeat(50_000)),
            format!("SELECT {}1", "f(".repeat(50_000)),
            format!(
                "CREATE MODEL m USING knn AS SELECT {}1",
                "f(".repeat(50_000)
            ),
            format!("SELECT 1{}", " + 1".repeat(100_000)),
            format!(
                "CREATE MODEL m USING knn AS SELECT 1{}",
                " OR x".repeat(100_000)
            ),
        ] {
            let e = parse_pz_statements(&deep).unwrap_err().to_string();
            assert!(e.contains("SQL"), "{e}");
        }
        // Long but flat is fine.
        assert!(parse_pz_statements(&format!("SELECT f(1){}", ".z".repeat(40))).is_ok());
        let list: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        assert!(parse_pz_statements(&format!("SELECT 1 IN ({})", list.join(","))).is_ok());
        let e = parse_statements(&format!("SELECT 1{}", " + 1".repeat(5_000)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested more than 1000 levels"), "{e}");
    }

    #[test]
    fn syntax_errors_are_plain() {
        let e = parse_statements("SELEC 1").unwrap_err().to_string();
        assert!(e.contains("syntax"), "{e}");
    }
}
