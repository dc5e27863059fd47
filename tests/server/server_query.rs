//! The query-layer endpoints of the seed-004 API over a real loopback socket:
//! `POST /query`, `GET /query/rollup`, `GET /rollups`, `GET /metrics/{name}/info`.
//! Data is ingested through the API, answers are checked against values computed
//! here from the same data, before and after the rollup tiers exist.
#![cfg(feature = "server")]

use crate::support::server_util;
use crate::support::server_util::{start, start_with, TestServer};
use serde_json::{json, Value};
use strata::server::Limits;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
/// Samples per series: one a minute for two hours.
const N: i64 = 120;

/// An hour boundary two days ago: inside the default 7-day raw retention.
fn base() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    (now - 2 * 24 * HOUR).div_euclid(HOUR) * HOUR
}

/// The value of sample `i` of each host.
fn value(host: &str, i: i64) -> f64 {
    match host {
        "a" => i as f64,
        "b" => 2.0 * i as f64,
        _ => 100.0 + (i % 7) as f64,
    }
}

fn dc(host: &str) -> &'static str {
    if host == "c" {
        "y"
    } else {
        "x"
    }
}

/// Ingests `cpu{host, dc}` for hosts a, b, c through `POST /metrics/ingest`.
/// The data is two days old, inside the default retention, so this server keeps the
/// default policy (the shared helper's servers keep everything).
fn server_with_data() -> (TestServer, i64) {
    let s = start_with(server_util::opts().retention(strata::RetentionPolicy::tiered()), Limits::default(), None);
    let t0 = base();
    let mut items = Vec::new();
    for host in ["a", "b", "c"] {
        for i in 0..N {
            items.push(json!({
                "metric_name": "cpu",
                "value": value(host, i),
                "timestamp": t0 + i * MIN,
                "labels": {"host": host, "dc": dc(host)},
            }));
        }
    }
    let r = s.post("/metrics/ingest", Value::Array(items).to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ingested"], 3 * N);
    (s, t0)
}

fn query(s: &TestServer, body: Value) -> server_util::Response {
    s.send("POST", "/query", &[("Content-Type", "application/json")], body.to_string().as_bytes())
}

fn query_ok(s: &TestServer, body: Value) -> Value {
    let r = query(s, body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn values(host: &str) -> Vec<f64> {
    (0..N).map(|i| value(host, i)).collect()
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let h = q * (s.len() - 1) as f64;
    let lo = h.floor() as usize;
    if lo + 1 >= s.len() {
        return s[lo];
    }
    s[lo] + (h - lo as f64) * (s[lo + 1] - s[lo])
}

fn by_host(j: &Value) -> std::collections::BTreeMap<String, Value> {
    j["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["labels"]["host"].as_str().unwrap_or("").to_string(), s.clone()))
        .collect()
}

#[test]
fn query_functions_match_direct_computation() {
    let (s, t0) = server_with_data();
    let t1 = t0 + 2 * HOUR;
    let a = values("a");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let stddev = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
    };
    let cases: Vec<(&str, f64)> = vec![
        ("avg", mean(&a)),
        ("sum", a.iter().sum()),
        ("min", 0.0),
        ("max", (N - 1) as f64),
        ("count", N as f64),
        ("first", 0.0),
        ("last", (N - 1) as f64),
        ("increase", (N - 1) as f64),
        // Both ends inclusive: [t0, t0 + 2h] spans 7200.001 s.
        ("rate", (N - 1) as f64 / 7200.001),
        ("stddev", stddev(&a)),
    ];
    for (function, want) in cases {
        // The seed's request shape, with RFC 3339 times.
        let j = query_ok(
            &s,
            json!({
                "metric_name": "cpu",
                "start_time": strata_rfc3339(t0),
                "end_time": strata_rfc3339(t1),
                "labels": {"host": "a"},
                "function": function,
            }),
        );
        assert_eq!(j["function"], function);
        assert_eq!(j["tier"], "raw", "{j}");
        assert_eq!(j["source"], "raw");
        assert_eq!(j["series_count"], 1);
        let got = j["series"][0]["value"].as_f64().unwrap();
        assert!(close(got, want), "{function}: got {got}, want {want}");
        assert!(close(j["value"].as_f64().unwrap(), want), "{function}: top-level value {j}");
        assert_eq!(j["series"][0]["labels"], json!({"host": "a", "dc": "x"}));
        assert_eq!(j["series"][0]["metric_name"], "cpu");
        assert_eq!(j["start_time_ms"], t0);
    }
    // Quantile, epoch-ms times.
    let j = query_ok(
        &s,
        json!({"metric_name": "cpu", "start_time": t0, "end_time": t1, "labels": {"host": "c"},
               "function": "quantile", "quantile": 0.99}),
    );
    let got = j["series"][0]["value"].as_f64().unwrap();
    assert!(close(got, quantile(&values("c"), 0.99)), "{got}");
    assert_eq!(j["quantile"], 0.99);

    // No labels: one value per series, and the top-level value over all of them.
    let j = query_ok(&s, json!({"metric_name": "cpu", "start_time": t0, "end_time": t1, "function": "avg"}));
    assert_eq!(j["series_count"], 3);
    let hosts = by_host(&j);
    for h in ["a", "b", "c"] {
        assert!(close(hosts[h]["value"].as_f64().unwrap(), mean(&values(h))), "{h}");
    }
    let all: Vec<f64> = ["a", "b", "c"].iter().flat_map(|h| values(h)).collect();
    assert!(close(j["value"].as_f64().unwrap(), mean(&all)), "{j}");

    // raw: every sample, with its timestamp.
    let j = query_ok(
        &s,
        json!({"metric_name": "cpu", "start_time": t0, "end_time": t0 + 10 * MIN, "labels": {"host": "b"},
               "function": "raw"}),
    );
    let pts = j["series"][0]["points"].as_array().unwrap();
    assert_eq!(pts.len(), 11);
    assert_eq!(pts[3]["timestamp_ms"], t0 + 3 * MIN);
    assert_eq!(pts[3]["value"], 6.0);
    assert_eq!(pts[3]["timestamp"], strata_rfc3339(t0 + 3 * MIN));
    assert!(j.get("value").is_none());

    // end_time is inclusive, as in `strata query`: [t0, t0 + 10m] holds 11 samples.
    let j = query_ok(
        &s,
        json!({"metric_name": "cpu", "start_time": t0, "end_time": t0 + 10 * MIN, "labels": {"host": "a"},
               "function": "count"}),
    );
    assert_eq!(j["value"], 11.0);
    // start_time == end_time is the one instant.
    let j = query_ok(
        &s,
        json!({"metric_name": "cpu", "start_time": t0, "end_time": t0, "labels": {"host": "a"}, "function": "count"}),
    );
    assert_eq!(j["value"], 1.0);
}

#[test]
fn query_step_group_by_top_k_and_selector() {
    let (s, t0) = server_with_data();
    let t1 = t0 + 2 * HOUR;
    // Step "30m", "1800s" and 1800000 ms are the same step.
    let mut answers = Vec::new();
    for step in [json!("30m"), json!("1800s"), json!(1_800_000)] {
        let j = query_ok(
            &s,
            json!({"metric_name": "cpu", "start_time": t0, "end_time": t1, "labels": {"host": "a"},
                   "function": "sum", "step": step}),
        );
        assert_eq!(j["step"], "30m");
        assert_eq!(j["step_ms"], 1_800_000);
        answers.push(j["series"].clone());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    let pts = answers[0][0]["points"].as_array().unwrap();
    assert_eq!(pts.len(), 4);
    for (k, p) in pts.iter().enumerate() {
        let k = k as i64;
        let want: f64 = (30 * k..30 * k + 30).map(|i| value("a", i)).sum();
        assert_eq!(p["timestamp_ms"], t0 + k * 30 * MIN);
        assert!(close(p["value"].as_f64().unwrap(), want));
    }

    // group_by dc: x = hosts a + b, y = host c.
    let j = query_ok(
        &s,
        json!({"metric_name": "cpu", "start_time": t0, "end_time": t1, "function": "max", "group_by": ["dc"]}),
    );
    assert_eq!(j["series_count"], 2);
    let groups: Vec<(Value, f64)> =
        j["series"].as_array().unwrap().iter().map(|s| (s["labels"].clone(), s["value"].as_f64().unwrap())).collect();
    assert_eq!(groups, vec![(json!({"dc": "x"}), 2.0 * (N - 1) as f64), (json!({"dc": "y"}), 106.0)]);
    assert!(j.get("value").is_none(), "grouped answers carry no top-level value");

    // group_by [] with a step: one series of all hosts; count per hour.
    let j = query_ok(
        &s,
        json!({"metric_name": "cpu", "start_time": t0, "end_time": t1, "function": "count", "group_by": [],
               "step": "1h"}),
    );
    assert_eq!(j["series_count"], 1);
    let pts: Vec<f64> =
        j["series"][0]["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect();
    assert_eq!(pts, vec![180.0, 180.0]);

    // top_k 2 by mean: b (119) then c (≈103); a (59.5) is cut.
    let j =
        query_ok(&s, json!({"metric_name": "cpu", "start_time": t0, "end_time": t1, "function": "avg", "top_k": 2}));
    let order: Vec<&str> =
        j["series"].as_array().unwrap().iter().map(|s| s["labels"]["host"].as_str().unwrap()).collect();
    assert_eq!(order, vec!["b", "c"]);
    // The top-level value still covers every selected series.
    let all: Vec<f64> = ["a", "b", "c"].iter().flat_map(|h| values(h)).collect();
    assert!(close(j["value"].as_f64().unwrap(), all.iter().sum::<f64>() / all.len() as f64));

    // A selector instead of metric_name + labels.
    let j =
        query_ok(&s, json!({"selector": "cpu{host=~\"a|c\"}", "start_time": t0, "end_time": t1, "function": "last"}));
    let hosts = by_host(&j);
    assert_eq!(hosts.keys().collect::<Vec<_>>(), vec!["a", "c"]);
    assert_eq!(hosts["a"]["value"], (N - 1) as f64);
    assert_eq!(hosts["c"]["value"], value("c", N - 1));
}

#[test]
fn tiers_answer_after_downsampling() {
    let (s, t0) = server_with_data();
    let t1 = t0 + 2 * HOUR;
    let body = |tier: &str, step: Option<&str>| {
        // Both ends inclusive: the range ends 1 ms before t1 to end on a bucket boundary.
        let mut b =
            json!({"metric_name": "cpu", "start_time": t0, "end_time": t1 - 1, "function": "avg", "tier": tier});
        if let Some(st) = step {
            b["step"] = json!(st);
        }
        b
    };
    // Before any rollup exists, auto answers from raw.
    let before = query_ok(&s, body("auto", None));
    assert_eq!(before["tier"], "raw");
    let r = s.get(&format!("/query/rollup?metric_name=cpu&start_time={t0}&end_time={t1}&window=5m"));
    assert_eq!(r.json()["tier"], "raw", "{}", r.text());

    s.db.flush().unwrap();
    assert!(s.db.downsample().unwrap() >= 2);

    // Aligned range, no step: the coarsest tier that covers it.
    let hour = query_ok(&s, body("auto", None));
    assert_eq!(
        (&hour["tier"], &hour["source"], &hour["requested_tier"]),
        (&json!("1h"), &json!("rollup_1h"), &json!("auto"))
    );
    let raw = query_ok(&s, body("raw", None));
    assert_eq!(raw["tier"], "raw");
    for (h, r) in by_host(&hour).values().zip(by_host(&raw).values()) {
        assert!(close(h["value"].as_f64().unwrap(), r["value"].as_f64().unwrap()));
    }
    // A 5m step rules out the hourly tier.
    let five = query_ok(&s, body("auto", Some("5m")));
    assert_eq!(five["tier"], "5m");
    let five_raw = query_ok(&s, body("raw", Some("5m")));
    assert_eq!(five["series"].as_array().unwrap().len(), 3);
    for (a, b) in five["series"].as_array().unwrap().iter().zip(five_raw["series"].as_array().unwrap()) {
        let (pa, pb) = (a["points"].as_array().unwrap(), b["points"].as_array().unwrap());
        assert_eq!(pa.len(), 24);
        for (x, y) in pa.iter().zip(pb) {
            assert_eq!(x["timestamp_ms"], y["timestamp_ms"]);
            assert!(close(x["value"].as_f64().unwrap(), y["value"].as_f64().unwrap()));
        }
    }
    // An explicit tier that cannot answer: 422.
    let r = query(&s, body("1h", Some("5m")));
    assert_eq!(r.status, 422, "{}", r.text());
    // Stddev needs raw samples even when the tiers exist.
    let mut b = body("auto", None);
    b["function"] = json!("stddev");
    assert_eq!(query_ok(&s, b)["tier"], "raw");

    // /query/rollup from each source, checked bucket by bucket for host a.
    for (window, width, tier) in [("1m", MIN, "raw"), ("5m", 5 * MIN, "5m"), ("1h", HOUR, "1h")] {
        let r = s.get(&format!(
            "/query/rollup?metric_name=cpu&start_time={t0}&end_time={t1}&window={window}&labels=%7B%22host%22:%22a%22%7D"
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        assert_eq!(
            (j["tier"].as_str(), j["window"].as_str(), j["window_ms"].as_i64()),
            (Some(tier), Some(window), Some(width))
        );
        assert_eq!(j["series_count"], 1);
        let buckets = j["series"][0]["buckets"].as_array().unwrap();
        let per = width / MIN;
        assert_eq!(buckets.len() as i64, N / per);
        assert_eq!(j["bucket_count"], N / per);
        for (k, b) in buckets.iter().enumerate() {
            let k = k as i64;
            let vs: Vec<f64> = (k * per..(k + 1) * per).map(|i| value("a", i)).collect();
            let sum: f64 = vs.iter().sum();
            assert_eq!(b["timestamp_ms"], t0 + k * width);
            assert_eq!(b["count"], per);
            assert!(close(b["sum"].as_f64().unwrap(), sum));
            assert!(close(b["avg"].as_f64().unwrap(), sum / per as f64));
            assert_eq!(b["min"], vs[0]);
            assert_eq!(b["max"], vs[vs.len() - 1]);
            assert_eq!(b["first"], vs[0]);
            assert_eq!(b["last"], vs[vs.len() - 1]);
        }
    }

    // /rollups: every tier, with what is stored in it.
    let r = s.get("/rollups");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let tiers = j["rollups"].as_array().unwrap();
    assert_eq!(tiers.iter().map(|t| t["tier"].as_str().unwrap()).collect::<Vec<_>>(), vec!["raw", "5m", "1h"]);
    assert_eq!(tiers[0]["samples"], 3 * N);
    assert_eq!(tiers[0]["retention"], "7d");
    assert_eq!(tiers[1]["resolution_ms"], 300_000);
    assert_eq!(tiers[1]["retention"], "30d");
    assert_eq!(tiers[2]["retention"], "365d");
    assert_eq!(tiers[1]["buckets"], 3 * 24);
    assert_eq!(tiers[2]["buckets"], 3 * 2);
    for t in tiers {
        assert!(t["disk_bytes"].as_u64().unwrap() > 0, "{t}");
    }
    assert_eq!(j["oldest_ms"], t0);
    assert_eq!(j["newest_ms"], t0 + (N - 1) * MIN);
    let r = s.get("/rollups?metric_name=cpu");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["metric"]["buckets"], json!({"5m": 72, "1h": 6}));
    assert_eq!(s.get("/rollups?metric_name=nope").status, 404);
}

#[test]
fn rollups_on_an_empty_database() {
    let s = start();
    let r = s.get("/rollups");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["rollups"][0]["samples"], 0);
    assert_eq!(j["oldest"], Value::Null);
    assert_eq!(j["windows"][0], json!({"window": "1m", "window_ms": 60_000, "computed_from": "raw"}));
}

#[test]
fn metric_info_and_unknown_metric() {
    let (s, t0) = server_with_data();
    let r = s.get("/metrics/cpu/info");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["metric_name"], "cpu");
    assert_eq!(j["series_count"], 3);
    assert_eq!(j["label_names"], json!(["dc", "host"]));
    assert_eq!(j["labels"], json!({"dc": ["x", "y"], "host": ["a", "b", "c"]}));
    assert_eq!(j["first_timestamp_ms"], t0);
    assert_eq!(j["first_timestamp"], strata_rfc3339(t0));
    assert_eq!(j["last_timestamp_ms"], t0 + (N - 1) * MIN);
    assert_eq!(j["sample_count"], 3 * N);

    let r = s.get("/metrics/nope/info");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.error().contains("nope"), "{}", r.text());
}

#[test]
fn query_errors_name_the_problem() {
    let (s, t0) = server_with_data();
    let t1 = t0 + HOUR;
    let base = json!({"metric_name": "cpu", "start_time": t0, "end_time": t1, "function": "avg"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (with("function", json!("median")), "function"),
        (with("step", json!("5x")), "step"),
        (with("step", json!("0s")), "step"),
        (with("step", json!(-5)), "step"),
        (with("start_time", json!(t1 + 1)), "start_time"),
        (with("end_time", json!(t0 - 1)), "start_time"),
        (with("start_time", json!("yesterday")), "start_time"),
        (with("tier", json!("10m")), "tier"),
        (with("top_k", json!(0)), "top_k"),
        (with("function", json!("quantile")), "quantile"),
        (with("quantile", json!(1.5)), "quantile"),
        (with("labels", json!({"host": 1})), "labels.host"),
        (with("selector", json!("cpu{")), "selector"),
        (with("funtion", json!("avg")), "funtion"),
        (json!({"start_time": t0, "end_time": t1}), "metric_name"),
        (json!({"metric_name": "cpu", "end_time": t1}), "start_time"),
        (json!({"selector": "cpu{", "start_time": t0, "end_time": t1}), "selector"),
        (
            json!({"metric_name": "cpu", "start_time": t0, "end_time": t1, "function": "raw", "group_by": ["host"]}),
            "group_by",
        ),
    ];
    for (body, field) in cases {
        let r = query(&s, body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.error().contains(field), "{body}: {} should name {field}", r.error());
    }
    let r = s.send("POST", "/query", &[], b"{not json");
    assert_eq!(r.status, 400);
    // An explicit rollup tier on an unaligned range: the engine refuses it.
    let r = query(&s, with("tier", json!("5m")).tap(|b| b["start_time"] = json!(t0 + 1)));
    assert_eq!(r.status, 422, "{}", r.text());
    // An unknown metric answers an empty result, not an error.
    let j = query_ok(&s, with("metric_name", json!("nope")));
    assert_eq!((j["series_count"].as_u64(), &j["value"]), (Some(0), &Value::Null));

    // /query/rollup parameters.
    for (path, field) in [
        (format!("/query/rollup?start_time={t0}&end_time={t1}"), "metric_name"),
        (format!("/query/rollup?metric_name=cpu&start_time={t0}&end_time={t1}&window=10m"), "window"),
        (format!("/query/rollup?metric_name=cpu&start_time={t1}&end_time={t0}"), "start_time"),
        (format!("/query/rollup?metric_name=cpu&end_time={t0}"), "start_time"),
        (format!("/query/rollup?metric_name=cpu&start_time={t0}&end_time={t1}&labels=nope"), "labels"),
    ] {
        let r = s.get(&path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.error().contains(field), "{path}: {}", r.error());
    }
}

#[test]
fn query_budget_is_enforced() {
    let limits = Limits { max_query_samples: 50, ..Limits::default() };
    let s = start_with(server_util::opts(), limits, None);
    let t0 = base();
    let items: Vec<Value> =
        (0..N).map(|i| json!({"metric_name": "m", "value": i, "timestamp": t0 + i * MIN})).collect();
    assert_eq!(s.post("/metrics/ingest", Value::Array(items).to_string().as_bytes()).status, 200);
    let q = |f: &str, step: Option<&str>| {
        let mut b = json!({"metric_name": "m", "start_time": t0, "end_time": t0 + 2 * HOUR, "function": f});
        if let Some(st) = step {
            b["step"] = json!(st);
        }
        query(&s, b)
    };
    // 120 raw samples, or 120 one-minute buckets, exceed 50.
    for r in [q("raw", None), q("avg", Some("1m"))] {
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(r.error().contains("max_query_samples"), "{}", r.error());
    }
    // An aggregate is a single point per series: within budget.
    assert_eq!(q("avg", None).status, 200);
    assert_eq!(q("avg", Some("5m")).status, 200);
    let r = s.get(&format!("/query/rollup?metric_name=m&start_time={t0}&end_time={}&window=1m", t0 + 2 * HOUR));
    assert_eq!(r.status, 422, "{}", r.text());
}

/// `2025-12-03T12:00:00Z` for whole seconds (all these tests use), as the server writes it.
fn strata_rfc3339(ms: i64) -> String {
    assert_eq!(ms % 1000, 0);
    let secs = ms / 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

/// A repeated `POST /query` reads sealed blocks from the query cache, gives the same
/// answer, and `/metrics` shows the cache's counters and budget.
#[test]
fn the_query_cache_serves_a_repeated_query_and_shows_in_metrics() {
    let (s, t0) = server_with_data();
    s.db.flush().unwrap();
    s.db.downsample().unwrap();
    // Unaligned, so the 5-minute tier answers the interior and raw samples the edges.
    let body = json!({"metric_name": "cpu", "start_time": t0 + 4_321, "end_time": t0 + 100 * MIN + 4_321,
                      "function": "max", "step": "5m", "tier": "auto"});
    let first = query_ok(&s, body.clone());
    let misses = s.db.query_cache_stats().misses;
    assert!(misses > 0, "{:?}", s.db.query_cache_stats());
    assert_eq!(query_ok(&s, body), first);
    let stats = s.db.query_cache_stats();
    assert!(stats.hits > 0 && stats.misses == misses, "{stats:?}");
    let m = s.get("/metrics").text();
    let value = |name: &str| {
        let line = m.lines().find(|l| l.split(' ').next() == Some(name));
        line.and_then(|l| l.split(' ').nth(1)).and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(value("strata_query_cache_hits_total"), Some(stats.hits as f64));
    assert_eq!(value("strata_query_cache_misses_total"), Some(misses as f64));
    assert_eq!(value("strata_query_cache_max_bytes"), Some(67108864.0));
    for name in
        ["strata_query_cache_evictions_total", "strata_query_cache_invalidations_total", "strata_query_cache_bytes"]
    {
        assert!(m.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} not in /metrics");
    }
}
