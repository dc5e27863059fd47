//! `GET /query/summary` against a direct computation: per series and over all
//! series, percentiles by linear interpolation between closest ranks (NaN values
//! left out of min, max and the percentiles, counted, and making avg NaN), the
//! range inclusive at both ends, bad input named, and the read budget enforced.
#![cfg(feature = "server")]

use crate::support::server_util::{self, start, start_with, TestServer};
use serde_json::Value;
use strata::server::Limits;
use strata::Labels;

/// Writes `values[i]` at `1_700_000_000_000 + i * 1000` for each host.
fn write(s: &TestServer, hosts: &[(&str, Vec<f64>)]) {
    let mut app = s.db.appender();
    for (h, values) in hosts {
        let id = app.series(&Labels::metric("lat", [("host", *h)]).unwrap()).unwrap();
        for (i, v) in values.iter().enumerate() {
            app.append(id, 1_700_000_000_000 + i as i64 * 1000, *v).unwrap();
        }
    }
    app.commit().unwrap();
}

/// count, min, max, avg, p50, p95, p99, computed the plain way.
fn expect(values: &[f64]) -> [f64; 7] {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |q: f64| {
        if v.is_empty() {
            return f64::NAN;
        }
        let h = q * (v.len() - 1) as f64;
        let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
        v[lo] + (h - lo as f64) * (v[hi] - v[lo])
    };
    let avg = values.iter().sum::<f64>() / values.len() as f64;
    let (min, max) = (v.first().copied().unwrap_or(f64::NAN), v.last().copied().unwrap_or(f64::NAN));
    [values.len() as f64, min, max, avg, q(0.5), q(0.95), q(0.99)]
}

fn got(s: &Value) -> [f64; 7] {
    let f = |k: &str| match &s[k] {
        Value::String(t) if t == "NaN" => f64::NAN,
        v => v.as_f64().unwrap_or_else(|| panic!("{k}: {s}")),
    };
    [f("count"), f("min"), f("max"), f("avg"), f("p50"), f("p95"), f("p99")]
}

fn same(a: [f64; 7], b: [f64; 7]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(1.0))
}

#[test]
fn summaries_match_a_direct_computation() {
    let s = start();
    let a: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64 / 10.0).collect();
    let b: Vec<f64> = (0..37).map(|i| (i as f64).powi(2) - 300.0).collect();
    let c = vec![5.0, f64::NAN, 1.0];
    write(&s, &[("a", a.clone()), ("b", b.clone()), ("c", c.clone())]);
    let r = s.get("/query/summary?metric_name=lat&start_time=1700000000000&end_time=1700001000000");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["series_count"], 3);
    assert_eq!(j["start_time"], "2023-11-14T22:13:20Z");
    let series = j["series"].as_array().unwrap();
    for (k, (host, values)) in [("a", &a), ("b", &b), ("c", &c)].iter().enumerate() {
        assert_eq!(series[k]["labels"]["host"], *host);
        assert_eq!(series[k]["metric_name"], "lat");
        assert!(same(got(&series[k]["summary"]), expect(values)), "{host}: {} vs {:?}", series[k], expect(values));
    }
    // One NaN sample: counted, avg NaN, the percentiles over the rest.
    assert_eq!(series[2]["summary"]["avg"], "NaN");
    assert_eq!(series[2]["summary"]["p50"], 3.0);
    let all: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
    assert!(same(got(&j["overall"]), expect(&all)), "{}", j["overall"]);

    // Inclusive at both ends, labels and selector narrow it.
    let r = s.get("/query/summary?metric_name=lat&labels=%7B%22host%22:%22a%22%7D&start_time=1700000001000&end_time=1700000003000");
    let j = r.json();
    assert_eq!(j["series_count"], 1, "{j}");
    assert!(same(got(&j["overall"]), expect(&a[1..=3])), "{j}");
    let j = s.get("/query/summary?selector=lat%7Bhost%3D~%22a%7Cb%22%7D").json();
    assert_eq!(j["series_count"], 2, "{j}");
    assert!(same(got(&j["overall"]), expect(&a.iter().chain(&b).copied().collect::<Vec<_>>())), "{j}");
    // Nothing in range: count 0 and NaN.
    let j = s.get("/query/summary?metric_name=lat&start_time=1&end_time=2").json();
    assert_eq!((j["series_count"].as_u64(), j["overall"]["count"].as_u64()), (Some(0), Some(0)));
    assert_eq!(j["overall"]["p99"], "NaN");
}

#[test]
fn bad_summary_requests_are_named() {
    let s = start_with(server_util::opts(), Limits { max_query_samples: 10, ..Limits::default() }, None);
    write(&s, &[("a", (0..20).map(f64::from).collect())]);
    let r = s.get("/query/summary");
    assert_eq!((r.status, r.error().as_str()), (400, "missing query parameter metric_name (or selector)"));
    let r = s.get("/query/summary?metric_name=lat&start_time=yesterday");
    assert!(r.status == 400 && r.error().starts_with("start_time:"), "{}", r.text());
    let r = s.get("/query/summary?selector=lat%7B");
    assert!(r.status == 400 && r.error().starts_with("selector:"), "{}", r.text());
    let r = s.get("/query/summary?metric_name=lat");
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.error().contains("max_query_samples"), "{}", r.error());
    let r = s.get("/query/summary?metric_name=lat&end_time=1700000005000");
    assert_eq!(r.status, 200, "{}", r.text());
}
