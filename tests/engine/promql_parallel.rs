//! PromQL evaluated on several threads gives exactly the single-threaded answer:
//! the same series in the same order, the same values bit for bit, the same
//! errors. The data spreads over sealed segments (some merged, some not, one
//! with overwrites of another's samples), rollup tiers and the head, with
//! staleness markers, NaN and equal values, and enough series that selectors
//! are cut into many parts.

use strata::loadgen::Rng;
use strata::promql::{ErrorKind, Options as PromqlOptions, Value};
use strata::{Db, Labels, SyncMode};

use crate::support::options;

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const SERIES: usize = 150;

fn labels(i: usize) -> Labels {
    let name = if i % 4 == 3 { "other" } else { "m" };
    Labels::from_pairs([
        ("__name__", name.to_string()),
        ("s", format!("{i:03}")),
        ("k", (i % 3).to_string()),
        ("host", format!("h{}", i % 17)),
    ])
    .unwrap()
}

/// 8 hours of data ending one hour before `now`, in three sealed stretches and the head.
fn build() -> (tempfile::TempDir, Db, i64) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options::foreground(SyncMode::Never)).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let start = now - 9 * HOUR - 12_345;
    let mut rng = Rng::new(7);
    let mut app = db.appender();
    for stretch in 0..4 {
        for i in 0..SERIES {
            let interval = [10 * SEC, 15 * SEC, 30 * SEC, 60 * SEC][i % 4];
            let (from, to) = (start + stretch * 2 * HOUR, start + (stretch + 1) * 2 * HOUR);
            let mut t = from + (i as i64 * 137) % interval;
            while t < to {
                let v = match rng.next_u64() % 200 {
                    0 => f64::NAN,
                    1 => f64::from_bits(0x7ff0_0000_0000_0002), // a staleness marker
                    2..=40 => 5.0,                              // ties
                    _ => (rng.next_f64() * 100.0).round() / 4.0 + (t - start) as f64 / 1e6,
                };
                app.append_labels(&labels(i), t, v).unwrap();
                t += interval;
            }
        }
        app.commit().unwrap();
        if stretch < 3 {
            db.flush().unwrap();
            db.downsample().unwrap();
        }
        if stretch == 1 {
            db.compact().unwrap();
            // Overwrites of sealed samples, sealed into a segment of their own.
            for i in (0..SERIES).step_by(7) {
                app.append_labels(&labels(i), start + 3 * HOUR + (i as i64 * 137) % (10 * SEC), -1.0).unwrap();
            }
            app.commit().unwrap();
            db.flush().unwrap();
        }
    }
    (dir, db, start)
}

const EXPRS: &[&str] = &[
    "m",
    "{__name__=~\"m|other\"}",
    "rate(m[5m])",
    "max_over_time(m[1h])",
    "count_over_time(m[1h])",
    "avg_over_time(m[30m])",
    "last_over_time(m[10m])",
    "timestamp(m)",
    "topk(5, m)",
    "bottomk(5, m)",
    "sort_desc(m)",
    "sum by (k) (rate(m[10m]))",
    "max by (host) (max_over_time(m[1h]) or max_over_time(other[1h]))",
    "quantile_over_time(0.9, m[20m])",
    "m or other",
    "label_replace(m, \"x\", \"1\", \"\", \"\") or label_replace(m, \"x\", \"2\", \"\", \"\") or other",
];

fn opts(threads: usize, use_tiers: bool) -> PromqlOptions {
    PromqlOptions { threads, use_tiers, ..PromqlOptions::default() }
}

/// The answer as text: `{:?}` prints every float exactly (and NaN as NaN).
fn show(v: &Value) -> String {
    format!("{v:?}")
}

#[test]
fn every_thread_count_gives_the_single_threaded_answer() {
    let (_dir, db, start) = build();
    // Unaligned range and instant times, inside and at the end of the data.
    let (from, to) = (start + 2 * HOUR + 4_321, start + 8 * HOUR + 4_321);
    for e in EXPRS {
        for use_tiers in [true, false] {
            let one = db.promql_range_with(e, from, to, 7 * MIN + 13 * SEC, &opts(1, use_tiers)).unwrap();
            let n = match &one {
                Value::Matrix(m) => m.len(),
                other => panic!("{e}: {other:?}"),
            };
            assert!(n > 0, "{e}: an empty answer proves nothing");
            let instant = db.promql_instant_with(e, to, &opts(1, use_tiers)).unwrap();
            for threads in [2, 3, 8] {
                let many = db.promql_range_with(e, from, to, 7 * MIN + 13 * SEC, &opts(threads, use_tiers)).unwrap();
                assert!(show(&one) == show(&many), "{e}: range answer with {threads} threads differs");
                let many = db.promql_instant_with(e, to, &opts(threads, use_tiers)).unwrap();
                assert!(show(&instant) == show(&many), "{e}: instant answer with {threads} threads differs");
            }
        }
    }
    // A range vector in an instant query: each series' raw samples, in label order.
    let one = db.promql_instant_with("m[45m]", to, &opts(1, false)).unwrap();
    assert!(matches!(&one, Value::Matrix(m) if m.len() > 100));
    assert!(show(&one) == show(&db.promql_instant_with("m[45m]", to, &opts(4, false)).unwrap()));
}

#[test]
fn limits_hold_on_every_thread_count() {
    let (_dir, db, start) = build();
    let (from, to) = (start + HOUR, start + 8 * HOUR);
    for threads in [1, 2, 4] {
        for use_tiers in [true, false] {
            let few = PromqlOptions { max_samples: 20_000, ..opts(threads, use_tiers) };
            let err = db.promql_range_with("max_over_time(m[1h])", from, to, HOUR, &few).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Execution, "{threads} threads: {err}");
            assert!(err.to_string().contains("too many samples"), "{threads} threads: {err}");
            let late = PromqlOptions { timeout: Some(std::time::Duration::ZERO), ..opts(threads, use_tiers) };
            let err = db.promql_range_with("rate(m[5m])", from, to, MIN, &late).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Timeout, "{threads} threads: {err}");
        }
    }
}
