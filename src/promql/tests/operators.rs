//! Aggregations and binary operators.

use super::*;

fn data() -> (tempfile::TempDir, Db) {
    db_with(&[
        ("m", &[("host", "a"), ("dc", "x")], &[(0.0, 1.0)]),
        ("m", &[("host", "b"), ("dc", "x")], &[(0.0, 2.0)]),
        ("m", &[("host", "c"), ("dc", "y")], &[(0.0, 4.0)]),
        ("n", &[("host", "a"), ("dc", "x")], &[(0.0, 10.0)]),
        ("n", &[("host", "c"), ("dc", "y")], &[(0.0, 20.0)]),
        ("k", &[("dc", "x"), ("role", "db")], &[(0.0, 100.0)]),
        ("k", &[("dc", "y"), ("role", "web")], &[(0.0, 1000.0)]),
    ])
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn aggregations() {
    let (_d, db) = data();
    assert_one(&db, "sum(m)", 1.0, 7.0);
    assert_eq!(instant(&db, "sum by (dc) (m)", 1.0), vec![(s("{dc=\"x\"}"), 3.0), (s("{dc=\"y\"}"), 4.0)]);
    assert_eq!(instant(&db, "avg by (dc) (m)", 1.0), vec![(s("{dc=\"x\"}"), 1.5), (s("{dc=\"y\"}"), 4.0)]);
    assert_eq!(instant(&db, "count without (host) (m)", 1.0), vec![(s("{dc=\"x\"}"), 2.0), (s("{dc=\"y\"}"), 1.0)]);
    assert_eq!(instant(&db, "max by (__name__) (m)", 1.0), vec![(s("{__name__=\"m\"}"), 4.0)]);
    assert_one(&db, "min(m)", 1.0, 1.0);
    assert_one(&db, "max(m)", 1.0, 4.0);
    assert_one(&db, "stdvar(m)", 1.0, 14.0 / 9.0);
    assert_one(&db, "stddev(m)", 1.0, (14.0f64 / 9.0).sqrt());
    assert_one(&db, "group(m)", 1.0, 1.0);
    assert_one(&db, "quantile(0.5, m)", 1.0, 2.0);
    assert_one(&db, "quantile(0.75, m)", 1.0, 3.0);
    assert_eq!(instant(&db, "topk(1, m)", 1.0), vec![(s("{__name__=\"m\", dc=\"y\", host=\"c\"}"), 4.0)]);
    assert_eq!(
        instant(&db, "bottomk by (dc) (1, m)", 1.0),
        vec![(s("{__name__=\"m\", dc=\"x\", host=\"a\"}"), 1.0), (s("{__name__=\"m\", dc=\"y\", host=\"c\"}"), 4.0)]
    );
    assert!(instant(&db, "topk(0, m)", 1.0).is_empty());
    assert_eq!(
        instant(&db, "count_values(\"v\", m)", 1.0),
        vec![(s("{v=\"1\"}"), 1.0), (s("{v=\"2\"}"), 1.0), (s("{v=\"4\"}"), 1.0)]
    );
    assert_eq!(
        instant(&db, "count_values by (dc) (\"v\", m * 0)", 1.0),
        vec![(s("{dc=\"x\", v=\"0\"}"), 2.0), (s("{dc=\"y\", v=\"0\"}"), 1.0)]
    );
    // topk's answer is in rank order.
    let Value::Vector(v) = db.promql_instant("topk(3, m)", 1000).unwrap() else { panic!() };
    assert_eq!(v.iter().map(|x| x.v).collect::<Vec<_>>(), vec![4.0, 2.0, 1.0]);
    assert_err(&db, "count_values(\"a-b\", m)", ErrorKind::Execution, "invalid label name");
}

#[test]
fn topk_ties_go_to_the_first_series_in_label_order() {
    // Created in the opposite order of their labels.
    let (_d, db) = db_with(&[
        ("t", &[("i", "z")], &[(0.0, 5.0)]),
        ("t", &[("i", "m")], &[(0.0, 5.0)]),
        ("t", &[("i", "a")], &[(0.0, 5.0)]),
    ]);
    assert_eq!(instant(&db, "topk(1, t)", 1.0), vec![(s("{__name__=\"t\", i=\"a\"}"), 5.0)]);
    assert_eq!(instant(&db, "bottomk(1, t)", 1.0), vec![(s("{__name__=\"t\", i=\"a\"}"), 5.0)]);
}

#[test]
fn arithmetic_and_comparisons_with_scalars() {
    let (_d, db) = data();
    assert_eq!(instant(&db, "m{host=\"a\"} * 2", 1.0), vec![(s("{dc=\"x\", host=\"a\"}"), 2.0)]);
    assert_eq!(instant(&db, "m > 1", 1.0).len(), 2);
    assert_eq!(instant(&db, "m > 1", 1.0)[0].0, "{__name__=\"m\", dc=\"x\", host=\"b\"}");
    // A comparison with the scalar on the left keeps the vector's value.
    assert_eq!(instant(&db, "3 > m", 1.0).iter().map(|x| x.1).collect::<Vec<_>>(), vec![1.0, 2.0]);
    let b = instant(&db, "m > bool 1", 1.0);
    assert_eq!(b.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0.0, 1.0, 1.0]);
    assert_eq!(b[0].0, "{dc=\"x\", host=\"a\"}");
    assert_one(&db, "2 > bool 1", 1.0, 1.0);
    assert_one(&db, "7 % 4 + 2 ^ 3", 1.0, 11.0);
    assert_one(&db, "-m{host=\"c\"} / 0", 1.0, f64::NEG_INFINITY);
}

#[test]
fn vector_matching() {
    let (_d, db) = data();
    assert_eq!(
        instant(&db, "n / m", 1.0),
        vec![(s("{dc=\"x\", host=\"a\"}"), 10.0), (s("{dc=\"y\", host=\"c\"}"), 5.0)]
    );
    assert_eq!(instant(&db, "n / on(host) m", 1.0), vec![(s("{host=\"a\"}"), 10.0), (s("{host=\"c\"}"), 5.0)]);
    assert_eq!(instant(&db, "n == bool ignoring(dc) m", 1.0).iter().map(|x| x.1).collect::<Vec<_>>(), vec![0.0, 0.0]);
    assert_eq!(instant(&db, "n > m", 1.0)[0].0, "{__name__=\"n\", dc=\"x\", host=\"a\"}");
    // Many-to-one must be explicit.
    assert_err(
        &db,
        "m * on(dc) k",
        ErrorKind::Execution,
        "multiple matches for labels: many-to-one matching must be explicit",
    );
    assert_eq!(
        instant(&db, "m * on(dc) group_left(role) k", 1.0),
        vec![
            (s("{dc=\"x\", host=\"a\", role=\"db\"}"), 100.0),
            (s("{dc=\"x\", host=\"b\", role=\"db\"}"), 200.0),
            (s("{dc=\"y\", host=\"c\", role=\"web\"}"), 4000.0)
        ]
    );
    assert_eq!(instant(&db, "k * on(dc) group_right m", 1.0).len(), 3);
    assert_err(
        &db,
        "k * on(dc) m",
        ErrorKind::Execution,
        "found duplicate series for the match group {dc=\"x\"} on the right hand-side of the operation",
    );
}

#[test]
fn set_operators() {
    let (_d, db) = data();
    assert_eq!(instant(&db, "m and n", 1.0).len(), 2);
    assert_eq!(instant(&db, "m and on(dc) k{dc=\"y\"}", 1.0), vec![(s("{__name__=\"m\", dc=\"y\", host=\"c\"}"), 4.0)]);
    assert_eq!(instant(&db, "m unless n", 1.0), vec![(s("{__name__=\"m\", dc=\"x\", host=\"b\"}"), 2.0)]);
    let or = instant(&db, "m or n", 1.0);
    assert_eq!(or.len(), 3);
    assert_eq!(instant(&db, "sum(m) by (dc) or on(dc) k", 1.0).len(), 2);
    assert_eq!(instant(&db, "n or on(host) m", 1.0).len(), 3);
}
