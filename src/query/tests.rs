//! Hand-made checks of every aggregation against a naive reference, plus
//! grouping, top-k, input checks, tier choice and validation.

use std::time::Duration;

use super::*;
use crate::labels::Matcher;
use crate::rollup::{rollup, Bucket, FIVE_MIN_MS, HOUR_MS};

const ALL_AGGS: [Agg; 12] = [
    Agg::Raw,
    Agg::Avg,
    Agg::Sum,
    Agg::Min,
    Agg::Max,
    Agg::Count,
    Agg::First,
    Agg::Last,
    Agg::Rate,
    Agg::Increase,
    Agg::Stddev,
    Agg::Quantile(0.5),
];

fn labels(name: &str, host: &str, dc: &str) -> Labels {
    Labels::metric(name, [("host", host), ("dc", dc)]).unwrap()
}

fn samples(v: &[(i64, f64)]) -> Vec<Sample> {
    v.iter().map(|&(t, x)| Sample::new(t, x)).collect()
}

fn query(agg: Agg, range: std::ops::Range<i64>, step: Option<u64>) -> Query {
    let q = Query::new().select([Matcher::eq("__name__", "cpu")]).range(range).agg(agg);
    match step {
        Some(ms) => q.step(Duration::from_millis(ms)),
        None => q,
    }
}

fn run(q: &Query, input: Vec<(Labels, Vec<Sample>)>) -> Vec<ResultSeries> {
    let input = input.into_iter().map(|(l, s)| (l, SeriesData::Raw(s))).collect();
    let r = evaluate(q, input, Tier::Raw).unwrap();
    assert_eq!(r.tier, Tier::Raw);
    r.series
}

fn pts(r: &ResultSeries) -> Vec<(i64, f64)> {
    r.points.iter().map(|p| (p.ts, p.value)).collect()
}

/// Same values, with NaN equal to NaN and a relative tolerance for inexact ones.
fn assert_close(got: &[(i64, f64)], want: &[(i64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        let same = g.1 == w.1 || (g.1.is_nan() && w.1.is_nan()) || (g.1 - w.1).abs() <= 1e-12 * w.1.abs();
        assert!(g.0 == w.0 && same, "{what}: {got:?} vs {want:?}");
    }
}

/// The obvious definition of each aggregation, bucket by bucket.
fn naive(agg: Agg, s: &[Sample], range: std::ops::Range<i64>, step: Option<i64>) -> Vec<(i64, f64)> {
    let s: Vec<Sample> = s.iter().copied().filter(|x| range.contains(&x.ts)).collect();
    let key = |ts: i64| step.map_or(range.start, |st| ts.div_euclid(st) * st);
    let mut keys: Vec<i64> = s.iter().map(|x| key(x.ts)).collect();
    keys.dedup();
    let secs = step.unwrap_or(range.end - range.start) as f64 / 1000.0;
    let mut out = Vec::new();
    for k in keys {
        let b: Vec<Sample> = s.iter().copied().filter(|x| key(x.ts) == k).collect();
        let v: Vec<f64> = b.iter().map(|x| x.value).collect();
        let n = v.len() as f64;
        let sum: f64 = v.iter().sum();
        let inc: f64 = v.windows(2).map(|w| if w[1] < w[0] { w[1] } else { w[1] - w[0] }).sum();
        let non_nan: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        let val = match agg {
            Agg::Raw => {
                let last = b[b.len() - 1];
                out.push((last.ts, last.value));
                continue;
            }
            Agg::Avg => sum / n,
            Agg::Sum => sum,
            Agg::Min => non_nan.iter().copied().reduce(f64::min).unwrap_or(f64::NAN),
            Agg::Max => non_nan.iter().copied().reduce(f64::max).unwrap_or(f64::NAN),
            Agg::Count => n,
            Agg::First => v[0],
            Agg::Last => v[v.len() - 1],
            Agg::Increase => inc,
            Agg::Rate => inc / secs,
            Agg::Stddev => {
                let m = sum / n;
                (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt()
            }
            Agg::Quantile(q) => {
                let mut sorted = non_nan.clone();
                sorted.sort_by(f64::total_cmp);
                if sorted.is_empty() {
                    f64::NAN
                } else {
                    let h = q * (sorted.len() - 1) as f64;
                    let lo = h.floor() as usize;
                    let hi = (lo + 1).min(sorted.len() - 1);
                    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
                }
            }
        };
        out.push((k, val));
    }
    out
}

/// A counter with a reset, an empty bucket and a single-sample bucket.
fn counter() -> Vec<Sample> {
    samples(&[(-5, 99.0), (0, 10.0), (50, 15.0), (100, 20.0), (120, 3.0), (150, 8.0), (310, 1.0), (1000, 7.0)])
}

#[test]
fn hand_computed_counter() {
    let l = labels("cpu", "a", "x");
    let expect: [(Agg, [f64; 3]); 10] = [
        (Agg::Avg, [12.5, 31.0 / 3.0, 1.0]),
        (Agg::Sum, [25.0, 31.0, 1.0]),
        (Agg::Min, [10.0, 3.0, 1.0]),
        (Agg::Max, [15.0, 20.0, 1.0]),
        (Agg::Count, [2.0, 3.0, 1.0]),
        (Agg::First, [10.0, 20.0, 1.0]),
        (Agg::Last, [15.0, 8.0, 1.0]),
        // 20 -> 3 is a reset: it counts 3, then 3 -> 8 counts 5.
        (Agg::Increase, [5.0, 8.0, 0.0]),
        (Agg::Rate, [50.0, 80.0, 0.0]),
        (Agg::Quantile(0.5), [12.5, 8.0, 1.0]),
    ];
    for (agg, want) in expect {
        let r = run(&query(agg, 0..1000, Some(100)), vec![(l.clone(), counter())]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].labels, l);
        let want: Vec<(i64, f64)> = [0, 100, 300].into_iter().zip(want).collect();
        assert_close(&pts(&r[0]), &want, &format!("{agg:?}"));
    }
    // Whole range, no step: one point at the range start; the increase spans
    // every consecutive pair: 5 + 5 + 3 + 5 + 1 (8 -> 1 is a reset).
    let r = run(&query(Agg::Increase, 0..1000, None), vec![(l.clone(), counter())]);
    assert_eq!(pts(&r[0]), vec![(0, 19.0)]);
    let r = run(&query(Agg::Rate, 0..1000, None), vec![(l.clone(), counter())]);
    assert_eq!(pts(&r[0]), vec![(0, 19.0)]);
    // Raw with a step: the last sample of each bucket, with its own timestamp.
    let r = run(&query(Agg::Raw, 0..1000, Some(100)), vec![(l.clone(), counter())]);
    assert_eq!(pts(&r[0]), vec![(50, 15.0), (150, 8.0), (310, 1.0)]);
    let r = run(&query(Agg::Raw, 0..1000, None), vec![(l, counter())]);
    assert_eq!(r[0].points, counter()[1..7]);
}

#[test]
fn every_agg_matches_naive() {
    let datasets: Vec<Vec<Sample>> = vec![
        counter(),
        samples(&[(7, 3.5)]),
        samples(&[(0, 1.0), (10, f64::NAN), (20, 3.0), (150, f64::NAN), (230, 2.0), (240, 1.0)]),
        samples(&[(0, f64::NAN), (1, 2.0), (2, f64::INFINITY), (3, -1.5), (4, 0.0)]),
        (0..200).map(|i| Sample::new(i * 7 - 300, ((i * 37) % 23) as f64 * 0.25)).collect(),
    ];
    let l = labels("cpu", "a", "x");
    for (di, data) in datasets.iter().enumerate() {
        for (range, step) in [(0..1000, Some(100)), (0..1000, None), (-250..333, Some(64)), (55..56, Some(1))] {
            for agg in ALL_AGGS {
                let r = run(&query(agg, range.clone(), step.map(|s| s as u64)), vec![(l.clone(), data.clone())]);
                let want = naive(agg, data, range.clone(), step);
                let got = r.first().map(pts).unwrap_or_default();
                if agg == Agg::Raw && step.is_none() {
                    let all: Vec<(i64, f64)> =
                        data.iter().filter(|s| range.contains(&s.ts)).map(|s| (s.ts, s.value)).collect();
                    assert_close(&got, &all, "raw");
                    continue;
                }
                assert_close(&got, &want, &format!("dataset {di} {agg:?} {range:?} {step:?}"));
            }
        }
    }
}

#[test]
fn nan_semantics() {
    let l = labels("cpu", "a", "x");
    let data = samples(&[(0, f64::NAN), (10, 1.0), (20, 3.0)]);
    let one = |agg| run(&query(agg, 0..100, None), vec![(l.clone(), data.clone())])[0].points[0].value;
    assert!(one(Agg::Avg).is_nan() && one(Agg::Sum).is_nan() && one(Agg::First).is_nan());
    assert!(one(Agg::Increase).is_nan() && one(Agg::Stddev).is_nan());
    assert_eq!((one(Agg::Min), one(Agg::Max), one(Agg::Count), one(Agg::Last)), (1.0, 3.0, 3.0, 3.0));
    assert_eq!((one(Agg::Quantile(0.0)), one(Agg::Quantile(1.0))), (1.0, 3.0));
}

#[test]
fn unaligned_range_edges_give_partial_buckets() {
    let l = labels("cpu", "a", "x");
    let r = run(&query(Agg::Count, 50..301, Some(100)), vec![(l, counter())]);
    // [50, 100) holds one sample but is reported at the aligned start 0.
    assert_eq!(pts(&r[0]), vec![(0, 1.0), (100, 3.0)]);
}

fn three_series() -> Vec<(Labels, Vec<Sample>)> {
    vec![
        (labels("cpu", "a", "x"), samples(&[(0, 0.0), (50, 10.0), (100, 1.0)])),
        (labels("cpu", "b", "x"), samples(&[(0, 100.0), (50, 5.0), (110, 2.0)])),
        (labels("cpu", "c", "y"), samples(&[(10, 7.0), (60, 9.0)])),
    ]
}

#[test]
fn group_by_combines_members() {
    let q = |agg| query(agg, 0..200, Some(100)).group_by(["dc"]);
    let x = Labels::metric("cpu", [("dc", "x")]).unwrap();
    let y = Labels::metric("cpu", [("dc", "y")]).unwrap();
    let r = run(&q(Agg::Sum), three_series());
    assert_eq!(r.iter().map(|s| s.labels.clone()).collect::<Vec<_>>(), vec![x.clone(), y]);
    assert_eq!(pts(&r[0]), vec![(0, 115.0), (100, 3.0)]);
    assert_eq!(pts(&r[1]), vec![(0, 16.0)]);
    // Increase per series, then summed: a +10, b reset to 5 counts +5.
    assert_eq!(pts(&run(&q(Agg::Increase), three_series())[0]), vec![(0, 15.0), (100, 0.0)]);
    assert_eq!(pts(&run(&q(Agg::Rate), three_series())[0]), vec![(0, 150.0), (100, 0.0)]);
    assert_eq!(pts(&run(&q(Agg::Count), three_series())[0]), vec![(0, 4.0), (100, 2.0)]);
    assert_eq!(pts(&run(&q(Agg::Avg), three_series())[0]), vec![(0, 28.75), (100, 1.5)]);
    // First/Last by timestamp; the tie at 0 goes to the smaller labels (host a).
    assert_eq!(pts(&run(&q(Agg::First), three_series())[0]), vec![(0, 0.0), (100, 1.0)]);
    assert_eq!(pts(&run(&q(Agg::Last), three_series())[0]), vec![(0, 10.0), (100, 2.0)]);
    assert_eq!(pts(&run(&q(Agg::Max), three_series())[0]), vec![(0, 100.0), (100, 2.0)]);
    // Stddev and quantiles over all member samples as one population.
    assert_eq!(pts(&run(&q(Agg::Quantile(1.0)), three_series())[0]), vec![(0, 100.0), (100, 2.0)]);
    assert_eq!(pts(&run(&q(Agg::Stddev), three_series())[0])[1], (100, 0.5));

    // group_by([]) folds everything into one series named by the shared metric.
    let all = run(&query(Agg::Count, 0..200, None).group_by(Vec::<String>::new()), three_series());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].labels, Labels::metric("cpu", Vec::<(String, String)>::new()).unwrap());
    assert_eq!(pts(&all[0]), vec![(0, 8.0)]);
    // Grouping by __name__ itself keeps it.
    let by_name = run(&query(Agg::Count, 0..200, None).group_by(["__name__", "dc"]), three_series());
    assert_eq!(by_name[0].labels, x);
}

#[test]
fn group_labels_drop_unshared_metric_name() {
    let mut input = three_series();
    input[1].0 = labels("mem", "b", "x");
    let r = run(&query(Agg::Count, 0..200, None).group_by(["dc"]), input.clone());
    // Sorted by labels: "__name__" sorts before "dc".
    assert_eq!(r[0].labels, Labels::metric("cpu", [("dc", "y")]).unwrap());
    assert_eq!(r[1].labels, Labels::from_pairs([("dc", "x")]).unwrap());
    assert_eq!(pts(&r[1]), vec![(0, 6.0)]);
    // Members with no grouping label and no shared name: no labels to report.
    let q = query(Agg::Count, 0..200, None).group_by(["zone"]);
    let input: Vec<(Labels, SeriesData)> = input.into_iter().map(|(l, s)| (l, SeriesData::Raw(s))).collect();
    let err = evaluate(&q, input, Tier::Raw).unwrap_err();
    assert!(err.to_string().contains("zone"), "{err}");
}

#[test]
fn top_k_ranks_by_mean() {
    let mk = |host: &str, v: f64| (labels("cpu", host, "x"), samples(&[(0, v), (100, v)]));
    let input = vec![mk("a", 1.0), mk("b", 5.0), mk("c", f64::NAN), mk("d", 5.0), mk("e", -3.0)];
    let hosts = |k: usize| -> Vec<String> {
        run(&query(Agg::Avg, 0..200, Some(100)).top_k(k), input.clone())
            .iter()
            .map(|s| s.labels.get("host").unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(hosts(2), ["b", "d"]);
    assert_eq!(hosts(3), ["b", "d", "a"]);
    assert_eq!(hosts(10), ["b", "d", "a", "e", "c"]);
    // Without top_k: sorted by labels.
    let all = run(&query(Agg::Avg, 0..200, Some(100)), input);
    assert_eq!(all.iter().map(|s| s.labels.get("host").unwrap_or("")).collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
}

#[test]
fn bottom_k_and_the_ranking_statistic() {
    // a: mean 2, max 3, min 1, last 1, sum 4; b: mean 2.5, max 4, min 1, last 4, sum 5;
    // c: mean 0, max 9, min -9, last 9, sum 0; d: NaN everywhere.
    let mk = |host: &str, v: [f64; 2]| (labels("cpu", host, "x"), samples(&[(0, v[0]), (100, v[1])]));
    let input = vec![mk("a", [3.0, 1.0]), mk("b", [1.0, 4.0]), mk("c", [-9.0, 9.0]), mk("d", [f64::NAN, f64::NAN])];
    let hosts = |q: Query| -> Vec<String> {
        run(&q, input.clone()).iter().map(|s| s.labels.get("host").unwrap_or("").to_string()).collect()
    };
    let q = || query(Agg::Raw, 0..200, None);
    assert_eq!(hosts(q().top_k(4)), ["b", "a", "c", "d"]);
    assert_eq!(hosts(q().bottom_k(4)), ["c", "a", "b", "d"], "lowest first, NaN still last");
    assert_eq!(hosts(q().bottom_k(1)), ["c"]);
    assert_eq!(hosts(q().top_k(1).rank_by(RankBy::Max)), ["c"]);
    assert_eq!(hosts(q().bottom_k(2).rank_by(RankBy::Min)), ["c", "a"], "ties by labels");
    assert_eq!(hosts(q().top_k(2).rank_by(RankBy::Last)), ["c", "b"]);
    assert_eq!(hosts(q().bottom_k(2).rank_by(RankBy::Sum)), ["c", "a"]);
    // The last of top_k and bottom_k holds.
    assert_eq!(hosts(q().top_k(1).bottom_k(1)), ["c"]);
    assert_eq!(hosts(q().bottom_k(1).top_k(1)), ["b"]);
    assert_eq!("AVG".parse::<RankBy>(), Ok(RankBy::Mean));
    assert!("median".parse::<RankBy>().unwrap_err().contains("mean, max, min, last or sum"));
}

#[test]
fn empty_and_out_of_range_series_are_dropped() {
    let input = vec![
        (labels("cpu", "a", "x"), samples(&[(5000, 1.0)])),
        (labels("cpu", "b", "x"), Vec::new()),
        (labels("cpu", "c", "x"), samples(&[(10, 1.0)])),
    ];
    let r = run(&query(Agg::Sum, 0..1000, Some(100)), input);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].labels.get("host"), Some("c"));
}

fn hour_query(agg: Agg) -> Query {
    query(agg, 0..2 * HOUR_MS, Some(HOUR_MS as u64))
}

#[test]
fn bucket_input_is_checked() {
    let data = (0..100).map(|i| Sample::new(i * 60_000, i as f64)).collect::<Vec<_>>();
    let five = rollup(&data, FIVE_MIN_MS).unwrap();
    let input = |w: i64, b: &Vec<Bucket>| {
        vec![(labels("cpu", "a", "x"), SeriesData::Buckets { width_ms: w, buckets: b.clone() })]
    };
    assert!(evaluate(&hour_query(Agg::Sum), input(FIVE_MIN_MS, &five), Tier::FiveMin).is_ok());
    let bad: [(Query, Tier, i64); 6] = [
        (hour_query(Agg::Sum), Tier::Auto, FIVE_MIN_MS),
        (hour_query(Agg::Sum), Tier::Hour, FIVE_MIN_MS),
        (hour_query(Agg::Sum), Tier::Raw, FIVE_MIN_MS),
        (hour_query(Agg::Stddev), Tier::FiveMin, FIVE_MIN_MS),
        (query(Agg::Sum, 0..HOUR_MS, Some(7 * 60_000)), Tier::FiveMin, FIVE_MIN_MS),
        (query(Agg::Sum, 1..HOUR_MS, None), Tier::FiveMin, FIVE_MIN_MS),
    ];
    for (q, tier, w) in bad {
        let e = evaluate(&q, input(w, &five), tier).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    let mut unsorted = five.clone();
    unsorted.swap(0, 1);
    assert!(evaluate(&hour_query(Agg::Sum), input(FIVE_MIN_MS, &unsorted), Tier::FiveMin).is_err());
    let unsorted_raw = vec![(labels("cpu", "a", "x"), SeriesData::Raw(samples(&[(2, 1.0), (1, 1.0)])))];
    assert!(evaluate(&hour_query(Agg::Sum), unsorted_raw, Tier::Raw).is_err());
    // Buckets starting outside the range are ignored, not an error.
    let r = evaluate(&query(Agg::Count, HOUR_MS..2 * HOUR_MS, None), input(FIVE_MIN_MS, &five), Tier::FiveMin);
    assert_eq!(r.unwrap().series[0].points, vec![Sample::new(HOUR_MS, 40.0)]);
}

#[test]
fn choose_tier_auto_and_explicit() {
    let day = 24 * HOUR_MS;
    let now = 400 * day;
    let q = |step_ms: Option<u64>, start: i64| query(Agg::Avg, start..now, step_ms);
    let all = [Some(now - 7 * day), Some(now - 30 * day), Some(now - 365 * day)];
    let h = HOUR_MS as u64;
    let pick = |q: &Query, avail| choose_tier(q, now, avail).unwrap();
    assert_eq!(pick(&q(Some(h), now - day), all), Tier::Hour);
    assert_eq!(pick(&q(Some(h / 12), now - day), all), Tier::FiveMin);
    assert_eq!(pick(&q(Some(60_000), now - day), all), Tier::Raw);
    assert_eq!(pick(&q(None, now - day), all), Tier::Hour);
    // An unaligned range: its whole buckets come from a tier, its ragged edges from raw.
    assert_eq!(pick(&q(Some(h), now - day + 1), all), Tier::Hour);
    assert_eq!(pick(&query(Agg::Max, now - h as i64 + 1..now - 1, Some(h)), all), Tier::FiveMin);
    assert_eq!(pick(&query(Agg::Sum, now - 3 * h as i64 + 1..now - 1, None), all), Tier::Hour);
    // ... unless it holds no whole bucket of any tier.
    assert_eq!(pick(&query(Agg::Max, now - 240_000..now - 1, None), all), Tier::Raw);
    assert_eq!(pick(&query(Agg::Max, now - 360_000 + 1..now - 1, None), all), Tier::Raw);
    // Raw-only aggregations.
    assert_eq!(pick(&q(Some(h), now - day).agg(Agg::Quantile(0.9)), all), Tier::Raw);
    // 5m step beyond the 5m tier's reach: raw does not cover either; 5m reaches further back.
    assert_eq!(pick(&q(Some(h / 12), now - 100 * day), all), Tier::FiveMin);
    // The hour tier is empty: the 5m one covers.
    assert_eq!(pick(&q(Some(h), now - day), [all[0], all[1], None]), Tier::FiveMin);
    // Nothing covers, raw reaches furthest back.
    assert_eq!(pick(&q(Some(h), now - 500 * day), [Some(0), Some(now - 30 * day), None]), Tier::Raw);
    assert_eq!(pick(&q(Some(h), now - day), [None, None, None]), Tier::Raw);
    // A range in the future has not been downsampled.
    assert_eq!(pick(&query(Agg::Avg, now..now + day, Some(h)), all), Tier::Raw);

    // Explicit tiers are honoured, even empty ones, unless impossible.
    assert_eq!(pick(&q(Some(h), now - day).tier(Tier::FiveMin), [None, None, None]), Tier::FiveMin);
    assert_eq!(pick(&q(Some(60_000), now - day).tier(Tier::Raw), all), Tier::Raw);
    for impossible in [
        q(Some(60_000), now - day).tier(Tier::FiveMin),
        q(Some(h), now - day + 1).tier(Tier::Hour),
        q(Some(h), now - day).agg(Agg::Stddev).tier(Tier::Hour),
    ] {
        let e = choose_tier(&impossible, now, all).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("cannot answer"), "{e}");
    }
}

#[test]
fn validate_rejects_bad_queries() {
    let ok = query(Agg::Avg, 0..10, Some(5));
    assert!(ok.validate().is_ok());
    let bad = [
        Query::new().range(0..10),
        query(Agg::Avg, 10..10, None),
        query(Agg::Avg, std::ops::Range { start: 11, end: 10 }, None),
        query(Agg::Avg, 0..10, Some(0)),
        query(Agg::Avg, 0..10, None).step(Duration::from_micros(1500)),
        query(Agg::Avg, 0..10, None).step(Duration::from_secs(u64::MAX)),
        query(Agg::Avg, i64::MIN..0, Some(7)),
        query(Agg::Quantile(1.5), 0..10, None),
        query(Agg::Quantile(f64::NAN), 0..10, None),
        query(Agg::Avg, 0..10, None).top_k(0),
        query(Agg::Raw, 0..10, None).group_by(["host"]),
        query(Agg::Avg, 0..10, None).group_by(["bad-name"]),
    ];
    for q in bad {
        let e = q.validate().unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{q:?}: {e}");
        let input = vec![(labels("cpu", "a", "x"), SeriesData::Raw(samples(&[(1, 1.0)])))];
        assert!(evaluate(&q, input, Tier::Raw).is_err());
    }
}

#[test]
fn builder_and_tier_accessors() {
    let q = Query::new()
        .select([Matcher::eq("__name__", "cpu_usage")])
        .range(10..20)
        .step(Duration::from_secs(300))
        .agg(Agg::Quantile(0.99))
        .group_by(["host", "dc", "host"])
        .top_k(5)
        .tier(Tier::Hour);
    assert_eq!(q.matchers().len(), 1);
    assert_eq!(q.time_range(), 10..20);
    assert_eq!((q.step_ms(), q.step_duration()), (Some(300_000), Some(Duration::from_secs(300))));
    assert_eq!(q.aggregation(), Agg::Quantile(0.99));
    assert_eq!(q.grouping(), Some(&["dc".to_string(), "host".to_string()][..]));
    assert_eq!((q.top_k_limit(), q.requested_tier()), (Some(5), Tier::Hour));
    assert_eq!(Query::new().aggregation(), Agg::Raw);
    for (i, t) in Tier::ALL.into_iter().enumerate() {
        assert_eq!((t.index(), Tier::from_index(i)), (Some(i), Some(t)));
    }
    assert_eq!(Tier::Auto.index(), None);
    assert_eq!(Tier::from_index(3), None);
    let res: Vec<_> = [Tier::Auto, Tier::Raw, Tier::FiveMin, Tier::Hour].map(Tier::resolution_ms).into();
    assert_eq!(res, [None, None, Some(300_000), Some(3_600_000)]);
    assert!(needs_raw(Agg::Raw) && needs_raw(Agg::Stddev) && needs_raw(Agg::Quantile(0.5)) && !needs_raw(Agg::Rate));
}
