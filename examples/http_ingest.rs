//! HTTP ingest throughput over loopback: N clients POST pre-built batches to a
//! Strata server running in this process (or at `--addr`), over keep-alive connections.
//!
//! ```text
//! cargo run --release --example http_ingest -- [influx|remote_write] [--clients 2] [--batches 30] [--lines 10000] [--always] [--addr host:port]
//! ```
//! `influx`: each batch is 10,000 lines of the devops cpu measurement (100 hosts ×
//! 100 time steps, 10 fields a line: 100,000 samples). `remote_write`: each batch is a
//! snappy protobuf WriteRequest of 1,000 series × 100 samples. The server uses
//! `Options::default()` (WAL fsync every second; `--always`: fsync before each answer).
//! Prints samples/s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use strata::fuzzing::prompb::{Label, Sample, TimeSeries, WriteRequest};
use strata::server::{serve, ServeConfig};
use strata::{Db, Options, SyncMode};

const HOSTS: usize = 100;
const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Where the data starts: two days ago on a whole minute, so every batch is in the
/// past and inside the default 7-day raw retention.
fn start_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    (now - 2 * 86_400_000) / 60_000 * 60_000
}

/// A 10-field devops line batch of client `c`'s own hosts: `lines / HOSTS` steps of
/// 10 s starting at `step0` (clients write disjoint series, each in time order).
fn influx_batch(c: usize, lines: usize, step0: usize, rng: &mut u64) -> Vec<u8> {
    let mut out = String::with_capacity(lines * 260);
    let t0 = start_ms();
    for i in 0..lines {
        let (step, host) = (step0 + i / HOSTS, i % HOSTS);
        let ts_ns = (t0 + step as i64 * 10_000) * 1_000_000;
        out.push_str(&format!(
            "cpu,hostname=host_{c}_{host},region=eu-west-{},datacenter=eu-west-{}a ",
            host % 3,
            host % 3
        ));
        for (f, name) in FIELDS.iter().enumerate() {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            let v = (*rng % 1000) as f64 / 10.0;
            out.push_str(&format!("{}{name}={v}", if f > 0 { "," } else { "" }));
        }
        out.push_str(&format!(" {ts_ns}\n"));
    }
    out.into_bytes()
}

/// A WriteRequest of client `c`'s 1,000 series × `per` samples starting at `step0`.
fn remote_batch(c: usize, per: usize, step0: usize, rng: &mut u64) -> Vec<u8> {
    let t0 = start_ms();
    let timeseries = (0..1000)
        .map(|s| TimeSeries {
            labels: vec![
                Label { name: "__name__".into(), value: format!("cpu_{}", FIELDS[s % 10]) },
                Label { name: "hostname".into(), value: format!("host_{c}_{}", s / 10) },
                Label { name: "region".into(), value: format!("eu-west-{}", s % 3) },
            ],
            samples: (0..per)
                .map(|k| {
                    *rng ^= *rng << 13;
                    *rng ^= *rng >> 7;
                    *rng ^= *rng << 17;
                    Sample { value: Some((*rng % 1000) as f64 / 10.0), timestamp: t0 + (step0 + k) as i64 * 10_000 }
                })
                .collect(),
        })
        .collect();
    snap::raw::Encoder::new().compress_vec(&WriteRequest { timeseries, ..Default::default() }.encode_to_vec()).unwrap()
}

/// POSTs every body in turn on one keep-alive connection.
fn client(addr: SocketAddr, path: &str, extra: &str, bodies: &[Vec<u8>]) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for body in bodies {
        let head = format!("POST {path} HTTP/1.1\r\nHost: bench\r\n{extra}Content-Length: {}\r\n\r\n", body.len());
        w.write_all(head.as_bytes()).unwrap();
        w.write_all(body).unwrap();
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut b = vec![0; len];
        r.read_exact(&mut b).unwrap();
        assert!(status.contains(" 204 "), "{status} {}", String::from_utf8_lossy(&b));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = if args.iter().any(|a| a == "remote_write") { "remote_write" } else { "influx" };
    let clients = arg(&args, "--clients", 2);
    let batches = arg(&args, "--batches", 30);
    let lines = arg(&args, "--lines", 10_000);

    let dir = tempfile::tempdir().unwrap();
    let external: Option<SocketAddr> =
        args.iter().position(|a| a == "--addr").and_then(|i| args.get(i + 1)).and_then(|a| a.parse().ok());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // `--always`: fsync before acknowledging each request (group commit).
    let sync = if args.iter().any(|a| a == "--always") { SyncMode::Always } else { Options::default().get_sync() };
    let db = Arc::new(Db::open(dir.path(), Options::default().sync(sync)).unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let addr = match external {
        Some(a) => a,
        None => {
            let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            let addr = listener.local_addr().unwrap();
            let cfg = ServeConfig::default();
            rt.spawn(serve(db.clone(), listener, cfg, async move {
                let _ = stop_rx.await;
            }));
            addr
        }
    };

    eprintln!("building {clients} × {batches} {mode} batches...");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let (path, extra, per_batch) = match mode {
        "influx" => ("/write", "", lines * FIELDS.len()),
        _ => ("/api/v1/write", "Content-Encoding: snappy\r\nContent-Type: application/x-protobuf\r\n", 100_000),
    };
    let work: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|c| {
            (0..batches)
                .map(|b| {
                    // Each batch covers later time steps than the one before: in-order ingest.
                    if mode == "influx" {
                        influx_batch(c, lines, b * lines.div_ceil(HOSTS), &mut rng)
                    } else {
                        remote_batch(c, 100, b * 100, &mut rng)
                    }
                })
                .collect()
        })
        .collect();
    let bytes: usize = work.iter().flatten().map(Vec::len).sum();
    eprintln!("{:.1} MB of bodies; sending", bytes as f64 / 1e6);

    let started = Instant::now();
    std::thread::scope(|s| {
        for bodies in &work {
            s.spawn(|| client(addr, path, extra, bodies));
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let samples = clients * batches * per_batch;
    println!(
        "{mode}: {samples} samples in {secs:.2} s = {:.0} samples/s ({:.0} MB/s of bodies, {clients} clients)",
        samples as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    let _ = stop_tx.send(());
    if external.is_none() {
        let st = db.stats().unwrap();
        println!("server holds {} series, {} samples", st.series, st.samples());
    }
}
