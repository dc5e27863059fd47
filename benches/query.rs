//! Query-layer benchmarks: raw against rollup tiers in the same run, and
//! compaction throughput. `cargo bench --bench query`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use strata::loadgen::Devops;
use strata::{Agg, Db, Matcher, Options, Query, RetentionPolicy, SyncMode, Tier, TierDurations};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_700_000_000_000 / DAY * DAY;

/// The query cache serves repeated queries from what it already decoded;
/// `STRATA_BENCH_QUERY_CACHE_BYTES=0` turns it off, so that every iteration reads
/// and decodes the segments (default: the engine's default budget).
fn opts() -> Options {
    let o = Options::default()
        .sync(SyncMode::Never)
        .background(false)
        .head_memory_budget(1 << 30)
        .retention(RetentionPolicy::new(TierDurations::forever()).unwrap());
    match std::env::var("STRATA_BENCH_QUERY_CACHE_BYTES").ok().and_then(|v| v.parse().ok()) {
        Some(bytes) => o.query_cache_bytes(bytes),
        None => o,
    }
}

/// `days` of the devops set (100 hosts × 10 fields) at `interval_ms`, sealed every 2 h.
fn build(days: i64, interval_ms: i64, downsample: bool) -> (tempfile::TempDir, Db, u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut g = Devops::new(100, interval_ms, T0, 42);
    let mut app = db.appender();
    let refs: Vec<_> = (0..g.num_series()).map(|i| app.series(&g.labels(i)).unwrap()).collect();
    let steps = days * DAY / interval_ms;
    let per_block = 2 * HOUR / interval_ms;
    let mut step = Vec::new();
    for n in 0..steps {
        step.clear();
        g.next_step(&mut step);
        for &(i, ts, v) in &step {
            app.append(refs[i], ts, v).unwrap();
        }
        app.commit().unwrap();
        if n % per_block == per_block - 1 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    if downsample {
        db.downsample().unwrap();
    }
    (dir, db, (steps as u64) * g.num_series() as u64)
}

fn q(tier: Tier) -> Query {
    Query::new().tier(tier)
}

fn bench_24h(c: &mut Criterion) {
    let (_dir, db, _) = build(1, 10_000, true);
    db.compact().unwrap();
    let one = [Matcher::eq("__name__", "cpu_usage_user"), Matcher::eq("hostname", "host_7")];
    let all = [Matcher::regex("__name__", "cpu_.*").unwrap()];
    let user = [Matcher::eq("__name__", "cpu_usage_user")];
    let range = T0..T0 + DAY;
    let mut g = c.benchmark_group("query_24h");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for tier in [Tier::Raw, Tier::FiveMin] {
        let query = q(tier).select(one.clone()).range(range.clone()).step(Duration::from_secs(300)).agg(Agg::Avg);
        g.bench_function(format!("avg_5m_one_series/{tier:?}"), |b| {
            b.iter(|| assert_eq!(db.query(&query).unwrap().series[0].points.len(), 288))
        });
    }
    for tier in [Tier::Raw, Tier::FiveMin, Tier::Hour] {
        let query = q(tier)
            .select(user.clone())
            .range(range.clone())
            .step(Duration::from_secs(3600))
            .agg(Agg::Max)
            .group_by(Vec::<String>::new());
        g.bench_function(format!("max_1h_across_100_hosts/{tier:?}"), |b| {
            b.iter(|| assert_eq!(db.query(&query).unwrap().series.len(), 1))
        });
    }
    for tier in [Tier::Raw, Tier::FiveMin, Tier::Hour] {
        let query = q(tier)
            .select(all.clone())
            .range(range.clone())
            .step(Duration::from_secs(3600))
            .agg(Agg::Max)
            .group_by(["hostname"]);
        g.bench_function(format!("max_1h_by_host_1000_series/{tier:?}"), |b| {
            b.iter(|| assert_eq!(db.query(&query).unwrap().series.len(), 100))
        });
    }
    g.bench_function("latest_1000_series", |b| b.iter(|| assert_eq!(db.latest(&all).unwrap().len(), 1000)));
    g.finish();
}

/// PromQL in-process over the same 24 h: the devops questions d and e, step 1 h,
/// rollup tiers on and off.
/// e reads the 1,000 series as ten queries, one per field: over all fields at once,
/// `max_over_time` would give ten series per host with the same labels once the name
/// is dropped, which Prometheus (and Strata) refuse.
fn bench_promql_24h(c: &mut Criterion) {
    let (_dir, db, _) = build(1, 10_000, true);
    db.compact().unwrap();
    let run = |expr: &str, start: i64, opts: &strata::promql::Options| match db.promql_range_with(
        expr,
        start,
        start + DAY,
        HOUR,
        opts,
    ) {
        Ok(strata::promql::Value::Matrix(m)) => m.len(),
        other => panic!("{expr}: {other:?}"),
    };
    let fields: Vec<String> = (0..10)
        .map(|i| {
            let name = Devops::new(100, 10_000, T0, 42).labels(i).metric_name().unwrap().to_string();
            format!("max by (hostname) (max_over_time({name}[1h]))")
        })
        .collect();
    let mut g = c.benchmark_group("promql_24h");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    // 200 s past a 5-minute bound, and on the hour (as Grafana aligns a 1 h step).
    for (at, start) in [("unaligned", T0 + 200_000), ("hour_aligned", T0 + HOUR)] {
        for use_tiers in [true, false] {
            let opts = strata::promql::Options { use_tiers, ..strata::promql::Options::default() };
            let label = if use_tiers { "tiers" } else { "raw" };
            g.bench_function(format!("d_max_of_max_over_time_1h/{at}/{label}"), |b| {
                b.iter(|| assert_eq!(run("max(max_over_time(cpu_usage_user[1h]))", start, &opts), 1))
            });
            g.bench_function(format!("e_max_by_host_1000_series/{at}/{label}"), |b| {
                b.iter(|| assert!(fields.iter().all(|q| run(q, start, &opts) == 100)))
            });
        }
    }
    g.finish();
}

/// A dashboard over 24 h of the devops set (sealed, rolled up, compacted): the six
/// questions a-f asked as `Db::query` (and `Db::latest`) on a range ending 4.321 s
/// past the data, first with an empty query cache, then as refreshes, each 10 s
/// later than the one before. Cache on and off in the same run.
fn bench_dashboard(c: &mut Criterion) {
    let (dir, db, _) = build(1, 10_000, true);
    db.compact().unwrap();
    drop(db);
    let one = vec![Matcher::eq("__name__", "cpu_usage_user"), Matcher::eq("hostname", "host_0")];
    let user = vec![Matcher::eq("__name__", "cpu_usage_user")];
    let all = vec![Matcher::regex("__name__", "cpu_usage_.*").unwrap()];
    let end = T0 + DAY + 4_321;
    // The six queries over the range ending at `e` (inclusive, as /query takes it).
    let ask = |db: &Db, e: i64| {
        let range = |len: i64| e - len + 1..e + 1;
        let raw = |len| Query::new().select(one.clone()).range(range(len));
        let hourly = |m: &Vec<Matcher>| {
            Query::new().select(m.clone()).range(range(DAY)).step(Duration::from_secs(3600)).agg(Agg::Max)
        };
        assert_eq!(db.query(&raw(HOUR)).unwrap().series.len(), 1); // a
        assert_eq!(db.query(&raw(DAY)).unwrap().series.len(), 1); // b
        let c = Query::new().select(one.clone()).range(range(DAY)).step(Duration::from_secs(300)).agg(Agg::Avg);
        assert_eq!(db.query(&c).unwrap().series.len(), 1);
        assert_eq!(db.query(&hourly(&user).group_by(Vec::<String>::new())).unwrap().series.len(), 1); // d
        assert_eq!(db.query(&hourly(&all).group_by(["hostname"])).unwrap().series.len(), 100); // e
        assert_eq!(db.latest(&all).unwrap().len(), 1000); // f
    };
    let mut g = c.benchmark_group("dashboard_24h");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for (label, bytes) in [("cache_off", 0), ("cache_on", 64 << 20)] {
        let open = || Db::open(dir.path(), opts().query_cache_bytes(bytes)).unwrap();
        // First load: a freshly opened Db, its cache empty, each time.
        g.bench_function(format!("first_load/{label}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let db = open();
                    let t = Instant::now();
                    ask(&db, end);
                    total += t.elapsed();
                }
                total
            })
        });
        // Refreshes: the same six queries 10 s later each time, after a first load.
        let db = open();
        ask(&db, end);
        let mut shift = 0;
        g.bench_function(format!("refresh_10s/{label}"), |b| {
            b.iter(|| {
                shift = (shift + 10_000) % (30 * 60_000);
                ask(&db, end + shift)
            })
        });
        println!("report: dashboard {label}: {:?}", db.query_cache_stats());
    }
    g.finish();
}

fn bench_30d(c: &mut Criterion) {
    // 30 days at one sample a minute: 43.2 M samples, rolled up to 5m and 1h.
    let (_dir, db, samples) = build(30, 60_000, true);
    println!("report: 30 d set before compaction: {samples} samples, {:?}", db.stats().unwrap());
    // Steady state: what the background worker converges to.
    for _ in 0..10 {
        if db.compact().unwrap().merges == 0 {
            break;
        }
    }
    println!("report: 30 d set after compaction: {:?}", db.stats().unwrap());
    let all = [Matcher::regex("__name__", "cpu_.*").unwrap()];
    let mut g = c.benchmark_group("query_30d");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for tier in [Tier::Hour, Tier::FiveMin] {
        let query = q(tier).select(all.clone()).range(T0..T0 + 30 * DAY).step(Duration::from_secs(3600)).agg(Agg::Max);
        g.bench_function(format!("max_1h_1000_series/{tier:?}"), |b| {
            b.iter(|| assert_eq!(db.query(&query).unwrap().series.len(), 1000))
        });
    }
    g.finish();
}

/// Merges the 2 h segments of 24 h of devops data (already rolled up) with the
/// default planner; throughput counts every item the merges read.
fn bench_compaction(c: &mut Criterion) {
    let (_dir, db, _) = build(1, 10_000, true);
    let t = Instant::now();
    let r = db.compact().unwrap();
    let took = t.elapsed();
    println!(
        "report: compaction merged {} items into {} in {:?} = {:.1} M items/s ({r:?})",
        r.items_in,
        r.items_out,
        took,
        r.items_in as f64 / took.as_secs_f64() / 1e6
    );
    let items = r.items_in;
    let mut g = c.benchmark_group("compaction");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(items));
    g.bench_function("merge_24h_of_2h_segments", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_dir, db, _) = build(1, 10_000, true);
                let t = Instant::now();
                let r = db.compact().unwrap();
                total += t.elapsed();
                assert_eq!(r.items_in, items, "the same plan every time");
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench_24h, bench_promql_24h, bench_dashboard, bench_30d, bench_compaction);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
