//! Timestamps at the edges of `i64`: a sample is accepted only if every read path
//! can return it. Read ranges are half-open `[start, end)`, so `i64::MAX` is refused
//! at write time with an input error naming the series, the timestamp and the range;
//! `i64::MIN` and `i64::MAX - 1` are accepted and read back from the head, from
//! segments, after compaction and downsampling, and after a reopen.

use crate::support::server_util;
use strata::{Db, Error, Labels, Matcher, Options, RetentionPolicy, Sample, SyncMode, TierDurations};
use strata::{MAX_TIMESTAMP, MIN_TIMESTAMP};

fn opts() -> Options {
    Options::default()
        .retention(RetentionPolicy::new(TierDurations::forever()).unwrap())
        .sync(SyncMode::Always)
        .background(false)
}

fn labels(s: &str) -> Labels {
    Labels::from_pairs([("__name__", "edge".to_string()), ("s", s.to_string())]).unwrap()
}

fn read(db: &Db, s: &str) -> Vec<Sample> {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut out = Vec::new();
    for item in q.select(&[Matcher::eq("__name__", "edge"), Matcher::eq("s", s)]).unwrap() {
        out.extend(item.unwrap().1);
    }
    out
}

fn assert_out_of_range(e: Error, series: &str, ts: i64) {
    assert!(e.is_input_error(), "{e:?} is not an input error");
    match &e {
        Error::TimestampOutOfRange { series: got, ts: t, min, max } => {
            assert!(got.contains(series), "{got:?} does not name {series:?}");
            assert_eq!((*t, *min, *max), (ts, MIN_TIMESTAMP, MAX_TIMESTAMP));
        }
        other => panic!("expected TimestampOutOfRange, got {other:?}"),
    }
    let text = e.to_string();
    assert!(text.contains(&ts.to_string()) && text.contains(&MAX_TIMESTAMP.to_string()), "{text}");
}

#[test]
fn a_sample_at_i64_max_is_refused_and_the_rest_of_the_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    let a = app.series(&labels("a")).unwrap();
    app.append(a, 1_000, 1.0).unwrap();
    assert_out_of_range(app.append(a, i64::MAX, 2.0).unwrap_err(), "s=\"a\"", i64::MAX);
    assert_out_of_range(app.append_labels(&labels("b"), i64::MAX, 3.0).unwrap_err(), "s=\"b\"", i64::MAX);
    assert_eq!(app.len(), 1, "a refused sample must not stay in the batch");
    app.commit().unwrap();
    assert_eq!(read(&db, "a"), vec![Sample::new(1_000, 1.0)]);
    assert!(read(&db, "b").is_empty());
    assert_eq!(db.stats().unwrap().samples(), 1);
    db.close().unwrap();
}

#[test]
fn the_extreme_accepted_timestamps_read_back_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let want = vec![
        Sample::new(i64::MIN, -1.0),
        Sample::new(i64::MIN + 1, -0.5),
        Sample::new(0, 0.0),
        Sample::new(i64::MAX - 2, 0.5),
        Sample::new(i64::MAX - 1, 1.0),
    ];
    let write = |db: &Db, s: &str| {
        let mut app = db.appender();
        for x in &want {
            app.append_labels(&labels(s), x.ts, x.value).unwrap();
        }
        app.commit().unwrap();
    };
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, "head");
    write(&db, "sealed");
    assert_eq!(read(&db, "head"), want, "from the head");
    db.flush().unwrap();
    write(&db, "head");
    assert_eq!(read(&db, "sealed"), want, "from a segment");
    db.flush().unwrap();
    db.compact().unwrap();
    assert_eq!(read(&db, "sealed"), want, "after compaction and downsampling");
    assert_eq!(read(&db, "head"), want, "overwritten in a later segment");
    let latest = db.latest(&[Matcher::eq("s", "sealed")]).unwrap();
    assert_eq!(latest[0].1, Sample::new(i64::MAX - 1, 1.0));
    // the narrowest ranges that hold each edge
    let q = db.querier(i64::MAX - 1..i64::MAX);
    let n: usize = q.select(&[Matcher::eq("s", "sealed")]).unwrap().map(|i| i.unwrap().1.count()).sum();
    assert_eq!(n, 1);
    let q = db.querier(i64::MIN..i64::MIN + 1);
    let n: usize = q.select(&[Matcher::eq("s", "sealed")]).unwrap().map(|i| i.unwrap().1.count()).sum();
    assert_eq!(n, 1);
    write(&db, "wal");
    db.close().unwrap();
    drop(db);

    let db = Db::open(dir.path(), opts()).unwrap();
    for s in ["head", "sealed", "wal"] {
        assert_eq!(read(&db, s), want, "{s} after reopening");
    }
    db.close().unwrap();
}

#[test]
fn the_server_read_paths_return_both_edges() {
    let s = server_util::start();
    let mut app = s.db.appender();
    for ts in [i64::MIN, MAX_TIMESTAMP] {
        app.append_labels(&labels("srv"), ts, 1.0).unwrap();
    }
    app.commit().unwrap();
    for path in ["/export?match=edge", "/query/raw?metric_name=edge"] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let body = r.text();
        for ts in [i64::MIN, MAX_TIMESTAMP] {
            assert!(body.contains(&ts.to_string()), "{path} lacks {ts}: {body}");
        }
    }
}
