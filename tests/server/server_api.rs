//! The seed-004 JSON API over a real loopback socket: health, status, ingest
//! (single and batch), metric list, raw query, auth, limits and JSON errors.
#![cfg(feature = "server")]

use crate::support::server_util;
use crate::support::server_util::{start, start_with, TestServer};
use strata::server::Limits;
use strata::{Matcher, Options};

fn ingest(s: &TestServer, body: &str) -> server_util::Response {
    s.send("POST", "/metrics/ingest", &[("Content-Type", "application/json")], body.as_bytes())
}

fn raw_count(s: &TestServer, metric: &str) -> u64 {
    let r = s.get(&format!("/query/raw?metric_name={metric}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["count"].as_u64().unwrap()
}

#[test]
fn health_root_and_status() {
    let s = start();
    let r = s.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "running");
    let r = s.get("/health");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("healthy")));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(ingest(&s, r#"{"metric_name":"cpu","value":1,"timestamp":"1970-01-01T00:00:01Z"}"#).status, 200);
    let r = s.get("/db/status");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "connected");
    assert_eq!(j["series"], 1);
    assert_eq!(j["samples"], 1);
    assert_eq!(j["oldest"], "1970-01-01T00:00:01Z");
    assert!(j["disk_bytes"]["raw"].is_u64());
}

#[test]
fn ingest_single_batch_and_query_raw() {
    let s = start();
    // The seed's own example.
    let r = ingest(
        &s,
        r#"{"metric_name": "cpu_usage", "value": 75.5, "timestamp": "2025-12-03T12:00:00Z",
            "labels": {"host": "server1", "region": "us-west"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "success");
    assert_eq!(r.json()["timestamp"], "2025-12-03T12:00:00Z");
    let r = ingest(
        &s,
        r#"[{"metric_name":"cpu_usage","value":80,"timestamp":"2025-12-03T12:01:00Z","labels":{"host":"server1","region":"us-west"}},
            {"metric_name":"cpu_usage","value":"NaN","timestamp":1764763200000,"labels":{"host":"server2"}}]"#,
    );
    assert_eq!((r.status, r.json()["ingested"].as_u64()), (200, Some(2)), "{}", r.text());
    let r = ingest(&s, r#"{"metrics":[{"metric_name":"mem_used","value":-0.0,"labels":{"host":"server1"}}]}"#);
    assert_eq!(r.status, 200, "{}", r.text());

    let r = s.get(
        "/query/raw?metric_name=cpu_usage&start_time=2025-12-03T00:00:00Z&end_time=2025-12-03T23:59:59Z\
         &labels=%7B%22host%22:%22server1%22%7D",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["count"], 2);
    assert_eq!(j["data"][0]["timestamp"], "2025-12-03T12:00:00Z");
    assert_eq!(j["data"][0]["value"], 75.5);
    assert_eq!(j["data"][1]["value"], 80.0);
    assert_eq!(j["data"][0]["labels"]["region"], "us-west");
    let j = s.get("/query/raw?metric_name=cpu_usage&labels=%7B%22host%22:%22server2%22%7D").json();
    assert_eq!(j["data"][0]["value"], "NaN");
    assert_eq!(j["data"][0]["timestamp_ms"], 1_764_763_200_000i64);
    // Missing timestamp means now.
    let j = s.get("/query/raw?metric_name=mem_used").json();
    assert!(j["data"][0]["timestamp_ms"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(j["data"][0]["value"], -0.0);
}

#[test]
fn metrics_list_paginates_and_searches() {
    let s = start();
    let mut items = Vec::new();
    for (name, hosts) in [("cpu_usage", 3), ("cpu_temp", 1), ("mem_used", 2), ("disk_io", 1)] {
        for h in 0..hosts {
            items.push(format!(r#"{{"metric_name":"{name}","value":1,"timestamp":1,"labels":{{"host":"h{h}"}}}}"#));
        }
    }
    assert_eq!(ingest(&s, &format!("[{}]", items.join(","))).status, 200);
    let j = s.get("/metrics/list?page=1&page_size=2").json();
    assert_eq!(j["total"], 4);
    assert_eq!(j["total_pages"], 2);
    assert_eq!(j["metrics"][0]["metric_name"], "cpu_temp");
    assert_eq!(j["metrics"][1]["metric_name"], "cpu_usage");
    assert_eq!(j["metrics"][1]["series_count"], 3);
    let j = s.get("/metrics/list?page=2&page_size=2").json();
    assert_eq!(j["metrics"][1]["metric_name"], "mem_used");
    let j = s.get("/metrics/list?search=CPU").json();
    assert_eq!(j["total"], 2);
    assert_eq!(s.get("/metrics/list?page=0").status, 400);
    assert!(s.get("/metrics/list?page_size=x").error().contains("page_size"));
}

#[test]
fn ingest_errors_are_json_and_store_nothing() {
    let s = start();
    let r = ingest(&s, "{not json");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("invalid JSON"), "{}", r.error());
    let r = ingest(&s, r#"{"metric_name":"m","value":1,"timestamp":"yesterday"}"#);
    assert_eq!(r.status, 400);
    assert!(r.error().contains("timestamp") && r.error().contains("yesterday"), "{}", r.error());
    let r = ingest(&s, r#"{"value":1}"#);
    assert_eq!((r.status, r.error().as_str()), (400, "missing field metric_name"));
    let r = ingest(&s, r#"{"metric_name":"m","value":"abc"}"#);
    assert_eq!(r.status, 400);
    assert!(r.error().starts_with("value:"), "{}", r.error());
    let r = ingest(&s, r#"{"metric_name":"bad name","value":1}"#);
    assert_eq!(r.status, 422);
    assert_eq!(raw_count(&s, "m"), 0);
    // An invalid label in the third item refuses that item; the others are stored.
    let r = ingest(
        &s,
        r#"[{"metric_name":"m","value":1},{"metric_name":"m","value":2,"timestamp":5},
            {"metric_name":"m","value":3,"labels":{"bad-name":"x"}}]"#,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error(), "partial write: 1 of 3 points refused");
    let refused = &r.json()["refused_points"][0];
    assert_eq!(refused["item"], 2);
    assert!(refused["reason"].as_str().unwrap().starts_with("[2]: invalid label \"bad-name\""), "{refused}");
    let r = s.get("/query/raw?metric_name=m&start_time=2025-01-01T00:00:00Z&end_time=2024-01-01T00:00:00Z");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(s.get("/query/raw").error().contains("metric_name"));
    assert!(s.get("/query/raw?metric_name=m&labels=%5B1%5D").error().contains("labels"));
}

#[test]
fn unknown_routes_and_methods_get_json_errors() {
    let s = start();
    let r = s.get("/nope");
    assert_eq!((r.status, r.error().as_str()), (404, "no route for GET /nope"));
    let r = s.post("/health", b"");
    assert_eq!(r.status, 405);
    assert!(r.error().contains("not allowed"));
    let r = s.send("POST", "/metrics/ingest", &[("Content-Encoding", "br")], b"{}");
    assert_eq!(r.status, 415);
}

#[test]
fn bearer_token_guards_everything_but_health() {
    let s = start_with(server_util::opts(), Limits::default(), Some("s3cret"));
    assert_eq!(s.get("/health").status, 200);
    let r = s.get("/metrics/list");
    assert_eq!((r.status, r.error().as_str()), (401, "missing bearer token"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = s.send("GET", "/metrics/list", &[("Authorization", "Bearer wrong")], b"");
    assert_eq!((r.status, r.error().as_str()), (401, "invalid bearer token"));
    let r = s.send("GET", "/metrics/list", &[("Authorization", "Bearer s3cret")], b"");
    assert_eq!(r.status, 200);
    let r = s.send("POST", "/api/v2/write", &[("Authorization", "Token s3cret")], b"m v=1");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.send("POST", "/write", &[("Authorization", "Basic czNjcmV0")], b"m v=1");
    assert_eq!(r.status, 401);
}

#[test]
fn refuses_public_address_without_token() {
    let cfg = strata::server::ServeConfig { listen: "0.0.0.0:0".parse().unwrap(), ..Default::default() };
    let e = strata::server::run(cfg).unwrap_err();
    assert!(e.to_string().contains("without --auth-token-file"), "{e}");
}

#[test]
fn body_limits_answer_413_before_reading() {
    let limits = Limits { max_body_bytes: 2000, max_decompressed_bytes: 4000, ..Limits::default() };
    let s = start_with(server_util::opts(), limits, None);
    let big = format!(r#"{{"metric_name":"m","value":1,"labels":{{"a":"{}"}}}}"#, "x".repeat(2000));
    let r = ingest(&s, &big);
    assert_eq!(r.status, 413);
    assert!(r.error().contains("max_body_bytes"), "{}", r.error());
    // Without Content-Length (chunked), the cap holds while reading.
    let mut c = server_util::connect(s.addr);
    use std::io::{Read, Write};
    let mut req =
        String::from("POST /write HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for _ in 0..8 {
        req.push_str(&format!("{:x}\r\n{}\r\n", 300, &"m v=1 1\n".repeat(300)[..300]));
    }
    req.push_str("0\r\n\r\n");
    let _ = c.write_all(req.as_bytes());
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    assert_eq!(server_util::parse_response(&raw).status, 413);
    // A gzip bomb: ~1 KB that expands to 1 MiB, far past the 4000-byte cap.
    let bomb = server_util::gzip(&vec![b'\n'; 1 << 20]);
    assert!(bomb.len() < 2000, "{}", bomb.len());
    let r = s.send("POST", "/write", &[("Content-Encoding", "gzip")], &bomb);
    assert_eq!(r.status, 413);
    assert!(r.error().contains("max_decompressed_bytes"), "{}", r.error());
    // A gzip body within the caps is fine.
    let r = s.send("POST", "/write", &[("Content-Encoding", "gzip")], &server_util::gzip(b"gz v=2 1000000000"));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(s.db.latest(&[Matcher::eq("__name__", "gz_v")]).unwrap()[0].1.value, 2.0);
}

#[test]
fn label_and_request_limits() {
    let limits = Limits {
        max_labels_per_series: 3,
        max_label_value_len: 10,
        max_series_per_request: 2,
        max_samples_per_request: 4,
        ..Limits::default()
    };
    let s = start_with(server_util::opts(), limits, None);
    let r = ingest(&s, r#"{"metric_name":"m","value":1,"labels":{"a":"1","b":"2","c":"3"}}"#);
    assert_eq!(r.status, 422);
    assert!(r.error().contains("max_labels_per_series"), "{}", r.error());
    let r = ingest(&s, r#"{"metric_name":"m","value":1,"labels":{"a":"12345678901"}}"#);
    assert!(r.error().contains("max_label_value_len"), "{}", r.error());
    let r = s.post("/write", b"m,h=1 v=1\nm,h=2 v=1\nm,h=3 v=1\n");
    assert_eq!(r.status, 413);
    assert!(r.error().contains("line 3") && r.error().contains("max_series_per_request"), "{}", r.error());
    let r = s.post("/write", b"m a=1,b=2\nm a=3,b=4\nm a=5");
    assert_eq!(r.status, 413);
    assert!(r.error().contains("max_samples_per_request"), "{}", r.error());
    assert_eq!(raw_count(&s, "m_a"), 0);
}

#[test]
fn cardinality_cap_is_422_with_the_engine_text() {
    let s = start_with(server_util::opts().max_series(2), Limits::default(), None);
    assert_eq!(s.post("/write", b"m,h=1 v=1\nm,h=2 v=1").status, 204);
    let r = s.post("/write", b"m,h=3 v=1");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error(), "series limit of 2 reached");
}

#[test]
fn raw_query_budget() {
    let limits = Limits { max_query_samples: 5, ..Limits::default() };
    let s = start_with(
        Options::default()
            .retention(strata::RetentionPolicy::new(strata::TierDurations::forever()).unwrap())
            .background(false),
        limits,
        None,
    );
    assert_eq!(s.post("/write?precision=s", b"m v=1 1\nm v=2 2\nm v=3 3\n").status, 204);
    assert_eq!(raw_count(&s, "m_v"), 3);
    assert_eq!(s.post("/write?precision=s", b"m v=1 4\nm v=2 5\nm v=3 6\n").status, 204);
    let r = s.get("/query/raw?metric_name=m_v");
    assert_eq!(r.status, 422);
    assert!(r.error().contains("max_query_samples"), "{}", r.error());
    // Epoch seconds, as the points were written.
    let r = s.get("/query/raw?metric_name=m_v&start_time=2&end_time=4");
    assert_eq!(r.json()["count"], 3);
}

#[test]
fn self_metrics_in_prometheus_text() {
    let s = start();
    assert_eq!(s.post("/write", b"m v=1\nm w=2").status, 204);
    assert_eq!(s.get("/query/raw?metric_name=m_v").status, 200);
    let q = br#"{"metric_name":"m_v","function":"max","start_time":0,"end_time":9999999999999}"#;
    let r = s.post("/query", q);
    assert_eq!(r.status, 200, "{}", r.text());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let url =
        format!("/query/rollup?metric_name=m_v&start_time={}&end_time={}&window=1m", now - 3_600_000, now + 60_000);
    let r = s.get(&url);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/nope").status, 404);
    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let t = r.text();
    for want in [
        "strata_ingested_samples_total{protocol=\"influx\"} 2.0",
        "strata_http_requests_total{route=\"/write\",status=\"204\"} 1.0",
        "strata_http_requests_total{route=\"unmatched\",status=\"404\"} 1.0",
        "strata_query_duration_seconds_count{endpoint=\"raw\"} 1.0",
        "strata_query_duration_seconds_bucket{endpoint=\"raw\",le=\"+Inf\"} 1.0",
        "strata_query_duration_seconds_count{endpoint=\"query\"} 1.0",
        "strata_query_duration_seconds_count{endpoint=\"rollup\"} 1.0",
        "# TYPE strata_wal_fsyncs_total counter",
        "strata_head_series 2.0",
        "strata_head_samples 2.0",
        "strata_disk_bytes{tier=\"raw\"}",
        "strata_segment_samples{tier=\"1h\"}",
        "strata_writable 1.0",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
}

/// One rule for times (`strata::text::time`): an epoch number's magnitude says its
/// unit, in JSON ingest as in every parameter, and relative times work on
/// `POST /query` and `/export` as in the CLI.
#[test]
fn epoch_seconds_and_relative_times_everywhere() {
    let s = start();
    // Seconds, seconds with a fraction, and milliseconds: each stored as the ms it names.
    let r = ingest(&s, r#"{"metric_name":"sec","value":1,"timestamp":1796178100}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["timestamp"], "2026-12-02T02:21:40Z");
    let r = ingest(
        &s,
        r#"[{"metric_name":"sec","value":2,"timestamp":1796178100.25},
            {"metric_name":"sec","value":3,"timestamp":1796178100500},
            {"metric_name":"sec","value":4,"timestamp":"1796178101"}]"#,
    );
    assert_eq!((r.status, r.json()["ingested"].as_u64()), (200, Some(3)), "{}", r.text());
    let j = s.get("/query/raw?metric_name=sec&start_time=1796178100&end_time=1796178101.000").json();
    let stored: Vec<i64> = j["data"].as_array().unwrap().iter().map(|p| p["timestamp_ms"].as_i64().unwrap()).collect();
    assert_eq!(stored, [1_796_178_100_000, 1_796_178_100_250, 1_796_178_100_500, 1_796_178_101_000]);
    let r = ingest(&s, r#"{"metric_name":"sec","value":1,"timestamp":"soon"}"#);
    assert!(
        r.error().contains("timestamp: invalid time \"soon\"") && r.error().contains("epoch number"),
        "{}",
        r.error()
    );

    // Samples 2 h, 10 min and 2 min ago (epoch ms in the body).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let items: Vec<String> = [120, 10, 2]
        .iter()
        .map(|m| format!(r#"{{"metric_name":"rel","value":1,"timestamp":{}}}"#, now - m * 60_000))
        .collect();
    assert_eq!(ingest(&s, &format!("[{}]", items.join(","))).status, 200);
    let count = |start: serde_json::Value, end: serde_json::Value| {
        let body = serde_json::json!({"metric_name": "rel", "function": "count", "start_time": start, "end_time": end});
        let r = s.post("/query", body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["value"].as_f64().unwrap()
    };
    let three_hours_ago_s = (now - 3 * 3_600_000) / 1000;
    assert_eq!(count("-5m".into(), "now".into()), 1.0);
    assert_eq!(count("now-1h".into(), "now+1m".into()), 2.0);
    assert_eq!(count(three_hours_ago_s.into(), (now / 1000 + 60).into()), 3.0);
    assert_eq!(count(format!("{three_hours_ago_s}.5").into(), "now".into()), 3.0);
    let exported = |query: &str| {
        let r = s.get(&format!("/export?match=rel&{query}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let lines: Vec<serde_json::Value> = r.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        lines.iter().map(|l| l["timestamps"].as_array().unwrap().len()).sum::<usize>()
    };
    assert_eq!(exported("start=-5m"), 1);
    assert_eq!(exported("start=now-1h&end=now"), 2);
    assert_eq!(exported(&format!("start={three_hours_ago_s}")), 3);
    let r = s.get("/export?match=rel&start=now&end=-1h");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("is after end") && r.error().contains("Z)"), "{}", r.error());
}
