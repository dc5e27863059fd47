//! Reading the WAL as it grows, from a position, while the Db writes it.
//!
//! The writer appends whole frames with one `write` per group and never reopens a
//! file, so a reader sees, at the end of the file being written, either nothing
//! more or part of a frame that is still being written: it stops before an
//! incomplete frame and reads it whole later. Once file `seq + 1` exists, file
//! `seq` is complete; checking for it *before* reading `seq` to its end means no
//! frame is missed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::db::holds::{WalHold, WalPosition};
use crate::error::{Error, Result};
use crate::wal::reader::segment_path;
use crate::wal::record::{decode_frame, decode_header_version, FrameError, HEADER_LEN};
use crate::wal::{list_segments, Record};

/// Bytes read from a file per call, unless one frame needs more.
const CHUNK: usize = 4 << 20;

/// What one read found.
pub(super) enum Next {
    /// Records, each with the position of its frame's start; the hold's read
    /// position is past them.
    /// `end`: the position after the last of them.
    Records(Vec<(WalPosition, Record)>, WalPosition),
    /// Nothing new: the reader is at the end of the newest file.
    Idle,
}

pub(super) struct Tail {
    dir: PathBuf,
    buf: Vec<u8>,
    target: String,
}

impl Tail {
    pub fn new(wal_dir: PathBuf, target: String) -> Tail {
        Tail { dir: wal_dir, buf: Vec::new(), target }
    }

    /// Reads the next records after the hold's read position and moves it past them,
    /// under the hold's lock (see `db::holds`).
    pub fn next(&mut self, hold: &WalHold) -> Result<Next> {
        let mut pos = hold.read.lock();
        loop {
            let path = segment_path(&self.dir, pos.seq);
            // before reading: if the next file exists now, this one is complete
            let next_exists = segment_path(&self.dir, pos.seq + 1).exists();
            let mut file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match self.skip_missing(pos.seq)? {
                    Some(seq) => {
                        *pos = WalPosition { seq, offset: 0 };
                        continue;
                    }
                    None => return Ok(Next::Idle),
                },
                Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
            };
            let len = file.metadata().map_err(|e| Error::io(format!("reading {}", path.display()), e))?.len();
            let start = pos.offset;
            if start >= len {
                if next_exists {
                    if start > len {
                        log::warn!(
                            "forward to {}: {} is shorter ({len} bytes) than the position {start}; going on with the next file",
                            self.target,
                            path.display()
                        );
                    }
                    *pos = WalPosition { seq: pos.seq + 1, offset: 0 };
                    continue;
                }
                return Ok(Next::Idle);
            }
            let want = (len - start).min(CHUNK as u64) as usize;
            self.fill(&mut file, &path, start, want)?;
            let mut at = 0usize;
            if start == 0 {
                match decode_header_version(&self.buf) {
                    Ok((s, _)) if s == pos.seq => at = HEADER_LEN,
                    // a header still being written (a file just created)
                    Err(_) if !next_exists && self.buf.len() < HEADER_LEN => return Ok(Next::Idle),
                    _ => {
                        self.damaged(&path, 0, "bad header", next_exists, &mut pos);
                        if next_exists {
                            continue;
                        }
                        return Ok(Next::Idle);
                    }
                }
            }
            let mut out = Vec::new();
            loop {
                let rest = self.buf.get(at..).unwrap_or_default();
                if rest.is_empty() {
                    break;
                }
                match decode_frame(rest) {
                    Ok((rec, n)) => {
                        out.push((WalPosition { seq: pos.seq, offset: start + at as u64 }, rec));
                        at += n;
                    }
                    Err(FrameError::Incomplete) => {
                        if out.is_empty() && (start + self.buf.len() as u64) < len {
                            // one frame larger than the chunk: read it whole
                            let need = frame_len(rest).unwrap_or(CHUNK);
                            let more = (len - start).min((at + need) as u64) as usize;
                            if more > self.buf.len() {
                                self.fill(&mut file, &path, start, more)?;
                                continue;
                            }
                        }
                        break;
                    }
                    Err(FrameError::Corrupt(why)) => {
                        let offset = start + at as u64;
                        if !out.is_empty() {
                            break; // deliver what came before; the next call meets it again
                        }
                        self.damaged(&path, offset, why, next_exists, &mut pos);
                        if next_exists {
                            break;
                        }
                        return Ok(Next::Idle);
                    }
                }
            }
            if out.is_empty() {
                if at > 0 && start == 0 {
                    *pos = WalPosition { seq: pos.seq, offset: at as u64 };
                }
                if next_exists && start + self.buf.len() as u64 >= len {
                    *pos = WalPosition { seq: pos.seq + 1, offset: 0 };
                    continue;
                }
                return Ok(Next::Idle);
            }
            *pos = WalPosition { seq: pos.seq, offset: start + at as u64 };
            return Ok(Next::Records(out, *pos));
        }
    }

    fn fill(&mut self, file: &mut File, path: &Path, start: u64, want: usize) -> Result<()> {
        let ctx = || format!("reading {}", path.display());
        file.seek(SeekFrom::Start(start)).map_err(|e| Error::io(ctx(), e))?;
        self.buf.clear();
        file.take(want as u64).read_to_end(&mut self.buf).map_err(|e| Error::io(ctx(), e))?;
        Ok(())
    }

    /// The first WAL file after `seq`, if any, logging the files that are gone.
    fn skip_missing(&self, seq: u64) -> Result<Option<u64>> {
        let Some((next, _)) = list_segments(&self.dir)?.into_iter().find(|(s, _)| *s > seq) else {
            return Ok(None);
        };
        log::warn!(
            "forward to {}: WAL files {:016x} to {:016x} are gone (sealed before this target held them, \
             or released over the backlog cap); going on from {next:016x}",
            self.target,
            seq,
            next - 1
        );
        Ok(Some(next))
    }

    /// A damaged frame: the Db's next open refuses it (or repairs it); the forwarder
    /// logs it and goes on with the next file once there is one.
    fn damaged(&self, path: &Path, offset: u64, why: &str, next_exists: bool, pos: &mut WalPosition) {
        if next_exists {
            log::error!(
                "forward to {}: {} is damaged at offset {offset} ({why}); skipping the rest of it",
                self.target,
                path.display()
            );
            *pos = WalPosition { seq: pos.seq + 1, offset: 0 };
        }
    }
}

/// The total size of the frame starting at `b`, from its length field.
fn frame_len(b: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    Some(8 + len)
}
