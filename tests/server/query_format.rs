//! `POST /query` and `GET /query/raw` over a real socket: the compact point form
//! (`format=compact`) holds what the full form holds, NaN and ±Inf included, and
//! `tier: auto` answers an unaligned range from the rollup tiers with raw edges,
//! equal to the raw answer.
#![cfg(feature = "server")]

use crate::support::server_util::{start, TestServer};
use serde_json::{json, Value};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// An hour boundary in 2023: old enough to be rolled up, kept by the helper's
/// keep-everything retention.
const T0: i64 = 1_700_000_000_000 / HOUR * HOUR;

fn value(host: usize, i: i64) -> Value {
    match (host, i % 97) {
        (0, 5) => json!("NaN"),
        (0, 6) => json!("+Inf"),
        (1, 7) => json!("-Inf"),
        _ => json!(((i * 37 + host as i64 * 11) % 1000) as f64 / 10.0),
    }
}

/// `cpu{host}` for two hosts, one sample every 30 s for 6 hours, then compacted
/// so that the 5m and 1h tiers hold it.
fn server() -> TestServer {
    let s = start();
    let mut items = Vec::new();
    for host in 0..2 {
        for i in 0..6 * 120 {
            items.push(json!({"metric_name": "cpu", "value": value(host, i), "timestamp": T0 + i * 30_000,
                              "labels": {"host": format!("h{host}")}}));
        }
    }
    let r = s.post("/metrics/ingest", Value::Array(items).to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.post("/admin/compact", b"").status, 200);
    s
}

fn query(s: &TestServer, path: &str, body: Value) -> Value {
    let r = s.send("POST", path, &[("Content-Type", "application/json")], body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// A value as the answers write it: a number, or a string for NaN and ±Inf.
fn bits(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap().to_bits(),
        // Any NaN (`"NaN"`, or `"NaN(0x...)"` with its bits) counts as the one NaN here.
        Value::String(s) if s.starts_with("NaN") => f64::NAN.to_bits(),
        Value::String(s) if s == "+Inf" => f64::INFINITY.to_bits(),
        Value::String(s) if s == "-Inf" => f64::NEG_INFINITY.to_bits(),
        other => panic!("not a value: {other}"),
    }
}

#[test]
fn compact_points_hold_what_full_points_hold() {
    let s = server();
    let body = json!({"selector": "cpu", "start_time": T0, "end_time": T0 + 6 * HOUR, "function": "raw"});
    let full = query(&s, "/query", body.clone());
    let mut with_field = body.clone();
    with_field["format"] = json!("compact");
    let compact = query(&s, "/query", with_field);
    assert_eq!(compact, query(&s, "/query?format=compact", body.clone()));
    assert_eq!(compact["format"], "compact");
    assert!(full.get("format").is_none());
    let (fs, cs) = (full["series"].as_array().unwrap(), compact["series"].as_array().unwrap());
    assert_eq!(fs.len(), 2);
    let mut specials = 0;
    for (f, c) in fs.iter().zip(cs) {
        assert_eq!(f["labels"], c["labels"]);
        let (fp, cp) = (f["points"].as_array().unwrap(), c["points"].as_array().unwrap());
        assert_eq!(fp.len(), 720);
        assert_eq!(fp.len(), cp.len());
        for (f, c) in fp.iter().zip(cp) {
            assert_eq!(f["timestamp_ms"], c[0]);
            assert_eq!(bits(&f["value"]), bits(&c[1]));
            specials += usize::from(c[1].is_string());
        }
    }
    assert!(specials >= 3, "{specials}");
    // Everything but the points is the same answer.
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("format");
        for s in v["series"].as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("points");
        }
        v
    };
    assert_eq!(strip(full), strip(compact));
    // The query string and the body must agree; unknown forms are refused by name.
    let mut full_field = body.clone();
    full_field["format"] = json!("full");
    let r = s.send("POST", "/query?format=compact", &[], full_field.to_string().as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.error().contains("disagree"), "{}", r.error());
    let mut bad = body;
    bad["format"] = json!("csv");
    let r = s.send("POST", "/query", &[], bad.to_string().as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.error().contains("format: unknown format \"csv\""), "{}", r.error());

    // /query/raw: the samples grouped by series, as pairs.
    let range = format!("metric_name=cpu&start_time={T0}&end_time={}", T0 + 6 * HOUR);
    let full = s.get(&format!("/query/raw?{range}")).json();
    let compact = s.get(&format!("/query/raw?{range}&format=compact")).json();
    assert_eq!(full["count"], 1440);
    assert_eq!(compact["count"], 1440);
    assert_eq!(compact["series_count"], 2);
    let pairs: Vec<(Value, i64, u64)> = compact["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let l = s["labels"].clone();
            s["points"].as_array().unwrap().iter().map(move |p| (l.clone(), p[0].as_i64().unwrap(), bits(&p[1])))
        })
        .collect();
    let rows: Vec<(Value, i64, u64)> = full["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["labels"].clone(), d["timestamp_ms"].as_i64().unwrap(), bits(&d["value"])))
        .collect();
    assert_eq!(pairs, rows);
    assert_eq!(s.get(&format!("/query/raw?{range}&format=table")).status, 400);
}

#[test]
fn auto_answers_unaligned_ranges_from_the_tiers() {
    let s = server();
    // 00:13:20.250 to 05:47:10 (inclusive): aligned to no bucket.
    let (start, end) = (T0 + 13 * MIN + 20_250, T0 + 5 * HOUR + 47 * MIN + 10_000);
    for (function, step) in [("max", "1h"), ("count", "1h"), ("sum", "5m"), ("last", "2h"), ("increase", "1h")] {
        let body = |tier: &str| {
            json!({"selector": "cpu", "start_time": start, "end_time": end, "function": function,
                                 "step": step, "group_by": [], "tier": tier, "format": "compact"})
        };
        let auto = query(&s, "/query", body("auto"));
        let raw = query(&s, "/query", body("raw"));
        assert_eq!(raw["tier"], "raw");
        let want = if step == "5m" { "5m" } else { "1h" };
        assert_eq!(auto["tier"], want, "{function} {step}");
        let (a, r) = (&auto["series"][0]["points"], &raw["series"][0]["points"]);
        assert_eq!(a.as_array().unwrap().len(), r.as_array().unwrap().len());
        for (p, q) in a.as_array().unwrap().iter().zip(r.as_array().unwrap()) {
            assert_eq!(p[0], q[0]);
            let (x, y) = (f64::from_bits(bits(&p[1])), f64::from_bits(bits(&q[1])));
            assert!(
                x.to_bits() == y.to_bits() || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                "{function}: {x} vs {y}"
            );
        }
    }
    // Stddev cannot come from the tiers: the answer says raw.
    let body = json!({"selector": "cpu", "start_time": start, "end_time": end, "function": "stddev", "step": "1h"});
    assert_eq!(query(&s, "/query", body)["tier"], "raw");
}
