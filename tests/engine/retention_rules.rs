//! Retention: per-tier defaults, glob rules with priorities, refusal of samples
//! older than retention, immediate hiding of expired data, disk reclaimed by
//! maintenance, and the disk cap.

use std::time::Duration;

use strata::{Db, Error, Labels, Matcher, Options, RetentionPolicy, RetentionRule, SyncMode, TierDurations};

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn days(d: u64) -> Duration {
    Duration::from_secs(d * 86_400)
}

/// Three and a half days: keeps the samples written 1, 2 and 3 days ago whole,
/// however long the test takes.
fn three_days() -> Duration {
    Duration::from_secs(3 * 86_400 + 43_200)
}

fn opts(policy: RetentionPolicy) -> Options {
    Options::default().sync(SyncMode::Never).background(false).retention(policy)
}

fn l(name: &str, host: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("host", host)]).unwrap()
}

fn count(db: &Db, name: &str) -> usize {
    let q = db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("__name__", name)]).unwrap().map(|s| s.unwrap().1.len()).sum()
}

#[test]
fn samples_older_than_retention_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let rule = RetentionRule::new(
        "short cpu",
        "container_cpu_*",
        vec![Matcher::eq("host", "h1")],
        10,
        TierDurations::new(days(1), days(2), days(3)),
    )
    .unwrap();
    let db = Db::open(dir.path(), opts(RetentionPolicy::tiered().with_rule(rule).unwrap())).unwrap();
    let mut app = db.appender();
    let t = now();
    app.append_labels(&l("container_cpu_usage", "h2"), t - 3 * DAY, 1.0).unwrap(); // default 7 d
    app.append_labels(&l("container_cpu_usage", "h1"), t - DAY / 2, 1.0).unwrap();
    match app.append_labels(&l("container_cpu_usage", "h1"), t - 2 * DAY, 1.0) {
        Err(Error::OutOfRetention { series, ts, min_ts }) => {
            assert!(series.contains("container_cpu_usage") && series.contains("h1"), "{series}");
            assert_eq!(ts, t - 2 * DAY);
            assert!(min_ts > ts);
        }
        other => panic!("expected OutOfRetention, got {other:?}"),
    }
    let e = app.append_labels(&l("mem", "h1"), t - 8 * DAY, 1.0).unwrap_err();
    assert!(matches!(e, Error::OutOfRetention { .. }) && e.is_input_error());
    app.commit().unwrap();
    assert_eq!(count(&db, "container_cpu_usage"), 2);
    let summary = db.retention_summary();
    assert_eq!(summary.rules.len(), 1);
    assert_eq!(summary.rules[0].matching_series, Some(1));
}

#[test]
fn expired_data_disappears_at_once_and_leaves_the_disk_at_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(RetentionPolicy::new(TierDurations::forever()).unwrap())).unwrap();
    let t = now();
    let mut app = db.appender();
    for d in 0..10 {
        for k in 0..100 {
            app.append_labels(&l("disk", "h1"), t - (10 - d) * DAY + k * 1000, k as f64).unwrap();
            app.append_labels(&l("keep", "h1"), t - (10 - d) * DAY + k * 1000, k as f64).unwrap();
        }
        app.commit().unwrap();
        db.flush().unwrap(); // one segment per day
    }
    assert_eq!(count(&db, "disk"), 1000);
    let before = db.stats().unwrap().disk_bytes[0];
    // 3-day raw retention for "disk", forever for the rest.
    let rule = RetentionRule::new("disk", "disk", vec![], 1, TierDurations::uniform(three_days())).unwrap();
    db.set_retention(RetentionPolicy::new(TierDurations::forever()).unwrap().with_rule(rule).unwrap()).unwrap();
    assert_eq!(count(&db, "disk"), 300, "expired samples must vanish from queries at once");
    assert_eq!(count(&db, "keep"), 1000);
    assert!(db.latest(&[Matcher::eq("__name__", "disk")]).unwrap().len() == 1);
    // Shorten everything: whole segments expire and their files go.
    db.set_retention(RetentionPolicy::new(TierDurations::uniform(three_days())).unwrap()).unwrap();
    let r = db.compact().unwrap();
    // Expired data leaves either as whole segments or dropped while merging.
    assert!(r.segments_expired > 0 || r.items_out < r.items_in, "{r:?}");
    assert!(r.bytes_after < r.bytes_before, "{r:?}");
    let after = db.stats().unwrap().disk_bytes[0];
    assert!(after < before / 2, "disk {before} -> {after}");
    assert_eq!(count(&db, "keep"), 300);
    drop(db);
    let db = Db::open(dir.path(), opts(RetentionPolicy::new(TierDurations::uniform(three_days())).unwrap())).unwrap();
    assert_eq!(count(&db, "keep"), 300);
}

#[test]
fn disk_cap_drops_oldest_segments_first() {
    let dir = tempfile::tempdir().unwrap();
    let forever = RetentionPolicy::new(TierDurations::forever()).unwrap();
    let db = Db::open(dir.path(), opts(forever.clone())).unwrap();
    let t = now();
    let mut app = db.appender();
    let mut x: u64 = 1;
    for d in 0..8 {
        for k in 0..2000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            app.append_labels(&l("cap", "h1"), t - (8 - d) * DAY + k * 1000, f64::from_bits(x >> 2)).unwrap();
        }
        app.commit().unwrap();
        db.flush().unwrap();
    }
    db.compact().unwrap();
    let total: u64 = db.stats().unwrap().disk_bytes.iter().sum();
    db.set_retention(forever.with_max_disk_bytes(Some(total / 2))).unwrap();
    let r = db.apply_retention().unwrap();
    assert!(r.segments_over_cap > 0, "{r:?}");
    let st = db.stats().unwrap();
    // The oldest data went first: what remains is the newest.
    let q = db.querier(i64::MIN..i64::MAX);
    let (_, s) = q.select(&[Matcher::eq("__name__", "cap")]).unwrap().next().unwrap().unwrap();
    let s: Vec<_> = s.collect();
    assert_eq!(s.last().unwrap().ts, t - DAY + 1999 * 1000);
    assert!(s.first().unwrap().ts > t - 8 * DAY, "{st:?}");
}
