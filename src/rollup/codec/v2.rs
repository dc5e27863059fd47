//! Rollup chunk version 2: the bucket starts once, the integer fields as a
//! constant with exceptions, the statistics as decimal-scaled integers predicted
//! from one another, each with a correction that makes it exact bit for bit.
//! Layout and rationale in `docs/format/rollup.md`:
//!
//! ```text
//! rollup_chunk := version:u8 (=2)  count:uvarint (1..=65535)  scale:u8
//!                 starts  len:uvarint × 9  column bytes × 9 (exactly the lengths)
//! columns, in order: count, sum, min, max, first, last, increase,
//!                    first_ts - start, last_ts - first_ts
//! ```
//!
//! A statistic `v` at scale `k` is the integer `m = round(v * 10^k)` plus the
//! correction `ord(v) - ord(m / 10^k)` (`planes::ord`), which is 0 for a decimal
//! and a few units for a float sum of decimals; `m` is stored as its difference
//! from a prediction. Any bit pattern round-trips; a column that codes badly this
//! way (values that are no decimals) is stored as a version 1 sample chunk.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use super::planes::{self, from_ord, ord, Planes};
use super::{bucket_count, COLUMNS, COL_FIRST, COL_FIRST_TS, COL_LAST, COL_LAST_TS, COL_MAX, COL_MIN, COL_SUM};
use crate::codec::chunk::{decode_chunk, encode_chunk, DecodeError};
use crate::codec::varint::{get_ivarint, get_uvarint, put_ivarint, put_uvarint, unzigzag, zigzag};
use crate::rollup::Bucket;
use crate::sample::Sample;

pub(super) const VERSION: u8 = 2;

/// The scale byte when the statistics are no decimals: every float column is RAW.
const NO_SCALE: u8 = 0xFF;
/// 10^k for k in 0..=9; all exact in f64.
const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Integer mantissas stay below 2^53 so that `m as f64` is exact.
const MAX_MANTISSA: f64 = 9007199254740992.0;
const MAX_MANTISSA_I: i128 = 1 << 53;

/// Integer column modes.
const INT_EXCEPT: u8 = 0;
const INT_PLANES: u8 = 1;
/// Float column modes.
const F_RAW: u8 = 0;
const F_PRED: u8 = 1;

/// Predictors of a float column's mantissa, from fields decoded before it.
const P_ZERO: u8 = 0;
/// The previous bucket's `last` (0 for the first bucket).
const P_PREV_LAST: u8 = 1;
const P_FIRST: u8 = 2;
/// `min(first, last)`.
const P_LOW: u8 = 3;
/// `max(first, last)`.
const P_HIGH: u8 = 4;
/// `count * (min + max) / 2`.
const P_MID: u8 = 5;
/// `last - first`.
const P_SPAN: u8 = 6;
/// `sum / 2`.
const P_HALF_SUM: u8 = 7;

// Column numbers (bit c of a column mask).
const COUNT: usize = 0;
const SUM: usize = 1;
const MIN: usize = 2;
const MAX: usize = 3;
const FIRST: usize = 4;
const LAST: usize = 5;
const INCREASE: usize = 6;
const FIRST_OFF: usize = 7;
const SPAN_TS: usize = 8;

/// The predictors column `c` may use; none reads a column decoded after it (the
/// decoding order is first and last together, min, max, sum, increase).
fn allowed(c: usize) -> &'static [u8] {
    match c {
        SUM => &[P_ZERO, P_MID],
        MIN => &[P_ZERO, P_LOW],
        MAX => &[P_ZERO, P_HIGH],
        FIRST => &[P_ZERO, P_PREV_LAST],
        LAST => &[P_ZERO, P_FIRST],
        INCREASE => &[P_ZERO, P_SPAN, P_HALF_SUM],
        _ => &[],
    }
}

/// The float columns predictor `p` reads.
fn deps(p: u8) -> u16 {
    match p {
        P_PREV_LAST => COL_LAST,
        P_FIRST => COL_FIRST,
        P_LOW | P_HIGH | P_SPAN => COL_FIRST | COL_LAST,
        P_MID => COL_MIN | COL_MAX,
        P_HALF_SUM => COL_SUM,
        _ => 0,
    }
}

fn get(b: &Bucket, c: usize) -> f64 {
    match c {
        SUM => b.sum,
        MIN => b.min,
        MAX => b.max,
        FIRST => b.first,
        LAST => b.last,
        _ => b.increase,
    }
}

fn set(b: &mut Bucket, c: usize, v: f64) {
    match c {
        SUM => b.sum = v,
        MIN => b.min = v,
        MAX => b.max = v,
        FIRST => b.first = v,
        LAST => b.last = v,
        _ => b.increase = v,
    }
}

/// `round(v * scale)`, or 0 where that is no integer below 2^53 (NaN, infinities,
/// huge values: the correction then carries the whole value).
#[inline]
pub(super) fn mant(v: f64, scale: f64) -> i64 {
    let x = v * scale;
    if x.is_nan() || x.abs() >= MAX_MANTISSA {
        return 0;
    }
    // f64::round without its libm call: below 2^53 the truncation `t` and the
    // fraction `x - t` are exact (x and t share sign and lie within a factor of
    // two of each other when |x| >= 1), and halves round away from zero.
    let t = x as i64;
    let frac = x - t as f64;
    let r = if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    };
    if r.unsigned_abs() >= 1 << 53 {
        0
    } else {
        r
    }
}

/// The decimal `m / scale`; dividing by 1.0 is exact, so scale 1 gives `m as f64`.
#[inline]
fn approx(m: i64, scale: f64) -> f64 {
    m as f64 / scale
}

/// The prediction of predictor `p` for bucket `i`, from fields already final.
#[inline]
fn predict(p: u8, buckets: &[Bucket], i: usize, scale: f64) -> i64 {
    let Some(b) = buckets.get(i) else { return 0 };
    let m = |v: f64| mant(v, scale);
    match p {
        P_PREV_LAST => i.checked_sub(1).and_then(|j| buckets.get(j)).map_or(0, |prev| m(prev.last)),
        P_FIRST => m(b.first),
        P_LOW => m(b.first).min(m(b.last)),
        P_HIGH => m(b.first).max(m(b.last)),
        P_MID => {
            let mid = (i128::from(b.count) * (i128::from(m(b.min)) + i128::from(m(b.max)))).div_euclid(2);
            mid.clamp(-MAX_MANTISSA_I, MAX_MANTISSA_I) as i64
        }
        // Both below 2^53 in magnitude: no overflow.
        P_SPAN => m(b.last) - m(b.first),
        P_HALF_SUM => m(b.sum).div_euclid(2),
        _ => 0,
    }
}

// ---------------------------------------------------------------- encoding

/// Writes `buckets`, already checked by [`super::check_encodable`].
pub(super) fn encode(buckets: &[Bucket], out: &mut Vec<u8>) {
    let n = buckets.len();
    out.push(VERSION);
    put_uvarint(out, n as u64);
    let scale = decimal_scale(buckets);
    out.push(scale.map_or(NO_SCALE, |k| k as u8));
    let scale = scale.and_then(|k| POW10.get(k).copied());
    encode_starts(buckets, out);
    let mut cols: Vec<Vec<u8>> = Vec::with_capacity(COLUMNS);
    for c in 0..COLUMNS {
        let mut col = Vec::new();
        match c {
            COUNT => encode_ints(buckets.iter().map(|b| b.count), n, &mut col),
            // first_ts >= start and last_ts >= first_ts (check_buckets), both gaps below 2^53.
            FIRST_OFF => encode_ints(buckets.iter().map(|b| b.first_ts.wrapping_sub(b.start) as u64), n, &mut col),
            SPAN_TS => encode_ints(buckets.iter().map(|b| b.last_ts.wrapping_sub(b.first_ts) as u64), n, &mut col),
            _ => encode_float(buckets, c, scale, &mut col),
        }
        cols.push(col);
    }
    for col in &cols {
        put_uvarint(out, col.len() as u64);
    }
    for col in &cols {
        out.extend_from_slice(col);
    }
}

/// The smallest k at which every finite, non-zero first, last, min and max is
/// exactly `m / 10^k` (zeros, NaN and infinities get a correction instead), or
/// `None` when no k is.
fn decimal_scale(buckets: &[Bucket]) -> Option<usize> {
    let exact =
        |v: f64, scale: f64| v == 0.0 || !v.is_finite() || approx(mant(v, scale), scale).to_bits() == v.to_bits();
    POW10
        .iter()
        .position(|&scale| buckets.iter().all(|b| [b.first, b.last, b.min, b.max].into_iter().all(|v| exact(v, scale))))
}

/// `first:ivarint step:uvarint n:uvarint (gap:uvarint delta:uvarint) × n`: every
/// start is the previous one plus `step`, except at the listed places.
fn encode_starts(buckets: &[Bucket], out: &mut Vec<u8>) {
    let first = buckets.first().map_or(0, |b| b.start);
    // Starts strictly increase: each gap is below 2^64, exact modulo 2^64.
    let delta = |j: usize| match (buckets.get(j - 1), buckets.get(j)) {
        (Some(a), Some(b)) => b.start.wrapping_sub(a.start) as u64,
        _ => 0,
    };
    let n = buckets.len();
    let step = if n >= 2 { delta(n / 2) } else { 0 };
    let exceptions: Vec<(usize, u64)> = (1..n).map(|j| (j, delta(j))).filter(|&(_, d)| d != step).collect();
    put_ivarint(out, first);
    put_uvarint(out, step);
    put_uvarint(out, exceptions.len() as u64);
    let mut next = 1;
    for (j, d) in exceptions {
        put_uvarint(out, (j - next) as u64);
        put_uvarint(out, d);
        next = j + 1;
    }
}

/// Integers as a constant with exceptions, or as planes, whichever is shorter.
fn encode_ints(vals: impl Iterator<Item = u64>, n: usize, out: &mut Vec<u8>) {
    let vals: Vec<u64> = vals.collect();
    let base = vals.get(n / 2).copied().unwrap_or(0);
    let mut except = vec![INT_EXCEPT];
    put_uvarint(&mut except, base);
    let odd: Vec<(usize, u64)> = vals.iter().copied().enumerate().filter(|&(_, v)| v != base).collect();
    put_uvarint(&mut except, odd.len() as u64);
    let mut next = 0;
    for (i, v) in odd {
        put_uvarint(&mut except, (i - next) as u64);
        put_uvarint(&mut except, v);
        next = i + 1;
    }
    let mut plain = vec![INT_PLANES];
    planes::put(&mut plain, &vals);
    out.extend_from_slice(if plain.len() < except.len() { &plain } else { &except });
}

/// Bits of `u` (0 for 0): the cost measure the encoder picks predictors by.
fn bits(u: u64) -> u64 {
    u64::from(64 - u.leading_zeros())
}

/// One float column: PRED with the cheapest allowed predictor, or RAW when there
/// is no scale or when the corrections make PRED longer.
fn encode_float(buckets: &[Bucket], c: usize, scale: Option<f64>, out: &mut Vec<u8>) {
    let Some(scale) = scale else {
        encode_raw(buckets, c, out);
        return;
    };
    let mants: Vec<i64> = buckets.iter().map(|b| mant(get(b, c), scale)).collect();
    let corr: Vec<u64> =
        buckets.iter().zip(&mants).map(|(b, &m)| zigzag(ord(get(b, c)).wrapping_sub(ord(approx(m, scale))))).collect();
    let residuals = |p: u8| -> Vec<u64> {
        mants.iter().enumerate().map(|(i, &m)| zigzag(m.wrapping_sub(predict(p, buckets, i, scale)))).collect()
    };
    let mut best: Option<(u64, u8, Vec<u64>)> = None;
    for &p in allowed(c) {
        let res = residuals(p);
        let cost = res.iter().map(|&r| bits(r)).sum::<u64>();
        if best.as_ref().is_none_or(|(b, _, _)| cost < *b) {
            best = Some((cost, p, res));
        }
    }
    let Some((_, p, res)) = best else {
        encode_raw(buckets, c, out);
        return;
    };
    let mut pred = vec![F_PRED, p];
    planes::put(&mut pred, &res);
    planes::put(&mut pred, &corr);
    // Corrections of two bytes or more: values that are no decimals; RAW may do better.
    if corr.iter().any(|&x| x > 0xFF) {
        let mut raw = Vec::new();
        encode_raw(buckets, c, &mut raw);
        if raw.len() < pred.len() {
            out.extend_from_slice(&raw);
            return;
        }
    }
    out.extend_from_slice(&pred);
}

/// `F_RAW` and a sample chunk of sample i = (i, value of bucket i).
fn encode_raw(buckets: &[Bucket], c: usize, out: &mut Vec<u8>) {
    out.push(F_RAW);
    let samples: Vec<Sample> = buckets.iter().enumerate().map(|(i, b)| Sample::new(i as i64, get(b, c))).collect();
    // 1..=65535 samples with timestamps 0, 1, 2, ...: no panic.
    encode_chunk(&samples, out);
}

// ---------------------------------------------------------------- decoding

const TRUNCATED: DecodeError = DecodeError("truncated rollup chunk");

/// How one float column is stored, read from its first bytes.
enum FloatCol<'a> {
    Raw(&'a [u8]),
    Pred { p: u8, res: Planes<'a>, corr: Planes<'a> },
}

impl FloatCol<'_> {
    fn deps(&self) -> u16 {
        match self {
            FloatCol::Raw(_) => 0,
            FloatCol::Pred { p, .. } => deps(*p),
        }
    }
}

fn read_float(bytes: &[u8], c: usize, n: usize) -> Result<FloatCol<'_>, DecodeError> {
    match bytes.first() {
        Some(&F_RAW) => Ok(FloatCol::Raw(bytes.get(1..).unwrap_or_default())),
        Some(&F_PRED) => {
            let p = *bytes.get(1).ok_or(TRUNCATED)?;
            if !allowed(c).contains(&p) {
                return Err(DecodeError("rollup column predictor not allowed for its column"));
            }
            let mut pos = 2;
            let res = Planes::read(bytes, &mut pos, n)?;
            let corr = Planes::read(bytes, &mut pos, n)?;
            if pos != bytes.len() {
                return Err(DecodeError("trailing bytes in rollup column"));
            }
            Ok(FloatCol::Pred { p, res, corr })
        }
        Some(_) => Err(DecodeError("unknown rollup column mode")),
        None => Err(TRUNCATED),
    }
}

/// Decodes the columns in `want` (the count among them) of a version 2 chunk onto
/// `out`, plus those they are predicted from, which are then reset to
/// [`Bucket::empty`]'s values. The caller truncates on error and checks order.
pub(super) fn decode_into(buf: &[u8], out: &mut Vec<Bucket>, want: u16) -> Result<(), DecodeError> {
    let mut pos = 1;
    let n = bucket_count(buf, &mut pos)?;
    let scale = match *buf.get(pos).ok_or(TRUNCATED)? {
        NO_SCALE => None,
        k => Some(*POW10.get(usize::from(k)).ok_or(DecodeError("rollup scale out of range"))?),
    };
    pos += 1;
    let base = out.len();
    decode_starts(buf, &mut pos, n, out)?;
    let mut lens = [0usize; COLUMNS];
    for len in &mut lens {
        *len = usize::try_from(get_uvarint(buf, &mut pos).ok_or(TRUNCATED)?).map_err(|_| TRUNCATED)?;
    }
    let mut cols: [&[u8]; COLUMNS] = [&[]; COLUMNS];
    for (col, &len) in cols.iter_mut().zip(&lens) {
        let end = pos.checked_add(len).ok_or(TRUNCATED)?;
        *col = buf.get(pos..end).ok_or(TRUNCATED)?;
        pos = end;
    }
    if pos != buf.len() {
        return Err(DecodeError("trailing bytes after rollup chunk"));
    }
    let buckets = out.get_mut(base..).unwrap_or_default();
    let col = |c: usize| cols.get(c).copied().unwrap_or_default();

    decode_ints(col(COUNT), n, |i, v| {
        let b = buckets.get_mut(i).ok_or(TRUNCATED)?;
        if v == 0 || v as f64 >= MAX_MANTISSA {
            return Err(DecodeError("bad bucket count"));
        }
        b.count = v;
        Ok(())
    })?;

    // The float columns wanted and, transitively, those they are predicted from.
    let mut floats: Vec<(usize, FloatCol)> = Vec::with_capacity(6);
    for c in [FIRST, LAST, MIN, MAX, SUM, INCREASE] {
        floats.push((c, read_float(col(c), c, n)?));
    }
    let mut need = want;
    loop {
        let more = floats.iter().filter(|(c, _)| need & (1 << c) != 0).fold(need, |m, (_, f)| m | f.deps());
        if more == need {
            break;
        }
        need = more;
    }
    let scale = scale.unwrap_or(1.0);
    for (c, f) in &floats {
        if let (FloatCol::Raw(bytes), true) = (f, need & (1 << c) != 0) {
            decode_raw(bytes, *c, buckets)?;
        }
    }
    // First and last bucket by bucket (each may be predicted from the other),
    // then the rest in an order where every predictor's inputs are final.
    let pred = |c: usize| {
        floats.iter().find_map(|(fc, f)| match f {
            FloatCol::Pred { p, res, corr } if *fc == c && need & (1 << c) != 0 => Some((c, *p, *res, *corr)),
            _ => None,
        })
    };
    let (first, last) = (pred(FIRST), pred(LAST));
    for i in 0..n {
        for &(c, p, res, corr) in first.iter().chain(last.iter()) {
            decode_one(buckets, i, c, p, res, corr, scale);
        }
    }
    for c in [MIN, MAX, SUM, INCREASE] {
        if let Some((c, p, res, corr)) = pred(c) {
            for i in 0..n {
                decode_one(buckets, i, c, p, res, corr, scale);
            }
        }
    }
    let empty = Bucket::empty(0);
    for (c, _) in floats.iter().filter(|(c, _)| need & !want & (1 << c) != 0) {
        buckets.iter_mut().for_each(|b| set(b, *c, get(&empty, *c)));
    }

    if want & (COL_FIRST_TS | COL_LAST_TS) != 0 {
        decode_ints(col(FIRST_OFF), n, |i, off| {
            let b = buckets.get_mut(i).ok_or(TRUNCATED)?;
            b.first_ts = offset(b.start, b.start, off)?;
            Ok(())
        })?;
        if want & COL_LAST_TS != 0 {
            decode_ints(col(SPAN_TS), n, |i, span| {
                let b = buckets.get_mut(i).ok_or(TRUNCATED)?;
                b.last_ts = offset(b.start, b.first_ts, span)?;
                Ok(())
            })?;
        }
        if want & COL_FIRST_TS == 0 {
            buckets.iter_mut().for_each(|b| b.first_ts = b.start);
        }
    }
    Ok(())
}

/// `from + gap`, refused unless it stays below `start + 2^53` (what the encoder takes).
fn offset(start: i64, from: i64, gap: u64) -> Result<i64, DecodeError> {
    let ts = i64::try_from(gap).ok().and_then(|g| from.checked_add(g)).ok_or(DecodeError("sample offset overflows"))?;
    if i128::from(ts) - i128::from(start) >= MAX_MANTISSA_I {
        return Err(DecodeError("bad sample offset in bucket"));
    }
    Ok(ts)
}

#[inline]
fn decode_one(buckets: &mut [Bucket], i: usize, c: usize, p: u8, res: Planes, corr: Planes, scale: f64) {
    let m = predict(p, buckets, i, scale).wrapping_add(unzigzag(res.get(i)));
    let v = from_ord(ord(approx(m, scale)).wrapping_add(unzigzag(corr.get(i))));
    if let Some(b) = buckets.get_mut(i) {
        set(b, c, v);
    }
}

fn decode_raw(bytes: &[u8], c: usize, buckets: &mut [Bucket]) -> Result<(), DecodeError> {
    let mut samples = Vec::with_capacity(buckets.len());
    decode_chunk(bytes, &mut samples)?;
    if samples.len() != buckets.len() {
        return Err(DecodeError("rollup column length disagrees with bucket count"));
    }
    for (i, (b, s)) in buckets.iter_mut().zip(&samples).enumerate() {
        if s.ts != i as i64 {
            return Err(DecodeError("raw rollup column not numbered 0, 1, 2, ..."));
        }
        set(b, c, s.value);
    }
    Ok(())
}

/// Reads the starts section and pushes `n` empty buckets at those starts.
fn decode_starts(buf: &[u8], pos: &mut usize, n: usize, out: &mut Vec<Bucket>) -> Result<(), DecodeError> {
    let mut ts = get_ivarint(buf, pos).ok_or(TRUNCATED)?;
    let step = get_uvarint(buf, pos).ok_or(TRUNCATED)?;
    let mut left = get_uvarint(buf, pos).ok_or(TRUNCATED)?;
    if left >= n as u64 {
        return Err(DecodeError("more bucket start exceptions than gaps"));
    }
    let mut exception = |next: usize, left: &mut u64| -> Result<Option<(usize, u64)>, DecodeError> {
        if *left == 0 {
            return Ok(None);
        }
        *left -= 1;
        let gap = get_uvarint(buf, pos).ok_or(TRUNCATED)?;
        let at = usize::try_from(gap).ok().and_then(|g| next.checked_add(g)).filter(|&j| j < n);
        let at = at.ok_or(DecodeError("bucket start exception out of range"))?;
        Ok(Some((at, get_uvarint(buf, pos).ok_or(TRUNCATED)?)))
    };
    out.reserve(n);
    out.push(Bucket::empty(ts));
    let mut next = exception(1, &mut left)?;
    for j in 1..n {
        let delta = match next {
            Some((at, d)) if at == j => {
                next = exception(j + 1, &mut left)?;
                d
            }
            _ => step,
        };
        if delta == 0 {
            return Err(DecodeError("bucket starts do not increase"));
        }
        ts = ts.checked_add_unsigned(delta).ok_or(DecodeError("bucket start overflows"))?;
        out.push(Bucket::empty(ts));
    }
    Ok(())
}

/// Calls `apply(i, value)` for the `n` values of an integer column, in order.
fn decode_ints(
    bytes: &[u8],
    n: usize,
    mut apply: impl FnMut(usize, u64) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut pos = 1;
    match bytes.first() {
        Some(&INT_EXCEPT) => {
            let base = get_uvarint(bytes, &mut pos).ok_or(TRUNCATED)?;
            let mut left = get_uvarint(bytes, &mut pos).ok_or(TRUNCATED)?;
            if left > n as u64 {
                return Err(DecodeError("more exceptions than buckets"));
            }
            let mut i: usize = 0;
            while left > 0 {
                left -= 1;
                let gap = get_uvarint(bytes, &mut pos).ok_or(TRUNCATED)?;
                let at = usize::try_from(gap).ok().and_then(|g| i.checked_add(g)).filter(|&j| j < n);
                let at = at.ok_or(DecodeError("integer column exception out of range"))?;
                let v = get_uvarint(bytes, &mut pos).ok_or(TRUNCATED)?;
                for j in i..at {
                    apply(j, base)?;
                }
                apply(at, v)?;
                i = at + 1;
            }
            for j in i..n {
                apply(j, base)?;
            }
        }
        Some(&INT_PLANES) => {
            let p = Planes::read(bytes, &mut pos, n)?;
            for i in 0..n {
                apply(i, p.get(i))?;
            }
        }
        Some(_) => return Err(DecodeError("unknown integer column mode")),
        None => return Err(TRUNCATED),
    }
    if pos != bytes.len() {
        return Err(DecodeError("trailing bytes in rollup column"));
    }
    Ok(())
}
