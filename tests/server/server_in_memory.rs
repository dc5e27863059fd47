//! `strata serve --in-memory`: the real binary serves writes and reads over HTTP,
//! seals and compacts on request, says it is in memory, and leaves no file behind;
//! combined with a data directory it refuses to start, naming both.
#![cfg(feature = "server")]

use crate::support::served::{command, spawn};
use crate::support::server_util::request;
use serde_json::{json, Value};

fn empty(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect()
}

#[test]
fn serve_in_memory_writes_and_reads_over_http_and_leaves_no_files() {
    let cwd = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().to_str().unwrap().to_string();
    let mut server = spawn(cwd.path(), &["--in-memory", "--listen", "127.0.0.1:0"], &[("TMPDIR", &tmpdir)]);
    let addr = server.addr();
    let body = json!([
        {"metric_name": "cpu_usage", "value": 75.5, "timestamp": "2025-12-03T12:00:00Z", "labels": {"host": "a"}},
        {"metric_name": "cpu_usage", "value": 80.0, "timestamp": "2025-12-03T12:01:00Z", "labels": {"host": "a"}},
        {"metric_name": "cpu_usage", "value": 10.0, "timestamp": "2025-12-03T12:00:00Z", "labels": {"host": "b"}},
    ]);
    let r =
        request(addr, "POST", "/metrics/ingest", &[("Content-Type", "application/json")], body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ingested"], 3);
    // Seal into a segment held in memory, then merge; the answers stay the same.
    for path in ["/admin/flush", "/admin/compact"] {
        let r = request(addr, "POST", path, &[], b"");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = request(
        addr,
        "POST",
        "/metrics/ingest",
        &[],
        br#"{"metric_name": "cpu_usage", "value": 90, "timestamp": "2025-12-03T12:02:00Z", "labels": {"host": "a"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        addr,
        "GET",
        "/query/raw?metric_name=cpu_usage&start_time=2025-12-03T00:00:00Z&end_time=2025-12-04T00:00:00Z&format=compact",
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = r.json();
    assert_eq!(v["count"], 4, "{v}");
    assert_eq!(
        v["series"],
        json!([
            {"labels": {"host": "a"}, "points": [[1764763200000i64, 75.5], [1764763260000i64, 80.0], [1764763320000i64, 90.0]]},
            {"labels": {"host": "b"}, "points": [[1764763200000i64, 10.0]]},
        ]),
        "{v}"
    );
    let status = request(addr, "GET", "/db/status", &[], b"").json();
    assert_eq!((&status["storage"], &status["path"]), (&json!("memory"), &json!(":memory:")), "{status}");
    // Three raw samples were sealed (and rolled up into the 5m and 1h tiers); one is in the head.
    let counts = (&status["samples"], &status["segment_samples"]["raw"], &status["head"]["samples"]);
    assert_eq!(counts, (&json!(4), &json!(3), &json!(1)), "{status}");
    assert_eq!(status["wal"]["disk_bytes"], 0, "{status}");
    let (exit, lines) = server.terminate();
    assert!(exit.success(), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("in-memory database")), "{lines:#?}");
    assert!(empty(cwd.path()).is_empty() && empty(tmp.path()).is_empty(), "files were created");
}

#[test]
fn serve_in_memory_refuses_a_data_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let out = crate::support::output(&mut command(cwd.path(), &["--in-memory", "--data", "d"], &[])).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--in-memory") && err.contains("--data"), "{err}");
    let env = [("STRATA_DATA", "d")];
    let out =
        crate::support::output(&mut command(cwd.path(), &["--in-memory", "--listen", "127.0.0.1:0"], &env)).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--in-memory") && err.contains("STRATA_DATA"), "{err}");
    assert!(empty(cwd.path()).is_empty(), "nothing was created");
}
