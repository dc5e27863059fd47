//! Export (JSON lines, CSV, Prometheus text; plain and gzip), import round trips
//! bit for bit, and the SSE live tail, over a real socket.
#![cfg(feature = "server")]

use crate::support::server_util;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::support::server_util::{start, TestServer};
use strata::{Labels, Matcher};

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn values() -> Vec<f64> {
    vec![
        1.5,
        -0.0,
        0.1,
        f64::NAN,
        f64::from_bits(STALE_NAN),
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        5e-324,
        1.7976931348623157e308,
        123456789.12345679,
        1e21,
    ]
}

/// Two series of `values()` plus one that the selectors below do not match.
fn fill(s: &TestServer) {
    let mut app = s.db.appender();
    for host in ["a", "b\"q"] {
        let l = Labels::metric("exp_metric", [("host", host), ("zone", "z,1")]).unwrap();
        for (i, v) in values().into_iter().enumerate() {
            app.append_labels(&l, 1_000 * (i as i64 + 1), v).unwrap();
        }
    }
    app.append_labels(&Labels::metric("unrelated", [("host", "a")]).unwrap(), 1, 1.0).unwrap();
    app.commit().unwrap();
}

#[test]
fn export_json_lines_and_import_round_trip() {
    let s = start();
    fill(&s);
    let r = s.get("/export?match=exp_metric");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.truncated);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"), "export is streamed");
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        "{\"metric\":{\"__name__\":\"exp_metric\",\"host\":\"a\",\"zone\":\"z,1\"},\"values\":[1.5,-0.0,0.1,\"NaN\",\
         \"NaN(0x7ff0000000000002)\",\"NaN(0xfff8000000000000)\",\"+Inf\",\"-Inf\",5e-324,1.7976931348623157e308,\
         123456789.12345679,1e21],\"timestamps\":[1000,2000,3000,4000,5000,6000,7000,8000,9000,10000,11000,12000]}"
    );

    // Import into a fresh server and export again: identical bytes, identical bits.
    let t = start();
    let r = t.send("POST", "/import", &[("Content-Encoding", "gzip")], &server_util::gzip(text.as_bytes()));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-strata-samples"), Some("24"));
    assert_eq!(t.get("/export?match=exp_metric").text(), text);
    let q = t.db.querier(i64::MIN..i64::MAX);
    let got: Vec<u64> = q
        .select(&[Matcher::eq("__name__", "exp_metric"), Matcher::eq("host", "a")])
        .unwrap()
        .flat_map(|r| r.unwrap().1.map(|s| s.value.to_bits()).collect::<Vec<_>>())
        .collect();
    assert_eq!(got, values().iter().map(|v| v.to_bits()).collect::<Vec<_>>());

    // A bad line is refused by number; the good one is stored.
    let bad = format!("{}\n{{\"metric\":{{\"__name__\":\"late\"}},\"values\":[1,2],\"timestamps\":[1]}}\n", lines[0]);
    let u = start();
    let r = u.post("/import", bad.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["line"], 2);
    assert_eq!(r.json()["refused_points"][0]["points"], 2);
    assert_eq!(u.db.latest(&[Matcher::eq("__name__", "exp_metric")]).unwrap().len(), 1);
}

#[test]
fn export_csv_prometheus_and_gzip() {
    let s = start();
    fill(&s);
    let csv = s.get("/export?match=exp_metric%7Bhost%3D%22a%22%7D&format=csv&start=2&end=4"); // epoch seconds
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.text(),
        "series,timestamp,value\n\
         \"exp_metric{host=\"\"a\"\",zone=\"\"z,1\"\"}\",2000,-0.0\n\
         \"exp_metric{host=\"\"a\"\",zone=\"\"z,1\"\"}\",3000,0.1\n\
         \"exp_metric{host=\"\"a\"\",zone=\"\"z,1\"\"}\",4000,NaN\n"
    );
    let prom = s.get(
        "/export?match=%7B__name__%3D~%22exp_.*%22%2Chost%21%3D%22a%22%7D&format=prometheus&end=1970-01-01T00:00:02Z",
    );
    assert_eq!(prom.status, 200, "{}", prom.text());
    assert_eq!(
        prom.text(),
        "exp_metric{host=\"b\\\"q\",zone=\"z,1\"} 1.5 1000\nexp_metric{host=\"b\\\"q\",zone=\"z,1\"} -0.0 2000\n"
    );

    for format in ["json", "csv", "prometheus"] {
        let path = format!("/export?match=exp_metric&format={format}");
        let plain = s.get(&path);
        let gz = s.send("GET", &path, &[("Accept-Encoding", "deflate, gzip")], b"");
        assert_eq!(gz.status, 200);
        assert_eq!(gz.header("content-encoding"), Some("gzip"));
        assert_eq!(plain.header("content-encoding"), None);
        assert_eq!(server_util::gunzip(&gz.body), plain.body, "{format}");
    }
    // Several selectors: the union, each series once.
    let both = s.get("/export?match[]=exp_metric&match[]=%7Bhost%3D%22a%22%7D").text();
    assert_eq!(both.lines().count(), 3);
}

#[test]
fn export_errors() {
    let s = start();
    let r = s.get("/export?match=cpu%7Bhost%3D%7D");
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "match: invalid selector at column 10: expected a quoted value, e.g. \"h1\"");
    let r = s.get("/export?match=%7Bhost%21%3D%22x%22%7D");
    assert!(r.error().contains("does not match the empty string"), "{}", r.error());
    assert_eq!(s.get("/export?match=cpu&format=xml").status, 400);
    assert_eq!(s.get("/export?match=cpu&start=10&end=5").status, 400);
    assert_eq!(s.get("/export?match=cpu&start=soon").status, 400);
}

#[test]
fn large_export_streams_in_many_chunks() {
    let s = start();
    let mut app = s.db.appender();
    for h in 0..50 {
        let l = Labels::metric("big", [("host", format!("h{h}"))]).unwrap();
        for t in 0..2000 {
            app.append_labels(&l, t, t as f64 * 0.5).unwrap();
        }
    }
    app.commit().unwrap();
    // Read the raw stream and count chunk headers: the body never arrives as one piece.
    let mut c = server_util::connect(s.addr);
    c.write_all(b"GET /export?match=big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let r = server_util::parse_response(&raw);
    assert!(!r.truncated);
    assert_eq!(r.text().lines().count(), 50);
    let body_start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut chunks = 0;
    let mut rest = &raw[body_start..];
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            break;
        }
        chunks += 1;
        rest = &rest[eol + 2 + size + 2..];
    }
    assert!(chunks >= 10, "only {chunks} chunks");
}

#[test]
fn stream_pushes_samples_committed_after_subscribing() {
    let s = start();
    let mut c = server_util::connect(s.addr);
    c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    c.write_all(b"GET /stream?match=live_v%7Bhost%3D%22a%22%7D HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let read_until = |c: &mut std::net::TcpStream, seen: &mut Vec<u8>, want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(seen).contains(want) {
            assert!(Instant::now() < deadline, "no {want:?} in {:?}", String::from_utf8_lossy(seen));
            if let Ok(n) = c.read(&mut buf) {
                assert!(n > 0, "stream closed early: {:?}", String::from_utf8_lossy(seen));
                seen.extend_from_slice(&buf[..n]);
            }
        }
    };
    read_until(&mut c, &mut seen, ": subscribed");
    let head = String::from_utf8_lossy(&seen).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{head}");

    // Commit after subscribing: one matching sample, one not matching.
    assert_eq!(s.post("/write?precision=ms", b"live,host=a v=42.5 1234\nlive,host=b v=1 1234").status, 204);
    read_until(
        &mut c,
        &mut seen,
        "data: {\"metric\":{\"__name__\":\"live_v\",\"host\":\"a\"},\"timestamp\":1234,\"value\":42.5}\n\n",
    );
    let mut app = s.db.appender();
    app.append_labels(&Labels::metric("live_v", [("host", "a")]).unwrap(), 5, f64::NAN).unwrap();
    app.commit().unwrap();
    read_until(&mut c, &mut seen, "\"timestamp\":5,\"value\":\"NaN\"}");
    assert!(!String::from_utf8_lossy(&seen).contains("\"host\":\"b\""));

    // Errors come back as JSON before any stream starts.
    let r = s.get("/stream");
    assert_eq!(r.status, 400);
    let r = s.get("/stream?match=a&match=b");
    assert_eq!(r.status, 400);
}

#[test]
fn stream_ends_at_shutdown() {
    let mut s = start();
    let mut c = server_util::connect(s.addr);
    c.write_all(b"GET /stream?match=x HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    s.stop().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown waited {:?}", started.elapsed());
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
}

#[test]
fn export_without_match_includes_series_without_a_name_and_imports_back() {
    let s = start();
    let mut app = s.db.appender();
    let nameless = Labels::from_pairs([("host", "a")]).unwrap();
    app.append_labels(&nameless, 1000, 1.5).unwrap();
    app.append_labels(&nameless, 2000, f64::NAN).unwrap();
    app.append_labels(&Labels::metric("named", [("host", "a")]).unwrap(), 1000, 2.0).unwrap();
    app.commit().unwrap();

    let r = s.get("/export");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("{\"metric\":{\"host\":\"a\"},\"values\":[1.5,\"NaN\"],\"timestamps\":[1000,2000]}"),
        "{text}"
    );
    let prom = s.get("/export?format=prometheus").text();
    assert!(prom.contains("{host=\"a\"} 1.5 1000\n"), "{prom}");
    assert!(prom.contains("named{host=\"a\"} 2.0 1000\n"), "{prom}");
    assert_eq!(s.get("/export?match=").status, 400, "an empty selector is still refused");

    let other = start();
    assert_eq!(other.post("/import", text.as_bytes()).status, 204);
    let q = other.db.querier(i64::MIN..i64::MAX);
    let got: Vec<(Labels, usize)> =
        q.select_all().unwrap().map(|x| x.unwrap()).map(|(l, it)| (l, it.count())).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&(nameless, 2)), "{got:?}");
}

#[test]
fn stream_delivers_every_committed_sample_at_shutdown() {
    let mut s = start();
    let mut c = server_util::connect(s.addr);
    c.write_all(b"GET /stream?match=tail_v HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1 << 16];
    while !String::from_utf8_lossy(&seen).contains(": subscribed") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    // Commit while the client reads nothing: the response and socket buffers fill,
    // and the rest waits in the subscription's queue (40,000 samples fit in it).
    let l = Labels::metric("tail_v", [("host", "a")]).unwrap();
    let (batches, per) = (40i64, 1000i64);
    for b in 0..batches {
        let mut app = s.db.appender();
        for k in 0..per {
            app.append_labels(&l, b * per + k, 1.0).unwrap();
        }
        app.commit().unwrap();
    }
    s.begin_shutdown();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    seen.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&seen);
    let events = text.matches("data: {\"metric\"").count() as i64;
    let dropped = text.matches("event: dropped").count();
    assert_eq!((events, dropped), (batches * per, 0), "tail: {:?}", &text[text.len().saturating_sub(300)..]);
    assert!(text.contains(&format!("\"timestamp\":{},", batches * per - 1)));
    s.stop().unwrap();
}

/// `format=parquet`: the same rows as the JSON export, bit for bit, never gzip.
#[test]
fn export_parquet() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let s = start();
    fill(&s);
    let r = s.send("GET", "/export?match=exp_metric&format=parquet", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/vnd.apache.parquet"));
    assert_eq!(r.header("content-encoding"), None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    std::fs::write(&path, &r.body).unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let f: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let (Field::Str(name), Field::MapInternal(m), Field::TimestampMillis(ts), Field::Double(v)) =
            (f[0], f[1], f[2], f[3])
        else {
            panic!("{row:?}")
        };
        let labels: Vec<String> = m.entries().iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push((name.clone(), labels.join(","), *ts, v.to_bits()));
    }
    let q = s.db.querier(i64::MIN..i64::MAX);
    let mut want = Vec::new();
    for item in q.select(&[Matcher::eq("__name__", "exp_metric")]).unwrap() {
        let (l, it) = item.unwrap();
        let labels: Vec<String> =
            l.iter().filter(|(k, _)| *k != "__name__").map(|(k, v)| format!("\"{k}\"=\"{v}\"")).collect();
        want.extend(it.map(|p| ("exp_metric".to_string(), labels.join(","), p.ts, p.value.to_bits())));
    }
    assert!(!want.is_empty());
    assert_eq!(rows, want);
}
