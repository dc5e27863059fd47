//! Label churn: a million new series, one sample each, in batches of 1,000.
//! - Under a series cap, exactly the cap is created, every later creation fails
//!   with `Error::SeriesLimit`, and every accepted sample is stored.
//! - Under a small head memory budget, the head is sealed early and its reported
//!   size stays within a bound of the budget; peak RSS is reported.
//!
//! Peak RSS is per process, so each test runs its body in a child process (this
//! test binary, re-run on that one test) and prints the child's figures.

use std::process::Command;
use std::time::Instant;

use strata::{Db, Error, Labels, Matcher, Options, RetentionPolicy, SyncMode, TierDurations};

const T0: i64 = 1_700_000_000_000;
const CHURN: usize = 1_000_000;
const BATCH: usize = 1_000;

const CHILD: &str = "STRATA_CHURN_CHILD";

/// In the parent, re-runs test `name` alone in a child and returns false; in the
/// child, returns true (run the body).
fn in_child(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let out = crate::support::output(
        Command::new(exe)
            .args([&format!("cardinality_churn::{name}"), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1"),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<&str> = text.lines().filter_map(|l| l.find("churn:").map(|i| &l[i..])).collect();
    println!("{}", figures.join("\n"));
    assert!(out.status.success(), "child failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!figures.is_empty(), "the child ran no test: {text}");
    false
}

fn opts() -> Options {
    Options::default().sync(SyncMode::Never).retention(RetentionPolicy::new(TierDurations::forever()).unwrap())
}

fn labels(k: usize) -> Labels {
    Labels::metric("churn", [("pod", format!("pod-{k:07}"))]).unwrap()
}

/// (VmHWM, VmRSS) in KiB.
fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn series_cap_admits_exactly_the_cap_and_rejects_the_rest() {
    if !in_child("series_cap_admits_exactly_the_cap_and_rejects_the_rest") {
        return;
    }
    let started = Instant::now();
    // Not a multiple of the batch size, so one batch is cut by the cap.
    const CAP: usize = 100_500;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts().max_series(CAP).background(false)).unwrap();
    let mut app = db.appender();
    let (mut committed, mut refused) = (0usize, 0usize);
    for start in (0..CHURN).step_by(BATCH) {
        let mut failed_at = None;
        for k in start..start + BATCH {
            match app.append_labels(&labels(k), T0 + k as i64, k as f64) {
                Ok(()) => {}
                Err(e @ Error::SeriesLimit { .. }) => {
                    assert!(matches!(e, Error::SeriesLimit { max: CAP }));
                    assert_eq!(e.to_string(), "series limit of 100500 reached");
                    assert!(e.is_input_error());
                    failed_at.get_or_insert(k);
                    refused += 1;
                }
                Err(e) => panic!("series {k}: {e}"),
            }
        }
        match failed_at {
            None => {
                app.commit().unwrap();
                committed += BATCH;
            }
            Some(k) => {
                // The appender keeps what was buffered before the refusal; the
                // caller rejects the batch as a whole by rolling back.
                assert_eq!(app.len(), k - start);
                app.rollback();
                assert!(app.is_empty());
            }
        }
    }
    assert_eq!(committed, 100_000);
    assert_eq!(refused, CHURN - CAP, "every creation past the cap is refused");
    // Series are counted when created (Appender::series), not at commit: the 500
    // created by the rolled-back batch count toward the cap until the Db closes.
    assert_eq!(db.stats().unwrap().series, CAP as u64);
    assert!(matches!(app.append_labels(&labels(CHURN), T0, 0.0), Err(Error::SeriesLimit { .. })));
    // An existing series still accepts samples.
    app.append_labels(&labels(7), T0 + 10_000_000, 1.5).unwrap();
    app.commit().unwrap();

    let check = |db: &Db| {
        let q = db.querier(T0..T0 + 20_000_000);
        let mut n = 0;
        for s in q.select(&[Matcher::eq("__name__", "churn")]).unwrap() {
            let (l, samples) = s.unwrap();
            let k: usize = l.get("pod").unwrap()[4..].parse().unwrap();
            let got: Vec<(i64, f64)> = samples.map(|s| (s.ts, s.value)).collect();
            let mut want = vec![(T0 + k as i64, k as f64)];
            if k == 7 {
                want.push((T0 + 10_000_000, 1.5));
            }
            assert!(k < 100_000, "series {k} of a rolled-back batch has samples");
            assert_eq!(got, want, "series {k}");
            n += 1;
        }
        n
    };
    assert_eq!(check(&db), 100_000);
    db.flush().unwrap();
    assert_eq!(check(&db), 100_000);
    db.close().unwrap();
    drop(db);

    // The rolled-back batch's series held no samples and were never logged, so
    // after a reopen they are gone and their places under the cap are free again.
    let db = Db::open(dir.path(), opts().max_series(CAP).background(false)).unwrap();
    assert_eq!(db.stats().unwrap().series, 100_000);
    assert_eq!(check(&db), 100_000);
    let mut app = db.appender();
    for k in 0..CAP - 100_000 {
        app.append_labels(&labels(CHURN + k), T0, 0.0).unwrap();
    }
    assert!(matches!(app.append_labels(&labels(2 * CHURN), T0, 0.0), Err(Error::SeriesLimit { .. })));
    let (hwm, _) = rss_kib();
    println!(
        "churn: cap {CAP}: {committed} series committed, {refused} creations refused, peak RSS {} MiB, {:.1?}",
        hwm / 1024,
        started.elapsed()
    );
}

#[test]
fn head_stays_near_its_budget_while_a_million_series_stream_through() {
    if !in_child("head_stays_near_its_budget_while_a_million_series_stream_through") {
        return;
    }
    let started = Instant::now();
    const BUDGET: usize = 8 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (rss0, _) = rss_kib();
    let db = Db::open(dir.path(), opts().max_series(2_000_000).head_memory_budget(BUDGET)).unwrap();
    let mut app = db.appender();
    let (mut peak_head, mut peak_frozen) = (0u64, 0usize);
    for start in (0..CHURN).step_by(BATCH) {
        for k in start..start + BATCH {
            app.append_labels(&labels(k), T0 + k as i64, k as f64).unwrap();
        }
        app.commit().unwrap();
        let s = db.stats().unwrap();
        peak_head = peak_head.max(s.head_bytes);
        peak_frozen = peak_frozen.max(s.frozen_heads);
    }
    let ingest = started.elapsed();
    db.flush().unwrap();
    let s = db.stats().unwrap();
    assert_eq!((s.series, s.samples()), (CHURN as u64, CHURN as u64));
    let (hwm, rss) = rss_kib();
    println!(
        "churn: budget {} MiB: peak head {:.1} MiB (head and frozen heads, Db::stats), at most {peak_frozen} frozen, \
         {} segments; ingest {ingest:.1?}; RSS before {} MiB, peak {} MiB, after {} MiB; {:.1?}",
        BUDGET >> 20,
        peak_head as f64 / (1 << 20) as f64,
        s.segments,
        rss0 / 1024,
        hwm / 1024,
        rss / 1024,
        started.elapsed()
    );
    assert!(s.segments >= 10, "the head was sealed early, many times: {}", s.segments);
    // The worker seals at the budget; a committer seals inline at twice the budget
    // when the worker is behind. Freezing happens only under the seal lock, which
    // writes every frozen head before it is released, so at most one head is frozen:
    // head and frozen head each stay under 2x the budget plus one batch (~0.3 MiB).
    assert!(peak_frozen <= 1);
    let bound = 4 * BUDGET as u64 + (1 << 20);
    assert!(peak_head <= bound, "head {peak_head} bytes vs budget {BUDGET}");
}
