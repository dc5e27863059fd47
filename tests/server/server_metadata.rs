//! Metric metadata over HTTP: each input (`/metrics/ingest` fields, remote write's
//! `metadata`, `# HELP`/`# TYPE`/`# UNIT` lines on `/import`) and each output
//! (`/metrics/{name}/info`, `/metrics/list`, the text exports, `/api/v1/metadata`
//! as Grafana asks for it), and an export -> import round trip.
#![cfg(feature = "server")]

use prost::Message;
use serde_json::json;
use strata::{MetricKind, MetricMetadata};

use crate::support::server_util::pb::{self, snappy};
use crate::support::server_util::start;

#[test]
fn ingest_fields_set_metadata_and_unknown_fields_are_refused_by_name() {
    let s = start();
    let body = json!({"metric_name": "cpu_usage", "value": 42.0, "labels": {"host": "a"},
        "unit": "percent", "type": "gauge", "description": "CPU busy share"});
    let r = s.post("/metrics/ingest", body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.db.metadata("cpu_usage"), Some(MetricMetadata::new(MetricKind::Gauge, "percent", "CPU busy share")));
    // A later item replaces only the fields it gives; `help` is `description`'s synonym.
    let batch = json!([{"metric_name": "cpu_usage", "value": 1, "help": "CPU busy"},
                       {"metric_name": "mem", "value": 2}]);
    let r = s.post("/metrics/ingest", batch.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.db.metadata("cpu_usage"), Some(MetricMetadata::new(MetricKind::Gauge, "percent", "CPU busy")));
    assert_eq!(s.db.metadata("mem"), None);
    // Unknown fields and bad values are refused, named, with the item's index.
    let r = s.post("/metrics/ingest", br#"{"metric_name": "x", "value": 1, "units": "s"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unknown field \\\"units\\\""), "{}", r.text());
    let bad = json!([{"metric_name": "y", "value": 1, "type": "countr"}, {"metric_name": "y", "value": 2}]);
    let r = s.post("/metrics/ingest", bad.to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("countr") && r.text().contains("\"item\":0"), "{}", r.text());
    assert_eq!(s.db.metadata("y"), None);
    let r = s.post("/metrics/ingest", br#"{"metric_name": "z", "value": 1, "unit": 5}"#);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("unit: expected a string"), "{}", r.text());
}

fn write(s: &crate::support::server_util::TestServer, req: &pb::WriteRequestWithMetadata) -> u16 {
    let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")];
    s.send("POST", "/api/v1/write", &headers, &snappy(&req.encode_to_vec())).status
}

#[test]
fn remote_write_metadata_is_stored_and_replaces_the_whole_entry() {
    let s = start();
    let md = |t: i32, name: &str, help: &str, unit: &str| pb::MetricMetadata {
        r#type: t,
        metric_family_name: name.into(),
        help: help.into(),
        unit: unit.into(),
    };
    // As Prometheus sends it: a request holding only metadata.
    let req = pb::WriteRequestWithMetadata {
        timeseries: vec![],
        metadata: vec![
            md(1, "http_requests_total", "Requests served.", ""),
            md(3, "rpc_duration_seconds", "RPC latency.", "seconds"),
            md(7, "feature_state", "", ""),
        ],
    };
    assert_eq!(write(&s, &req), 204);
    assert_eq!(
        s.db.metadata("rpc_duration_seconds"),
        Some(MetricMetadata::new(MetricKind::Histogram, "seconds", "RPC latency."))
    );
    assert_eq!(s.db.metadata("feature_state").unwrap().kind, MetricKind::StateSet);
    let req = pb::WriteRequestWithMetadata {
        timeseries: vec![pb::TimeSeries {
            labels: pb::labels(&[("__name__", "http_requests_total")]),
            samples: vec![pb::Sample { value: Some(1.0), timestamp: 1000 }],
        }],
        metadata: vec![md(1, "http_requests_total", "", ""), md(42, "weird", "", "")],
    };
    // An unknown type is refused, named; the rest is stored.
    let r = s.send("POST", "/api/v1/write", &[("Content-Encoding", "snappy")], &snappy(&req.encode_to_vec()));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("metadata[1] \\\"weird\\\"") && r.text().contains("unknown metric type 42"),
        "{}",
        r.text()
    );
    assert_eq!(s.db.metadata("http_requests_total"), Some(MetricMetadata::new(MetricKind::Counter, "", "")));
    assert_eq!(s.db.latest(&[strata::Matcher::eq("__name__", "http_requests_total")]).unwrap().len(), 1);
}

const TEXT: &str = "# HELP rpc_seconds RPC latency,\\nby method \\\\ path.\n# TYPE rpc_seconds histogram\n\
# UNIT rpc_seconds seconds\n\
rpc_seconds_bucket{le=\"1\"} 3 1000\nrpc_seconds_bucket{le=\"+Inf\"} 4 1000\nrpc_seconds_count 4 1000\nrpc_seconds_sum 2.5 1000\n\
# HELP up Whether the target is up.\n# TYPE up gauge\nup{job=\"a\"} 1 1000\n\
# A comment that says nothing.\nplain 7 1000\n";

#[test]
fn import_reads_metadata_lines_and_export_writes_them_back() {
    let s = start();
    let r = s.post("/import?format=prometheus", TEXT.as_bytes());
    assert_eq!(r.status, 204, "{}", r.text());
    let rpc = MetricMetadata::new(MetricKind::Histogram, "seconds", "RPC latency,\nby method \\ path.");
    assert_eq!(s.db.metadata("rpc_seconds"), Some(rpc.clone()));
    assert_eq!(s.db.metadata("up"), Some(MetricMetadata::new(MetricKind::Gauge, "", "Whether the target is up.")));
    assert_eq!(s.db.metadata("plain"), None);
    // A TYPE line naming no known type is refused by line number.
    let r = s.post("/import?format=prometheus", b"# TYPE q countr\nq 1 1000\n");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("line 1") && r.text().contains("countr"), "{}", r.text());

    // Prometheus text: each family's lines once, before its first series.
    let text = s.get("/export?format=prometheus").text();
    let want_head = "# HELP rpc_seconds RPC latency,\\nby method \\\\ path.\n# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\nrpc_seconds_bucket";
    assert!(text.contains(want_head), "{text}");
    assert_eq!(text.matches("# TYPE rpc_seconds histogram").count(), 1, "{text}");
    assert!(text.contains("# HELP up Whether the target is up.\n# TYPE up gauge\nup{job=\"a\"} 1.0 1000"), "{text}");
    assert!(!text.contains("# TYPE plain"), "{text}");
    let om = s.get("/export?format=openmetrics").text();
    assert!(om.contains("# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n"), "{om}");

    // Round trip: the export, imported into another server, gives the same metadata.
    let other = start();
    for (format, body) in [("prometheus", text), ("openmetrics", om)] {
        let r = other.post(&format!("/import?format={format}"), body.as_bytes());
        assert_eq!(r.status, 204, "{format}: {}", r.text());
        assert_eq!(other.db.all_metadata(), s.db.all_metadata(), "{format}");
    }
}

#[test]
fn info_list_and_the_prometheus_metadata_api_show_it() {
    let s = start();
    s.post("/import?format=prometheus", TEXT.as_bytes());
    s.db.set_metadata("no_series_yet", MetricMetadata::new(MetricKind::Counter, "bytes", "Kept without series."))
        .unwrap();

    let info = s.get("/metrics/up/info").json();
    assert_eq!(
        (&info["type"], &info["unit"], &info["description"]),
        (&json!("gauge"), &json!(""), &json!("Whether the target is up."))
    );
    let info = s.get("/metrics/plain/info").json();
    assert_eq!((&info["type"], &info["unit"], &info["description"]), (&json!("unknown"), &json!(""), &json!("")));
    // Metadata without series still describes its metric.
    let info = s.get("/metrics/no_series_yet/info");
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!((info.json()["series_count"].clone(), info.json()["unit"].clone()), (json!(0), json!("bytes")));
    assert_eq!(s.get("/metrics/nothing_at_all/info").status, 404);

    let list = s.get("/metrics/list?search=rpc").json();
    let m = &list["metrics"][0];
    assert_eq!((&m["metric_name"], &m["type"]), (&json!("rpc_seconds_bucket"), &json!("unknown")));
    let list = s.get("/metrics/list?search=up").json();
    assert_eq!(list["metrics"][0]["type"], "gauge");

    // Prometheus's shape, as Grafana's data source asks for it (no parameters, then `metric`).
    let all = s.get("/api/v1/metadata").json();
    assert_eq!(all["status"], "success");
    assert_eq!(
        all["data"]["rpc_seconds"],
        json!([{"type": "histogram", "help": "RPC latency,\nby method \\ path.", "unit": "seconds"}])
    );
    assert_eq!(all["data"].as_object().unwrap().len(), 3);
    let one = s.get("/api/v1/metadata?metric=up&limit_per_metric=1").json();
    assert_eq!(one["data"], json!({"up": [{"type": "gauge", "help": "Whether the target is up.", "unit": ""}]}));
    assert_eq!(s.get("/api/v1/metadata?metric=absent").json()["data"], json!({}));
    let limited = s.get("/api/v1/metadata?limit=2").json();
    assert_eq!(limited["data"].as_object().unwrap().len(), 2);
    assert_eq!(s.get("/api/v1/metadata?limit=0").json()["data"], json!({}));
    assert_eq!(s.get("/api/v1/metadata?limit=-1").json()["data"].as_object().unwrap().len(), 3);
    let bad = s.get("/api/v1/metadata?limit=x");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json(), json!({"status": "error", "errorType": "bad_data", "error": "limit must be a number"}));
}
