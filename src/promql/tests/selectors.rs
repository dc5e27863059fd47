//! Selectors, lookback, staleness, `offset`, `@`, literals and range evaluation.

use super::*;
use crate::promql::{Options, PromqlError, Value};

fn data() -> (tempfile::TempDir, Db) {
    db_with(&[
        ("a", &[("job", "x")], &[(0.0, 1.0), (10.0, 2.0), (20.0, STALE)]),
        ("b", &[("job", "y")], &[(0.0, 5.0)]),
        ("b", &[("job", "z")], &[(100.0, 7.0)]),
    ])
}

#[test]
fn lookback_is_closed_and_five_minutes() {
    let (_d, db) = data();
    assert_one(&db, "b{job=\"y\"}", 0.0, 5.0);
    // Exactly 5 m after the sample: Prometheus 2.42's lookback window is closed.
    assert_one(&db, "b{job=\"y\"}", 300.0, 5.0);
    assert!(instant(&db, "b{job=\"y\"}", 300.001).is_empty());
    assert!(instant(&db, "b{job=\"y\"}", -0.001).is_empty());
    let r = instant(&db, "b", 150.0);
    assert_eq!(
        r,
        vec![("{__name__=\"b\", job=\"y\"}".to_string(), 5.0), ("{__name__=\"b\", job=\"z\"}".to_string(), 7.0)]
    );
}

#[test]
fn staleness_marker_ends_the_series() {
    let (_d, db) = data();
    assert_one(&db, "a", 15.0, 2.0);
    assert!(instant(&db, "a", 20.0).is_empty());
    assert!(instant(&db, "a", 200.0).is_empty());
    // A range selector leaves the marker out.
    assert_one(&db, "count_over_time(a[1h])", 30.0, 2.0);
}

#[test]
fn offset_and_at() {
    let (_d, db) = data();
    assert_one(&db, "a offset 10s", 15.0, 1.0);
    assert_one(&db, "a offset -5s", 10.0, 2.0);
    assert_one(&db, "a @ 10", 1000.0, 2.0);
    assert_one(&db, "a @ 15 offset 10s", 1000.0, 1.0);
    assert_one(&db, "a @ start()", 12.0, 2.0);
    let r = db.promql_range("a @ start()", 10_000, 100_000, 10_000).unwrap();
    let Value::Matrix(m) = r else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.len(), 10);
    assert!(m[0].points.iter().all(|p| p.1 == 2.0));
    let r = db.promql_range("a @ end()", 0, 15_000, 5_000).unwrap();
    let Value::Matrix(m) = r else { panic!() };
    assert_eq!(m[0].points, vec![(0, 2.0), (5_000, 2.0), (10_000, 2.0), (15_000, 2.0)]);
    // A time whose milliseconds do not fit an i64 is refused, not wrapped around.
    for q in ["a @ 1e30", "a @ -1e30", "rate(a[1m] @ 1e17)", "a[1m:10s] @ 1e20"] {
        assert_err(&db, q, ErrorKind::BadData, "timestamp out of bounds for @ modifier");
    }
}

#[test]
fn literals_parentheses_and_unary_minus() {
    let (_d, db) = data();
    assert_eq!(db.promql_instant("1 + 2 * 3", 5).unwrap(), Value::Scalar(5, 7.0));
    assert_eq!(db.promql_instant("(1 + 2) * 3", 5).unwrap(), Value::Scalar(5, 9.0));
    assert_eq!(db.promql_instant("-(2 ^ 2)", 5).unwrap(), Value::Scalar(5, -4.0));
    assert_eq!(db.promql_instant("\"hi\"", 5).unwrap(), Value::String(5, "hi".into()));
    assert_eq!(instant(&db, "-a", 15.0), vec![("{job=\"x\"}".to_string(), -2.0)]);
}

#[test]
fn range_query_evaluates_every_step() {
    let (_d, db) = data();
    let Value::Matrix(m) = db.promql_range("a", 0, 30_000, 5_000).unwrap() else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].metric.get("__name__"), Some("a"));
    assert_eq!(m[0].points, vec![(0, 1.0), (5_000, 1.0), (10_000, 2.0), (15_000, 2.0)]);
    let Value::Matrix(m) = db.promql_range("time()", 0, 2_000, 1_000).unwrap() else { panic!() };
    assert_eq!(m[0].points, vec![(0, 0.0), (1_000, 1.0), (2_000, 2.0)]);
    assert!(m[0].metric.is_empty());
}

#[test]
fn instant_query_of_a_range_selector_is_a_matrix() {
    let (_d, db) = data();
    let Value::Matrix(m) = db.promql_instant("a[10s]", 20_000).unwrap() else { panic!() };
    // [10s, 20s] closed, the marker at 20 s left out.
    assert_eq!(m[0].points, vec![(10_000, 2.0)]);
    let Value::Matrix(m) = db.promql_instant("a[20s]", 20_000).unwrap() else { panic!() };
    assert_eq!(m[0].points, vec![(0, 1.0), (10_000, 2.0)]);
}

#[test]
fn limits_and_request_errors() {
    let (_d, db) = data();
    let e = db.promql_range("a", 0, 11_001_000, 1_000).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadData);
    assert!(e.message.starts_with("exceeded maximum resolution of 11,000 points per timeseries"), "{e}");
    assert!(db.promql_range("a", 0, 11_000_000, 1_000).is_ok());
    assert_eq!(db.promql_range("a", 0, 10, 0).unwrap_err().kind, ErrorKind::BadData);
    assert_eq!(db.promql_range("a", 10, 0, 1).unwrap_err().kind, ErrorKind::BadData);
    let e = db.promql_range("a[5m]", 0, 10, 1).unwrap_err();
    assert!(e.message.contains("invalid expression type \"range vector\" for range query"), "{e}");
    let e = db.promql_instant("sum(", 0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadData);

    let few = Options { max_samples: 1, ..Options::default() };
    let e = db.promql_instant_with("count_over_time(b[1h])", 200_000, &few).unwrap_err();
    assert_eq!(e, PromqlError::too_many_samples());
    assert!(db.promql_instant_with("b{job=\"y\"}", 200_000, &few).is_ok());
    let e = db.promql_instant_with("max_over_time(b[1d:1ms])", 200_000, &Options::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Execution);

    let no_time = Options { timeout: Some(std::time::Duration::ZERO), ..Options::default() };
    let e = db.promql_range_with("a", 0, 1_000_000, 1_000, &no_time).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let (_d, db) = data();
    for q in [
        format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        vec!["1"; 100_000].join(" + "),
        vec!["a"; 10_000].join(" or "),
        format!("{}1", "-".repeat(100_000)),
    ] {
        let e = db.promql_instant(&q, 0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadData);
        assert!(e.message.contains("too deeply nested"), "{e}");
    }
    // Just under the limit still evaluates, on a test thread's small stack.
    let q = vec!["1"; 500].join(" + ");
    assert_eq!(db.promql_instant(&q, 0).unwrap(), Value::Scalar(0, 500.0));
    let q = format!("{}1{}", "(".repeat(250), ")".repeat(250)) + &" * 1".repeat(240);
    assert_eq!(db.promql_instant(&q, 0).unwrap(), Value::Scalar(0, 1.0));
    // Operators inside strings and label values do not count.
    let q = format!("label_replace(vector(1), \"x\", \"{}\", \"\", \"\")", "+(".repeat(2000));
    assert!(db.promql_instant(&q, 0).is_ok());
}

#[test]
fn a_range_query_loads_each_selector_once() {
    let (_d, db) = data();
    // `a` holds 3 samples; 1,001 steps must load them once, not once per step.
    let three = Options { max_samples: 3, ..Options::default() };
    assert!(db.promql_range_with("a", 0, 1_000_000, 1_000, &three).is_ok());
    assert!(db.promql_range_with("rate(a[1m])", 0, 1_000_000, 1_000, &three).is_ok());
    // Two selectors, each loaded once: 6 samples.
    let six = Options { max_samples: 6, ..Options::default() };
    assert!(db.promql_range_with("a + a", 0, 1_000_000, 1_000, &six).is_ok());
    let e = db.promql_range_with("a + a", 0, 1_000_000, 1_000, &three).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Execution);
}

#[test]
fn one_time_selector_reads_chunk_metadata_as_a_full_read_would() {
    // Three sources per series: two segments (the second rewriting some times of
    // the first with other values) and the head, with staleness markers among
    // them and chunks of 1,024 samples, so a read time falls inside a chunk, at
    // its end, between chunks and between sources.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), crate::Options::default()).unwrap();
    let labels: Vec<Labels> = (0..3).map(|i| Labels::metric("m", [("i", i.to_string())]).unwrap()).collect();
    let write = |from: i64, to: i64, step: i64, v: f64| {
        let mut app = db.appender();
        for (k, l) in labels.iter().enumerate() {
            let mut t = from + k as i64 * 7_000;
            while t < to {
                let val = if (t / step) % 97 == 5 { STALE } else { v + (t / step) as f64 };
                app.append_labels(l, t, val).unwrap();
                t += step;
            }
        }
        app.commit().unwrap();
    };
    write(0, 30_000_000, 10_000, 0.0);
    db.flush().unwrap();
    write(20_000_000, 40_000_000, 20_000, 0.5);
    db.flush().unwrap();
    write(39_000_000, 45_000_000, 15_000, 0.25);
    // The multi-step path reads every sample of the window; the one-time path
    // reads metadata where it can. Step 1 of a two-step range query is read the
    // first way; an instant query at the same time the second way.
    let mut t = -1_000;
    while t < 46_000_000 {
        for q in ["m", "timestamp(m)"] {
            let full = match db.promql_range(q, t - 1, t, 1).unwrap() {
                Value::Matrix(series) => {
                    let mut v: Vec<(String, f64)> = series
                        .into_iter()
                        .filter_map(|s| s.points.iter().find(|p| p.0 == t).map(|p| (s.metric.to_string(), p.1)))
                        .collect();
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                    v
                }
                other => panic!("{other:?}"),
            };
            let one = match db.promql_instant(q, t).unwrap() {
                Value::Vector(v) => {
                    let mut v: Vec<(String, f64)> = v.into_iter().map(|s| (s.metric.to_string(), s.v)).collect();
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                    v
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(one, full, "{q} at {t}");
        }
        t += 333_337;
    }
}
