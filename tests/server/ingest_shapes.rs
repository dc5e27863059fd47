//! `POST /metrics/ingest` takes the batch shapes clients send (an array,
//! `{"metrics": [...]}`, newline-delimited objects), compressed with gzip or zstd,
//! and refuses what JSON would otherwise resolve silently: a repeated key, and a
//! label value that is not a string.
#![cfg(feature = "server")]

use crate::support::server_util::{self, start, TestServer};
use serde_json::Value;
use strata::Matcher;

fn post(s: &TestServer, headers: &[(&str, &str)], body: &[u8]) -> server_util::Response {
    s.send("POST", "/metrics/ingest", headers, body)
}

/// Every stored (host, ts, value) of `metric`, in label then time order. The
/// bodies give epoch seconds (read by magnitude), so ts is 1000 × theirs.
fn stored(s: &TestServer, metric: &str) -> Vec<(String, i64, f64)> {
    let q = s.db.querier(i64::MIN..i64::MAX);
    let mut out = Vec::new();
    for r in q.select(&[Matcher::eq("__name__", metric)]).unwrap() {
        let (l, it) = r.unwrap();
        let host = l.get("host").unwrap_or("").to_string();
        out.extend(it.map(|p| (host.clone(), p.ts, p.value)));
    }
    out
}

fn refused(j: &Value, kind: &str) -> Vec<(u64, String)> {
    let list = j["refused_points"].as_array().unwrap();
    list.iter().map(|e| (e[kind].as_u64().unwrap(), e["reason"].as_str().unwrap().to_string())).collect()
}

const LINES: &str = r#"{"metric_name":"nd","value":1,"timestamp":1000,"labels":{"host":"a"}}
{"metric_name":"nd","value":2,"timestamp":2000,"labels":{"host":"a"}}

{"metric_name":"nd","value":3,"timestamp":1000,"labels":{"host":"b"}}
"#;

#[test]
fn newline_delimited_objects_are_a_batch() {
    let s = start();
    // Recognised by shape, and by Content-Type even when the body is one line.
    let r = post(&s, &[("Content-Type", "application/json")], LINES.as_bytes());
    assert_eq!((r.status, r.json()["ingested"].as_u64()), (200, Some(3)), "{}", r.text());
    let one = r#"{"metric_name":"nd","value":4,"timestamp":3000,"labels":{"host":"a"}}"#;
    let r = post(&s, &[("Content-Type", "application/x-ndjson")], one.as_bytes());
    assert_eq!((r.status, r.json()["ingested"].as_u64()), (200, Some(1)), "{}", r.text());
    let got = stored(&s, "nd");
    assert_eq!(
        got,
        [
            ("a".into(), 1_000_000, 1.0),
            ("a".into(), 2_000_000, 2.0),
            ("a".into(), 3_000_000, 4.0),
            ("b".into(), 1_000_000, 3.0)
        ]
    );

    // A bad line is refused by its line number; the others are stored.
    let body = "{\"metric_name\":\"nd2\",\"value\":1,\"timestamp\":1000}\n{\"metric_name\":\"nd2\",\"value\":\n\
                {\"metric_name\":\"nd2\",\"value\":\"x\",\"timestamp\":2000}\n[1]\n\
                {\"metric_name\":\"nd2\",\"value\":5,\"timestamp\":5000}\n";
    let r = post(&s, &[], body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let j = r.json();
    assert_eq!((j["accepted"].as_u64(), j["refused"].as_u64()), (Some(2), Some(3)), "{j}");
    let bad = refused(&j, "line");
    assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 3, 4]);
    assert!(bad[0].1.starts_with("line 2: invalid JSON"), "{bad:?}");
    assert!(bad[1].1.starts_with("line 3: value:"), "{bad:?}");
    assert!(bad[2].1.starts_with("line 4: expected an object"), "{bad:?}");
    assert_eq!(stored(&s, "nd2").iter().map(|p| p.1).collect::<Vec<_>>(), [1_000_000, 5_000_000]);
}

#[test]
fn gzip_and_zstd_bodies() {
    let s = start();
    let array = br#"[{"metric_name":"z","value":1,"timestamp":1000,"labels":{"host":"gz"}},
                     {"metric_name":"z","value":2,"timestamp":2000,"labels":{"host":"gz"}}]"#;
    let r = post(&s, &[("Content-Encoding", "gzip")], &server_util::gzip(array));
    assert_eq!((r.status, r.json()["ingested"].as_u64()), (200, Some(2)), "{}", r.text());
    let metrics = br#"{"metrics":[{"metric_name":"z","value":3,"timestamp":1000,"labels":{"host":"zs"}}]}"#;
    let r = post(&s, &[("Content-Encoding", "zstd")], &zstd::encode_all(&metrics[..], 3).unwrap());
    assert_eq!((r.status, r.json()["ingested"].as_u64()), (200, Some(1)), "{}", r.text());
    let r = post(
        &s,
        &[("Content-Encoding", "zstd"), ("Content-Type", "application/x-ndjson")],
        &zstd::encode_all(LINES.as_bytes(), 1).unwrap(),
    );
    assert_eq!((r.status, r.json()["ingested"].as_u64()), (200, Some(3)), "{}", r.text());
    assert_eq!(
        stored(&s, "z"),
        [("gz".into(), 1_000_000, 1.0), ("gz".into(), 2_000_000, 2.0), ("zs".into(), 1_000_000, 3.0)]
    );
    let r = post(&s, &[("Content-Encoding", "zstd")], b"not zstd at all");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("invalid zstd body"), "{}", r.error());
    let r = post(&s, &[("Content-Encoding", "br")], array);
    assert_eq!(r.status, 415);
}

#[test]
fn repeated_keys_and_numeric_labels_are_refused_by_name() {
    let s = start();
    // The whole single object is refused, naming the key.
    let r = post(&s, &[], br#"{"metric_name":"d","value":1,"value":2,"timestamp":1000}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().contains("duplicate key \"value\""), "{}", r.error());
    let r = post(&s, &[], br#"{"metric_name":"d","value":1,"timestamp":1000,"labels":{"host":"a","host":"b"}}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().contains("duplicate key \"host\""), "{}", r.error());
    let r = post(&s, &[], br#"{"metric_name":"d","value":1,"timestamp":1000,"labels":{"port":8080}}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().starts_with("labels.port: expected a string, got 8080"), "{}", r.error());
    let r = post(&s, &[], br#"{"metric_name":"d","value":1,"timestamp":1000,"labels":{"up":true}}"#);
    assert!(r.error().starts_with("labels.up: expected a string, got true"), "{}", r.error());
    assert!(stored(&s, "d").is_empty());

    // In a batch, the item is refused by index and the others are stored.
    let body = br#"{"metrics":[{"metric_name":"d","value":1,"timestamp":1000,"labels":{"host":"a"}},
        {"metric_name":"d","value":1,"timestamp":1000,"labels":{"host":"a","host":"b"}},
        {"metric_name":"d","value":3,"timestamp":3000,"labels":{"host":"c","port":9}}]}"#;
    let r = post(&s, &[], body);
    assert_eq!(r.status, 400, "{}", r.text());
    let bad = refused(&r.json(), "item");
    assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 2], "{bad:?}");
    assert!(bad[0].1.starts_with("metrics[1]: invalid JSON: duplicate key \"host\""), "{bad:?}");
    assert!(bad[1].1.starts_with("metrics[2]: labels.port"), "{bad:?}");
    assert_eq!(stored(&s, "d"), [("a".into(), 1_000_000, 1.0)]);
    // A repeated "metrics" is the document's own error.
    let r = post(&s, &[], br#"{"metrics":[],"metrics":[]}"#);
    assert!(r.status == 400 && r.error().contains("duplicate key \"metrics\""), "{}", r.text());
    let r = post(&s, &[], br#"{"metrics":[],"extra":1}"#);
    assert!(r.status == 400 && r.error().contains("no other field"), "{}", r.text());
}
