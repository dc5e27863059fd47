//! Entry points for the decode and parse fuzzers. Each must return without
//! panicking for any input, and asserts what it can of the result (round trips,
//! invariants); `fuzz/` drives them with libFuzzer and `tests/engine/fuzz_corpus.rs`
//! replays the checked-in corpus under `cargo test`. The server's parsers need
//! the `server` feature; the selector grammar is in the library.
//!
//! The modules below reach the storage internals for the format tests
//! (`tests/format_golden.rs`, `tests/corruption_sweep.rs`), the codec benches and
//! the corpus builder. They are not an API: the crate keeps these modules private.

use std::io::Write;

use crate::codec::{chunk, varint, xor::XorChunk};
use crate::labels::{Labels, MatchOp, Matcher};
use crate::manifest::Manifest;
use crate::rollup::{check_buckets, codec as rollup_codec, Bucket};
use crate::sample::Sample;
use crate::segment::Segment;

/// The chunk codecs.
pub mod codec {
    pub use crate::codec::{chunk, varint, xor};
}

/// The MANIFEST file.
pub mod manifest {
    pub use crate::manifest::{Manifest, SegmentRecord, FILE_NAME, FLAG_ROLLED_UP};
}

/// Segment files.
pub mod segment {
    pub use crate::segment::{file_name, Segment, SegmentInfo, SegmentWriter, WriterOptions};
}

/// WAL files.
pub mod wal {
    pub use crate::wal::record::decode_frame;
    pub use crate::wal::{record, segment_file_name, Record, WalOptions, WalSample, WalWriter};
}

/// The remote-write protobuf messages, to build requests.
#[cfg(feature = "server")]
pub mod prompb {
    pub use crate::server::prompb::{Label, Sample, TimeSeries, WriteRequest};
}

/// WAL frames and headers: decode a sequence of frames as replay would.
pub fn wal_frames(data: &[u8]) {
    let _ = wal::record::decode_header(data);
    let mut rest = data;
    while let Ok((_, used)) = wal::decode_frame(rest) {
        if used == 0 || used > rest.len() {
            panic!("decode_frame consumed {used} of {} bytes", rest.len());
        }
        rest = &rest[used..];
    }
    let _ = wal::record::probe_frame(data);
}

/// A whole segment file: open, verify, and decode every chunk of every series.
pub fn segment_file(data: &[u8]) {
    let Ok(mut f) = tempfile::NamedTempFile::new() else { return };
    if f.write_all(data).and_then(|_| f.flush()).is_err() {
        return;
    }
    let Ok(seg) = Segment::open(f.path()) else { return };
    let _ = seg.verify();
    // The paths of an open covered by an index checkpoint (labels not read) and
    // of the tools (labels and full chunk metadata read again).
    let _ = Segment::open_indexed(f.path(), Some(seg.table_crc()), &mut |_, _| Ok(()));
    let _ = seg.series_labels();
    let _ = seg.chunk_metas();
    let mut out = Vec::new();
    for e in seg.series() {
        let _ = seg.for_each_chunk(
            &e,
            |_| true,
            |_, bytes| {
                out.clear();
                let _ = chunk::decode_chunk(bytes, &mut out);
                Ok(())
            },
        );
    }
}

/// The manifest decoder.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = Manifest::decode(data, std::path::Path::new("MANIFEST")) {
        // Whatever decodes must re-encode to the same bytes.
        assert_eq!(m.encode(), data, "manifest did not round-trip");
    }
}

/// The sample chunk decoder, plus a re-encode round trip of what it accepts.
pub fn chunk(data: &[u8]) {
    let mut out = Vec::new();
    if chunk::decode_chunk(data, &mut out).is_ok() && !out.is_empty() {
        let mut again = Vec::new();
        chunk::encode_chunk(&out, &mut again);
        let mut back = Vec::new();
        chunk::decode_chunk(&again, &mut back).expect("re-encoded chunk decodes");
        assert_eq!(out, back);
    }
    let mut part = Vec::new();
    let _ = chunk::decode_chunk_range(data, -1000, 1000, &mut part);
}

/// Labels and varints as they appear inside records.
pub fn labels(data: &[u8]) {
    let mut pos = 0;
    if let Ok(l) = Labels::decode(data, &mut pos) {
        let mut buf = Vec::new();
        l.encode(&mut buf);
        assert_eq!(Labels::decode(&buf, &mut 0).as_ref(), Ok(&l));
    }
    let mut pos = 0;
    while varint::get_uvarint(data, &mut pos).is_some() {}
}

/// The head's XOR chunk: arbitrary samples (sorted into strictly increasing
/// timestamps) must read back bit for bit.
pub fn xor_chunk(data: &[u8]) {
    let mut samples: Vec<Sample> = data
        .chunks_exact(16)
        .map(|c| {
            let mut t = [0u8; 8];
            let mut v = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            v.copy_from_slice(&c[8..]);
            Sample::new(i64::from_le_bytes(t), f64::from_bits(u64::from_le_bytes(v)))
        })
        .collect();
    samples.sort_by_key(|s| s.ts);
    samples.dedup_by_key(|s| s.ts);
    let mut c = XorChunk::new();
    for s in &samples {
        c.append(s.ts, s.value);
    }
    assert_eq!(c.iter().collect::<Vec<_>>(), samples);
}

/// The rollup chunk decoder: what decodes satisfies the bucket invariants,
/// re-encodes, and reads back bit for bit; a failed decode leaves `out` alone.
pub fn rollup(data: &[u8]) {
    let sentinel = Bucket::empty(7);
    let mut out = vec![sentinel];
    if rollup_codec::decode_buckets(data, &mut out).is_err() {
        assert_eq!(out, [sentinel], "a failed decode changed its output");
        return;
    }
    let got = &out[1..];
    assert!(!got.is_empty() && got.len() <= rollup_codec::MAX_BUCKETS);
    assert_eq!(check_buckets(got, None), Ok(()));
    let mut enc = Vec::new();
    let meta = rollup_codec::encode_buckets(got, &mut enc).expect("decoded buckets re-encode");
    assert_eq!(meta.count as usize, got.len());
    assert_eq!((meta.min_t, meta.max_t), (got[0].start, got[got.len() - 1].start));
    let mut back = Vec::new();
    rollup_codec::decode_buckets(&enc, &mut back).expect("re-encoded buckets decode");
    assert_eq!(back, got, "rollup buckets did not round-trip");
    let mut again = Vec::new();
    rollup_codec::encode_buckets(&back, &mut again).expect("re-encodes");
    assert_eq!(again, enc, "the encoder is not deterministic");
}

/// The selector grammar (`crate::text::selector`), used by the CLI and the server.
/// An error points inside the input; matchers that parse select something, and
/// survive the canonical printer and a re-parse; a series that parses survives
/// its printer (`Labels`' `Display`) and a re-parse.
pub fn selector(data: &[u8]) {
    use crate::text::selector::{parse_selector, parse_series, selector_string};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let columns = text.chars().count() + 1;
    match parse_selector(text) {
        Err(e) => assert!((1..=columns).contains(&e.column), "{text:?}: column {} of {columns}", e.column),
        Ok(ms) => {
            assert!(ms.iter().any(|m| !m.matches_empty()), "{text:?} selects every series");
            let printed = selector_string(&ms);
            let back = parse_selector(&printed).unwrap_or_else(|e| panic!("{printed:?} (from {text:?}): {e}"));
            assert_eq!(matcher_keys(&back), matcher_keys(&ms), "{text:?} printed as {printed:?}");
        }
    }
    match parse_series(text) {
        Err(e) => assert!((1..=columns).contains(&e.column), "{text:?}: column {} of {columns}", e.column),
        Ok(labels) => {
            let printed = labels.to_string();
            assert_eq!(parse_series(&printed).as_ref(), Ok(&labels), "{text:?} printed as {printed:?}");
        }
    }
}

/// Matchers in a comparable, order-independent form (the printer moves the metric name first).
fn matcher_keys(ms: &[Matcher]) -> Vec<(&str, MatchOp, &str)> {
    let mut v: Vec<_> = ms.iter().map(|m| (m.name.as_str(), m.op, m.value.as_str())).collect();
    v.sort_by(|a, b| (a.0, a.2, a.1 as u8).cmp(&(b.0, b.2, b.1 as u8)));
    v
}

/// The InfluxDB line protocol parser. The first byte picks the precision and the
/// limits; the rest is the body. Only a request limit fails a body; every refused
/// line is named by its number and reason; and, when the limits cannot add up
/// across lines, a line is refused in the body exactly when it is refused alone,
/// and the body keeps the samples its lines keep alone.
#[cfg(feature = "server")]
pub fn line_protocol(data: &[u8]) {
    use crate::server::line_protocol::{parse, Precision};
    let Some((&flags, body)) = data.split_first() else { return };
    let precision =
        [Precision::Ns, Precision::Us, Precision::Ms, Precision::S, Precision::M, Precision::H][flags as usize % 6];
    let mut limits = crate::server::Limits::default();
    if flags & 0x40 != 0 {
        limits.max_labels_per_series = 3;
        limits.max_label_name_len = 8;
        limits.max_label_value_len = 8;
    }
    let per_request = flags & 0x80 != 0;
    if per_request {
        limits.max_series_per_request = 2;
        limits.max_samples_per_request = 4;
    }
    let now = 1_700_000_000_000;
    let lines = body.split(|&b| b == b'\n').count();
    let named = |line: u64, m: &str| {
        assert!(line >= 1 && line as usize <= lines, "line {line} of {lines}: {m}");
        assert!(m.starts_with(&format!("line {line}: ")), "{m:?} does not start with its line");
    };
    let p = match parse(body, precision, now, &limits, None) {
        Ok(p) => p,
        Err(e) => {
            assert_eq!(e.status.as_u16(), 413, "only a request limit fails a body: {}", e.message);
            named(e.extra.get("line").and_then(|v| v.as_u64()).expect("a line number"), &e.message);
            return;
        }
    };
    let refused: Vec<u64> = p.batch.refused.listed().iter().map(|e| e["line"].as_u64().expect("a line")).collect();
    for (e, &line) in p.batch.refused.listed().iter().zip(&refused) {
        named(line, e["reason"].as_str().expect("a reason"));
    }
    if per_request {
        return;
    }
    let (mut samples, mut series, mut alone) = (0, 0, Vec::new());
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let p = parse(line, precision, now, &limits, None).expect("no request limit can fail one line");
        samples += p.batch.len();
        series += p.batch.series_count();
        if !p.batch.refused.is_empty() {
            alone.push(i as u64 + 1);
        }
    }
    assert_eq!(p.batch.refused.entries() as usize, alone.len(), "refused lines differ from lines refused alone");
    assert!(alone.iter().zip(&refused).all(|(a, b)| a == b), "refused {refused:?}, alone {alone:?}");
    assert_eq!(p.batch.len(), samples);
    assert!(p.batch.series_count() <= series);
}

/// Prometheus remote write as the server decodes it: snappy, the limits prescan,
/// prost, then the batch. The first byte picks tight or default limits and
/// whether the rest is a snappy block as sent or a protobuf to compress first
/// (so mutations reach the protobuf directly).
#[cfg(feature = "server")]
pub fn remote_write(data: &[u8]) {
    use crate::server::remote_write::{decode, prescan, to_batch, unsnappy, WriteView};
    use prost::Message;
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut limits = crate::server::Limits::default();
    if flags & 1 != 0 {
        limits.max_series_per_request = 3;
        limits.max_samples_per_request = 6;
        limits.max_labels_per_series = 3;
        limits.max_label_name_len = 16;
        limits.max_label_value_len = 16;
        limits.max_decompressed_bytes = 512;
    }
    let snappy = |b: &[u8]| snap::raw::Encoder::new().compress_vec(b).expect("snappy compresses");
    let raw = if flags & 2 != 0 { snappy(rest) } else { rest.to_vec() };
    let prost = decode(&raw, &limits);
    // The server's borrowed reader and prost agree on every request.
    let Ok(buf) = unsnappy(&raw, &limits) else {
        assert!(prost.is_err(), "prost decoded a body that does not decompress");
        return;
    };
    let view = prescan(&buf, &limits).and_then(|hint| WriteView::parse(&buf, hint));
    match (&prost, &view) {
        (Ok(req), Ok(view)) => {
            assert_eq!(req.timeseries.len(), view.len());
            for (ts, (labels, samples)) in req.timeseries.iter().zip(view.iter()) {
                let want: Vec<(&str, &str)> = ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
                assert_eq!(want, labels);
                let want: Vec<(i64, u64)> =
                    ts.samples.iter().map(|s| (s.timestamp, s.value.unwrap_or(0.0).to_bits())).collect();
                let got: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                assert_eq!(want, got);
            }
            let want: Vec<(i32, &str, &str, &str)> = req
                .metadata
                .iter()
                .map(|m| (m.r#type, m.metric_family_name.as_str(), m.help.as_str(), m.unit.as_str()))
                .collect();
            assert_eq!(want, view.metadata);
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => {
            assert!(e.message.contains("groups"), "prost accepts what the server refuses: {}", e.message)
        }
        (Err(e), Ok(_)) => panic!("the server accepts what prost refuses: {}", e.message),
    }
    let Ok(req) = prost else { return };
    // The prescan lets nothing past the limits through to the decoder.
    let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    assert!(req.timeseries.len() <= limits.max_series_per_request);
    assert!(samples <= limits.max_samples_per_request);
    assert!(req.timeseries.iter().all(|t| t.labels.len() <= limits.max_labels_per_series));
    // Re-encoding is a fixed point (compared as bytes: NaN != NaN) and is accepted too.
    let canon = req.encode_to_vec();
    let again = decode(&snappy(&canon), &limits).expect("the re-encoded request decodes");
    assert_eq!(again.encode_to_vec(), canon, "WriteRequest did not round-trip");
    let n = req.timeseries.len();
    let Ok(view) = view else { return }; // a group, which only prost skips
    if let Ok(batch) = to_batch(&view, &limits, None) {
        // Every sample is either kept or counted with its refused series.
        assert!(batch.len() <= samples && batch.len() as u64 + batch.refused.points() >= samples as u64);
        assert!(batch.series_count() <= n);
    }
}

/// The fixed database the PromQL fuzzer queries: opened once per process in a
/// scratch directory (kept for the life of the process).
fn promql_db() -> &'static crate::Db {
    static DB: std::sync::OnceLock<(tempfile::TempDir, crate::Db)> = std::sync::OnceLock::new();
    &DB.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let db = crate::Db::open(dir.path(), crate::Options::default().background(false)).expect("a scratch database");
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let mut app = db.appender();
        let mut put = |pairs: &[(&str, &str)], ts: i64, v: f64| {
            let l = Labels::from_pairs(pairs.iter().copied()).expect("fixture labels");
            app.append_labels(&l, ts, v).expect("fixture sample");
        };
        // 30 minutes every 15 s before PROMQL_T: a counter with a reset, a gauge with
        // a gap, a NaN and a staleness marker, and classic histogram buckets.
        for i in 0..120i64 {
            let ts = PROMQL_T - 1_800_000 + i * 15_000;
            for (inst, k) in [("a", 1.0), ("b", 3.0)] {
                let count = if i < 70 { i as f64 * k } else { (i - 70) as f64 * k };
                put(&[("__name__", "http_requests_total"), ("job", "api"), ("instance", inst)], ts, count);
            }
            if !(40..50).contains(&i) {
                let v = match i {
                    60 => f64::NAN,
                    90 => stale,
                    _ => (i as f64 / 7.0).sin() * 10.0,
                };
                put(&[("__name__", "temp"), ("room", "lab")], ts, v);
            }
            for (le, share) in [("0.1", 0.5), ("1", 0.9), ("+Inf", 1.0)] {
                put(&[("__name__", "req_seconds_bucket"), ("le", le)], ts, (i as f64 * 10.0 * share).floor());
            }
        }
        app.commit().expect("fixture commit");
        drop(app);
        (dir, db)
    })
    .1
}

/// The evaluation time of the PromQL fuzzer's instant queries and the end of its range queries.
const PROMQL_T: i64 = 1_700_000_000_000;

/// PromQL: the input is an expression, parsed and evaluated over a small fixed
/// database as an instant query and as a 10-minute range query, with small
/// limits. Whatever the text, the answer is a result of the right shape or a
/// `PromqlError` of a query kind (never `internal`: the storage is healthy), and
/// it comes in bounded time.
pub fn promql(data: &[u8]) {
    use crate::promql::{ErrorKind, Options, Value};
    use std::time::{Duration, Instant};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let db = promql_db();
    let opts = Options { max_samples: 20_000, timeout: Some(Duration::from_millis(500)), ..Options::default() };
    let (start, step) = (PROMQL_T - 600_000, 15_000);
    let began = Instant::now();
    let answers = [
        (false, db.promql_instant_with(text, PROMQL_T, &opts)),
        (true, db.promql_range_with(text, start, PROMQL_T, step, &opts)),
    ];
    for (range, answer) in answers {
        match answer {
            Err(e) => assert!(
                matches!(e.kind, ErrorKind::BadData | ErrorKind::Execution | ErrorKind::Timeout)
                    && !e.message.is_empty(),
                "{text:?}: {e:?}"
            ),
            Ok(Value::Vector(v)) => {
                assert!(!range, "{text:?}: a range query answered a vector");
                assert!(v.iter().all(|s| s.t == PROMQL_T), "{text:?}: a sample off the evaluation time");
            }
            Ok(Value::Matrix(m)) if range => {
                for s in &m {
                    assert!(
                        s.points.windows(2).all(|w| w[0].0 < w[1].0)
                            && s.points.iter().all(|p| p.0 >= start && p.0 <= PROMQL_T && (p.0 - start) % step == 0),
                        "{text:?}: points off the step grid in {:?}",
                        s.metric
                    );
                }
                let mut keys: Vec<_> = m.iter().map(|s| &s.metric).collect();
                keys.dedup();
                assert_eq!(keys.len(), m.len(), "{text:?}: one label set twice in a matrix");
            }
            Ok(Value::Matrix(m)) => {
                // An instant query of a range vector: raw samples inside the window.
                assert!(m.iter().all(|s| s.points.iter().all(|p| p.0 <= PROMQL_T)), "{text:?}: a sample after T");
            }
            Ok(Value::Scalar(t, _) | Value::String(t, _)) => {
                assert!(!range && t == PROMQL_T, "{text:?}: a scalar or string at {t} (range {range})")
            }
        }
    }
    // The timeout holds each evaluation to 500 ms; parsing and setup are small.
    assert!(began.elapsed() < Duration::from_secs(20), "{text:?} took {:?}", began.elapsed());
}
