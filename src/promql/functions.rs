//! Function calls: dispatch, and the functions over instant vectors and scalars
//! (math, clamping, dates, labels, `absent`, `sort`, `histogram_quantile`, ...).
//! Range-vector functions are in `range_fns`.

use std::cmp::Ordering;

use promql_parser::parser::{Call, Expr};
use regex::Regex;

use super::eval::{check_unique, to_matchers, Elem, Evaluator, RangeArg, Steps, Val};
use super::metric::Metric;
use super::range_fns::{eval_range_fn, is_range_fn};
use super::{PromqlError, Result};
use crate::labels::{MatchOp, METRIC_NAME};

/// Go's `math.Max`: `+Inf` wins even over NaN, then NaN wins (Rust's `f64::max`
/// would ignore it), and `+0` beats `-0`.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        f64::INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && a == b {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: `-Inf` wins even over NaN, then NaN wins, and `-0` beats `+0`.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && a == b {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else {
        a.min(b)
    }
}

/// Ascending with NaN first, the order Prometheus sorts values in.
fn nan_first(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// The φ-quantile of `values` by linear interpolation between closest ranks;
/// `-Inf` for φ < 0, `+Inf` for φ > 1, NaN for no values or φ NaN.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| nan_first(*a, *b));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Applies `f` to every element's value, dropping the metric name.
fn map_values(steps: Steps, f: impl Fn(f64, usize) -> f64) -> Result<Steps> {
    // Labels change only where a name is dropped; distinct inputs stay distinct otherwise.
    let named = steps.iter().flatten().any(|el| el.metric.get(METRIC_NAME).is_some());
    let out: Steps = steps
        .into_iter()
        .enumerate()
        .map(|(s, step)| step.into_iter().map(|el| Elem { metric: el.metric.without_name(), v: f(el.v, s) }).collect())
        .collect();
    if named {
        check_unique(&out)?;
    }
    Ok(out)
}

/// Labels `absent()` gives: the selector's equality matchers, except names matched more than once.
fn absent_labels(e: &Expr) -> Result<Metric> {
    let vs = match unparen(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Ok(Metric::default()),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut drop: Vec<String> = Vec::new();
    for m in to_matchers(vs)? {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Eq && !pairs.iter().any(|(n, _)| *n == m.name) {
            pairs.push((m.name.clone(), m.value.clone()));
        } else {
            drop.push(m.name.clone());
        }
    }
    pairs.retain(|(n, _)| !drop.contains(n));
    Ok(Metric::from_pairs(pairs))
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

impl Evaluator<'_> {
    fn eval_range_arg(&mut self, e: &Expr, ts: &[i64], name: &str) -> Result<RangeArg> {
        match self.eval(e, ts)? {
            Val::Matrix(m) => Ok(m),
            other => Err(PromqlError::bad_data(format!(
                "expected range vector in call to {name}, got {}",
                other.type_name()
            ))),
        }
    }

    pub fn call(&mut self, c: &Call, ts: &[i64]) -> Result<Val> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
        let arg = |i: usize| -> Result<&Expr> {
            args.get(i)
                .copied()
                .ok_or_else(|| PromqlError::bad_data(format!("missing argument {} in call to {name}", i + 1)))
        };
        if is_range_fn(name) {
            if let Some(v) = self.tier_call(name, &args, ts)? {
                return Ok(Val::Vector(v));
            }
            let (range_i, scalar) = match name {
                "quantile_over_time" => (1, Some(self.eval_scalar(arg(0)?, ts, name)?)),
                "predict_linear" => (0, Some(self.eval_scalar(arg(1)?, ts, name)?)),
                _ => (0, None),
            };
            // predict_linear's intercept is at the step time, not at the read time that
            // `offset` or `@` moved the window to (docs/PROMQL.md: 2.42 and `@`).
            if let Expr::MatrixSelector(ms) = unparen(arg(range_i)?) {
                return self.range_fn_over_selector(name, ms, ts, scalar.as_deref(), ts).map(Val::Vector);
            }
            let ra = self.eval_range_arg(arg(range_i)?, ts, name)?;
            return eval_range_fn(self, name, &ra, scalar.as_deref()).map(Val::Vector);
        }
        match name {
            "abs" | "ceil" | "floor" | "exp" | "ln" | "log2" | "log10" | "sqrt" | "sgn" | "acos" | "acosh" | "asin"
            | "asinh" | "atan" | "atanh" | "cos" | "cosh" | "sin" | "sinh" | "tan" | "tanh" | "deg" | "rad" => {
                let f = math_fn(name);
                let v = self.eval_vector(arg(0)?, ts, name)?;
                map_values(v, |x, _| f(x)).map(Val::Vector)
            }
            "round" => {
                let to = match args.get(1) {
                    Some(e) => self.eval_scalar(e, ts, name)?,
                    None => vec![1.0; ts.len()],
                };
                let v = self.eval_vector(arg(0)?, ts, name)?;
                map_values(v, |x, s| {
                    let inv = 1.0 / to[s];
                    (x * inv + 0.5).floor() / inv
                })
                .map(Val::Vector)
            }
            "clamp" => {
                let v = self.eval_vector(arg(0)?, ts, name)?;
                let lo = self.eval_scalar(arg(1)?, ts, name)?;
                let hi = self.eval_scalar(arg(2)?, ts, name)?;
                let v: Steps =
                    v.into_iter().enumerate().map(|(s, step)| if hi[s] < lo[s] { Vec::new() } else { step }).collect();
                map_values(v, |x, s| go_max(lo[s], go_min(hi[s], x))).map(Val::Vector)
            }
            "clamp_min" | "clamp_max" => {
                let v = self.eval_vector(arg(0)?, ts, name)?;
                let b = self.eval_scalar(arg(1)?, ts, name)?;
                let max = name == "clamp_max";
                map_values(v, |x, s| if max { go_min(b[s], x) } else { go_max(b[s], x) }).map(Val::Vector)
            }
            "time" => Ok(Val::Scalar(ts.iter().map(|&t| t as f64 / 1000.0).collect())),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; ts.len()])),
            "timestamp" => match unparen(arg(0)?) {
                Expr::VectorSelector(vs) => self.vector_selector_times(vs, ts).map(Val::Vector),
                e => {
                    let v = self.eval_vector(e, ts, name)?;
                    map_values(v, |_, s| ts[s] as f64 / 1000.0).map(Val::Vector)
                }
            },
            "vector" => {
                let s = self.eval_scalar(arg(0)?, ts, name)?;
                Ok(Val::Vector(s.into_iter().map(|v| vec![Elem { metric: Metric::default(), v }]).collect()))
            }
            "scalar" => {
                let v = self.eval_vector(arg(0)?, ts, name)?;
                Ok(Val::Scalar(v.iter().map(|step| if step.len() == 1 { step[0].v } else { f64::NAN }).collect()))
            }
            "sort" | "sort_desc" => {
                let mut v = self.eval_vector(arg(0)?, ts, name)?;
                let desc = name == "sort_desc";
                // NaN goes last in both directions, as in Prometheus.
                for step in &mut v {
                    step.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                        (false, false) if desc => b.v.partial_cmp(&a.v).unwrap_or(Ordering::Equal),
                        (false, false) => a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal),
                        (x, y) => x.cmp(&y),
                    });
                }
                Ok(Val::Vector(v))
            }
            "absent" => {
                let labels = absent_labels(arg(0)?)?;
                let v = self.eval_vector(arg(0)?, ts, name)?;
                Ok(Val::Vector(absent_steps(v.iter().map(|s| s.is_empty()), &labels)))
            }
            "absent_over_time" => {
                let labels = absent_labels(arg(0)?)?;
                let ra = self.eval_range_arg(arg(0)?, ts, name)?;
                let empty = (0..ra.windows.len()).map(|s| (0..ra.series.len()).all(|i| ra.window(i, s).is_empty()));
                Ok(Val::Vector(absent_steps(empty, &labels)))
            }
            "label_replace" => self.label_replace(&args, ts).map(Val::Vector),
            "label_join" => self.label_join(&args, ts).map(Val::Vector),
            "histogram_quantile" => {
                let q = self.eval_scalar(arg(0)?, ts, name)?;
                let v = self.eval_vector(arg(1)?, ts, name)?;
                Ok(Val::Vector(v.into_iter().enumerate().map(|(s, step)| histogram_quantile(q[s], step)).collect()))
            }
            "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute" | "month" | "year" => {
                let v = match args.first() {
                    Some(e) => self.eval_vector(e, ts, name)?,
                    None => {
                        ts.iter().map(|&t| vec![Elem { metric: Metric::default(), v: t as f64 / 1000.0 }]).collect()
                    }
                };
                map_values(v, |x, _| date_part(name, x)).map(Val::Vector)
            }
            "histogram_count"
            | "histogram_sum"
            | "histogram_fraction"
            | "histogram_stddev"
            | "histogram_stdvar"
            | "histogram_avg"
            | "histogram_quantiles" => Err(PromqlError::unsupported(&format!("function {name} (native histograms)"))),
            _ => Err(PromqlError::unsupported(&format!("function {name}"))),
        }
    }

    fn label_replace(&mut self, args: &[&Expr], ts: &[i64]) -> Result<Steps> {
        if args.len() != 5 {
            return Err(PromqlError::bad_data("label_replace needs 5 arguments"));
        }
        let dst = self.eval_string(args[1], ts, "label_replace")?;
        let repl = self.eval_string(args[2], ts, "label_replace")?;
        let src = self.eval_string(args[3], ts, "label_replace")?;
        let pattern = self.eval_string(args[4], ts, "label_replace")?;
        let re = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|_| PromqlError::execution(format!("invalid regular expression in label_replace(): {pattern}")))?;
        if !is_label_name(&dst) {
            return Err(PromqlError::execution(format!("invalid destination label name in label_replace(): {dst}")));
        }
        let v = self.eval_vector(args[0], ts, "label_replace")?;
        // A series' label set is shared by its elements at every step: relabel it
        // once. The memo holds the input too, so its address stays taken.
        let mut memo: crate::hash::IdMap<(Metric, Metric)> = Default::default();
        let out: Steps = v
            .into_iter()
            .map(|step| {
                step.into_iter()
                    .map(|el| {
                        let (_, metric) = memo.entry(el.metric.addr() as u64).or_insert_with(|| {
                            let val = el.metric.get(&src).unwrap_or("");
                            let out = match re.captures(val) {
                                Some(caps) => {
                                    let mut res = String::new();
                                    caps.expand(&repl, &mut res);
                                    el.metric.with(&dst, &res)
                                }
                                None => el.metric.clone(),
                            };
                            (el.metric.clone(), out)
                        });
                        Elem { metric: metric.clone(), v: el.v }
                    })
                    .collect()
            })
            .collect();
        check_unique(&out)?;
        Ok(out)
    }

    fn label_join(&mut self, args: &[&Expr], ts: &[i64]) -> Result<Steps> {
        if args.len() < 3 {
            return Err(PromqlError::bad_data("label_join needs at least 3 arguments"));
        }
        let dst = self.eval_string(args[1], ts, "label_join")?;
        let sep = self.eval_string(args[2], ts, "label_join")?;
        let mut srcs = Vec::new();
        for a in &args[3..] {
            let s = self.eval_string(a, ts, "label_join")?;
            if !is_label_name(&s) {
                return Err(PromqlError::execution(format!("invalid source label name in label_join(): {s}")));
            }
            srcs.push(s);
        }
        if !is_label_name(&dst) {
            return Err(PromqlError::execution(format!("invalid destination label name in label_join(): {dst}")));
        }
        let v = self.eval_vector(args[0], ts, "label_join")?;
        let out: Steps = v
            .into_iter()
            .map(|step| {
                step.into_iter()
                    .map(|el| {
                        let joined: Vec<&str> = srcs.iter().map(|s| el.metric.get(s).unwrap_or("")).collect();
                        let metric = el.metric.with(&dst, &joined.join(&sep));
                        Elem { metric, v: el.v }
                    })
                    .collect()
            })
            .collect();
        check_unique(&out)?;
        Ok(out)
    }
}

fn absent_steps(empty: impl Iterator<Item = bool>, labels: &Metric) -> Steps {
    empty.map(|e| if e { vec![Elem { metric: labels.clone(), v: 1.0 }] } else { Vec::new() }).collect()
}

fn math_fn(name: &str) -> fn(f64) -> f64 {
    match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sgn" => |x: f64| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        },
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => f64::to_degrees,
        _ => f64::to_radians,
    }
}

/// A calendar field (UTC) of a Unix time in seconds, truncated to whole seconds as Go's `time.Unix` is.
fn date_part(name: &str, secs: f64) -> f64 {
    let secs = secs as i64;
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (match name {
        "day_of_month" => d,
        "day_of_week" => (days + 4).rem_euclid(7),
        "day_of_year" => month_days[..(m - 1) as usize].iter().sum::<i64>() + d,
        "days_in_month" => month_days[(m - 1) as usize],
        "hour" => in_day / 3600,
        "minute" => in_day % 3600 / 60,
        "month" => m,
        _ => y,
    }) as f64
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `histogram_quantile` over classic buckets: series grouped by their labels
/// without `__name__` and `le`; each group's quantile interpolated linearly
/// inside the bucket the rank falls in.
fn histogram_quantile(q: f64, step: Vec<Elem>) -> Vec<Elem> {
    let mut order: Vec<Metric> = Vec::new();
    let mut groups: std::collections::HashMap<Metric, Vec<(f64, f64)>> = std::collections::HashMap::new();
    for el in step {
        let Some(ub) = el.metric.get("le").and_then(parse_go_float) else { continue };
        let key = el.metric.filter(|n| n != METRIC_NAME && n != "le");
        let e = groups.entry(key.clone()).or_default();
        if e.is_empty() {
            order.push(key);
        }
        e.push((ub, el.v));
    }
    order
        .into_iter()
        .map(|m| {
            let b = groups.remove(&m).unwrap_or_default();
            Elem { metric: m, v: bucket_quantile(q, b) }
        })
        .collect()
}

/// Go's `strconv.ParseFloat` for the values `le` takes (numbers, `+Inf`, `-Inf`, `NaN`).
fn parse_go_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

pub(crate) fn bucket_quantile(q: f64, mut b: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(Ordering::Equal));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Buckets with the same bound (e.g. `le="1"` and `le="1.0"`) count as one.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for (ub, c) in b {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // Counts must not fall with the bound; where they do (rounding, scrape skew) they are lifted.
    let mut max = f64::NEG_INFINITY;
    for x in &mut merged {
        if x.1 > max {
            max = x.1;
        } else if x.1 < max {
            x.1 = max;
        }
    }
    let b = merged;
    if b.len() < 2 {
        return f64::NAN;
    }
    let observations = b[b.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let i = go_search(b.len() - 1, |i| b[i].1 >= rank);
    if i == b.len() - 1 {
        return b[b.len() - 2].0;
    }
    if i == 0 && b[0].0 <= 0.0 {
        return b[0].0;
    }
    let (mut start, end, mut count) = (0.0, b[i].0, b[i].1);
    if i > 0 {
        start = b[i - 1].0;
        count -= b[i - 1].1;
        rank -= b[i - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Go's `sort.Search`: the first `i` in `0..n` for which `f` holds, by Go's own
/// bisection. A NaN count makes `f` non-monotonic; Prometheus's answer then depends
/// on which indices this exact bisection probes.
fn go_search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut i, mut j) = (0, n);
    while i < j {
        let h = i + (j - i) / 2;
        if f(h) {
            j = h;
        } else {
            i = h + 1;
        }
    }
    i
}
