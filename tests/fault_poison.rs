//! Failures the engine must not hide: a panic in sealing or maintenance poisons the
//! Db (reads still served, writes refused with the panic's message, `/health` 503),
//! and a commit whose WAL write failed is never visible to readers.
//!
//! The injector is process-global, so the tests here take one lock.
//! Run: `cargo test --release --features failpoints --test fault_poison`.

mod support;

use crate::support::server_util;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use strata::failpoint::{self, Fault, Mode, Op, PanicSite};
use strata::{Db, Error, Labels, Matcher, Options, RetentionPolicy, SyncMode, TierDurations};

static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the injector for one test and leaves it clean whatever the test does.
fn serial() -> impl Drop {
    struct Clean(#[allow(dead_code)] MutexGuard<'static, ()>);
    impl Drop for Clean {
        fn drop(&mut self) {
            failpoint::reset();
            failpoint::disarm_panic();
        }
    }
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    failpoint::reset();
    failpoint::disarm_panic();
    Clean(g)
}

fn opts() -> Options {
    Options::default()
        .retention(RetentionPolicy::new(TierDurations::forever()).unwrap())
        .sync(SyncMode::Always)
        .background(false)
}

/// A background worker that seals a head as soon as it is 100 ms old.
fn background_opts() -> Options {
    opts().background(true).block_duration(Duration::from_millis(100))
}

fn labels(s: usize) -> Labels {
    Labels::from_pairs([("__name__", "fp".to_string()), ("s", s.to_string())]).unwrap()
}

type Model = BTreeMap<(usize, i64), u64>;

/// Commits `(series, ts, value)` samples as one batch; records them in `m` if acknowledged.
fn commit(db: &Db, m: &mut Model, batch: &[(usize, i64, f64)]) -> strata::Result<()> {
    let mut app = db.appender();
    for &(s, ts, v) in batch {
        app.append_labels(&labels(s), ts, v).unwrap();
    }
    app.commit()?;
    for &(s, ts, v) in batch {
        m.insert((s, ts), v.to_bits());
    }
    Ok(())
}

fn batch(series: usize, from: i64, n: i64, salt: f64) -> Vec<(usize, i64, f64)> {
    (0..series).flat_map(|s| (0..n).map(move |k| (s, from + k * 1000, salt + k as f64 + s as f64 / 8.0))).collect()
}

/// Everything the Db returns for the test metric.
fn read_all(db: &Db) -> Model {
    let mut got = Model::new();
    let q = db.querier(i64::MIN..i64::MAX);
    for item in q.select(&[Matcher::eq("__name__", "fp")]).unwrap() {
        let (l, samples) = item.unwrap();
        let s: usize = l.get("s").unwrap().parse().unwrap();
        for x in samples {
            assert!(got.insert((s, x.ts), x.value.to_bits()).is_none(), "series {s} at {} twice", x.ts);
        }
    }
    got
}

fn wait_poisoned(db: &Db) -> String {
    for _ in 0..500 {
        if let Some(cause) = db.wal_stats().poisoned {
            return cause;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the Db was not poisoned within 10 s");
}

/// Writes are refused with the panic's message; reads answer everything acknowledged.
fn assert_poisoned_by_panic(db: &Db, m: &Model, context: &str, site: &str) {
    let cause = db.wal_stats().poisoned.expect("poisoned");
    assert!(cause.contains(context) && cause.contains(site), "cause {cause:?} names neither {context:?} nor {site:?}");
    let mut scratch = Model::new();
    match commit(db, &mut scratch, &batch(1, 9_000_000, 1, 0.5)) {
        Err(Error::Poisoned { cause: c }) => assert!(c.contains(site), "refusal {c:?} does not name the panic"),
        other => panic!("a write after the panic was not refused: {other:?}"),
    }
    assert!(scratch.is_empty());
    assert_eq!(&read_all(db), m, "reads after the panic");
}

/// Reopens without injection: everything acknowledged is there, and writes work again.
fn reopen_and_check(dir: &Path, m: &mut Model) {
    let db = Db::open(dir, opts()).unwrap();
    assert_eq!(&read_all(&db), m, "after reopening");
    commit(&db, m, &batch(2, 50_000_000, 3, 7.0)).expect("a write after reopening");
    db.flush().unwrap();
    assert_eq!(&read_all(&db), m, "after a write and a seal");
    db.close().unwrap();
}

#[test]
fn a_panic_in_a_background_seal_poisons_and_nothing_is_lost() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut m = Model::new();
    let db = Db::open(dir.path(), background_opts()).unwrap();
    commit(&db, &mut m, &batch(3, 1_000_000, 50, 0.0)).unwrap();
    db.flush().unwrap();
    failpoint::arm_panic(PanicSite::Seal, 1);
    commit(&db, &mut m, &batch(3, 2_000_000, 50, 100.0)).unwrap();
    wait_poisoned(&db);
    assert_poisoned_by_panic(&db, &m, "sealing the head", "injected panic at Seal");
    assert!(db.flush().is_err(), "flush on a poisoned Db");
    db.close().unwrap();
    drop(db);
    reopen_and_check(dir.path(), &mut m);
}

#[test]
fn a_panic_in_background_maintenance_poisons_and_nothing_is_lost() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut m = Model::new();
    failpoint::arm_panic(PanicSite::Maintain, 1);
    let db = Db::open(dir.path(), background_opts()).unwrap();
    // the worker runs maintenance right after its first seal
    commit(&db, &mut m, &batch(3, 1_000_000, 50, 0.0)).unwrap();
    wait_poisoned(&db);
    assert_poisoned_by_panic(&db, &m, "maintaining segments", "injected panic at Maintain");
    db.close().unwrap();
    drop(db);
    reopen_and_check(dir.path(), &mut m);
}

#[test]
fn a_panic_in_flush_poisons_without_hanging() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut m = Model::new();
    let db = Db::open(dir.path(), opts()).unwrap();
    commit(&db, &mut m, &batch(2, 1_000_000, 20, 0.0)).unwrap();
    failpoint::arm_panic(PanicSite::Seal, 1);
    match db.flush() {
        Err(Error::Panicked { context, message }) => {
            assert_eq!(context, "sealing the head");
            assert_eq!(message, "injected panic at Seal");
        }
        other => panic!("flush did not report the panic: {other:?}"),
    }
    assert_poisoned_by_panic(&db, &m, "sealing the head", "injected panic at Seal");
    // the locks the seal held are free: these would hang otherwise
    assert!(db.flush().is_err());
    assert!(db.stats().unwrap().frozen_heads <= 1);
    db.close().unwrap();
    drop(db);
    reopen_and_check(dir.path(), &mut m);
}

#[test]
fn a_panic_in_a_seal_run_by_a_commit_poisons() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut m = Model::new();
    // a tiny budget: the commit seals the head inline, as no worker would
    let db = Db::open(dir.path(), opts().head_memory_budget(1)).unwrap();
    failpoint::arm_panic(PanicSite::Seal, 1);
    // acknowledged: the samples are durable in the WAL before the seal starts
    commit(&db, &mut m, &batch(2, 1_000_000, 20, 0.0)).unwrap();
    assert_poisoned_by_panic(&db, &m, "sealing the head", "injected panic at Seal");
    db.close().unwrap();
    drop(db);
    reopen_and_check(dir.path(), &mut m);
}

/// After a failed WAL write or fsync, readers see exactly the acknowledged samples:
/// not the failed batch's new samples, not its overwrites, not its new series.
#[test]
fn a_commit_whose_wal_write_failed_is_never_visible() {
    let _g = serial();
    for (op, fault) in [(Op::Fsync, Fault::Eio), (Op::Write, Fault::Enospc), (Op::Write, Fault::ShortWrite)] {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Model::new();
        let db = Db::open(dir.path(), opts()).unwrap();
        commit(&db, &mut m, &batch(2, 1_000_000, 30, 0.0)).unwrap();
        db.flush().unwrap();
        commit(&db, &mut m, &batch(2, 2_000_000, 30, 50.0)).unwrap();
        let before = db.stats().unwrap();
        failpoint::arm(op, 1, Mode::Persistent, fault);
        // new timestamps, overwrites of sealed and head samples, an out-of-order one and a new series
        let mut failed = batch(3, 3_000_000, 10, 500.0);
        failed.extend([(0, 1_000_000, -1.0), (1, 2_000_000, -2.0), (0, 2_500_000, -3.0)]);
        let mut unsure = Model::new();
        let e = commit(&db, &mut unsure, &failed).expect_err("a commit with a failing WAL");
        assert!(unsure.is_empty());
        assert!(failpoint::fired() > 0, "{op:?}: nothing was injected");
        assert!(db.wal_stats().poisoned.is_some(), "{op:?}: not poisoned after {e}");
        assert_eq!(read_all(&db), m, "{op:?} {fault:?}: readers see the failed commit");
        let latest = db.latest(&[Matcher::eq("__name__", "fp")]).unwrap();
        assert_eq!(latest.len(), 2, "{op:?}: the failed commit's new series has a latest sample");
        for (l, s) in latest {
            let id: usize = l.get("s").unwrap().parse().unwrap();
            assert_eq!(s.ts, 2_029_000, "{op:?}: series {id}");
        }
        let after = db.stats().unwrap();
        assert_eq!(after.head_samples, before.head_samples, "{op:?}: the head counts the failed commit");
        db.close().ok();
        drop(db);
        failpoint::reset();
        // The failed batch may or may not survive the reopen (it reached the file or
        // the page cache), but everything acknowledged must.
        let db = Db::open(dir.path(), opts()).unwrap();
        let got = read_all(&db);
        for (k, v) in &m {
            let f = failed.iter().find(|x| (x.0, x.1) == *k).map(|x| x.2.to_bits());
            assert!(got.get(k) == Some(v) || f.is_some() && got.get(k) == f.as_ref(), "{op:?}: {k:?} lost");
        }
        db.close().unwrap();
    }
}

/// Group commit under concurrency: when the WAL fails mid-run, what readers see is
/// exactly the union of the commits that were acknowledged, whichever thread made them.
#[test]
fn concurrent_commits_show_exactly_what_was_acknowledged() {
    let _g = serial();
    for nth in [3, 17, 40] {
        failpoint::reset();
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), opts()).unwrap());
        failpoint::arm(Op::Fsync, nth, Mode::Persistent, Fault::Eio);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let mut m = Model::new();
                    for k in 0..40i64 {
                        // each thread overwrites its own series and a shared one
                        let b = [(t, k * 10, k as f64), (t, 1_000_000 - k, -(k as f64)), (9, t as i64 * 1000 + k, 1.0)];
                        if commit(&db, &mut m, &b).is_err() {
                            break;
                        }
                    }
                    m
                })
            })
            .collect();
        let mut acked = Model::new();
        for h in threads {
            acked.extend(h.join().unwrap());
        }
        assert!(db.wal_stats().poisoned.is_some(), "fsync {nth} never failed");
        assert_eq!(read_all(&db), acked, "fsync {nth} failed: readers disagree with the acknowledgements");
        db.close().ok();
    }
}

#[test]
fn health_reports_a_panic_in_the_background_worker() {
    let _g = serial();
    let mut s = server_util::start_with(
        server_util::opts().background(true).block_duration(Duration::from_millis(100)),
        Default::default(),
        None,
    );
    assert_eq!(s.get("/health").status, 200);
    failpoint::arm_panic(PanicSite::Seal, 1);
    assert_eq!(s.post("/write?precision=ms", b"hp v=1 1000\nhp v=2 2000\n").status, 204);
    let cause = wait_poisoned(&s.db);
    assert!(cause.contains("injected panic at Seal"), "{cause}");
    let h = s.get("/health");
    assert_eq!(h.status, 503);
    let body = h.json();
    assert_eq!(body["status"], "unhealthy");
    assert!(body["error"].as_str().unwrap().contains("panic while sealing the head"), "{body}");
    let st = s.get("/db/status").json();
    assert_eq!(st["status"], "read_only");
    assert!(st["error"].as_str().unwrap().contains("injected panic at Seal"), "{st}");
    // writes are refused, reads still answer
    assert_eq!(s.post("/write?precision=ms", b"hp v=3 3000\n").status, 503);
    assert_eq!(s.db.querier(0..10_000).select(&[Matcher::eq("__name__", "hp_v")]).unwrap().count(), 1);
    s.stop().ok();
}
