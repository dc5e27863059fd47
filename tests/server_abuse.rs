//! Abuse of the HTTP server over real loopback sockets (RELIABILITY items 9 and
//! 10): oversized bodies, compression bombs, slowloris, a connection flood, bad
//! tokens and path-like names. Each case checks the answer, that the server keeps
//! serving, that nothing panicked, and, where memory is at stake, the process's
//! peak RSS (the server runs in this process).
//!
//! The tests take one lock: peak RSS is a process-wide figure, so they run one at a time.
#![cfg(feature = "server")]

mod support;

use crate::support::server_util;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::support::server_util::{chunk, exchange, parse_response, start_with, Response, TestServer};
use strata::server::Limits;

static SERIAL: Mutex<()> = Mutex::new(());
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Serializes the tests and counts panics on any thread (server tasks included)
/// from here on.
fn serial() -> MutexGuard<'static, ()> {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    PANICS.store(0, Ordering::SeqCst);
    g
}

fn server(limits: Limits) -> TestServer {
    start_with(server_util::opts(), limits, None)
}

/// The server answers a plain request and accepts a small write.
fn assert_healthy(s: &TestServer) {
    assert_eq!(s.get("/health").status, 200);
    let r = s.post("/write", b"healthy v=1 1000000000\n");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Peak memory while it lives: resident (VmHWM, reset through `clear_refs`, or
/// sampled VmRSS where that is not allowed) and virtual (VmPeak, which also sees a
/// large allocation that was never touched).
struct Peak {
    rss0: u64,
    vm_peak0: u64,
    hwm_reset: bool,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<u64>,
}

impl Peak {
    fn start() -> Peak {
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut max = 0;
            while !stop2.load(Ordering::Relaxed) {
                max = max.max(status_kb("VmRSS:"));
                std::thread::sleep(Duration::from_millis(5));
            }
            max
        });
        Peak { rss0: status_kb("VmRSS:"), vm_peak0: status_kb("VmPeak:"), hwm_reset, stop, sampler }
    }

    /// (resident, virtual) growth of the peaks in MiB.
    fn growth_mib(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.sampler.join().unwrap();
        let peak = if self.hwm_reset { status_kb("VmHWM:").max(sampled) } else { sampled };
        let mib = |kb: u64| kb as f64 / 1024.0;
        (mib(peak.saturating_sub(self.rss0)), mib(status_kb("VmPeak:").saturating_sub(self.vm_peak0)))
    }
}

fn head(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n").into_bytes()
}

/// Streams `total` bytes of `fill` as a chunked body in 16 KiB chunks.
fn send_chunked(addr: SocketAddr, path: &str, extra: &str, fill: u8, total: usize) -> Response {
    let h = head("POST", path, &format!("Transfer-Encoding: chunked\r\n{extra}"));
    let raw = exchange(addr, move |c| {
        let _ = c.write_all(&h);
        let piece = chunk(&vec![fill; 16 << 10]);
        for _ in 0..total / (16 << 10) {
            if c.write_all(&piece).is_err() {
                return;
            }
        }
        let _ = c.write_all(b"0\r\n\r\n");
    });
    parse_response(&raw)
}

const WRITE_PATHS: [&str; 7] =
    ["/write", "/api/v2/write", "/metrics/ingest", "/import", "/api/v1/write", "/api/v1/read", "/query"];

#[test]
fn oversized_bodies_get_413_naming_the_limit() {
    let _g = serial();
    let s = server(Limits { max_body_bytes: 64 << 10, ..Limits::default() });
    for path in WRITE_PATHS {
        // A declared 10 GiB body, never sent: refused from the header alone.
        let h = head("POST", path, "Content-Length: 10737418240\r\n");
        let r = parse_response(&exchange(s.addr, move |c| {
            let _ = c.write_all(&h);
        }));
        assert_eq!(r.status, 413, "{path}: {}", r.text());
        assert!(r.error().contains("65536 bytes (max_body_bytes)"), "{path}: {}", r.error());
        // No length (chunked): 1 MiB is cut off at the cap while reading.
        let r = send_chunked(s.addr, path, "", b'#', 1 << 20);
        assert_eq!(r.status, 413, "{path}: {}", r.text());
        assert!(r.error().contains("max_body_bytes"), "{path}: {}", r.error());
    }
    // Exactly at the cap is accepted: 64 KiB of line protocol, padded with a comment.
    let mut body = b"at_cap v=1 1000000000\n#".to_vec();
    body.resize(64 << 10, b'x');
    let r = s.post("/write", &body);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_healthy(&s);
}

/// 1 GiB of zeros, gzip-compressed (about 1 MiB), built once.
fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap()
    })
}

#[test]
fn compression_bombs_are_refused_within_bounded_memory() {
    let _g = serial();
    let max_out = 8usize << 20;
    let s = server(Limits { max_decompressed_bytes: max_out, ..Limits::default() });
    let bomb = gzip_bomb();
    assert!(bomb.len() < 2 << 20, "gzip bomb is {} bytes", bomb.len());
    // A snappy block of 100 MiB of zeros (about 5 MiB, within max_body_bytes), and
    // a 5-byte header declaring 4 GiB followed by 1 MiB of junk.
    let snappy_real = snap::raw::Encoder::new().compress_vec(&vec![0u8; 100 << 20]).unwrap();
    assert!(snappy_real.len() < 16 << 20);
    let mut snappy_header = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    snappy_header.extend(std::iter::repeat_n(0x55u8, 1 << 20));

    let peak = Peak::start();
    for path in ["/write", "/metrics/ingest", "/import", "/query"] {
        // Streamed in 64 KiB chunks, without a Content-Length.
        let h = head("POST", path, "Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n");
        let raw = exchange(s.addr, move |c| {
            let _ = c.write_all(&h);
            for piece in bomb.chunks(64 << 10) {
                if c.write_all(&chunk(piece)).is_err() {
                    return;
                }
            }
            let _ = c.write_all(b"0\r\n\r\n");
        });
        let r = parse_response(&raw);
        assert_eq!(r.status, 413, "{path}: {}", r.text());
        assert!(r.error().contains("8388608 bytes (max_decompressed_bytes)"), "{path}: {}", r.error());
    }
    for path in ["/api/v1/write", "/api/v1/read"] {
        for (body, declared) in [(&snappy_real, 100u64 << 20), (&snappy_header, u32::MAX as u64)] {
            let r = s.send("POST", path, &[("Content-Encoding", "snappy")], body);
            assert_eq!(r.status, 413, "{path}: {}", r.text());
            assert!(r.error().contains("max_decompressed_bytes"), "{path}: {}", r.error());
            assert_eq!(r.json()["declared_bytes"], declared, "{path}");
        }
    }
    // A snappy header that understates what its body would produce is malformed.
    let mut liar = snap::raw::Encoder::new().compress_vec(&[7u8; 4096]).unwrap();
    liar[..2].copy_from_slice(&[0x80, 0x01]); // declares 128 bytes
    let r = s.send("POST", "/api/v1/write", &[("Content-Encoding", "snappy")], &liar);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().contains("invalid snappy body"), "{}", r.error());
    let (rss, virt) = peak.growth_mib();
    println!("bombs one at a time: peak RSS grew {rss:.1} MiB, peak virtual size {virt:.1} MiB");
    // Decompressing any of them would take 100 MiB to 4 GiB (virtual size sees an
    // untouched allocation too); under the cap one needs its body and 8 MiB of output.
    assert!(rss < 64.0, "peak RSS grew by {rss:.1} MiB");
    assert!(virt < 1024.0, "peak virtual size grew by {virt:.1} MiB");

    // Eight gzip bombs at once: each holds at most its body and the capped output.
    let peak = Peak::start();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = s.addr;
            std::thread::spawn(move || {
                let r = server_util::request(addr, "POST", "/write", &[("Content-Encoding", "gzip")], bomb);
                r.status
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 413);
    }
    let (rss, _) = peak.growth_mib();
    println!("eight bombs at once: peak RSS grew {rss:.1} MiB");
    // 8 × (1 MiB body + 8 MiB output, up to twice that while the buffer grows).
    assert!(rss < 256.0, "peak RSS grew by {rss:.1} MiB");
    assert_healthy(&s);
}

/// Reads from `c` until EOF, reset or `limit`; how long that took, and whether it
/// ended before the limit.
fn time_until_closed(c: &mut TcpStream, limit: Duration) -> (Duration, bool, Vec<u8>) {
    let t = Instant::now();
    c.set_read_timeout(Some(limit)).unwrap();
    let mut raw = Vec::new();
    let closed = match c.read_to_end(&mut raw) {
        Ok(_) => true,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    };
    (t.elapsed(), closed, raw)
}

/// Writes `bytes` one at a time every `every` until done or the socket fails.
fn trickle(mut c: TcpStream, bytes: Vec<u8>, every: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for b in bytes {
            if c.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    })
}

#[test]
fn slowloris_clients_are_dropped_and_others_served() {
    let _g = serial();
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let s = server(limits);
    let limit = Duration::from_secs(15);
    // Headers one byte every 200 ms (they would take 10 s): the deadline covers
    // the whole head, so trickling does not extend it.
    let mut slow_head = server_util::connect(s.addr);
    let slow_head_writer = trickle(
        slow_head.try_clone().unwrap(),
        b"GET /health HTTP/1.1\r\nX-Slow: ".repeat(2),
        Duration::from_millis(200),
    );
    // Headers that stop halfway.
    let mut stalled_head = server_util::connect(s.addr);
    stalled_head.write_all(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Le").unwrap();
    // A connection that never sends a byte.
    let mut silent = server_util::connect(s.addr);
    // A body that stops after 10 of 100 bytes, and one trickled a byte every 200 ms.
    let mut stalled_body = server_util::connect(s.addr);
    stalled_body.write_all(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nslow v=1 ").unwrap();
    let mut slow_body = server_util::connect(s.addr);
    slow_body.write_all(b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n").unwrap();
    let slow_body_writer = trickle(slow_body.try_clone().unwrap(), vec![b'#'; 100], Duration::from_millis(200));

    // Meanwhile a normal client is served.
    for _ in 0..5 {
        assert_eq!(s.get("/health").status, 200);
    }
    for (name, c) in [("slow head", &mut slow_head), ("stalled head", &mut stalled_head), ("silent", &mut silent)] {
        let (waited, closed, raw) = time_until_closed(c, limit);
        assert!(closed, "{name}: still open after {waited:?}");
        // hyper may answer 408 before closing, or just close.
        assert!(raw.is_empty() || raw.starts_with(b"HTTP/1.1 408"), "{name}: {:?}", String::from_utf8_lossy(&raw));
        assert!(waited < Duration::from_secs(10), "{name}: closed after {waited:?}");
    }
    for (name, c) in [("stalled body", &mut stalled_body), ("slow body", &mut slow_body)] {
        let (waited, closed, raw) = time_until_closed(c, limit);
        assert!(closed, "{name}: still open after {waited:?}");
        let r = parse_response(&raw);
        assert_eq!(r.status, 408, "{name}: {}", r.text());
        assert!(r.error().contains("not received within 1s"), "{name}: {}", r.error());
        assert!(waited < Duration::from_secs(10), "{name}: answered after {waited:?}");
    }
    for c in [&slow_head, &slow_body] {
        let _ = c.shutdown(Shutdown::Both);
    }
    slow_head_writer.join().unwrap();
    slow_body_writer.join().unwrap();
    assert_eq!(s.db.stats().unwrap().samples(), 0, "a timed-out request stored something");
    assert_healthy(&s);
}

/// The soft limit on open files, after trying to raise it to `want` with
/// prlimit(1): both limits where that is allowed (CAP_SYS_RESOURCE), else the
/// soft one up to the hard one.
fn open_files_limit(want: u64) -> u64 {
    let limits = || -> (u64, u64) {
        let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let line = text.lines().find(|l| l.starts_with("Max open files")).unwrap_or("");
        let field = |i: usize| line.split_whitespace().nth(i).and_then(|v| v.parse().ok());
        (field(3).unwrap_or(1024), field(4).unwrap_or(u64::MAX)) // "unlimited" parses as none
    };
    let pid = std::process::id().to_string();
    for attempt in [format!("{want}:{want}"), format!("{}:", want.min(limits().1))] {
        if limits().0 >= want {
            break;
        }
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={attempt}")])
            .stderr(std::process::Stdio::null())
            .status();
    }
    limits().0
}

#[test]
fn ten_thousand_connections_are_capped_and_memory_stays_bounded() {
    let _g = serial();
    // Each client socket and each accepted one is a descriptor in this process:
    // 10,000 clients and 1000 served need about 11,500. Where the limit is lower
    // and cannot be raised, scale both down.
    let limit = open_files_limit(11_500) as usize;
    let (max_connections, n) = if limit >= 11_500 { (1000, 10_000) } else { (limit / 4, limit - limit / 4 - 200) };
    println!("connection flood: {n} connections against max_connections {max_connections} (open-files limit {limit})");
    assert!(n > max_connections, "too few file descriptors to test the cap");
    let header_read_timeout = Duration::from_secs(5);
    let s = server(Limits { max_connections, header_read_timeout, ..Limits::default() });

    let peak = Peak::start();
    let t = Instant::now();
    let threads = 2;
    let conns: Vec<TcpStream> = (0..threads)
        .map(|_| {
            let addr = s.addr;
            std::thread::spawn(move || {
                // Short pauses let the accept loop drain the listen queue (1024):
                // on a busy machine an overflow costs a client a 1 s SYN retransmission.
                (0..n / threads)
                    .map(|i| {
                        if i % 64 == 63 {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        TcpStream::connect_timeout(&addr, Duration::from_secs(20)).expect("connect")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    println!("connection flood: {} connected in {:?}", conns.len(), t.elapsed());
    // Every connection is either served or closed; none hangs. At most
    // max_connections are served (the newest, asked first, are the likeliest).
    let (mut served, mut closed, mut hung) = (0, 0, 0);
    for c in conns.iter().rev() {
        let mut c = c;
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut buf = [0u8; 64];
        match c.read(&mut buf) {
            Ok(k) if k > 0 => {
                assert!(buf.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf[..k]));
                served += 1;
            }
            Ok(_) => closed += 1,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                hung += 1;
                assert!(hung < 3, "connections neither served nor closed");
            }
            Err(_) => closed += 1,
        }
    }
    let (rss, _) = peak.growth_mib();
    println!(
        "connection flood: {served} served, {closed} closed, {hung} hung after {:?}; peak RSS grew {rss:.1} MiB",
        t.elapsed()
    );
    assert_eq!(hung, 0);
    assert!(served >= 1 && served <= max_connections, "{served} served");
    assert_eq!(served + closed, n);
    assert!(rss < 128.0, "peak RSS grew by {rss:.1} MiB");
    // With every client socket still open, the idle ones holding permits are
    // dropped after the header-read timeout, and a normal client is served again.
    let t = Instant::now();
    let ok = server_util::wait_for(header_read_timeout * 3, || {
        let raw = exchange(s.addr, |c| {
            let _ = c.write_all(&head("GET", "/health", ""));
        });
        raw.starts_with(b"HTTP/1.1 200").then_some(())
    });
    assert!(ok.is_some(), "server not serving while idle connections stay open");
    println!("connection flood: a new client was served after {:?}", t.elapsed());
    drop(conns);
    assert_healthy(&s);
}

#[test]
fn bad_tokens_get_401_with_a_json_error() {
    let _g = serial();
    let token = "s3cret-token";
    let s = start_with(server_util::opts(), Limits::default(), Some(token));
    let routes = [
        ("GET", "/"),
        ("GET", "/db/status"),
        ("GET", "/metrics"),
        ("GET", "/metrics/list"),
        ("GET", "/metrics/m/info"),
        ("GET", "/query/raw?metric_name=m"),
        ("GET", "/query/rollup?metric_name=m&start_time=0&end_time=1970-01-01T00:10:00Z"),
        ("GET", "/rollups"),
        ("GET", "/export?match=m"),
        ("GET", "/stream?match=m"),
        ("POST", "/write"),
        ("POST", "/api/v2/write"),
        ("POST", "/api/v1/write"),
        ("POST", "/api/v1/read"),
        ("POST", "/import"),
        ("POST", "/query"),
        ("POST", "/metrics/ingest"),
        ("POST", "/backup"),
    ];
    let long = format!("Bearer {}", "x".repeat(8 << 10));
    let cases = [
        (None, "missing bearer token"),
        (Some("Bearer wrong"), "invalid bearer token"),
        (Some("Basic czNjcmV0LXRva2Vu"), "missing bearer token"),
        (Some("Bearer"), "missing bearer token"),
        (Some("Bearer s3cret-toke"), "invalid bearer token"),
        (Some("Bearer s3cret-token2"), "invalid bearer token"),
        (Some("Bearer S3CRET-TOKEN"), "invalid bearer token"),
        (Some("Bearer s3cret-token s3cret-token"), "invalid bearer token"),
        (Some(long.as_str()), "invalid bearer token"),
    ];
    for (method, path) in routes {
        for (auth, want) in cases {
            let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
            let r = s.send(method, path, &headers, if method == "POST" { b"m v=1" } else { b"" });
            assert_eq!((r.status, r.error().as_str()), (401, want), "{method} {path} with {auth:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            assert!(!r.text().contains(token), "the answer leaks the token");
        }
    }
    // Bytes that are not a valid header string count as no token.
    let raw = exchange(s.addr, |c| {
        let _ = c.write_all(
            b"GET /metrics/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
        );
    });
    let r = parse_response(&raw);
    assert_eq!((r.status, r.error().as_str()), (401, "missing bearer token"));
    // A 1 MiB header is refused by hyper's header buffer limit (431, no handler runs).
    let huge = format!("Bearer {}", "y".repeat(1 << 20));
    let raw = exchange(s.addr, move |c| {
        let _ = c.write_all(&head("GET", "/metrics/list", &format!("Authorization: {huge}\r\n")));
    });
    assert!(
        raw.is_empty() || raw.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    assert_eq!(s.db.stats().unwrap().samples(), 0, "an unauthenticated write was stored");
    // The scheme is case-insensitive, surrounding blanks are trimmed, InfluxDB's `Token` works.
    for auth in ["Bearer s3cret-token", "bearer s3cret-token", "BEARER   s3cret-token  ", "Token s3cret-token"] {
        let r = s.send("POST", "/write", &[("Authorization", auth)], b"authed v=1 1000000000\n");
        assert_eq!(r.status, 204, "{auth}: {}", r.text());
    }
    assert_eq!(s.get("/health").status, 200);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

/// Every path under `root`, relative to it.
fn tree(root: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// A protobuf length-delimited field.
fn pb_field(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![tag << 3 | 2];
    let mut n = bytes.len();
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(bytes);
    out
}

/// A snappy remote-write body of one series with these raw label bytes and one sample.
fn remote_write_raw(labels: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut series = Vec::new();
    for (k, v) in labels {
        series.extend(pb_field(1, &[pb_field(1, k), pb_field(2, v)].concat()));
    }
    // Sample {value = 1.0 (fixed64, field 1), timestamp = 1e9 ms (varint, field 2)}.
    let mut sample = vec![0x09];
    sample.extend(1.0f64.to_le_bytes());
    sample.extend([0x10, 0x80, 0x94, 0xeb, 0xdc, 0x03]);
    series.extend(pb_field(2, &sample));
    snap::raw::Encoder::new().compress_vec(&pb_field(1, &series)).unwrap()
}

#[test]
fn path_like_names_are_refused_or_stored_as_plain_values() {
    let _g = serial();
    let s = server(Limits::default());
    let before = tree(s.dir.path());
    let write = |body: &[u8]| s.post("/write?precision=ms", body);

    // Line protocol: names are kept as sent, so path-like names are refused by line; values kept as sent.
    let r = write(b"..,host=a v=1 1000000000\n../../x,a/b=c/d v=2 1000000000\npath,host=../../../etc/passwd,root=/ v=1 1000000000\n");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["accepted"], 1);
    assert!(r.json()["refused_points"][1]["reason"].as_str().unwrap().contains("\"a/b\""), "{}", r.text());
    let r = write(b"nul,t=a\0b v=3 1000000000\n");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = write(b"bad,t=\xff\xfe v=1 1\n");
    assert_eq!((r.status, r.error().as_str()), (400, "line 1: invalid UTF-8"));
    let long_value = format!("long,t={} v=1 1\n", "v".repeat(5000));
    let r = write(long_value.as_bytes());
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.error().contains("max_label_value_len"), "{}", r.error());
    let long_name = format!("long,{}=v v=1 1\n", "k".repeat(300));
    assert!(write(long_name.as_bytes()).error().contains("max_label_name_len"));
    let long_metric = format!("{} v=1 1\n", "m".repeat(5000));
    assert_eq!(write(long_metric.as_bytes()).status, 422);

    // Remote write: label and metric names are validated, values kept; invalid UTF-8 is malformed.
    let rw = |labels: &[(&[u8], &[u8])]| {
        s.send("POST", "/api/v1/write", &[("Content-Encoding", "snappy")], &remote_write_raw(labels))
    };
    let r = rw(&[(b"__name__", b"rw"), (b"path", b"../../etc/shadow"), (b"nul", b"x\0y"), (b"slash", b"/")]);
    assert_eq!(r.status, 204, "{}", r.text());
    for bad_name in [&b".."[..], b"a/b", b"a\0b", b""] {
        let r = rw(&[(b"__name__", b"rw"), (bad_name, b"v")]);
        assert_eq!(r.status, 422, "{bad_name:?}: {}", r.text());
        assert!(r.error().contains("timeseries[0]") && r.error().contains("invalid label"), "{}", r.error());
    }
    let r = rw(&[(b"__name__", b"../../etc/passwd")]);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.error().contains("metric name must match"), "{}", r.error());
    for (k, v) in [(&b"path"[..], &b"\xff/.."[..]), (b"\xc0\xaf", b"v")] {
        let r = rw(&[(b"__name__", b"rw"), (k, v)]);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.error().contains("invalid WriteRequest protobuf"), "{}", r.error());
    }

    // JSON: the same rules.
    let r = s.post("/metrics/ingest", br#"{"metric_name":"../../etc/passwd","value":1}"#);
    assert_eq!(r.status, 422, "{}", r.text());
    let r = s.post("/metrics/ingest", br#"{"metric_name":"j","value":1,"labels":{"../x":"v"}}"#);
    assert_eq!(r.status, 422, "{}", r.text());
    let r = s.post(
        "/metrics/ingest",
        br#"{"metric_name":"j","value":1,"timestamp":1000000000,"labels":{"p":"..\u0000/.."}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Paths in URLs only name metrics to look up.
    for path in ["/metrics/..%2F..%2Fetc%2Fpasswd/info", "/metrics/../../etc/passwd/info", "/metrics/%00/info"] {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.error().is_empty());
    }

    // What was stored comes back byte for byte, as label values.
    let r = s.get("/export?match=%7B__name__%3D~%22.%2B%22%7D");
    assert_eq!(r.status, 200, "{}", r.text());
    let mut got: Vec<serde_json::Value> =
        r.text().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["metric"].clone()).collect();
    got.sort_by_key(|m| m["__name__"].as_str().unwrap().to_string());
    let want = serde_json::json!([
        {"__name__": "j", "p": "..\u{0}/.."},
        {"__name__": "nul_v", "t": "a\u{0}b"},
        {"__name__": "path_v", "host": "../../../etc/passwd", "root": "/"},
        {"__name__": "rw", "path": "../../etc/shadow", "nul": "x\u{0}y", "slash": "/"},
    ]);
    assert_eq!(serde_json::Value::Array(got), want);

    // Nothing but the engine's own files appeared, all inside the data directory.
    s.db.flush().unwrap();
    let after = tree(s.dir.path());
    let new: Vec<&String> = after.difference(&before).collect();
    assert!(!new.is_empty());
    for p in &new {
        assert!(p.starts_with("data/"), "{p} is outside the data directory");
        let ok =
            p.split('/').all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        assert!(ok && !p.contains("passwd") && !p.contains("shadow") && !p.contains(".."), "unexpected file {p}");
    }
    let outside = |t: &std::collections::BTreeSet<String>| {
        t.iter().filter(|p| !p.starts_with("data")).cloned().collect::<Vec<_>>()
    };
    assert_eq!(outside(&before), outside(&after));
    assert_healthy(&s);
}
