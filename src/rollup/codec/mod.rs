//! Rollup chunk codec: a run of [`Bucket`]s of one series, stored in tier 1 (5m)
//! and tier 2 (1h) segments where raw segments store sample chunks.
//!
//! Two versions, told apart by the first byte (see `docs/format/rollup.md`):
//! - version 2 ([`v2`], written): the bucket starts once, integer fields as a
//!   constant with exceptions, and each statistic as a decimal-scaled integer
//!   predicted from the others (first from the previous last, min and max from
//!   first and last, ...) plus a correction that makes it exact bit for bit;
//! - version 1 ([`v1`], read, and written only by [`encode_buckets_v1`]): nine
//!   sample chunks, one per field, each with its own copy of the starts.
//!
//! Both decode to the same buckets; whatever decodes satisfies [`check_buckets`].

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

mod planes;
mod v1;
mod v2;

use super::{check_buckets, Bucket};
use crate::codec::chunk::{DecodeError, MAX_CHUNK_SAMPLES};
use crate::codec::varint::get_uvarint;
use crate::error::{Error, Result};
use crate::sample::ChunkMeta;

/// The most buckets one rollup chunk may hold.
pub const MAX_BUCKETS: usize = MAX_CHUNK_SAMPLES;

/// The version [`encode_buckets`] writes.
pub(crate) const VERSION: u8 = v2::VERSION;
/// Bucket fields, each a column: count, sum, min, max, first, last, increase,
/// and the two sample timestamps.
const COLUMNS: usize = 9;
/// Integers below this are exact as f64.
const EXACT_INT: f64 = 9007199254740992.0;

/// Column masks for [`decode_columns`]: bit `c` selects column `c`.
pub const COL_COUNT: u16 = 1 << 0;
pub const COL_SUM: u16 = 1 << 1;
pub const COL_MIN: u16 = 1 << 2;
pub const COL_MAX: u16 = 1 << 3;
pub const COL_FIRST: u16 = 1 << 4;
pub const COL_LAST: u16 = 1 << 5;
pub const COL_INCREASE: u16 = 1 << 6;
pub const COL_FIRST_TS: u16 = 1 << 7;
pub const COL_LAST_TS: u16 = 1 << 8;
pub const ALL_COLUMNS: u16 = (1 << COLUMNS) - 1;

/// Encodes `buckets` (1..=65535 of them, satisfying [`check_buckets`], with
/// counts and in-bucket offsets below 2^53) onto `out` as a version 2 chunk and
/// returns the chunk's summary: `min_t`/`max_t` are the first/last bucket
/// *starts* (the last bucket's samples reach up to `max_t + width - 1`), `count`
/// the number of buckets, `min`/`max` the min of the mins and max of the maxes
/// (NaN ignored), `sum` the sum of the sums. On error nothing is written.
pub fn encode_buckets(buckets: &[Bucket], out: &mut Vec<u8>) -> Result<ChunkMeta> {
    let meta = check_encodable(buckets)?;
    v2::encode(buckets, out);
    Ok(meta)
}

/// [`encode_buckets`] in the version 1 layout, which this build still reads.
/// Only the golden files and the tests that pin version 1 write it.
pub fn encode_buckets_v1(buckets: &[Bucket], out: &mut Vec<u8>) -> Result<ChunkMeta> {
    let meta = check_encodable(buckets)?;
    v1::encode(buckets, out);
    Ok(meta)
}

/// Refuses what neither version can store; otherwise the chunk's summary.
fn check_encodable(buckets: &[Bucket]) -> Result<ChunkMeta> {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Err(Error::InvalidArgument(format!("a rollup chunk holds 1..={MAX_BUCKETS} buckets, got 0")));
    };
    if buckets.len() > MAX_BUCKETS {
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

/// Decodes one whole rollup chunk of either version (`buf` is exactly its
/// bytes), appending to `out`. Never panics; on error `out` is left as it was.
/// Whatever decodes satisfies [`check_buckets`].
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
    let want = (want | COL_COUNT) & ALL_COLUMNS;
    let res = match buf.first() {
        None => Err(DecodeError("truncated rollup chunk")),
        Some(&v1::VERSION) => v1::decode_into(buf, out, want),
        Some(&v2::VERSION) => v2::decode_into(buf, out, want),
        Some(_) => Err(DecodeError("unknown rollup chunk version")),
    }
    .and_then(|()| {
        let decoded = out.get(base..).unwrap_or_default();
        if want == ALL_COLUMNS {
            return check_buckets(decoded, None).map_err(|(_, why)| DecodeError(why));
        }
        match decoded.windows(2).all(|w| matches!(w, [a, b] if a.start < b.start)) {
            true => Ok(()),
            false => Err(DecodeError("buckets not sorted by start, or they overlap")),
        }
    });
    if res.is_err() {
        out.truncate(base);
    }
    res
}

/// The bucket count after the version byte, checked to be in 1..=65535.
fn bucket_count(buf: &[u8], pos: &mut usize) -> std::result::Result<usize, DecodeError> {
    let count = get_uvarint(buf, pos).ok_or(DecodeError("truncated rollup chunk"))?;
    if count == 0 || count > MAX_BUCKETS as u64 {
        return Err(DecodeError("rollup bucket count out of range"));
    }
    Ok(count as usize)
}

/// `v` as an integer in `[0, 2^53)`, if it is one exactly.
fn exact_int(v: f64) -> Option<i64> {
    ((0.0..EXACT_INT).contains(&v) && v.fract() == 0.0).then_some(v as i64)
}

#[cfg(test)]
mod tests;
