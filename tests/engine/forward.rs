//! `strata::forward` against a small in-test remote-write receiver that answers
//! what the test scripts (503, 429, 400, ...): every committed sample arrives at
//! least once, in order per series within a run, across failures, seals that
//! would delete the WAL, and restarts of the Db from the persisted position.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use strata::forward::{ForwardConfig, Forwarder};
use strata::{Db, Labels, Matcher, SyncMode};

use crate::support::options::foreground;
use crate::support::server_util::pb::WriteRequestWithMetadata as WriteRequest;

/// What the receiver saw: per series (labels as text), every (run, ts, value bits) in
/// arrival order; and the headers of the last request.
#[derive(Default)]
struct Seen {
    series: BTreeMap<String, Vec<(u32, i64, u64)>>,
    headers: Vec<String>,
    requests: usize,
    /// Per metadata request: (type, family, help, unit) in wire order.
    metadata: Vec<Vec<(i32, String, String, String)>>,
}

struct Receiver {
    port: u16,
    /// Statuses to answer next (then 200), each with an optional Retry-After.
    script: Arc<Mutex<VecDeque<u16>>>,
    /// When set, every request gets this status.
    down: Arc<Mutex<Option<u16>>>,
    seen: Arc<Mutex<Seen>>,
    run: Arc<Mutex<u32>>,
}

impl Receiver {
    fn start() -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let r =
            Receiver { port, script: Arc::default(), down: Arc::default(), seen: Arc::default(), run: Arc::default() };
        let (script, down, seen, run) = (r.script.clone(), r.down.clone(), r.seen.clone(), r.run.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let (script, down, seen, run) = (script.clone(), down.clone(), seen.clone(), run.clone());
                std::thread::spawn(move || serve(conn, &script, &down, &seen, &run));
            }
        });
        r
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }
}

fn serve(
    conn: TcpStream,
    script: &Mutex<VecDeque<u16>>,
    down: &Mutex<Option<u16>>,
    seen: &Mutex<Seen>,
    run: &Mutex<u32>,
) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            headers.push(line);
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).unwrap();
        let status = (*down.lock().unwrap()).or_else(|| script.lock().unwrap().pop_front()).unwrap_or(200);
        if status == 200 {
            let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            let req = WriteRequest::decode(raw.as_slice()).unwrap();
            let run = *run.lock().unwrap();
            let mut s = seen.lock().unwrap();
            if !req.metadata.is_empty() {
                let m = req
                    .metadata
                    .iter()
                    .map(|m| (m.r#type, m.metric_family_name.clone(), m.help.clone(), m.unit.clone()));
                s.metadata.push(m.collect());
            }
            for ts in req.timeseries {
                let key: Vec<String> = ts.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect();
                let e = s.series.entry(key.join(",")).or_default();
                for x in ts.samples {
                    e.push((run, x.timestamp, x.value.unwrap_or(0.0).to_bits()));
                }
            }
            s.headers = headers;
            s.requests += 1;
        }
        let extra = if status == 429 { "Retry-After: 0\r\n" } else { "" };
        write!(w, "HTTP/1.1 {status} X\r\n{extra}Content-Length: 0\r\n\r\n").unwrap();
    }
}

fn labels(i: usize) -> Labels {
    let job = if i.is_multiple_of(5) { "skip" } else { "keep" };
    Labels::from_pairs([("__name__", "fwd_test"), ("i", &i.to_string()), ("job", job)]).unwrap()
}

fn key(l: &Labels) -> String {
    l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Commits `rounds` rounds of one sample per series for `series` series, from `t0`.
fn write(db: &Db, series: usize, t0: i64, rounds: i64, want: &mut BTreeMap<String, Vec<i64>>) {
    let mut app = db.appender();
    for r in 0..rounds {
        let ts = t0 + r * 1000;
        for i in 0..series {
            let l = labels(i);
            let s = app.series(&l).unwrap();
            app.append(s, ts, (ts as f64) + i as f64).unwrap();
            want.entry(key(&l)).or_default().push(ts);
        }
        app.commit().unwrap();
    }
}

fn wait_caught_up(f: &Forwarder) {
    let t0 = Instant::now();
    loop {
        let s = f.stats();
        if s.pending == 0 && s.lag_seconds == 0.0 {
            std::thread::sleep(Duration::from_millis(300));
            let s2 = f.stats();
            if s2.pending == 0 && s2.lag_seconds == 0.0 && s2.sent == s.sent {
                return;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "the forwarder did not catch up: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn config(r: &Receiver) -> ForwardConfig {
    let mut c = ForwardConfig::new(r.url());
    c.shards = 3;
    c.batch_samples = 97;
    c.min_backoff = Duration::from_millis(5);
    c.max_backoff = Duration::from_millis(50);
    c.flush_interval = Duration::from_millis(20);
    c
}

/// Every wanted timestamp arrived; within one run, each series' samples arrived in
/// strictly increasing time (a restart may send again what the last run sent).
fn check(seen: &Seen, want: &BTreeMap<String, Vec<i64>>) {
    for (k, ts) in want {
        let got = seen.series.get(k).unwrap_or_else(|| panic!("series {k} never arrived"));
        let mut by_run: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
        for &(run, t, _) in got {
            by_run.entry(run).or_default().push(t);
        }
        for (run, v) in &by_run {
            assert!(v.windows(2).all(|w| w[0] < w[1]), "{k}: run {run} out of order: {v:?}");
        }
        let all: std::collections::BTreeSet<i64> = got.iter().map(|x| x.1).collect();
        let missing: Vec<&i64> = ts.iter().filter(|t| !all.contains(t)).collect();
        assert!(
            missing.is_empty(),
            "{k}: {} of {} samples missing, first {:?}",
            missing.len(),
            ts.len(),
            missing.first()
        );
    }
}

#[test]
fn every_sample_arrives_through_errors_seals_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || foreground(SyncMode::Always).wal_segment_size(16 << 10);
    let rx = Receiver::start();
    let mut want = BTreeMap::new();
    let mut cfg = config(&rx);
    cfg.selector = vec![Matcher::eq("job", "keep")];
    cfg.headers = vec![("X-Scope-OrgID".into(), "tenant-1".into())];

    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, 40, 1_000_000, 5, &mut want); // before the forwarder starts: still in the WAL
    let f = Forwarder::start(&db, cfg.clone()).unwrap();
    rx.script.lock().unwrap().extend([503, 500, 429, 502, 503]);
    write(&db, 40, 1_100_000, 30, &mut want);
    // the target goes down; seals would delete the WAL files the forwarder has not sent
    *rx.down.lock().unwrap() = Some(503);
    for k in 0..6 {
        write(&db, 40, 2_000_000 + k * 100_000, 20, &mut want);
        db.flush().unwrap();
    }
    assert!(f.stats().retries > 0);
    *rx.down.lock().unwrap() = None;
    wait_caught_up(&f);
    let s = f.stop().unwrap();
    assert_eq!((s.failed, s.dropped, s.pending), (0, 0, 0), "{s:?}");
    assert!(s.retries >= 5, "{s:?}");

    // stopped while the target refuses everything: what was read stays unacknowledged
    *rx.run.lock().unwrap() = 1;
    cfg.drain_timeout = Duration::from_millis(100);
    let f = Forwarder::start(&db, cfg.clone()).unwrap();
    *rx.down.lock().unwrap() = Some(503);
    write(&db, 40, 3_000_000, 20, &mut want);
    std::thread::sleep(Duration::from_millis(300));
    assert!(f.stats().pending > 0);
    drop(f);
    db.close().unwrap();
    drop(db);

    // a new Db from the same directory resumes from the persisted position
    *rx.run.lock().unwrap() = 2;
    *rx.down.lock().unwrap() = None;
    let db = Db::open(dir.path(), opts()).unwrap();
    let f = Forwarder::start(&db, cfg.clone()).unwrap();
    write(&db, 40, 4_000_000, 10, &mut want);
    db.flush().unwrap();
    wait_caught_up(&f);
    // a seal after the target caught up deletes the WAL files it no longer needs
    write(&db, 40, 5_000_000, 1, &mut want);
    wait_caught_up(&f);
    std::thread::sleep(Duration::from_millis(400)); // the position is stored every 250 ms
    db.flush().unwrap();
    let s = f.stop().unwrap();
    assert_eq!((s.failed, s.dropped), (0, 0), "{s:?}");

    want.retain(|k, _| k.contains("job=keep"));
    let seen = rx.seen.lock().unwrap();
    assert!(seen.series.keys().all(|k| k.contains("job=keep")), "the selector let other series through");
    assert_eq!(seen.series.len(), 32);
    check(&seen, &want);
    for h in [
        "content-encoding: snappy",
        "content-type: application/x-protobuf",
        "x-prometheus-remote-write-version: 0.1.0",
        "x-scope-orgid: tenant-1",
    ] {
        assert!(seen.headers.iter().any(|l| l.to_ascii_lowercase() == h), "{h} not in {:?}", seen.headers);
    }
    // every WAL file before the position was released once acknowledged and sealed
    let wal_files = std::fs::read_dir(dir.path().join("wal")).unwrap().count();
    assert!(wal_files <= 3, "{wal_files} WAL files left");
}

#[test]
fn a_400_drops_the_batch_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    let db = Db::open(dir.path(), foreground(SyncMode::Never)).unwrap();
    let mut cfg = config(&rx);
    cfg.shards = 1;
    cfg.batch_samples = 10;
    cfg.headers.clear();
    cfg.basic_auth = Some(("user".into(), "pass".into()));
    let f = Forwarder::start(&db, cfg).unwrap();
    rx.script.lock().unwrap().push_back(400);
    let mut want = BTreeMap::new();
    write(&db, 10, 1_000, 3, &mut want);
    wait_caught_up(&f);
    let s = f.stats();
    assert_eq!((s.failed, s.sent), (10, 20), "{s:?}");
    let seen = rx.seen.lock().unwrap();
    // the first commit's samples were refused, the others came
    let got: usize = seen.series.values().map(Vec::len).sum();
    assert_eq!(got, 20);
    assert!(seen.series.values().all(|v| v.iter().all(|x| x.1 > 1_000)));
    assert!(seen
        .headers
        .iter()
        .any(|l| l == "authorization: Basic dXNlcjpwYXNz" || l == "Authorization: Basic dXNlcjpwYXNz"));
}

#[test]
fn the_backlog_cap_releases_the_oldest_wal_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    let db = Db::open(dir.path(), foreground(SyncMode::Never).wal_segment_size(8 << 10)).unwrap();
    let mut cfg = config(&rx);
    cfg.max_backlog_bytes = 32 << 10;
    *rx.down.lock().unwrap() = Some(503);
    let f = Forwarder::start(&db, cfg).unwrap();
    let mut want = BTreeMap::new();
    for k in 0..10 {
        write(&db, 50, 1_000_000 + k * 100_000, 20, &mut want);
        db.flush().unwrap();
    }
    // the kept WAL stays near the cap, not the 10 seals' worth
    let wal: u64 =
        std::fs::read_dir(dir.path().join("wal")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(wal < 200 << 10, "{wal} bytes of WAL kept");
    let dropped = f.stats().dropped;
    assert!(dropped > 0);
    *rx.down.lock().unwrap() = None;
    wait_caught_up(&f);
    let s = f.stop().unwrap();
    let total: u64 = want.values().map(|v| v.len() as u64).sum();
    let seen = rx.seen.lock().unwrap();
    let distinct: u64 = seen
        .series
        .values()
        .map(|v| v.iter().map(|x| x.1).collect::<std::collections::BTreeSet<_>>().len() as u64)
        .sum();
    // nothing is lost unaccounted: each sample arrived or was counted as dropped
    assert!(distinct + s.dropped >= total, "{distinct} arrived + {} dropped < {total}", s.dropped);
    assert!(distinct < total);
}

#[test]
fn refusals_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), foreground(SyncMode::Never)).unwrap();
    let mut cfg = ForwardConfig::new("http://127.0.0.1:9/api/v1/write");
    cfg.name = Some("vm".into());
    drop(Forwarder::start(&db, cfg.clone()).unwrap());
    let pos = dir.path().join("forward/vm.pos");
    let mut bytes = std::fs::read(&pos).unwrap();
    bytes[14] ^= 1;
    std::fs::write(&pos, &bytes).unwrap();
    let err = Forwarder::start(&db, cfg.clone()).err().unwrap().to_string();
    assert!(err.contains("vm.pos") && err.contains("checksum"), "{err}");

    let mem = Db::open_in_memory(strata::Options::default()).unwrap();
    let err = Forwarder::start(&mem, ForwardConfig::new("http://127.0.0.1:9/w")).err().unwrap().to_string();
    assert!(err.contains("in-memory"), "{err}");
    let err = Forwarder::start(&db, ForwardConfig::new("https://x/w")).err().unwrap().to_string();
    assert!(err.contains("plain HTTP"), "{err}");
}

/// Waits until the receiver has seen `n` metadata requests; the last one.
fn metadata_request(rx: &Receiver, n: usize) -> Vec<(i32, String, String, String)> {
    let t0 = Instant::now();
    loop {
        if let Some(m) = rx.seen.lock().unwrap().metadata.get(n - 1) {
            return m.clone();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "metadata request {n} never came");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the forwarder's counters satisfy `ok`.
fn wait_stats(f: &Forwarder, what: &str, ok: impl Fn(&strata::forward::ForwardStats) -> bool) {
    let t0 = Instant::now();
    while !ok(&f.stats()) {
        assert!(t0.elapsed() < Duration::from_secs(30), "{what}: {:?}", f.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn metadata_is_sent_at_start_on_change_and_again_after_failures() {
    use strata::{MetricKind, MetricMetadata};
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    let db = Db::open(dir.path(), foreground(SyncMode::Never)).unwrap();
    db.set_metadata("fwd_test", MetricMetadata::new(MetricKind::Counter, "bytes", "Bytes sent.")).unwrap();
    db.set_metadata("fwd_other", MetricMetadata::new(MetricKind::Gauge, "", "Not selected.")).unwrap();
    db.set_metadata("fwd_temp", MetricMetadata::new(MetricKind::Gauge, "celsius", "")).unwrap();
    let mut cfg = config(&rx);
    // name matchers choose families; the job matcher is about series and is ignored
    cfg.selector = vec![Matcher::regex("__name__", "fwd_te.*").unwrap(), Matcher::eq("job", "keep")];
    cfg.metadata_interval = Duration::from_secs(3600);
    // the first answer is a 503: sent again after a backoff, not an hour later
    rx.script.lock().unwrap().push_back(503);
    let f = Forwarder::start(&db, cfg).unwrap();
    let counter = (1, "fwd_test".to_string(), "Bytes sent.".to_string(), "bytes".to_string());
    let temp = (2, "fwd_temp".to_string(), String::new(), "celsius".to_string());
    assert_eq!(metadata_request(&rx, 1), vec![temp.clone(), counter]);
    // counted once the answer is read, just after the receiver recorded the request
    wait_stats(&f, "the send was not counted", |s| s.metadata_sent >= 2);
    let s = f.stats();
    assert_eq!((s.metadata_sent, s.metadata_failed), (2, 0), "{s:?}");
    assert!(s.retries >= 1, "{s:?}");
    // a change is sent well before the interval
    db.set_metadata("fwd_test", MetricMetadata::new(MetricKind::Counter, "bytes", "Bytes out.")).unwrap();
    let changed = (1, "fwd_test".to_string(), "Bytes out.".to_string(), "bytes".to_string());
    assert_eq!(metadata_request(&rx, 2), vec![temp.clone(), changed.clone()]);
    // a 400 is counted, and what changes next is sent again whole
    rx.script.lock().unwrap().push_back(400);
    db.remove_metadata("fwd_temp").unwrap();
    wait_stats(&f, "the refusal was not counted", |s| s.metadata_failed > 0);
    assert_eq!(f.stats().metadata_failed, 1);
    db.set_metadata("fwd_temp2", MetricMetadata::new(MetricKind::Info, "", "x")).unwrap();
    let info = (6, "fwd_temp2".to_string(), "x".to_string(), String::new());
    assert_eq!(metadata_request(&rx, 3), vec![info, changed]);
    f.stop().unwrap();
}

#[test]
fn metadata_interval_zero_sends_none() {
    use strata::{MetricKind, MetricMetadata};
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    let db = Db::open(dir.path(), foreground(SyncMode::Never)).unwrap();
    db.set_metadata("fwd_test", MetricMetadata::new(MetricKind::Counter, "", "h")).unwrap();
    let mut cfg = config(&rx);
    cfg.metadata_interval = Duration::ZERO;
    let f = Forwarder::start(&db, cfg).unwrap();
    let mut want = BTreeMap::new();
    write(&db, 3, 1_000, 2, &mut want);
    wait_caught_up(&f);
    std::thread::sleep(Duration::from_millis(500));
    let seen = rx.seen.lock().unwrap();
    check(&seen, &want);
    assert!(seen.metadata.is_empty(), "{:?}", seen.metadata);
    assert_eq!(f.stats().metadata_sent, 0);
}
