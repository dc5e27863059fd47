//! `strata serve --forward-to` into real software: VictoriaMetrics (Debian's
//! `victoria-metrics`, or `STRATA_VICTORIA_METRICS`) through a 30 s outage and a
//! `kill -9` of Strata, checked through its `/api/v1/export`; and Prometheus
//! (`--web.enable-remote-write-receiver`), checked through its query API. Each skips
//! without its binary unless `STRATA_REQUIRE_EXTERNAL=1` (set by `.ci/run`): then it
//! fails.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::served::{self, Served};
use crate::support::server_util::wait_for;
use crate::support::{external_binary, external_required, KillOnDrop};

const HOSTS: usize = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.0 request: the status and body, or None if there was no answer.
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (h, b) = text.split_once("\r\n\r\n")?;
    let status = h.lines().next()?.split(' ').nth(1)?.parse().ok()?;
    Some((status, b.to_string()))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Writes one sample per host per request until `stop`, to whatever address `addr`
/// holds; records the samples Strata acknowledged (2xx) by host.
struct Ingest {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, BTreeSet<i64>>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ingest {
    fn start(addr: SocketAddr) -> Ingest {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<BTreeMap<String, BTreeSet<i64>>>> = Arc::default();
        let target = Arc::new(Mutex::new(Some(addr)));
        let (s, a, t) = (stop.clone(), acked.clone(), target.clone());
        let thread = std::thread::spawn(move || {
            let mut last = 0i64;
            while !s.load(Ordering::Acquire) {
                let Some(addr) = *t.lock().unwrap() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let ts = now_ms().max(last + 1);
                last = ts;
                let body: String =
                    (0..HOSTS).map(|h| format!("fwd,host=h{h} value={}.5 {ts}\n", ts % 100_000 + h as i64)).collect();
                if let Some((204, _)) = http(addr, "POST", "/write?precision=ms", body.as_bytes()) {
                    let mut acked = a.lock().unwrap();
                    for h in 0..HOSTS {
                        acked.entry(format!("h{h}")).or_default().insert(ts);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Ingest { stop, acked, addr: target, thread: Some(thread) }
    }

    fn finish(mut self) -> BTreeMap<String, BTreeSet<i64>> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().unwrap().join().unwrap();
        self.acked.lock().unwrap().clone()
    }
}

/// Waits until Strata's forwarder has nothing pending, no lag, and sent nothing
/// more over the last second.
fn wait_forwarded(strata: SocketAddr) {
    let read = || {
        let (_, m) = http(strata, "GET", "/metrics", b"")?;
        let value = |name: &str| {
            m.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let idle =
            value("strata_forward_pending_samples{") == Some(0.0) && value("strata_forward_lag_seconds{") == Some(0.0);
        Some((idle, value("strata_forward_samples_sent_total{")?))
    };
    let mut last = None;
    let caught_up = wait_for(Duration::from_secs(90), || {
        let now = read()?;
        let done = now.0 && last == Some(now);
        last = Some(now);
        std::thread::sleep(Duration::from_secs(1));
        done.then_some(())
    });
    assert!(caught_up.is_some(), "the forwarder did not catch up within 90 s");
}

fn start_vm(vm: &Path, dir: &Path, port: u16) -> KillOnDrop {
    let child = crate::support::spawn(
        Command::new(vm)
            .arg(format!("-storageDataPath={}", dir.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-search.disableCache")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || http(addr, "GET", "/health", b"").filter(|r| r.0 == 200)).is_some(),
        "VictoriaMetrics did not start"
    );
    KillOnDrop(child)
}

fn serve(data: &Path, target: &str) -> Served {
    served::spawn(
        data,
        &[
            "--data",
            data.join("strata").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--sync",
            "always",
            "--forward-to",
            target,
            "--forward-batch-samples",
            "500",
        ],
        &[],
    )
}

#[test]
fn forward_to_victoriametrics_through_an_outage_and_a_kill() {
    let Some(vm) = external_binary("victoria-metrics", "STRATA_VICTORIA_METRICS") else {
        let why = "no `victoria-metrics` binary (apt-get install victoria-metrics, or set STRATA_VICTORIA_METRICS)";
        assert!(!external_required(), "forward_e2e cannot run: {why}; STRATA_REQUIRE_EXTERNAL is set");
        eprintln!("SKIPPED forward_to_victoriametrics: {why}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let vm_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let vm_proc = start_vm(&vm, &dir.path().join("vm"), port);
    let target = format!("http://127.0.0.1:{port}/api/v1/write");
    let mut strata = serve(dir.path(), &target);
    let ingest = Ingest::start(strata.addr());

    let mut marks = vec![("start", now_ms())];
    std::thread::sleep(Duration::from_secs(3));
    marks.push(("vm stop", now_ms()));
    // VictoriaMetrics stops for 30 s while ingest goes on. SIGTERM: it acknowledges
    // writes before they reach its disk, so a SIGKILL would lose what it had accepted.
    let mut vm_proc = vm_proc;
    let pid = vm_proc.0.id().to_string();
    assert!(crate::support::status(Command::new("kill").args(["-TERM", &pid])).unwrap().success());
    vm_proc.0.wait().unwrap();
    std::thread::sleep(Duration::from_secs(30));
    let _vm = start_vm(&vm, &dir.path().join("vm"), port);
    marks.push(("vm start", now_ms()));
    std::thread::sleep(Duration::from_secs(3));
    marks.push(("kill", now_ms()));
    // kill -9 Strata mid-stream, then start it again on the same data
    *ingest.addr.lock().unwrap() = None;
    std::thread::sleep(Duration::from_millis(50));
    let ingesting = std::thread::spawn({
        let addr = strata.addr();
        move || (0..20).for_each(|_| drop(http(addr, "POST", "/write?precision=ms", b"fwd,host=x value=1\n")))
    });
    drop(strata);
    let _ = ingesting.join();
    strata = serve(dir.path(), &target);
    *ingest.addr.lock().unwrap() = Some(strata.addr());
    marks.push(("restarted", now_ms()));
    std::thread::sleep(Duration::from_secs(3));
    let acked = ingest.finish();
    marks.push(("end", now_ms()));
    wait_forwarded(strata.addr());

    http(vm_addr, "GET", "/internal/force_flush", b"").expect("force_flush");
    let (status, export) = http(vm_addr, "GET", "/api/v1/export?match%5B%5D=fwd_value", b"").expect("export");
    assert_eq!(status, 200, "{export}");
    let mut theirs: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for line in export.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let host = v["metric"]["host"].as_str().unwrap().to_string();
        let e = theirs.entry(host).or_default();
        e.extend(v["timestamps"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()));
    }
    let total: usize = acked.values().map(BTreeSet::len).sum();
    assert!(total > HOSTS * 500, "only {total} samples acknowledged");
    for (host, want) in &acked {
        let got = theirs.get(host).unwrap_or_else(|| panic!("host {host} is not in VictoriaMetrics"));
        let missing: Vec<&i64> = want.difference(got).collect();
        assert!(
            missing.is_empty(),
            "{host}: {} of {} acknowledged samples missing, from {:?} to {:?}; phases {marks:?}",
            missing.len(),
            want.len(),
            missing.first(),
            missing.last()
        );
    }
    let (_, lines) = strata.terminate();
    assert!(lines.iter().any(|l| l.contains("forwarding to http://127.0.0.1")), "{lines:#?}");
}

fn start_prometheus(bin: &Path, dir: &Path, port: u16) -> Child {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").unwrap();
    crate::support::spawn(
        Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap()
}

#[test]
fn forward_to_prometheus_and_query_it_back() {
    let Some(bin) = external_binary("prometheus", "STRATA_PROMETHEUS") else {
        let why = "no `prometheus` binary (apt-get install prometheus, or set STRATA_PROMETHEUS)";
        assert!(!external_required(), "forward_e2e cannot run: {why}; STRATA_REQUIRE_EXTERNAL is set");
        eprintln!("SKIPPED forward_to_prometheus: {why}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prom: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _p = KillOnDrop(start_prometheus(&bin, dir.path(), port));
    assert!(
        wait_for(Duration::from_secs(30), || http(prom, "GET", "/-/ready", b"").filter(|r| r.0 == 200)).is_some(),
        "Prometheus did not start"
    );
    let mut strata = serve(dir.path(), &format!("http://127.0.0.1:{port}/api/v1/write"));
    let addr = strata.addr();
    // 5 hosts x 60 samples, 1 s apart, ending a minute ago
    let t0 = (now_ms() / 1000 - 120) * 1000;
    let mut body = String::new();
    for k in 0..60i64 {
        for h in 0..5 {
            body.push_str(&format!("fwdp,host=h{h} value={} {}\n", k * 10 + h, t0 + k * 1000));
        }
    }
    assert_eq!(http(addr, "POST", "/write?precision=ms", body.as_bytes()).map(|r| r.0), Some(204));
    wait_forwarded(addr);
    let end = t0 / 1000 + 59;
    let q = format!("/api/v1/query?query=count_over_time(fwdp_value[1m])&time={end}");
    let data = wait_for(Duration::from_secs(30), || {
        let (s, b) = http(prom, "GET", &q, b"")?;
        let v: serde_json::Value = serde_json::from_str(&b).ok()?;
        (s == 200 && v["data"]["result"].as_array()?.len() == 5).then_some(v)
    })
    .expect("Prometheus never returned the 5 forwarded series");
    for r in data["data"]["result"].as_array().unwrap() {
        assert_eq!(r["value"][1].as_str(), Some("60"), "{r}");
    }
    let q = format!("/api/v1/query?query=fwdp_value%7Bhost%3D%22h3%22%7D&time={end}");
    let (_, b) = http(prom, "GET", &q, b"").unwrap();
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1].as_str(), Some("593"), "{b}");
    strata.terminate();
}

/// One Strata forwarding to another: the samples arrive, and so does the metric
/// metadata, within a second of being set (no external software needed).
#[test]
fn forward_to_strata_carries_metric_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let b_data = dir.path().join("b");
    let mut b = served::spawn(dir.path(), &["--data", b_data.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
    let b_addr = b.addr();
    let mut a = served::spawn(
        dir.path(),
        &[
            "--data",
            dir.path().join("a").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--forward-to",
            &format!("http://{b_addr}/api/v1/write"),
            "--forward-metadata-interval",
            "1h",
        ],
        &[],
    );
    let a_addr = a.addr();
    let t = now_ms() - 60_000;
    let body = format!(
        r#"[{{"metric_name": "fwd_bytes", "value": 7, "timestamp": {t}, "labels": {{"host": "h1"}},
             "type": "counter", "unit": "bytes", "help": "Bytes sent."}},
            {{"metric_name": "fwd_temp", "value": 21.5, "timestamp": {t}, "type": "gauge", "unit": "celsius"}}]"#
    );
    let r = http(a_addr, "POST", "/metrics/ingest", body.as_bytes()).unwrap();
    assert_eq!(r.0, 200, "{}", r.1);
    wait_forwarded(a_addr);
    // the interval is an hour: only the change itself can have sent it
    let meta = wait_for(Duration::from_secs(30), || {
        let (s, body) = http(b_addr, "GET", "/api/v1/metadata", b"")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (s == 200 && v["data"].as_object()?.len() == 2).then_some(v)
    })
    .expect("the metadata never reached the second server");
    assert_eq!(meta["data"]["fwd_bytes"][0]["type"], "counter", "{meta}");
    assert_eq!(meta["data"]["fwd_bytes"][0]["unit"], "bytes", "{meta}");
    assert_eq!(meta["data"]["fwd_bytes"][0]["help"], "Bytes sent.", "{meta}");
    assert_eq!(meta["data"]["fwd_temp"][0]["type"], "gauge", "{meta}");
    assert_eq!(meta["data"]["fwd_temp"][0]["unit"], "celsius", "{meta}");
    let q = format!("/api/v1/query?query=fwd_bytes&time={}", t / 1000 + 1);
    let (_, body) = http(b_addr, "GET", &q, b"").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "7", "{body}");
    let (_, m) = http(a_addr, "GET", "/metrics", b"").unwrap();
    let sent = m.lines().find(|l| l.starts_with("strata_forward_metadata_sent_total{")).expect("no metadata counter");
    // at least the two families once (a send may have caught the first change alone)
    let n: f64 = sent.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2.0, "{sent}");
    a.terminate();
    b.terminate();
}
