//! Rollup chunk version 1: each bucket field is a column, encoded as its own
//! lossless sample chunk ([`crate::codec::chunk`]) whose timestamps are the
//! bucket starts. Written until version 2 replaced it; still read, and still
//! written by [`super::encode_buckets_v1`] for the golden files. Layout (see
//! `docs/format/rollup.md`):
//!
//! ```text
//! rollup_chunk := version:u8 (=1)  count:uvarint (1..=65535)
//!                 len:uvarint × 9   column bytes × 9 (exactly the lengths)
//! columns, in order: count, sum, min, max, first, last, increase,
//!                    first_ts - start, last_ts - start
//! ```
//!
//! `count` and the two offsets are integers stored as f64 values, exact below
//! 2^53 (the encoder refuses larger ones; the decoder checks).

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use super::{exact_int, COLUMNS};
use crate::codec::chunk::{decode_chunk, encode_chunk, DecodeError};
use crate::codec::varint::{get_uvarint, put_uvarint};
use crate::rollup::Bucket;
use crate::sample::Sample;

pub(super) const VERSION: u8 = 1;

/// Column `c` of bucket `b`, as the f64 stored for it.
fn column(b: &Bucket, c: usize) -> f64 {
    match c {
        0 => b.count as f64,
        1 => b.sum,
        2 => b.min,
        3 => b.max,
        4 => b.first,
        5 => b.last,
        6 => b.increase,
        // Offsets are checked to be in [0, 2^53) before encoding.
        7 => (b.first_ts - b.start) as f64,
        _ => (b.last_ts - b.start) as f64,
    }
}

/// Writes `buckets`, already checked by [`super::check_encodable`].
pub(super) fn encode(buckets: &[Bucket], out: &mut Vec<u8>) {
    let mut cols: Vec<Vec<u8>> = Vec::with_capacity(COLUMNS);
    let mut samples: Vec<Sample> = Vec::with_capacity(buckets.len());
    for c in 0..COLUMNS {
        samples.clear();
        samples.extend(buckets.iter().map(|b| Sample::new(b.start, column(b, c))));
        let mut col = Vec::new();
        // Starts strictly increase (check_buckets) and 1..=65535 of them: no panic.
        encode_chunk(&samples, &mut col);
        cols.push(col);
    }
    out.push(VERSION);
    put_uvarint(out, buckets.len() as u64);
    for col in &cols {
        put_uvarint(out, col.len() as u64);
    }
    for col in &cols {
        out.extend_from_slice(col);
    }
}

/// Decodes the columns in `want` (the count among them) of a version 1 chunk onto
/// `out`. The caller truncates `out` on error and checks the invariants.
pub(super) fn decode_into(buf: &[u8], out: &mut Vec<Bucket>, want: u16) -> Result<(), DecodeError> {
    const TRUNCATED: DecodeError = DecodeError("truncated rollup chunk");
    let mut pos = 1;
    let count = super::bucket_count(buf, &mut pos)?;
    let mut lens = [0usize; COLUMNS];
    for len in &mut lens {
        let l = get_uvarint(buf, &mut pos).ok_or(TRUNCATED)?;
        *len = usize::try_from(l).map_err(|_| TRUNCATED)?;
    }
    let start = out.len();
    let mut col: Vec<Sample> = Vec::with_capacity(count);
    for (c, &len) in lens.iter().enumerate() {
        let end = pos.checked_add(len).ok_or(TRUNCATED)?;
        let bytes = buf.get(pos..end).ok_or(TRUNCATED)?;
        if want & (1 << c) == 0 {
            pos = end;
            continue;
        }
        col.clear();
        decode_chunk(bytes, &mut col)?;
        pos = end;
        if col.len() != count {
            return Err(DecodeError("rollup column length disagrees with bucket count"));
        }
        if c == 0 {
            for s in &col {
                let n = exact_int(s.value).filter(|&n| n >= 1).ok_or(DecodeError("bad bucket count"))?;
                let mut b = Bucket::empty(s.ts);
                b.count = n as u64;
                out.push(b);
            }
            continue;
        }
        let buckets = out.get_mut(start..).unwrap_or_default();
        for (b, s) in buckets.iter_mut().zip(&col) {
            if s.ts != b.start {
                return Err(DecodeError("rollup columns disagree on bucket starts"));
            }
            let v = s.value;
            match c {
                1 => b.sum = v,
                2 => b.min = v,
                3 => b.max = v,
                4 => b.first = v,
                5 => b.last = v,
                6 => b.increase = v,
                _ => {
                    let off = exact_int(v).ok_or(DecodeError("bad sample offset in bucket"))?;
                    let ts = b.start.checked_add(off).ok_or(DecodeError("sample offset overflows"))?;
                    if c == 7 {
                        b.first_ts = ts;
                    } else {
                        b.last_ts = ts;
                    }
                }
            }
        }
    }
    if pos != buf.len() {
        return Err(DecodeError("trailing bytes after rollup chunk"));
    }
    Ok(())
}
