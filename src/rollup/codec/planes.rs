//! Byte planes: `n` unsigned integers stored as `width:u8` and then `width`
//! planes of `n` bytes, plane `p` holding byte `p` (least significant first) of
//! every value. Small values leave the high planes out, and each plane is a run
//! of like bytes that zstd's entropy stage codes well: closer to the values'
//! entropy than varints, whose length bytes and payload bytes mix in one stream.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::codec::chunk::DecodeError;

/// Appends `vals` as byte planes.
pub(super) fn put(out: &mut Vec<u8>, vals: &[u64]) {
    let top = vals.iter().fold(0u64, |a, &v| a | v);
    let width = (64 - top.leading_zeros()).div_ceil(8);
    out.push(width as u8);
    for p in 0..width {
        out.extend(vals.iter().map(|&v| (v >> (8 * p)) as u8));
    }
}

/// The planes of `n` values at `buf[*pos..]`, moving `pos` past them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planes<'a> {
    bytes: &'a [u8],
    n: usize,
    width: usize,
}

impl<'a> Planes<'a> {
    pub(super) fn read(buf: &'a [u8], pos: &mut usize, n: usize) -> Result<Planes<'a>, DecodeError> {
        let width = usize::from(*buf.get(*pos).ok_or(DecodeError("truncated byte planes"))?);
        if width > 8 {
            return Err(DecodeError("byte planes wider than 8 bytes"));
        }
        let start = *pos + 1;
        // n <= 65535 and width <= 8: no overflow.
        let end = start + width * n;
        let bytes = buf.get(start..end).ok_or(DecodeError("truncated byte planes"))?;
        *pos = end;
        Ok(Planes { bytes, n, width })
    }

    /// Value `i` (0 past the end, which callers never ask for).
    #[inline]
    pub(super) fn get(&self, i: usize) -> u64 {
        let mut v = 0;
        for p in 0..self.width {
            v |= u64::from(self.bytes.get(p * self.n + i).copied().unwrap_or(0)) << (8 * p);
        }
        v
    }
}

/// A total order of f64 bit patterns as integers: neighbouring floats get
/// neighbouring integers, across zero too (-0.0 is -1, +0.0 is 0). An
/// involution on negatives, so [`from_ord`] undoes it for every bit pattern.
#[inline]
pub(super) fn ord(v: f64) -> i64 {
    let i = v.to_bits() as i64;
    if i < 0 {
        i ^ i64::MAX
    } else {
        i
    }
}

#[inline]
pub(super) fn from_ord(o: i64) -> f64 {
    f64::from_bits((if o < 0 { o ^ i64::MAX } else { o }) as u64)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn planes_round_trip_and_refuse_short_input() {
        for vals in [vec![0u64; 5], vec![1, 255, 256, 0], vec![u64::MAX, 0, 1 << 40], vec![7]] {
            let mut buf = vec![9];
            put(&mut buf, &vals);
            let mut pos = 1;
            let p = Planes::read(&buf, &mut pos, vals.len()).unwrap();
            assert_eq!(pos, buf.len());
            assert_eq!((0..vals.len()).map(|i| p.get(i)).collect::<Vec<_>>(), vals);
            for len in 1..buf.len() {
                assert!(Planes::read(&buf[..len], &mut 1, vals.len()).is_err());
            }
        }
        assert_eq!(Planes::read(&[0], &mut 0, 3).unwrap().get(2), 0, "width 0: every value is 0");
        assert!(Planes::read(&[9, 0], &mut 0, 0).is_err(), "width 9");
    }

    #[test]
    fn ord_is_monotonic_and_invertible() {
        let vals = [f64::NEG_INFINITY, -1e300, -1.0, -f64::MIN_POSITIVE, -0.0, 0.0, 5e-324, 1.0, f64::INFINITY];
        for w in vals.windows(2) {
            assert!(ord(w[0]) < ord(w[1]), "{} {}", w[0], w[1]);
        }
        assert_eq!((ord(-0.0), ord(0.0)), (-1, 0));
        for bits in [0u64, 1, 0x7ff8_0000_0000_0001, 0xfff8_dead_beef_0000, u64::MAX, 1 << 63] {
            assert_eq!(from_ord(ord(f64::from_bits(bits))).to_bits(), bits);
        }
    }
}
