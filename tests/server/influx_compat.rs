//! Telegraf's InfluxDB outputs with their default settings, request for request:
//! version 1 (`CREATE DATABASE` through `POST /query` with a form body, then
//! gzip-compressed `POST /write?db=telegraf`, Basic auth from `username`/`password`)
//! and version 2 (`POST /api/v2/write?org=…&bucket=…` with `Authorization: Token`),
//! plus the probes InfluxDB clients send (`/ping`, `/api/v2/health`) and 1.x's
//! `u`/`p` parameters.
#![cfg(feature = "server")]

use crate::support::server_util::{self, start_with, TestServer};
use strata::server::Limits;
use strata::Matcher;

const TOKEN: &str = "s3cret";
/// base64("telegraf:s3cret")
const BASIC: &str = "Basic dGVsZWdyYWY6czNjcmV0";

fn server() -> TestServer {
    start_with(server_util::opts(), Limits::default(), Some(TOKEN))
}

fn count(s: &TestServer, metric: &str) -> usize {
    let q = s.db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("__name__", metric)]).unwrap().map(|r| r.unwrap().1.count()).sum()
}

#[test]
fn telegraf_v1_output_defaults() {
    let s = server();
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", BASIC)];
    let r = s.send("POST", "/query", &form, b"q=CREATE+DATABASE+%22telegraf%22");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"results": [{"statement_id": 0}]}));
    let body = server_util::gzip(
        b"cpu,host=a usage_idle=90.5 1700000000000000000\ncpu,host=b usage_idle=12 1700000000000000000\n",
    );
    let h = [("Content-Encoding", "gzip"), ("Authorization", BASIC), ("User-Agent", "Telegraf/1.30")];
    let r = s.send("POST", "/write?db=telegraf", &h, &body);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(count(&s, "cpu_usage_idle"), 2);
    // The wrong password, or none, is refused.
    let r = s.send("POST", "/write?db=telegraf", &[("Authorization", "Basic dGVsZWdyYWY6bm9wZQ==")], b"m v=1");
    assert_eq!(r.status, 401);
    assert_eq!(s.post("/write?db=telegraf", b"m v=1").status, 401);
}

#[test]
fn telegraf_v2_output_defaults() {
    let s = server();
    let body = server_util::gzip(b"mem,host=a used=1 1700000000000000000\n");
    let h = [
        ("Content-Encoding", "gzip"),
        ("Authorization", "Token s3cret"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ];
    let r = s.send("POST", "/api/v2/write?bucket=telegraf&org=acme", &h, &body);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(count(&s, "mem_used"), 1);
}

#[test]
fn influx_probes_and_query_parameters() {
    let s = server();
    // Open without the token, as in InfluxDB.
    let r = s.get("/ping");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-influxdb-version"), Some("1.8.10"));
    assert_eq!(s.send("HEAD", "/ping", &[], b"").status, 204);
    let r = s.get("/ping?verbose=true");
    assert_eq!((r.status, r.json()["version"].as_str()), (200, Some("1.8.10")));
    let r = s.get("/api/v2/health");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("pass")));

    // InfluxDB 1.x's u/p parameters carry the token.
    assert_eq!(s.post("/write?db=x&u=me&p=s3cret", b"up v=1 1700000000000000000").status, 204);
    assert_eq!(s.post("/write?db=x&u=me&p=wrong", b"up v=1").status, 401);
    assert_eq!(count(&s, "up_v"), 1);
    let r = s.get("/query?q=CREATE%20DATABASE%20mydb&u=me&p=s3cret");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.get("/query?q=CREATE+DATABASE+a%3B+CREATE+DATABASE+%22b%22&p=s3cret");
    assert_eq!(r.json(), serde_json::json!({"results": [{"statement_id": 0}, {"statement_id": 1}]}));
    // Other InfluxQL is refused by name.
    let r = s.get("/query?q=SELECT+*+FROM+cpu&p=s3cret");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("\"SELECT * FROM cpu\" is not supported"), "{}", r.error());
    // Without q, POST /query is still seed 004's JSON query.
    let q = br#"{"metric_name":"up_v","start_time":0,"end_time":"now","function":"count"}"#;
    let r = s.send("POST", "/query", &[("Authorization", "Bearer s3cret"), ("Content-Type", "application/json")], q);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.send(
        "POST",
        "/query",
        &[("Authorization", "Bearer s3cret"), ("Content-Type", "application/x-www-form-urlencoded")],
        b"db=x",
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("missing parameter q"), "{}", r.error());
}
