//! `strata stats`: the JSON fields scripts rely on, and the human form.
#![cfg(feature = "cli")]

use crate::support::cli_support::{fails, json, load_devops, ok};

#[test]
fn stats_json_reports_series_samples_disk_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let load = load_devops(dir.path(), 10, "1h");
    let s = json(&ok(&["stats", "--data", d, "--json"]));
    assert_eq!(s["series"], 100);
    assert_eq!(s["samples"], 36_000);
    assert_eq!(s["segment_samples"]["raw"], 36_000);
    assert_eq!((s["head_samples"].as_u64(), s["segments"].as_u64()), (Some(0), Some(1)), "load flushes at the end");
    let disk = s["disk_bytes"]["raw"].as_u64().unwrap();
    assert_eq!(s["disk_bytes_total"].as_u64(), Some(disk));
    let bps = s["bytes_per_sample"].as_f64().unwrap();
    assert!((bps - disk as f64 / 36_000.0).abs() < 1e-12);
    assert!((s["compression_ratio"].as_f64().unwrap() - 16.0 / bps).abs() < 1e-9);
    assert_eq!(s["bytes_per_sample"], load["disk"]["bytes_per_sample"]);
    assert_eq!(s["oldest"], load["start"]);
    assert_eq!(s["newest"], load["end"]);
    assert!(s["oldest_rfc3339"].as_str().unwrap().ends_with('Z'));
    for k in ["wal_bytes", "head_bytes", "head_series", "frozen_heads", "disk_bytes"] {
        assert!(!s[k].is_null(), "{k}");
    }
    let text = ok(&["stats", "--data", d]);
    assert!(text.contains("series         100") && text.contains("bytes/sample in raw segments"), "{text}");
}

#[test]
fn stats_refuses_a_directory_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(&["stats", "--data", dir.path().to_str().unwrap()]);
    assert!(err.contains("is not a Strata data directory"), "{err}");
    assert!(!dir.path().join("MANIFEST").exists(), "a read-only command must not create a database");
}
