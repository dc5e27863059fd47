//! On-disk chunk codec used by immutable segments.
//!
//! A chunk holds 1..=65535 samples with strictly increasing timestamps. Chunks
//! are later concatenated into ~64 KiB pages and zstd-compressed, so this layer
//! does no bit packing: it emits byte-aligned, low-entropy, repetitive streams
//! and leaves the entropy coding to zstd's Huffman stage. All timestamp bytes
//! come before all value bytes (column layout), which zstd models better than
//! interleaved samples. The min/max/sum summary ([`ChunkMeta`]) is returned by
//! [`encode_chunk`] and stored by the caller, never inside the chunk bytes.
//!
//! # Byte layout (version 1)
//!
//! `uvarint` is LEB128; `ivarint` is zigzag followed by LEB128; `u64le` is 8
//! bytes little endian. Every section is self-delimiting given `count`.
//!
//! ```text
//! chunk  := version:u8 (=1)  count:uvarint (1..=65535)  ts_section  value_section
//!
//! ts_section :=
//!     0x00 REGULAR  first:ivarint  delta:uvarint
//!                   ts[i] = first + i * delta. delta >= 1 when count > 1
//!                   (written as 0 when count = 1). Nothing per sample.
//!   | 0x01 DOD      first:ivarint  dod:ivarint × (count - 1)
//!                   delta[0] = 0, delta[i] = delta[i-1] + dod[i], ts[i] = ts[i-1] + delta[i];
//!                   the first dod is therefore the first delta. Deltas are
//!                   computed modulo 2^64, so any jump between i64 values fits.
//!
//! value_section :=
//!     0x00 CONST    bits:u64le                     every value has these bits
//!   | 0x01 DECIMAL  k:u8 (0..=9)  m0:ivarint  dm:ivarint × (count - 1)
//!                   m[i] = m[i-1] + dm[i], value[i] = m[i] as f64 / 10^k, |m| < 2^53
//!   | 0x02 XOR      bits0:u64le  then × (count - 1):  ctrl:u8  middle:[u8; n]
//!                   x = bits[i] ^ bits[i-1]; ctrl = lead << 4 | trail, where lead and
//!                   trail count the zero BYTES at the top and bottom of x; the
//!                   n = 8 - lead - trail middle bytes are `x >> 8*trail`, least
//!                   significant first. x == 0 is written as ctrl 0x80 (lead 8, n 0).
//! ```
//!
//! DECIMAL is chosen only when it is lossless by construction: the encoder
//! checks every value with the decoder's own `decimal_decode`, so NaN
//! payloads, -0.0 and infinities fall through to XOR, which keeps all bits.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::fmt;

use super::varint::{get_uvarint, put_ivarint, put_uvarint, unzigzag};
use crate::sample::{ChunkMeta, Sample};

/// A chunk's bytes contradict the format; the message says how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt chunk: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// The most samples one chunk may hold; also caps what a decoder allocates.
pub const MAX_CHUNK_SAMPLES: usize = 65535;

pub(crate) const VERSION: u8 = 1;
const TS_REGULAR: u8 = 0;
const TS_DOD: u8 = 1;
const V_CONST: u8 = 0;
const V_DECIMAL: u8 = 1;
const V_XOR: u8 = 2;
/// XOR control byte for x == 0: eight leading zero bytes, no middle bytes.
const XOR_ZERO: u8 = 0x80;
/// 10^k for k in 0..=9; all exact in f64.
const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Mantissas stay below 2^53 so that `m as f64` is exact.
const MAX_MANTISSA: f64 = 9007199254740992.0;

const TRUNCATED: DecodeError = DecodeError("truncated");
const BAD_VARINT: DecodeError = DecodeError("truncated or overlong varint");

/// Encodes `samples` (strictly increasing `ts`, 1..=65535 of them) onto `out`
/// and returns their summary.
///
/// # Panics
/// When `samples` breaks that contract: the chunk would not decode.
pub fn encode_chunk(samples: &[Sample], out: &mut Vec<u8>) -> ChunkMeta {
    assert!((1..=MAX_CHUNK_SAMPLES).contains(&samples.len()), "a chunk holds 1..=65535 samples, got {}", samples.len());
    assert!(samples.windows(2).all(|w| matches!(w, [a, b] if a.ts < b.ts)), "chunk timestamps must strictly increase");
    out.push(VERSION);
    put_uvarint(out, samples.len() as u64);
    encode_timestamps(samples, out);
    encode_values(samples, out);
    ChunkMeta::of(samples)
}

/// Decodes one whole chunk (`buf` is exactly its bytes), appending to `out`.
/// On error `out` is left as it was.
pub fn decode_chunk(buf: &[u8], out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    decode(buf, None, out)
}

/// Like [`decode_chunk`] but appends only samples with `mint <= ts < maxt`.
/// Values past the last kept sample are not decoded, so corruption there may
/// go unnoticed.
pub fn decode_chunk_range(buf: &[u8], mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    decode(buf, Some((mint, maxt)), out)
}

/// The decoder's value function; the encoder checks candidates with it so
/// that DECIMAL round-trips bit for bit. Dividing by `POW10[0] = 1.0` is exact,
/// so k = 0 gives plain `m as f64`.
#[inline]
fn decimal_decode(m: i64, scale: f64) -> f64 {
    m as f64 / scale
}

// ---------------------------------------------------------------- encoding

/// The gap from each sample to the next, modulo 2^64: a gap between i64 extremes
/// overflows i64.
fn deltas(samples: &[Sample]) -> impl Iterator<Item = u64> + '_ {
    samples.iter().zip(samples.iter().skip(1)).map(|(a, b)| b.ts.wrapping_sub(a.ts) as u64)
}

fn encode_timestamps(samples: &[Sample], out: &mut Vec<u8>) {
    let first = samples.first().map_or(0, |s| s.ts);
    let delta0 = deltas(samples).next().unwrap_or(0);
    let regular = deltas(samples).all(|d| d == delta0);
    if regular {
        out.push(TS_REGULAR);
        put_ivarint(out, first);
        put_uvarint(out, delta0);
        return;
    }
    out.push(TS_DOD);
    put_ivarint(out, first);
    let mut prev_delta = 0u64;
    for delta in deltas(samples) {
        put_ivarint(out, delta.wrapping_sub(prev_delta) as i64);
        prev_delta = delta;
    }
}

fn encode_values(samples: &[Sample], out: &mut Vec<u8>) {
    let bits0 = samples.first().map_or(0, |s| s.value.to_bits());
    if samples.iter().all(|s| s.value.to_bits() == bits0) {
        out.push(V_CONST);
        out.extend_from_slice(&bits0.to_le_bytes());
    } else if let Some(k) = decimal_scale(samples) {
        encode_decimal(samples, k, out);
    } else {
        encode_xor(samples, out);
    }
}

/// The mantissa `m` with `decimal_decode(m, scale)` bit-identical to `v`, if any.
#[inline]
fn decimal_mantissa(v: f64, scale: f64) -> Option<i64> {
    if !v.is_finite() {
        return None;
    }
    let r = (v * scale).round();
    // Also rejects an infinite product; the cast is exact below 2^53.
    if r.abs() >= MAX_MANTISSA {
        return None;
    }
    let m = r as i64;
    (decimal_decode(m, scale).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest k for which every value is an exact DECIMAL(k).
fn decimal_scale(samples: &[Sample]) -> Option<usize> {
    POW10.iter().position(|&scale| samples.iter().all(|s| decimal_mantissa(s.value, scale).is_some()))
}

fn encode_decimal(samples: &[Sample], k: usize, out: &mut Vec<u8>) {
    out.push(V_DECIMAL);
    out.push(k as u8);
    // decimal_scale found k in POW10.
    let scale = POW10.get(k).copied().unwrap_or(1.0);
    let mut prev = 0i64;
    for s in samples {
        // decimal_scale just accepted every value at this k.
        let m = decimal_mantissa(s.value, scale).unwrap_or_default();
        // |m| < 2^53, so the difference cannot overflow.
        put_ivarint(out, m - prev);
        prev = m;
    }
}

fn encode_xor(samples: &[Sample], out: &mut Vec<u8>) {
    out.push(V_XOR);
    let Some((first, rest)) = samples.split_first() else {
        return;
    };
    let mut prev = first.value.to_bits();
    out.extend_from_slice(&prev.to_le_bytes());
    for s in rest {
        let bits = s.value.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            out.push(XOR_ZERO);
            continue;
        }
        // x != 0, so lead + trail <= 7 and at least one middle byte remains.
        let lead = x.leading_zeros() / 8;
        let trail = x.trailing_zeros() / 8;
        out.push((lead << 4 | trail) as u8);
        let n = (8 - lead - trail) as usize;
        out.extend_from_slice((x >> (8 * trail)).to_le_bytes().get(..n).unwrap_or_default());
    }
}

// ---------------------------------------------------------------- decoding

fn decode(buf: &[u8], range: Option<(i64, i64)>, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    let base = out.len();
    let res = decode_into(buf, range, base, out);
    if res.is_err() {
        out.truncate(base);
    }
    res
}

/// Decodes all timestamps into `out[base..]`, narrows to the wanted index range
/// (timestamps are sorted), then fills in values up to the last kept sample.
fn decode_into(buf: &[u8], range: Option<(i64, i64)>, base: usize, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    let mut pos = 0;
    if read_byte(buf, &mut pos)? != VERSION {
        return Err(DecodeError("unknown chunk version"));
    }
    let count = read_uvarint(buf, &mut pos)?;
    if count == 0 || count > MAX_CHUNK_SAMPLES as u64 {
        return Err(DecodeError("sample count out of range"));
    }
    let count = count as usize;
    decode_timestamps(buf, &mut pos, count, out)?;

    let (lo, hi) = match range {
        None => (0, count),
        Some((mint, maxt)) => {
            let ts = out.get(base..).unwrap_or_default();
            let lo = ts.partition_point(|s| s.ts < mint);
            (lo, ts.partition_point(|s| s.ts < maxt).max(lo))
        }
    };
    if lo == hi {
        out.truncate(base);
        return Ok(());
    }
    out.truncate(base + hi);
    decode_values(buf, &mut pos, out.get_mut(base..).unwrap_or_default())?;
    if hi == count && pos != buf.len() {
        return Err(DecodeError("trailing bytes after chunk"));
    }
    out.drain(base..base + lo);
    Ok(())
}

/// Appends `count` samples with decoded timestamps and value 0.0 to `out`.
fn decode_timestamps(buf: &[u8], pos: &mut usize, count: usize, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    let mode = read_byte(buf, pos)?;
    let first = read_ivarint(buf, pos)?;
    match mode {
        TS_REGULAR => {
            let delta = read_uvarint(buf, pos)?;
            if count > 1 {
                if delta == 0 {
                    return Err(DecodeError("timestamps not increasing"));
                }
                // Cannot overflow i128: at most 65534 * (2^64 - 1) + 2^63.
                let last = i128::from(first) + (count as i128 - 1) * i128::from(delta);
                if last > i128::from(i64::MAX) {
                    return Err(DecodeError("timestamp overflow"));
                }
            }
            // Every ts fits i64 (checked above), so the wrapping ops are exact.
            out.extend((0..count as u64).map(|i| Sample::new(first.wrapping_add(i.wrapping_mul(delta) as i64), 0.0)));
        }
        TS_DOD => {
            // Each dod takes at least one byte: bounds the allocation by the input.
            if count - 1 > buf.len().saturating_sub(*pos) {
                return Err(TRUNCATED);
            }
            out.reserve(count);
            out.push(Sample::new(first, 0.0));
            let (mut ts, mut delta) = (first, 0u64);
            for _ in 1..count {
                delta = delta.wrapping_add(read_ivarint(buf, pos)? as u64);
                let next = ts.wrapping_add(delta as i64);
                // Also catches a wrap past i64::MAX, as the true delta is < 2^64.
                if next <= ts {
                    return Err(DecodeError("timestamps not increasing"));
                }
                ts = next;
                out.push(Sample::new(ts, 0.0));
            }
        }
        _ => return Err(DecodeError("unknown timestamp mode")),
    }
    Ok(())
}

/// Fills the values of `slots` (the first `slots.len()` samples of the chunk;
/// not empty) from the value section.
fn decode_values(buf: &[u8], pos: &mut usize, slots: &mut [Sample]) -> Result<(), DecodeError> {
    let mode = read_byte(buf, pos)?;
    let Some((head, rest)) = slots.split_first_mut() else {
        return Ok(());
    };
    match mode {
        V_CONST => {
            let v = f64::from_bits(read_u64le(buf, pos)?);
            head.value = v;
            rest.iter_mut().for_each(|s| s.value = v);
        }
        V_DECIMAL => {
            let k = read_byte(buf, pos)?;
            let scale = *POW10.get(usize::from(k)).ok_or(DecodeError("decimal scale out of range"))?;
            let mut m = read_ivarint(buf, pos)?;
            head.value = decimal_decode(m, scale);
            if rest.len() > buf.len().saturating_sub(*pos) {
                return Err(TRUNCATED);
            }
            for s in rest {
                // Wrapping: corrupt deltas may not overflow-panic; the encoder never wraps.
                m = m.wrapping_add(read_ivarint(buf, pos)?);
                s.value = decimal_decode(m, scale);
            }
        }
        V_XOR => {
            let mut bits = read_u64le(buf, pos)?;
            head.value = f64::from_bits(bits);
            if rest.len() > buf.len().saturating_sub(*pos) {
                return Err(TRUNCATED);
            }
            for s in rest {
                bits ^= read_xor(buf, pos)?;
                s.value = f64::from_bits(bits);
            }
        }
        _ => return Err(DecodeError("unknown value mode")),
    }
    Ok(())
}

/// Reads one XOR control byte and its middle bytes; returns x.
#[inline]
fn read_xor(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let ctrl = read_byte(buf, pos)?;
    let (lead, trail) = (u32::from(ctrl >> 4), u32::from(ctrl & 0x0f));
    let n = 8u32.checked_sub(lead + trail).ok_or(DecodeError("bad xor control byte"))?;
    let middle = match buf.get(*pos..*pos + 8) {
        // Fast path: load a whole word and keep its low n bytes (n == 0 keeps none).
        Some(word) => {
            let word = u64::from_le_bytes(word.try_into().map_err(|_| TRUNCATED)?);
            word & u64::MAX.checked_shr(64 - 8 * n).unwrap_or(0)
        }
        None => {
            // Fewer than 8 bytes left: assemble the n little-endian bytes one by one.
            let bytes = buf.get(*pos..*pos + n as usize).ok_or(TRUNCATED)?;
            bytes.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b))
        }
    };
    *pos += n as usize;
    Ok(middle.checked_shl(8 * trail).unwrap_or(0))
}

#[inline]
fn read_byte(buf: &[u8], pos: &mut usize) -> Result<u8, DecodeError> {
    let b = *buf.get(*pos).ok_or(TRUNCATED)?;
    *pos += 1;
    Ok(b)
}

#[inline]
fn read_u64le(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let bytes: [u8; 8] = buf.get(*pos..*pos + 8).and_then(|s| s.try_into().ok()).ok_or(TRUNCATED)?;
    *pos += 8;
    Ok(u64::from_le_bytes(bytes))
}

/// One-byte varints dominate the hot loops; longer ones take the general path.
#[inline(always)]
fn read_uvarint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(u64::from(b));
        }
    }
    get_uvarint(buf, pos).ok_or(BAD_VARINT)
}

#[inline(always)]
fn read_ivarint(buf: &[u8], pos: &mut usize) -> Result<i64, DecodeError> {
    read_uvarint(buf, pos).map(unzigzag)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::codec::xor::testgen::{devops_series, series, Rng, STALE_NAN};
    use proptest::prelude::*;

    fn encode(samples: &[Sample]) -> Vec<u8> {
        let mut buf = Vec::new();
        let meta = encode_chunk(samples, &mut buf);
        assert_eq!(meta.count as usize, samples.len());
        buf
    }

    fn decode_all(buf: &[u8]) -> Result<Vec<Sample>, DecodeError> {
        let mut out = Vec::new();
        decode_chunk(buf, &mut out).map(|()| out)
    }

    /// (ts mode, value mode, decimal k) of an encoded chunk.
    type Modes = (u8, u8, Option<u8>);

    fn modes(buf: &[u8]) -> Modes {
        let mut pos = 1;
        let count = read_uvarint(buf, &mut pos).unwrap() as usize;
        let ts_mode = buf[pos];
        decode_timestamps(buf, &mut pos, count, &mut Vec::new()).unwrap();
        let v_mode = buf[pos];
        (ts_mode, v_mode, (v_mode == V_DECIMAL).then(|| buf[pos + 1]))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn round_trips(samples in series()) {
            let buf = encode(&samples);
            prop_assert_eq!(decode_all(&buf), Ok(samples));
        }

        #[test]
        fn range_equals_filtered(samples in series(), a in any::<i64>(), b in any::<i64>(), pick in any::<(usize, usize)>()) {
            let buf = encode(&samples);
            // Bounds drawn both at random and from the chunk's own timestamps.
            let n = samples.len();
            let cands = [(a, b), (a.min(b), a.max(b)), (samples[pick.0 % n].ts, samples[pick.1 % n].ts), (i64::MIN, i64::MAX)];
            for (mint, maxt) in cands {
                let mut out = vec![Sample::new(7, 7.0)]; // appends after existing content
                decode_chunk_range(&buf, mint, maxt, &mut out).unwrap();
                let want: Vec<Sample> = std::iter::once(Sample::new(7, 7.0))
                    .chain(samples.iter().copied().filter(|s| mint <= s.ts && s.ts < maxt))
                    .collect();
                prop_assert_eq!(out, want);
            }
        }
    }

    #[test]
    fn picks_modes() {
        let reg: &[i64] = &[1000, 1015, 1030];
        let stale = f64::from_bits(STALE_NAN);
        let cases: [(&[i64], &[f64], Modes); 11] = [
            (reg, &[1.0; 3], (TS_REGULAR, V_CONST, None)),
            (&[5], &[-0.0], (TS_REGULAR, V_CONST, None)),
            (&[1, 2, 4], &[1.0, 2.0, 3.0], (TS_DOD, V_DECIMAL, Some(0))),
            (reg, &[0.25, 0.5, 1.125], (TS_REGULAR, V_DECIMAL, Some(3))),
            (reg, &[0.1, 0.2, 0.3], (TS_REGULAR, V_DECIMAL, Some(1))),
            (&[i64::MIN, i64::MAX], &[0.0, 1.0], (TS_REGULAR, V_DECIMAL, Some(0))),
            // -0.0, NaN, infinities and non-decimal values keep their bits via XOR.
            (reg, &[1.0, 2.0, -0.0], (TS_REGULAR, V_XOR, None)),
            (reg, &[1.0, 2.0, stale], (TS_REGULAR, V_XOR, None)),
            (reg, &[1.0, 2.0, f64::INFINITY], (TS_REGULAR, V_XOR, None)),
            (reg, &[1.0, 2.0, 1.0 / 3.0], (TS_REGULAR, V_XOR, None)),
            (reg, &[1.0, 2.0, 1e300], (TS_REGULAR, V_XOR, None)),
        ];
        for (ts, vs, want) in cases {
            let samples: Vec<Sample> = ts.iter().zip(vs).map(|(&t, &v)| Sample::new(t, v)).collect();
            assert_eq!(modes(&encode(&samples)), want, "{vs:?}");
        }
    }

    #[test]
    fn edge_chunks_round_trip() {
        let big: Vec<Sample> = (0..MAX_CHUNK_SAMPLES as i64).map(|i| Sample::new(i * i, (i % 7) as f64)).collect();
        assert_eq!(decode_all(&encode(&big)).unwrap(), big);
        let extremes = vec![Sample::new(i64::MIN, f64::MIN), Sample::new(-1, -0.0), Sample::new(i64::MAX, f64::MAX)];
        assert_eq!(decode_all(&encode(&extremes)).unwrap(), extremes);
        let stale = vec![Sample::new(0, f64::from_bits(STALE_NAN)); 1];
        assert_eq!(decode_all(&encode(&stale)).unwrap()[0].value.to_bits(), STALE_NAN);
    }

    #[test]
    #[should_panic]
    fn encode_rejects_empty() {
        encode_chunk(&[], &mut Vec::new());
    }

    #[test]
    fn rejects_malformed() {
        let buf = encode(&devops_series(50, 3));
        let mut trailing = buf.clone();
        trailing.push(0);
        assert_eq!(decode_all(&trailing), Err(DecodeError("trailing bytes after chunk")));
        let mut version = buf.clone();
        version[0] = 2;
        assert!(decode_all(&version).is_err());
        assert!(decode_all(&[]).is_err());
        // Counts 0 and 65536.
        assert!(decode_all(&[VERSION, 0]).is_err());
        assert!(decode_all(&[VERSION, 0x80, 0x80, 0x04, TS_REGULAR, 0, 1, V_CONST, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // REGULAR overflowing i64::MAX
        let mut over = vec![VERSION, 3, TS_REGULAR];
        put_ivarint(&mut over, i64::MAX - 1);
        put_uvarint(&mut over, 1);
        over.extend_from_slice(&[V_CONST, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_all(&over), Err(DecodeError("timestamp overflow")));
        // A failed decode leaves `out` untouched.
        let mut out = vec![Sample::new(1, 1.0)];
        assert!(decode_chunk(&trailing, &mut out).is_err());
        assert_eq!(out, vec![Sample::new(1, 1.0)]);
    }

    /// Chunks covering every mode combination.
    fn fixture_chunks() -> Vec<Vec<u8>> {
        let mut rng = Rng(9);
        let dod_xor: Vec<Sample> =
            (0..40).map(|i| Sample::new(i * i * 1000 - 7, f64::from_bits(rng.next_u64()))).collect();
        let dod_dec: Vec<Sample> = (0..40).map(|i| Sample::new(i * 3 + i % 2, (i * 37) as f64 / 1000.0)).collect();
        let mut mixed = devops_series(30, 4);
        mixed[29].value = f64::from_bits(STALE_NAN);
        mixed[3].value = -0.0;
        let jumps =
            vec![Sample::new(i64::MIN, 1.0), Sample::new(0, 0.0), Sample::new(1, 2.0), Sample::new(i64::MAX, 2.0)];
        let constant: Vec<Sample> = (0..300).map(|i| Sample::new(i * 60_000, 42.0)).collect();
        [devops_series(60, 5), dod_xor, dod_dec, mixed, jumps, constant].iter().map(|s| encode(s)).collect()
    }

    #[test]
    fn truncation_is_an_error() {
        for buf in fixture_chunks() {
            for len in 0..buf.len() {
                assert!(decode_all(&buf[..len]).is_err(), "prefix of {len} bytes decoded");
                let mut out = Vec::new();
                let _ = decode_chunk_range(&buf[..len], i64::MIN, 0, &mut out);
            }
        }
    }

    #[test]
    fn bit_flips_never_panic() {
        for buf in fixture_chunks() {
            let ok = decode_all(&buf).unwrap();
            let mut out = Vec::new();
            for bit in 0..buf.len() * 8 {
                let mut bad = buf.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                out.clear();
                if decode_chunk(&bad, &mut out).is_ok() {
                    // Whatever decodes must still satisfy the chunk invariants.
                    assert!(!out.is_empty() && out.len() <= MAX_CHUNK_SAMPLES);
                    assert!(out.windows(2).all(|w| w[0].ts < w[1].ts));
                } else {
                    assert!(out.is_empty());
                }
                out.clear();
                let _ = decode_chunk_range(&bad, ok[0].ts, ok[ok.len() / 2].ts, &mut out);
            }
        }
    }

    #[test]
    fn devops_size() {
        let samples = devops_series(720, 1);
        let buf = encode(&samples);
        assert_eq!(modes(&buf), (TS_REGULAR, V_DECIMAL, Some(1)));
        let raw = buf.len() as f64 / 720.0;
        assert!(raw <= 1.05, "{raw} bytes/sample before zstd");

        // 1000 series, compressed whole and (as segments do) in ~64 KiB pages of whole chunks.
        let (mut all, mut page, mut paged) = (Vec::new(), Vec::new(), 0);
        for seed in 0..1000 {
            let start = all.len();
            encode_chunk(&devops_series(720, seed), &mut all);
            page.extend_from_slice(&all[start..]);
            if page.len() >= 64 << 10 || seed == 999 {
                paged += zstd::bulk::compress(&page, 3).unwrap().len();
                page.clear();
            }
        }
        let n = (1000 * 720) as f64;
        let whole = zstd::bulk::compress(&all, 3).unwrap().len();
        println!(
            "devops: {raw:.3} B/sample raw, {:.3} B/sample zstd(3) whole, {:.3} B/sample zstd(3) in 64 KiB pages",
            whole as f64 / n,
            paged as f64 / n
        );
        assert!(whole as f64 / n <= 0.75);
        assert!(paged as f64 / n <= 0.75);
    }
}
