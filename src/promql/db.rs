//! The PromQL entry points on [`Db`].

use promql_parser::parser::value::ValueType;

use super::eval::{collect_series, Evaluator, Val};
use super::metric::Metric;
use super::{check_range, deadline, InstantSample, Options, PromqlError, RangeSeries, Result, Value};
use crate::Db;

pub(super) fn parse(expr: &str) -> Result<promql_parser::parser::Expr> {
    if let Some(why) = super::guard::refuse(expr) {
        return Err(PromqlError::bad_data(why));
    }
    promql_parser::parser::parse(expr).map_err(PromqlError::bad_data)
}

impl Db {
    /// Evaluates `expr` at `t_ms` (an instant query) with default [`Options`].
    pub fn promql_instant(&self, expr: &str, t_ms: i64) -> Result<Value> {
        self.promql_instant_with(expr, t_ms, &Options::default())
    }

    /// Evaluates `expr` at every `step_ms` from `start_ms` through `end_ms` (a range
    /// query) with default [`Options`]. The answer is a matrix sorted by labels.
    pub fn promql_range(&self, expr: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> Result<Value> {
        self.promql_range_with(expr, start_ms, end_ms, step_ms, &Options::default())
    }

    pub fn promql_instant_with(&self, expr: &str, t_ms: i64, opts: &Options) -> Result<Value> {
        let e = parse(expr)?;
        let mut ev = Evaluator { db: self, opts, start: t_ms, end: t_ms, deadline: deadline(opts), samples: 0 };
        Ok(match ev.eval(&e, &[t_ms])? {
            Val::Scalar(v) => Value::Scalar(t_ms, v[0]),
            Val::Str(s) => Value::String(t_ms, s),
            Val::Vector(mut steps) => Value::Vector(
                steps
                    .pop()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|el| InstantSample { metric: el.metric, t: t_ms, v: el.v })
                    .collect(),
            ),
            Val::Matrix(m) => {
                let mut out: Vec<RangeSeries> = (0..m.series.len())
                    .map(|i| RangeSeries {
                        metric: m.series[i].0.clone(),
                        points: m.window(i, 0).iter().map(|s| (s.ts, s.value)).collect(),
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect();
                out.sort_by(|a, b| a.metric.cmp(&b.metric));
                Value::Matrix(out)
            }
        })
    }

    pub fn promql_range_with(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        opts: &Options,
    ) -> Result<Value> {
        let e = parse(expr)?;
        match e.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            t => {
                let name = if t == ValueType::Matrix { "range vector" } else { "string" };
                return Err(PromqlError::bad_data(format!(
                    "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
                )));
            }
        }
        check_range(start_ms, end_ms, step_ms)?;
        let ts: Vec<i64> = (0..=(end_ms - start_ms) / step_ms).map(|i| start_ms + i * step_ms).collect();
        let mut ev = Evaluator { db: self, opts, start: start_ms, end: end_ms, deadline: deadline(opts), samples: 0 };
        let series = match ev.eval(&e, &ts)? {
            Val::Scalar(v) => {
                vec![RangeSeries { metric: Metric::default(), points: ts.iter().copied().zip(v).collect() }]
            }
            Val::Vector(steps) => collect_series(&ts, steps)
                .into_iter()
                .map(|(metric, pts)| RangeSeries { metric, points: pts.into_iter().map(|s| (s.ts, s.value)).collect() })
                .collect(),
            other => {
                return Err(PromqlError::bad_data(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    other.type_name()
                )))
            }
        };
        Ok(Value::Matrix(series))
    }
}
