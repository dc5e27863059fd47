//! A damaged newest WAL file: every truncation and every single-bit flip in its
//! last two records. Open never panics; a damaged tail is cut and only the
//! damaged (unacknowledgeable) records are lost; damage followed by good records
//! refuses to open, naming the file and offset, unless repair is asked for.

use crate::support::options;
use std::fs;
use std::path::{Path, PathBuf};

use strata::{Db, Error, Labels, Matcher, Options, SyncMode};

fn opts() -> Options {
    options::foreground(SyncMode::Always)
}

fn wal_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.pop().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Commits 3 batches (ts 0..3, 10..13, 20..23 on two series); returns the WAL file
/// size after each commit: the record boundaries.
fn build(dir: &Path) -> Vec<u64> {
    let db = Db::open(dir, opts()).unwrap();
    let mut sizes = vec![fs::metadata(wal_file(dir)).unwrap().len()];
    let mut app = db.appender();
    for b in 0..3i64 {
        for s in ["a", "b"] {
            let l = Labels::from_pairs([("__name__", "m"), ("s", s)]).unwrap();
            for k in 0..3 {
                app.append_labels(&l, b * 10 + k, (b * 100 + k) as f64).unwrap();
            }
        }
        app.commit().unwrap();
        sizes.push(fs::metadata(wal_file(dir)).unwrap().len());
    }
    db.close().unwrap();
    sizes
}

fn batches(db: &Db) -> Vec<i64> {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut out = Vec::new();
    for series in q.select(&[Matcher::eq("__name__", "m")]).unwrap() {
        let (_, s) = series.unwrap();
        let ts: Vec<i64> = s.map(|s| s.ts).collect();
        let b: Vec<i64> = ts.iter().map(|t| t / 10).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        for x in &b {
            assert_eq!(ts.iter().filter(|t| *t / 10 == *x).count(), 3, "batch {x} is torn");
        }
        if out.is_empty() {
            out = b;
        } else {
            assert_eq!(out, b, "series disagree");
        }
    }
    out
}

fn damaged_copy(src: &Path, damage: impl FnOnce(&Path)) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(src, d.path());
    damage(&wal_file(d.path()));
    d
}

#[test]
fn every_truncation_of_the_last_two_records_keeps_the_intact_prefix() {
    let src = tempfile::tempdir().unwrap();
    let sizes = build(src.path());
    let (s1, s2, s3) = (sizes[1], sizes[2], sizes[3]);
    for cut in s1..s3 {
        let d = damaged_copy(src.path(), |f| fs::OpenOptions::new().write(true).open(f).unwrap().set_len(cut).unwrap());
        let db = Db::open(d.path(), opts()).unwrap();
        let (want, good_end) = if cut < s2 { (vec![0], s1) } else { (vec![0, 1], s2) };
        assert_eq!(batches(&db), want, "cut at {cut}");
        assert_eq!(db.recovery_report().wal_truncated_bytes, cut - good_end, "cut at {cut}");
        drop(db);
        // The cut is durable: a second open finds nothing more to drop.
        let db = Db::open(d.path(), opts()).unwrap();
        assert_eq!(db.recovery_report().wal_truncated_bytes, 0);
        assert_eq!(batches(&db), want);
        // And appending after recovery works and survives another reopen.
        let mut app = db.appender();
        app.append_labels(&Labels::from_pairs([("__name__", "m"), ("s", "a")]).unwrap(), 95, 1.0).unwrap();
        app.commit().unwrap();
        drop(db);
        let db = Db::open(d.path(), opts()).unwrap();
        let q = db.querier(95..96);
        assert_eq!(q.select(&[Matcher::eq("s", "a")]).unwrap().count(), 1);
    }
}

#[test]
fn every_bit_flip_in_the_last_two_records_is_caught() {
    let src = tempfile::tempdir().unwrap();
    let sizes = build(src.path());
    let (s1, s2, s3) = (sizes[1], sizes[2], sizes[3]);
    let mut cases = 0;
    for byte in s1..s3 {
        for bit in 0..8 {
            let flip = |f: &Path| {
                let mut b = fs::read(f).unwrap();
                b[byte as usize] ^= 1 << bit;
                fs::write(f, b).unwrap();
            };
            let d = damaged_copy(src.path(), flip);
            cases += 1;
            if byte >= s2 {
                // Damage in the last record: a torn tail, cut off.
                let db = Db::open(d.path(), opts()).unwrap();
                assert_eq!(batches(&db), vec![0, 1], "flip at {byte}.{bit}");
                assert_eq!(db.recovery_report().wal_truncated_bytes, s3 - s2);
            } else {
                // Damage followed by a good record: refuse, naming file and offset.
                match Db::open(d.path(), opts()) {
                    Err(Error::Corruption { file, offset, .. }) => {
                        assert_eq!(file, wal_file(d.path()), "flip at {byte}.{bit}");
                        assert_eq!(offset, s1, "flip at {byte}.{bit}");
                    }
                    Err(e) => panic!("flip at {byte}.{bit}: wrong error {e}"),
                    Ok(_) => panic!("flip at {byte}.{bit}: opened a WAL with mid-log corruption"),
                }
                let db = Db::open(d.path(), opts().repair(true)).unwrap();
                assert_eq!(batches(&db), vec![0], "repair after flip at {byte}.{bit}");
            }
        }
    }
    assert_eq!(cases, (s3 - s1) * 8);
}
