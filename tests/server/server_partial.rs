//! Partial acceptance on every write path: one refused point among good ones
//! stores the good ones and names the refused one; names are kept as sent (or
//! refused), never merged; out-of-range numerals follow one rule everywhere.
#![cfg(feature = "server")]

use crate::support::server_util;
use crate::support::server_util::pb::{self, labels, snappy};
use crate::support::server_util::{start, start_with, TestServer};
use prost::Message;
use serde_json::Value;
use strata::server::Limits;
use strata::{Matcher, RetentionPolicy};

/// A server keeping raw data 7 days: a sample at 1 s after the epoch is refused.
fn retained() -> TestServer {
    start_with(server_util::opts().retention(RetentionPolicy::tiered()), Limits::default(), None)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Every stored sample of the series named `metric`, as (labels, [(ts, value bits)]).
fn stored(s: &TestServer, metric: &str) -> Vec<(String, Vec<(i64, u64)>)> {
    let q = s.db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("__name__", metric)])
        .unwrap()
        .map(|r| r.map(|(l, it)| (l.to_string(), it.map(|s| (s.ts, s.value.to_bits())).collect())).unwrap())
        .collect()
}

fn refused_at(j: &Value, kind: &str) -> Vec<u64> {
    j["refused_points"].as_array().unwrap().iter().map(|e| e[kind].as_u64().unwrap()).collect()
}

#[test]
fn line_protocol_stores_good_lines_and_names_old_and_bad_ones() {
    let s = retained();
    let t = now_ms();
    let body = format!(
        "lp,host=a v=1 {t}\nlp,host=b v=2 {t}\nlp,host=c v=3 1000\n\nlp,host=d v=oops {t}\nlp,host=e v=5,w=6 {t}\n"
    );
    let r = s.post("/write?precision=ms", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let j = r.json();
    assert_eq!(j["error"], "partial write: 2 of 6 points refused");
    assert_eq!((j["accepted"].as_u64(), j["refused"].as_u64()), (Some(4), Some(2)));
    assert_eq!(refused_at(&j, "line"), [3, 5]);
    let old = &j["refused_points"][0];
    assert_eq!(old["series"], "lp_v{host=\"c\"}");
    assert_eq!(old["timestamp"], 1000);
    assert!(old["reason"].as_str().unwrap().contains("older than retention"), "{old}");
    let bad = &j["refused_points"][1];
    assert!(bad["reason"].as_str().unwrap().starts_with("line 5: field \"v\": invalid value \"oops\""), "{bad}");
    let hosts: Vec<String> = stored(&s, "lp_v").into_iter().map(|(l, _)| l).collect();
    assert_eq!(hosts, ["lp_v{host=\"a\"}", "lp_v{host=\"b\"}", "lp_v{host=\"e\"}"]);
    assert_eq!(stored(&s, "lp_w").len(), 1);
    // Nothing refused: 204 as before.
    assert_eq!(s.post("/write?precision=ms", format!("lp,host=a v=9 {}", t + 1).as_bytes()).status, 204);
}

#[test]
fn only_the_first_hundred_refusals_are_listed() {
    let s = start();
    let mut body = String::from("ok v=1 1\n");
    for _ in 0..150 {
        body.push_str("bad\n");
    }
    let r = s.post("/write?precision=ms", body.as_bytes());
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j["error"], "partial write: 150 of 151 points refused");
    assert_eq!(j["refused_points"].as_array().unwrap().len(), 100);
    assert_eq!(j["refused_points_not_listed"], 50);
    assert_eq!(refused_at(&j, "line")[..3], [2, 3, 4]);
    assert_eq!(stored(&s, "ok_v").len(), 1);
}

#[test]
fn remote_write_stores_good_series_and_names_refused_ones() {
    let s = retained();
    let t = now_ms();
    let sample = |ts: i64, v: f64| pb::Sample { value: Some(v), timestamp: ts };
    let req = pb::WriteRequest {
        timeseries: vec![
            pb::TimeSeries {
                labels: labels(&[("__name__", "rw"), ("host", "a")]),
                samples: vec![sample(t, 1.0), sample(1000, 2.0), sample(t + 1, 3.0)],
            },
            pb::TimeSeries { labels: labels(&[("__name__", "rw"), ("bad-label", "v")]), samples: vec![sample(t, 4.0)] },
            pb::TimeSeries { labels: labels(&[("__name__", "rw"), ("host", "b")]), samples: vec![sample(t, 5.0)] },
        ],
    };
    let r = s.send("POST", "/api/v1/write", &[("Content-Encoding", "snappy")], &snappy(&req.encode_to_vec()));
    // A 4xx: Prometheus drops the batch rather than retrying what cannot be stored.
    assert_eq!(r.status, 422, "{}", r.text());
    let j = r.json();
    assert_eq!(j["error"], "partial write: 2 of 5 points refused");
    assert_eq!(refused_at(&j, "timeseries"), [0, 1]);
    assert_eq!(j["refused_points"][0]["timestamp"], 1000);
    assert_eq!(j["refused_points"][0]["series"], "rw{host=\"a\"}");
    assert!(j["refused_points"][1]["reason"].as_str().unwrap().starts_with("timeseries[1] rw{bad-label=\"v\"}"));
    let got = stored(&s, "rw");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1.iter().map(|p| p.0).collect::<Vec<_>>(), [t, t + 1]);
}

#[test]
fn json_ingest_stores_good_items_and_names_refused_ones() {
    let s = retained();
    let t = now_ms();
    let body = format!(
        r#"{{"metrics": [{{"metric_name":"j","value":1,"timestamp":{t}}},
            {{"metric_name":"j","value":2,"timestamp":1000,"labels":{{"h":"old"}}}},
            {{"metric_name":"j","value":"abc","timestamp":{t}}},
            {{"metric_name":"j","value":4,"timestamp":{t},"labels":{{"h":"x"}}}}]}}"#
    );
    let r = s.post("/metrics/ingest", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let j = r.json();
    assert_eq!(j["error"], "partial write: 2 of 4 points refused");
    assert_eq!(refused_at(&j, "item"), [1, 2]);
    assert_eq!(j["refused_points"][0]["series"], "j{h=\"old\"}");
    assert!(j["refused_points"][1]["reason"].as_str().unwrap().starts_with("metrics[2]: value:"), "{j}");
    assert_eq!(stored(&s, "j").len(), 2);
    // A single metric refused: its own message, nothing stored.
    let r = s.post("/metrics/ingest", br#"{"metric_name":"single","value":1,"timestamp":"1970-01-01T00:00:01Z"}"#);
    assert_eq!(r.status, 422, "{}", r.text());
    let e = r.error();
    assert!(e.starts_with("sample for single at 1000 (1970-01-01T00:00:01Z) is older than retention"), "{e}");
    assert_eq!((r.json()["accepted"].as_u64(), r.json()["refused"].as_u64()), (Some(0), Some(1)));
}

#[test]
fn import_stores_good_lines_and_samples_and_names_refused_ones() {
    let s = retained();
    let t = now_ms();
    let body = format!(
        "{{\"metric\":{{\"__name__\":\"imp\",\"h\":\"a\"}},\"values\":[1,2,3],\"timestamps\":[{t},1000,{}]}}\n\
         {{not json\n\
         {{\"metric\":{{\"__name__\":\"imp\",\"h\":\"b\"}},\"values\":[4],\"timestamps\":[{t}]}}\n",
        t + 1
    );
    let r = s.post("/import", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let j = r.json();
    assert_eq!(j["error"], "partial write: 2 of 5 points refused");
    assert_eq!(refused_at(&j, "line"), [1, 2]);
    assert_eq!(j["refused_points"][0]["timestamp"], 1000);
    assert!(j["refused_points"][1]["reason"].as_str().unwrap().starts_with("line 2: invalid JSON line"), "{j}");
    let got = stored(&s, "imp");
    assert_eq!(got.iter().map(|(_, p)| p.len()).collect::<Vec<_>>(), [2, 1]);
}

#[test]
fn distinct_line_protocol_names_are_never_merged() {
    let s = start();
    let body = "cpu_load v=1 1\ncpu-load v=2 1\ncpu.load v=3 1\n\u{e9}t\u{e9} v=4 1\n\
                m,k_a=x v=5 1\nm,k.a=x v=6 1\nm v=7 1\nm,k= v=8 1\n";
    let r = s.post("/write?precision=ms", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let j = r.json();
    assert_eq!(refused_at(&j, "line"), [2, 3, 4, 6, 8]);
    let reasons: Vec<&str> =
        j["refused_points"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("\"cpu-load_v\", which is not a valid name"), "{reasons:?}");
    assert!(reasons[3].contains("tag key \"k.a\""), "{reasons:?}");
    assert!(reasons[4].contains("tag \"k\" has an empty value"), "{reasons:?}");
    // What was stored, read back through /export: each input its own series.
    let export = s.get("/export?match=%7B__name__%3D~%22.%2B%22%7D");
    assert_eq!(export.status, 200);
    let mut series: Vec<String> = export
        .text()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            format!("{} {}", v["metric"], v["values"])
        })
        .collect();
    series.sort();
    assert_eq!(
        series,
        [r#"{"__name__":"cpu_load_v"} [1.0]"#, r#"{"__name__":"m_v","k_a":"x"} [5.0]"#, r#"{"__name__":"m_v"} [7.0]"#,]
    );
}

#[test]
fn out_of_range_numerals_round_the_same_on_every_text_input() {
    let s = start();
    let want = [f64::INFINITY, 0.0, f64::NEG_INFINITY].map(f64::to_bits);
    let r = s.post("/write?precision=ms", b"f a=1e309 1\nf a=1e-400 2\nf a=-1e309 3\n");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.post(
        "/metrics/ingest",
        br#"[{"metric_name":"f_j","value":1e309,"timestamp":1},{"metric_name":"f_j","value":1e-400,"timestamp":2},
            {"metric_name":"f_j","value":"-1e309","timestamp":3}]"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r =
        s.post("/import", br#"{"metric":{"__name__":"f_i"},"values":[1e309,1e-400,"-1e309"],"timestamps":[1,2,3]}"#);
    assert_eq!(r.status, 204, "{}", r.text());
    for metric in ["f_a", "f_j", "f_i"] {
        let got = stored(&s, metric);
        assert_eq!(got.len(), 1, "{metric}");
        assert_eq!(got[0].1.iter().map(|p| p.1).collect::<Vec<_>>(), want, "{metric}");
    }
}
