//! Ecosystem write paths over a real socket: Prometheus remote write and read
//! (protobuf + snappy) and the InfluxDB line protocol.
#![cfg(feature = "server")]

use crate::support::server_util;
use crate::support::server_util::pb::{self, labels, matcher, snappy, unsnappy};
use crate::support::server_util::start;
use prost::Message;
use strata::{Matcher, Sample};

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn remote_write(s: &server_util::TestServer, req: &pb::WriteRequest) -> server_util::Response {
    s.send(
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &snappy(&req.encode_to_vec()),
    )
}

fn remote_read(s: &server_util::TestServer, req: &pb::ReadRequest) -> pb::ReadResponse {
    let r = s.send(
        "POST",
        "/api/v1/read",
        &[("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")],
        &snappy(&req.encode_to_vec()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(r.header("content-encoding"), Some("snappy"));
    pb::ReadResponse::decode(unsnappy(&r.body).as_slice()).unwrap()
}

#[test]
fn remote_write_then_read_back_bit_for_bit() {
    let s = start();
    let specials = [1.5, -0.0, f64::NAN, f64::from_bits(STALE_NAN), f64::INFINITY, f64::NEG_INFINITY, 5e-324, 0.1];
    let mut sent = Vec::new();
    for host in ["a", "b"] {
        sent.push(pb::TimeSeries {
            labels: labels(&[("__name__", "rw_metric"), ("host", host), ("job", "test")]),
            samples: specials
                .iter()
                .enumerate()
                .map(|(i, &v)| pb::Sample { value: Some(v), timestamp: 1_700_000_000_000 + i as i64 * 1000 })
                .collect(),
        });
    }
    sent.push(pb::TimeSeries {
        labels: labels(&[("__name__", "other")]),
        samples: vec![pb::Sample { value: Some(9.0), timestamp: 5 }],
    });
    let r = remote_write(&s, &pb::WriteRequest { timeseries: sent.clone() });
    assert_eq!(r.status, 204, "{}", r.text());

    let resp = remote_read(
        &s,
        &pb::ReadRequest {
            queries: vec![
                pb::Query {
                    start_timestamp_ms: 1_700_000_000_000,
                    end_timestamp_ms: 1_700_000_007_000, // inclusive
                    matchers: vec![matcher(0, "__name__", "rw_metric"), matcher(2, "host", "a|b")],
                },
                pb::Query {
                    start_timestamp_ms: 0,
                    end_timestamp_ms: 10,
                    matchers: vec![matcher(1, "__name__", "rw_metric"), matcher(2, "__name__", ".+")],
                },
            ],
            accepted_response_types: vec![0],
        },
    );
    assert_eq!(resp.results.len(), 2);
    let got = &resp.results[0].timeseries;
    assert_eq!(got.len(), 2);
    for (g, w) in got.iter().zip(&sent) {
        assert_eq!(g.labels, w.labels, "labels come back sorted by name");
        let gb: Vec<(i64, u64)> = g.samples.iter().map(|s| (s.timestamp, s.value.unwrap_or(0.0).to_bits())).collect();
        let wb: Vec<(i64, u64)> = w.samples.iter().map(|s| (s.timestamp, s.value.unwrap_or(0.0).to_bits())).collect();
        assert_eq!(gb, wb);
    }
    assert_eq!(resp.results[1].timeseries.len(), 1);
    assert_eq!(resp.results[1].timeseries[0].samples[0].value, Some(9.0));
}

#[test]
fn remote_write_rejects_whole_request_on_a_bad_series() {
    let s = start();
    let good = pb::TimeSeries {
        labels: labels(&[("__name__", "good")]),
        samples: vec![pb::Sample { value: Some(1.0), timestamp: 1 }],
    };
    let bad = pb::TimeSeries {
        labels: labels(&[("__name__", "x"), ("bad-label", "v")]),
        samples: vec![pb::Sample { value: Some(1.0), timestamp: 1 }],
    };
    // The bad series is refused by index; the good one is stored.
    let r = remote_write(&s, &pb::WriteRequest { timeseries: vec![good.clone(), bad] });
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error(), "partial write: 1 of 2 points refused");
    let refused = &r.json()["refused_points"][0];
    assert_eq!(refused["timeseries"], 1);
    assert!(refused["reason"].as_str().unwrap().starts_with("timeseries[1] x{bad-label=\"v\"}: invalid label"));
    assert_eq!(s.db.latest(&[Matcher::eq("__name__", "good")]).unwrap().len(), 1);
    let dup = pb::TimeSeries { labels: labels(&[("__name__", "x"), ("a", "1"), ("a", "2")]), samples: vec![] };
    assert_eq!(remote_write(&s, &pb::WriteRequest { timeseries: vec![good, dup] }).status, 422);

    // Not protobuf, not snappy, and the wrong encoding.
    let r = s.send("POST", "/api/v1/write", &[("Content-Encoding", "snappy")], &snappy(b"\xff\xff\xff"));
    assert_eq!(r.status, 400);
    assert!(r.error().contains("protobuf"), "{}", r.error());
    let r = s.send("POST", "/api/v1/write", &[("Content-Encoding", "snappy")], b"\x10garbage");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("snappy"), "{}", r.error());
    assert_eq!(s.send("POST", "/api/v1/write", &[("Content-Encoding", "gzip")], b"x").status, 415);
}

#[test]
fn snappy_bomb_is_refused_from_its_header() {
    let s = start();
    // Five bytes declaring a 1 GiB decoded size (the snappy varint preamble) and nothing else.
    let bomb = [0x80, 0x80, 0x80, 0x80, 0x04];
    let r = s.send("POST", "/api/v1/write", &[("Content-Encoding", "snappy")], &bomb);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error().contains("max_decompressed_bytes"), "{}", r.error());
    assert_eq!(r.json()["declared_bytes"], 1u64 << 30);
    let r = s.send("POST", "/api/v1/read", &[("Content-Encoding", "snappy")], &bomb);
    assert_eq!(r.status, 413);
}

#[test]
fn remote_read_errors() {
    let s = start();
    let q = |m: Vec<pb::LabelMatcher>| pb::Query { start_timestamp_ms: 0, end_timestamp_ms: 1, matchers: m };
    let send = |req: pb::ReadRequest| {
        s.send("POST", "/api/v1/read", &[("Content-Encoding", "snappy")], &snappy(&req.encode_to_vec()))
    };
    let r = send(pb::ReadRequest { queries: vec![q(vec![matcher(2, "a", "(")])], accepted_response_types: vec![] });
    assert_eq!(r.status, 400);
    assert!(r.error().starts_with("queries[0]: invalid matcher regex"), "{}", r.error());
    let r = send(pb::ReadRequest { queries: vec![q(vec![matcher(9, "a", "b")])], accepted_response_types: vec![] });
    assert_eq!(r.status, 400);
    let r = send(pb::ReadRequest { queries: vec![q(vec![matcher(0, "a", "b")])], accepted_response_types: vec![1] });
    assert_eq!(r.status, 400);
    assert!(r.error().contains("SAMPLES"));
}

#[test]
fn line_protocol_writes_every_numeric_field() {
    let s = start();
    let body = "# devops\n\
        cpu,hostname=host_0,region=eu-west-1 usage_user=58.1,usage_system=2i,up=true,note=\"ok\" 1700000000000000000\n\
        cpu,hostname=host_1,region=eu-west-1 usage_user=12.5,usage_system=3u,up=f 1700000000000000000\r\n\
        \n\
        weird:name,tag_x=a\\ b\\,c value=1e3 1700000001000000000\n";
    let r = s.post("/write", body.as_bytes());
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-strata-samples"), Some("7"));
    assert_eq!(r.header("x-strata-skipped-string-fields"), Some("1"));
    let got = s.db.latest(&[Matcher::eq("__name__", "cpu_usage_user"), Matcher::eq("hostname", "host_0")]).unwrap();
    assert_eq!(got[0].1, Sample::new(1_700_000_000_000, 58.1));
    assert_eq!(got[0].0.get("region"), Some("eu-west-1"));
    let up = s.db.latest(&[Matcher::eq("__name__", "cpu_up")]).unwrap();
    assert_eq!(up.iter().map(|(_, s)| s.value).collect::<Vec<_>>(), [1.0, 0.0]);
    let w = s.db.latest(&[Matcher::eq("__name__", "weird:name_value")]).unwrap();
    assert_eq!((w[0].0.get("tag_x"), w[0].1.value), (Some("a b,c"), 1000.0));

    // v2 path and precision.
    assert_eq!(s.post("/api/v2/write?precision=s&org=o&bucket=b", b"p v=1 1700000002").status, 204);
    assert_eq!(s.db.latest(&[Matcher::eq("__name__", "p_v")]).unwrap()[0].1.ts, 1_700_000_002_000);
    assert_eq!(s.post("/write?precision=ms", b"p v=2 1700000003000").status, 204);
    assert_eq!(s.post("/write?precision=u", b"p v=3 1700000004000000").status, 204);
    assert_eq!(s.db.latest(&[Matcher::eq("__name__", "p_v")]).unwrap()[0].1, Sample::new(1_700_000_004_000, 3.0));
    let r = s.post("/write?precision=fortnight", b"p v=1");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("precision"));
}

#[test]
fn line_protocol_error_names_the_line_and_stores_the_rest() {
    let s = start();
    let r = s.post("/write", b"lp a=1 1\nlp a=2 2\nlp a=oops 3\nlp a=4 4\n");
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j["error"], "partial write: 1 of 4 points refused");
    assert_eq!(j["refused_points"][0]["line"], 3);
    assert_eq!(
        j["refused_points"][0]["reason"],
        "line 3: field \"a\": invalid value \"oops\" (want a float, 1i, 1u, a boolean or a \"string\")"
    );
    assert_eq!(s.db.latest(&[Matcher::eq("__name__", "lp_a")]).unwrap().len(), 1);
    // A body of one refused line answers with that line's own error.
    let r = s.post("/write", b"lp,bad tag=1 a=2\n");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["line"], 1);
    assert_eq!(r.json()["accepted"], 0);
}
