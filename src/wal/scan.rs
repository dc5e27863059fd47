//! The one reading of a WAL file's bytes, shared by replay (`reader`) and by
//! `strata check` (`crate::check`): the header, then frame after frame, and, at the
//! first bad frame, the one classification of what it is.
//!
//! - In the newest file, a file no longer than a header whose header is bad, or a bad
//!   or incomplete frame with no valid frame anywhere after it, is what a crash
//!   mid-write leaves: a torn header or a torn tail, which the next open removes or cuts.
//! - Anything else (a bad header of an older or longer file, a header naming another
//!   seq, a bad frame followed by a valid one, a bad frame in an older file) is damage.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use super::record::{
    decode_frame, decode_header_version, probe_frame, FrameError, Record, FRAME_HEADER_LEN, HEADER_LEN,
};
use crate::error::Result;

/// How a scanned WAL file ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEnd {
    /// Every byte after the header belongs to a valid frame.
    Clean,
    /// The newest file holds no more than a header, and that header is bad: a crash
    /// right after the file was created. Nothing in it is readable.
    TornHeader { reason: String },
    /// The newest file's bytes from `offset` on are a bad or incomplete frame with no
    /// valid frame after it: a write cut short by a crash.
    TornTail { offset: u64, reason: String },
    /// Damage at `offset` that no crash explains.
    Corrupt { offset: u64, reason: String },
}

/// Scans the bytes of WAL file `seq` (`newest`: no later file exists), calling
/// `on_record(offset, record)` for each valid frame in order. Stops at the first bad
/// spot and says what it is; an error from `on_record` stops the scan and is returned.
pub fn scan_file(
    data: &[u8],
    seq: u64,
    newest: bool,
    mut on_record: impl FnMut(u64, Record) -> Result<()>,
) -> Result<FileEnd> {
    let version = match decode_header_version(data) {
        Err(reason) if newest && data.len() <= HEADER_LEN => return Ok(FileEnd::TornHeader { reason: reason.into() }),
        Err(reason) => return Ok(FileEnd::Corrupt { offset: 0, reason: reason.into() }),
        Ok((s, _)) if s != seq => {
            return Ok(FileEnd::Corrupt { offset: 0, reason: format!("header names seq {s:016x}, not the file's") })
        }
        Ok((_, v)) => v,
    };
    let mut pos = HEADER_LEN;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        match decode_frame(rest) {
            Ok((Record::Metadata(_), _)) if version < 2 => {
                let reason = "a metadata record in a version 1 WAL file".to_string();
                return Ok(FileEnd::Corrupt { offset: pos as u64, reason });
            }
            Ok((record, n)) => {
                on_record(pos as u64, record)?;
                pos += n;
            }
            Err(e) => {
                let reason = match e {
                    FrameError::Incomplete => "frame runs past the end of the file".to_string(),
                    FrameError::Corrupt(r) => r.to_string(),
                };
                let offset = pos as u64;
                let after = valid_frame_after(data, pos + 1);
                return Ok(match (newest, after) {
                    (true, false) => FileEnd::TornTail { offset, reason },
                    (_, true) => FileEnd::Corrupt { offset, reason: format!("{reason}, with valid frames after it") },
                    (false, false) => {
                        FileEnd::Corrupt { offset, reason: format!("{reason}, in a file that later WAL files follow") }
                    }
                });
            }
        }
    }
    Ok(FileEnd::Clean)
}

/// Whether any valid frame starts at an offset >= `from`. If one does, the bad frame
/// before it is damage in the middle of the log, not a torn tail.
fn valid_frame_after(data: &[u8], from: usize) -> bool {
    let last = data.len().saturating_sub(FRAME_HEADER_LEN + 1);
    (from..=last).any(|q| data.get(q..).is_some_and(probe_frame))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::super::record::encode_header;
    use super::super::tests::id_frame;
    use super::*;

    fn file(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut d = encode_header(7).to_vec();
        for f in frames {
            d.extend_from_slice(f);
        }
        d
    }

    fn scan(data: &[u8], newest: bool) -> (Vec<u64>, FileEnd) {
        let mut offsets = Vec::new();
        let end = scan_file(data, 7, newest, |o, _| {
            offsets.push(o);
            Ok(())
        })
        .unwrap();
        (offsets, end)
    }

    #[test]
    fn classifies_the_end_of_a_file() {
        let (a, b) = (id_frame(1), id_frame(2));
        let whole = file(&[a.clone(), b.clone()]);
        let (offsets, end) = scan(&whole, true);
        assert_eq!((offsets, end), (vec![HEADER_LEN as u64, (HEADER_LEN + a.len()) as u64], FileEnd::Clean));

        // The last frame cut short: a torn tail in the newest file, damage in an older one.
        let cut = &whole[..whole.len() - 3];
        let at = (HEADER_LEN + a.len()) as u64;
        assert!(matches!(scan(cut, true).1, FileEnd::TornTail { offset, .. } if offset == at));
        assert!(matches!(scan(cut, false).1, FileEnd::Corrupt { offset, .. } if offset == at));

        // A flipped byte in the first frame with a valid frame after it: damage even in the newest.
        let mut flipped = whole.clone();
        flipped[HEADER_LEN + FRAME_HEADER_LEN] ^= 0xff;
        let (offsets, end) = scan(&flipped, true);
        assert!(offsets.is_empty());
        assert!(matches!(end, FileEnd::Corrupt { offset, .. } if offset == HEADER_LEN as u64), "{end:?}");

        // A header cut short: torn in the newest file, damage otherwise; another seq is damage.
        assert!(matches!(scan(&whole[..10], true).1, FileEnd::TornHeader { .. }));
        assert!(matches!(scan(&whole[..10], false).1, FileEnd::Corrupt { offset: 0, .. }));
        let other = scan_file(&whole, 8, true, |_, _| Ok(())).unwrap();
        assert!(matches!(other, FileEnd::Corrupt { offset: 0, ref reason } if reason.contains("header names seq")));
    }
}
