//! The counts a dashboard shows match what queries return: the same samples
//! imported three times count once in `/db/status`, `/metrics` and
//! `strata stats --url`, while the head also says how much was written.
#![cfg(feature = "server")]

use std::process::Command;

use crate::support::server_util::{start, TestServer};

const SERIES: usize = 12;
const POINTS: usize = 480;

/// One JSON line per series, as `/export` writes and `/import` reads them.
fn body() -> String {
    let mut out = String::new();
    for s in 0..SERIES {
        let ts: Vec<String> = (0..POINTS).map(|i| (1_700_000_000_000i64 + i as i64 * 10_000).to_string()).collect();
        let vs: Vec<String> = (0..POINTS).map(|i| (i * s).to_string()).collect();
        out.push_str(&format!(
            "{{\"metric\":{{\"__name__\":\"retried\",\"host\":\"h{s}\"}},\"values\":[{}],\"timestamps\":[{}]}}\n",
            vs.join(","),
            ts.join(",")
        ));
    }
    out
}

fn gauge(s: &TestServer, name: &str) -> f64 {
    let text = s.get("/metrics").text();
    let line = text.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn stats_cli(s: &TestServer) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["stats", "--url", &format!("http://{}", s.addr), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn samples_imported_three_times_count_once() {
    let s = start();
    let n = (SERIES * POINTS) as u64;
    for _ in 0..3 {
        let r = s.post("/import", body().as_bytes());
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let raw = s.get("/query/raw?metric_name=retried").json();
    assert_eq!(raw["count"].as_u64(), Some(n));
    let st = s.get("/db/status").json();
    assert_eq!(st["samples"].as_u64(), Some(n), "{st}");
    assert_eq!(st["head"]["samples"].as_u64(), Some(n), "{st}");
    assert_eq!(st["head"]["samples_written"].as_u64(), Some(3 * n), "{st}");
    assert_eq!(gauge(&s, "strata_head_samples"), n as f64);
    assert_eq!(gauge(&s, "strata_head_samples_written"), 3.0 * n as f64);
    let cli = stats_cli(&s);
    assert_eq!((cli["samples"].as_u64(), cli["head_samples"].as_u64()), (Some(n), Some(n)), "{cli}");

    // Each copy sealed into its own segment: three overlapping segments, one count.
    s.post("/admin/flush", b"");
    for _ in 0..2 {
        assert_eq!(s.post("/import", body().as_bytes()).status, 204);
        s.post("/admin/flush", b"");
    }
    let st = s.get("/db/status").json();
    assert!(st["segment_samples"]["raw"].as_u64().unwrap() >= 2 * n, "not overlapping: {st}");
    assert_eq!((st["samples"].as_u64(), st["head"]["samples"].as_u64()), (Some(n), Some(0)), "{st}");
    assert_eq!(stats_cli(&s)["samples"].as_u64(), Some(n));
    assert_eq!(s.post("/admin/compact", b"").status, 200);
    let st = s.get("/db/status").json();
    assert_eq!((st["samples"].as_u64(), st["segment_samples"]["raw"].as_u64()), (Some(n), Some(n)), "{st}");
}
