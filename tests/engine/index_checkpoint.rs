//! The index checkpoint (`INDEX`): written when open finds it missing or stale,
//! used when it covers the segments, and never trusted when it is damaged, torn,
//! or names other files: then the index is rebuilt from the segments and every
//! series reads back as a plain model (a BTreeMap) says.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::support::options;
use strata::{Db, Labels, Matcher, SyncMode};

type Model = BTreeMap<String, Vec<(i64, f64)>>;

fn opts() -> strata::Options {
    options::foreground(SyncMode::Always)
}

fn labels(i: u64) -> Labels {
    let metric = if i.is_multiple_of(2) { "cpu" } else { "mem" };
    Labels::metric(metric, [("host", format!("h{}", i % 13)), ("n", i.to_string())]).unwrap()
}

/// Writes `series` series (one sample each at `ts`) and seals them into a segment.
fn write(db: &Db, model: &mut Model, series: std::ops::Range<u64>, ts: i64) {
    let mut app = db.appender();
    for i in series {
        let l = labels(i);
        app.append_labels(&l, ts, i as f64).unwrap();
        model.entry(l.to_string()).or_default().push((ts, i as f64));
    }
    app.commit().unwrap();
    db.flush().unwrap();
}

/// Everything the Db serves, through a selection that goes by the postings.
fn read(db: &Db) -> Model {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut out = Model::new();
    for m in ["cpu", "mem"] {
        for item in q.select(&[Matcher::eq("__name__", m)]).unwrap() {
            let (l, samples) = item.unwrap();
            out.insert(l.to_string(), samples.map(|s| (s.ts, s.value)).collect());
        }
    }
    // A selection by another label agrees with the model too.
    let h3 = q.select(&[Matcher::eq("host", "h3")]).unwrap().count();
    assert_eq!(h3, out.keys().filter(|k| k.contains("host=\"h3\"")).count());
    out
}

fn reopen(dir: &Path, model: &Model) -> Db {
    let db = Db::open(dir, opts()).unwrap();
    assert_eq!(read(&db), *model);
    assert_eq!(db.stats().unwrap().series, model.len() as u64);
    db
}

fn from_checkpoint(db: &Db) -> u64 {
    db.recovery_report().series_from_checkpoint
}

#[test]
fn written_when_missing_then_used_and_kept_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, &mut model, 0..300, 1_000);
    write(&db, &mut model, 200..400, 2_000);
    db.close().unwrap();
    drop(db);
    assert!(!dir.path().join("INDEX").exists(), "written on open, not on seal");

    // A directory without a checkpoint (as an older build leaves it) opens from
    // its segments and gets one; the next open uses it.
    let db = reopen(dir.path(), &model);
    assert_eq!(from_checkpoint(&db), 0);
    assert!(dir.path().join("INDEX").exists());
    drop(db);
    let db = reopen(dir.path(), &model);
    assert_eq!(from_checkpoint(&db), 400);

    // Known series keep their ids (no new series), new ones join; a new segment
    // is read from its table and the checkpoint is rewritten to cover it.
    write(&db, &mut model, 350..450, 3_000);
    assert_eq!(db.stats().unwrap().series, 450);
    drop(db);
    let db = reopen(dir.path(), &model);
    assert_eq!(from_checkpoint(&db), 400);
    drop(db);
    let db = reopen(dir.path(), &model);
    assert_eq!(from_checkpoint(&db), 450);

    // A merge removes the segments the checkpoint names: it is not used (it might
    // hold series no segment holds any more), and is rewritten.
    db.compact().unwrap();
    drop(db);
    let db = reopen(dir.path(), &model);
    assert_eq!(from_checkpoint(&db), 0);
    drop(db);
    let db = reopen(dir.path(), &model);
    assert_eq!(from_checkpoint(&db), 450);
}

fn two_segments(dir: &Path) -> Model {
    let mut model = Model::new();
    let db = Db::open(dir, opts()).unwrap();
    write(&db, &mut model, 0..120, 1_000);
    write(&db, &mut model, 60..150, 2_000);
    drop(db);
    drop(Db::open(dir, opts()).unwrap());
    assert!(dir.join("INDEX").exists());
    model
}

#[test]
fn damaged_or_torn_checkpoint_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let model = two_segments(dir.path());
    let path = dir.path().join("INDEX");
    let good = fs::read(&path).unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [0, 9, 20, 40, good.len() / 2, good.len() - 3] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        cases.push((format!("byte {at} flipped"), bad));
    }
    for cut in [0, 10, 35, good.len() / 2, good.len() - 1] {
        cases.push((format!("cut to {cut} bytes"), good[..cut].to_vec()));
    }
    for (what, bytes) in cases {
        fs::write(&path, &bytes).unwrap();
        let db = reopen(dir.path(), &model);
        assert_eq!(from_checkpoint(&db), 0, "{what}");
        drop(db);
        // Rewritten whole by that open.
        assert_eq!(fs::read(&path).unwrap(), good, "{what}");
        let db = reopen(dir.path(), &model);
        assert_eq!(from_checkpoint(&db), 150, "{what}");
    }
}

#[test]
fn a_crash_while_writing_it_leaves_a_directory_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let model = two_segments(dir.path());
    let path = dir.path().join("INDEX");
    let good = fs::read(&path).unwrap();
    // Killed before the rename: a partial INDEX.tmp beside the old file (or none).
    for old in [Some(good.clone()), None] {
        match &old {
            Some(b) => fs::write(&path, b).unwrap(),
            None => fs::remove_file(&path).unwrap(),
        }
        fs::write(dir.path().join("INDEX.tmp"), &good[..good.len() / 3]).unwrap();
        let db = reopen(dir.path(), &model);
        assert_eq!(from_checkpoint(&db), if old.is_some() { 150 } else { 0 });
        assert!(!dir.path().join("INDEX.tmp").exists());
        assert!(db.recovery_report().swept_files >= 1);
    }
}

#[test]
fn a_checkpoint_of_other_files_with_the_same_ids_is_not_used() {
    // Two directories whose segments have the same ids but other series: the
    // checkpoint names segments by id and series table checksum.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model_a = two_segments(a.path());
    let mut model_b = Model::new();
    let db = Db::open(b.path(), opts()).unwrap();
    write(&db, &mut model_b, 1000..1100, 1_000);
    write(&db, &mut model_b, 1050..1200, 2_000);
    drop(db);
    fs::copy(a.path().join("INDEX"), b.path().join("INDEX")).unwrap();
    let db = reopen(b.path(), &model_b);
    assert_eq!(from_checkpoint(&db), 0);
    drop(db);
    assert_eq!(from_checkpoint(&reopen(b.path(), &model_b)), 200);
    assert_eq!(from_checkpoint(&reopen(a.path(), &model_a)), 150);
}

#[test]
fn segments_of_older_versions_are_covered_too() {
    // The version 1 fixtures keep labels inside their series entries (version 3
    // in a frame of their own): a checkpoint covers them all the same.
    let dir = tempfile::tempdir().unwrap();
    crate::format_golden::copy_fixtures(dir.path());
    let everything = |db: &Db| -> Model {
        let q = db.querier(i64::MIN..i64::MAX);
        let all = q.select(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap();
        all.map(|item| {
            let (l, samples) = item.unwrap();
            (l.to_string(), samples.map(|s| (s.ts, s.value)).collect())
        })
        .collect()
    };
    // Options without a retention policy: the fixtures' recorded one stands.
    let opts = || strata::Options::default().background(false).sync(SyncMode::Never);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(from_checkpoint(&db), 0);
    let first = everything(&db);
    assert!(!first.is_empty());
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(from_checkpoint(&db) > 0);
    assert_eq!(everything(&db), first);
}
