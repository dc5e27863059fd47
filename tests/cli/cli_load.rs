//! `strata load`: every workload in-process with its read-back check, backfill,
//! and the HTTP target against a small recording server on loopback.
#![cfg(feature = "cli")]

use crate::support::cli_support;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::cli_support::{fails, json, load_devops, ok};

#[test]
fn devops_embedded_small_reads_back_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let r = load_devops(dir.path(), 10, "1h");
    assert_eq!(r["series"], 100);
    assert_eq!(r["samples"], 100 * 360);
    assert_eq!(r["read_back"]["ok"], true, "{r}");
    assert_eq!(r["read_back"]["samples_read"], 100 * 360);
    assert!(r["samples_per_sec"].as_f64().unwrap() > 0.0);
    let bps = r["disk"]["bytes_per_sample"].as_f64().unwrap();
    assert!(bps > 0.1 && bps < 4.0, "{bps}");
    for q in ["p50", "p99", "p999"] {
        assert!(r["latency_us"][q].as_u64().unwrap() >= 1, "{q}");
    }
    // Timestamps end near now (retention will refuse old samples by default).
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let end = r["end"].as_i64().unwrap();
    assert!(end <= now && end > now - 60_000, "end {end}, now {now}");
    assert_eq!(r["end"].as_i64().unwrap() - r["start"].as_i64().unwrap(), 359 * 10_000);
}

#[test]
fn every_pattern_with_late_samples_and_two_workers() {
    for pattern in ["noise", "sine_wave", "linear_trend", "spike", "combined"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let r = json(&ok(&[
            "load",
            "--data",
            d,
            "--workload",
            pattern,
            "--series",
            "7",
            "--duration",
            "2h",
            "--interval",
            "30s",
            "--out-of-order",
            "0.05",
            "--workers",
            "2",
            "--batch",
            "50",
            "--json",
        ]));
        assert_eq!(r["workload"], pattern);
        assert_eq!((r["samples"].as_u64(), r["workers"].as_u64()), (Some(7 * 240), Some(2)));
        assert_eq!(r["read_back"]["ok"], true, "{pattern}: {r}");
        assert_eq!(r["commits"].as_u64().unwrap(), 7 * 240 / 50 + 2, "{pattern}: one partial batch per worker");
    }
}

#[test]
fn backfill_moves_the_window_and_text_report_reads_well() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out =
        ok(&["load", "--data", d, "--workload", "spike", "--series", "3", "--duration", "10m", "--backfill", "7d"]);
    for want in [
        "workload       spike: 3 series, 10s interval, 60 samples each",
        "ingested       180 samples",
        "commit latency p50",
        "bytes/sample",
        "read-back      OK: 3 series, 180 samples",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let stats = json(&ok(&["stats", "--data", d, "--json"]));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let newest = stats["newest"].as_i64().unwrap();
    assert!((now - 7 * 86_400_000 - newest).abs() < 60_000, "newest {newest}");
}

#[test]
fn bad_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(fails(&["load", "--data", d, "--out-of-order", "1.5"]).contains("--out-of-order"));
    assert!(fails(&["load", "--data", d, "--duration", "5s"]).contains("at least one --interval"));
    assert!(fails(&["load", "--data", d, "--workload", "noise", "--hosts", "3"]).contains("--hosts applies to"));
    assert!(fails(&["load", "--data", d, "--workload", "noise", "--metric", "bad name"]).contains("--metric"));
    assert!(fails(&["load", "--target", "https://example.invalid"]).contains("https"));
    assert!(fails(&["load", "--target", "ftp://x"]).contains("invalid --url"));
    let usage = cli_support::strata(&["load", "--workload", "square"]);
    assert_eq!(usage.status.code(), Some(2), "clap reports usage errors with exit code 2");
    assert!(cli_support::stderr(&usage).contains("expected devops, noise"));
}

/// One recorded request: path, headers (lower-case names), body.
type Request = (String, Vec<(String, String)>, Vec<u8>);

/// A loopback HTTP/1.1 server that records requests and answers `status`.
fn recording_server(status: &'static str) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || serve(conn, status, &s));
        }
    });
    (url, seen)
}

fn serve(conn: TcpStream, status: &str, seen: &Mutex<Vec<Request>>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_lowercase(), v.trim().to_string()));
        }
        let len: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        seen.lock().unwrap().push((path, headers, body));
        let msg = if status.starts_with("204") { "" } else { "series limit reached" };
        write!(w, "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{msg}", msg.len()).unwrap();
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.1.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn http_line_protocol_sends_every_sample() {
    let (url, seen) = recording_server("204 No Content");
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "s3cret\n").unwrap();
    let r = json(&ok(&[
        "load",
        "--target",
        &url,
        "--protocol",
        "line",
        "--hosts",
        "2",
        "--duration",
        "5m",
        "--batch",
        "100",
        "--token-file",
        token.path().to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(r["samples"], 20 * 30);
    assert!(r["read_back"].is_null() && r["disk"].is_null());
    let reqs = seen.lock().unwrap();
    assert_eq!(reqs.len(), 6);
    assert!(reqs.iter().all(|q| q.0 == "/write?precision=ms" && header(q, "authorization") == Some("Bearer s3cret")));
    // One line per host and time step, ten fields each.
    let body: String = reqs.iter().map(|q| String::from_utf8(q.2.clone()).unwrap()).collect();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 2 * 30);
    assert!(lines.iter().all(|l| l.starts_with("cpu,") && l.matches('=').count() == 5 + 10), "{}", lines[0]);
}

#[test]
fn http_json_and_remote_write() {
    let (url, seen) = recording_server("204 No Content");
    ok(&[
        "load",
        "--target",
        &url,
        "--protocol",
        "json",
        "--workload",
        "noise",
        "--series",
        "4",
        "--duration",
        "10m",
        "--batch",
        "1000",
    ]);
    {
        let reqs = seen.lock().unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].0, "/import");
        let text = String::from_utf8(reqs[0].2.clone()).unwrap();
        let values: usize = text.lines().map(|l| json(l)["values"].as_array().unwrap().len()).sum();
        assert_eq!((text.lines().count(), values), (4, 4 * 60));
    }
    seen.lock().unwrap().clear();
    ok(&[
        "load",
        "--target",
        &url,
        "--protocol",
        "remote-write",
        "--workload",
        "sine_wave",
        "--series",
        "3",
        "--duration",
        "10m",
        "--path",
        "/prom/write",
    ]);
    let reqs = seen.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0, "/prom/write");
    assert_eq!(header(&reqs[0], "content-encoding"), Some("snappy"));
    assert_eq!(header(&reqs[0], "content-type"), Some("application/x-protobuf"));
    let raw = snap::raw::Decoder::new().decompress_vec(&reqs[0].2).unwrap();
    // 3 series × 60 samples, each sample an 11-byte message plus its 2-byte header.
    assert!(raw.len() > 3 * 60 * 13, "{} bytes", raw.len());
}

#[test]
fn http_errors_stop_the_run_with_the_servers_answer() {
    let (url, _) = recording_server("400 Bad Request");
    let err = fails(&["load", "--target", &url, "--workload", "noise", "--series", "2", "--duration", "1m"]);
    assert!(err.contains("answered 400: series limit reached"), "{err}");
}

#[test]
fn rate_caps_samples_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // 1,000 samples at 4,000 per second take at least a quarter of a second.
    let r = json(&ok(&[
        "load",
        "--data",
        d,
        "--workload",
        "noise",
        "--series",
        "10",
        "--duration",
        "1000s",
        "--batch",
        "100",
        "--rate",
        "4k",
        "--json",
    ]));
    assert_eq!(r["samples"], 1000);
    let secs = r["seconds"].as_f64().unwrap();
    assert!(secs >= 0.24, "{secs} s");
    assert!(r["samples_per_sec"].as_f64().unwrap() <= 4_200.0);
}
