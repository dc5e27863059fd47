//! The evaluator: every node is evaluated once for all of a query's steps (the
//! evaluation times `ts`), so each selector loads its series once per query.
//!
//! Prometheus 2.42 rules followed here (3.x differs where noted in docs/PROMQL.md):
//! - an instant selector at time `t` takes the newest sample in `[t - lookback, t]`
//!   (closed; 3.x is left-open), none if that sample is a staleness marker;
//! - a range selector `x[r]` at `t` takes the samples in `[t - r, t]` (closed;
//!   3.x is left-open `(t - r, t]`), staleness markers left out;
//! - `offset d` shifts `t` back by `d`, `@ T` replaces `t` by `T` (`start()` and
//!   `end()` are the query's own start and end), applied before `offset`.

use std::time::Instant;

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self as ast, AtModifier, Expr, Offset};

use super::metric::Metric;
use super::range_fns::RangeCall;
use super::{Options, PromqlError, Result};
use crate::labels::{Matcher, METRIC_NAME};
use crate::sample::Sample;
use crate::Db;

/// The bit pattern Prometheus writes for a staleness marker.
pub(crate) const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub(crate) fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One element of an instant vector at one step.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    pub metric: Metric,
    pub v: f64,
}

/// An instant vector at every step.
pub(crate) type Steps = Vec<Vec<Elem>>;

/// A range vector for every step: each series' points (no staleness markers) and,
/// per step, the closed window `[lo, hi]` of times that step sees.
pub(crate) struct RangeArg {
    pub series: Vec<(Metric, Vec<Sample>)>,
    pub windows: Vec<(i64, i64)>,
    pub range_ms: i64,
    /// Per step, the time `predict_linear` takes its intercept at (set by the call).
    pub eval_times: Vec<i64>,
}

impl RangeArg {
    /// The points of series `i` inside step `s`'s window.
    pub fn window(&self, i: usize, s: usize) -> &[Sample] {
        let pts = &self.series[i].1;
        let (lo, hi) = self.windows[s];
        let a = pts.partition_point(|p| p.ts < lo);
        let b = pts.partition_point(|p| p.ts <= hi);
        &pts[a..b.max(a)]
    }
}

pub(crate) enum Val {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Steps),
    Matrix(RangeArg),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

pub(crate) struct Evaluator<'a> {
    pub db: &'a Db,
    pub opts: &'a Options,
    /// The query's own start and end, what `@ start()` and `@ end()` mean.
    pub start: i64,
    pub end: i64,
    pub deadline: Option<Instant>,
    /// Samples loaded so far, against `opts.max_samples`.
    pub samples: usize,
}

pub(crate) fn dur_ms(d: &std::time::Duration) -> i64 {
    d.as_millis() as i64
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => dur_ms(d),
        Some(Offset::Neg(d)) => -dur_ms(d),
    }
}

impl Evaluator<'_> {
    pub fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(PromqlError::timeout()),
            _ => Ok(()),
        }
    }

    pub fn add_samples(&mut self, n: usize) -> Result<()> {
        self.samples = self.samples.saturating_add(n);
        if self.samples > self.opts.max_samples {
            return Err(PromqlError::too_many_samples());
        }
        Ok(())
    }

    fn at_ms(&self, at: &Option<AtModifier>) -> Result<Option<i64>> {
        // The parser saturates a huge `@` time rather than refusing it: refuse it here.
        let ms = |d: std::time::Duration| {
            i64::try_from(d.as_millis()).map_err(|_| {
                PromqlError::bad_data(format!("timestamp out of bounds for @ modifier: {}", d.as_secs_f64()))
            })
        };
        Ok(match at {
            None => None,
            Some(AtModifier::Start) => Some(self.start),
            Some(AtModifier::End) => Some(self.end),
            Some(AtModifier::At(t)) => Some(match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => ms(d)?,
                Err(e) => -ms(e.duration())?,
            }),
        })
    }

    /// The time each step reads at: `@` replaces the step time, then `offset` shifts it.
    pub(crate) fn read_times(&self, ts: &[i64], at: &Option<AtModifier>, offset: &Option<Offset>) -> Result<Vec<i64>> {
        let off = offset_ms(offset);
        Ok(match self.at_ms(at)? {
            Some(a) => vec![a.saturating_sub(off); ts.len()],
            None => ts.iter().map(|t| t.saturating_sub(off)).collect(),
        })
    }

    pub fn eval(&mut self, e: &Expr, ts: &[i64]) -> Result<Val> {
        self.check_deadline()?;
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; ts.len()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(steps) => {
                    let out: Steps = steps
                        .into_iter()
                        .map(|step| {
                            step.into_iter().map(|el| Elem { metric: el.metric.without_name(), v: -el.v }).collect()
                        })
                        .collect();
                    check_unique(&out)?;
                    Ok(Val::Vector(out))
                }
                other => Err(PromqlError::bad_data(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => self.vector_selector(vs, ts).map(Val::Vector),
            Expr::MatrixSelector(ms) => self.matrix_selector(ms, ts).map(Val::Matrix),
            Expr::Subquery(sq) => self.subquery(sq, ts).map(Val::Matrix),
            Expr::Aggregate(a) => self.aggregate(a, ts),
            Expr::Binary(b) => self.binary(b, ts),
            Expr::Call(c) => self.call(c, ts),
            Expr::Extension(_) => Err(PromqlError::unsupported("extension expression")),
        }
    }

    /// Evaluates an argument that must be a scalar (a function or aggregation parameter).
    pub fn eval_scalar(&mut self, e: &Expr, ts: &[i64], what: &str) -> Result<Vec<f64>> {
        match self.eval(e, ts)? {
            Val::Scalar(v) => Ok(v),
            other => Err(PromqlError::bad_data(format!("expected scalar for {what}, got {}", other.type_name()))),
        }
    }

    pub fn eval_vector(&mut self, e: &Expr, ts: &[i64], what: &str) -> Result<Steps> {
        match self.eval(e, ts)? {
            Val::Vector(v) => Ok(v),
            other => {
                Err(PromqlError::bad_data(format!("expected instant vector for {what}, got {}", other.type_name())))
            }
        }
    }

    pub fn eval_string(&mut self, e: &Expr, ts: &[i64], what: &str) -> Result<String> {
        match self.eval(e, ts)? {
            Val::Str(s) => Ok(s),
            other => Err(PromqlError::bad_data(format!("expected string for {what}, got {}", other.type_name()))),
        }
    }

    /// Series matching `vs` with their samples in `[lo, hi]`, staleness markers kept.
    fn load(&mut self, vs: &ast::VectorSelector, lo: i64, hi: i64) -> Result<Vec<(Metric, Vec<Sample>)>> {
        let parts = self.scan_series(vs, lo, hi, Vec::new, |out, metric, pts| out.push((metric, pts.to_vec())))?;
        Ok(parts.into_iter().flatten().collect())
    }

    fn vector_selector(&mut self, vs: &ast::VectorSelector, ts: &[i64]) -> Result<Steps> {
        self.instant_values(vs, ts, false)
    }

    /// Samples of each series for `timestamp()`: the sample's own time instead of its value.
    pub fn vector_selector_times(&mut self, vs: &ast::VectorSelector, ts: &[i64]) -> Result<Steps> {
        self.instant_values(vs, ts, true)
    }

    /// Each series' lookback sample at every step: its value, or with `times` its
    /// time in seconds (the name then dropped).
    fn instant_values(&mut self, vs: &ast::VectorSelector, ts: &[i64], times: bool) -> Result<Steps> {
        let reads = self.read_times(ts, &vs.at, &vs.offset)?;
        let mut out: Steps = vec![Vec::new(); ts.len()];
        let (Some(&min), Some(&max)) = (reads.iter().min(), reads.iter().max()) else { return Ok(out) };
        let lookback = self.opts.lookback_delta_ms;
        if min == max {
            // One read time (an instant query, or `@`): each series' newest sample
            // in the lookback window is all it needs, mostly from chunk metadata.
            // It counts one sample per series, as Prometheus counts them.
            let hi = max.min(crate::MAX_TIMESTAMP);
            let lo = max.saturating_sub(lookback);
            if lo > hi {
                return Ok(out);
            }
            let matchers = to_matchers(vs)?;
            let q = self.db.querier(lo..hi + 1);
            let mut set = q.select(&matchers)?;
            let mut scratch = Vec::new();
            while let Some(item) = set.next_newest(&mut scratch) {
                self.check_deadline()?;
                let (labels, p) = item?;
                self.add_samples(1)?;
                if is_stale(p.value) {
                    continue;
                }
                let metric = Metric::from_labels(&labels);
                let (metric, v) = if times { (metric.without_name(), p.ts as f64 / 1000.0) } else { (metric, p.value) };
                for step in &mut out {
                    step.push(Elem { metric: metric.clone(), v });
                }
            }
            return Ok(out);
        }
        let n = ts.len();
        let parts = self.scan_series(
            vs,
            min.saturating_sub(lookback),
            max,
            || vec![Vec::new(); n],
            |part: &mut Steps, metric, pts| {
                let metric = if times { metric.without_name() } else { metric };
                for (s, &rt) in reads.iter().enumerate() {
                    if let Some(p) = lookback_sample(pts, rt, lookback) {
                        let v = if times { p.ts as f64 / 1000.0 } else { p.value };
                        part[s].push(Elem { metric: metric.clone(), v });
                    }
                }
            },
        )?;
        append_parts(&mut out, parts);
        Ok(out)
    }

    /// A range function over a plain range selector, e.g. `max_over_time(x[1h])`:
    /// each series is read, used for every step and dropped before the next, so
    /// the answer is the same as evaluating the whole range vector first.
    pub(crate) fn range_fn_over_selector(
        &mut self,
        name: &str,
        ms: &ast::MatrixSelector,
        ts: &[i64],
        scalar: Option<&[f64]>,
        eval_times: &[i64],
    ) -> Result<Steps> {
        let range_ms = dur_ms(&ms.range);
        let reads = self.read_times(ts, &ms.vs.at, &ms.vs.offset)?;
        let windows: Vec<(i64, i64)> = reads.iter().map(|&t| (t.saturating_sub(range_ms), t)).collect();
        let call = RangeCall { name, windows: &windows, eval_times, range_ms, scalar };
        let mut out: Steps = vec![Vec::new(); ts.len()];
        let mut metrics = Vec::new();
        if let (Some(&min), Some(&max)) = (reads.iter().min(), reads.iter().max()) {
            let n = ts.len();
            let parts = self.scan_series(
                &ms.vs,
                min.saturating_sub(range_ms),
                max,
                || (vec![Vec::new(); n], Vec::new(), Vec::new()),
                |(part, part_metrics, kept): &mut (Steps, Vec<Metric>, Vec<Sample>), metric, pts| {
                    // Range functions never see staleness markers.
                    let pts = if pts.iter().any(|p| is_stale(p.value)) {
                        kept.clear();
                        kept.extend(pts.iter().filter(|p| !is_stale(p.value)));
                        &kept[..]
                    } else {
                        pts
                    };
                    if !pts.is_empty() {
                        call.series(&metric, pts, part);
                        part_metrics.push(metric);
                    }
                },
            )?;
            let mut steps = Vec::with_capacity(parts.len());
            for (part, part_metrics, _) in parts {
                steps.push(part);
                metrics.extend(part_metrics);
            }
            append_parts(&mut out, steps);
        }
        call.finish(metrics.iter(), &mut out)?;
        Ok(out)
    }

    fn matrix_selector(&mut self, ms: &ast::MatrixSelector, ts: &[i64]) -> Result<RangeArg> {
        let range_ms = dur_ms(&ms.range);
        let reads = self.read_times(ts, &ms.vs.at, &ms.vs.offset)?;
        let windows: Vec<(i64, i64)> = reads.iter().map(|&t| (t.saturating_sub(range_ms), t)).collect();
        let mut series = Vec::new();
        if let (Some(&min), Some(&max)) = (reads.iter().min(), reads.iter().max()) {
            for (metric, mut pts) in self.load(&ms.vs, min.saturating_sub(range_ms), max)? {
                pts.retain(|p| !is_stale(p.value));
                if !pts.is_empty() {
                    series.push((metric, pts));
                }
            }
        }
        Ok(RangeArg { series, windows, range_ms, eval_times: ts.to_vec() })
    }

    /// `expr[range:step] offset d @ T`: `expr` is evaluated at the multiples of
    /// `step` (absolute, as in Prometheus) that fall in any step's window.
    fn subquery(&mut self, sq: &ast::SubqueryExpr, ts: &[i64]) -> Result<RangeArg> {
        let range_ms = dur_ms(&sq.range);
        let step = sq.step.as_ref().map(dur_ms).unwrap_or(self.opts.default_subquery_step_ms);
        if step <= 0 {
            return Err(PromqlError::bad_data("subquery step must be positive"));
        }
        let reads = self.read_times(ts, &sq.at, &sq.offset)?;
        let windows: Vec<(i64, i64)> = reads.iter().map(|&t| (t.saturating_sub(range_ms), t)).collect();
        let (Some(&min), Some(&max)) = (reads.iter().min(), reads.iter().max()) else {
            return Ok(RangeArg { series: Vec::new(), windows, range_ms, eval_times: Vec::new() });
        };
        let from = min.saturating_sub(range_ms);
        let first = from.div_euclid(step).saturating_mul(step);
        let first = if first < from { first + step } else { first };
        // Bound the inner steps before walking them: `x[1y:1ms]` must fail, not allocate.
        let walk = (i128::from(max) - i128::from(first)) / i128::from(step) + 1;
        if walk > self.opts.max_samples as i128 {
            return Err(PromqlError::too_many_samples());
        }
        let mut inner = Vec::new();
        let mut t = first;
        while t <= max {
            // Only times some window covers: steps far apart need not evaluate the gaps.
            let i = reads.partition_point(|&r| r < t);
            if reads.get(i).is_some_and(|&r| r.saturating_sub(range_ms) <= t) {
                inner.push(t);
            }
            t = match t.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        self.add_samples(inner.len())?;
        let steps = match self.eval(&sq.expr, &inner)? {
            Val::Vector(steps) => steps,
            Val::Scalar(v) => v.into_iter().map(|x| vec![Elem { metric: Metric::default(), v: x }]).collect::<Vec<_>>(),
            other => {
                return Err(PromqlError::bad_data(format!(
                    "subquery is only allowed on instant vector, got {} instead",
                    other.type_name()
                )))
            }
        };
        let mut series = collect_series(&inner, steps);
        let n: usize = series.iter().map(|(_, p)| p.len()).sum();
        self.add_samples(n)?;
        series.retain(|(_, p)| !p.is_empty());
        Ok(RangeArg { series, windows, range_ms, eval_times: ts.to_vec() })
    }
}

/// Appends each part's per-step elements to `out`'s, parts in order.
fn append_parts(out: &mut Steps, parts: Vec<Steps>) {
    for part in parts {
        for (step, els) in out.iter_mut().zip(part) {
            step.extend(els);
        }
    }
}

/// Regroups per-step vectors into series: `(labels, points)` sorted by labels.
pub(crate) fn collect_series(ts: &[i64], steps: Steps) -> Vec<(Metric, Vec<Sample>)> {
    let mut by: std::collections::BTreeMap<Metric, Vec<Sample>> = std::collections::BTreeMap::new();
    for (s, step) in steps.into_iter().enumerate() {
        for el in step {
            by.entry(el.metric).or_default().push(Sample::new(ts[s], el.v));
        }
    }
    by.into_iter().collect()
}

/// The newest sample in `[t - lookback, t]`, unless it is a staleness marker.
fn lookback_sample(pts: &[Sample], t: i64, lookback: i64) -> Option<Sample> {
    let i = pts.partition_point(|p| p.ts <= t);
    let p = *pts.get(i.checked_sub(1)?)?;
    (p.ts >= t - lookback && !is_stale(p.value)).then_some(p)
}

/// The selector's matchers as the engine's, `__name__` first when given by name.
pub(crate) fn to_matchers(vs: &ast::VectorSelector) -> Result<Vec<Matcher>> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromqlError::unsupported("the `or` operator inside a selector's braces"));
    }
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(Matcher::eq(METRIC_NAME, name.clone()));
    }
    for m in &vs.matchers.matchers {
        let bad = |e: crate::Error| PromqlError::bad_data(e.to_string());
        out.push(match &m.op {
            PMatchOp::Equal => Matcher::eq(m.name.clone(), m.value.clone()),
            PMatchOp::NotEqual => Matcher::ne(m.name.clone(), m.value.clone()),
            PMatchOp::Re(_) => Matcher::regex(m.name.clone(), m.value.clone()).map_err(bad)?,
            PMatchOp::NotRe(_) => Matcher::not_regex(m.name.clone(), m.value.clone()).map_err(bad)?,
        });
    }
    Ok(out)
}

/// Prometheus refuses a result vector in which two elements have the same labels.
pub(crate) fn check_unique(steps: &Steps) -> Result<()> {
    let mut seen = crate::hash::LabelSet::default();
    for step in steps {
        if step.len() < 2 {
            continue;
        }
        seen.clear();
        for el in step {
            if !seen.insert(&el.metric) {
                return Err(PromqlError::execution("vector cannot contain metrics with the same labelset"));
            }
        }
    }
    Ok(())
}
