//! Range functions, extrapolation, counter resets, `*_over_time` and subqueries.

use super::*;

fn data() -> (tempfile::TempDir, Db) {
    db_with(&[
        // A counter with a reset between 20 s and 30 s.
        ("c", &[("job", "x")], &[(0.0, 0.0), (10.0, 10.0), (20.0, 20.0), (30.0, 5.0), (40.0, 15.0)]),
        ("g", &[("job", "x")], &[(10.0, 1.0), (20.0, 3.0), (30.0, 2.0)]),
        // A counter that starts high: extrapolation is not cut at a zero point.
        ("h", &[], &[(10.0, 100.0), (20.0, 110.0), (30.0, 120.0)]),
    ])
}

#[test]
fn rate_increase_with_reset_and_extrapolation() {
    let (_d, db) = data();
    // Window [0, 40] holds every sample: 15 - 0 + 20 (the reset) = 35 over 40 s.
    assert_one(&db, "increase(c[40s])", 40.0, 35.0);
    assert_one(&db, "rate(c[40s])", 40.0, 35.0 / 40.0);
    // Window [-5, 45]: the start is not extrapolated below the counter's zero
    // (the first sample is 0), the end is extrapolated by 5 s: 35 * 45 / 40.
    assert_one(&db, "increase(c[50s])", 45.0, 35.0 * 45.0 / 40.0);
    assert_one(&db, "rate(c[50s])", 45.0, 35.0 * 45.0 / 40.0 / 50.0);
    // h: window [5, 35], 20 over 20 s, 5 s to each edge (< 1.1 * 10 s): 20 * 30 / 20.
    assert_one(&db, "increase(h[30s])", 35.0, 30.0);
    // Window [-40, 60]: both edges farther than 1.1 average intervals, so half an
    // interval (5 s) each side: 20 * 30 / 20 again.
    assert_one(&db, "increase(h[100s])", 60.0, 30.0);
    // One sample in the window: no value.
    assert!(instant(&db, "rate(c[5s])", 40.0).is_empty());
    // The metric name is dropped.
    assert_eq!(instant(&db, "rate(c[40s])", 40.0)[0].0, "{job=\"x\"}");
}

#[test]
fn delta_irate_idelta_resets_changes() {
    let (_d, db) = data();
    // g over [5, 35]: 2 - 1 = 1 over 20 s, extrapolated 5 s each side: 1 * 30 / 20.
    assert_one(&db, "delta(g[30s])", 35.0, 1.5);
    assert_one(&db, "idelta(g[30s])", 35.0, -1.0);
    assert_one(&db, "irate(c[40s])", 40.0, 1.0);
    // The last two samples straddle the reset: 5 / 10 s.
    assert_one(&db, "irate(c[40s])", 30.0, 0.5);
    assert_one(&db, "resets(c[1m])", 40.0, 1.0);
    assert_one(&db, "changes(g[1m])", 35.0, 2.0);
    assert_one(&db, "changes(c[1m])", 40.0, 4.0);
}

#[test]
fn deriv_and_predict_linear() {
    let (_d, db) = data();
    // (10, 1), (20, 3), (30, 2): slope = cov / var = 10 / 200.
    assert_one(&db, "deriv(g[30s])", 35.0, 0.05);
    // Intercept at t = 35 s: 2 - 0.05 * (-15) = 2.75; 10 s ahead: 3.25.
    assert_one(&db, "predict_linear(g[30s], 10)", 35.0, 3.25);
    // Under `@` the window stays put and the intercept moves with each step:
    // 2.75 + 0.05 * (t - 35) + 0.5 at t = 35, 45, 55 s.
    let Value::Matrix(m) = db.promql_range("predict_linear(g[30s] @ 35, 10)", 35_000, 55_000, 10_000).unwrap() else {
        panic!()
    };
    let got: Vec<f64> = m[0].points.iter().map(|p| p.1).collect();
    assert!(got.len() == 3 && [3.25, 3.75, 4.25].iter().zip(&got).all(|(w, g)| approx(*w, *g)), "{got:?}");
    // A constant series has slope 0 exactly.
    let (_d2, db2) = db_with(&[("k", &[], &[(0.0, 4.0), (10.0, 4.0)])]);
    assert_one(&db2, "deriv(k[1m])", 10.0, 0.0);
    assert_one(&db2, "predict_linear(k[1m], 100)", 10.0, 4.0);
}

#[test]
fn over_time_family() {
    let (_d, db) = data();
    let t = 35.0;
    assert_one(&db, "avg_over_time(g[30s])", t, 2.0);
    assert_one(&db, "min_over_time(g[30s])", t, 1.0);
    assert_one(&db, "max_over_time(g[30s])", t, 3.0);
    assert_one(&db, "sum_over_time(g[30s])", t, 6.0);
    assert_one(&db, "count_over_time(g[30s])", t, 3.0);
    assert_one(&db, "last_over_time(g[30s])", t, 2.0);
    assert_one(&db, "present_over_time(g[30s])", t, 1.0);
    assert_one(&db, "stdvar_over_time(g[30s])", t, 2.0 / 3.0);
    assert_one(&db, "stddev_over_time(g[30s])", t, (2.0f64 / 3.0).sqrt());
    assert_one(&db, "quantile_over_time(0.5, g[30s])", t, 2.0);
    assert_one(&db, "quantile_over_time(0.25, g[30s])", t, 1.5);
    assert_one(&db, "quantile_over_time(2, g[30s])", t, f64::INFINITY);
    // last_over_time keeps the name, the others drop it.
    assert_eq!(instant(&db, "last_over_time(g[30s])", t)[0].0, "{__name__=\"g\", job=\"x\"}");
    assert_eq!(instant(&db, "max_over_time(g[30s])", t)[0].0, "{job=\"x\"}");
    // The window is closed at both ends in 2.42: [20, 30] holds two samples.
    assert_one(&db, "count_over_time(g[10s])", 30.0, 2.0);
    assert_eq!(
        instant(&db, "absent_over_time(nothing{job=\"x\", a=~\"b\"}[1m])", t),
        vec![("{job=\"x\"}".into(), 1.0)]
    );
    assert!(instant(&db, "absent_over_time(g[1m])", t).is_empty());
    assert_eq!(instant(&db, "absent_over_time(g[1m])", 200.0), vec![("{}".into(), 1.0)]);
}

#[test]
fn subqueries() {
    let (_d, db) = data();
    // Inner steps at the multiples of 10 s in [5, 35]: 10, 20, 30 -> g = 1, 3, 2.
    assert_one(&db, "max_over_time(g[30s:10s])", 35.0, 3.0);
    assert_one(&db, "sum_over_time(g[30s:10s])", 35.0, 6.0);
    // At 40 s the window [10, 40] has four inner steps; g at 40 comes from the lookback.
    assert_one(&db, "sum_over_time(g[30s:10s])", 40.0, 8.0);
    // A subquery over a range function.
    assert_one(&db, "max_over_time(rate(c[20s])[20s:10s])", 40.0, 1.0);
    assert_one(&db, "count_over_time(g[30s:10s] offset 10s)", 45.0, 3.0);
    assert_one(&db, "count_over_time(g[20s:10s] @ 20)", 1000.0, 2.0);
}

#[test]
fn range_functions_in_a_range_query() {
    let (_d, db) = data();
    let Value::Matrix(m) = db.promql_range("count_over_time(g[10s])", 0, 40_000, 10_000).unwrap() else { panic!() };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points, vec![(10_000, 1.0), (20_000, 2.0), (30_000, 2.0), (40_000, 1.0)]);
}

#[test]
fn same_labels_after_dropping_the_name_is_an_error() {
    let (_d, db) =
        db_with(&[("p", &[("j", "1")], &[(0.0, 1.0), (10.0, 2.0)]), ("q", &[("j", "1")], &[(0.0, 1.0), (10.0, 2.0)])]);
    let e = db.promql_instant("rate({__name__=~\"p|q\"}[1m])", 10_000).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Execution);
    assert_eq!(e.message, "vector cannot contain metrics with the same labelset");
    assert_eq!(instant(&db, "last_over_time({__name__=~\"p|q\"}[1m])", 10.0).len(), 2);
}
