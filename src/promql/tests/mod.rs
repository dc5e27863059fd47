//! Unit tests of the evaluator, per function family, against hand-computed values.

mod functions;
mod operators;
mod range;
mod selectors;

use super::{ErrorKind, Value};
use crate::{Db, Labels, Options};

pub(super) const STALE: f64 = f64::from_bits(super::eval::STALE_NAN_BITS);

/// One series of test data: metric name, labels, (time in seconds, value) points.
pub(super) type TestSeries<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [(f64, f64)]);

/// A Db holding `series`.
pub(super) fn db_with(series: &[TestSeries]) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut app = db.appender();
    for (name, labels, points) in series {
        let l = Labels::metric(name, labels.iter().copied()).unwrap();
        for &(t, v) in *points {
            app.append_labels(&l, (t * 1000.0) as i64, v).unwrap();
        }
    }
    app.commit().unwrap();
    (dir, db)
}

/// An instant query's vector as `(labels, value)` sorted by labels; a scalar as `("scalar", v)`.
pub(super) fn instant(db: &Db, q: &str, t_secs: f64) -> Vec<(String, f64)> {
    let t = (t_secs * 1000.0) as i64;
    match db.promql_instant(q, t).unwrap_or_else(|e| panic!("{q}: {e}")) {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> = v
                .into_iter()
                .map(|s| {
                    assert_eq!(s.t, t);
                    (s.metric.to_string(), s.v)
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        Value::Scalar(st, v) => {
            assert_eq!(st, t);
            vec![("scalar".to_string(), v)]
        }
        other => panic!("{q}: unexpected {other:?}"),
    }
}

/// The value of a query that yields exactly one element (or a scalar).
pub(super) fn one(db: &Db, q: &str, t_secs: f64) -> f64 {
    let r = instant(db, q, t_secs);
    assert_eq!(r.len(), 1, "{q} at {t_secs}: {r:?}");
    r[0].1
}

pub(super) fn approx(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || ((a - b).abs() <= 1e-9 * a.abs().max(b.abs()))
}

#[track_caller]
pub(super) fn assert_one(db: &Db, q: &str, t_secs: f64, want: f64) {
    let got = one(db, q, t_secs);
    assert!(approx(got, want), "{q} at {t_secs}: got {got}, want {want}");
}

#[track_caller]
pub(super) fn assert_err(db: &Db, q: &str, kind: ErrorKind, contains: &str) {
    let e = db.promql_instant(q, 100_000).expect_err(q);
    assert_eq!(e.kind, kind, "{q}: {e}");
    assert!(e.message.contains(contains), "{q}: {e}");
}
