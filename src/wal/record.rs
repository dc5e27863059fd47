//! Byte layout of WAL files: the file header and the checksummed frames that carry records.
//! `docs/format/wal.md` is the normative description; this file must agree with it.
//!
//! Every decoder here runs on bytes read from disk, so it reports problems instead of
//! panicking, and it never sizes an allocation from a length it has not checked against
//! the bytes actually present.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::fmt;

use crate::codec::bytes::{le_u32, le_u64};
use crate::codec::varint::{get_uvarint, put_uvarint, unzigzag, zigzag};
use crate::labels::Labels;
use crate::metadata::{self, MetricKind, MetricMetadata};

/// First bytes of every WAL file.
pub const MAGIC: &[u8; 8] = b"STRATWAL";
/// The format version this code writes. Version 1 (no Metadata records) still reads.
pub const VERSION: u16 = 2;
/// The oldest version this code reads.
pub const MIN_VERSION: u16 = 1;
/// magic(8) + version(2) + reserved(2) + seq(8) + crc32(4).
pub const HEADER_LEN: usize = 24;
/// len(4) + crc32(4); the kind byte counts as payload of the frame body.
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest legal value of a frame's `len` field (kind byte + payload).
pub const MAX_FRAME_LEN: usize = 64 << 20;

pub const KIND_SERIES: u8 = 1;
pub const KIND_SAMPLES: u8 = 2;
/// Since version 2.
pub const KIND_METADATA: u8 = 3;
/// Metadata entry ops.
const OP_REMOVE: u8 = 0;
const OP_SET: u8 = 1;
/// Smallest encoding of one metadata entry: op(1) + name(1+1).
const MIN_METADATA_ENTRY_LEN: usize = 3;

/// Samples per frame before the encoder starts another frame. At most 28 bytes each,
/// so a frame stays near 28 MiB, well under `MAX_FRAME_LEN`.
const MAX_SAMPLES_PER_FRAME: usize = 1 << 20;
/// Payload bytes of a series frame after which the encoder starts another frame.
const SERIES_SPLIT_BYTES: usize = 16 << 20;
/// Smallest encoding of one sample: 1-byte series id, 1-byte delta, 8-byte value.
const MIN_SAMPLE_LEN: usize = 10;
/// Largest encoding of one sample: two 10-byte varints and the value.
const MAX_SAMPLE_LEN: usize = 28;
/// Smallest encoding of one series entry: id(1) + label count(1) + name(1+1) + value(1+1).
const MIN_SERIES_ENTRY_LEN: usize = 6;
const MAX_VARINT_LEN: usize = 10;

/// One sample as logged: the head's series id, timestamp and value.
#[derive(Debug, Clone, Copy)]
pub struct WalSample {
    pub series: u64,
    pub ts: i64,
    pub value: f64,
}

/// Bitwise on `value`, so NaN payloads and -0.0 compare exactly as stored.
impl PartialEq for WalSample {
    fn eq(&self, other: &Self) -> bool {
        self.series == other.series && self.ts == other.ts && self.value.to_bits() == other.value.to_bits()
    }
}
impl Eq for WalSample {}

/// The decoded content of one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series: head id and labels.
    Series(Vec<(u64, Labels)>),
    Samples(Vec<WalSample>),
    /// Metric metadata set (`Some`) or removed (`None`), in order; the last entry for
    /// a name wins.
    Metadata(Vec<(String, Option<MetricMetadata>)>),
}

impl Record {
    /// Appends this record as frame(s), as the `encode_*_frame` functions do.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::Series(entries) => {
                let refs: Vec<(u64, &Labels)> = entries.iter().map(|(id, l)| (*id, l)).collect();
                encode_series_frame(&refs, out);
            }
            Record::Samples(samples) => encode_samples_frame(samples, out),
            Record::Metadata(entries) => encode_metadata_frame(entries, out),
        }
    }
}

/// Why `decode_frame` could not return a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends before the frame does (a torn write, or more bytes to read).
    Incomplete,
    /// The bytes cannot be a valid frame; the text says which check failed.
    Corrupt(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Incomplete => f.write_str("frame runs past the end of the data"),
            FrameError::Corrupt(reason) => f.write_str(reason),
        }
    }
}

/// The 24-byte header that starts every WAL file.
pub fn encode_header(seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    // bytes 10..12 are reserved and stay zero
    h[12..20].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file header and returns the sequence number it records.
pub fn decode_header(buf: &[u8]) -> Result<u64, &'static str> {
    decode_header_version(buf).map(|(seq, _)| seq)
}

/// Checks a file header and returns the sequence number and the format version it records.
pub fn decode_header_version(buf: &[u8]) -> Result<(u64, u16), &'static str> {
    let short = "file is shorter than the WAL header";
    let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN).and_then(|b| b.try_into().ok()).ok_or(short)?;
    if &h[0..8] != MAGIC {
        return Err("bad magic: not a Strata WAL file");
    }
    if Some(crc32fast::hash(&h[..20])) != le_u32(h, 20) {
        return Err("header checksum mismatch");
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err("unsupported WAL format version");
    }
    if h[10] != 0 || h[11] != 0 {
        return Err("reserved header bytes are not zero");
    }
    Ok((le_u64(h, 12).ok_or(short)?, version))
}

/// Appends one Series frame (several if the entries exceed 16 MiB of payload).
/// One entry must encode to under 64 MiB, which label validation guarantees in practice.
pub fn encode_series_frame(entries: &[(u64, &Labels)], out: &mut Vec<u8>) {
    let mut rest = entries;
    loop {
        // take entries until the payload would pass the split size (always at least one)
        let mut n = 0;
        let mut bytes = 0;
        for (id, labels) in rest {
            if n > 0 && bytes >= SERIES_SPLIT_BYTES {
                break;
            }
            bytes += uvarint_len(*id) + labels_encoded_len(labels);
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        let start = begin_frame(out, KIND_SERIES, MAX_VARINT_LEN + bytes);
        put_uvarint(out, chunk.len() as u64);
        for (id, labels) in chunk {
            put_uvarint(out, *id);
            labels.encode(out);
        }
        finish_frame(out, start);
        debug_assert!(out.len() - start - FRAME_HEADER_LEN <= MAX_FRAME_LEN, "series frame over the cap");
        rest = tail;
        if rest.is_empty() {
            return;
        }
    }
}

/// Appends one Metadata frame (several if the entries exceed 16 MiB of payload).
pub fn encode_metadata_frame(entries: &[(String, Option<MetricMetadata>)], out: &mut Vec<u8>) {
    let mut rest = entries;
    loop {
        let mut n = 0;
        let mut bytes = 0;
        for (name, m) in rest {
            if n > 0 && bytes >= SERIES_SPLIT_BYTES {
                break;
            }
            bytes += 1 + MAX_VARINT_LEN * 3 + name.len() + m.as_ref().map_or(0, |m| 1 + m.unit.len() + m.help.len());
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        let start = begin_frame(out, KIND_METADATA, MAX_VARINT_LEN + bytes);
        put_uvarint(out, chunk.len() as u64);
        for (name, m) in chunk {
            out.push(if m.is_some() { OP_SET } else { OP_REMOVE });
            put_bytes(out, name.as_bytes());
            if let Some(m) = m {
                out.push(m.kind.code());
                put_bytes(out, m.unit.as_bytes());
                put_bytes(out, m.help.as_bytes());
            }
        }
        finish_frame(out, start);
        rest = tail;
        if rest.is_empty() {
            return;
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends one Samples frame (several past 1 Mi samples, to respect the frame cap).
/// Hot path: one reservation up front, no allocation per sample.
pub fn encode_samples_frame(samples: &[WalSample], out: &mut Vec<u8>) {
    if samples.is_empty() {
        encode_samples_chunk(samples, out);
    }
    for chunk in samples.chunks(MAX_SAMPLES_PER_FRAME) {
        encode_samples_chunk(chunk, out);
    }
}

fn encode_samples_chunk(samples: &[WalSample], out: &mut Vec<u8>) {
    let start = begin_frame(out, KIND_SAMPLES, MAX_VARINT_LEN + samples.len() * MAX_SAMPLE_LEN);
    put_uvarint(out, samples.len() as u64);
    let mut prev = 0i64;
    for s in samples {
        put_uvarint(out, s.series);
        // wrapping: the delta of two extreme timestamps overflows i64, and the decoder
        // wraps the same way, so every pair round-trips exactly
        put_uvarint(out, zigzag(s.ts.wrapping_sub(prev)));
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        prev = s.ts;
    }
    finish_frame(out, start);
}

/// Reserves room, writes a placeholder frame header and the kind byte; returns the frame start.
fn begin_frame(out: &mut Vec<u8>, kind: u8, max_payload: usize) -> usize {
    out.reserve(FRAME_HEADER_LEN + 1 + max_payload);
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    out.push(kind);
    start
}

/// Fills in len and crc once the body (kind + payload) is complete.
fn finish_frame(out: &mut [u8], start: usize) {
    // begin_frame put the header placeholder at `start`.
    let Some((head, body)) = out.get_mut(start..).and_then(|f| f.split_at_mut_checked(FRAME_HEADER_LEN)) else {
        debug_assert!(false, "no frame header at {start}");
        return;
    };
    let len = (body.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(body).to_le_bytes();
    for (dst, src) in head.iter_mut().zip(len.into_iter().chain(crc)) {
        *dst = src;
    }
}

/// Parses the frame at `buf[0..]`; returns the record and the bytes it occupies.
pub fn decode_frame(buf: &[u8]) -> Result<(Record, usize), FrameError> {
    let (body, total) = frame_body(buf)?;
    let (&kind, payload) = body.split_first().ok_or(FrameError::Corrupt("empty frame body"))?;
    let record = match kind {
        KIND_SERIES => decode_series(payload)?,
        KIND_SAMPLES => decode_samples(payload)?,
        KIND_METADATA => decode_metadata(payload)?,
        _ => return Err(FrameError::Corrupt("unknown record kind")),
    };
    Ok((record, total))
}

/// Validates length and checksum; returns the body (kind + payload) and the frame's total size.
fn frame_body(buf: &[u8]) -> Result<(&[u8], usize), FrameError> {
    let (Some(len), Some(crc)) = (le_u32(buf, 0), le_u32(buf, 4)) else {
        return Err(FrameError::Incomplete);
    };
    let len = len as usize;
    if len == 0 {
        return Err(FrameError::Corrupt("zero frame length"));
    }
    if len > MAX_FRAME_LEN {
        return Err(FrameError::Corrupt("frame length over 64 MiB"));
    }
    let total = FRAME_HEADER_LEN + len;
    let body = buf.get(FRAME_HEADER_LEN..total).ok_or(FrameError::Incomplete)?;
    if crc32fast::hash(body) != crc {
        return Err(FrameError::Corrupt("frame checksum mismatch"));
    }
    Ok((body, total))
}

/// Whether a complete, checksum-valid frame starts at `buf[0..]`. Cheap structural checks
/// run before the checksum: replay calls this at every offset after a bad frame.
pub fn probe_frame(buf: &[u8]) -> bool {
    let (Some(len), Some(&kind)) = (le_u32(buf, 0), buf.get(FRAME_HEADER_LEN)) else {
        return false;
    };
    let len = len as usize;
    if len == 0 || len > MAX_FRAME_LEN || buf.len() - FRAME_HEADER_LEN < len {
        return false;
    }
    match kind {
        KIND_SERIES | KIND_METADATA => {}
        KIND_SAMPLES => {
            // the sample count fixes the payload size to within [10, 28] bytes per sample
            let Some(payload) = buf.get(FRAME_HEADER_LEN + 1..FRAME_HEADER_LEN + len) else {
                return false;
            };
            let mut pos = 0;
            let Some(n) = get_uvarint(payload, &mut pos) else {
                return false;
            };
            let rest = (payload.len() - pos) as u64;
            if n.checked_mul(MIN_SAMPLE_LEN as u64).is_none_or(|lo| lo > rest)
                || n.checked_mul(MAX_SAMPLE_LEN as u64).is_some_and(|hi| hi < rest)
            {
                return false;
            }
        }
        _ => return false,
    }
    frame_body(buf).is_ok()
}

fn decode_samples(p: &[u8]) -> Result<Record, FrameError> {
    let mut pos = 0;
    let n = uvarint(p, &mut pos, "truncated sample count")?;
    // every sample takes at least 10 bytes: this bounds the allocation by the bytes present
    if n > ((p.len() - pos) / MIN_SAMPLE_LEN) as u64 {
        return Err(FrameError::Corrupt("sample count exceeds the frame"));
    }
    let mut samples = Vec::with_capacity(n as usize);
    let mut ts = 0i64;
    for _ in 0..n {
        let series = uvarint(p, &mut pos, "truncated series id")?;
        ts = ts.wrapping_add(unzigzag(uvarint(p, &mut pos, "truncated timestamp")?));
        let bits = le_u64(p, pos).ok_or(FrameError::Corrupt("truncated value"))?;
        pos += 8;
        samples.push(WalSample { series, ts, value: f64::from_bits(bits) });
    }
    if pos != p.len() {
        return Err(FrameError::Corrupt("trailing bytes after samples"));
    }
    Ok(Record::Samples(samples))
}

fn decode_series(p: &[u8]) -> Result<Record, FrameError> {
    let mut pos = 0;
    let n = uvarint(p, &mut pos, "truncated series count")?;
    if n > ((p.len() - pos) / MIN_SERIES_ENTRY_LEN) as u64 {
        return Err(FrameError::Corrupt("series count exceeds the frame"));
    }
    let mut entries = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let id = uvarint(p, &mut pos, "truncated series id")?;
        let labels = Labels::decode(p, &mut pos).map_err(|_| FrameError::Corrupt("invalid labels in series record"))?;
        entries.push((id, labels));
    }
    if pos != p.len() {
        return Err(FrameError::Corrupt("trailing bytes after series"));
    }
    Ok(Record::Series(entries))
}

fn decode_metadata(p: &[u8]) -> Result<Record, FrameError> {
    let mut pos = 0;
    let n = uvarint(p, &mut pos, "truncated metadata count")?;
    if n > ((p.len() - pos) / MIN_METADATA_ENTRY_LEN) as u64 {
        return Err(FrameError::Corrupt("metadata count exceeds the frame"));
    }
    let mut entries = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let op = *p.get(pos).ok_or(FrameError::Corrupt("truncated metadata op"))?;
        pos += 1;
        let name = string(p, &mut pos, "truncated metric name")?;
        let m = match op {
            OP_REMOVE => None,
            OP_SET => {
                let code = *p.get(pos).ok_or(FrameError::Corrupt("truncated metric type"))?;
                pos += 1;
                let kind = MetricKind::from_code(code).ok_or(FrameError::Corrupt("unknown metric type"))?;
                let unit = string(p, &mut pos, "truncated unit")?;
                let help = string(p, &mut pos, "truncated help")?;
                Some(MetricMetadata { kind, unit, help })
            }
            _ => return Err(FrameError::Corrupt("unknown metadata op")),
        };
        let check = m.clone().unwrap_or_default();
        metadata::validate(&name, &check).map_err(|_| FrameError::Corrupt("invalid metadata entry"))?;
        entries.push((name, m));
    }
    if pos != p.len() {
        return Err(FrameError::Corrupt("trailing bytes after metadata"));
    }
    Ok(Record::Metadata(entries))
}

fn string(p: &[u8], pos: &mut usize, what: &'static str) -> Result<String, FrameError> {
    let n = uvarint(p, pos, what)?;
    let end = usize::try_from(n).ok().and_then(|n| pos.checked_add(n)).ok_or(FrameError::Corrupt(what))?;
    let b = p.get(*pos..end).ok_or(FrameError::Corrupt(what))?;
    *pos = end;
    String::from_utf8(b.to_vec()).map_err(|_| FrameError::Corrupt("metadata text is not UTF-8"))
}

/// uvarint with a one-byte fast path: most ids and deltas fit in 7 bits.
#[inline(always)]
fn uvarint(p: &[u8], pos: &mut usize, what: &'static str) -> Result<u64, FrameError> {
    if let Some(&b) = p.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(u64::from(b));
        }
    }
    get_uvarint(p, pos).ok_or(FrameError::Corrupt(what))
}

fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn labels_encoded_len(l: &Labels) -> usize {
    let pairs: usize =
        l.iter().map(|(k, v)| uvarint_len(k.len() as u64) + k.len() + uvarint_len(v.len() as u64) + v.len()).sum();
    uvarint_len(l.len() as u64) + pairs
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(i: u64) -> Labels {
        Labels::metric("cpu_seconds", [("host", format!("h{i}")), ("zone", "eu".to_string())]).unwrap()
    }

    fn decode_all(mut buf: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (r, n) = decode_frame(buf).unwrap();
            out.push(r);
            buf = &buf[n..];
        }
        out
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = encode_header(0xdead_beef_0102);
        assert_eq!(decode_header(&h), Ok(0xdead_beef_0102));
        for i in 0..HEADER_LEN {
            assert!(decode_header(&h[..i]).is_err());
            for bit in 0..8 {
                let mut d = h;
                d[i] ^= 1 << bit;
                assert!(decode_header(&d).is_err(), "flip at {i}:{bit} accepted");
            }
        }
    }

    #[test]
    fn version_1_headers_still_read() {
        let mut h = encode_header(9);
        assert_eq!(decode_header_version(&h), Ok((9, VERSION)));
        h[8..10].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32fast::hash(&h[..20]);
        h[20..24].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_header_version(&h), Ok((9, 1)));
        h[8..10].copy_from_slice(&3u16.to_le_bytes());
        let crc = crc32fast::hash(&h[..20]);
        h[20..24].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_header_version(&h), Err("unsupported WAL format version"));
    }

    #[test]
    fn metadata_frames_round_trip_and_refuse_bad_entries() {
        let set = Some(MetricMetadata::new(MetricKind::GaugeHistogram, "seconds", "line\nwith ümlaut"));
        let rec = Record::Metadata(vec![("a_total".into(), set), ("b".into(), None)]);
        let mut buf = Vec::new();
        rec.encode(&mut buf);
        assert!(probe_frame(&buf));
        assert_eq!(decode_frame(&buf).unwrap(), (rec, buf.len()));
        // a type code past stateset, with a valid checksum
        let mut body = vec![KIND_METADATA, 1, OP_SET, 1, b'a', 8, 0, 0];
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        f.extend_from_slice(&body);
        assert_eq!(decode_frame(&f), Err(FrameError::Corrupt("unknown metric type")));
        // an empty metric name
        body = vec![KIND_METADATA, 1, OP_REMOVE, 0];
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        f.extend_from_slice(&body);
        assert!(decode_frame(&f).is_err());
    }

    #[test]
    fn frames_round_trip_bitwise() {
        let samples = vec![
            WalSample { series: 0, ts: i64::MIN, value: f64::NAN },
            WalSample { series: u64::MAX, ts: i64::MAX, value: -0.0 },
            WalSample { series: 7, ts: 0, value: f64::from_bits(0x7ff0_0000_0000_0002) },
            WalSample { series: 7, ts: -5, value: f64::NEG_INFINITY },
        ];
        let l1 = labels(1);
        let mut buf = Vec::new();
        encode_samples_frame(&samples, &mut buf);
        encode_series_frame(&[(3, &l1), (u64::MAX, &l1)], &mut buf);
        encode_samples_frame(&[], &mut buf);
        let (_, first_len) = decode_frame(&buf).unwrap();
        for cut in 0..first_len {
            assert_eq!(decode_frame(&buf[..cut]), Err(FrameError::Incomplete), "cut at {cut}");
        }
        let got = decode_all(&buf);
        assert_eq!(
            got,
            vec![
                Record::Samples(samples),
                Record::Series(vec![(3, l1.clone()), (u64::MAX, l1)]),
                Record::Samples(vec![])
            ]
        );
    }

    #[test]
    fn large_batches_split_under_the_cap() {
        let samples: Vec<WalSample> = (0..MAX_SAMPLES_PER_FRAME as u64 + 3)
            .map(|i| WalSample { series: i, ts: i as i64 * 1000, value: i as f64 })
            .collect();
        let mut buf = Vec::new();
        encode_samples_frame(&samples, &mut buf);
        let got = decode_all(&buf);
        assert_eq!(got.len(), 2);
        let flat: Vec<WalSample> = got
            .into_iter()
            .flat_map(|r| match r {
                Record::Samples(s) => s,
                Record::Series(_) | Record::Metadata(_) => unreachable!(),
            })
            .collect();
        assert_eq!(flat, samples);
    }

    #[test]
    fn labels_len_matches_encoding() {
        let l = labels(123_456);
        let mut b = Vec::new();
        l.encode(&mut b);
        assert_eq!(labels_encoded_len(&l), b.len());
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(uvarint_len(v), b.len(), "{v}");
        }
    }

    #[test]
    fn rejects_bad_lengths_without_allocating() {
        let mut f = vec![0u8; 16];
        f[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame(&f), Err(FrameError::Corrupt("frame length over 64 MiB")));
        assert_eq!(decode_frame(&[0u8; 12]), Err(FrameError::Corrupt("zero frame length")));
        assert_eq!(decode_frame(&[5, 0, 0]), Err(FrameError::Incomplete));
        // a checksum-valid frame claiming 2^60 samples in a few bytes
        let mut body = vec![KIND_SAMPLES];
        put_uvarint(&mut body, 1 << 60);
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        f.extend_from_slice(&body);
        assert_eq!(decode_frame(&f), Err(FrameError::Corrupt("sample count exceeds the frame")));
        assert!(!probe_frame(&f));
    }

    fn arb_sample() -> impl Strategy<Value = WalSample> {
        (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(series, ts, bits)| WalSample {
            series,
            ts,
            value: f64::from_bits(bits),
        })
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        prop_oneof![
            proptest::collection::vec(arb_sample(), 0..40).prop_map(Record::Samples),
            proptest::collection::vec((any::<u64>(), 0u64..1000), 0..5)
                .prop_map(|v| Record::Series(v.into_iter().map(|(id, l)| (id, labels(l))).collect())),
            proptest::collection::vec(arb_metadata(), 0..5).prop_map(Record::Metadata),
        ]
    }

    fn arb_metadata() -> impl Strategy<Value = (String, Option<MetricMetadata>)> {
        let set = (0u8..8, "[a-z]{0,8}", "\\PC{0,30}")
            .prop_map(|(k, unit, help)| Some(MetricMetadata { kind: MetricKind::from_code(k).unwrap(), unit, help }));
        ("[a-z_:]{1,20}", prop_oneof![Just(None), set])
    }

    proptest! {
        #[test]
        fn records_round_trip(recs in proptest::collection::vec(arb_record(), 0..20)) {
            let mut buf = Vec::new();
            for r in &recs {
                r.encode(&mut buf);
            }
            let mut pos = 0;
            for r in &recs {
                prop_assert!(probe_frame(&buf[pos..]));
                let (got, n) = decode_frame(&buf[pos..]).unwrap();
                prop_assert_eq!(&got, r);
                pos += n;
            }
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_frame(&bytes);
            let _ = probe_frame(&bytes);
            let _ = decode_header(&bytes);
        }

        #[test]
        fn framed_garbage_never_panics(kind in 0u8..4, payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            // a correct checksum over random bytes reaches the payload decoders
            let mut body = vec![kind];
            body.extend_from_slice(&payload);
            let mut f = (body.len() as u32).to_le_bytes().to_vec();
            f.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            f.extend_from_slice(&body);
            let _ = decode_frame(&f);
            let _ = probe_frame(&f);
        }
    }
}
