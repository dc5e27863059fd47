//! The admin API: flush, compact, the recorded retention policy and its rules, and
//! Prometheus's delete_series; and a `strata serve` process that keeps the policy its
//! directory recorded across restarts and kill -9.

#![cfg(feature = "server")]

use crate::support::server_util;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::server_util::{request, start, start_with, wait_for};
use serde_json::json;
use strata::server::Limits;
use strata::{Db, Labels, Matcher, Options, RetentionPolicy, SyncMode};

/// 2023-11-14: far past any tiered retention.
const OLD: i64 = 1_700_000_000_000;

fn write_old(db: &Db, hosts: &[&str], n: i64) {
    let mut app = db.appender();
    for h in hosts {
        let l = Labels::from_pairs([("__name__", "old_metric"), ("host", h)]).unwrap();
        for i in 0..n {
            app.append_labels(&l, OLD + i * 60_000, i as f64).unwrap();
        }
    }
    app.commit().unwrap();
}

fn count(db: &Db, host: &str) -> usize {
    let q = db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("host", host)]).unwrap().map(|s| s.unwrap().1.count()).sum()
}

#[test]
fn flush_compact_and_delete_series_report_what_they_did() {
    let srv = start();
    write_old(&srv.db, &["a", "b"], 1000);
    let r = request(srv.addr, "POST", "/admin/flush", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["sealed_samples"], 2000);
    let r = request(srv.addr, "POST", "/admin/compact", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["removed"].as_array().map(Vec::len), Some(0), "keep-forever removes nothing");
    let start_s = (OLD + 100 * 60_000) / 1000;
    let end_s = (OLD + 199 * 60_000) / 1000;
    let path =
        format!("/api/v1/admin/tsdb/delete_series?match[]=old_metric%7Bhost%3D%22a%22%7D&start={start_s}&end={end_s}");
    let r = request(srv.addr, "POST", &path, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    assert_eq!(d["status"], "success");
    assert_eq!(d["data"]["samples"], 100, "{d}");
    assert_eq!(d["data"]["series_affected"], 1, "{d}");
    assert_eq!(count(&srv.db, "a"), 900);
    assert_eq!(count(&srv.db, "b"), 1000);
    let m = request(srv.addr, "GET", "/metrics", &[], b"").text();
    assert!(m.contains("strata_deleted_items_total{kind=\"samples\"} 100"), "{m}");
    // As Prometheus, the parameters may come as a form body instead (curl --data-urlencode).
    let form = format!("match[]=old_metric%7Bhost%3D%22b%22%7D&start={start_s}&end={end_s}");
    let ctype = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = request(srv.addr, "POST", "/api/v1/admin/tsdb/delete_series", &ctype, form.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["samples"], 100, "{}", r.text());
    assert_eq!(count(&srv.db, "b"), 900);
    let r = request(srv.addr, "POST", "/api/v1/admin/tsdb/delete_series", &[("Content-Type", "text/plain")], b"x");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("application/x-www-form-urlencoded"), "{}", r.text());
    let bad = request(srv.addr, "POST", "/api/v1/admin/tsdb/delete_series?match[]=x&start=soon", &[], b"");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("soon"), "{}", bad.text());
}

#[test]
fn retention_is_read_and_changed_over_http_and_recorded() {
    let srv = start();
    let r = request(srv.addr, "GET", "/admin/retention", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["defaults"]["raw"], "forever");
    let body = json!({"preset": "tiered", "max_disk_bytes": 1_000_000_000u64,
        "rules": [{"name": "dbg", "metric": "debug_*", "matchers": "{env=\"dev\"}", "priority": 2, "durations": {"raw": "1d"}}]});
    let r = request(
        srv.addr,
        "PUT",
        "/admin/retention",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let p = srv.db.retention_policy();
    assert_eq!(p.default_durations(), RetentionPolicy::tiered().default_durations());
    assert_eq!(p.rules().len(), 1);
    assert_eq!(p.max_disk_bytes(), Some(1_000_000_000));
    // Recorded: the directory now says so.
    let rec = strata::retention::read_settings(srv.db.path()).unwrap().unwrap();
    assert_eq!(rec, p);
    let rule = json!({"name": "short", "metric": "old_*", "durations": {"raw": "2d", "5m": "2d"}});
    let r = request(srv.addr, "POST", "/admin/retention/rules", &[], rule.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["rules"].as_array().unwrap().len(), 2);
    let again = request(srv.addr, "POST", "/admin/retention/rules", &[], rule.to_string().as_bytes());
    assert_eq!(again.status, 422, "{}", again.text());
    assert!(again.text().contains("already exists"));
    assert_eq!(request(srv.addr, "DELETE", "/admin/retention/rules/short", &[], b"").status, 200);
    let gone = request(srv.addr, "DELETE", "/admin/retention/rules/short", &[], b"");
    assert_eq!(gone.status, 404);
    let bad = request(srv.addr, "PUT", "/admin/retention", &[], br#"{"defaults": {"raw": "0d"}}"#);
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("defaults.raw"), "{}", bad.text());
    assert_eq!(strata::retention::read_settings(srv.db.path()).unwrap().unwrap().rules().len(), 1);
}

#[test]
fn admin_endpoints_need_the_token() {
    let srv = start_with(server_util::opts(), Limits::default(), Some("s3cret"));
    for (m, p) in [
        ("POST", "/admin/flush"),
        ("POST", "/admin/compact"),
        ("GET", "/admin/retention"),
        ("PUT", "/admin/retention"),
        ("POST", "/admin/retention/rules"),
        ("DELETE", "/admin/retention/rules/x"),
        ("POST", "/api/v1/admin/tsdb/delete_series?match[]=x"),
    ] {
        assert_eq!(request(srv.addr, m, p, &[], b"").status, 401, "{m} {p}");
    }
    let ok = request(srv.addr, "GET", "/admin/retention", &[("Authorization", "Bearer s3cret")], b"");
    assert_eq!(ok.status, 200);
}

// ---- a real `strata serve` process ----

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Serve {
    child: Child,
    addr: std::net::SocketAddr,
}

fn serve(dir: &Path) -> Serve {
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = crate::support::spawn(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "serve",
                "--data",
                dir.to_str().unwrap(),
                "--listen",
                &addr.to_string(),
                "--maintenance-interval",
                "1s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let up = wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(addr)
            .ok()
            .map(|_| ())
            .filter(|_| request(addr, "GET", "/health", &[], b"").status == 200)
    });
    assert!(up.is_some(), "strata serve did not start");
    Serve { child, addr }
}

impl Serve {
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    fn term(mut self) {
        let pid = self.child.id().to_string();
        let _ = crate::support::status(Command::new("kill").args(["-TERM", &pid]));
        let _ = self.child.wait();
    }
}

fn fixture(dir: &Path, sealed: bool) {
    let db =
        Db::open(dir, Options::default().sync(SyncMode::Never).background(false).retention(RetentionPolicy::forever()))
            .unwrap();
    write_old(&db, &["a", "b"], 5000);
    if sealed {
        db.flush().unwrap();
    }
}

fn reopen(dir: &Path) -> Db {
    Db::open(dir, Options::default().background(false)).unwrap()
}

#[test]
fn a_restarted_server_without_flags_keeps_years_old_data_through_maintenance() {
    // Opens a Db here, then hands its directory to `strata serve`: see `support::serial`.
    let _one = crate::support::serial();
    for sealed in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        fixture(&dir, sealed);
        let s = serve(&dir);
        // More than two maintenance passes.
        std::thread::sleep(Duration::from_millis(3500));
        s.term();
        let db = reopen(&dir);
        assert_eq!(count(&db, "a") + count(&db, "b"), 10_000, "sealed: {sealed}");
        assert_eq!(db.retention_policy(), RetentionPolicy::forever());
    }
}

#[test]
fn a_policy_set_over_http_survives_kill_9_and_a_cli_rule_applies_at_the_next_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fixture(&dir, true);
    let s = serve(&dir);
    let body = json!({"defaults": {"1h": "400d"}, "max_disk_bytes": 1_000_000_000_000u64});
    let r = request(s.addr, "PUT", "/admin/retention", &[], body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    s.kill9();
    let s = serve(&dir);
    let r = request(s.addr, "GET", "/admin/retention", &[], b"").json();
    assert_eq!(r["defaults"]["1h"], "400d", "{r}");
    assert_eq!(r["defaults"]["raw"], "forever", "{r}");
    assert_eq!(r["max_disk_bytes"], 1_000_000_000_000u64, "{r}");
    // A rule added from the CLI, through the running server.
    let url = format!("http://{}", s.addr);
    let out = crate::support::output(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["retention", "rule", "add", "short", "--metric", "old_*", "--match", "{host=\"a\"}", "--raw", "1d"])
            .args(["--url", &url]),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The next maintenance pass removes host a's data from disk; host b stays.
    let removed = wait_for(Duration::from_secs(20), || {
        let m = request(s.addr, "GET", "/admin/retention", &[], b"").json();
        m["would_remove"].as_array().is_some_and(|l| l.is_empty()).then_some(())
    });
    assert!(removed.is_some(), "the rule did not apply");
    // The removal shows on /metrics too.
    let m = request(s.addr, "GET", "/metrics", &[], b"").text();
    assert!(m.contains("strata_retention_removed_items_total{kind=\"samples\"} 5000"), "{m}");
    s.term();
    let db = reopen(&dir);
    assert_eq!(count(&db, "a"), 0);
    assert_eq!(count(&db, "b"), 5000);
    assert_eq!(db.retention_policy().rules().len(), 1);
}
