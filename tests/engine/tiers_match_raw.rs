//! Rollup tiers answer exactly what raw data answers over the same aligned
//! buckets: through the engine, with out-of-order writes, overwrites, counter
//! resets, several seals, compaction, and recent data still in the head. On
//! unaligned ranges `Tier::Auto` answers whole buckets from the tiers and the
//! ragged edges from raw samples, and still answers what raw evaluation does.

use crate::support::options;
use std::time::Duration;

use strata::loadgen::Rng;
use strata::{Agg, Db, Labels, Matcher, Options, Query, SyncMode, Tier};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const T0: i64 = 1_700_000_000_000 / (24 * HOUR) * (24 * HOUR);

fn opts() -> Options {
    options::foreground(SyncMode::Never)
}

fn labels(i: usize) -> Labels {
    let kind = if i.is_multiple_of(2) { "gauge" } else { "counter" };
    Labels::from_pairs([("__name__", kind.to_string()), ("host", format!("h{}", i % 4)), ("i", i.to_string())]).unwrap()
}

/// 3 days at 30 s for 12 series; 5 % of samples arrive late, 1 % are rewritten later.
fn load(db: &Db) {
    let mut rng = Rng::new(11);
    let mut app = db.appender();
    let mut late: Vec<(usize, i64, f64)> = Vec::new();
    let mut values = [0f64; 12];
    let steps = 3 * 24 * 120;
    for step in 0..steps {
        let ts = T0 + step * 30_000;
        for (i, v) in values.iter_mut().enumerate() {
            *v = if i.is_multiple_of(2) {
                ((rng.next_f64() * 1000.0).round()) / 10.0
            } else if rng.next_f64() < 0.002 {
                (rng.next_f64() * 10.0).round() // counter reset
            } else {
                *v + (rng.next_f64() * 50.0).round()
            };
            let r = rng.next_f64();
            if r < 0.05 {
                late.push((i, ts, *v));
            } else {
                app.append_labels(&labels(i), ts, *v).unwrap();
                if r > 0.99 {
                    late.push((i, ts, *v + 1.0)); // an overwrite, written later
                }
            }
        }
        if step % 50 == 49 {
            for (i, ts, v) in late.drain(..) {
                app.append_labels(&labels(i), ts, v).unwrap();
            }
            app.commit().unwrap();
        }
        if step % 797 == 796 {
            db.flush().unwrap(); // irregular seal points: buckets straddle segments
        }
        if step % 2000 == 1999 {
            db.compact().unwrap();
        }
    }
    for (i, ts, v) in late.drain(..) {
        app.append_labels(&labels(i), ts, v).unwrap();
    }
    app.commit().unwrap();
    db.compact().unwrap();
}

fn close(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn check(db: &Db, agg: Agg, step: i64, tier: Tier, group: bool) {
    let base = Query::new()
        .select([Matcher::regex("__name__", "gauge|counter").unwrap()])
        .range(T0..T0 + 3 * 24 * HOUR)
        .step(Duration::from_millis(step as u64))
        .agg(agg);
    let base = if group { base.group_by(["host"]) } else { base };
    let raw = db.query(&base.clone().tier(Tier::Raw)).unwrap();
    let rolled = db.query(&base.tier(tier)).unwrap();
    assert_eq!(rolled.tier, tier);
    assert_eq!(raw.series.len(), rolled.series.len(), "{agg:?} step {step} {tier:?}");
    let expect_series = if group { 4 } else { 12 };
    assert_eq!(raw.series.len(), expect_series);
    let buckets = (3 * 24 * HOUR / step) as usize;
    assert!(raw.series.iter().all(|s| s.points.len() == buckets), "{agg:?} step {step}: missing buckets");
    for (a, b) in raw.series.iter().zip(&rolled.series) {
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.points.len(), b.points.len(), "{agg:?} step {step} {tier:?} {}", a.labels);
        for (p, q) in a.points.iter().zip(&b.points) {
            assert_eq!(p.ts, q.ts);
            assert!(
                close(p.value, q.value),
                "{agg:?} step {step} {tier:?} {} at {}: {} vs {}",
                a.labels,
                p.ts,
                p.value,
                q.value
            );
        }
    }
}

#[test]
fn five_minute_and_hourly_tiers_equal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    load(&db);
    // Some recent data must still be in the head, so the fresh-data path is exercised.
    let st = db.stats().unwrap();
    assert!(st.head_samples > 0 && st.segment_samples[1] > 0 && st.segment_samples[2] > 0, "{st:?}");
    let aggs = [Agg::Avg, Agg::Sum, Agg::Min, Agg::Max, Agg::Count, Agg::First, Agg::Last, Agg::Rate, Agg::Increase];
    for agg in aggs {
        for (step, tiers) in
            [(5 * MIN, &[Tier::FiveMin][..]), (HOUR, &[Tier::FiveMin, Tier::Hour]), (6 * HOUR, &[Tier::Hour])]
        {
            for &tier in tiers {
                check(&db, agg, step, tier, false);
                check(&db, agg, step, tier, true);
            }
        }
    }
    // Auto picks the coarsest tier that fits the step.
    let q = Query::new().select([Matcher::eq("__name__", "gauge")]).range(T0..T0 + 24 * HOUR).agg(Agg::Max);
    assert_eq!(db.query(&q.clone().step(Duration::from_secs(3600))).unwrap().tier, Tier::Hour);
    assert_eq!(db.query(&q.clone().step(Duration::from_secs(600))).unwrap().tier, Tier::FiveMin);
    assert_eq!(db.query(&q.clone().step(Duration::from_secs(60))).unwrap().tier, Tier::Raw);
    assert_eq!(db.query(&q.agg(Agg::Quantile(0.99)).step(Duration::from_secs(3600))).unwrap().tier, Tier::Raw);
    // And the tiers survive a reopen.
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, Agg::Increase, HOUR, Tier::Hour, true);
    unaligned_ranges_match_raw(&db);
}

/// Random ranges (mostly unaligned, some past either end of the data) and steps:
/// `Auto` answers what `Raw` answers. Count, min, max, first and last are
/// compared bit for bit; sums, averages, increases and rates may differ in the
/// last bits, because a tier bucket's sum was added up before the edges'.
fn unaligned_ranges_match_raw(db: &Db) {
    let mut rng = Rng::new(2026);
    let aggs = [
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
        Agg::Quantile(0.9),
    ];
    let steps = [None, Some(5 * MIN), Some(15 * MIN), Some(HOUR), Some(2 * HOUR), Some(24 * HOUR), Some(7 * MIN)];
    let pick = |rng: &mut Rng, n: usize| (rng.next_u64() % n as u64) as usize;
    let mut by_tier = [0usize; 3];
    for case in 0..400 {
        let agg = aggs[pick(&mut rng, aggs.len())];
        let step = steps[pick(&mut rng, steps.len())];
        let start = T0 - 2 * HOUR + (rng.next_u64() % (3 * 24 * HOUR as u64)) as i64;
        let len = 1 + match pick(&mut rng, 3) {
            0 => rng.next_u64() % (2 * HOUR as u64),
            1 => rng.next_u64() % (12 * HOUR as u64),
            _ => rng.next_u64() % (4 * 24 * HOUR as u64),
        } as i64;
        let mut base = Query::new()
            .select([Matcher::regex("__name__", "gauge|counter").unwrap()])
            .range(start..start + len)
            .agg(agg);
        if let Some(s) = step {
            base = base.step(Duration::from_millis(s as u64));
        }
        if pick(&mut rng, 2) == 0 {
            base = base.group_by(["host"]);
        }
        let what =
            format!("case {case}: {agg:?} step {step:?} range {start}..{} group {:?}", start + len, base.grouping());
        let raw = db.query(&base.clone().tier(Tier::Raw)).unwrap();
        let auto = db.query(&base).unwrap();
        by_tier[auto.tier.index().unwrap()] += 1;
        if matches!(agg, Agg::Stddev | Agg::Quantile(_)) || step == Some(7 * MIN) {
            assert_eq!(auto.tier, Tier::Raw, "{what}: rollups cannot answer it");
        }
        let exact = matches!(agg, Agg::Count | Agg::Min | Agg::Max | Agg::First | Agg::Last);
        assert_eq!(raw.series.len(), auto.series.len(), "{what}");
        for (a, b) in raw.series.iter().zip(&auto.series) {
            assert_eq!(a.labels, b.labels, "{what}");
            assert_eq!(a.points.len(), b.points.len(), "{what} {}", a.labels);
            for (p, q) in a.points.iter().zip(&b.points) {
                assert_eq!(p.ts, q.ts, "{what}");
                let same = if exact { p.value.to_bits() == q.value.to_bits() } else { close(p.value, q.value) };
                assert!(same, "{what} {} at {}: raw {} vs {:?} {}", a.labels, p.ts, p.value, auto.tier, q.value);
            }
        }
        // Every statistic at once (`Db::buckets`) on the same range.
        let raw = db.buckets(&base.clone().tier(Tier::Raw)).unwrap();
        let auto = db.buckets(&base).unwrap();
        assert_eq!(raw.series.len(), auto.series.len(), "{what}");
        for (a, b) in raw.series.iter().zip(&auto.series) {
            assert_eq!(a.buckets.len(), b.buckets.len(), "{what}");
            for (x, y) in a.buckets.iter().zip(&b.buckets) {
                let key = |b: &strata::rollup::Bucket| {
                    (
                        b.start,
                        b.count,
                        b.min.to_bits(),
                        b.max.to_bits(),
                        b.first_ts,
                        b.last_ts,
                        b.first.to_bits(),
                        b.last.to_bits(),
                    )
                };
                assert_eq!(key(x), key(y), "{what}");
                assert!(close(x.sum, y.sum) && close(x.increase, y.increase), "{what}: {x:?} vs {y:?}");
            }
        }
    }
    // Most cases were answered from the tiers (with raw edges), not all from raw.
    assert!(by_tier[1] >= 40 && by_tier[2] >= 40, "answered by raw, 5m, 1h: {by_tier:?}");
}
