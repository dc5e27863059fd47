//! Engine benchmarks on the devops dataset (100 hosts × 10 cpu fields, 10 s interval).
//!
//! `cargo bench --bench engine` runs them all; the size and memory figures that
//! criterion cannot measure are printed first ("report:" lines).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use strata::loadgen::Devops;
use strata::{Db, Matcher, Options, RetentionPolicy, SeriesRef, SyncMode, TierDurations};

const HOSTS: usize = 100;
const INTERVAL: i64 = 10_000;
const STEPS_2H: usize = 720;
const STEPS_24H: usize = 8640;

/// One time step of the dataset: (series index, ts, value) for every series.
type Step = Vec<(usize, i64, f64)>;

fn opts() -> Options {
    Options::default()
        .sync(SyncMode::Interval(Duration::from_secs(1)))
        .head_memory_budget(1 << 30)
        .retention(RetentionPolicy::new(TierDurations::forever()).unwrap())
}

/// `steps` time steps of the dataset, each a Vec of (series, ts, value).
fn dataset(steps: usize) -> (Devops, Vec<Step>) {
    let mut g = Devops::new(HOSTS, INTERVAL, 1_700_000_000_000, 42);
    let data = (0..steps)
        .map(|_| {
            let mut v = Vec::with_capacity(g.num_series());
            g.next_step(&mut v);
            v
        })
        .collect();
    (g, data)
}

fn refs(db: &Db, g: &Devops) -> Vec<SeriesRef> {
    let mut app = db.appender();
    (0..g.num_series()).map(|i| app.series(&g.labels(i)).unwrap()).collect()
}

/// Ingests every step as one commit of 1,000 samples. Returns the elapsed time.
fn ingest(db: &Db, refs: &[SeriesRef], data: &[Step]) -> Duration {
    let t = Instant::now();
    let mut app = db.appender();
    for step in data {
        for &(i, ts, v) in step {
            app.append(refs[i], ts, v).unwrap();
        }
        app.commit().unwrap();
    }
    t.elapsed()
}

fn ingest_2_threads(db: &Arc<Db>, refs: &Arc<Vec<SeriesRef>>, data: &Arc<Vec<Step>>) -> Duration {
    let t = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|part| {
            let (db, refs, data) = (db.clone(), refs.clone(), data.clone());
            std::thread::spawn(move || {
                let mut app = db.appender();
                let half = refs.len() / 2;
                for (n, step) in data.iter().enumerate() {
                    for &(i, ts, v) in &step[part * half..(part + 1) * half] {
                        app.append(refs[i], ts, v).unwrap();
                    }
                    if n % 2 == 1 {
                        app.commit().unwrap();
                    }
                }
                app.commit().unwrap();
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    t.elapsed()
}

fn bench_ingest(c: &mut Criterion) {
    let (g, data) = dataset(STEPS_2H);
    let data = Arc::new(data);
    let samples = (STEPS_2H * g.num_series()) as u64;
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(samples));
    group.bench_function("devops_2h_1_thread", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let db = Db::open(dir.path(), opts()).unwrap();
                let r = refs(&db, &g);
                total += ingest(&db, &r, &data);
            }
            total
        })
    });
    group.bench_function("devops_2h_2_threads", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let db = Arc::new(Db::open(dir.path(), opts()).unwrap());
                let r = Arc::new(refs(&db, &g));
                total += ingest_2_threads(&db, &r, &data);
            }
            total
        })
    });
    group.finish();
}

/// A database holding the 24 h dataset sealed into 2 h segments.
fn sealed_24h() -> (tempfile::TempDir, Db, u64) {
    let (g, data) = dataset(STEPS_24H);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts().background(false)).unwrap();
    let r = refs(&db, &g);
    for block in data.chunks(STEPS_2H) {
        ingest(&db, &r, block);
        db.flush().unwrap();
    }
    (dir, db, (STEPS_24H * g.num_series()) as u64)
}

fn bench_scan(c: &mut Criterion) {
    let (_dir, db, samples) = sealed_24h();
    let st = db.stats().unwrap();
    println!(
        "report: disk after seal: {} bytes in {} segments for {} samples = {:.3} bytes/sample",
        st.disk_bytes[0],
        st.segments,
        samples,
        st.disk_bytes[0] as f64 / samples as f64
    );
    let all = [Matcher::regex("__name__", "cpu_.*").unwrap()];
    let mut group = c.benchmark_group("scan");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(samples));
    group.bench_function("full_scan_24h_1000_series", |b| {
        b.iter(|| {
            let q = db.querier(i64::MIN..i64::MAX);
            let mut n = 0u64;
            for s in q.select(&all).unwrap() {
                n += s.unwrap().1.len() as u64;
            }
            assert_eq!(n, samples);
        })
    });
    group.finish();
    let one = [Matcher::eq("__name__", "cpu_usage_user"), Matcher::eq("hostname", "host_7")];
    let mut group = c.benchmark_group("query");
    group.sample_size(30).throughput(Throughput::Elements(STEPS_24H as u64));
    group.bench_function("one_series_raw_24h", |b| {
        b.iter(|| {
            let q = db.querier(i64::MIN..i64::MAX);
            let n: usize = q.select(&one).unwrap().map(|s| s.unwrap().1.len()).sum();
            assert_eq!(n, STEPS_24H);
        })
    });
    group.bench_function("latest_1000_series", |b| b.iter(|| assert_eq!(db.latest(&all).unwrap().len(), HOSTS * 10)));
    group.finish();
}

fn bench_replay(c: &mut Criterion) {
    // 10 M samples (10,000 steps of 1,000 series) left in the WAL.
    let mut g = Devops::new(HOSTS, INTERVAL, 1_700_000_000_000, 7);
    let dir = tempfile::tempdir().unwrap();
    let steps = 10_000;
    {
        let db = Db::open(dir.path(), opts().block_duration(Duration::from_secs(1 << 30)).background(false)).unwrap();
        let r = refs(&db, &g);
        let mut app = db.appender();
        let mut step = Vec::new();
        for _ in 0..steps {
            step.clear();
            g.next_step(&mut step);
            for &(i, ts, v) in &step {
                app.append(r[i], ts, v).unwrap();
            }
            app.commit().unwrap();
        }
        let st = db.stats().unwrap();
        println!(
            "report: head memory with {} samples in {} series: {} bytes accounted = {:.0} bytes/series for 2 h of 10 s samples",
            st.head_samples,
            st.head_series,
            st.head_bytes,
            st.head_bytes as f64 / st.head_series as f64 * (STEPS_2H as f64 / steps as f64)
        );
        db.close().unwrap();
    }
    let mut group = c.benchmark_group("replay");
    group.sample_size(10).measurement_time(Duration::from_secs(15)).throughput(Throughput::Elements(steps * 1000));
    group.bench_function("reopen_wal_10m_samples", |b| {
        b.iter(|| {
            let db = Db::open(dir.path(), opts().background(false)).unwrap();
            assert_eq!(db.stats().unwrap().head_samples, steps * 1000);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_ingest, bench_scan, bench_replay);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
