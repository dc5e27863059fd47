//! A sealer that cannot write (the segments directory is gone) must not let the
//! heads grow without bound: commits fail with `Error::WriteStalled` after
//! `Options::write_stall_timeout` instead, keeping their batch; once the directory
//! is back, the sealer catches up, the retried commit goes through, and every
//! acknowledged sample reads back, also after a reopen.

use std::fs;
use std::time::{Duration, Instant};

use strata::{Db, Error, Labels, Matcher, SyncMode};

const BUDGET: usize = 64 << 10;
const SERIES: usize = 10;

fn opts() -> strata::Options {
    crate::support::options::keep_all()
        .sync(SyncMode::Never)
        .head_memory_budget(BUDGET)
        .write_stall_timeout(Duration::from_millis(200))
}

fn stored(db: &Db) -> usize {
    let q = db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("__name__", "stall")]).unwrap().map(|r| r.unwrap().1.len()).sum()
}

#[test]
fn heads_stay_bounded_while_segments_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    let refs: Vec<_> =
        (0..SERIES).map(|i| app.series(&Labels::metric("stall", [("i", i.to_string())]).unwrap()).unwrap()).collect();
    let mut acked = 0usize;
    let mut ts = 1_700_000_000_000i64;
    let batch = |app: &mut strata::Appender, ts: &mut i64| {
        for _ in 0..100 {
            for &r in &refs {
                app.append(r, *ts, (*ts % 977) as f64 * 0.1).unwrap();
            }
            *ts += 10_000;
        }
    };
    batch(&mut app, &mut ts);
    app.commit().unwrap();
    acked += 100 * SERIES;
    db.flush().unwrap();

    // Segments can no longer be created: the sealer's writes fail and it retries.
    let segs = dir.path().join("segments");
    fs::rename(&segs, dir.path().join("segments.away")).unwrap();
    fs::write(&segs, b"not a directory").unwrap();
    let (mut peak, mut peak_frozen) = (0u64, 0usize);
    let stalled = loop {
        batch(&mut app, &mut ts);
        match app.commit() {
            Ok(()) => acked += 100 * SERIES,
            Err(e) => break e,
        }
        let s = db.stats().unwrap();
        peak = peak.max(s.head_bytes);
        peak_frozen = peak_frozen.max(s.frozen_heads);
        assert!(acked < 5_000_000, "never stalled: heads hold {} bytes, budget {BUDGET}", s.head_bytes);
    };
    assert!(matches!(stalled, Error::WriteStalled { .. }), "{stalled}");
    assert_eq!(app.len(), 100 * SERIES, "the stalled commit keeps its batch");
    // One frozen head that cannot be written, and a head up to twice the budget plus a batch.
    assert!(peak_frozen <= 1, "{peak_frozen} frozen heads");
    assert!(peak <= 4 * BUDGET as u64 + (64 << 10), "heads held {peak} bytes, budget {BUDGET}");
    assert_eq!(stored(&db), acked, "a stalled commit is not visible");

    fs::remove_file(&segs).unwrap();
    fs::rename(dir.path().join("segments.away"), &segs).unwrap();
    // The sealer retries with a growing back-off; retry the commit until it has room.
    let started = Instant::now();
    loop {
        match app.commit() {
            Ok(()) => break,
            Err(Error::WriteStalled { .. }) if started.elapsed() < Duration::from_secs(120) => {}
            Err(e) => panic!("retrying the stalled commit: {e}"),
        }
    }
    acked += 100 * SERIES;
    assert!(app.is_empty());
    db.flush().unwrap();
    let s = db.stats().unwrap();
    assert_eq!((s.frozen_heads, s.head_samples), (0, 0));
    assert_eq!(stored(&db), acked);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(stored(&db), acked, "after a reopen");
}
