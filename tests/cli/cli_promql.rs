//! `strata query EXPR` with a PromQL expression: instant and range queries on a
//! fixture, as a table and as Prometheus's API JSON, errors with their kind, the
//! selector form unchanged, and the same answer through a server's Prometheus API.
#![cfg(all(feature = "cli", feature = "server"))]

use crate::support::cli_support;
use crate::support::cli_support::{fails, json, ok};
use crate::support::server_util;
use strata::{Db, Labels};

/// 2023-11-14T22:13:20Z in ms: the fixture's first sample.
const T0: i64 = 1_700_000_000_000;

/// `req_total{job="api",host="a"|"b"}`: counters every 15 s for 10 minutes, growing
/// by 15 and 30 a step (1/s and 2/s).
fn fill(db: &Db) {
    let mut app = db.appender();
    for (h, k) in [("a", 15.0), ("b", 30.0)] {
        let l = Labels::metric("req_total", [("job", "api"), ("host", h)]).unwrap();
        for i in 0..=40 {
            app.append_labels(&l, T0 + i * 15_000, i as f64 * k).unwrap();
        }
    }
    app.commit().unwrap();
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), cli_support::keep_all()).unwrap();
    fill(&db);
    db.close().unwrap();
    dir
}

/// Epoch seconds `s` after T0, as a flag value.
fn at(s: i64) -> String {
    (T0 / 1000 + s).to_string()
}

#[test]
fn instant_queries_print_a_table_and_prometheus_json() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let t = at(600);
    let q = |expr: &str, extra: &[&str]| {
        let mut args = vec!["query", expr, "--data", d, "--time", &t];
        args.extend(extra);
        ok(&args)
    };
    assert_eq!(
        q("rate(req_total[1m])", &[]),
        "2023-11-14T22:23:20Z  (2 series)\n  {host=\"a\",job=\"api\"}  1.0\n  {host=\"b\",job=\"api\"}  2.0\n"
    );
    assert_eq!(
        q("sum by (job) (rate(req_total[1m]))", &[]),
        "2023-11-14T22:23:20Z  (1 series)\n  {job=\"api\"}  3.0\n"
    );
    // A binary operator keeps the metric name only where Prometheus does (not here).
    assert_eq!(
        q("req_total{host=\"a\"} * 2 + 1", &[]),
        "2023-11-14T22:23:20Z  (1 series)\n  {host=\"a\",job=\"api\"}  1201.0\n"
    );
    assert_eq!(q("1 + 1", &[]), "scalar  2023-11-14T22:23:20Z  2.0\n");
    assert_eq!(q("req_total{host=\"zz\"} + 1", &[]), "no series\n");
    // --time makes a bare selector an instant query, with the name kept.
    assert_eq!(
        q("req_total{host=\"b\"}", &[]),
        "2023-11-14T22:23:20Z  (1 series)\n  req_total{host=\"b\",job=\"api\"}  1200.0\n"
    );

    let j = json(&q("rate(req_total[1m])", &["--json"]));
    assert_eq!(j["resultType"], "vector");
    let mut result = j["result"].as_array().unwrap().clone();
    result.sort_by_key(|s| s["metric"]["host"].as_str().unwrap().to_string());
    assert_eq!(
        serde_json::Value::Array(result),
        serde_json::json!([
            {"metric": {"host": "a", "job": "api"}, "value": [1_700_000_600, "1"]},
            {"metric": {"host": "b", "job": "api"}, "value": [1_700_000_600, "2"]},
        ])
    );
    let j = json(&q("2 ^ 0.5", &["--json"]));
    assert_eq!(j, serde_json::json!({"resultType": "scalar", "result": [1_700_000_600, "1.4142135623730951"]}));
}

#[test]
fn range_queries_evaluate_every_step_inclusive() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let (start, end) = (at(300), at(600));
    let q = |expr: &str, extra: &[&str]| {
        let mut args = vec!["query", expr, "--data", d, "--start", &start, "--end", &end, "--step", "150s"];
        args.extend(extra);
        ok(&args)
    };
    assert_eq!(
        q("sum(rate(req_total[1m]))", &[]),
        "{}  (3 samples)\n  2023-11-14T22:18:20Z  3.0\n  2023-11-14T22:20:50Z  3.0\n  2023-11-14T22:23:20Z  3.0\n"
    );
    let j = json(&q("req_total - 10", &["--json"]));
    assert_eq!(j["resultType"], "matrix");
    assert_eq!(
        j["result"],
        serde_json::json!([
            {"metric": {"host": "a", "job": "api"},
             "values": [[1_700_000_300, "290"], [1_700_000_450, "440"], [1_700_000_600, "590"]]},
            {"metric": {"host": "b", "job": "api"},
             "values": [[1_700_000_300, "590"], [1_700_000_450, "890"], [1_700_000_600, "1190"]]},
        ])
    );
    // After the last sample (at +600 s) the 5-minute lookback still finds it; a filter keeps the name.
    let late = ok(&[
        "query",
        "req_total{host=\"a\"} > 0",
        "--data",
        d,
        "--start",
        &at(850),
        "--end",
        &at(950),
        "--step",
        "50s",
    ]);
    assert_eq!(
        late,
        "req_total{host=\"a\",job=\"api\"}  (2 samples)\n  2023-11-14T22:27:30Z  600.0\n  2023-11-14T22:28:20Z  600.0\n"
    );
}

#[test]
fn bad_expressions_fail_with_their_kind_and_the_selector_form_is_unchanged() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let e = fails(&["query", "rate(req_total[5m]", "--data", d]);
    assert!(e.starts_with("error: bad_data: ") && e.contains("unclosed left parenthesis"), "{e}");
    let e = fails(&["query", "sum(rate(req_total))", "--data", d]);
    assert!(e.starts_with("error: bad_data: ") && e.contains("expected type matrix"), "{e}");
    let e = fails(&["query", "req_total[5m]", "--data", d, "--step", "1m"]);
    assert!(e.contains("error: bad_data: invalid expression type \"range vector\" for range query"), "{e}");
    let e = fails(&["query", "sum(req_total)", "--data", d, "--agg", "max"]);
    assert!(e.contains("--agg applies to a series selector"), "{e}");
    let e = fails(&["query", "sum(req_total)", "--data", d, "--start", "-1h"]);
    assert!(e.contains("a range query needs --step"), "{e}");

    // The selector form: raw samples, and the aggregation flags, exactly as before.
    let raw = ok(&["query", "req_total{host=\"a\"}", "--data", d, "--start", &at(0), "--end", &at(30)]);
    assert_eq!(
        raw,
        "req_total{host=\"a\",job=\"api\"}  (3 samples)\n  2023-11-14T22:13:20Z  0.0\n  \
         2023-11-14T22:13:35Z  15.0\n  2023-11-14T22:13:50Z  30.0\n"
    );
    let agg = json(&ok(&[
        "query",
        "req_total",
        "--data",
        d,
        "--start",
        &at(0),
        "--end",
        &at(599),
        "--step",
        "5m",
        "--agg",
        "max",
        "--json",
    ]));
    assert_eq!(agg["agg"], "max");
    assert_eq!(agg["series"].as_array().unwrap().len(), 2);
}

/// The same answers through a server's `/api/v1/query` and `/api/v1/query_range`
/// (form POST with the bearer token) as from the directory.
#[test]
fn promql_through_a_server_matches_the_local_path() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let server = server_util::start_with(server_util::opts(), strata::server::Limits::default(), Some("s3cret"));
    fill(&server.db);
    let url = format!("http://{}", server.addr);
    let token = server.dir.path().join("token");
    let (d, t) = (dir.path().to_str().unwrap(), token.to_str().unwrap());
    let (t600, t300) = (at(600), at(300));
    let cases: [Vec<&str>; 4] = [
        vec!["sum by (job) (rate(req_total[1m]))", "--time", &t600],
        vec!["req_total * 2", "--time", &t600, "--json"],
        vec!["sum(req_total)", "--start", &t300, "--end", &t600, "--step", "150s"],
        vec!["req_total - 10", "--start", &t300, "--end", &t600, "--step", "150s", "--json"],
    ];
    for args in cases {
        let mut local = vec!["query"];
        local.extend(&args);
        local.extend(["--data", d]);
        let mut remote = vec!["query"];
        remote.extend(&args);
        remote.extend(["--url", &url, "--token-file", t]);
        let (l, r) = (ok(&local), ok(&remote));
        if args.contains(&"--json") {
            assert_eq!(json(&l)["result"].as_array().map(Vec::len), json(&r)["result"].as_array().map(Vec::len));
            let sorted = |v: serde_json::Value| {
                let mut a = v["result"].as_array().unwrap().clone();
                a.sort_by_key(|s| s["metric"].to_string());
                a
            };
            assert_eq!(sorted(json(&l)), sorted(json(&r)), "{args:?}");
        } else {
            assert_eq!(l, r, "{args:?}");
        }
    }
    let e = fails(&["query", "rate(req_total[5m]", "--url", &url, "--token-file", t, "--time", &t600]);
    assert!(e.starts_with("error: bad_data: "), "{e}");
}
