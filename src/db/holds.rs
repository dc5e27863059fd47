//! WAL holds: WAL files that a reader of the log (a remote-write forwarder) still
//! needs outlive the seal that would delete them.
//!
//! Each hold is named (a forward target's id) and persisted as a position file,
//! `<data>/forward/<id>.pos` (`docs/format/forward.md`): the WAL file and byte
//! offset up to which the target acknowledged everything. `Db::open` reads these
//! files before anything can seal, so a restart never deletes what a target has
//! not acknowledged, even before its forwarder starts again.
//!
//! Invariants:
//! - A seal removes WAL files below `min(floor, every hold's position)`, never more.
//! - Files kept only for holds (below the Db's floor) are bounded per hold by its
//!   cap: past it, the oldest are released (deleted) and the samples in them that
//!   the hold's reader had not read yet are counted as dropped and logged. The
//!   reader's position is checked and moved under the hold's `read` lock, so a
//!   sample is either read (and sent) or counted as dropped, never both.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::wal::{self, Record};

/// The directory of position files inside a data directory.
pub const FORWARD_DIR: &str = "forward";
const POS_SUFFIX: &str = ".pos";
const POS_MAGIC: &[u8; 8] = b"STRAFWDP";
const POS_VERSION: u16 = 1;
/// magic(8) + version(2) + reserved(2) + seq(8) + offset(8) + crc32(4).
pub const POS_LEN: usize = 32;
/// What a hold keeps for its target unless told otherwise: 1 GiB of WAL files.
pub const DEFAULT_BACKLOG_CAP: u64 = 1 << 30;

/// A point in the WAL: file `seq`, byte `offset` in it (0: the file's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct WalPosition {
    pub seq: u64,
    pub offset: u64,
}

/// The 32 bytes of a position file.
pub fn encode_position(p: WalPosition) -> [u8; POS_LEN] {
    let mut b = [0u8; POS_LEN];
    b[0..8].copy_from_slice(POS_MAGIC);
    b[8..10].copy_from_slice(&POS_VERSION.to_le_bytes());
    b[12..20].copy_from_slice(&p.seq.to_le_bytes());
    b[20..28].copy_from_slice(&p.offset.to_le_bytes());
    let crc = crc32fast::hash(&b[..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Checks and decodes a position file's bytes; the error says which check failed.
pub fn decode_position(b: &[u8]) -> std::result::Result<WalPosition, String> {
    if b.len() != POS_LEN {
        return Err(format!("is {} bytes long, not {POS_LEN}", b.len()));
    }
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    if &b[0..8] != POS_MAGIC {
        return Err("bad magic: not a Strata forward position file".into());
    }
    if crc32fast::hash(&b[..28]).to_le_bytes() != b[28..32] {
        return Err("checksum mismatch".into());
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != POS_VERSION {
        return Err(format!("unsupported version {version} (this build reads {POS_VERSION})"));
    }
    if b[10..12] != [0, 0] {
        return Err("reserved bytes are not zero".into());
    }
    Ok(WalPosition { seq: u64_at(12), offset: u64_at(20) })
}

pub fn position_path(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join(FORWARD_DIR).join(format!("{id}{POS_SUFFIX}"))
}

/// Reads `id`'s position file: `None` if there is none, an error naming the file if
/// it cannot be read or is damaged.
pub fn load_position(data_dir: &Path, id: &str) -> Result<Option<WalPosition>> {
    let path = position_path(data_dir, id);
    match fs::read(&path) {
        Ok(b) => decode_position(&b)
            .map(Some)
            .map_err(|why| Error::corruption(&path, 0, format!("forward position file {why}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes `id`'s position file atomically (tmp, fsync, rename, directory fsync).
pub fn store_position(data_dir: &Path, id: &str, p: WalPosition) -> Result<()> {
    let dir = data_dir.join(FORWARD_DIR);
    fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    fsutil::write_atomic(&position_path(data_dir, id), &encode_position(p))
}

/// One reader's claim on the WAL.
#[derive(Debug)]
pub struct WalHold {
    /// The acknowledged position's file: files from here on are kept.
    acked_seq: AtomicU64,
    /// Files below this were released by the cap (0: none).
    released_below: AtomicU64,
    /// Bytes of WAL files kept only for this hold before the oldest are released.
    cap: AtomicU64,
    /// Samples in released files that the reader had not read.
    dropped: AtomicU64,
    /// The reader's read position; the reader moves it, and the release checks it,
    /// under this lock.
    pub read: Mutex<WalPosition>,
}

impl WalHold {
    fn new(acked: WalPosition) -> WalHold {
        WalHold {
            acked_seq: AtomicU64::new(acked.seq),
            released_below: AtomicU64::new(0),
            cap: AtomicU64::new(DEFAULT_BACKLOG_CAP),
            dropped: AtomicU64::new(0),
            read: Mutex::new(acked),
        }
    }

    /// Records that everything before `p` was acknowledged: files below `p.seq` may go.
    pub fn acknowledge(&self, p: WalPosition) {
        self.acked_seq.fetch_max(p.seq, Ordering::AcqRel);
    }

    pub fn set_cap(&self, bytes: u64) {
        self.cap.store(bytes, Ordering::Release);
    }

    /// Files below this seq were released by the cap (0 if none were).
    pub fn released_below(&self) -> u64 {
        self.released_below.load(Ordering::Acquire)
    }

    /// Samples released unread since open.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Acquire)
    }

    /// The lowest WAL file this hold keeps.
    fn keeps_from(&self) -> u64 {
        self.acked_seq.load(Ordering::Acquire).max(self.released_below())
    }
}

/// Every hold of one Db, by id.
#[derive(Debug, Default)]
pub(crate) struct WalHolds {
    holds: Mutex<BTreeMap<String, Arc<WalHold>>>,
}

impl WalHolds {
    /// The holds recorded in `<data>/forward/*.pos`. A damaged file holds everything
    /// (position 0) until its forwarder refuses it by name: nothing is deleted on a
    /// guess.
    pub fn load(data_dir: &Path) -> Result<WalHolds> {
        let dir = data_dir.join(FORWARD_DIR);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WalHolds::default()),
            Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
        };
        let mut holds = BTreeMap::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(POS_SUFFIX)) else { continue };
            let pos = match load_position(data_dir, id) {
                Ok(p) => p.unwrap_or_default(),
                Err(e) => {
                    log::warn!("{e}; keeping every WAL file for forward target {id}");
                    WalPosition::default()
                }
            };
            holds.insert(id.to_string(), Arc::new(WalHold::new(pos)));
        }
        Ok(WalHolds { holds: Mutex::new(holds) })
    }

    /// The hold named `id`, created at `initial` if there is none yet.
    pub fn get_or_insert(&self, id: &str, initial: WalPosition) -> Arc<WalHold> {
        self.holds.lock().entry(id.to_string()).or_insert_with(|| Arc::new(WalHold::new(initial))).clone()
    }

    /// Removes the WAL files below `floor` that no hold keeps, after releasing
    /// files over a hold's cap. `wal_dir` is the Db's WAL directory.
    pub fn remove_below(&self, wal_dir: &Path, floor: u64) -> Result<usize> {
        let holds: Vec<(String, Arc<WalHold>)> =
            self.holds.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if holds.is_empty() {
            return wal::remove_below(wal_dir, floor);
        }
        let segs = wal::list_segments(wal_dir)?;
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        for (id, hold) in &holds {
            let from = hold.keeps_from();
            let kept: Vec<&(u64, PathBuf)> = segs.iter().filter(|(s, _)| *s >= from && *s < floor).collect();
            let mut bytes: u64 = kept.iter().map(|(_, p)| size(p)).sum();
            let cap = hold.cap.load(Ordering::Acquire);
            for (seq, path) in kept {
                if bytes <= cap {
                    break;
                }
                bytes -= size(path);
                release(id, hold, *seq, path);
            }
        }
        let keep = holds.iter().map(|(_, h)| h.keeps_from()).min().unwrap_or(floor).min(floor);
        wal::remove_below(wal_dir, keep)
    }
}

/// Releases WAL file `seq` from `hold`: counts (and logs) the samples its reader had
/// not read, and moves the reader past the file.
fn release(id: &str, hold: &WalHold, seq: u64, path: &Path) {
    let mut read = hold.read.lock();
    let skip_to = if read.seq == seq { read.offset } else { 0 };
    let (mut samples, mut lo, mut hi) = (0u64, i64::MAX, i64::MIN);
    if read.seq <= seq {
        if let Ok(data) = fs::read(path) {
            let _ = wal::scan::scan_file(&data, seq, false, |offset, rec| {
                if let (Record::Samples(s), true) = (rec, offset >= skip_to) {
                    samples += s.len() as u64;
                    for x in &s {
                        lo = lo.min(x.ts);
                        hi = hi.max(x.ts);
                    }
                }
                Ok(())
            });
        }
        *read = WalPosition { seq: seq + 1, offset: 0 };
    }
    hold.released_below.fetch_max(seq + 1, Ordering::AcqRel);
    hold.dropped.fetch_add(samples, Ordering::AcqRel);
    if samples > 0 {
        log::warn!(
            "forward target {id}: backlog over its cap of {} bytes; released WAL file {} unsent, \
             dropping {samples} samples from {} to {}",
            hold.cap.load(Ordering::Acquire),
            path.display(),
            crate::text::time::format_rfc3339(lo),
            crate::text::time::format_rfc3339(hi),
        );
    } else {
        log::warn!("forward target {id}: backlog over its cap; released WAL file {}", path.display());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn position_file_round_trips_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_position(dir.path(), "t").unwrap(), None);
        let p = WalPosition { seq: 0x1234_5678_9abc, offset: 4242 };
        store_position(dir.path(), "t", p).unwrap();
        assert_eq!(load_position(dir.path(), "t").unwrap(), Some(p));
        let good = encode_position(p);
        assert_eq!(decode_position(&good), Ok(p));
        for i in 0..POS_LEN {
            for bit in 0..8 {
                let mut bad = good;
                bad[i] ^= 1 << bit;
                assert!(decode_position(&bad).is_err(), "flip at {i}:{bit} accepted");
            }
            assert!(decode_position(&good[..i]).is_err());
        }
        let mut bad = good;
        bad[29] ^= 1;
        fs::write(position_path(dir.path(), "t"), bad).unwrap();
        let err = load_position(dir.path(), "t").unwrap_err().to_string();
        assert!(err.contains("t.pos") && err.contains("checksum mismatch"), "{err}");
        fs::write(position_path(dir.path(), "t"), b"hello").unwrap();
        let err = load_position(dir.path(), "t").unwrap_err().to_string();
        assert!(err.contains("is 5 bytes long"), "{err}");
    }
}
