//! Retention lives with the data: the SETTINGS file records the policy, every open
//! applies the recorded one, and only an explicit change replaces it.

use std::time::Duration;

use strata::{Db, Error, Labels, Matcher, Options, RetentionPolicy, RetentionRule, SyncMode, TierDurations};

const DAY: i64 = 86_400_000;
/// 2023-11-14: years older than any tiered retention.
const OLD: i64 = 1_700_000_000_000;

fn opts() -> Options {
    Options::default().sync(SyncMode::Never).background(false)
}

fn write_old(db: &Db, n: i64) {
    let mut app = db.appender();
    let l = Labels::from_pairs([("__name__", "old_metric"), ("host", "a")]).unwrap();
    for i in 0..n {
        app.append_labels(&l, OLD + i * 10_000, i as f64).unwrap();
    }
    app.commit().unwrap();
}

fn count(db: &Db) -> usize {
    let q = db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap().map(|s| s.unwrap().1.count()).sum()
}

#[test]
fn a_new_database_keeps_everything_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.retention_policy(), RetentionPolicy::forever());
    assert!(dir.path().join(strata::retention::SETTINGS_FILE).is_file());
    write_old(&db, 5000);
    db.flush().unwrap();
    let r = db.compact().unwrap();
    assert!(r.removed.is_empty(), "{r:?}");
    assert_eq!(count(&db), 5000);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(count(&db), 5000);
    assert_eq!(db.retention_policy(), RetentionPolicy::forever());
}

#[test]
fn the_recorded_policy_wins_and_a_different_one_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    drop(Db::open(dir.path(), opts().retention(RetentionPolicy::tiered())).unwrap());
    // No policy given: the recorded one applies.
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.retention_policy(), RetentionPolicy::tiered());
    drop(db);
    // The same policy given again is fine.
    drop(Db::open(dir.path(), opts().retention(RetentionPolicy::tiered())).unwrap());
    // A different one is refused, naming both.
    let e = Db::open(dir.path(), opts().retention(RetentionPolicy::forever())).err().expect("refused");
    assert!(matches!(e, Error::RetentionMismatch { .. }) && e.is_input_error(), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("raw 7d, 5m 30d, 1h 365d") && msg.contains("raw forever"), "{msg}");
    // ...unless the caller asks for the update, which is recorded.
    drop(Db::open(dir.path(), opts().retention(RetentionPolicy::forever()).update_retention(true)).unwrap());
    assert_eq!(Db::open(dir.path(), opts()).unwrap().retention_policy(), RetentionPolicy::forever());
}

#[test]
fn changes_are_recorded_before_they_apply_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let day = Duration::from_millis(DAY as u64);
    let rule = RetentionRule::new(
        "debug",
        "debug_*",
        vec![Matcher::eq("env", "dev")],
        4,
        TierDurations::new(day, 2 * day, TierDurations::FOREVER),
    )
    .unwrap();
    db.add_retention_rule(rule.clone()).unwrap();
    assert!(db.add_retention_rule(rule).is_err(), "rule names are unique");
    db.set_retention(db.retention_policy().with_max_disk_bytes(Some(1 << 30))).unwrap();
    let expected = db.retention_policy();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.retention_policy(), expected);
    assert_eq!(db.retention_policy().rules().len(), 1);
    assert!(db.remove_retention_rule("debug").unwrap());
    assert!(!db.remove_retention_rule("debug").unwrap());
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.retention_policy().rules().is_empty());
    assert_eq!(db.retention_policy().max_disk_bytes(), Some(1 << 30));
}

#[test]
fn a_directory_from_before_settings_gets_keep_forever_not_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write_old(&db, 1000);
    db.flush().unwrap();
    drop(db);
    std::fs::remove_file(dir.path().join(strata::retention::SETTINGS_FILE)).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    db.compact().unwrap();
    assert_eq!(count(&db), 1000);
    assert_eq!(db.retention_policy(), RetentionPolicy::forever());
}

#[test]
fn retention_reports_what_it_removes_and_the_dry_run_matches() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write_old(&db, 2000);
    db.flush().unwrap();
    db.set_retention(RetentionPolicy::tiered()).unwrap();
    let plan = db.retention_plan();
    assert!(!plan.drops.is_empty());
    let r = db.apply_retention().unwrap();
    let planned: Vec<(u64, strata::retention::DropKind)> = plan.drops.iter().map(|d| (d.segment, d.kind)).collect();
    let done: Vec<(u64, strata::retention::DropKind)> = r.removed.iter().map(|d| (d.segment, d.kind)).collect();
    assert_eq!(planned, done, "the dry run is what apply does");
    let raw: u64 = r.removed.iter().filter(|d| d.tier == strata::StoredTier::Raw).filter_map(|d| d.items_removed).sum();
    assert_eq!(raw, 2000, "{r:?}");
    assert!(r.removed.iter().all(|d| d.reason.contains("past 7d")), "{r:?}");
    assert_eq!(db.removal_stats().samples, 2000);
    assert_eq!(count(&db), 0);
}

#[test]
fn a_damaged_settings_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    drop(Db::open(dir.path(), opts()).unwrap());
    let path = dir.path().join(strata::retention::SETTINGS_FILE);
    let mut b = std::fs::read(&path).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x40;
    std::fs::write(&path, b).unwrap();
    let e = Db::open(dir.path(), opts()).err().expect("refused").to_string();
    assert!(e.contains("SETTINGS") && e.contains("checksum"), "{e}");
}
