//! The manifest: which segments are live and where WAL replay starts.
//!
//! Replaced atomically (tmp, fsync, rename, fsync dir) so a crash leaves the old
//! version or the new one. Layout: docs/format/manifest.md.

use std::path::Path;

use byteorder::{ByteOrder, LittleEndian as LE};

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
        let mut b = vec![0u8; HEADER_LEN + payload_len + 4];
        b[..8].copy_from_slice(MAGIC);
        LE::write_u16(&mut b[8..], VERSION);
        LE::write_u32(&mut b[12..], payload_len as u32);
        let p = &mut b[HEADER_LEN..];
        LE::write_u64(&mut p[0..], self.generation);
        LE::write_u64(&mut p[8..], self.wal_floor);
        LE::write_u64(&mut p[16..], self.next_segment_id);
        LE::write_u64(&mut p[24..], self.next_series_id);
        LE::write_u64(&mut p[32..], self.next_rank);
        LE::write_u32(&mut p[40..], self.segments.len() as u32);
        for (i, s) in self.segments.iter().enumerate() {
            let e = &mut p[FIXED_LEN + i * ENTRY_LEN..];
            LE::write_u64(&mut e[0..], s.id);
            e[8] = s.tier.as_u8();
            e[9] = s.level;
            LE::write_i64(&mut e[10..], s.min_t);
            LE::write_i64(&mut e[18..], s.max_t);
            LE::write_u64(&mut e[26..], s.samples);
            LE::write_u64(&mut e[34..], s.series);
            LE::write_u64(&mut e[42..], s.file_size);
            LE::write_u64(&mut e[50..], s.rank);
            e[58] = s.flags;
        }
        let crc_at = HEADER_LEN + payload_len;
        let crc = crc32fast::hash(&b[..crc_at]);
        LE::write_u32(&mut b[crc_at..], crc);
        b
    }

    /// Decodes and validates; `file` is only used to name the file in errors.
    pub fn decode(b: &[u8], file: &Path) -> Result<Manifest> {
        let bad = |offset: usize, reason: String| Error::corruption(file, offset as u64, reason);
        if b.len() < HEADER_LEN + FIXED_LEN + 4 {
            return Err(bad(0, format!("manifest is {} bytes, shorter than its fixed part", b.len())));
        }
        if &b[..8] != MAGIC {
            return Err(bad(0, "bad magic".into()));
        }
        let version = LE::read_u16(&b[8..]);
        if version != VERSION {
            return Err(bad(8, format!("unsupported manifest version {version}")));
        }
        let payload_len = LE::read_u32(&b[12..]) as usize;
        if HEADER_LEN.checked_add(payload_len).and_then(|n| n.checked_add(4)) != Some(b.len()) {
            return Err(bad(12, format!("payload length {payload_len} disagrees with file length {}", b.len())));
        }
        let crc_at = HEADER_LEN + payload_len;
        if crc32fast::hash(&b[..crc_at]) != LE::read_u32(&b[crc_at..]) {
            return Err(bad(crc_at, "checksum mismatch".into()));
        }
        let p = &b[HEADER_LEN..crc_at];
        let count = LE::read_u32(&p[40..]) as usize;
        if FIXED_LEN + count * ENTRY_LEN != payload_len {
            return Err(bad(HEADER_LEN + 40, format!("segment count {count} disagrees with payload length")));
        }
        let mut m = Manifest {
            generation: LE::read_u64(&p[0..]),
            wal_floor: LE::read_u64(&p[8..]),
            next_segment_id: LE::read_u64(&p[16..]),
            next_series_id: LE::read_u64(&p[24..]),
            next_rank: LE::read_u64(&p[32..]),
            segments: Vec::with_capacity(count),
        };
        for i in 0..count {
            let at = FIXED_LEN + i * ENTRY_LEN;
            let e = &p[at..at + ENTRY_LEN];
            let s = SegmentRecord {
                id: LE::read_u64(&e[0..]),
                tier: StoredTier::try_from(e[8])
                    .map_err(|t| bad(HEADER_LEN + at + 8, format!("segment entry {i}: {t}")))?,
                level: e[9],
                min_t: LE::read_i64(&e[10..]),
                max_t: LE::read_i64(&e[18..]),
                samples: LE::read_u64(&e[26..]),
                series: LE::read_u64(&e[34..]),
                file_size: LE::read_u64(&e[42..]),
                rank: LE::read_u64(&e[50..]),
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
