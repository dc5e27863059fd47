//! `strata dashboard --url`: one frame built from a real server's HTTP API (in
//! this process, on 127.0.0.1:0), and the errors a user sees when the server is
//! not there, wants a token, or both sources are given.
#![cfg(all(feature = "cli", feature = "server"))]

use crate::support::cli_support::{fails, ok, stderr, strata};
use crate::support::server_util::{opts, start, start_with, TestServer};
use serde_json::{json, Value};
use strata::server::Limits;

const MIN: i64 = 60_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Four series, one sample a minute for the last 30 minutes, through `POST /metrics/ingest`:
/// `cpu` on hosts a, b, c (host c runs hot at 95) and `mem_free` on host a.
fn ingest(s: &TestServer, token: Option<&str>) {
    let now = now_ms();
    let mut items: Vec<Value> = Vec::new();
    for i in 0..30 {
        let ts = now - i * MIN;
        for (host, v) in [("a", 10.0), ("b", 20.0 + i as f64), ("c", 95.0)] {
            items.push(json!({"metric_name": "cpu", "value": v, "timestamp": ts, "labels": {"host": host}}));
        }
        items.push(json!({"metric_name": "mem_free", "value": 512.0, "timestamp": ts, "labels": {"host": "a"}}));
    }
    let body = serde_json::to_vec(&json!({ "metrics": items })).unwrap();
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = s.send("POST", "/metrics/ingest", &headers, &body);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn once_renders_a_frame_from_the_server() {
    let s = start();
    ingest(&s, None);
    let url = format!("http://{}", s.addr);
    let out = ok(&["dashboard", "--url", &url, "--once", "--alert", "cpu>90", "--alert", "mem_free<100:50"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(&format!(" Strata dashboard — {url} — data to ")), "{out}");
    assert!(!lines[0].contains("data ends in the past"), "{out}");
    assert!(out.contains("series 4 │ samples 120 │"), "{out}");
    assert!(out.contains("● CRIT cpu>90  95 at cpu{host=\"c\"}"), "{out}");
    assert!(out.contains("● OK   mem_free<100:50  512 at mem_free{host=\"a\"}"), "{out}");
    // Metrics are listed by name: cpu first, averaged over its three series.
    assert!(out.contains(" cpu (1/2) "), "{out}");
    assert!(out.contains("last hour (1 min): min"), "{out}");
    assert!(out.contains("last day (15 min): min"), "{out}");
    let bars = |l: &&str| l.chars().filter(|c| "▁▂▃▄▅▆▇█".contains(*c)).count();
    assert!(lines.iter().map(bars).max().unwrap() > 50, "a sparkline row:\n{out}");
    // Five samples per series in the last 5 minutes (5 / 300 s); ties go to the
    // highest latest value: mem_free (512), then cpu on host c (95).
    // The table's title, then its header row, then the rows.
    let top = lines.iter().position(|l| l.contains("Top series by rate")).unwrap() + 1;
    assert!(lines[top + 1].contains("mem_free{host=\"a\"}") && lines[top + 1].contains("0.02/s"), "{out}");
    assert!(lines[top + 2].contains("cpu{host=\"c\"}") && lines[top + 2].contains("95.00"), "{out}");
    assert!(!out.contains('⚠'), "{out}");

    let out = ok(&["dashboard", "--url", &url, "--once", "--metric", "mem_free"]);
    assert!(out.contains(" mem_free (2/2) ") && out.contains("max 512.00"), "{out}");
    let err = fails(&["dashboard", "--url", &url, "--once", "--metric", "nope"]);
    assert!(err.contains(&format!("no metric named \"nope\" in {url}")), "{err}");
}

#[test]
fn a_refused_connection_names_the_url() {
    // A port that was just free: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let err = fails(&["dashboard", "--url", &url, "--once"]);
    assert!(err.contains(&format!("cannot reach the server at {url}")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_token_is_sent_from_the_file_and_a_missing_one_is_explained() {
    let s = start_with(opts(), Limits::default(), Some("s3cret"));
    ingest(&s, Some("s3cret"));
    let url = format!("http://{}", s.addr);
    let err = fails(&["dashboard", "--url", &url, "--once"]);
    assert!(err.contains(&format!("GET {url}/db/status answered 401")) && err.contains("--token-file"), "{err}");
    let token = s.dir.path().join("token");
    let out = ok(&["dashboard", "--url", &url, "--auth-token-file", token.to_str().unwrap(), "--once"]);
    assert!(out.contains("series 4 │ samples 120 │"), "{out}");
}

#[test]
fn data_and_url_are_exclusive() {
    let out = strata(&["dashboard", "--data", "./d", "--url", "http://127.0.0.1:1", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot be used with"), "{}", stderr(&out));
    let out = strata(&["dashboard", "--auth-token-file", "t", "--once"]);
    assert!(stderr(&out).contains("--url"), "{}", stderr(&out));
}

/// Over a server the selected metric's percentiles come from `GET /query/summary`
/// and expression alerts from `POST /api/v1/query`: the same figures as from a
/// directory. Job `api` rises 0.1 … 6.0 s, job `batch` cycles 1, 2, 3 s, 7 s apart;
/// the counters grow by 50 requests and 4 errors a sample.
#[test]
fn once_over_a_server_shows_percentiles_and_expression_alerts() {
    let s = start();
    let now = now_ms();
    let mut items: Vec<Value> = Vec::new();
    for i in 0..60i64 {
        let ts = now - (59 - i) * 7_000;
        let mut add = |name: &str, job: &str, v: f64| {
            items.push(json!({"metric_name": name, "value": v, "timestamp": ts, "labels": {"job": job}}));
        };
        add("task_duration_seconds", "api", 0.1 * (i + 1) as f64);
        add("task_duration_seconds", "batch", 1.0 + (i % 3) as f64);
        add("requests_total", "web", 10_000.0 + 50.0 * i as f64);
        add("errors_total", "web", 1_000.0 + 4.0 * i as f64);
    }
    let r = s.send("POST", "/metrics/ingest", &[], &serde_json::to_vec(&json!({ "metrics": items })).unwrap());
    assert_eq!(r.status, 200, "{}", r.text());
    let url = format!("http://{}", s.addr);
    let out = ok(&[
        "dashboard",
        "--url",
        &url,
        "--once",
        "--metric",
        "task_duration_seconds",
        "--alert",
        "p99(task_duration_seconds[5m]) > 5",
        "--alert",
        "rate(errors_total[5m]) / rate(requests_total[5m]) > 0.05:0.1",
        "--alert",
        "p50(nothing_here[5m]) > 1",
    ]);
    // All 120 samples: p99 interpolates between the 118th (5.8) and 119th (5.9) of 120.
    assert!(out.contains(" task_duration_seconds: last 1h, 2 series "), "{out}");
    assert!(out.contains("count 120 │ min 0.1 │ avg 2.525 │ p50 2.05 │ p95 5.405 │ p99 5.881 │ max 6"), "{out}");
    // The last 5 minutes of job api hold 1.8 … 6.0: p99 = 5.958.
    assert!(out.contains("● CRIT p99(task_duration_seconds[5m]) > 5  5.958 at {job=\"api\"}"), "{out}");
    assert!(out.contains("● WARN rate(errors_total[5m]) / rate(requests_total[5m]) > 0.05:0.1  0.08"), "{out}");
    assert!(out.contains("● ---- p50(nothing_here[5m]) > 1  no data"), "{out}");
    assert!(!out.contains('⚠'), "{out}");
}
