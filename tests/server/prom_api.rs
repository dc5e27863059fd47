//! Prometheus's query API (`/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/<name>/values`, `metadata`, `status/*`, and the empty answers): its JSON
//! shapes and error codes on hand-written data, `promtool query` against it, and a
//! replay of the requests Grafana's Prometheus data source sends. The promtool test
//! skips when the binary is absent, unless `STRATA_REQUIRE_EXTERNAL=1`: then it fails.
#![cfg(feature = "server")]

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use strata::server::Limits;
use strata::Labels;

use crate::support::server_util::{opts, start, start_with, TestServer};

/// 2023-11-14T22:13:20Z, in seconds.
const T0: i64 = 1_700_000_000;

/// `cpu{host=a}` and `cpu{host=b}` every 15 s for 10 min (a: 0,1,2..; b: 10×), and
/// `mem{host=a}` once.
fn load(s: &TestServer) {
    let mut app = s.db.appender();
    let a = Labels::metric("cpu", [("host", "a"), ("dc", "x")]).unwrap();
    let b = Labels::metric("cpu", [("host", "b"), ("dc", "y")]).unwrap();
    for i in 0..40i64 {
        app.append_labels(&a, (T0 + 15 * i) * 1000, i as f64).unwrap();
        app.append_labels(&b, (T0 + 15 * i) * 1000, 10.0 * i as f64).unwrap();
    }
    app.append_labels(&Labels::metric("mem", [("host", "a")]).unwrap(), T0 * 1000, 0.5).unwrap();
    app.commit().unwrap();
}

fn ok(s: &TestServer, path: &str) -> Value {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    let j = r.json();
    assert_eq!(j["status"], "success", "{path}: {j}");
    j["data"].clone()
}

fn form(s: &TestServer, path: &str, body: &str) -> Value {
    let r = s.send("POST", path, &[("content-type", "application/x-www-form-urlencoded")], body.as_bytes());
    assert_eq!(r.status, 200, "{path} {body}: {}", r.text());
    r.json()["data"].clone()
}

fn error(s: &TestServer, path: &str) -> (u16, String, String) {
    let r = s.get(path);
    let j = r.json();
    assert_eq!(j["status"], "error", "{path}: {j}");
    (r.status, j["errorType"].as_str().unwrap().to_string(), j["error"].as_str().unwrap().to_string())
}

#[test]
fn instant_queries_answer_in_prometheus_shapes() {
    let s = start();
    load(&s);
    let t = T0 + 150; // sample 10 of each cpu series
    let d = ok(&s, &format!("/api/v1/query?query=cpu&time={t}"));
    assert_eq!(d["resultType"], "vector");
    assert_eq!(
        d["result"],
        json!([
            {"metric": {"__name__": "cpu", "dc": "x", "host": "a"}, "value": [t, "10"]},
            {"metric": {"__name__": "cpu", "dc": "y", "host": "b"}, "value": [t, "100"]},
        ])
    );
    // Fractional seconds and RFC 3339 are both Prometheus times.
    let d = ok(&s, &format!("/api/v1/query?query=sum(cpu)&time={t}.5"));
    assert_eq!(d["result"][0]["value"], json!([t as f64 + 0.5, "110"]));
    let d = ok(&s, "/api/v1/query?query=sum(cpu)%2F3&time=2023-11-14T22:15:50Z");
    assert_eq!(d["result"][0]["value"], json!([t, "36.666666666666664"]));
    let d = ok(&s, &format!("/api/v1/query?query=1%2F0&time={t}"));
    assert_eq!(d, json!({"resultType": "scalar", "result": [t, "+Inf"]}));
    let d = ok(&s, &format!("/api/v1/query?query=%22hi%22&time={t}"));
    assert_eq!(d, json!({"resultType": "string", "result": [t, "hi"]}));
    let d = ok(&s, &format!("/api/v1/query?query=cpu%7Bhost%3D%22a%22%7D%5B30s%5D&time={t}"));
    assert_eq!(d["resultType"], "matrix");
    // Prometheus 2.42's range selectors are closed at both ends: t - 30 is in.
    assert_eq!(d["result"][0]["values"], json!([[t - 30, "8"], [t - 15, "9"], [t, "10"]]));
}

#[test]
fn range_queries_and_form_posts() {
    let s = start();
    load(&s);
    let (start, end) = (T0 + 60, T0 + 120);
    let d = ok(&s, &format!("/api/v1/query_range?query=cpu%7Bhost%3D%22b%22%7D&start={start}&end={end}&step=30s"));
    assert_eq!(d["resultType"], "matrix");
    assert_eq!(
        d["result"],
        json!([{"metric": {"__name__": "cpu", "dc": "y", "host": "b"},
                "values": [[start, "40"], [start + 30, "60"], [end, "80"]]}])
    );
    // Form body merged with the query string; float seconds as the step.
    let d = form(&s, "/api/v1/query_range?step=60", &format!("query=sum+by+(dc)(cpu)&start={start}&end={end}"));
    assert_eq!(d["result"].as_array().unwrap().len(), 2);
    assert_eq!(d["result"][0], json!({"metric": {"dc": "x"}, "values": [[start, "4"], [end, "8"]]}));
    let d = form(&s, "/api/v1/query", &format!("query=count(cpu)&time={start}"));
    assert_eq!(d["result"], json!([{"metric": {}, "value": [start, "2"]}]));
}

#[test]
fn errors_carry_prometheus_error_types_and_codes() {
    let s = start();
    load(&s);
    let (code, kind, msg) = error(&s, "/api/v1/query?query=sum(");
    assert_eq!((code, kind.as_str()), (400, "bad_data"), "{msg}");
    let (code, kind, msg) = error(&s, "/api/v1/query?query=cpu&time=now-1h");
    assert_eq!((code, kind.as_str()), (400, "bad_data"));
    assert!(msg.contains("invalid parameter \"time\""), "{msg}");
    let (code, _, msg) = error(&s, &format!("/api/v1/query_range?query=cpu&start={T0}&end={}&step=1ms", T0 + 3600));
    assert_eq!(code, 400);
    assert!(msg.contains("11,000 points"), "{msg}");
    let (code, _, msg) = error(&s, &format!("/api/v1/query_range?query=cpu&start={T0}&end={T0}"));
    assert_eq!(code, 400);
    assert!(msg.contains("\"step\""), "{msg}");
    // Many-to-many matching fails in evaluation: 422 execution.
    let (code, kind, _) = error(&s, &format!("/api/v1/query?query=cpu+%2B+on()+cpu&time={}", T0 + 60));
    assert_eq!((code, kind.as_str()), (422, "execution"));

    // Too many samples for the server's limit.
    let limits = Limits { query_max_samples: 5, ..Limits::default() };
    let small = start_with(opts(), limits, None);
    load(&small);
    let (code, kind, msg) =
        error(&small, &format!("/api/v1/query_range?query=cpu&start={T0}&end={}&step=15", T0 + 600));
    assert_eq!((code, kind.as_str()), (422, "execution"), "{msg}");
    assert!(msg.contains("too many samples"), "{msg}");
}

#[test]
fn series_labels_and_values_follow_match_and_time() {
    let s = start();
    load(&s);
    let d = ok(&s, "/api/v1/series?match[]=cpu%7Bhost%3D%22a%22%7D&match[]=mem");
    assert_eq!(d, json!([{"__name__": "cpu", "dc": "x", "host": "a"}, {"__name__": "mem", "host": "a"}]));
    let (code, kind, _) = error(&s, "/api/v1/series");
    assert_eq!((code, kind.as_str()), (400, "bad_data"));
    assert_eq!(ok(&s, "/api/v1/labels"), json!(["__name__", "dc", "host"]));
    assert_eq!(ok(&s, "/api/v1/labels?match[]=mem"), json!(["__name__", "host"]));
    assert_eq!(ok(&s, "/api/v1/label/__name__/values"), json!(["cpu", "mem"]));
    assert_eq!(ok(&s, "/api/v1/label/host/values?match[]=cpu%7Bdc%3D%22y%22%7D"), json!(["b"]));
    // mem has its one sample at T0: a window after it has only cpu.
    let later = format!("start={}&end={}", T0 + 30, T0 + 60);
    assert_eq!(ok(&s, &format!("/api/v1/label/__name__/values?{later}")), json!(["cpu"]));
    assert_eq!(form(&s, "/api/v1/labels", &format!("match[]=mem&{later}")), json!([]));
}

#[test]
fn the_other_endpoints_answer_empty_in_prometheus_shape() {
    let s = start();
    assert_eq!(ok(&s, "/api/v1/metadata"), json!({}));
    assert_eq!(ok(&s, "/api/v1/status/buildinfo")["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(ok(&s, "/api/v1/query_exemplars?query=up"), json!([]));
    assert_eq!(ok(&s, "/api/v1/rules"), json!({"groups": []}));
    assert_eq!(ok(&s, "/api/v1/alerts"), json!({"alerts": []}));
    assert_eq!(ok(&s, "/api/v1/status/flags")["query.max-samples"], "50000000");
    assert!(ok(&s, "/api/v1/status/runtimeinfo")["startTime"].is_string());
}

#[test]
fn the_token_guards_the_query_api() {
    let s = start_with(opts(), Limits::default(), Some("sesame"));
    load(&s);
    let q = format!("/api/v1/query?query=cpu&time={T0}");
    assert_eq!(s.get(&q).status, 401);
    assert_eq!(s.get("/api/v1/labels").status, 401);
    let r = s.send("GET", &q, &[("authorization", "Bearer sesame")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn grafana_data_source_requests_replayed() {
    let s = start();
    load(&s);
    // Grafana's unaligned dashboard range, as its requests carry it.
    let (start, end) = (T0 + 7, T0 + 593);
    let range = format!("start={start}&end={end}");
    assert!(ok(&s, "/api/v1/status/buildinfo")["version"].is_string());
    assert_eq!(ok(&s, &format!("/api/v1/labels?{range}")), json!(["__name__", "dc", "host"]));
    assert_eq!(ok(&s, &format!("/api/v1/label/__name__/values?{range}")), json!(["cpu"]));
    assert_eq!(ok(&s, &format!("/api/v1/series?match%5B%5D=cpu&{range}")).as_array().unwrap().len(), 2);
    assert_eq!(ok(&s, "/api/v1/metadata"), json!({}));
    let d = form(&s, "/api/v1/query_range", &format!("query=rate(cpu%5B1m%5D)&{range}&step=60"));
    assert_eq!(d["resultType"], "matrix");
    let series = d["result"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["metric"], json!({"dc": "x", "host": "a"}));
    assert_eq!(series[0]["values"][0][0], json!(start + 60), "the first step has a full window of samples");
    let d = form(&s, "/api/v1/query", &format!("query=max(cpu)&time={end}"));
    assert_eq!(d["result"][0]["value"], json!([end, "390"]));
}

fn run_promtool(bin: &PathBuf, args: &[&str]) -> String {
    let out = crate::support::output(Command::new(bin).args(args)).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "promtool {args:?}: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn promtool_queries_strata() {
    let Some(bin) = crate::support::external_binary("promtool", "STRATA_PROMTOOL") else {
        let why = "no `promtool` binary (apt-get install prometheus, or set STRATA_PROMTOOL)";
        assert!(
            !crate::support::external_required(),
            "prom_api cannot run promtool: {why}; STRATA_REQUIRE_EXTERNAL is set, so this fails"
        );
        eprintln!("SKIPPED promtool_queries_strata: {why}");
        return;
    };
    let s = start();
    load(&s);
    let url = format!("http://{}", s.addr);
    let t = (T0 + 150).to_string();
    let out = run_promtool(&bin, &["query", "instant", &url, "cpu", &format!("--time={t}")]);
    assert!(out.contains("cpu{dc=\"x\", host=\"a\"} => 10 @["), "{out}");
    assert!(out.contains("cpu{dc=\"y\", host=\"b\"} => 100 @["), "{out}");
    let (start, end) = ((T0 + 60).to_string(), (T0 + 90).to_string());
    let out = run_promtool(
        &bin,
        &[
            "query",
            "range",
            &url,
            "cpu{host=\"b\"}",
            &format!("--start={start}"),
            &format!("--end={end}"),
            "--step=15s",
        ],
    );
    for v in ["40 @[", "50 @[", "60 @["] {
        assert!(out.contains(v), "{v} missing: {out}");
    }
    // promtool's default window ends two years from now; the data is from 2023.
    let out = run_promtool(
        &bin,
        &["query", "series", &url, "--match=cpu", &format!("--start={start}"), &format!("--end={end}")],
    );
    assert!(out.contains("{__name__=\"cpu\", dc=\"x\", host=\"a\"}"), "{out}");
    assert!(out.contains("{__name__=\"cpu\", dc=\"y\", host=\"b\"}"), "{out}");
    let out =
        run_promtool(&bin, &["query", "labels", &url, "host", &format!("--start={start}"), &format!("--end={end}")]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["a", "b"], "{out}");
}
