//! `expr.field` on any struct-valued expression, e.g. `photoz('knn', …).z_mode`.
//!
//! DataFusion plans `a.b.c` when it starts with identifiers (table, column, struct fields) and
//! `expr['field']` on anything, but refuses a dot after a function call or a subscript ("Dot
//! access not supported for non-string expr") before any `ExprPlanner` is consulted. So pz
//! rewrites those dots into the bracket form DataFusion does plan, as statements are parsed.

use std::ops::ControlFlow;

use datafusion::common::{plan_err, Result};
use datafusion::sql::parser::{CopyToSource, Statement};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AccessExpr, Expr, Ident, Query, Subscript, Value, Visit, Visitor,
};

/// Deepest expression tree pz accepts. The parser builds `1 + 1 + … + 1` as a left-deep tree
/// without recursing, but everything after it (this rewrite, planning, evaluation) walks it
/// recursively, and a deep enough one overflows any stack.
pub const MAX_EXPR_DEPTH: usize = 1000;

struct DepthGuard {
    depth: usize,
}

impl Visitor for DepthGuard {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Refuses a statement part whose expressions nest deeper than [`MAX_EXPR_DEPTH`]; the walk
/// stops at that depth, so it cannot overflow itself.
fn check_depth<T: Visit>(node: &T) -> Result<()> {
    if node.visit(&mut DepthGuard { depth: 0 }).is_break() {
        return plan_err!(
            "SQL: an expression is nested more than {MAX_EXPR_DEPTH} levels deep; split it up"
        );
    }
    Ok(())
}

/// Rewrites every dot field access DataFusion cannot plan in a statement (after checking
/// its depth).
pub fn rewrite_statement(stmt: &mut Statement) -> Result<()> {
    match stmt {
        Statement::Statement(s) => {
            check_depth(s.as_ref())?;
            let _ = visit_expressions_mut(s.as_mut(), rewrite_expr);
        }
        Statement::CopyTo(c) => {
            if let CopyToSource::Query(q) = &mut c.source {
                rewrite_query(q)?;
            }
        }
        Statement::Explain(e) => rewrite_statement(&mut e.statement)?,
        Statement::CreateExternalTable(_) | Statement::Reset(_) => {}
    }
    Ok(())
}

/// As [`rewrite_statement`], for any statement of a pz script.
pub fn rewrite_pz_statement(stmt: &mut crate::PzStatement) -> Result<()> {
    match stmt {
        crate::PzStatement::Sql(s) => rewrite_statement(s),
        crate::PzStatement::CreateModel(c) => rewrite_query(&mut c.query),
        _ => Ok(()),
    }
}

/// As [`rewrite_statement`], for a bare query (`CREATE MODEL … AS <query>`).
pub fn rewrite_query(q: &mut Query) -> Result<()> {
    check_depth(q)?;
    let _ = visit_expressions_mut(q, rewrite_expr);
    Ok(())
}

fn rewrite_expr(e: &mut Expr) -> ControlFlow<()> {
    if let Expr::CompoundFieldAccess { root, access_chain } = e {
        // After an identifier, DataFusion itself resolves the leading run of `.name`s (table,
        // column, nested fields); only the dots after that run are left to pz.
        let skip = if matches!(root.as_ref(), Expr::Identifier(_)) {
            access_chain
                .iter()
                .take_while(|a| matches!(a, AccessExpr::Dot(Expr::Identifier(_))))
                .count()
        } else {
            0
        };
        for access in access_chain.iter_mut().skip(skip) {
            if let AccessExpr::Dot(Expr::Identifier(ident)) = access {
                let name = field_name(ident);
                *access = AccessExpr::Subscript(Subscript::Index {
                    index: Expr::value(Value::SingleQuotedString(name)),
                });
            }
        }
    }
    ControlFlow::Continue(())
}

/// Unquoted names fold to lower case, as DataFusion folds every unquoted identifier.
fn field_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_statements;

    fn rewritten(sql: &str) -> String {
        let mut stmts = parse_statements(sql).unwrap();
        for s in &mut stmts {
            super::rewrite_statement(s).unwrap();
        }
        stmts
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn dots_after_calls_and_subscripts_become_subscripts() {
        assert_eq!(
            rewritten("SELECT f(a).Z_Mode, f(a).\"Odds\", (s).x, t.s['a'].b FROM t"),
            "SELECT f(a)['z_mode'], f(a)['Odds'], (s)['x'], t.s['a']['b'] FROM t"
        );
        // What DataFusion resolves itself is left alone.
        assert_eq!(rewritten("SELECT t.s.x FROM t"), "SELECT t.s.x FROM t");
        assert_eq!(
            rewritten("EXPLAIN COPY (SELECT f(1).z) TO 'x.csv'"),
            "EXPLAIN COPY (SELECT f(1)['z']) TO x.csv"
        );
    }
}
