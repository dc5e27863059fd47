//! Functions over instant vectors and scalars.

use super::*;

fn data() -> (tempfile::TempDir, Db) {
    db_with(&[
        ("v", &[("i", "1")], &[(0.0, -2.5)]),
        ("v", &[("i", "2")], &[(0.0, 2.5)]),
        ("v", &[("i", "3")], &[(0.0, 9.0)]),
        ("bucket", &[("le", "0.1")], &[(0.0, 1.0)]),
        ("bucket", &[("le", "0.5")], &[(0.0, 3.0)]),
        ("bucket", &[("le", "+Inf")], &[(0.0, 4.0)]),
        // 2024-02-29T13:45:00Z
        ("date", &[], &[(0.0, 1_709_214_300.0)]),
        ("lab", &[("a", "x"), ("b", "y")], &[(0.0, 1.0)]),
    ])
}

fn values(db: &Db, q: &str) -> Vec<f64> {
    instant(db, q, 1.0).into_iter().map(|x| x.1).collect()
}

#[test]
fn math() {
    let (_d, db) = data();
    assert_eq!(values(&db, "abs(v)"), vec![2.5, 2.5, 9.0]);
    assert_eq!(values(&db, "ceil(v)"), vec![-2.0, 3.0, 9.0]);
    assert_eq!(values(&db, "floor(v)"), vec![-3.0, 2.0, 9.0]);
    assert_eq!(values(&db, "round(v)"), vec![-2.0, 3.0, 9.0]);
    assert_eq!(values(&db, "round(v, 2)"), vec![-2.0, 2.0, 10.0]);
    assert_eq!(values(&db, "sqrt(v{i=\"3\"})"), vec![3.0]);
    assert!(values(&db, "sqrt(v{i=\"1\"})")[0].is_nan());
    assert_eq!(values(&db, "sgn(v)"), vec![-1.0, 1.0, 1.0]);
    assert_eq!(values(&db, "exp(v * 0)"), vec![1.0, 1.0, 1.0]);
    assert_eq!(values(&db, "log10(v{i=\"3\"} + 1)"), vec![1.0]);
    assert_eq!(values(&db, "log2(v{i=\"3\"} - 1)"), vec![3.0]);
    assert_eq!(values(&db, "ln(v{i=\"3\"} * 0 + 1)"), vec![0.0]);
    assert_eq!(values(&db, "clamp(v, 0, 5)"), vec![0.0, 2.5, 5.0]);
    assert!(values(&db, "clamp(v, 5, 0)").is_empty());
    assert_eq!(values(&db, "clamp_min(v, 0)"), vec![0.0, 2.5, 9.0]);
    assert_eq!(values(&db, "clamp_max(v, 0)"), vec![-2.5, 0.0, 0.0]);
    assert!(values(&db, "clamp_max(v, NaN)").iter().all(|x| x.is_nan()));
    // Go's math.Min/Max: an infinity in the right direction beats NaN.
    assert_eq!(values(&db, "clamp_max(v * 0 - Inf, NaN)"), vec![f64::NEG_INFINITY; 3]);
    assert_eq!(values(&db, "clamp_min(v * 0 + Inf, NaN)"), vec![f64::INFINITY; 3]);
    assert!(values(&db, "clamp_min(v * 0 - Inf, NaN)").iter().all(|x| x.is_nan()));
    assert!(approx(values(&db, "cos(v{i=\"3\"} * 0)")[0], 1.0));
    assert!(approx(values(&db, "deg(v{i=\"3\"} * 0 + pi())")[0], 180.0));
    assert_eq!(instant(&db, "abs(v)", 1.0)[0].0, "{i=\"1\"}");
}

#[test]
fn time_vector_scalar_timestamp() {
    let (_d, db) = data();
    assert_one(&db, "time()", 12.0, 12.0);
    assert_one(&db, "timestamp(v{i=\"1\"})", 100.0, 0.0);
    assert_one(&db, "timestamp(abs(v{i=\"1\"}))", 100.0, 100.0);
    assert_eq!(instant(&db, "vector(3)", 1.0), vec![("{}".to_string(), 3.0)]);
    assert!(one(&db, "scalar(v)", 1.0).is_nan());
    assert_one(&db, "scalar(v{i=\"2\"})", 1.0, 2.5);
}

#[test]
fn sort_and_absent() {
    let (_d, db) = data();
    let Value::Vector(v) = db.promql_instant("sort_desc(v)", 1000).unwrap() else { panic!() };
    assert_eq!(v.iter().map(|x| x.v).collect::<Vec<_>>(), vec![9.0, 2.5, -2.5]);
    let Value::Vector(v) = db.promql_instant("sort(v)", 1000).unwrap() else { panic!() };
    assert_eq!(v.iter().map(|x| x.v).collect::<Vec<_>>(), vec![-2.5, 2.5, 9.0]);
    // NaN sorts last both ways.
    let (a, b) = (2.5f64.ln(), 9f64.ln());
    for (q, want) in [("sort(ln(v))", [a, b]), ("sort_desc(ln(v))", [b, a])] {
        let Value::Vector(v) = db.promql_instant(q, 1000).unwrap() else { panic!() };
        let got: Vec<f64> = v.iter().map(|x| x.v).collect();
        assert!(got[..2] == want && got[2].is_nan(), "{q}: {got:?}");
    }
    assert!(instant(&db, "absent(v)", 1.0).is_empty());
    assert_eq!(
        instant(&db, "absent(nothing{a=\"b\", c=~\"d\", e=\"f\", e=\"g\"})", 1.0),
        vec![("{a=\"b\"}".to_string(), 1.0)]
    );
    assert_eq!(instant(&db, "absent(sum(nothing))", 1.0), vec![("{}".to_string(), 1.0)]);
}

#[test]
fn labels() {
    let (_d, db) = data();
    assert_eq!(
        instant(&db, "label_replace(lab, \"c\", \"$1-$2\", \"a\", \"(.)(.*)\")", 1.0)[0].0,
        "{__name__=\"lab\", a=\"x\", b=\"y\", c=\"x-\"}"
    );
    // No match: unchanged. Empty result: label removed.
    assert_eq!(
        instant(&db, "label_replace(lab, \"c\", \"z\", \"a\", \"q\")", 1.0)[0].0,
        "{__name__=\"lab\", a=\"x\", b=\"y\"}"
    );
    assert_eq!(instant(&db, "label_replace(lab, \"a\", \"\", \"a\", \".*\")", 1.0)[0].0, "{__name__=\"lab\", b=\"y\"}");
    assert_eq!(
        instant(&db, "label_join(lab, \"j\", \"/\", \"a\", \"b\", \"missing\")", 1.0)[0].0,
        "{__name__=\"lab\", a=\"x\", b=\"y\", j=\"x/y/\"}"
    );
    assert_err(
        &db,
        "label_replace(lab, \"1x\", \"\", \"a\", \".*\")",
        ErrorKind::Execution,
        "invalid destination label name",
    );
    assert_err(
        &db,
        "label_replace(lab, \"c\", \"\", \"a\", \"(\")",
        ErrorKind::Execution,
        "invalid regular expression",
    );
    assert_err(
        &db,
        "label_replace(v, \"i\", \"same\", \"i\", \".*\")",
        ErrorKind::Execution,
        "vector cannot contain metrics with the same labelset",
    );
}

#[test]
fn histogram_quantile_classic_buckets() {
    let (_d, db) = data();
    // Rank 2 of 4 falls in (0.1, 0.5] holding 2: 0.1 + 0.4 * 1/2.
    assert_one(&db, "histogram_quantile(0.5, bucket)", 1.0, 0.3);
    // Rank 3.6 falls in the +Inf bucket: the highest finite bound.
    assert_one(&db, "histogram_quantile(0.9, bucket)", 1.0, 0.5);
    // Rank 0.5 in the first bucket, interpolated from 0.
    assert_one(&db, "histogram_quantile(0.125, bucket)", 1.0, 0.05);
    assert_one(&db, "histogram_quantile(-1, bucket)", 1.0, f64::NEG_INFINITY);
    assert!(one(&db, "histogram_quantile(0.5, bucket{le!=\"+Inf\"})", 1.0).is_nan());
    assert_eq!(instant(&db, "histogram_quantile(0.5, bucket)", 1.0)[0].0, "{}");
    // A NaN count: Go's bisection probes it, finds it not >= rank 2, and ends on
    // the +Inf bucket, so the answer is the highest finite bound.
    assert_one(&db, "histogram_quantile(0.5, bucket{le!=\"0.5\"} or bucket{le=\"0.5\"} * NaN)", 1.0, 0.5);
}

#[test]
fn dates() {
    let (_d, db) = data();
    for (f, want) in [
        ("day_of_month", 29.0),
        ("day_of_week", 4.0),
        ("day_of_year", 60.0),
        ("days_in_month", 29.0),
        ("hour", 13.0),
        ("minute", 45.0),
        ("month", 2.0),
        ("year", 2024.0),
    ] {
        assert_one(&db, &format!("{f}(date)"), 1.0, want);
    }
    // Without an argument: the evaluation time (1970-01-01 00:00:01, a Thursday).
    assert_one(&db, "year()", 1.0, 1970.0);
    assert_one(&db, "day_of_week()", 1.0, 4.0);
}

#[test]
fn unsupported_functions_are_named() {
    let (_d, db) = data();
    assert_err(&db, "histogram_count(v)", ErrorKind::BadData, "function histogram_count");
    assert_err(&db, "sort_by_label(v, \"i\")", ErrorKind::BadData, "function sort_by_label is not supported");
    assert_err(&db, "limitk(1, v)", ErrorKind::BadData, "limitk");
    assert_err(&db, "nope(v)", ErrorKind::BadData, "nope");
}
