//! Exact order statistics and moments over raw values, and [`Summary`].

use crate::labels::Labels;
use crate::sample::Sample;

/// count/min/max/avg/p50/p95/p99 of a set of samples.
///
/// `count` counts every sample, NaN included; `avg` is `sum / count`, so one
/// NaN makes it NaN. `min`, `max` and the percentiles ignore NaN values (NaN
/// only when every value is NaN). Empty input: count 0, everything else NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Summary {
    /// Summarises `samples` in any order (timestamps are not looked at).
    pub fn of(samples: &[Sample]) -> Summary {
        let mut sorted: Vec<f64> = samples.iter().map(|s| s.value).filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let sum: f64 = samples.iter().map(|s| s.value).sum();
        let count = samples.len() as u64;
        Summary {
            count,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            avg: if count == 0 { f64::NAN } else { sum / count as f64 },
            p50: quantile_sorted(&sorted, 0.5),
            p95: quantile_sorted(&sorted, 0.95),
            p99: quantile_sorted(&sorted, 0.99),
        }
    }
}

/// The summary of each of several series and of all their samples together, as
/// `GET /query/summary` and `strata query --summary` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryReport {
    /// In the order given.
    pub series: Vec<(Labels, Summary)>,
    /// Over every sample of every series (not an average of the series' figures).
    pub overall: Summary,
}

impl SummaryReport {
    pub fn of(series: &[(Labels, Vec<Sample>)]) -> SummaryReport {
        let all: Vec<Sample> = series.iter().flat_map(|(_, s)| s.iter().copied()).collect();
        SummaryReport {
            series: series.iter().map(|(l, s)| (l.clone(), Summary::of(s))).collect(),
            overall: Summary::of(&all),
        }
    }
}

/// The `q` quantile of `sorted` (ascending, no NaN), interpolating linearly
/// between the closest ranks: with `h = q * (n - 1)`, the value is
/// `v[floor(h)] + (h - floor(h)) * (v[floor(h) + 1] - v[floor(h)])`.
/// So q = 0 is the minimum, q = 1 the maximum, and a rank that is hit exactly
/// returns that value bit for bit. NaN for empty input or q outside [0, 1].
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let n = sorted.len();
    let h = q * (n - 1) as f64;
    // h is in [0, n - 1]; the min() guards against rounding past the end.
    let lo = (h.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    if frac == 0.0 || a == b {
        return a;
    }
    let span = b - a;
    if span.is_finite() {
        a + frac * span
    } else {
        // Infinite endpoints, or a span that overflows: -inf..x gives -inf,
        // x..+inf gives +inf, -inf..+inf gives NaN.
        (1.0 - frac) * a + frac * b
    }
}

/// Population standard deviation (divides by n), two-pass for accuracy. NaN
/// when empty or when any value is NaN or infinite; 0 for one finite value.
pub(crate) fn population_stddev(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    var.sqrt()
}

/// The `q` quantile of `values` (any order), NaN values ignored.
pub(crate) fn quantile_of(values: &[f64], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_summarises_each_series_and_all_samples_together() {
        let a = Labels::metric("m", [("h", "a")]).unwrap();
        let b = Labels::metric("m", [("h", "b")]).unwrap();
        let pts = |v: &[f64]| v.iter().enumerate().map(|(i, &v)| Sample::new(i as i64, v)).collect::<Vec<_>>();
        let r = SummaryReport::of(&[(a.clone(), pts(&[1.0, 2.0, 3.0])), (b.clone(), pts(&[10.0]))]);
        assert_eq!(r.series[0], (a, Summary::of(&pts(&[1.0, 2.0, 3.0]))));
        assert_eq!(r.series[1].1.count, 1);
        // Overall is over the four samples, not the mean of the two series' means.
        assert_eq!((r.overall.count, r.overall.min, r.overall.max, r.overall.avg), (4, 1.0, 10.0, 4.0));
        assert_eq!(r.overall.p50, 2.5);
        let empty = SummaryReport::of(&[]);
        assert!(empty.series.is_empty() && empty.overall.count == 0 && empty.overall.p99.is_nan());
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&v, 0.25), 1.75);
        assert_eq!(quantile_sorted(&[7.0], 0.3), 7.0);
        assert!(quantile_sorted(&[], 0.5).is_nan());
        assert!(quantile_sorted(&v, 1.5).is_nan());
        assert_eq!(quantile_sorted(&[f64::NEG_INFINITY, 1.0], 0.5), f64::NEG_INFINITY);
        assert_eq!(quantile_sorted(&[1.0, f64::INFINITY], 0.5), f64::INFINITY);
        assert!(quantile_sorted(&[f64::NEG_INFINITY, f64::INFINITY], 0.5).is_nan());
        assert_eq!(quantile_sorted(&[-f64::MAX, f64::MAX], 0.5), 0.0);
        assert_eq!(quantile_of(&[3.0, f64::NAN, 1.0], 1.0), 3.0);
    }

    #[test]
    fn summary_of_samples() {
        let samples: Vec<Sample> = (1..=100).rev().map(|i| Sample::new(i, i as f64)).collect();
        let s = Summary::of(&samples);
        assert_eq!((s.count, s.min, s.max, s.avg), (100, 1.0, 100.0, 50.5));
        assert_eq!(s.p50, 50.5);
        assert!((s.p95 - 95.05).abs() < 1e-9 && (s.p99 - 99.01).abs() < 1e-9, "{s:?}");
        let e = Summary::of(&[]);
        assert_eq!(e.count, 0);
        assert!(e.min.is_nan() && e.avg.is_nan() && e.p99.is_nan());
        let n = Summary::of(&[Sample::new(0, f64::NAN), Sample::new(1, 2.0)]);
        assert_eq!((n.count, n.min, n.max, n.p50), (2, 2.0, 2.0, 2.0));
        assert!(n.avg.is_nan());
    }

    #[test]
    fn stddev() {
        assert_eq!(population_stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]), 2.0);
        assert_eq!(population_stddev(&[3.0]), 0.0);
        assert!(population_stddev(&[]).is_nan());
        assert!(population_stddev(&[1.0, f64::NAN]).is_nan());
    }
}
