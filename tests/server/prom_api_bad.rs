//! Bad input to Prometheus's query API: malformed expressions, huge ranges, tiny
//! steps, selectors that match every series, deep nesting and a query past its
//! deadline. Each gets Prometheus's HTTP code and `errorType` in bounded time
//! (generous bounds: this is not a speed test), the process's memory stays under
//! a generous cap, and the server answers normally afterwards.
#![cfg(feature = "server")]

use std::time::{Duration, Instant};

use strata::server::Limits;
use strata::Labels;

use crate::support::server_util::{opts, start, start_with, TestServer};

/// 2023-11-14T22:13:20Z, in seconds: the first sample.
const T0: i64 = 1_700_000_000;
/// Series and samples of the wide database: 2,000 series of 60 samples (15 min at 15 s).
const SERIES: usize = 2_000;
const POINTS: i64 = 60;
/// What any one bad request may take, far above what it needs.
const WALL: Duration = Duration::from_secs(10);

/// `up{job, instance}` and `cpu{...}` across SERIES series; `x` alone for small queries.
fn load_wide(s: &TestServer) {
    let mut app = s.db.appender();
    for n in 0..SERIES {
        let name = if n % 2 == 0 { "up" } else { "cpu" };
        let job = format!("job{}", n % 10);
        let inst = format!("i{n}");
        let l = Labels::metric(name, [("job", job.as_str()), ("instance", inst.as_str())]).unwrap();
        for i in 0..POINTS {
            app.append_labels(&l, (T0 + 15 * i) * 1000, (n as i64 + i) as f64).unwrap();
        }
    }
    let x = Labels::metric("x", [("k", "v")]).unwrap();
    for i in 0..POINTS {
        app.append_labels(&x, (T0 + 15 * i) * 1000, i as f64).unwrap();
    }
    app.commit().unwrap();
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends `params` as a form POST (long expressions do not fit a request line);
/// returns the status, the JSON body and the time taken.
fn post(s: &TestServer, path: &str, params: &str) -> (u16, serde_json::Value, Duration) {
    let began = Instant::now();
    let r = s.send("POST", path, &[("content-type", "application/x-www-form-urlencoded")], params.as_bytes());
    let took = began.elapsed();
    (r.status, r.json(), took)
}

/// The request fails with `code` and `kind` within WALL; returns the message.
fn fails(s: &TestServer, path: &str, params: &str, code: u16, kind: &str) -> String {
    let (status, j, took) = post(s, path, params);
    let what = &params[..params.len().min(120)];
    assert_eq!(
        (status, j["status"].as_str(), j["errorType"].as_str()),
        (code, Some("error"), Some(kind)),
        "{what}: {j}"
    );
    assert!(took < WALL, "{what} took {took:?}");
    j["error"].as_str().unwrap().to_string()
}

fn instant(expr: &str) -> String {
    format!("query={}&time={}", enc(expr), T0 + 15 * POINTS)
}

/// The server still evaluates a plain query afterwards.
fn still_answers(s: &TestServer) {
    let (status, j, _) = post(s, "/api/v1/query", &instant("sum(x)"));
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["data"]["result"][0]["value"][1], "59");
}

/// Resident memory of this process (the server runs in it), from /proc.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

#[test]
fn malformed_expressions_are_bad_data() {
    let s = start();
    load_wide(&s);
    for (expr, says) in [
        ("sum(", "unclosed left parenthesis"),
        ("1 +", ""),
        ("x[5m", ""),
        ("{}", "at least one non-empty matcher"),
        ("{k=\"\"}", "at least one non-empty matcher"),
        ("{__name__=~\".*\"}", "at least one non-empty matcher"),
        ("x{k=~\"(\"}", ""),
        ("foo(x)", "unknown function"),
        ("rate(x)", "rate"),
        ("\"s\" + 1", ""),
        ("x[0s]", ""),
        ("x[5m:0s]", ""),
        ("x[1e30]", ""),
        ("x @ 1e30", ""),
        ("sum by (x[5m]) (x)", ""),
        ("\u{0}\u{7f}\u{fffd}", ""),
    ] {
        let msg = fails(&s, "/api/v1/query", &instant(expr), 400, "bad_data");
        assert!(msg.contains(says), "{expr}: {msg}");
    }
    // A bad regular expression found in evaluation is `execution`, as in Prometheus.
    fails(&s, "/api/v1/query", &instant("label_replace(x, \"a\", \"b\", \"k\", \"(\")"), 422, "execution");
    // Missing or malformed parameters.
    fails(&s, "/api/v1/query", "time=1", 400, "bad_data");
    fails(&s, "/api/v1/query", "query=x&time=yesterday", 400, "bad_data");
    fails(&s, "/api/v1/query_range", "query=x&start=abc&end=1&step=1", 400, "bad_data");
    still_answers(&s);
}

#[test]
fn huge_ranges_and_tiny_steps() {
    let s = start();
    load_wide(&s);
    // A window of a century reads what there is, promptly.
    let (status, j, took) = post(&s, "/api/v1/query", &instant("count_over_time(x[100y])"));
    assert_eq!((status, &j["data"]["result"][0]["value"][1]), (200, &serde_json::json!("60")), "{j}");
    assert!(took < WALL, "x[100y] took {took:?}");
    let (status, j, took) = post(&s, "/api/v1/query", &instant("x offset 100y"));
    assert_eq!((status, j["data"]["result"].as_array().map(Vec::len)), (200, Some(0)), "{j}");
    assert!(took < WALL);
    // A range query of 100 years at 1 s, or 1 h at 1 ms, is over 11,000 points.
    let century = 100 * 365 * 86_400;
    for range in [format!("start={T0}&end={}&step=1", T0 + century), format!("start={T0}&end={}&step=0.001", T0 + 3600)]
    {
        let msg = fails(&s, "/api/v1/query_range", &format!("query=x&{range}"), 400, "bad_data");
        assert!(msg.contains("11,000 points"), "{msg}");
    }
    // Zero, negative and sub-millisecond steps; an end before the start.
    for step in ["0", "-1", "0.0001", "-1h"] {
        let msg = fails(
            &s,
            "/api/v1/query_range",
            &format!("query=x&start={T0}&end={}&step={step}", T0 + 60),
            400,
            "bad_data",
        );
        assert!(msg.contains("step") || msg.contains("11,000"), "{step}: {msg}");
    }
    fails(&s, "/api/v1/query_range", &format!("query=x&start={}&end={T0}&step=1", T0 + 60), 400, "bad_data");
    still_answers(&s);
}

#[test]
fn selectors_matching_everything_hit_the_sample_limit() {
    // 120,000 samples stored; the limit is 50,000.
    let limits = Limits { query_max_samples: 50_000, ..Limits::default() };
    let s = start_with(opts(), limits, None);
    load_wide(&s);
    let end = T0 + 15 * POINTS;
    for (path, params) in [
        ("/api/v1/query", instant("count_over_time({__name__=~\".+\"}[1h])")),
        ("/api/v1/query", instant("sum(rate({job=~\".*\", __name__=~\".+\"}[20m]))")),
        ("/api/v1/query_range", format!("query={}&start={T0}&end={end}&step=15", enc("{__name__=~\".+\"}"))),
        ("/api/v1/query_range", format!("query={}&start={T0}&end={end}&step=1", enc("{instance=~\"i.*\"}"))),
    ] {
        let msg = fails(&s, path, &params, 422, "execution");
        assert!(msg.contains("too many samples"), "{params}: {msg}");
    }
    // Under the limit, the same kind of selector answers: the last 5 minutes of 1,000 series.
    let (status, j, _) = post(&s, "/api/v1/query", &instant("count({__name__=~\"u.+\"})"));
    assert_eq!((status, &j["data"]["result"][0]["value"][1]), (200, &serde_json::json!("1000")), "{j}");
    if let Some(rss) = rss_bytes() {
        assert!(rss < 2 << 30, "resident memory {rss} bytes after the wide queries");
    }
    still_answers(&s);
}

#[test]
fn deep_nesting_is_refused_before_it_can_exhaust_a_stack() {
    let s = start();
    load_wide(&s);
    let n = 100_000;
    let parens = format!("{}x{}", "(".repeat(n), ")".repeat(n));
    let chain = format!("x{}", " + x".repeat(n));
    let calls = format!("{}x{}", "abs(".repeat(n), ")".repeat(n));
    let unary = format!("{}1", "-".repeat(n));
    for expr in [&parens, &chain, &calls, &unary] {
        let msg = fails(&s, "/api/v1/query", &instant(expr), 400, "bad_data");
        assert!(msg.contains("too deeply nested"), "{msg}");
    }
    // Nesting the parser takes, but with inner steps far beyond the sample limit:
    // refused before the steps are walked, not after.
    for expr in [
        "max_over_time(x[1d:1ms])",
        "max_over_time(max_over_time(x[1d:1ms])[1d:1ms])",
        "sum_over_time(rate(x[1y:1ms])[1y:1ms])",
    ] {
        let msg = fails(&s, "/api/v1/query", &instant(expr), 422, "execution");
        assert!(msg.contains("too many samples"), "{expr}: {msg}");
    }
    still_answers(&s);
}

#[test]
fn a_slow_query_times_out_with_the_servers_timeout() {
    let limits = Limits { query_timeout: Duration::from_millis(50), ..Limits::default() };
    let s = start_with(opts(), limits, None);
    load_wide(&s);
    // Every series at 1,800 inner steps: millions of lookups, far past 50 ms.
    let slow = "count(count_over_time({__name__=~\".+\"}[1h:2s]))";
    let msg = fails(&s, "/api/v1/query", &instant(slow), 503, "timeout");
    assert!(msg.contains("timed out"), "{msg}");
    let range = format!("query={}&start={T0}&end={}&step=1", enc(slow), T0 + 900);
    fails(&s, "/api/v1/query_range", &range, 503, "timeout");
    still_answers(&s);
    // A request's own `timeout` may shorten the server's, not lengthen it.
    let d = start();
    load_wide(&d);
    fails(&d, "/api/v1/query", &format!("{}&timeout=0.02", instant(slow)), 503, "timeout");
    fails(&d, "/api/v1/query", &format!("{}&timeout=1ms", instant(slow)), 503, "timeout");
    still_answers(&d);
}
