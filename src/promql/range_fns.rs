//! Functions over a range vector (`rate(x[5m])`, `*_over_time`, ...), computed for
//! every step from that step's window of each series, as in Prometheus 2.42.
//! Every one but `last_over_time` drops the metric name.

use super::eval::{check_unique, Elem, Evaluator, RangeArg, Steps};
use super::functions::quantile;
use super::metric::Metric;
use super::Result;
use crate::sample::Sample;

/// Neumaier-compensated summation step: returns the new sum and compensation.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() { c + ((sum - t) + inc) } else { c + ((inc - t) + sum) };
    (t, c)
}

/// Whether `name` is a function of one range vector handled here.
pub(crate) fn is_range_fn(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "resets"
            | "changes"
            | "avg_over_time"
            | "min_over_time"
            | "max_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "last_over_time"
            | "present_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "quantile_over_time"
    )
}

/// Evaluates `name` over `arg` at every step; `scalar` is the extra parameter
/// (`predict_linear`'s horizon, `quantile_over_time`'s quantile) per step.
pub(crate) fn eval_range_fn(ev: &Evaluator, name: &str, arg: &RangeArg, scalar: Option<&[f64]>) -> Result<Steps> {
    let mut out: Steps = vec![Vec::new(); arg.windows.len()];
    let call = RangeCall { name, windows: &arg.windows, eval_times: &arg.eval_times, range_ms: arg.range_ms, scalar };
    for (metric, pts) in &arg.series {
        ev.check_deadline()?;
        call.series(metric, pts, &mut out);
    }
    call.finish(arg.series.iter().map(|(m, _)| m), &mut out)?;
    Ok(out)
}

/// One range function over one range vector's steps, applied a series at a time
/// (so that a selector's series can be read, used and dropped one by one).
pub(crate) struct RangeCall<'a> {
    pub name: &'a str,
    /// Per step, the closed window `[lo, hi]` it sees; ascending.
    pub windows: &'a [(i64, i64)],
    /// Per step, the time `predict_linear` takes its intercept at.
    pub eval_times: &'a [i64],
    pub range_ms: i64,
    /// The extra parameter per step (`predict_linear`, `quantile_over_time`).
    pub scalar: Option<&'a [f64]>,
}

impl RangeCall<'_> {
    /// Adds series `metric`'s value at each step to `out` (one vector per step).
    /// `pts` is sorted by time, without staleness markers.
    pub fn series(&self, metric: &Metric, pts: &[Sample], out: &mut Steps) {
        let mut metric_out: Option<Metric> = None;
        // Windows ascend in both ends when the step times do, so the cut points
        // only move forward; otherwise fall back to a search per window.
        let ascending = self.windows.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1);
        let (mut a, mut b) = (0usize, 0usize);
        for (s, &(lo, hi)) in self.windows.iter().enumerate() {
            if ascending {
                // A search from the last cut, not a walk: a window spans many samples.
                a += pts[a..].partition_point(|p| p.ts < lo);
                b = b.max(a);
                b += pts[b..].partition_point(|p| p.ts <= hi);
            } else {
                a = pts.partition_point(|p| p.ts < lo);
                b = pts.partition_point(|p| p.ts <= hi).max(a);
            }
            if a == b {
                continue;
            }
            let w = &pts[a..b];
            let p = self.scalar.map(|v| v[s]).unwrap_or(f64::NAN);
            let t = self.eval_times.get(s).copied().unwrap_or(hi);
            if let Some(v) = apply(self.name, w, lo, hi, t, self.range_ms, p) {
                let m = metric_out.get_or_insert_with(|| {
                    if self.name == "last_over_time" {
                        metric.clone()
                    } else {
                        metric.without_name()
                    }
                });
                out[s].push(Elem { metric: m.clone(), v });
            }
        }
    }

    /// Refuses a step holding two elements with one label set.
    pub fn finish<'m>(&self, metrics: impl Iterator<Item = &'m Metric>, out: &mut Steps) -> Result<()> {
        // Two elements of a step can share labels only if two series do once the
        // name is dropped; checking the series first spares the per-step check.
        let mut seen = std::collections::HashSet::new();
        let mut metrics = metrics;
        if self.name != "last_over_time" && !metrics.all(|m| seen.insert(m.without_name())) {
            check_unique(out)?;
        }
        Ok(())
    }
}

/// Prometheus's `min`/`max_over_time` of a non-empty window: a value replaces
/// the current one when `better` or when the current one is NaN (so the first
/// of equal values stays). Past the leading NaNs the current value is never
/// NaN again, and the loop is one compare-and-select per sample.
#[inline]
fn extreme(w: &[Sample], better: impl Fn(f64, f64) -> bool) -> f64 {
    let Some(i) = w.iter().position(|s| !s.value.is_nan()) else { return w[w.len() - 1].value };
    w[i + 1..].iter().fold(w[i].value, |m, s| if better(s.value, m) { s.value } else { m })
}

/// One function over one non-empty window `[lo, hi]` at step time `t`; `None` when it has no value.
fn apply(name: &str, w: &[Sample], lo: i64, hi: i64, t: i64, range_ms: i64, p: f64) -> Option<f64> {
    let n = w.len() as f64;
    Some(match name {
        "rate" => extrapolated(w, lo, hi, range_ms, true, true)?,
        "increase" => extrapolated(w, lo, hi, range_ms, true, false)?,
        "delta" => extrapolated(w, lo, hi, range_ms, false, false)?,
        "irate" => instant_value(w, true)?,
        "idelta" => instant_value(w, false)?,
        "deriv" => {
            if w.len() < 2 {
                return None;
            }
            linear_regression(w, w[0].ts).0
        }
        "predict_linear" => {
            if w.len() < 2 {
                return None;
            }
            // The intercept is at the step's time `t`, not at the window's end.
            let (slope, intercept) = linear_regression(w, t);
            slope * p + intercept
        }
        "resets" => w.windows(2).filter(|x| x[1].value < x[0].value).count() as f64,
        "changes" => {
            w.windows(2).filter(|x| x[1].value != x[0].value && !(x[1].value.is_nan() && x[0].value.is_nan())).count()
                as f64
        }
        "count_over_time" => n,
        "present_over_time" => 1.0,
        "last_over_time" => w[w.len() - 1].value,
        "min_over_time" => extreme(w, |v, m| v < m),
        "max_over_time" => extreme(w, |v, m| v > m),
        "sum_over_time" => {
            let (sum, c) = w.iter().fold((0.0, 0.0), |(s, c), x| kahan_inc(x.value, s, c));
            if sum.is_infinite() {
                sum
            } else {
                sum + c
            }
        }
        "avg_over_time" => avg(w),
        "stddev_over_time" => variance(w).sqrt(),
        "stdvar_over_time" => variance(w),
        "quantile_over_time" => {
            let mut vals: Vec<f64> = w.iter().map(|s| s.value).collect();
            quantile(p, &mut vals)
        }
        _ => return None,
    })
}

fn avg(w: &[Sample]) -> f64 {
    let (mut mean, mut c, mut count) = (0.0f64, 0.0f64, 0.0f64);
    for s in w {
        count += 1.0;
        let v = s.value;
        if mean.is_infinite() {
            // An infinite mean stays, unless a NaN or the opposite infinity comes.
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

fn variance(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for s in w {
        count += 1.0;
        let delta = s.value - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (s.value - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `rate`, `increase` and `delta`: the change over the samples, extrapolated to
/// the window's edges when the first and last samples are within 1.1 average
/// intervals of them (else by half an interval), never below zero for counters.
fn extrapolated(w: &[Sample], lo: i64, hi: i64, range_ms: i64, counter: bool, per_second: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.value - first.value;
    if counter {
        let mut prev = 0.0;
        for s in w {
            if s.value < prev {
                result += prev;
            }
            prev = s.value;
        }
    }
    let mut to_start = (first.ts - lo) as f64 / 1000.0;
    let to_end = (hi - last.ts) as f64 / 1000.0;
    let sampled = (last.ts - first.ts) as f64 / 1000.0;
    let avg_step = sampled / (w.len() - 1) as f64;
    if counter && result > 0.0 && first.value >= 0.0 {
        // A counter does not go below zero: extrapolate at most to where it would be zero.
        let to_zero = sampled * (first.value / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_step * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { avg_step / 2.0 };
    interval += if to_end < threshold { to_end } else { avg_step / 2.0 };
    let mut factor = interval / sampled;
    if per_second {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(w: &[Sample], rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (prev, last) = (w[w.len() - 2], w[w.len() - 1]);
    let mut v = if rate && last.value < prev.value { last.value } else { last.value - prev.value };
    let dt = last.ts - prev.ts;
    if dt == 0 {
        return None;
    }
    if rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares slope and intercept (at `intercept_t`), times in seconds.
/// Constant values give slope 0 exactly (NaN when the constant is infinite).
pub(crate) fn linear_regression(w: &[Sample], intercept_t: i64) -> (f64, f64) {
    let init = w[0].value;
    let const_y = w.iter().all(|s| s.value == init);
    if const_y {
        return if init.is_infinite() { (f64::NAN, f64::NAN) } else { (0.0, init) };
    }
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for s in w {
        n += 1.0;
        let x = (s.ts - intercept_t) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(s.value, sy, cy);
        (sxy, cxy) = kahan_inc(x * s.value, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}
