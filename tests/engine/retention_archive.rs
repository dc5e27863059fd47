//! Archival before retention removes data: with an `archive_dir`, every raw sample that
//! a drop, a trim or a rule's expiry removes is first in a Parquet file of the archive,
//! nothing still stored is archived, a failed archive write removes nothing, and a
//! process killed at random points of retention passes never loses a sample (each one
//! is in the store or in the archive).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use strata::{Db, Labels, Matcher, Options, RetentionPolicy, RetentionRule, SyncMode, TierDurations};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// (series labels as text, ts) -> value bits.
type Model = BTreeMap<(String, i64), u64>;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn forever() -> RetentionPolicy {
    RetentionPolicy::new(TierDurations::forever()).unwrap()
}

fn opts() -> Options {
    Options::default().sync(SyncMode::Never).background(false).retention(forever())
}

fn labels(metric: &str, s: usize) -> Labels {
    Labels::from_pairs([("__name__", metric.to_string()), ("s", s.to_string())]).unwrap()
}

/// Writes `series` series of each metric, one sample every `step` ms from `start` to
/// `end`, flushing a segment every 12 hours of data; returns what was written.
fn write(db: &Db, metrics: &[&str], series: usize, start: i64, end: i64, step: i64) -> Model {
    let mut model = Model::new();
    let mut app = db.appender();
    let mut block = start;
    while block < end {
        let stop = (block + 12 * HOUR).min(end);
        for m in metrics {
            for s in 0..series {
                let l = labels(m, s);
                let mut t = block;
                while t < stop {
                    let v = (t / 1000) as f64 + s as f64 / 4.0;
                    app.append_labels(&l, t, v).unwrap();
                    model.insert((l.to_string(), t), v.to_bits());
                    t += step;
                }
            }
        }
        app.commit().unwrap();
        db.flush().unwrap();
        block = stop;
    }
    model
}

/// Everything physically stored: the policy is set to keep everything first, so that
/// reads no longer hide expired data.
fn stored(db: &Db) -> Model {
    db.set_retention(forever()).unwrap();
    let mut out = Model::new();
    for series in db.querier(i64::MIN..i64::MAX).select(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap() {
        let (l, samples) = series.unwrap();
        for s in samples {
            out.insert((l.to_string(), s.ts), s.value.to_bits());
        }
    }
    out
}

/// Every row of every finished archive file under `root` (`.tmp` files are not part of
/// the archive), each file's rows checked to lie in its `date=` partition.
fn archived(root: &Path) -> Model {
    let mut out = Model::new();
    for f in archive_files(root) {
        let day = f.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
        strata::text::parquet::read_rows(std::fs::File::open(&f).unwrap(), |_, row| {
            let (l, s) = row.unwrap();
            assert_eq!(format!("date={}", strata::retention::archive::day_name(s.ts.div_euclid(DAY))), day);
            out.insert((l.to_string(), s.ts), s.value.to_bits());
        })
        .unwrap();
    }
    out
}

fn archive_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let tier = root.join("tier=raw");
    for d in std::fs::read_dir(&tier).into_iter().flatten() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn tmp_files(root: &Path) -> usize {
    let tier = root.join("tier=raw");
    std::fs::read_dir(&tier)
        .into_iter()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
        .count()
}

fn days(d: f64) -> Duration {
    Duration::from_secs_f64(d * 86_400.0)
}

#[test]
fn archive_holds_exactly_what_retention_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let t = now();
    // Ten days of two metrics, in segments of 12 hours; `short_*` has a 2 day rule.
    let original = write(&db, &["keep_metric", "short_metric"], 3, t - 10 * DAY, t - HOUR, 10 * 60_000);
    // 5.25 days: the segment of [t - 5.5 d, t - 5 d) straddles the boundary with half of
    // it expired, so it is trimmed; older ones go whole.
    let rule = RetentionRule::new("short", "short_*", vec![], 1, TierDurations::uniform(days(2.0))).unwrap();
    let policy = RetentionPolicy::new(TierDurations::new(days(5.25), TierDurations::FOREVER, TierDurations::FOREVER))
        .unwrap()
        .with_rule(rule)
        .unwrap()
        .with_archive_dir(Some("archive".into()))
        .unwrap();
    db.set_retention(policy).unwrap();
    let r = db.apply_retention().unwrap();
    assert!(r.archive_errors.is_empty(), "{:?}", r.archive_errors);
    assert!(r.segments_expired > 0 && r.segments_trimmed > 0, "{r:?}");
    let root = dir.path().join("archive");
    let archive = archived(&root);
    let (rows, bytes) = r.archived_totals();
    assert_eq!(rows as usize, archive.len(), "the report counts every archived row once");
    assert!(bytes > 0);
    let stats = db.removal_stats();
    assert_eq!((stats.archived_rows, stats.archived_files), (rows, r.archived.len() as u64));
    let removed: u64 = r.removed.iter().map(|d| d.items_removed.unwrap_or(0)).sum();
    assert_eq!(removed, rows, "raw items removed and rows archived agree");

    let store = stored(&db);
    // Nothing lost, nothing archived that is still stored, nothing invented.
    for (k, v) in &original {
        match (store.get(k), archive.get(k)) {
            (Some(a), None) | (None, Some(a)) => assert_eq!(a, v, "{k:?}"),
            (Some(_), Some(_)) => panic!("{k:?} is both stored and archived"),
            (None, None) => panic!("{k:?} was removed without being archived"),
        }
    }
    assert_eq!(store.len() + archive.len(), original.len());
    // What went is what had expired: before the cut of the series' own retention
    // (the cut moved on by at most a few seconds while the test ran).
    for (name, ts) in archive.keys() {
        let keep = if name.starts_with("short_metric") { 2 * DAY } else { 5 * DAY + 6 * HOUR };
        assert!(*ts < now() - keep, "{name} at {ts} was archived but is still retained");
    }
    assert!(archive.keys().any(|(n, ts)| n.starts_with("keep_metric") && *ts >= t - 5 * DAY - 12 * HOUR));
    assert_eq!(tmp_files(&root), 0);
    // Every archived row is in a file of its own UTC day; files are named by segment.
    for f in &r.archived {
        assert!(f.path.starts_with(&root) && f.path.to_string_lossy().ends_with(".parquet"), "{f:?}");
    }
}

#[test]
fn a_failed_archive_write_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let t = now();
    let original = write(&db, &["m"], 2, t - 6 * DAY, t - HOUR, 30 * 60_000);
    // The archive directory cannot be created: a file has its name. (A read-only
    // directory would do the same, but not for root.)
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let policy = RetentionPolicy::new(TierDurations::new(days(2.0), TierDurations::FOREVER, TierDurations::FOREVER))
        .unwrap()
        .with_archive_dir(Some(blocked.clone()))
        .unwrap();
    db.set_retention(policy.clone()).unwrap();
    let r = db.apply_retention().unwrap();
    assert!(!r.archive_errors.is_empty(), "{r:?}");
    assert!(r.archive_errors[0].contains("blocked") && r.archive_errors[0].contains("nothing was removed"));
    assert_eq!((r.segments_expired, r.segments_trimmed, r.removed.len()), (0, 0, 0), "{r:?}");
    assert_eq!(db.removal_stats().archive_failures as usize, r.archive_errors.len());
    assert_eq!(stored(&db), original, "every sample is still stored");

    // Once the archive can be written, the same pass archives and removes.
    std::fs::remove_file(&blocked).unwrap();
    db.set_retention(policy).unwrap();
    let r = db.apply_retention().unwrap();
    assert!(r.archive_errors.is_empty() && r.segments_expired > 0, "{r:?}");
    let archive = archived(&blocked);
    let store = stored(&db);
    assert_eq!(archive.len() + store.len(), original.len());
    assert!(archive.keys().all(|k| !store.contains_key(k)));
}

#[test]
fn archive_dir_is_recorded_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let policy = RetentionPolicy::tiered().with_archive_dir(Some("arch".into())).unwrap();
    drop(Db::open(dir.path(), opts().retention(policy.clone()).update_retention(true)).unwrap());
    let recorded = strata::retention::read_settings(dir.path()).unwrap().unwrap();
    assert_eq!(recorded, policy);
    assert_eq!(recorded.archive_dir(), Some(Path::new("arch")));
    assert_eq!(recorded.archive_dir_in(dir.path()), Some(dir.path().join("arch")));
    assert!(RetentionPolicy::tiered().with_archive_dir(Some(PathBuf::new())).is_err());
}

// ---- kill -9 during retention passes ----

const CHILD_ENV: &str = "STRATA_ARCHIVE_CHILD_DIR";
const SERIES: usize = 8;

/// The policy of step `i` of a child's loop: raw retention shrinking by 3 hours a step
/// from 9.5 days, so that every pass drops or trims something.
fn step_policy(i: u64, root: &Path) -> RetentionPolicy {
    let keep = (9.5 - i as f64 / 8.0).max(0.5);
    RetentionPolicy::new(TierDurations::new(days(keep), TierDurations::FOREVER, TierDurations::FOREVER))
        .unwrap()
        .with_archive_dir(Some(root.to_path_buf()))
        .unwrap()
}

/// Runs only as the child: retention passes with an ever shorter retention, forever.
#[test]
fn archive_child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let dir = PathBuf::from(dir);
    let start: u64 = std::env::var("STRATA_ARCHIVE_CHILD_STEP").unwrap().parse().unwrap();
    let db = Db::open(dir.join("db"), Options::default().sync(SyncMode::Always).background(false)).unwrap();
    for i in start.. {
        db.set_retention(step_policy(i, &dir.join("archive"))).unwrap();
        let r = db.apply_retention().unwrap();
        println!("pass {i}: {} removed, {} archived", r.removed.len(), r.archived.len());
    }
}

#[test]
fn sigkill_during_archival_loses_no_sample() {
    let dir = tempfile::tempdir().unwrap();
    let (db_dir, root) = (dir.path().join("db"), dir.path().join("archive"));
    let t = now();
    let original = {
        let db = Db::open(&db_dir, opts().sync(SyncMode::Always)).unwrap();
        write(&db, &["a", "b"], SERIES, t - 10 * DAY, t - HOUR, 60_000)
    };
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut step = 0u64;
    for run in 0..8 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = crate::support::spawn(
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "retention_archive::archive_child_entry", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, dir.path())
                .env("STRATA_ARCHIVE_CHILD_STEP", step.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(40 + rng % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        step += 6;
        let db = Db::open(&db_dir, Options::default().background(false)).unwrap();
        let store = stored(&db);
        let archive = archived(&root);
        for (k, v) in &original {
            let got = store.get(k).or_else(|| archive.get(k));
            assert_eq!(got, Some(v), "run {run}: {k:?} is neither stored nor archived");
        }
        // The retention the child recorded is back in force for the next run.
        drop(db);
    }
    // A clean pass afterwards finishes the work and leaves no partial file.
    let db = Db::open(&db_dir, Options::default().background(false)).unwrap();
    db.set_retention(step_policy(step, &root)).unwrap();
    let r = db.apply_retention().unwrap();
    assert!(r.archive_errors.is_empty(), "{:?}", r.archive_errors);
    assert_eq!(tmp_files(&root), 0, "partial archive files are swept by the next pass");
    let (store, archive) = (stored(&db), archived(&root));
    let lost: BTreeSet<_> = original.keys().filter(|k| !store.contains_key(*k) && !archive.contains_key(*k)).collect();
    assert!(lost.is_empty(), "{} samples lost", lost.len());
    assert!(!archive.is_empty() && store.len() < original.len());
}
