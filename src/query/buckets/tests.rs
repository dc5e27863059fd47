//! `Db::buckets` against the separate queries it replaces, and under writers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::rollup::{FIVE_MIN_MS, HOUR_MS};
use crate::{Agg, Db, Labels, Matcher, Options, Query, RetentionPolicy, SyncMode, Tier, TierDurations};

fn opts() -> Options {
    let forever = RetentionPolicy::new(TierDurations::forever()).unwrap();
    Options::default().sync(SyncMode::Never).background(false).retention(forever)
}

/// Two hosts over three hours, with awkward values; sealed and rolled up, then a
/// few samples more in the head so that some buckets come from raw data.
fn filled(dir: &std::path::Path) -> Db {
    let db = Db::open(dir, opts()).unwrap();
    let mut app = db.appender();
    for (h, host) in ["a", "b"].iter().enumerate() {
        let l = Labels::metric("bk", [("host", *host)]).unwrap();
        for i in 0..(3 * 360) {
            let v = match i % 97 {
                0 => f64::NAN,
                1 => -0.0,
                _ => (i as f64 * 0.37 + h as f64).sin() * 100.0,
            };
            app.append_labels(&l, i * 10_000 + h as i64 * 1_000, v).unwrap();
        }
    }
    app.commit().unwrap();
    db.flush().unwrap();
    db.compact().unwrap();
    let late = Labels::metric("bk", [("host", "a")]).unwrap();
    app.append_labels(&late, 3 * HOUR_MS + 5_000, 7.5).unwrap();
    app.commit().unwrap();
    db
}

fn query(step: i64) -> Query {
    Query::new().select([Matcher::eq("__name__", "bk")]).range(0..4 * HOUR_MS).step(Duration::from_millis(step as u64))
}

#[test]
fn buckets_equal_the_separate_queries() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path());
    for step in [60_000, FIVE_MIN_MS, HOUR_MS, 2 * HOUR_MS] {
        let all = db.buckets(&query(step)).unwrap();
        assert!(!all.series.is_empty());
        let mut tiers = Vec::new();
        for agg in [Agg::Count, Agg::Sum, Agg::Min, Agg::Max, Agg::First, Agg::Last, Agg::Avg, Agg::Increase] {
            let r = db.query(&query(step).agg(agg)).unwrap();
            tiers.push(r.tier);
            assert_eq!(r.series.len(), all.series.len(), "{agg} step {step}");
            for (one, every) in r.series.iter().zip(&all.series) {
                assert_eq!(one.labels, every.labels);
                let want: Vec<(i64, u64)> = one.points.iter().map(|p| (p.ts, p.value.to_bits())).collect();
                let got: Vec<(i64, u64)> = every
                    .buckets
                    .iter()
                    .map(|b| {
                        let v = match agg {
                            Agg::Count => b.count as f64,
                            Agg::Sum => b.sum,
                            Agg::Min => b.min,
                            Agg::Max => b.max,
                            Agg::First => b.first,
                            Agg::Last => b.last,
                            Agg::Avg => b.sum / b.count as f64,
                            _ => b.increase,
                        };
                        (b.start, v.to_bits())
                    })
                    .collect();
                assert_eq!(got, want, "{agg} step {step} {}", one.labels);
            }
        }
        assert!(tiers.iter().all(|&t| t == all.tier), "step {step}: {tiers:?} vs {:?}", all.tier);
    }
    // The tiers answer the steps they can: raw for 1m, a rollup for 1h.
    assert_eq!(db.buckets(&query(60_000)).unwrap().tier, Tier::Raw);
    assert_eq!(db.buckets(&query(HOUR_MS)).unwrap().tier, Tier::Hour);
    // Groups fold their members; top-k is refused.
    let g = db.buckets(&query(HOUR_MS).group_by(Vec::<String>::new())).unwrap();
    let c = db.query(&query(HOUR_MS).agg(Agg::Count).group_by(Vec::<String>::new())).unwrap();
    let counts: Vec<f64> = g.series[0].buckets.iter().map(|b| b.count as f64).collect();
    assert_eq!(counts, c.series[0].points.iter().map(|p| p.value).collect::<Vec<_>>());
    let e = db.buckets(&query(HOUR_MS).top_k(1)).unwrap_err().to_string();
    assert!(e.contains("top_k"), "{e}");
}

#[test]
fn count_and_sum_agree_while_a_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), opts()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let l = Labels::metric("live", [("host", "w")]).unwrap();
            let mut app = db.appender();
            let mut ts = 0i64;
            while !stop.load(Ordering::Relaxed) {
                // Every value is 1.0: in any one view of the data, sum == count.
                for _ in 0..50 {
                    app.append_labels(&l, ts, 1.0).unwrap();
                    ts += 1_000;
                }
                app.commit().unwrap();
            }
            ts
        })
    };
    let q = Query::new().select([Matcher::eq("__name__", "live")]).range(0..i64::MAX / 2).step(Duration::from_secs(60));
    let mut checked = 0u64;
    while checked < 200 {
        for s in db.buckets(&q).unwrap().series {
            for b in s.buckets {
                assert_eq!(b.sum, b.count as f64, "bucket {}", b.start);
                assert_eq!(b.sum / b.count as f64, 1.0);
                assert_eq!((b.min, b.max), (1.0, 1.0));
                checked += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let total: u64 = db.buckets(&q).unwrap().series.iter().flat_map(|s| &s.buckets).map(|b| b.count).sum();
    assert_eq!(total, (written / 1_000) as u64);
}
