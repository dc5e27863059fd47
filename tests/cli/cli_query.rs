//! `strata query`: raw output in every format, clear errors, and the same answer
//! as the server's `POST /query` for the same request.
#![cfg(all(feature = "cli", feature = "server"))]

use crate::support::cli_support;
use crate::support::cli_support::{fails, json, ok};
use crate::support::server_util;
use strata::{Db, Labels};

/// Two series of `m` with samples at 1 s..=5 s (epoch ms 1000..=5000), one NaN.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), cli_support::keep_all()).unwrap();
    let mut app = db.appender();
    for h in ["a", "b"] {
        let l = Labels::metric("m", [("host", h)]).unwrap();
        for t in 1..=5 {
            let v = if h == "b" && t == 3 { f64::NAN } else { t as f64 * 1.5 };
            app.append_labels(&l, t * 1000, v).unwrap();
        }
    }
    app.commit().unwrap();
    db.close().unwrap();
    dir
}

#[test]
fn raw_query_table_json_csv_and_plot() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let range = ["--start", "2", "--end", "1970-01-01T00:00:04Z"]; // 2 is epoch seconds
    let q = |extra: &[&str]| {
        let mut args = vec!["query", "m{host=~\"a|b\"}", "--data", d];
        args.extend(range);
        args.extend(extra);
        ok(&args)
    };
    let table = q(&[]);
    assert_eq!(
        table,
        "m{host=\"a\"}  (3 samples)\n  1970-01-01T00:00:02Z  3.0\n  1970-01-01T00:00:03Z  4.5\n  \
         1970-01-01T00:00:04Z  6.0\n\nm{host=\"b\"}  (3 samples)\n  1970-01-01T00:00:02Z  3.0\n  \
         1970-01-01T00:00:03Z  NaN\n  1970-01-01T00:00:04Z  6.0\n"
    );
    let j = json(&q(&["--json"]));
    assert_eq!(j["series"].as_array().unwrap().len(), 2);
    assert_eq!(j["series"][1]["metric"]["host"], "b");
    assert_eq!(j["series"][1]["timestamps"], serde_json::json!([2000, 3000, 4000]));
    assert_eq!(j["series"][1]["values"], serde_json::json!([3.0, "NaN", 6.0]));
    let csv = q(&["--csv"]);
    assert_eq!(csv.lines().next(), Some("series,timestamp,value"));
    assert_eq!(csv.lines().nth(1), Some("\"m{host=\"\"a\"\"}\",2000,3.0"));
    let plot = q(&["--plot"]);
    assert!(plot.contains("* m{host=\"a\"}") && plot.contains("+ m{host=\"b\"}") && plot.contains("+---"), "{plot}");
    assert_eq!(ok(&["query", "m{host=\"zz\"}", "--data", d, "--start", "0"]), "no series matched in this range\n");
}

#[test]
fn query_errors_say_what_was_wrong() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let e = fails(&["query", "m{host=~\"a\"", "--data", d]);
    assert!(e.contains("invalid selector at column 12: missing '}'\n  m{host=~\"a\"\n             ^"), "{e}");
    let e = fails(&["query", "m", "--data", d, "--start", "yesterday"]);
    assert!(e.contains("--start: invalid time \"yesterday\""), "{e}");
    let e = fails(&["query", "m", "--data", d, "--start", "0", "--step", "5m", "--agg", "stddev", "--tier", "1h"]);
    assert!(e.contains("query:") && e.contains("raw"), "an explicit tier that cannot answer is refused: {e}");
    let e = fails(&["query", "{host=\"\"}", "--data", d]);
    assert!(e.contains("does not match the empty string"), "{e}");
    let e = fails(&["query", "m", "--data", "/nonexistent/strata"]);
    assert!(e.contains("not a Strata data directory"), "{e}");
}

#[test]
fn aggregated_queries_go_through_the_query_layer() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    // Sum by host over 2 s steps: a = 1.5 | 3.0+4.5 | 6.0+7.5, b has a NaN in its second bucket.
    let j = json(&ok(&[
        "query",
        "m",
        "--data",
        d,
        "--start",
        "0",
        "--end",
        "5.999",
        "--step",
        "2s",
        "--agg",
        "sum",
        "--group-by",
        "host",
        "--json",
    ]));
    let series = j["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["metric"]["host"], "a");
    assert_eq!(series[0]["timestamps"], serde_json::json!([0, 2000, 4000]));
    assert_eq!(series[0]["values"], serde_json::json!([1.5, 7.5, 13.5]));
    assert_eq!(series[1]["values"][1], "NaN");
    // Max across both hosts with top-k, and a quantile.
    let j = json(&ok(&[
        "query",
        "m",
        "--data",
        d,
        "--start",
        "0",
        "--end",
        "5.999",
        "--agg",
        "max",
        "--group-by",
        "",
        "--json",
    ]));
    assert_eq!(j["series"][0]["values"], serde_json::json!([7.5]));
    let j = json(&ok(&[
        "query", "m", "--data", d, "--start", "0", "--end", "5.999", "--agg", "count", "--top-k", "1", "--json",
    ]));
    assert_eq!(j["series"].as_array().unwrap().len(), 1);
}

#[test]
fn compact_and_retention_report_what_they_do() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    ok(&["compact", "--data", d, "--dry-run"]);
    let j = json(&ok(&["compact", "--data", d, "--json"]));
    assert_eq!(j["dry_run"], false);
    // Data from 1970 is past a 3-day raw retention: recorded, reported, then dropped with --apply.
    let j = json(&ok(&["retention", "--data", d, "--json"]));
    assert_eq!(j["removed"].as_array().map(Vec::len), Some(0), "a new directory keeps everything: {j}");
    ok(&["retention", "set", "--data", d, "--raw", "3d"]);
    let j = json(&ok(&["retention", "--data", d, "--json"]));
    assert_eq!(j["applied"], false);
    assert!(!j["removed"].as_array().unwrap().is_empty(), "{j}");
    let j = json(&ok(&["retention", "--data", d, "--json", "--apply"]));
    assert_eq!(j["applied"], true);
    assert!(j["samples"].as_u64().unwrap() > 0, "{j}");
    let usage = cli_support::strata(&["retention", "set", "--data", d, "--raw", "3 days"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(cli_support::stderr(&usage).contains("invalid duration"));
    let bad = cli_support::strata(&["stats", "--data", d, "--retention", "raw=0s"]);
    assert_eq!(bad.status.code(), Some(2), "a zero retention is refused at parse time");
}

/// 2026-01-01T00:00:00Z in ms.
const DAY0: i64 = 1_767_225_600_000;

/// One sample every 10 s from 00:00 to 01:00 inclusive (361 samples) of `c{h="x"}`.
fn append_ten_second_samples(db: &Db) {
    let l = Labels::metric("c", [("h", "x")]).unwrap();
    let mut app = db.appender();
    for i in 0..=360 {
        app.append_labels(&l, DAY0 + i * 10_000, i as f64).unwrap();
    }
    app.commit().unwrap();
}

/// The same stepped request through `strata query` and `POST /query` on the same
/// data: both ends inclusive, never widened to whole steps, so the edge buckets
/// count only the samples inside [00:10, 00:45].
#[test]
fn cli_and_server_answer_a_stepped_query_alike() {
    let _serial = cli_support::serial();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), cli_support::keep_all()).unwrap();
    append_ten_second_samples(&db);
    db.close().unwrap();
    let server = server_util::start();
    append_ten_second_samples(&server.db);
    let d = dir.path().to_str().unwrap();
    let (start, end) = ("2026-01-01T00:10:00Z", "2026-01-01T00:45:00Z");
    for (step, want_total, want_buckets) in [("30m", 211.0, vec![120.0, 91.0]), ("1m", 211.0, vec![])] {
        let cli = json(&ok(&[
            "query", "c", "--data", d, "--start", start, "--end", end, "--step", step, "--agg", "count", "--json",
        ]));
        let cli_points: Vec<(i64, f64)> = {
            let s = &cli["series"][0];
            let ts = s["timestamps"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap());
            ts.zip(s["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap())).collect()
        };
        let body = serde_json::json!({"metric_name": "c", "start_time": start, "end_time": end,
                                      "function": "count", "step": step});
        let r = server.send("POST", "/query", &[("Content-Type", "application/json")], body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        let server_points: Vec<(i64, f64)> = j["series"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["timestamp_ms"].as_i64().unwrap(), p["value"].as_f64().unwrap()))
            .collect();
        assert_eq!(cli_points, server_points, "step {step}");
        assert_eq!(cli_points.iter().map(|p| p.1).sum::<f64>(), want_total, "step {step}");
        if !want_buckets.is_empty() {
            assert_eq!(cli_points.iter().map(|p| p.1).collect::<Vec<_>>(), want_buckets);
            assert_eq!(cli_points[0].0, DAY0, "buckets are keyed by their aligned start");
        }
        // The CLI echoes the range it was given, not a widened one.
        assert_eq!((cli["start"].as_i64(), cli["end"].as_i64()), (Some(DAY0 + 600_000), Some(DAY0 + 2_700_000)));
        assert_eq!(j["end_time_ms"], DAY0 + 2_700_000);
    }
}
