//! PromQL answered from the rollup tiers equals raw evaluation (`use_tiers:
//! false`): random series with gaps, NaN, signed zeros, infinities, huge values
//! and staleness markers, appearing and disappearing, sealed and rolled up in
//! several passes with late writes and recent data left in the head; random
//! unaligned ranges, steps, windows and offsets. Also raw retention shorter
//! than the tiers', a 5-minute tier kept shorter than raw, and a deleted range,
//! before and after the tiers catch up.
//!
//! count, min, max and present are compared bit for bit; sum and avg within a
//! relative 1e-12 (an absolute 1e-12 below 1: integer values may cancel to 0).

use std::time::Duration;

use proptest::prelude::*;
use strata::loadgen::Rng;
use strata::promql::{Options as PromqlOptions, Value};
use strata::{Db, Labels, Matcher, RetentionPolicy, SyncMode, TierDurations};

use crate::support::options;

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const STALE: u64 = 0x7ff0_0000_0000_0002;
/// How long the data runs: queries reach a day back from anywhere in it.
const SPAN: i64 = 2 * DAY + 5 * HOUR;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[derive(Debug, Clone)]
struct Setup {
    seed: u64,
    series: usize,
    /// Raw and 5-minute retention in hours, set once the data is in (1000: forever).
    keep_h: Option<(i64, i64)>,
    /// Delete a range of one series; then roll up again or not.
    delete: Option<bool>,
}

struct Data {
    _dir: tempfile::TempDir,
    db: Db,
    start: i64,
    end: i64,
}

fn labels(i: usize) -> Labels {
    let name = if i % 3 == 2 { "n" } else { "m" };
    Labels::from_pairs([("__name__", name.to_string()), ("s", i.to_string()), ("k", (i % 2).to_string())]).unwrap()
}

/// One value of a series of kind `kind`; specials are rare.
fn value(rng: &mut Rng, kind: u64) -> f64 {
    let r = rng.next_f64();
    if r < 0.01 {
        return f64::from_bits(STALE);
    }
    if r < 0.015 {
        return f64::NAN;
    }
    if r < 0.025 {
        return if r < 0.02 { 0.0 } else { -0.0 };
    }
    match kind {
        // Cancelling integers: exact sums.
        0 => (rng.next_f64() * 101.0).floor() - 50.0,
        // Values near f64::MAX: sums overflow depending on their order.
        1 if r < 0.05 => (rng.next_f64() - 0.3) * 1.7e308,
        2 if r < 0.027 => f64::INFINITY,
        3 if r < 0.027 => f64::NEG_INFINITY,
        _ => rng.next_f64() * 1000.0,
    }
}

/// Writes the series, sealing, rolling up and compacting at random points, with
/// late writes into sealed and rolled-up time; the last stretch stays in the head.
fn build(s: &Setup) -> Data {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options::foreground(SyncMode::Never)).unwrap();
    let mut rng = Rng::new(s.seed);
    // Unaligned to anything: the data starts at an arbitrary millisecond.
    let start = now() - SPAN - (rng.next_u64() % HOUR as u64) as i64;
    let end = start + SPAN;
    let floor = s.keep_h.and_then(|(raw, _)| (raw < 1000).then(|| now() - raw * HOUR));
    let mut samples: Vec<(usize, i64, f64)> = Vec::new();
    for i in 0..s.series {
        let kind = rng.next_u64() % 5;
        let interval = [SEC, 10 * SEC, 15 * SEC, 30 * SEC, 97 * SEC, 5 * MIN][(rng.next_u64() % 6) as usize];
        // One or two stretches of presence; a staleness marker where one ends.
        // Half the series sit on a grid without jitter, so that window edges (from
        // queries on the same grid) fall exactly on samples.
        let jitter = rng.next_u64().is_multiple_of(2);
        let mut t = start + (rng.next_f64() * SPAN as f64 * 0.3) as i64;
        if !jitter {
            // A few ms off the grid: samples on the last and first ms of buckets.
            t = t.div_euclid(interval) * interval + (rng.next_u64() % 5) as i64 - 2;
        }
        for _ in 0..1 + rng.next_u64() % 2 {
            let stop = (t + (rng.next_f64() * SPAN as f64) as i64).min(end);
            while t < stop {
                // No sample within a few minutes of the raw retention floor: the floor
                // moves with the clock between the two evaluations compared.
                if floor.is_none_or(|f| t < f - 10 * SEC || t > f + 3 * MIN) {
                    samples.push((i, t, value(&mut rng, kind)));
                }
                t += interval;
                if jitter {
                    t += (rng.next_u64() % (interval as u64 / 10 + 1)) as i64;
                }
                if rng.next_f64() < 0.002 {
                    t += interval * (rng.next_f64() * 3.0 * (HOUR / interval) as f64) as i64;
                    // a gap
                }
            }
            samples.push((i, t, f64::from_bits(STALE)));
            t += interval * (1 + (rng.next_f64() * 6.0 * (HOUR / interval) as f64) as i64);
        }
    }
    samples.sort_by_key(|x| x.1);
    // Late writes: some samples held back and written after their time was sealed.
    let mut late = Vec::new();
    let mut app = db.appender();
    let head_from = end - (rng.next_f64() * 3.0 * HOUR as f64) as i64;
    let mut next_seal = start + (rng.next_f64() * 6.0 * HOUR as f64) as i64;
    for (i, t, v) in samples {
        if t >= next_seal && t < head_from {
            app.commit().unwrap();
            db.flush().unwrap();
            for (i, t, v) in late.drain(..) {
                app.append_labels(&labels(i), t, v).unwrap();
            }
            if rng.next_f64() < 0.7 {
                db.downsample().unwrap();
            }
            if rng.next_f64() < 0.2 {
                db.compact().unwrap();
            }
            next_seal = t + (rng.next_f64() * 8.0 * HOUR as f64) as i64;
        }
        if rng.next_f64() < 0.01 {
            late.push((i, t, v));
        } else {
            app.append_labels(&labels(i), t, v).unwrap();
            if rng.next_f64() < 0.003 {
                late.push((i, t, v + 1.0)); // an overwrite
            }
        }
    }
    app.commit().unwrap();
    db.flush().unwrap();
    db.downsample().unwrap();
    if let Some(roll_again) = s.delete {
        let from = start + (rng.next_f64() * SPAN as f64) as i64;
        let to = from + (rng.next_f64() * 5.0 * HOUR as f64) as i64;
        let which = rng.next_u64() as usize % s.series;
        db.delete(&[Matcher::eq("s", which.to_string())], from..=to).unwrap();
        if roll_again {
            db.downsample().unwrap();
        }
    }
    // Late data and the newest stretch stay in the head.
    for (i, t, v) in late {
        app.append_labels(&labels(i), t, v).unwrap();
    }
    app.commit().unwrap();
    if let Some((raw, five)) = s.keep_h {
        let h = |n: i64| if n >= 1000 { TierDurations::FOREVER } else { Duration::from_secs(n as u64 * 3600) };
        let keep = TierDurations::new(h(raw), h(five), TierDurations::FOREVER);
        db.set_retention(RetentionPolicy::new(keep).unwrap()).unwrap();
    }
    Data { _dir: dir, db, start, end }
}

fn close(exact: bool, a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
        || (a.is_nan() && b.is_nan())
        || (!exact && (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0))
}

fn same(exact: bool, a: &Value, b: &Value) -> std::result::Result<(), String> {
    match (a, b) {
        (Value::Matrix(x), Value::Matrix(y)) => {
            if x.len() != y.len() {
                return Err(format!("{} series against {}", x.len(), y.len()));
            }
            for (p, q) in x.iter().zip(y) {
                if p.metric != q.metric || p.points.len() != q.points.len() {
                    let ts = |s: &strata::promql::RangeSeries| s.points.iter().map(|p| p.0).collect::<Vec<_>>();
                    let (tp, tq) = (ts(p), ts(q));
                    let only = |a: &[i64], b: &[i64]| a.iter().filter(|t| !b.contains(t)).copied().collect::<Vec<_>>();
                    return Err(format!(
                        "{:?} ({} points) against {:?} ({}); steps only in the first: {:?}, only in the second: {:?}",
                        p.metric,
                        p.points.len(),
                        q.metric,
                        q.points.len(),
                        only(&tp, &tq),
                        only(&tq, &tp),
                    ));
                }
                for (u, v) in p.points.iter().zip(&q.points) {
                    if u.0 != v.0 || !close(exact, u.1, v.1) {
                        return Err(format!("{:?} at {}: {:?} against {:?} at {}", p.metric, u.0, u.1, v.1, v.0));
                    }
                }
            }
            Ok(())
        }
        (Value::Vector(x), Value::Vector(y)) => {
            let mut x = x.clone();
            let mut y = y.clone();
            x.sort_by(|a, b| a.metric.cmp(&b.metric));
            y.sort_by(|a, b| a.metric.cmp(&b.metric));
            if x.len() != y.len() {
                return Err(format!("{} elements against {}", x.len(), y.len()));
            }
            for (p, q) in x.iter().zip(&y) {
                if p.metric != q.metric || !close(exact, p.v, q.v) {
                    return Err(format!("{:?} {:?} against {:?} {:?}", p.metric, p.v, q.metric, q.v));
                }
            }
            Ok(())
        }
        _ => Err(format!("{a:?} against {b:?}")),
    }
}

/// A random query over the tier-accelerated functions.
fn query(rng: &mut Rng) -> (String, bool) {
    let f =
        ["count_over_time", "sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "present_over_time"]
            [(rng.next_u64() % 6) as usize];
    let range_ms = match rng.next_u64() % 6 {
        0 => 5 * MIN,
        1 => HOUR,
        2 => DAY,
        3 => MIN + (rng.next_f64() * 10.0 * MIN as f64) as i64,
        _ => MIN + (rng.next_f64() * (DAY - MIN) as f64) as i64,
    };
    let sel = ["m", "{__name__=~\"m|n\"}", "n{k=\"0\"}", "{s=~\"1|2|3\"}"][(rng.next_u64() % 4) as usize];
    let modifier = match rng.next_u64() % 5 {
        0 => format!(" offset {}ms", (rng.next_f64() * 3.0 * HOUR as f64) as i64),
        1 if rng.next_u64().is_multiple_of(2) => format!(" offset {}m", 1 + rng.next_u64() % 200),
        1 => format!(" offset -{}ms", (rng.next_f64() * HOUR as f64) as i64),
        _ => String::new(),
    };
    let inner = format!("{f}({sel}[{range_ms}ms]{modifier})");
    let e = match rng.next_u64() % 4 {
        0 => format!("max({inner})"),
        1 => format!("sum by (k) ({inner})"),
        _ => inner,
    };
    // `sum by` adds the series' values in the same order in both evaluations.
    (e, !(f == "sum_over_time" || f == "avg_over_time"))
}

fn check(s: &Setup) -> std::result::Result<(), String> {
    let d = build(s);
    let raw = PromqlOptions { use_tiers: false, ..PromqlOptions::default() };
    let tiers = PromqlOptions::default();
    let mut rng = Rng::new(s.seed ^ 0x5eed);
    for _ in 0..16 {
        let (mut e, exact) = query(&mut rng);
        if rng.next_u64().is_multiple_of(6) && !e.contains("offset") {
            // `@` pins every step to one time.
            let at = d.start + (rng.next_f64() * SPAN as f64) as i64;
            e = e.replacen("ms]", &format!("ms] @ {}.{:03}", at.div_euclid(1000), at.rem_euclid(1000)), 1);
        }
        let mut start = d.start + (rng.next_f64() * (SPAN + 2 * HOUR) as f64) as i64 - HOUR;
        if rng.next_u64().is_multiple_of(2) {
            // On a grid, as dashboards align them: edges meet samples and bucket bounds.
            let g = [SEC, 10 * SEC, MIN, 5 * MIN, HOUR][(rng.next_u64() % 5) as usize];
            start = start.div_euclid(g) * g + (rng.next_u64() % 5) as i64 - 2;
        }
        let (a, b) = if rng.next_u64().is_multiple_of(3) {
            let t = start;
            (d.db.promql_instant_with(&e, t, &tiers), d.db.promql_instant_with(&e, t, &raw))
        } else {
            let step = match rng.next_u64() % 3 {
                0 => [15 * SEC, MIN, 5 * MIN, HOUR][(rng.next_u64() % 4) as usize],
                _ => SEC + (rng.next_f64() * 3.0 * HOUR as f64) as i64,
            };
            let end = (start + step * (rng.next_u64() % 200) as i64).min(d.end + 2 * HOUR);
            (d.db.promql_range_with(&e, start, end, step, &tiers), d.db.promql_range_with(&e, start, end, step, &raw))
        };
        let (a, b) = (a.map_err(|x| format!("{e}: {x}"))?, b.map_err(|x| format!("{e}: {x}"))?);
        same(exact, &a, &b).map_err(|why| format!("{e} ({s:?}): {why}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn tier_accelerated_promql_equals_raw(seed in any::<u64>(), series in 2usize..7, variant in 0u8..6) {
        let s = Setup {
            seed,
            series,
            keep_h: match variant { 3 => Some((30, 1000)), 4 => Some((1000, 30)), _ => None },
            delete: match variant { 1 => Some(false), 2 => Some(true), _ => None },
        };
        let r = check(&s);
        prop_assert!(r.is_ok(), "{}", r.err().unwrap_or_default());
    }
}

/// Two steps whose windows touch (`[B-600001, B-300001]` and `[B-300001, B-1]`):
/// the first ends in a raw stretch (its 5-minute bucket holds a NaN, so the tier
/// cannot answer it), the second starts with an edge its bucket settles as empty
/// and goes on raw (its bucket is newer than the tier). The second's raw stretch
/// once joined the first's, so the second step lost its samples and the first
/// gained them.
#[test]
fn touching_windows_keep_their_own_raw_stretches() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options::foreground(SyncMode::Never)).unwrap();
    let b: i64 = 1_700_001_000_000; // half past an hour
    let m = Labels::from_pairs([("__name__", "m"), ("s", "a")]).unwrap();
    let mut app = db.appender();
    let mut t = b - 2 * HOUR;
    while t <= b - 310 * SEC {
        let v = if t == b - 450 * SEC { f64::NAN } else { (t / 10_000 % 97) as f64 };
        app.append_labels(&m, t, v).unwrap();
        t += 10 * SEC;
    }
    app.commit().unwrap();
    db.flush().unwrap();
    db.downsample().unwrap();
    let mut t = b - 295 * SEC;
    while t <= b + 10 * MIN {
        app.append_labels(&m, t, 1000.0 + (t / 10_000 % 89) as f64).unwrap();
        t += 10 * SEC;
    }
    app.commit().unwrap();
    let e = "max_over_time(m[300000ms])";
    let raw = PromqlOptions { use_tiers: false, ..PromqlOptions::default() };
    for (start, end) in [(b - 300_001, b - 1), (b - 600_001, b - 1), (b - 300_001, b + 299_999)] {
        let tiers = db.promql_range_with(e, start, end, 300_000, &PromqlOptions::default()).unwrap();
        let want = db.promql_range_with(e, start, end, 300_000, &raw).unwrap();
        let Value::Matrix(w) = &want else { panic!("{want:?}") };
        assert_eq!(w[0].points.len() as i64, (end - start) / 300_000 + 1, "raw answers every step");
        assert!(w[0].points.iter().any(|p| p.1 >= 1000.0), "a step sees the head's samples");
        same(true, &tiers, &want).unwrap();
    }
}
