//! OpenTelemetry metrics in (OTLP/HTTP): hand-written OTLP/JSON requests checked
//! against Prometheus' translation (names, units, `_total`, buckets, quantiles,
//! `job`/`instance`/`target_info`, metadata, staleness, refusals as partial
//! success), and the official Python SDK's protobuf exporter writing to both paths,
//! its values read back. The SDK test needs `opentelemetry-sdk` and
//! `opentelemetry-exporter-otlp-proto-http` in `STRATA_OTLP_PYTHON` (default
//! `python3`); it skips without them unless `STRATA_REQUIRE_EXTERNAL=1`, which
//! `.ci/run` sets after installing them.
#![cfg(feature = "server")]

use crate::support::server_util::{start, TestServer};
use serde_json::{json, Value};
use std::process::Command;
use strata::{Labels, Matcher, MetricKind};

/// Every stored series whose name matches `re`, as `(labels, [(ts, value)])`.
fn series(s: &TestServer, re: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = s.db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::regex("__name__", re).unwrap()])
        .unwrap()
        .map(|r| {
            let (l, it) = r.unwrap();
            (l, it.map(|p| (p.ts, p.value)).collect())
        })
        .collect()
}

fn one(s: &TestServer, labels: &[(&str, &str)]) -> Vec<(i64, f64)> {
    let want = Labels::from_pairs(labels.iter().copied()).unwrap();
    let all = series(s, ".+");
    all.iter().find(|(l, _)| *l == want).map(|x| x.1.clone()).unwrap_or_else(|| {
        panic!("no series {want}; have {:?}", all.iter().map(|x| x.0.to_string()).collect::<Vec<_>>())
    })
}

const T: &str = "1700000000000000000"; // ns
const T_MS: i64 = 1_700_000_000_000;

fn request() -> Value {
    let kv = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    json!({"resourceMetrics": [{
        "resource": {"attributes": [kv("service.name", "api"), kv("service.instance.id", "host-1:80"),
                                    kv("k8s.pod.name", "api-7")]},
        "scopeMetrics": [{"scope": {"name": "lib"}, "metrics": [
            {"name": "http.requests", "unit": "{request}", "description": "Requests",
             "sum": {"aggregationTemporality": 2, "isMonotonic": true,
                     "dataPoints": [{"attributes": [kv("http.method", "GET")], "timeUnixNano": T, "asInt": "12"}]}},
            {"name": "queue.depth", "sum": {"aggregationTemporality": 2, "isMonotonic": false,
                     "dataPoints": [{"timeUnixNano": T, "asDouble": -2.5}]}},
            {"name": "bytes.sent", "unit": "By", "sum": {"aggregationTemporality": 1, "isMonotonic": true,
                     "dataPoints": [{"timeUnixNano": T, "asInt": 300}]}},
            {"name": "cpu.utilization", "unit": "1",
             "gauge": {"dataPoints": [{"attributes": [{"key": "cpu", "value": {"intValue": "0"}}],
                                       "timeUnixNano": T, "asDouble": 0.5},
                                      {"attributes": [{"key": "cpu", "value": {"intValue": "1"}}],
                                       "timeUnixNano": T, "flags": 1}]}},
            {"name": "rpc.duration", "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [
                {"timeUnixNano": T, "count": "6", "sum": 4.5, "bucketCounts": ["1", "2", "3"], "explicitBounds": [0.1, 1]}]}},
            {"name": "gc.pause", "unit": "ms", "summary": {"dataPoints": [
                {"timeUnixNano": T, "count": "10", "sum": 55, "quantileValues": [
                    {"quantile": 0.5, "value": 4}, {"quantile": 0.99, "value": 20}]}]}},
            {"name": "latency.exp", "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": []}},
            {"name": "no.time", "gauge": {"dataPoints": [{"asDouble": 1}]}}
        ]}]
    }]})
}

#[test]
fn otlp_json_is_translated_as_prometheus_does() {
    let s = start();
    let body = request().to_string();
    let r = s.send("POST", "/api/v1/otlp/v1/metrics", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    // Two metrics refused, the rest stored: OTLP's partial success.
    let j = r.json();
    let partial = &j["partialSuccess"];
    assert_eq!(partial["rejectedDataPoints"], "2", "{j}");
    let msg = partial["errorMessage"].as_str().unwrap();
    assert!(msg.contains("metric \"latency.exp\": exponential histograms are not stored"), "{msg}");
    assert!(msg.contains("metric \"no.time\": data point without time_unix_nano"), "{msg}");

    let target = [("job", "api"), ("instance", "host-1:80")];
    let with = |name: &str, extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![("__name__".into(), name.into())];
        v.extend(target.iter().chain(extra).map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };
    let get = |name: &str, extra: &[(&'static str, &'static str)]| {
        let pairs = with(name, extra);
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        one(&s, &refs)
    };
    assert_eq!(get("http_requests_total", &[("http_method", "GET")]), [(T_MS, 12.0)]);
    assert_eq!(get("queue_depth", &[]), [(T_MS, -2.5)]);
    // A delta sum: stored as sent, no _total; "bytes" is already a word of the name.
    assert_eq!(get("bytes_sent", &[]), [(T_MS, 300.0)]);
    assert_eq!(get("cpu_utilization_ratio", &[("cpu", "0")]), [(T_MS, 0.5)]);
    let stale = get("cpu_utilization_ratio", &[("cpu", "1")]);
    assert_eq!(stale[0].1.to_bits(), 0x7ff0_0000_0000_0002, "a point with no recorded value is a staleness marker");
    // Buckets cumulative, le as Prometheus writes it.
    assert_eq!(get("rpc_duration_seconds_bucket", &[("le", "0.1")]), [(T_MS, 1.0)]);
    assert_eq!(get("rpc_duration_seconds_bucket", &[("le", "1")]), [(T_MS, 3.0)]);
    assert_eq!(get("rpc_duration_seconds_bucket", &[("le", "+Inf")]), [(T_MS, 6.0)]);
    assert_eq!(get("rpc_duration_seconds_sum", &[]), [(T_MS, 4.5)]);
    assert_eq!(get("rpc_duration_seconds_count", &[]), [(T_MS, 6.0)]);
    assert_eq!(get("gc_pause_milliseconds", &[("quantile", "0.99")]), [(T_MS, 20.0)]);
    assert_eq!(get("gc_pause_milliseconds_count", &[]), [(T_MS, 10.0)]);
    assert_eq!(get("target_info", &[("k8s_pod_name", "api-7")]), [(T_MS, 1.0)]);
    assert!(series(&s, "latency.*|no.*").is_empty());

    let m = s.db.metadata("http_requests_total").expect("metadata stored");
    assert_eq!((m.kind, m.help.as_str()), (MetricKind::Counter, "Requests"));
    let m = s.db.metadata("rpc_duration_seconds").unwrap();
    assert_eq!((m.kind, m.unit.as_str()), (MetricKind::Histogram, "seconds"));
    assert_eq!(s.db.metadata("gc_pause_milliseconds").unwrap().kind, MetricKind::Summary);

    // VictoriaMetrics' path, an empty request, and malformed bodies.
    let r = s.send("POST", "/opentelemetry/v1/metrics", &[("Content-Type", "application/json")], b"{}");
    assert_eq!((r.status, r.json()), (200, json!({})));
    let r = s.send(
        "POST",
        "/opentelemetry/v1/metrics",
        &[("Content-Type", "application/json")],
        b"{\"resourceMetrics\": 3}",
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("resourceMetrics: expected an array"), "{}", r.error());
    let r = s.send("POST", "/api/v1/otlp/v1/metrics", &[("Content-Type", "application/x-protobuf")], b"\xff\xff\xff");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("invalid OTLP ExportMetricsServiceRequest protobuf"), "{}", r.error());
}

/// The Python interpreter with the OpenTelemetry SDK, or why there is none.
fn python() -> Result<String, String> {
    let py = std::env::var("STRATA_OTLP_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http";
    match crate::support::output(Command::new(&py).args(["-c", check])) {
        Ok(o) if o.status.success() => Ok(py),
        Ok(o) => Err(format!("{py} lacks the OpenTelemetry packages: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("cannot run {py}: {e}")),
    }
}

#[test]
fn the_opentelemetry_python_sdk_exports_to_both_paths() {
    let py = match python() {
        Ok(p) => p,
        Err(why) => {
            assert!(
                !crate::support::external_required(),
                "otlp_ingest cannot run: {why}; STRATA_REQUIRE_EXTERNAL is set"
            );
            eprintln!("SKIPPED the_opentelemetry_python_sdk_exports_to_both_paths: {why}");
            return;
        }
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp/export_metrics.py");
    for path in ["/api/v1/otlp/v1/metrics", "/opentelemetry/v1/metrics"] {
        let s = start();
        let out =
            crate::support::output(Command::new(&py).arg(script).arg(format!("http://{}{path}", s.addr))).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{path}: {stderr}");
        assert!(!stderr.contains("Failed to export"), "{path}: {stderr}");
        let job = [("job", "shop/checkout"), ("instance", "i-1")];
        // The SDK exports on flush and again on shutdown: the latest value counts.
        let get = |name: &str, extra: &[(&str, &str)]| -> Vec<f64> {
            let mut pairs: Vec<(&str, &str)> = vec![("__name__", name)];
            pairs.extend(job.iter().chain(extra).copied());
            one(&s, &pairs).last().map(|p| p.1).into_iter().collect()
        };
        assert_eq!(get("http_requests_total", &[("http_method", "GET")]), [5.0], "{path}");
        assert_eq!(get("http_requests_total", &[("http_method", "POST")]), [7.0]);
        assert_eq!(get("queue_depth", &[]), [6.0]);
        assert_eq!(get("process_cpu_utilization_ratio", &[("cpu", "0")]), [0.25]);
        let route = ("http_route", "/cart");
        let bucket = |le: &'static str| get("http_server_duration_milliseconds_bucket", &[route, ("le", le)]);
        assert_eq!(
            (bucket("5"), bucket("10"), bucket("100"), bucket("+Inf")),
            (vec![1.0], vec![3.0], vec![3.0], vec![4.0])
        );
        assert_eq!(get("http_server_duration_milliseconds_sum", &[route]), [267.5]);
        assert_eq!(get("http_server_duration_milliseconds_count", &[route]), [4.0]);
        let info = series(&s, "target_info");
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].0.get("deployment_environment"), Some("test"));
        assert_eq!(info[0].0.get("telemetry_sdk_language"), Some("python"));
        assert_eq!(info[0].0.get("job"), Some("shop/checkout"));
        let m = s.db.metadata("http_server_duration_milliseconds").expect("metadata");
        assert_eq!((m.kind, m.unit.as_str(), m.help.as_str()), (MetricKind::Histogram, "milliseconds", "Request time"));
        // Stamped with the SDK's clock: within the last minute.
        let ts = one(&s, &[("__name__", "queue_depth"), job[0], job[1]])[0].0;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((now - 60_000..=now).contains(&ts), "{ts} vs {now}");
    }
}
