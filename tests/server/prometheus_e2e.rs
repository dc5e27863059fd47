//! End to end with the real Prometheus (Debian's `prometheus`, 2.42): it scrapes
//! Strata's `/metrics` every second, remote-writes everything it scrapes to Strata,
//! and remote-reads from Strata (`read_recent: true`). The test waits until Strata
//! holds scraped samples, then asks Prometheus' HTTP API for a series that exists
//! only in Strata, so the answer must have come through remote read, and checks it
//! against what Strata stores. Skips with a message when the binary is absent,
//! unless `STRATA_REQUIRE_EXTERNAL=1` (which `.ci/run` sets): then it fails.
#![cfg(feature = "server")]

use crate::support::server_util;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::server_util::start;
use strata::{Labels, Matcher};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET on Prometheus' API, returning its `data` on success.
fn prom_api(addr: std::net::SocketAddr, path: &str) -> Option<serde_json::Value> {
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    drop(s);
    let r = server_util::request(addr, "GET", path, &[], b"");
    if r.status != 200 {
        return None;
    }
    let j: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    (j["status"] == "success").then(|| j["data"].clone())
}

#[test]
fn prometheus_scrapes_remote_writes_and_remote_reads() {
    let Some(bin) = crate::support::external_binary("prometheus", "STRATA_PROMETHEUS") else {
        let why = "no `prometheus` binary (apt-get install prometheus, or set STRATA_PROMETHEUS)";
        assert!(
            !crate::support::external_required(),
            "prometheus_e2e cannot run: {why}; STRATA_REQUIRE_EXTERNAL is set, so this fails"
        );
        eprintln!("SKIPPED prometheus_e2e: {why}");
        return;
    };
    let s = start();
    let strata = s.addr;

    // A series only Strata has: Prometheus can only learn it by remote read.
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let t0 = now_s - 60;
    let values = [0.1, 1.25, -3.5, 1e-7, 123456.789, 42.0];
    let mut app = s.db.appender();
    let only = Labels::metric("strata_e2e_only", [("src", "direct")]).unwrap();
    for (k, v) in values.iter().enumerate() {
        app.append_labels(&only, (t0 + 10 * k as i64) * 1000, *v).unwrap();
    }
    app.commit().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prom_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: strata\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{strata}']\n\
         remote_write:\n  - url: http://{strata}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      \
         max_samples_per_send: 500\n      min_backoff: 100ms\n      max_backoff: 1s\n    \
         metadata_config:\n      send: true\n      send_interval: 1s\n\
         remote_read:\n  - url: http://{strata}/api/v1/read\n    read_recent: true\n"
    );
    let cfg_path = dir.path().join("prometheus.yml");
    std::fs::write(&cfg_path, config).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = crate::support::spawn(
        Command::new(&bin)
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    )
    .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let _prom = crate::support::KillOnDrop(child);
    let show_log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    // 1. Prometheus scrapes Strata and remote-writes the samples back to it.
    let scraped = server_util::wait_for(Duration::from_secs(60), || {
        let up = s.db.latest(&[Matcher::eq("__name__", "up"), Matcher::eq("job", "strata")]).ok()?;
        let own = s.db.latest(&[Matcher::eq("__name__", "strata_ingested_samples_total")]).ok()?;
        (!up.is_empty() && !own.is_empty()).then_some((up, own))
    });
    let (up, own) = scraped.unwrap_or_else(|| panic!("no remote-written samples within 60 s; log:\n{}", show_log()));
    assert_eq!(up[0].1.value, 1.0);
    assert_eq!(up[0].0.get("instance"), Some(strata.to_string().as_str()));
    assert!(own.iter().any(|(l, _)| l.get("protocol") == Some("remote_write")));

    // 1b. It sends the scraped HELP and TYPE lines as remote write metadata.
    let meta = server_util::wait_for(Duration::from_secs(30), || s.db.metadata("strata_ingested_samples_total"))
        .unwrap_or_else(|| panic!("no remote-written metadata within 30 s; log:\n{}", show_log()));
    assert_eq!(meta.kind, strata::MetricKind::Counter);
    assert_eq!(meta.help, "Samples committed, by write protocol.");

    // 2. Prometheus answers for the Strata-only series through remote read.
    let query = format!("/api/v1/query_range?query=strata_e2e_only&start={t0}&end={}&step=10", t0 + 50);
    let data = server_util::wait_for(Duration::from_secs(30), || {
        let d = prom_api(prom_addr, &query)?;
        (d["result"].as_array()?.len() == 1).then_some(d)
    })
    .unwrap_or_else(|| panic!("Prometheus never returned strata_e2e_only; log:\n{}", show_log()));
    let series = &data["result"][0];
    assert_eq!(series["metric"]["__name__"], "strata_e2e_only");
    assert_eq!(series["metric"]["src"], "direct");
    let got: Vec<(i64, f64)> = series["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap() as i64, p[1].as_str().unwrap().parse::<f64>().unwrap()))
        .collect();
    let stored: Vec<(i64, f64)> =
        s.db.querier(i64::MIN..i64::MAX)
            .select(&[Matcher::eq("__name__", "strata_e2e_only")])
            .unwrap()
            .flat_map(|r| r.unwrap().1.map(|s| (s.ts / 1000, s.value)).collect::<Vec<_>>())
            .collect();
    assert_eq!(stored.len(), values.len());
    assert_eq!(got, stored, "Prometheus (via remote read) and Strata disagree");

    // 3. An instant query through Prometheus sees the latest value Strata holds.
    let inst = prom_api(prom_addr, &format!("/api/v1/query?query=strata_e2e_only&time={}", t0 + 55)).unwrap();
    assert_eq!(inst["result"][0]["value"][1], "42");

    // And Strata saw the remote reads.
    let metrics = s.get("/metrics").text();
    let reads = metrics
        .lines()
        .find_map(|l| l.strip_prefix("strata_query_duration_seconds_count{endpoint=\"remote_read\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(reads >= 2.0, "remote reads seen: {reads}");
}
