//! `strata query SELECTOR --summary`: in-process and through `GET /query/summary`
//! on the same data, equal to each other and to the samples' own figures.
#![cfg(all(feature = "cli", feature = "server"))]

use crate::support::cli_support::{self, fails, json, ok};
use crate::support::server_util;
use strata::{Db, Labels};

/// 101 samples 0, 1, …, 100 for host a, and 5, 6 for host b, from 2026-01-01.
fn fill(db: &Db) {
    let mut app = db.appender();
    let a = app.series(&Labels::metric("d", [("host", "a")]).unwrap()).unwrap();
    let b = app.series(&Labels::metric("d", [("host", "b")]).unwrap()).unwrap();
    for i in 0..=100 {
        app.append(a, 1_767_225_600_000 + i * 1000, i as f64).unwrap();
    }
    app.append(b, 1_767_225_600_000, 5.0).unwrap();
    app.append(b, 1_767_225_601_000, 6.0).unwrap();
    app.commit().unwrap();
}

#[test]
fn summary_in_process_and_over_http_agree() {
    let _serial = cli_support::serial();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), cli_support::keep_all()).unwrap();
    fill(&db);
    db.close().unwrap();
    let server = server_util::start();
    fill(&server.db);
    let d = dir.path().to_str().unwrap();
    let url = format!("http://{}", server.addr);
    let range = ["--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T01:00:00Z"];
    let local = json(&ok(&[&["query", "d", "--data", d, "--summary", "--json"][..], &range[..]].concat()));
    let remote = json(&ok(&[&["query", "d", "--url", &url, "--summary", "--json"][..], &range[..]].concat()));
    assert_eq!(local, remote);
    let a = &local["series"][0];
    assert_eq!((a["labels"]["host"].as_str(), a["metric_name"].as_str()), (Some("a"), Some("d")));
    let stats = &a["summary"];
    assert_eq!(
        (stats["count"].as_u64(), stats["min"].as_f64(), stats["max"].as_f64()),
        (Some(101), Some(0.0), Some(100.0))
    );
    assert_eq!(
        (stats["avg"].as_f64(), stats["p50"].as_f64(), stats["p95"].as_f64()),
        (Some(50.0), Some(50.0), Some(95.0))
    );
    assert_eq!(stats["p99"].as_f64(), Some(99.0));
    // Overall: the 103 samples together.
    let all = &local["overall"];
    assert_eq!((all["count"].as_u64(), all["max"].as_f64()), (Some(103), Some(100.0)));
    assert_eq!(all["avg"].as_f64(), Some((5050.0 + 11.0) / 103.0));

    let table = ok(&[&["query", "d", "--data", d, "--summary"][..], &range[..]].concat());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("series") && lines[0].contains("p99"), "{table}");
    assert!(lines[1].starts_with("d{host=\"a\"}") && lines[1].contains(" 101 "), "{table}");
    assert!(lines[3].starts_with("(all)") && lines[3].contains(" 103 "), "{table}");

    assert!(fails(&["query", "rate(d[5m])", "--data", d, "--summary"]).contains("--summary takes a series selector"));
    let usage = cli_support::strata(&["query", "d", "--data", d, "--summary", "--step", "5m"]);
    assert_eq!(usage.status.code(), Some(2), "--summary and --step conflict");
}
