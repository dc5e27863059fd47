//! Opening and closing a database without writes leaves no empty WAL files
//! behind, and what was written before is replayed intact every time.

use crate::support::options;
use std::fs;
use std::path::Path;

use strata::{Db, Labels, Matcher, SyncMode};

fn wal_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .collect();
    v.sort();
    v
}

fn samples(db: &Db) -> Vec<(i64, f64)> {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut out = Vec::new();
    for item in q.select(&[Matcher::eq("__name__", "reopen")]).unwrap() {
        out.extend(item.unwrap().1.map(|s| (s.ts, s.value)));
    }
    out
}

#[test]
fn twenty_opens_leave_one_wal_file_and_replay_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || options::foreground(SyncMode::Always);
    let l = Labels::metric("reopen", [("k", "v")]).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    app.append_labels(&l, 1, 1.5).unwrap();
    app.commit().unwrap();
    db.close().unwrap();
    let with_data = wal_files(dir.path());
    assert_eq!(with_data.len(), 1, "{with_data:?}");

    for round in 0..20 {
        let db = Db::open(dir.path(), opts()).unwrap();
        assert_eq!(samples(&db), vec![(1, 1.5)], "round {round}");
        db.close().unwrap();
        let files = wal_files(dir.path());
        // The file with the record, plus at most the one empty file of the last open.
        assert_eq!(files.len(), 2, "round {round}: {files:?}");
        assert_eq!(files[0], with_data[0], "round {round}: the file with data is untouched");
        assert_eq!(files[1].1, 24, "round {round}: {files:?}");
    }

    // A write after many empty opens lands in the reused file and replays in order.
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    app.append_labels(&l, 2, 2.5).unwrap();
    app.commit().unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(samples(&db), vec![(1, 1.5), (2, 2.5)]);
    db.close().unwrap();
    assert_eq!(wal_files(dir.path()).len(), 3, "{:?}", wal_files(dir.path()));

    // Sealing moves the data into a segment; later opens still keep one empty file.
    let db = Db::open(dir.path(), opts()).unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    for _ in 0..5 {
        let db = Db::open(dir.path(), opts()).unwrap();
        assert_eq!(samples(&db), vec![(1, 1.5), (2, 2.5)]);
        db.close().unwrap();
    }
    let files = wal_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].1, 24);
}
