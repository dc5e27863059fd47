//! Many series written, sealed and reopened read back exactly.

use crate::support::options;
use std::collections::BTreeMap;

use strata::{Db, Error, Labels, Matcher, Options, Sample, SyncMode};

fn opts() -> Options {
    options::foreground(SyncMode::Never)
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__".to_string(), format!("metric_{}", i % 7)),
        ("host".to_string(), format!("h{i}")),
        ("region".to_string(), ["eu", "us", "ap"][i % 3].to_string()),
    ])
    .unwrap()
}

type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

fn write(db: &Db, model: &mut Model, series: usize, per: i64, t0: i64) {
    let mut app = db.appender();
    for i in 0..series {
        let l = labels(i);
        let r = app.series(&l).unwrap();
        for k in 0..per {
            let ts = t0 + k * 10_000;
            let v = ((i as f64) * 1.5 + k as f64 * 0.1).sin() * 100.0;
            app.append(r, ts, v).unwrap();
            model.entry(l.clone()).or_default().insert(ts, v.to_bits());
        }
    }
    app.commit().unwrap();
}

fn check(db: &Db, model: &Model) {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut seen = 0;
    for series in q.select(&[Matcher::regex("__name__", "metric_.*").unwrap()]).unwrap() {
        let (l, samples) = series.unwrap();
        let want: Vec<Sample> = model[&l].iter().map(|(&t, &v)| Sample::new(t, f64::from_bits(v))).collect();
        assert_eq!(samples.collect::<Vec<_>>(), want, "series {l}");
        seen += 1;
    }
    assert_eq!(seen, model.len());
}

#[test]
fn many_series_survive_seal_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, &mut model, 1000, 50, 1_000_000);
        db.flush().unwrap();
        write(&db, &mut model, 1000, 20, 2_000_000); // stays in the WAL
        check(&db, &model);
        let st = db.stats().unwrap();
        assert_eq!(st.series, 1000);
        assert_eq!(st.segments, 1);
        assert_eq!(st.samples(), 70_000);
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model);
    assert_eq!(db.stats().unwrap().samples(), 70_000);
    // Backfill older than the segment and overwrite some sealed samples.
    write(&db, &mut model, 10, 5, 1_000_000);
    write(&db, &mut model, 10, 5, 0);
    db.flush().unwrap();
    check(&db, &model);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model);
}

#[test]
fn selection_by_label_and_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, 30, 100, 0);
    db.flush().unwrap();
    write(&db, &mut model, 30, 100, 1_000_000);
    let q = db.querier(500_000..1_500_000);
    let got: Vec<(Labels, Vec<Sample>)> = q
        .select(&[Matcher::eq("region", "eu"), Matcher::regex("host", "h1.*").unwrap()])
        .unwrap()
        .map(|r| r.map(|(l, s)| (l, s.collect())))
        .collect::<Result<_, _>>()
        .unwrap();
    let want: Vec<&Labels> =
        model.keys().filter(|l| l.get("region") == Some("eu") && l.get("host").unwrap().starts_with("h1")).collect();
    assert_eq!(got.len(), want.len());
    for (l, samples) in &got {
        let expect: Vec<i64> = model[l].keys().copied().filter(|t| (500_000..1_500_000).contains(t)).collect();
        assert_eq!(samples.iter().map(|s| s.ts).collect::<Vec<_>>(), expect);
    }
    let latest = db.latest(&[Matcher::eq("host", "h3")]).unwrap();
    assert_eq!(latest.len(), 1);
    let (l, s) = &latest[0];
    let (&t, &v) = model[l].iter().next_back().unwrap();
    assert_eq!(*s, Sample::new(t, f64::from_bits(v)));
}

#[test]
fn input_errors_are_typed_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts().max_labels(3).max_series(2)).unwrap();
    let mut app = db.appender();
    let too_many = Labels::from_pairs([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]).unwrap();
    assert!(matches!(app.series(&too_many), Err(Error::TooManyLabels { count: 4, max: 3 })));
    app.series(&labels(1)).unwrap();
    app.series(&labels(2)).unwrap();
    let e = app.series(&labels(3)).unwrap_err();
    assert!(matches!(e, Error::SeriesLimit { max: 2 }) && e.is_input_error());
    let (start, end) = (10, 5);
    let q = db.querier(start..end);
    assert!(matches!(q.select(&[Matcher::eq("a", "1")]), Err(Error::InvalidTimeRange { start: 10, end: 5 })));
    // A ref from another Db is refused rather than written to the wrong series.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Db::open(other_dir.path(), opts()).unwrap();
    let foreign = other.appender().series(&labels(1)).unwrap();
    assert!(matches!(app.append(foreign, 1, 1.0), Err(Error::UnknownSeries { .. })));
    // rollback drops the batch
    let r = app.series(&labels(1)).unwrap();
    app.append(r, 5, 1.0).unwrap();
    app.rollback();
    app.commit().unwrap();
    assert_eq!(db.stats().unwrap().samples(), 0);
}

#[test]
fn second_open_of_a_locked_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _db = Db::open(dir.path(), opts()).unwrap();
    assert!(matches!(Db::open(dir.path(), opts()), Err(Error::Locked { .. })));
}

#[test]
fn special_values_round_trip_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let vals =
        [f64::NAN, -f64::NAN, f64::from_bits(0x7ff0_0000_0000_0002), f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0];
    let l = labels(0);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        let mut app = db.appender();
        for (i, v) in vals.iter().enumerate() {
            app.append_labels(&l, i as i64, *v).unwrap();
        }
        app.commit().unwrap();
        db.flush().unwrap();
        for (i, v) in vals.iter().enumerate() {
            app.append_labels(&l, 100 + i as i64, *v).unwrap();
        }
        app.commit().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    let (_, s) = q.select(&[Matcher::eq("host", "h0")]).unwrap().next().unwrap().unwrap();
    let bits: Vec<u64> = s.map(|s| s.value.to_bits()).collect();
    let want: Vec<u64> = vals.iter().chain(vals.iter()).map(|v| v.to_bits()).collect();
    assert_eq!(bits, want);
}
