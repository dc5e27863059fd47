//! Property: answers from rollup tiers equal answers from raw samples over the
//! same aligned buckets, for random series with out-of-order writes (merged
//! first, last write wins), counter resets and NaN.
//!
//! Sum-derived aggregations (Sum, Avg, Rate, Increase) add floats in another
//! order on a tier, so on decimal data they are compared with a relative
//! tolerance of 1e-9; everything else must be equal (NaN equal to NaN). On
//! integer-valued data every sum is exact, so everything must be equal.
//!
//! Unaligned ranges: the pieces the engine reads (whole hours, whole 5-minute
//! buckets, raw ragged edges rolled up) evaluate to the raw answer too.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::labels::Matcher;
use crate::rollup::{rollup, rollup_buckets, Bucket, FIVE_MIN_MS, HOUR_MS};

const TIER_AGGS: [Agg; 9] =
    [Agg::Avg, Agg::Sum, Agg::Min, Agg::Max, Agg::Count, Agg::First, Agg::Last, Agg::Rate, Agg::Increase];

/// One write as generated: time, a random draw for the value, the value kind.
type Write = (i64, u32, u8);

#[derive(Debug, Clone)]
struct Case {
    /// Range start, in hours since the epoch (may be negative).
    start_h: i64,
    hours: i64,
    /// Integer values (exact sums) or decimals.
    integers: bool,
    series: Vec<Vec<Write>>,
}

fn arb_case() -> impl Strategy<Value = Case> {
    let gran = prop_oneof![Just(1i64), Just(1000), Just(15_000), Just(60_000), Just(7 * 60_000)];
    (-3i64..3, 1i64..4, any::<bool>(), gran).prop_flat_map(|(start_h, hours, integers, gran)| {
        // Writes span one hour either side of the range, at random times and in random order.
        let span = (hours + 2) * HOUR_MS / gran;
        let writes = prop::collection::vec((0..span, any::<u32>(), 0u8..100), 0..250);
        let series = prop::collection::vec(writes, 1..5);
        series.prop_map(move |s| Case {
            start_h,
            hours,
            integers,
            series: s
                .into_iter()
                .map(|w| w.into_iter().map(|(t, v, k)| ((start_h - 1) * HOUR_MS + t * gran, v, k)).collect())
                .collect(),
        })
    })
}

/// What the engine does before evaluation: sort by time, last write wins.
/// Then values are assigned in time order: a counter walk with resets, or a
/// gauge, with the odd NaN.
fn merged(writes: &[Write], integers: bool, counter: bool) -> Vec<Sample> {
    let mut w: Vec<(usize, Write)> = writes.iter().copied().enumerate().collect();
    w.sort_by_key(|&(i, (t, _, _))| (t, i));
    let mut out: Vec<Sample> = Vec::new();
    let mut level = 0.0f64;
    for run in w.chunk_by(|a, b| a.1 .0 == b.1 .0) {
        let (_, (ts, draw, kind)) = run[run.len() - 1];
        let x = if integers { f64::from(draw % 1000) } else { f64::from(draw % 100_000) / 100.0 };
        let v = if counter {
            // kind < 8: a reset to a small value; else the counter grows.
            let small = if integers { f64::from(draw % 10) } else { x / 100.0 };
            level = if kind < 8 { small } else { level + x };
            level
        } else {
            x
        };
        out.push(Sample::new(ts, if kind >= 98 { f64::NAN } else { v }));
    }
    out
}

fn labels(i: usize) -> Labels {
    let dc = if i.is_multiple_of(2) { "x" } else { "y" };
    Labels::metric("m", [("host", format!("h{i}")), ("dc", dc.to_string())]).unwrap()
}

fn same(agg: Agg, a: f64, b: f64, exact: bool) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    let sum_like = matches!(agg, Agg::Sum | Agg::Avg | Agg::Rate | Agg::Increase);
    !exact && sum_like && (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn assert_equal_results(
    agg: Agg,
    raw: &QueryResult,
    tier: &QueryResult,
    exact: bool,
) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(raw.series.len(), tier.series.len());
    for (r, t) in raw.series.iter().zip(&tier.series) {
        prop_assert_eq!(&r.labels, &t.labels);
        prop_assert_eq!(r.points.len(), t.points.len(), "{:?}: {:?} vs {:?}", agg, r.points, t.points);
        for (p, q) in r.points.iter().zip(&t.points) {
            prop_assert!(p.ts == q.ts && same(agg, p.value, q.value, exact), "{:?}: raw {:?} tier {:?}", agg, p, q);
        }
    }
    Ok(())
}

/// Evaluates every tier aggregation on raw samples and on `buckets` (of
/// `width`, answering as `tier`) and compares.
fn check(
    case: &Case,
    data: &[(Labels, Vec<Sample>)],
    step: Option<i64>,
    width: i64,
    tier: Tier,
    group: bool,
) -> std::result::Result<(), TestCaseError> {
    let range = case.start_h * HOUR_MS..(case.start_h + case.hours) * HOUR_MS;
    let buckets: Vec<(Labels, Vec<Bucket>)> = data
        .iter()
        .map(|(l, s)| {
            let five = rollup(s, FIVE_MIN_MS).unwrap();
            let b = if width == FIVE_MIN_MS { five } else { rollup_buckets(&five, width).unwrap() };
            (l.clone(), b)
        })
        .collect();
    for agg in TIER_AGGS {
        let mut q = Query::new().select([Matcher::eq("__name__", "m")]).range(range.clone()).agg(agg);
        if let Some(s) = step {
            q = q.step(Duration::from_millis(s as u64));
        }
        if group {
            q = q.group_by(["dc"]);
        }
        let raw_in = data.iter().map(|(l, s)| (l.clone(), SeriesData::Raw(s.clone()))).collect();
        let tier_in = buckets
            .iter()
            .map(|(l, b)| (l.clone(), SeriesData::Buckets { width_ms: width, buckets: b.clone() }))
            .collect();
        let raw = evaluate(&q, raw_in, Tier::Raw).unwrap();
        let t = evaluate(&q, tier_in, tier).unwrap();
        prop_assert_eq!(t.tier, tier);
        assert_equal_results(agg, &raw, &t, case.integers)?;
    }
    Ok(())
}

fn bucket_fields_equal(a: &Bucket, b: &Bucket, exact: bool) -> bool {
    let close = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan()) || (!exact && (x - y).abs() <= 1e-9 * x.abs());
    a.start == b.start
        && a.count == b.count
        && a.first_ts == b.first_ts
        && a.last_ts == b.last_ts
        && a.first.to_bits() == b.first.to_bits()
        && a.last.to_bits() == b.last.to_bits()
        && close(a.min, b.min)
        && close(a.max, b.max)
        && close(a.sum, b.sum)
        && close(a.increase, b.increase)
}

/// The pieces of one series over an unaligned `range`, as the engine reads them:
/// raw edges rolled up at 5 minutes, whole 5-minute buckets, and (with `hours`)
/// whole hours from 5-minute buckets rolled up, in time order.
fn pieces(s: &[Sample], range: &std::ops::Range<i64>, hours: bool) -> Vec<Bucket> {
    let five = |a: i64, b: i64| {
        let w: Vec<Sample> = s.iter().filter(|x| x.ts >= a && x.ts < b).copied().collect();
        rollup(&w, FIVE_MIN_MS).unwrap()
    };
    let Some(f) = interior(range, FIVE_MIN_MS) else { return five(range.start, range.end) };
    let mut out = five(range.start, f.start);
    match interior(range, HOUR_MS).filter(|_| hours) {
        Some(h) => {
            out.extend(five(f.start, h.start));
            out.extend(rollup_buckets(&five(h.start, h.end), HOUR_MS).unwrap());
            out.extend(five(h.end, f.end));
        }
        None => out.extend(five(f.start, f.end)),
    }
    out.extend(five(f.end, range.end));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn unaligned_pieces_equal_raw_results(
        case in arb_case(),
        counter in any::<bool>(),
        cut in (0..HOUR_MS, 0..HOUR_MS),
    ) {
        let data: Vec<(Labels, Vec<Sample>)> =
            case.series.iter().enumerate().map(|(i, w)| (labels(i), merged(w, case.integers, counter))).collect();
        let range = case.start_h * HOUR_MS + cut.0..(case.start_h + case.hours) * HOUR_MS - cut.1;
        prop_assume!(range.start < range.end);
        for (step, tier) in
            [(Some(HOUR_MS), Tier::Hour), (Some(2 * HOUR_MS), Tier::Hour), (None, Tier::Hour), (Some(FIVE_MIN_MS), Tier::FiveMin)]
        {
            for group in [false, true] {
                for agg in TIER_AGGS {
                    let mut q = Query::new().select([Matcher::eq("__name__", "m")]).range(range.clone()).agg(agg);
                    if let Some(s) = step {
                        q = q.step(Duration::from_millis(s as u64));
                    }
                    if group {
                        q = q.group_by(["dc"]);
                    }
                    let raw_in = data.iter().map(|(l, s)| (l.clone(), SeriesData::Raw(s.clone()))).collect();
                    let piece_in =
                        data.iter().map(|(l, s)| (l.clone(), pieces(s, &range, tier == Tier::Hour))).collect();
                    let raw = evaluate(&q, raw_in, Tier::Raw).unwrap();
                    let t = evaluate_pieces(&q, piece_in, tier).unwrap();
                    prop_assert_eq!(t.tier, tier);
                    assert_equal_results(agg, &raw, &t, case.integers)?;
                }
            }
        }
    }

    #[test]
    fn tier_results_equal_raw_results(case in arb_case(), counter in any::<bool>()) {
        let data: Vec<(Labels, Vec<Sample>)> =
            case.series.iter().enumerate().map(|(i, w)| (labels(i), merged(w, case.integers, counter))).collect();
        for group in [false, true] {
            // The two comparisons: 1h step on 5m→1h buckets, 5m step on 5m buckets.
            check(&case, &data, Some(HOUR_MS), HOUR_MS, Tier::Hour, group)?;
            check(&case, &data, Some(FIVE_MIN_MS), FIVE_MIN_MS, Tier::FiveMin, group)?;
            // Coarser steps and the whole range, from either tier.
            check(&case, &data, Some(HOUR_MS), FIVE_MIN_MS, Tier::FiveMin, group)?;
            check(&case, &data, Some(2 * HOUR_MS), HOUR_MS, Tier::Hour, group)?;
            check(&case, &data, None, HOUR_MS, Tier::Hour, group)?;
        }
    }

    #[test]
    fn partial_buckets_merge_exactly(case in arb_case(), counter in any::<bool>(), cut in any::<prop::sample::Index>()) {
        let samples = merged(&case.series[0], case.integers, counter);
        // Two time-disjoint partials (as from two segments), merged per bucket start.
        let k = cut.index(samples.len() + 1);
        let (a, b) = (rollup(&samples[..k], FIVE_MIN_MS).unwrap(), rollup(&samples[k..], FIVE_MIN_MS).unwrap());
        let mut merged_parts = a.clone();
        for x in &b {
            match merged_parts.last_mut() {
                Some(last) if last.start == x.start => last.merge(x),
                _ => merged_parts.push(*x),
            }
        }
        let whole = rollup(&samples, FIVE_MIN_MS).unwrap();
        prop_assert_eq!(merged_parts.len(), whole.len());
        for (m, w) in merged_parts.iter().zip(&whole) {
            prop_assert!(bucket_fields_equal(m, w, case.integers), "{:?} vs {:?}", m, w);
        }
        // 5m → 1h equals rolling the samples up by the hour directly.
        let via = rollup_buckets(&whole, HOUR_MS).unwrap();
        let direct = rollup(&samples, HOUR_MS).unwrap();
        prop_assert_eq!(via.len(), direct.len());
        for (v, d) in via.iter().zip(&direct) {
            prop_assert!(bucket_fields_equal(v, d, case.integers), "{:?} vs {:?}", v, d);
        }
    }
}
