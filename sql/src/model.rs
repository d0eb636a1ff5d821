//! pz's model statements: `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] <name> USING <algorithm>
//! [OPTIONS (key 'value', …)] AS <query>`, `DROP MODEL [IF EXISTS] <name>`, `SHOW MODELS`,
//! `DESCRIBE MODEL <name>`. Everything else is DataFusion's SQL.

use datafusion::common::{plan_datafusion_err, plan_err, Result};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Query;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

/// One statement of a pz script.
#[derive(Debug, Clone)]
pub enum PzStatement {
    Sql(Statement),
    CreateModel(CreateModel),
    DropModel { name: String, if_exists: bool },
    ShowModels,
    DescribeModel { name: String },
}

#[derive(Debug, Clone)]
pub struct CreateModel {
    pub name: String,
    pub algorithm: String,
    /// OPTIONS in the order given (keys lower-cased).
    pub options: Vec<(String, String)>,
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub query: Box<Query>,
}

fn is_word(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(x) if x.value.eq_ignore_ascii_case(w) && x.quote_style.is_none())
}

fn syntax(e: impl std::fmt::Display) -> datafusion::common::DataFusionError {
    plan_datafusion_err!("SQL syntax error: {e}")
}

/// A name: unquoted identifiers fold to lower case, as SQL does.
fn parse_name(p: &mut Parser, what: &str) -> Result<String> {
    let t = p.next_token();
    match t.token {
        Token::Word(w) if w.quote_style.is_some() => Ok(w.value),
        Token::Word(w) => Ok(w.value.to_lowercase()),
        Token::SingleQuotedString(s) => Ok(s),
        other => plan_err!(
            "SQL syntax error: expected {what}, found {other} at {}",
            t.span.start
        ),
    }
}

fn parse_options(p: &mut Parser) -> Result<Vec<(String, String)>> {
    p.expect_token(&Token::LParen).map_err(syntax)?;
    let mut out = Vec::new();
    if p.consume_token(&Token::RParen) {
        return Ok(out);
    }
    loop {
        let key = match p.next_token().token {
            Token::Word(w) => w.value.to_lowercase(),
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.to_lowercase(),
            other => return plan_err!("SQL syntax error: expected an OPTIONS key, found {other}"),
        };
        let negative = p.consume_token(&Token::Minus);
        let value = match p.next_token().token {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Word(w) => w.value,
            other => {
                return plan_err!(
                    "SQL syntax error: expected a value for OPTIONS key '{key}', found {other}"
                )
            }
        };
        let value = if negative { format!("-{value}") } else { value };
        if out.iter().any(|(k, _)| *k == key) {
            return plan_err!("OPTIONS key '{key}' is given twice");
        }
        out.push((key, value));
        let comma = p.consume_token(&Token::Comma);
        if p.consume_token(&Token::RParen) {
            return Ok(out);
        }
        if !comma {
            return plan_err!(
                "SQL syntax error: expected ',' or ')' in OPTIONS, found {}",
                p.peek_token()
            );
        }
    }
}

/// Parses a `;`-separated script that may mix pz's model statements with DataFusion SQL.
pub fn parse_pz_statements(sql: &str) -> Result<Vec<PzStatement>> {
    let dialect = GenericDialect {};
    let mut df = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .map_err(syntax)?;
    let mut out = Vec::new();
    let mut expecting_delimiter = false;
    loop {
        while df.parser.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        let t0 = df.parser.peek_token().token;
        if t0 == Token::EOF {
            break;
        }
        if expecting_delimiter {
            return plan_err!("SQL syntax error: expected end of statement, found {t0}");
        }
        let t1 = df.parser.peek_nth_token(1).token;
        let t2 = df.parser.peek_nth_token(2).token;
        let t3 = df.parser.peek_nth_token(3).token;
        let p = &mut df.parser;
        let stmt = if is_word(&t0, "CREATE")
            && (is_word(&t1, "MODEL")
                || (is_word(&t1, "OR") && is_word(&t2, "REPLACE") && is_word(&t3, "MODEL")))
        {
            p.next_token();
            let or_replace = is_word(&t1, "OR");
            if or_replace {
                p.next_token();
                p.next_token();
            }
            p.next_token(); // MODEL
            let if_not_exists = if is_word(&p.peek_token().token, "IF") {
                p.next_token();
                if !is_word(&p.next_token().token, "NOT")
                    || !is_word(&p.next_token().token, "EXISTS")
                {
                    return plan_err!("SQL syntax error: expected IF NOT EXISTS");
                }
                true
            } else {
                false
            };
            let name = parse_name(p, "a model name after CREATE MODEL")?;
            if !is_word(&p.next_token().token, "USING") {
                return plan_err!(
                    "SQL syntax error: expected USING <algorithm> after CREATE MODEL {name} (e.g. USING knn)"
                );
            }
            let algorithm = parse_name(p, "an algorithm name after USING")?;
            let options = if is_word(&p.peek_token().token, "OPTIONS") {
                p.next_token();
                parse_options(p)?
            } else {
                Vec::new()
            };
            if !is_word(&p.next_token().token, "AS") {
                return plan_err!("SQL syntax error: expected AS SELECT … (the training data) in CREATE MODEL {name}");
            }
            let query = p.parse_query().map_err(syntax)?;
            PzStatement::CreateModel(CreateModel {
                name,
                algorithm,
                options,
                or_replace,
                if_not_exists,
                query,
            })
        } else if is_word(&t0, "DROP") && is_word(&t1, "MODEL") {
            p.next_token();
            p.next_token();
            let if_exists = if is_word(&p.peek_token().token, "IF") {
                p.next_token();
                if !is_word(&p.next_token().token, "EXISTS") {
                    return plan_err!("SQL syntax error: expected IF EXISTS");
                }
                true
            } else {
                false
            };
            let name = parse_name(p, "a model name after DROP MODEL")?;
            PzStatement::DropModel { name, if_exists }
        } else if is_word(&t0, "SHOW") && is_word(&t1, "MODELS") {
            p.next_token();
            p.next_token();
            PzStatement::ShowModels
        } else if (is_word(&t0, "DESCRIBE") || is_word(&t0, "DESC")) && is_word(&t1, "MODEL") {
            p.next_token();
            p.next_token();
            let name = parse_name(p, "a model name after DESCRIBE MODEL")?;
            PzStatement::DescribeModel { name }
        } else {
            PzStatement::Sql(df.parse_statement().map_err(syntax)?)
        };
        let mut stmt = stmt;
        crate::field_access::rewrite_pz_statement(&mut stmt)?;
        out.push(stmt);
        expecting_delimiter = true;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_statements() {
        let s = parse_pz_statements(
            "CREATE MODEL Knn1 USING KNN OPTIONS (nneigh_max '9', sigma_grid_min 0.02, \"Seed\" -3) AS SELECT * FROM t WHERE x > 1; \
             create or replace model \"Mixed\" using bpz as (select 1); SHOW MODELS; DESCRIBE MODEL knn1; \
             DROP MODEL IF EXISTS knn1; SELECT 2",
        )
        .unwrap();
        assert_eq!(s.len(), 6);
        let PzStatement::CreateModel(c) = &s[0] else {
            panic!("{:?}", s[0])
        };
        assert_eq!(c.name, "knn1");
        assert_eq!(c.algorithm, "knn");
        assert_eq!(
            c.options,
            vec![
                ("nneigh_max".to_string(), "9".to_string()),
                ("sigma_grid_min".to_string(), "0.02".to_string()),
                ("seed".to_string(), "-3".to_string())
            ]
        );
        assert_eq!(c.query.to_string(), "SELECT * FROM t WHERE x > 1");
        let PzStatement::CreateModel(c) = &s[1] else {
            panic!()
        };
        assert!(c.or_replace);
        assert_eq!(c.name, "Mixed");
        assert!(matches!(s[2], PzStatement::ShowModels));
        assert!(matches!(&s[3], PzStatement::DescribeModel { name } if name == "knn1"));
        assert!(
            matches!(&s[4], PzStatement::DropModel { name, if_exists: true } if name == "knn1")
        );
        assert!(matches!(s[5], PzStatement::Sql(_)));
    }

    #[test]
    fn model_syntax_errors_say_what_is_missing() {
        let e = parse_pz_statements("CREATE MODEL m AS SELECT 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("USING"), "{e}");
        let e = parse_pz_statements("CREATE MODEL m USING knn SELECT 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AS SELECT"), "{e}");
        let e = parse_pz_statements("CREATE MODEL m USING knn OPTIONS (a '1', a '2') AS SELECT 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
    }
}
