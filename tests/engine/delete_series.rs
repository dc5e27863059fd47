//! `Db::delete` and `strata delete`: the deleted range is gone for good, after a
//! crash, through compaction and WAL replay, and nothing else is touched. The kill
//! test stops `strata delete` with SIGKILL at many points.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use strata::{Db, Labels, Matcher, Options, SyncMode, Tier};

const T0: i64 = 1_700_000_000_000;
const STEP: i64 = 15_000;
const N: i64 = 4 * 5760; // four days of 15 s samples
/// From day 1 into the last day, which is only in the WAL when the delete runs.
const DEL: (i64, i64) = (T0 + 86_400_000 + 7_000, T0 + 3 * 86_400_000 + 43_200_000 + 3_000);

/// Opens Dbs here and hands their directories to `strata`: see `support::serial`.
use crate::support::serial;

fn opts() -> Options {
    Options::default().sync(SyncMode::Always).background(false)
}

fn labels(host: &str) -> Labels {
    Labels::from_pairs([("__name__", "cpu"), ("host", host)]).unwrap()
}

/// Three series; the last day of each is only in the WAL (not sealed).
fn fill(dir: &Path) {
    let db = Db::open(dir, opts()).unwrap();
    let mut app = db.appender();
    for host in ["a", "b", "c"] {
        for i in 0..N * 3 / 4 {
            app.append_labels(&labels(host), T0 + i * STEP, i as f64).unwrap();
        }
    }
    app.commit().unwrap();
    db.flush().unwrap();
    db.compact().unwrap();
    for host in ["a", "b", "c"] {
        for i in N * 3 / 4..N {
            app.append_labels(&labels(host), T0 + i * STEP, i as f64).unwrap();
        }
    }
    app.commit().unwrap();
    // Dropped without sealing: the last day stays in the WAL only.
}

fn samples(db: &Db, host: &str) -> Vec<i64> {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut s = q.select(&[Matcher::eq("host", host)]).unwrap();
    s.next().map(|r| r.unwrap().1.map(|s| s.ts).collect()).unwrap_or_default()
}

fn expected_a() -> Vec<i64> {
    (0..N).map(|i| T0 + i * STEP).filter(|t| *t < DEL.0 || *t > DEL.1).collect()
}

fn all() -> Vec<i64> {
    (0..N).map(|i| T0 + i * STEP).collect()
}

#[test]
fn deleted_samples_never_come_back() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let db = Db::open(dir.path(), opts()).unwrap();
    let r = db.delete(&[Matcher::eq("host", "a")], DEL.0..=DEL.1).unwrap();
    assert_eq!(r.series_matched, 1);
    assert_eq!(r.series_affected, 1);
    assert_eq!(r.samples as usize, N as usize - expected_a().len());
    assert!(r.buckets > 0, "rollup buckets of the range go too: {r:?}");
    assert_eq!(samples(&db, "a"), expected_a());
    assert_eq!(samples(&db, "b"), all());
    // Through downsampling and compaction.
    db.compact().unwrap();
    assert_eq!(samples(&db, "a"), expected_a());
    // The 5m tier agrees with the raw data that remains.
    let q = strata::Query::new()
        .select([Matcher::eq("host", "a")])
        .range(T0 / 3_600_000 * 3_600_000..(T0 + N * 3 / 4 * STEP) / 3_600_000 * 3_600_000)
        .step(Duration::from_secs(300))
        .agg(strata::Agg::Count)
        .tier(Tier::FiveMin);
    let tiered: f64 = db.query(&q).unwrap().series.iter().flat_map(|s| s.points.iter().map(|p| p.value)).sum();
    let raw = q.clone().tier(Tier::Raw);
    let from_raw: f64 = db.query(&raw).unwrap().series.iter().flat_map(|s| s.points.iter().map(|p| p.value)).sum();
    assert_eq!(tiered, from_raw);
    let sealed_end = (T0 + N * 3 / 4 * STEP) / 3_600_000 * 3_600_000;
    assert_eq!(from_raw as usize, expected_a().iter().filter(|t| **t < sealed_end).count());
    // After a crash-like drop and a replay.
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(samples(&db, "a"), expected_a());
    assert_eq!(samples(&db, "c"), all());
    assert_eq!(db.removal_stats().deleted_samples, 0, "counters are per open");
    // A selector that only matches the empty value is refused.
    assert!(db.delete(&[Matcher::eq("zone", "")], 0..=1).is_err());
    // No matcher: prune everything before a time.
    let r = db.delete(&[], i64::MIN..=T0 + STEP - 1).unwrap();
    assert_eq!(r.samples, 3);
    assert_eq!(samples(&db, "b")[0], T0 + STEP);
}

fn strata(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.args(args);
    c
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn delete_under_kill_9_is_all_or_nothing_and_then_for_good() {
    let _one = serial();
    let base = tempfile::tempdir().unwrap();
    let template = base.path().join("template");
    fill(&template);
    let (start, end) = (DEL.0.to_string(), DEL.1.to_string());
    let args = |d: &str| {
        vec!["delete", "cpu{host=\"a\"}", "--start", &start, "--end", &end, "--data", d]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // How long one uninterrupted run takes, to spread the kill points over it.
    let probe = base.path().join("probe");
    copy_dir(&template, &probe);
    let t = std::time::Instant::now();
    let out = strata(&args(probe.to_str().unwrap()).iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = t.elapsed();
    let (mut complete, mut untouched) = (0, 0);
    for k in 0..24u32 {
        let d = base.path().join(format!("kill{k}"));
        copy_dir(&template, &d);
        let a = args(d.to_str().unwrap());
        let mut child = strata(&a.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(f64::from(k) / 20.0));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let db = Db::open(&d, opts()).unwrap();
        let a_now = samples(&db, "a");
        if a_now == expected_a() {
            complete += 1;
        } else {
            assert_eq!(a_now, all(), "kill {k}: a partial delete is visible");
            untouched += 1;
        }
        assert_eq!(samples(&db, "b"), all(), "kill {k}: another series changed");
        assert_eq!(samples(&db, "c"), all(), "kill {k}: another series changed");
        drop(db);
        // Run again to completion: then the range is gone for good.
        let out = strata(&a.iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let db = Db::open(&d, opts()).unwrap();
        db.compact().unwrap();
        assert_eq!(samples(&db, "a"), expected_a(), "kill {k}");
        drop(db);
        std::fs::remove_dir_all(&d).unwrap();
    }
    eprintln!("24 kills: {complete} after the delete's publication, {untouched} before");
}
