//! Threshold alerts: `LEFT OP CRIT` or `LEFT OP WARN:CRIT`, with OP one of `>`,
//! `>=`, `<`, `<=`, graded green / yellow / red. LEFT is either
//! - a series selector, judged by the latest value of each series it matches:
//!   `cpu_usage_user>90` (red above 90, yellow above 81: the warning level
//!   defaults to 10 % short of the critical one) or
//!   `cpu_usage_idle{hostname="host_1"}<20:5`; or
//! - a PromQL expression, evaluated as an instant query at the window's end, with
//!   `pNN(x[5m])` short for `quantile_over_time(0.NN, x[5m])`:
//!   `p99(task_duration_seconds[5m]) > 5`,
//!   `rate(errors_total[5m]) / rate(requests_total[5m]) > 0.05:0.1`.
//!
//! Either way the worst value in the alert's direction decides the level.

use strata::promql::Value;
use strata::{MatchOp, Matcher, METRIC_NAME};

use strata::text::selector::parse_selector;

use crate::cli::promql::{is_expression, series};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

/// How bad an alert is; shown green / yellow / red (grey without data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    NoData,
    Ok,
    Warning,
    Critical,
}

/// What an alert looks at.
#[derive(Debug, Clone)]
pub enum Target {
    /// The latest sample of each series these matchers select.
    Latest(Vec<Matcher>),
    /// A PromQL expression (shorthands expanded) giving an instant vector or a scalar.
    Expr(String),
}

#[derive(Debug, Clone)]
pub struct Alert {
    /// The text as given, for display.
    pub text: String,
    pub target: Target,
    /// Metric names the alert reads by name: their sparklines take its colour.
    pub metrics: Vec<String>,
    pub op: Op,
    pub warn: f64,
    pub crit: f64,
}

impl Alert {
    pub fn parse(s: &str) -> Result<Alert, String> {
        let bad = |why: &str| {
            format!(
                "invalid alert {s:?}: {why} (expected e.g. 'cpu_usage_user>90', 'mem_free<20:5' or \
                 'p99(task_duration_seconds[5m]) > 5')"
            )
        };
        // The threshold has no '<' or '>', so the last one is the operator.
        let at = s.rfind(['<', '>']).ok_or_else(|| bad("no comparison (>, >=, <, <=)"))?;
        let (left, rest) = s.split_at(at);
        let (op, thr) = match (rest.as_bytes()[0], rest.as_bytes().get(1)) {
            (b'>', Some(b'=')) => (Op::Ge, &rest[2..]),
            (b'>', _) => (Op::Gt, &rest[1..]),
            (b'<', Some(b'=')) => (Op::Le, &rest[2..]),
            _ => (Op::Lt, &rest[1..]),
        };
        let num = |t: &str| {
            t.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| bad("the threshold is not a number"))
        };
        let (warn, crit) = match thr.split_once(':') {
            Some((w, c)) => (num(w)?, num(c)?),
            None => {
                let c = num(thr)?;
                let margin = c.abs() * 0.1;
                (if matches!(op, Op::Gt | Op::Ge) { c - margin } else { c + margin }, c)
            }
        };
        let worse = |a: f64, b: f64| if matches!(op, Op::Gt | Op::Ge) { a > b } else { a < b };
        if worse(warn, crit) {
            return Err(bad("the warning level must come before the critical one"));
        }
        let left = left.trim();
        let (target, metrics) = if is_expression(left) {
            let expr = expand_percentiles(left);
            let checked = strata::promql::check(&expr).map_err(|e| match expr != left {
                true => bad(&format!("{expr}: {e}")),
                false => bad(&e.to_string()),
            })?;
            if !matches!(checked.result_type, "vector" | "scalar") {
                return Err(bad(&format!(
                    "the expression gives a {}, not one value per series; wrap a range in a function, \
                     e.g. p99(x[5m]) or rate(x[5m])",
                    checked.result_type
                )));
            }
            (Target::Expr(expr), checked.metrics)
        } else {
            let matchers = parse_selector(left).map_err(|e| bad(&e.to_string()))?;
            let names = matchers
                .iter()
                .filter(|m| m.name == METRIC_NAME && m.op == MatchOp::Eq)
                .map(|m| m.value.clone())
                .collect();
            (Target::Latest(matchers), names)
        };
        Ok(Alert { text: s.trim().to_string(), target, metrics, op, warn, crit })
    }

    /// The worst of `values` in this alert's direction (max for `>`, min for `<`).
    pub fn worst(&self, values: impl Iterator<Item = f64>) -> Option<f64> {
        let high = matches!(self.op, Op::Gt | Op::Ge);
        values.filter(|v| !v.is_nan()).reduce(|a, b| if (b > a) == high { b } else { a })
    }

    pub fn level(&self, value: Option<f64>) -> Level {
        let Some(v) = value else { return Level::NoData };
        let crosses = |t: f64| match self.op {
            Op::Gt => v > t,
            Op::Ge => v >= t,
            Op::Lt => v < t,
            Op::Le => v <= t,
        };
        if crosses(self.crit) {
            Level::Critical
        } else if crosses(self.warn) {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

/// `pNN(` → `quantile_over_time(0.NN, `, for `p` and two or more digits standing
/// as a word outside quotes: `p50`, `p95`, `p99`, `p999` (0.999). PromQL has no
/// function of that name, so nothing valid changes meaning.
pub fn expand_percentiles(expr: &str) -> String {
    let b = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() + 32);
    let (mut i, mut copied, mut quote) = (0, 0, None::<u8>);
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' && q != b'`' {
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if matches!(c, b'"' | b'\'' | b'`') {
            quote = Some(c);
        } else if c == b'p' && (i == 0 || !word(b[i - 1])) {
            let digits = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
            let after = i + 1 + digits;
            let paren = after + b[after..].iter().take_while(|c| c.is_ascii_whitespace()).count();
            if digits >= 2 && b.get(paren) == Some(&b'(') {
                out.push_str(&expr[copied..i]);
                out.push_str(&format!("quantile_over_time(0.{}, ", &expr[i + 1..after]));
                i = paren + 1;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&expr[copied..]);
    out
}

/// An expression's answer as `(series, value)` pairs for grading: one per
/// element of a vector (the series empty when it has no labels), one for a scalar.
pub fn value_pairs(v: Value) -> Result<Vec<(String, f64)>, String> {
    match v {
        Value::Vector(samples) => Ok(samples
            .into_iter()
            .map(|s| (if s.metric.is_empty() { String::new() } else { series(&s.metric) }, s.v))
            .collect()),
        Value::Scalar(_, v) => Ok(vec![(String::new(), v)]),
        other => Err(format!("the expression gave a {}, not a vector or a scalar", other.result_type())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matchers(a: &Alert) -> &[Matcher] {
        match &a.target {
            Target::Latest(m) => m,
            Target::Expr(e) => panic!("a selector alert, not {e}"),
        }
    }

    #[test]
    fn parses_and_grades() {
        let a = Alert::parse("cpu_usage_user>90").unwrap();
        assert_eq!((a.op, a.warn, a.crit), (Op::Gt, 81.0, 90.0));
        assert_eq!(a.metrics, ["cpu_usage_user"]);
        assert_eq!(a.level(Some(95.0)), Level::Critical);
        assert_eq!(a.level(Some(85.0)), Level::Warning);
        assert_eq!(a.level(Some(50.0)), Level::Ok);
        assert_eq!(a.level(None), Level::NoData);
        assert_eq!(a.worst([1.0, f64::NAN, 7.0, 3.0].into_iter()), Some(7.0));

        let b = Alert::parse("mem{host=\"a>b\"} <= 20:5").unwrap();
        assert_eq!((b.op, b.warn, b.crit), (Op::Le, 20.0, 5.0));
        assert_eq!(matchers(&b)[1].value, "a>b");
        assert_eq!(b.level(Some(5.0)), Level::Critical);
        assert_eq!(b.worst([4.0, 9.0].into_iter()), Some(4.0));

        for bad in ["cpu", "cpu>", "cpu>x", ">5", "cpu>20:10", "cpu{>5"] {
            assert!(Alert::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_the_percentile_and_ratio_forms_as_promql() {
        let a = Alert::parse("p99(task_duration_seconds[5m]) > 5").unwrap();
        assert!(matches!(&a.target, Target::Expr(e) if e == "quantile_over_time(0.99, task_duration_seconds[5m])"));
        assert_eq!(
            (a.op, a.warn, a.crit, a.metrics.as_slice()),
            (Op::Gt, 4.5, 5.0, &["task_duration_seconds".into()][..])
        );
        assert_eq!(a.text, "p99(task_duration_seconds[5m]) > 5");

        let r = Alert::parse("rate(errors_total[5m]) / rate(requests_total[5m]) > 0.05:0.1").unwrap();
        assert!(matches!(&r.target, Target::Expr(e) if e == "rate(errors_total[5m]) / rate(requests_total[5m])"));
        assert_eq!((r.warn, r.crit), (0.05, 0.1));
        assert_eq!(r.metrics, ["errors_total", "requests_total"]);

        // PromQL proper is accepted as it is, comparisons inside included.
        let q = Alert::parse("max(quantile_over_time(0.5, d{job=\"x>y\"}[1m]) > 2) >= 3").unwrap();
        assert!(
            matches!(&q.target, Target::Expr(e) if e.starts_with("max(quantile_over_time(0.5, d{job=\"x>y\"}[1m]) > 2)"))
        );
        assert_eq!(q.op, Op::Ge);

        let err = Alert::parse("p99(task_duration_seconds) > 5").unwrap_err();
        assert!(err.contains("quantile_over_time(0.99, task_duration_seconds)") && err.contains("matrix"), "{err}");
        let err = Alert::parse("errors_total[5m] > 1").unwrap_err();
        assert!(err.contains("gives a matrix"), "{err}");
        assert!(Alert::parse("rate(x[5m]) > y").unwrap_err().contains("not a number"));
    }

    #[test]
    fn expands_percentile_shorthands_outside_quotes_only() {
        assert_eq!(expand_percentiles("p50(x[1m])"), "quantile_over_time(0.50, x[1m])");
        assert_eq!(expand_percentiles("p999 (x[1m])"), "quantile_over_time(0.999, x[1m])");
        assert_eq!(
            expand_percentiles("max(p95(a[5m])) - p05(b{l=\"p99(\"}[5m])"),
            "max(quantile_over_time(0.95, a[5m])) - quantile_over_time(0.05, b{l=\"p99(\"}[5m])"
        );
        for same in ["p9(x[1m])", "up99(x[1m])", "p99", "x{p99=\"1\"}", "'p99(' + p", "tp99(x)"] {
            assert_eq!(expand_percentiles(same), same);
        }
    }

    #[test]
    fn reads_vectors_and_scalars_as_pairs() {
        use strata::promql::{InstantSample, Metric};
        let v = Value::Vector(vec![
            InstantSample { metric: Metric::from_pairs([("job", "a")]), t: 0, v: 0.5 },
            InstantSample { metric: Metric::default(), t: 0, v: 2.0 },
        ]);
        assert_eq!(value_pairs(v).unwrap(), vec![("{job=\"a\"}".to_string(), 0.5), (String::new(), 2.0)]);
        assert_eq!(value_pairs(Value::Scalar(0, 3.0)).unwrap(), vec![(String::new(), 3.0)]);
        assert!(value_pairs(Value::String(0, "s".into())).is_err());
    }
}
