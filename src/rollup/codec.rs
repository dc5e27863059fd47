//! Rollup chunk codec: a run of [`Bucket`]s of one series, stored in tier 1 (5m)
//! and tier 2 (1h) segments where raw segments store sample chunks.
//!
//! Each bucket field is a column, encoded as its own lossless sample chunk
//! ([`crate::codec::chunk`]) whose timestamps are the bucket starts. So bucket
//! starts get the regular-step timestamp coding (one delta for the whole run
//! when no bucket is missing), and values the decimal/XOR coding, bit for bit.
//! The nine timestamp sections are identical; zstd over the page removes the
//! repetition. Layout (see `docs/format/rollup.md`):
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

use super::{check_buckets, Bucket};
use crate::codec::chunk::{decode_chunk, encode_chunk, DecodeError, MAX_CHUNK_SAMPLES};
use crate::codec::varint::{get_uvarint, put_uvarint};
use crate::error::{Error, Result};
use crate::sample::{ChunkMeta, Sample};

/// The most buckets one rollup chunk may hold.
pub const MAX_BUCKETS: usize = MAX_CHUNK_SAMPLES;

pub(crate) const VERSION: u8 = 1;
const COLUMNS: usize = 9;
/// Integers below this are exact as f64.
const EXACT_INT: f64 = 9007199254740992.0;

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

/// Encodes `buckets` (1..=65535 of them, satisfying [`check_buckets`], with
/// counts and in-bucket offsets below 2^53) onto `out` and returns the chunk's
/// summary: `min_t`/`max_t` are the first/last bucket *starts* (the last
/// bucket's samples reach up to `max_t + width - 1`), `count` the number of
/// buckets, `min`/`max` the min of the mins and max of the maxes (NaN ignored),
/// `sum` the sum of the sums. On error nothing is written.
pub fn encode_buckets(buckets: &[Bucket], out: &mut Vec<u8>) -> Result<ChunkMeta> {
    if buckets.is_empty() || buckets.len() > MAX_BUCKETS {
        return Err(Error::InvalidArgument(format!(
            "a rollup chunk holds 1..={MAX_BUCKETS} buckets, got {}",
            buckets.len()
        )));
    }
    check_buckets(buckets, None).map_err(|(i, why)| Error::InvalidArgument(format!("bucket {i}: {why}")))?;
    for (i, b) in buckets.iter().enumerate() {
        // last_ts >= start is checked above, so the difference is >= 0 (in i128).
        let too_big = b.count as f64 >= EXACT_INT || i128::from(b.last_ts) - i128::from(b.start) >= EXACT_INT as i128;
        if too_big {
            return Err(Error::InvalidArgument(format!(
                "bucket {i}: count or sample offset of 2^53 or more cannot be stored exactly"
            )));
        }
    }
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
    // Not empty (checked above).
    let (first, last) = match (buckets.first(), buckets.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(Error::InvalidArgument("a rollup chunk holds at least one bucket".into())),
    };
    let mut meta = ChunkMeta {
        min_t: first.start,
        max_t: last.start,
        count: buckets.len() as u32,
        min: f64::NAN,
        max: f64::NAN,
        sum: 0.0,
        last: last.last,
    };
    for b in buckets {
        meta.min = meta.min.min(b.min);
        meta.max = meta.max.max(b.max);
        meta.sum += b.sum;
    }
    Ok(meta)
}

/// Column masks for [`decode_columns`]: bit `c` selects column `c`.
pub const COL_COUNT: u16 = 1 << 0;
pub const COL_SUM: u16 = 1 << 1;
pub const COL_MIN: u16 = 1 << 2;
pub const COL_MAX: u16 = 1 << 3;
pub const COL_FIRST: u16 = 1 << 4;
pub const COL_LAST: u16 = 1 << 5;
pub const COL_FIRST_TS: u16 = 1 << 7;
pub const COL_LAST_TS: u16 = 1 << 8;
pub const ALL_COLUMNS: u16 = (1 << COLUMNS) - 1;

/// Decodes one whole rollup chunk (`buf` is exactly its bytes), appending to
/// `out`. Never panics; on error `out` is left as it was. Whatever decodes
/// satisfies [`check_buckets`].
pub fn decode_buckets(buf: &[u8], out: &mut Vec<Bucket>) -> std::result::Result<(), DecodeError> {
    decode_columns(buf, out, ALL_COLUMNS)
}

/// Like [`decode_buckets`], but decodes only the columns in `want` (the count
/// always). Other fields keep [`Bucket::empty`]'s values, `first_ts` and
/// `last_ts` included, so a partial bucket is fit only for what reads the
/// columns it has: count, sum, min and max merge and combine exactly. Starts
/// are checked to increase strictly; [`check_buckets`] runs only for all columns.
pub fn decode_columns(buf: &[u8], out: &mut Vec<Bucket>, want: u16) -> std::result::Result<(), DecodeError> {
    let base = out.len();
    let res = decode_into(buf, out, want | COL_COUNT);
    if res.is_err() {
        out.truncate(base);
    }
    res
}

fn decode_into(buf: &[u8], out: &mut Vec<Bucket>, want: u16) -> std::result::Result<(), DecodeError> {
    const TRUNCATED: DecodeError = DecodeError("truncated rollup chunk");
    let mut pos = 0;
    if *buf.first().ok_or(TRUNCATED)? != VERSION {
        return Err(DecodeError("unknown rollup chunk version"));
    }
    pos += 1;
    let count = get_uvarint(buf, &mut pos).ok_or(TRUNCATED)?;
    if count == 0 || count > MAX_BUCKETS as u64 {
        return Err(DecodeError("rollup bucket count out of range"));
    }
    let count = count as usize;
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
    if want != ALL_COLUMNS {
        let decoded = out.get(start..).unwrap_or_default();
        return match decoded.windows(2).all(|w| matches!(w, [a, b] if a.start < b.start)) {
            true => Ok(()),
            false => Err(DecodeError("buckets not sorted by start, or they overlap")),
        };
    }
    check_buckets(out.get(start..).unwrap_or_default(), None).map_err(|(_, why)| DecodeError(why))
}

/// `v` as an integer in `[0, 2^53)`, if it is one exactly.
fn exact_int(v: f64) -> Option<i64> {
    ((0.0..EXACT_INT).contains(&v) && v.fract() == 0.0).then_some(v as i64)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rollup::{rollup, FIVE_MIN_MS};
    use proptest::prelude::*;

    fn encode(buckets: &[Bucket]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_buckets(buckets, &mut out).unwrap();
        out
    }

    fn decode(buf: &[u8]) -> std::result::Result<Vec<Bucket>, DecodeError> {
        let mut out = Vec::new();
        decode_buckets(buf, &mut out).map(|()| out)
    }

    fn fixtures() -> Vec<Vec<Bucket>> {
        let counter: Vec<Sample> =
            (0..500).map(|i| Sample::new(i * 15_000 + 7, ((i * 13) % 170) as f64 + 0.5 * (i % 3) as f64)).collect();
        let mut gappy: Vec<Sample> =
            (0..80).map(|i| Sample::new(i * i * 40_000 - 3_000_000, (i as f64).sin())).collect();
        gappy[5].value = f64::NAN;
        gappy[9].value = -0.0;
        gappy[10].value = f64::INFINITY;
        let single = vec![Sample::new(i64::MIN, f64::MIN)];
        let top = vec![Sample::new(i64::MAX - 1, 1.0), Sample::new(i64::MAX, 2.0)];
        vec![
            rollup(&counter, FIVE_MIN_MS).unwrap(),
            rollup(&gappy, FIVE_MIN_MS).unwrap(),
            rollup(&single, 2).unwrap(),
            rollup(&top, 1000).unwrap(),
        ]
    }

    #[test]
    fn round_trips_bitwise_with_meta() {
        for buckets in fixtures() {
            let mut buf = vec![0xAA];
            let meta = encode_buckets(&buckets, &mut buf).unwrap();
            assert_eq!(buf[0], 0xAA, "appends");
            assert_eq!(decode(&buf[1..]).unwrap(), buckets);
            assert_eq!((meta.min_t, meta.max_t), (buckets[0].start, buckets[buckets.len() - 1].start));
            assert_eq!(meta.count as usize, buckets.len());
            let min = buckets.iter().map(|b| b.min).fold(f64::NAN, f64::min);
            assert_eq!(meta.min.to_bits(), min.to_bits());
        }
    }

    #[test]
    fn projected_decode_matches_the_full_one_on_its_columns() {
        for fx in fixtures() {
            let buf = encode(&fx);
            let full = decode(&buf).unwrap();
            for want in [COL_COUNT, COL_SUM, COL_MIN, COL_MAX, COL_SUM | COL_MAX] {
                let mut got = Vec::new();
                decode_columns(&buf, &mut got, want).unwrap();
                assert_eq!(got.len(), full.len());
                for (g, f) in got.iter().zip(&full) {
                    assert_eq!((g.start, g.count), (f.start, f.count));
                    let same = |on: u16, a: f64, b: f64| on & want == 0 || a.to_bits() == b.to_bits();
                    assert!(same(COL_SUM, g.sum, f.sum) && same(COL_MIN, g.min, f.min) && same(COL_MAX, g.max, f.max));
                }
                // A damaged skipped column is not read; the length prefix still bounds it.
                let mut cut = buf.clone();
                cut.pop();
                assert!(decode_columns(&cut, &mut got, want).is_err());
            }
        }
    }

    #[test]
    fn size_is_small_for_a_regular_series() {
        let buckets = &fixtures()[0];
        let buf = encode(buckets);
        println!("{} buckets in {} bytes", buckets.len(), buf.len());
        assert!(buf.len() < buckets.len() * 40);
    }

    #[test]
    fn encoder_rejects_bad_input() {
        let mut out = Vec::new();
        assert!(encode_buckets(&[], &mut out).is_err());
        assert!(encode_buckets(&[Bucket::empty(0)], &mut out).is_err());
        let b = Bucket::from_samples(0, &[Sample::new(0, 1.0)]);
        assert!(encode_buckets(&[b, b], &mut out).is_err());
        let far = Bucket::from_samples(i64::MIN, &[Sample::new(0, 1.0)]);
        assert!(encode_buckets(&[far], &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn truncation_is_an_error() {
        for buckets in fixtures() {
            let buf = encode(&buckets);
            for len in 0..buf.len() {
                assert!(decode(&buf[..len]).is_err(), "prefix of {len} bytes decoded");
            }
            let mut long = buf.clone();
            long.push(0);
            assert!(decode(&long).is_err());
        }
    }

    #[test]
    fn bit_flips_never_panic() {
        for buckets in fixtures() {
            let buf = encode(&buckets);
            let mut out = vec![Bucket::empty(1)];
            for bit in 0..buf.len() * 8 {
                let mut bad = buf.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                out.truncate(1);
                if decode_buckets(&bad, &mut out).is_ok() {
                    assert!(check_buckets(&out[1..], None).is_ok());
                    assert!(!out[1..].is_empty() && out.len() <= MAX_BUCKETS + 1);
                } else {
                    assert_eq!(out, vec![Bucket::empty(1)]);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn round_trips_random(
            raw in prop::collection::vec((0i64..50_000, any::<u64>(), 0u8..4), 1..300),
            width in 1i64..100_000,
        ) {
            // Timestamps: a strictly increasing walk; values: decimals, counters or any bits.
            let mut ts = -1_000_000i64;
            let samples: Vec<Sample> = raw.iter().map(|&(gap, bits, kind)| {
                ts += gap + 1;
                let v = match kind {
                    0 => (bits % 10_000) as f64 / 100.0,
                    1 => (bits % 1000) as f64,
                    2 => f64::from_bits(bits),
                    _ => -((bits % 77) as f64),
                };
                Sample::new(ts, v)
            }).collect();
            let buckets = rollup(&samples, width).unwrap();
            prop_assert_eq!(decode(&encode(&buckets)).unwrap(), buckets);
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _ = decode_buckets(&bytes, &mut out);
            let mut framed = vec![VERSION, 1];
            framed.extend_from_slice(&bytes);
            let _ = decode_buckets(&framed, &mut out);
        }
    }
}
