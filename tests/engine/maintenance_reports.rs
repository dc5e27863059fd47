//! Every deletion a maintenance pass makes is reported: data past retention that a
//! merge leaves out is listed in the pass's `removed`, counted in `removal_stats`,
//! and logged, like the segments retention drops or trims itself.

use std::time::Duration;

use strata::{Db, Labels, Matcher, Options, RetentionPolicy, SyncMode, TierDurations};

const DAY: i64 = 86_400_000;
const FOREVER: Duration = TierDurations::FOREVER;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn count(db: &Db) -> usize {
    let q = db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("__name__", "m")]).unwrap().map(|s| s.unwrap().1.count()).sum()
}

/// Two raw segments with overlapping time ranges (the compaction planner merges them),
/// partly older than the raw retention set afterwards.
fn two_overlapping_segments(db: &Db, old: i64, fresh: i64) {
    let l = Labels::from_pairs([("__name__", "m"), ("host", "a")]).unwrap();
    let mut app = db.appender();
    // First segment: even minutes, from `old` to `fresh`; second: odd minutes.
    for parity in [0, 1] {
        let mut t = old + parity * 60_000;
        while t <= fresh {
            app.append_labels(&l, t, 1.0).unwrap();
            t += 120_000;
        }
        app.commit().unwrap();
        db.flush().unwrap();
    }
}

#[test]
fn data_a_merge_leaves_out_past_retention_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default().sync(SyncMode::Never).background(false).retention(RetentionPolicy::forever());
    let db = Db::open(dir.path(), opts).unwrap();
    let now = now();
    // Ten days, ending an hour ago; raw retention of 1 day then expires 9 of them,
    // under the planner's threshold for trimming too much to report here by accident.
    let (old, fresh) = (now - 10 * DAY, now - 3_600_000);
    two_overlapping_segments(&db, old, fresh);
    let before = count(&db);
    let policy = RetentionPolicy::new(TierDurations::new(Duration::from_secs(86_400), FOREVER, FOREVER)).unwrap();
    db.set_retention(policy).unwrap();
    let visible = count(&db);
    assert!(visible < before / 5, "expired data is hidden at once: {visible} of {before}");
    let r = db.compact().unwrap();
    assert!(r.merges >= 1, "the overlapping segments were merged: {r:?}");
    let on_disk: u64 = db.segments().iter().filter(|s| s.tier == strata::StoredTier::Raw).map(|s| s.samples).sum();
    let removed: u64 =
        r.removed.iter().filter(|d| d.tier == strata::StoredTier::Raw).filter_map(|d| d.items_removed).sum();
    assert_eq!(on_disk + removed, before as u64, "every raw sample is on disk or reported removed: {r:?}");
    assert_eq!(db.removal_stats().samples, removed, "the counters agree with the report");
    assert_eq!(count(&db), visible, "nothing visible was removed");
}

/// Collects the engine's log messages; each test keeps those naming its directory.
struct Capture(std::sync::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        self.0.lock().unwrap().push(format!("{} {}", r.level(), r.args()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));

fn logged(dir: &std::path::Path) -> Vec<String> {
    let d = dir.display().to_string();
    CAPTURE.0.lock().unwrap().iter().filter(|m| m.contains(&d)).cloned().collect()
}

#[test]
fn seals_merges_downsampling_and_removals_are_logged() {
    if log::set_logger(&CAPTURE).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default().sync(SyncMode::Never).background(false).retention(RetentionPolicy::forever());
    let db = Db::open(dir.path(), opts).unwrap();
    let now = now();
    two_overlapping_segments(&db, now - 10 * DAY, now - 3_600_000);
    let policy = RetentionPolicy::new(TierDurations::new(Duration::from_secs(86_400), FOREVER, FOREVER)).unwrap();
    db.set_retention(policy).unwrap();
    db.compact().unwrap();
    let log = logged(dir.path());
    let has = |what: &str| log.iter().any(|m| m.starts_with("INFO") && m.contains(what));
    assert!(has(" samples of 1 series (") && has("sealed "), "{log:#?}");
    assert!(has("downsampled: "), "{log:#?}");
    assert!(has("merged 2 raw segments"), "{log:#?}");
    assert!(has("left out when merging segments"), "{log:#?}");
}

/// Passes started at once (a server's background pass and `POST /admin/compact`,
/// `apply_retention`, `delete`) run one after another: none finds the segments it
/// planned to merge already merged by another.
#[test]
fn concurrent_maintenance_passes_do_not_fail_on_each_others_merges() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default().sync(SyncMode::Never).background(false).retention(RetentionPolicy::forever());
    let db = std::sync::Arc::new(Db::open(dir.path(), opts).unwrap());
    let now = now();
    for round in 0..6 {
        // Each round: several small overlapping segments, so every pass has merges to plan.
        two_overlapping_segments(&db, now - DAY + round * 1_000, now - 3_600_000);
        let workers: Vec<_> = (0..3)
            .map(|k| {
                let db = db.clone();
                std::thread::spawn(move || match k {
                    0 | 1 => db.compact().map(|_| ()),
                    _ => db.apply_retention().map(|_| ()),
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap().unwrap();
        }
    }
    let end = db.compact().unwrap();
    assert_eq!(end.merges, 0, "the last pass found nothing left to merge: {end:?}");
    assert!(count(&db) > 0);
}
