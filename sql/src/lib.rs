//! pz's SQL front end: splitting scripts into statements and the DDL pz persists.
//! (pz's own statements, such as `CREATE MODEL … AS SELECT`, are parsed here too as they
//! arrive.)

pub mod model;
pub use model::{parse_pz_statements, CreateModel, PzStatement};

use datafusion::common::{plan_datafusion_err, Result};
use datafusion::sql::parser::{CreateExternalTable, DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::{ObjectType, Statement as SqlStatement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

/// Parses a `;`-separated script into statements.
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    let dialect = GenericDialect {};
    let mut parser = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .map_err(|e| plan_datafusion_err!("SQL syntax error: {e}"))?;
    let stmts = parser
        .parse_statements()
        .map_err(|e| plan_datafusion_err!("SQL syntax error: {e}"))?;
    Ok(stmts.into_iter().collect())
}

/// Table names a `DROP TABLE` statement removes (empty for anything else).
pub fn dropped_tables(stmt: &Statement) -> Vec<String> {
    match stmt {
        Statement::Statement(s) => match s.as_ref() {
            SqlStatement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            } => names.iter().map(|n| n.to_string()).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
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
    fn syntax_errors_are_plain() {
        let e = parse_statements("SELEC 1").unwrap_err().to_string();
        assert!(e.contains("syntax"), "{e}");
    }
}
