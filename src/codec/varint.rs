//! LEB128 varints and zigzag. Decoders return `None` on truncated or overlong
//! input instead of panicking: they run on bytes read from disk.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

#[inline]
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
pub fn put_ivarint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, zigzag(v));
}

#[inline]
pub fn get_uvarint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut result: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return None; // would overflow u64
        }
        result |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(result);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

#[inline]
pub fn get_ivarint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    get_uvarint(buf, pos).map(unzigzag)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        let vals = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX];
        let mut buf = Vec::new();
        for v in vals {
            put_uvarint(&mut buf, v);
        }
        let mut pos = 0;
        for v in vals {
            assert_eq!(get_uvarint(&buf, &mut pos), Some(v));
        }
        assert_eq!(pos, buf.len());
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -64, 64] {
            let mut b = Vec::new();
            put_ivarint(&mut b, v);
            assert_eq!(get_ivarint(&b, &mut 0), Some(v));
        }
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert_eq!(get_uvarint(&[0x80], &mut 0), None);
        assert_eq!(get_uvarint(&[], &mut 0), None);
        let overlong = [0xffu8; 11];
        assert_eq!(get_uvarint(&overlong, &mut 0), None);
        let mut ten = vec![0xffu8; 9];
        ten.push(0x02); // bit 64 set
        assert_eq!(get_uvarint(&ten, &mut 0), None);
    }
}
