//! The manifest: which segments are live and where WAL replay starts.
//!
//! Replaced atomically (tmp, fsync, rename, fsync dir) so a crash leaves the old
//! version or the new one. Layout: docs/format/manifest.md.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::path::Path;

use crate::codec::bytes::{le_i64, le_u16, le_u32, le_u64};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::tier::StoredTier;

pub const FILE_NAME: &str = "MANIFEST";
const MAGIC: &[u8; 8] = b"STRATMAN";
pub(crate) const VERSION: u16 = 1;
const HEADER_LEN: usize = 16; // magic, version, reserved, payload length
const FIXED_LEN: usize = 44; // generation, wal_floor, next ids, next rank, segment count
const ENTRY_LEN: usize = 59;

/// One live segment as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRecord {
    pub id: u64,
    /// Write order for last-write-wins: on equal timestamps the higher rank wins.
    /// A sealed head takes a fresh rank; compaction output keeps the highest rank of its inputs.
    pub rank: u64,
    /// Stored as one byte: 0 raw, 1 five-minute, 2 hourly.
    pub tier: StoredTier,
    /// Compaction level: 0 for a sealed head, higher for merged output.
    pub level: u8,
    pub min_t: i64,
    pub max_t: i64,
    pub samples: u64,
    pub series: u64,
    pub file_size: u64,
    /// `FLAG_ROLLED_UP`: this segment's buckets are already in the next tier.
    pub flags: u8,
}

/// The segment has been rolled up into the next coarser tier.
pub const FLAG_ROLLED_UP: u8 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Incremented on every write; lets tools tell two versions apart.
    pub generation: u64,
    /// WAL files with a sequence below this are fully contained in segments.
    pub wal_floor: u64,
    pub next_segment_id: u64,
    /// Next write-order rank to hand out.
    pub next_rank: u64,
    /// A floor for new series ids, so ids are never reused even after their data expires.
    pub next_series_id: u64,
    pub segments: Vec<SegmentRecord>,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let payload_len = FIXED_LEN + ENTRY_LEN * self.segments.len();
        let mut b = Vec::with_capacity(HEADER_LEN + payload_len + 4);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&[0, 0]); // reserved
        b.extend_from_slice(&(payload_len as u32).to_le_bytes());
        for v in [self.generation, self.wal_floor, self.next_segment_id, self.next_series_id, self.next_rank] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for s in &self.segments {
            b.extend_from_slice(&s.id.to_le_bytes());
            b.extend_from_slice(&[s.tier.as_u8(), s.level]);
            b.extend_from_slice(&s.min_t.to_le_bytes());
            b.extend_from_slice(&s.max_t.to_le_bytes());
            for v in [s.samples, s.series, s.file_size, s.rank] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.push(s.flags);
        }
        debug_assert_eq!(b.len(), HEADER_LEN + payload_len);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates; `file` is only used to name the file in errors.
    pub fn decode(b: &[u8], file: &Path) -> Result<Manifest> {
        let bad = |offset: usize, reason: String| Error::corruption(file, offset as u64, reason);
        if b.len() < HEADER_LEN + FIXED_LEN + 4 {
            return Err(bad(0, format!("manifest is {} bytes, shorter than its fixed part", b.len())));
        }
        // Every read below is in bounds once the lengths are checked; a short read
        // would still be a corruption error, never a panic.
        let short = |at: usize| bad(at, "manifest ends inside a field".into());
        if b.get(..8) != Some(MAGIC.as_slice()) {
            return Err(bad(0, "bad magic".into()));
        }
        let version = le_u16(b, 8).ok_or_else(|| short(8))?;
        if version != VERSION {
            return Err(bad(8, format!("unsupported manifest version {version}")));
        }
        let payload_len = le_u32(b, 12).ok_or_else(|| short(12))? as usize;
        if HEADER_LEN.checked_add(payload_len).and_then(|n| n.checked_add(4)) != Some(b.len()) {
            return Err(bad(12, format!("payload length {payload_len} disagrees with file length {}", b.len())));
        }
        let crc_at = HEADER_LEN + payload_len;
        let (covered, crc) = b.split_at_checked(crc_at).ok_or_else(|| short(crc_at))?;
        if Some(crc32fast::hash(covered)) != le_u32(crc, 0) {
            return Err(bad(crc_at, "checksum mismatch".into()));
        }
        let p = covered.get(HEADER_LEN..).ok_or_else(|| short(HEADER_LEN))?;
        let u64_at = |at: usize| le_u64(p, at).ok_or_else(|| short(HEADER_LEN + at));
        let count = le_u32(p, 40).ok_or_else(|| short(HEADER_LEN + 40))? as usize;
        if count.checked_mul(ENTRY_LEN).and_then(|n| n.checked_add(FIXED_LEN)) != Some(payload_len) {
            return Err(bad(HEADER_LEN + 40, format!("segment count {count} disagrees with payload length")));
        }
        let mut m = Manifest {
            generation: u64_at(0)?,
            wal_floor: u64_at(8)?,
            next_segment_id: u64_at(16)?,
            next_series_id: u64_at(24)?,
            next_rank: u64_at(32)?,
            segments: Vec::with_capacity(count),
        };
        let entries = p.get(FIXED_LEN..).ok_or_else(|| short(HEADER_LEN + FIXED_LEN))?;
        for (i, e) in entries.chunks_exact(ENTRY_LEN).enumerate() {
            let at = FIXED_LEN + i * ENTRY_LEN;
            let e: &[u8; ENTRY_LEN] = e.try_into().map_err(|_| short(HEADER_LEN + at))?;
            let field = |at: usize| le_u64(e, at).unwrap_or_default(); // in bounds: e is ENTRY_LEN bytes
            let s = SegmentRecord {
                id: field(0),
                tier: StoredTier::try_from(e[8])
                    .map_err(|t| bad(HEADER_LEN + at + 8, format!("segment entry {i}: {t}")))?,
                level: e[9],
                min_t: le_i64(e, 10).unwrap_or_default(),
                max_t: le_i64(e, 18).unwrap_or_default(),
                samples: field(26),
                series: field(34),
                file_size: field(42),
                rank: field(50),
                flags: e[58],
            };
            let ok = s.id < m.next_segment_id && s.rank < m.next_rank && s.flags <= FLAG_ROLLED_UP;
            if !ok || (s.samples > 0 && s.min_t > s.max_t) {
                return Err(bad(HEADER_LEN + at, format!("implausible segment entry {s:?}")));
            }
            m.segments.push(s);
        }
        Ok(m)
    }

    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(b) => Manifest::decode(&b, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Bumps the generation and publishes atomically.
    pub fn store(&mut self, dir: &Path) -> Result<()> {
        self.generation += 1;
        fsutil::write_atomic(&dir.join(FILE_NAME), &self.encode())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            generation: 7,
            wal_floor: 3,
            next_segment_id: 10,
            next_series_id: 1234,
            next_rank: 20,
            segments: (0..3)
                .map(|i| SegmentRecord {
                    id: i,
                    tier: StoredTier::ALL[(i % 3) as usize],
                    level: 1,
                    min_t: -5 + i as i64,
                    max_t: 100,
                    samples: 1 << i,
                    series: 9,
                    file_size: 4096,
                    rank: 10 + i,
                    flags: (i % 2) as u8,
                })
                .collect(),
        }
    }

    #[test]
    fn round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample();
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let b = sample().encode();
        let p = Path::new("MANIFEST");
        for cut in 0..b.len() {
            assert!(matches!(Manifest::decode(&b[..cut], p), Err(Error::Corruption { .. })));
        }
        for bit in 0..b.len() * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(Manifest::decode(&c, p), Err(Error::Corruption { .. })), "bit {bit} undetected");
        }
    }
}
