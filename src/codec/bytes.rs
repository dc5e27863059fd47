//! Little-endian fields at given offsets of untrusted bytes: `None` instead of a
//! panic when the bytes are too short. Each compiles to one bounds check, the same
//! as indexing would.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

/// The `N` bytes at `at`.
#[inline]
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[inline]
pub(crate) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_le_bytes)
}

#[inline]
pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_le_bytes)
}

#[inline]
pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_le_bytes)
}

#[inline]
pub(crate) fn le_i64(b: &[u8], at: usize) -> Option<i64> {
    array(b, at).map(i64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounds_and_refuses_past_the_end() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(le_u16(&b, 0), Some(0x0201));
        assert_eq!(le_u32(&b, 5), Some(0x0908_0706));
        assert_eq!(le_u64(&b, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(le_i64(&b, 0), Some(0x0807_0605_0403_0201));
        assert_eq!(le_u32(&b, 6), None);
        assert_eq!(le_u64(&b, 2), None);
        assert_eq!(le_u16(&b, usize::MAX), None);
        assert_eq!(array::<0>(&b, 9), Some([]));
    }
}
