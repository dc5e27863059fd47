//! The query cache never changes an answer: three databases fed the same writes,
//! seals, downsampling, compactions, deletes and retention changes, one with the
//! cache off, one with a cache so small it evicts all the time and one with the
//! default cache, answer every query (and the same query 10 s later) bit for bit
//! alike, the last query asked again after every change. A refresh of a slid
//! range reads from the cache (blocks and the final part of the answer), and a
//! delete or a late write makes cached blocks and parts unusable.

use std::time::Duration;

use proptest::prelude::*;
use strata::{Agg, Db, Labels, Matcher, Options, Query, RetentionPolicy, SyncMode, Tier, TierDurations};

use crate::support::options;

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const STEP: i64 = 10 * SEC;
const SERIES: usize = 6;

/// Three days back from now, on the 10 s grid samples are written on.
fn t0() -> i64 {
    (strata::text::time::now_ms() - 3 * DAY).div_euclid(HOUR) * HOUR
}

fn opts(cache: usize) -> Options {
    options::foreground(SyncMode::Never).query_cache_bytes(cache)
}

fn labels(i: usize) -> Labels {
    let name = if i % 3 == 2 { "ctr" } else { "gauge" };
    Labels::from_pairs([("__name__", name.to_string()), ("host", format!("h{i}"))]).unwrap()
}

/// A query's answer with every value as its bits.
type Bits = Vec<(String, Vec<(i64, u64)>)>;

fn run(db: &Db, q: &Query) -> Result<(Bits, Bits), String> {
    let r = db.query(q).map_err(|e| e.to_string())?;
    let a = r
        .series
        .iter()
        .map(|s| (s.labels.to_string(), s.points.iter().map(|p| (p.ts, p.value.to_bits())).collect()))
        .collect();
    let b = match db.buckets(q) {
        Ok(b) => b
            .series
            .iter()
            .map(|s| {
                let v = s.buckets.iter().flat_map(|b| {
                    [b.count, b.sum.to_bits(), b.min.to_bits(), b.max.to_bits(), b.first.to_bits()]
                        .into_iter()
                        .chain([b.last.to_bits(), b.increase.to_bits(), b.first_ts as u64, b.last_ts as u64])
                        .map(move |x| (b.start, x))
                });
                (s.labels.to_string(), v.collect())
            })
            .collect(),
        Err(e) => vec![(e.to_string(), Vec::new())],
    };
    Ok((a, b))
}

/// Asks all three databases; retried only if the clock crossed a point where a
/// retention floor (always 5 s off the sample grid) could pass a sample.
fn same_answers(dbs: &[Db; 3], q: &Query) {
    for _ in 0..5 {
        let before = strata::text::time::now_ms();
        let answers: Vec<_> = dbs.iter().map(|db| run(db, q)).collect();
        let after = strata::text::time::now_ms();
        if (before - 5 * SEC).div_euclid(STEP) != (after - 5 * SEC).div_euclid(STEP) {
            continue;
        }
        assert_eq!(answers[0], answers[1], "tiny cache differs from no cache: {q:?}");
        assert_eq!(answers[0], answers[2], "cache differs from no cache: {q:?}");
        return;
    }
    panic!("the clock kept moving under the queries");
}

#[derive(Debug, Clone)]
enum Op {
    /// `n` steps from step `from` for the series in `mask`; `late` writes every
    /// other step again with another value (overwrites, out of order).
    Append {
        from: i64,
        n: i64,
        mask: u8,
        late: bool,
        seed: u64,
    },
    Flush,
    Downsample,
    Compact,
    Delete {
        host: usize,
        from: i64,
        len: i64,
    },
    /// Raw kept for `raw_h` hours, 5-minute buckets 6 h longer, hourly forever.
    Retention {
        raw_h: u64,
    },
    Query {
        agg: usize,
        step: usize,
        start: i64,
        len: i64,
        group: usize,
        tier: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let steps = 3 * DAY / STEP;
    prop_oneof![
        4 => (0..steps, 1..2000i64, 1..64u8, any::<bool>(), any::<u64>())
            .prop_map(|(from, n, mask, late, seed)| Op::Append { from, n, mask, late, seed }),
        2 => Just(Op::Flush),
        2 => Just(Op::Downsample),
        1 => Just(Op::Compact),
        1 => (0..SERIES, 0..3 * DAY, 0..6 * HOUR).prop_map(|(host, from, len)| Op::Delete { host, from, len }),
        1 => (30..80u64).prop_map(|raw_h| Op::Retention { raw_h }),
        6 => (0..10usize, 0..4usize, 0..3 * DAY, HOUR..2 * DAY, 0..3usize, 0..4usize)
            .prop_map(|(agg, step, start, len, group, tier)| Op::Query { agg, step, start, len, group, tier }),
    ]
}

fn apply(dbs: &[Db; 3], t0: i64, op: &Op) {
    let all = |f: &dyn Fn(&Db) -> Result<String, String>| {
        // A refusal names the oldest time accepted, which moves with the clock.
        let cut =
            |r: Result<String, String>| r.map_err(|e| e.split(" (oldest accepted").next().unwrap_or("").to_string());
        let r: Vec<_> = dbs.iter().map(|db| cut(f(db))).collect();
        assert!(r[0] == r[1] && r[1] == r[2], "{op:?}: the databases disagree: {r:?}");
    };
    match *op {
        Op::Append { from, n, mask, late, seed } => all(&|db| {
            let mut app = db.appender();
            let mut x = seed;
            for step in from..from + n {
                for i in (0..SERIES).filter(|i| mask & (1 << i) != 0) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let v = if i % 3 == 2 { ((step * 3) % 997) as f64 } else { ((x >> 40) % 1000) as f64 / 10.0 };
                    let ts = t0 + step * STEP;
                    app.append_labels(&labels(i), ts, v).map_err(|e| e.to_string())?;
                    if late && step % 2 == 0 && step > from {
                        app.append_labels(&labels(i), ts - STEP, v + 0.5).map_err(|e| e.to_string())?;
                    }
                }
            }
            app.commit().map(|_| String::new()).map_err(|e| e.to_string())
        }),
        Op::Flush => all(&|db| db.flush().map(|_| String::new()).map_err(|e| e.to_string())),
        Op::Downsample => all(&|db| db.downsample().map(|_| String::new()).map_err(|e| e.to_string())),
        Op::Compact => all(&|db| db.compact().map(|r| format!("{}", r.merges)).map_err(|e| e.to_string())),
        Op::Delete { host, from, len } => all(&|db| {
            let m = [Matcher::eq("host", format!("h{host}"))];
            db.delete(&m, t0 + from..=t0 + from + len).map(|_| String::new()).map_err(|e| e.to_string())
        }),
        Op::Retention { raw_h } => all(&|db| {
            let h = |hours: u64| Duration::from_millis(hours * 3_600_000 + 5_000);
            let d = TierDurations::new(h(raw_h), h(raw_h + 6), TierDurations::FOREVER);
            db.set_retention(RetentionPolicy::new(d).unwrap()).map_err(|e| e.to_string())?;
            db.apply_retention().map(|_| String::new()).map_err(|e| e.to_string())
        }),
        Op::Query { agg, step, start, len, group, tier } => {
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
                Agg::Raw,
            ];
            let step = [5 * MIN, HOUR, 30 * MIN, 2 * HOUR][step];
            let (tier, start, len) = match tier {
                // Explicit tiers want aligned ranges.
                1 => (Tier::FiveMin, start / (5 * MIN) * 5 * MIN, len / HOUR * HOUR),
                2 => (Tier::Hour, start / HOUR * HOUR, len / HOUR * HOUR),
                _ => (Tier::Auto, start, len),
            };
            let step = if tier == Tier::Hour { step.max(HOUR) / HOUR * HOUR } else { step };
            let mut q = Query::new()
                .select([Matcher::regex("__name__", "gauge|ctr").unwrap()])
                .range(t0 + start..t0 + start + len.max(HOUR))
                .step(Duration::from_millis(step as u64))
                .agg(aggs[agg])
                .tier(tier);
            q = match group {
                // Raw samples are not grouped.
                _ if aggs[agg] == Agg::Raw => q,
                0 => q,
                1 => q.group_by(Vec::<String>::new()),
                _ => q.group_by(["__name__"]),
            };
            same_answers(dbs, &q);
            if tier == Tier::Auto {
                // The dashboard's refreshes: the same range 10 s later, twice, then
                // past the next step bound (the cached part loses its first step).
                for by in [10 * SEC, 20 * SEC, step + 30 * SEC] {
                    let slid = q.clone().range(t0 + start + by..t0 + start + len.max(HOUR) + by);
                    same_answers(dbs, &slid);
                }
            }
        }
    }
}

fn three() -> (Vec<tempfile::TempDir>, [Db; 3]) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let sizes = [0, 4 << 10, 64 << 20];
    let dbs = std::array::from_fn(|i| Db::open(dirs[i].path(), opts(sizes[i])).unwrap());
    (dirs, dbs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn cached_answers_equal_uncached(ops in proptest::collection::vec(op(), 1..30)) {
        let (_dirs, dbs) = three();
        let t0 = t0();
        // A day of every series, sealed and rolled up, so queries have tiers to read.
        apply(&dbs, t0, &Op::Append { from: 0, n: DAY / STEP, mask: 63, late: false, seed: 7 });
        apply(&dbs, t0, &Op::Flush);
        apply(&dbs, t0, &Op::Downsample);
        let mut asked: Option<&Op> = None;
        for op in &ops {
            apply(&dbs, t0, op);
            match op {
                Op::Query { .. } => asked = Some(op),
                // The last query again, on whatever the operation changed.
                _ => if let Some(q) = asked {
                    apply(&dbs, t0, q);
                },
            }
        }
        apply(&dbs, t0, &Op::Query { agg: 3, step: 1, start: HOUR + 4321, len: DAY, group: 2, tier: 0 });
    }
}

/// Two days of every series, sealed, rolled up and compacted.
fn loaded() -> (Vec<tempfile::TempDir>, [Db; 3], i64) {
    let (dirs, dbs) = three();
    let t0 = t0();
    apply(&dbs, t0, &Op::Append { from: 0, n: 2 * DAY / STEP, mask: 63, late: false, seed: 3 });
    for op in [Op::Flush, Op::Downsample, Op::Compact] {
        apply(&dbs, t0, &op);
    }
    (dirs, dbs, t0)
}

fn max_by_host(range: std::ops::Range<i64>) -> Query {
    Query::new()
        .select([Matcher::regex("__name__", "gauge|ctr").unwrap()])
        .range(range)
        .step(Duration::from_secs(3600))
        .agg(Agg::Max)
        .group_by(["host"])
}

#[test]
fn a_slid_range_reads_the_cache() {
    let (_dirs, dbs, t0) = loaded();
    let q = max_by_host(t0 + 4321..t0 + DAY + 4321);
    same_answers(&dbs, &q);
    let first = dbs[2].query_cache_stats();
    assert!(first.misses > 0 && first.bytes > 0 && first.bytes <= first.max_bytes, "{first:?}");
    assert_eq!(dbs[0].query_cache_stats().bytes, 0, "a cache of 0 bytes holds nothing");
    let slid = max_by_host(t0 + 14_321..t0 + DAY + 14_321);
    same_answers(&dbs, &slid);
    let refresh = dbs[2].query_cache_stats();
    assert_eq!(refresh.misses, first.misses, "a 10 s slide needs no block the first load did not read");
    assert!(refresh.hits > 0);
    let tiny = dbs[1].query_cache_stats();
    assert!(tiny.evictions > 0 && tiny.bytes <= 4 << 10, "{tiny:?}");
}

#[test]
fn a_delete_makes_cached_blocks_unusable() {
    let (_dirs, dbs, t0) = loaded();
    let q = max_by_host(t0 + 4321..t0 + DAY + 4321);
    same_answers(&dbs, &q);
    let before = dbs[2].query(&q).unwrap();
    let h1 = |r: &strata::QueryResult| {
        r.series.iter().find(|s| s.labels.get("host") == Some("h1")).map_or(0, |s| s.points.len())
    };
    assert_eq!(h1(&before), 25);
    for db in &dbs {
        db.delete(&[Matcher::eq("host", "h1")], t0..=t0 + 2 * DAY).unwrap();
    }
    same_answers(&dbs, &q);
    assert_eq!(h1(&dbs[2].query(&q).unwrap()), 0, "deleted samples must not come back from the cache");
    assert!(dbs[2].query_cache_stats().invalidations > 0);
}

#[test]
fn retention_and_late_data_are_never_served_stale() {
    let (_dirs, dbs, t0) = loaded();
    let q = max_by_host(t0 + 4321..t0 + 2 * DAY - 4321).agg(Agg::Sum);
    same_answers(&dbs, &q);
    // A late sample into a cached hour: in the head first, then sealed, then rolled up.
    apply(&dbs, t0, &Op::Append { from: 400, n: 1, mask: 63, late: false, seed: 99 });
    same_answers(&dbs, &q);
    for op in [Op::Flush, Op::Downsample, Op::Compact, Op::Retention { raw_h: 40 }] {
        apply(&dbs, t0, &op);
        same_answers(&dbs, &q);
    }
}

#[test]
fn a_refresh_splices_the_final_part_and_a_late_write_drops_it() {
    let (_dirs, dbs, t0) = loaded();
    let q = max_by_host(t0 + 4321..t0 + DAY + 4321);
    same_answers(&dbs, &q);
    let first = dbs[2].query_cache_stats();
    assert_eq!((first.result_hits, first.result_misses), (0, 1), "{first:?}");
    for n in 1..=3 {
        same_answers(&dbs, &max_by_host(t0 + 4321 + n * 10 * SEC..t0 + DAY + 4321 + n * 10 * SEC));
    }
    // (`same_answers` may ask again, so hits are counted as at least.)
    let refresh = dbs[2].query_cache_stats();
    assert!(refresh.result_hits >= 3 && refresh.result_misses == 1, "{refresh:?}");
    assert_eq!(dbs[0].query_cache_stats().result_hits, 0, "a cache of 0 bytes holds no answer");
    // Past the next hour the part loses its first step and still serves.
    same_answers(&dbs, &max_by_host(t0 + HOUR + 4321..t0 + DAY + HOUR + 4321));
    let later = dbs[2].query_cache_stats();
    assert!(later.result_hits > refresh.result_hits && later.result_misses == 1, "{later:?}");
    // A late write into a cached hour: the part no longer holds, in the head and once sealed.
    apply(&dbs, t0, &Op::Append { from: 1000, n: 1, mask: 1, late: false, seed: 5 });
    let slid = max_by_host(t0 + HOUR + 14_321..t0 + DAY + HOUR + 14_321);
    same_answers(&dbs, &slid);
    let after = dbs[2].query_cache_stats();
    assert!(after.invalidations > later.invalidations, "{after:?}");
    assert_eq!(after.result_hits, later.result_hits, "{after:?}");
    for op in [Op::Flush, Op::Downsample, Op::Compact] {
        apply(&dbs, t0, &op);
        same_answers(&dbs, &slid);
    }
}
