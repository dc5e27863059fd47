//! [`check`]: an expression parsed but not evaluated, for tools that validate
//! an expression up front (the dashboard checks its alert expressions when it
//! starts, and colours a metric by the alerts that read it).

use promql_parser::label::MatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::Expr;

use super::Result;
use crate::labels::METRIC_NAME;

/// What [`check`] learns of an expression without evaluating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Prometheus's `resultType` of the answer to an instant query: `vector`,
    /// `matrix`, `scalar` or `string`.
    pub result_type: &'static str,
    /// The metric names its selectors read by name (`x` or `{__name__="x"}`),
    /// sorted and without repeats; a selector by regex names none.
    pub metrics: Vec<String>,
}

/// Parses `expr` as the queries do (same guard, same parser), or fails with the
/// `bad_data` error a query of it would give.
pub fn check(expr: &str) -> Result<Checked> {
    let e = super::db::parse(expr)?;
    let result_type = match e.value_type() {
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    };
    let mut metrics = Vec::new();
    names(&e, &mut metrics);
    metrics.sort_unstable();
    metrics.dedup();
    Ok(Checked { result_type, metrics })
}

fn names(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::VectorSelector(vs) => selector_name(vs, out),
        Expr::MatrixSelector(ms) => selector_name(&ms.vs, out),
        Expr::Aggregate(a) => {
            names(&a.expr, out);
            if let Some(p) = &a.param {
                names(p, out);
            }
        }
        Expr::Unary(u) => names(&u.expr, out),
        Expr::Binary(b) => {
            names(&b.lhs, out);
            names(&b.rhs, out);
        }
        Expr::Paren(p) => names(&p.expr, out),
        Expr::Subquery(s) => names(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| names(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector_name(vs: &promql_parser::parser::VectorSelector, out: &mut Vec<String>) {
    match &vs.name {
        Some(n) => out.push(n.clone()),
        None => out.extend(
            vs.matchers
                .matchers
                .iter()
                .filter(|m| m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal))
                .map(|m| m.value.clone()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_result_type_and_metric_names() {
        let c = check("rate(errors_total[5m]) / rate(requests_total{job=\"a\"}[5m]) > 0.1").unwrap();
        assert_eq!(c.result_type, "vector");
        assert_eq!(c.metrics, ["errors_total", "requests_total"]);
        let c = check("quantile_over_time(0.99, {__name__=\"d\"}[5m]) + on() group_left sum(d)").unwrap();
        assert_eq!(c.metrics, ["d"]);
        assert_eq!(check("x[5m]").unwrap().result_type, "matrix");
        assert_eq!(check("1 + 2").unwrap(), Checked { result_type: "scalar", metrics: vec![] });
        assert_eq!(check("{__name__=~\"a.*\"}").unwrap().metrics, Vec::<String>::new());
        assert!(check("rate(x)").is_err());
        assert!(check("x[1e30]").is_err(), "the guard runs before the parser");
    }
}
