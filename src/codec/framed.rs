//! The frame of Strata's small whole-file records (SETTINGS, METADATA): 8 magic
//! bytes, a u16 version, 2 reserved bytes, a u32 payload length, the payload and a
//! crc32 of everything before it, all little-endian. A file is read whole and
//! replaced atomically, so the frame carries no sequence or padding.

use super::bytes::{le_u16, le_u32, le_u64};

/// Magic, version, reserved, payload length.
pub(crate) const HEADER_LEN: usize = 16;

/// A decoding failure: the file offset and what was wrong there.
pub(crate) type DecodeResult<T> = std::result::Result<T, (usize, String)>;

/// A length-prefixed (u32) UTF-8 string.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// `payload` framed with `magic` and `version`.
pub(crate) fn frame(magic: &[u8; 8], version: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + payload.len() + 4);
    b.extend_from_slice(magic);
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Checks the frame of a `what` file and returns a cursor over its header and
/// payload (positioned at the payload, so offsets stay file offsets), and the
/// reserved u16 for the caller to judge.
pub(crate) fn unframe<'a>(b: &'a [u8], magic: &[u8; 8], version: u16, what: &str) -> DecodeResult<(Cursor<'a>, u16)> {
    if b.len() < HEADER_LEN + 4 {
        return Err((0, format!("{} bytes is shorter than the header and checksum", b.len())));
    }
    if b.get(..8) != Some(magic.as_slice()) {
        return Err((0, format!("bad magic: not a {what} file")));
    }
    let found = le_u16(b, 8).unwrap_or(0);
    if found != version {
        return Err((8, format!("unsupported {what} version {found} (this build reads {version})")));
    }
    let reserved = le_u16(b, 10).unwrap_or(0);
    let len = le_u32(b, 12).unwrap_or(0) as usize;
    if HEADER_LEN.checked_add(len).and_then(|n| n.checked_add(4)) != Some(b.len()) {
        return Err((12, format!("payload length {len} does not match the file size {}", b.len())));
    }
    let body = HEADER_LEN + len;
    let (covered, crc) = b.split_at_checked(body).ok_or_else(|| (12, "truncated".to_string()))?;
    if Some(crc32fast::hash(covered)) != le_u32(crc, 0) {
        return Err((body, "checksum mismatch".into()));
    }
    Ok((Cursor { b: covered, at: HEADER_LEN }, reserved))
}

/// A bounds-checked reader over a frame; errors carry the file offset.
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn take(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        let s = self.at.checked_add(n).and_then(|end| self.b.get(self.at..end));
        let s = s.ok_or_else(|| (self.at, format!("truncated {what}")))?;
        self.at += n;
        Ok(s)
    }
    pub(crate) fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        let at = self.at;
        self.take(1, what)?.first().copied().ok_or_else(|| (at, format!("truncated {what}")))
    }
    pub(crate) fn u32(&mut self, what: &str) -> DecodeResult<u32> {
        let at = self.at;
        le_u32(self.take(4, what)?, 0).ok_or_else(|| (at, format!("truncated {what}")))
    }
    pub(crate) fn u64(&mut self, what: &str) -> DecodeResult<u64> {
        let at = self.at;
        le_u64(self.take(8, what)?, 0).ok_or_else(|| (at, format!("truncated {what}")))
    }
    pub(crate) fn string(&mut self, what: &str) -> DecodeResult<String> {
        let at = self.at;
        let n = self.u32(what)? as usize;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| (at, format!("{what} is not UTF-8")))
    }
    /// Whether every byte has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.at == self.b.len()
    }
}
