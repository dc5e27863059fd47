//! Listing, pruning and replaying WAL files.
//!
//! Replay acts on `scan`'s classification of each file's end:
//! - a torn tail of the newest file is cut off (set_len + fsync) and logged, a torn
//!   header removed;
//! - damage, or a missing file, is corruption: replay refuses with the file and offset,
//!   unless asked to repair, in which case everything from the bad byte on is dropped,
//!   loudly.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::record::{decode_header, Record, HEADER_LEN};
use super::scan::{scan_file, FileEnd};
use crate::error::{Error, Result};
use crate::fsutil::sync_dir;

const SUFFIX: &str = ".wal";

/// What a replay read and what it cut off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Files opened.
    pub files: usize,
    /// Records delivered to the callback.
    pub records: u64,
    /// Bytes of intact headers and frames read.
    pub bytes: u64,
    /// Bytes dropped: a torn tail, or under repair everything from the bad byte on
    /// (later files included).
    pub truncated_bytes: u64,
    /// The file that was truncated or removed first, if any.
    pub truncated_file: Option<PathBuf>,
}

/// `{seq:016x}.wal`
pub fn segment_file_name(seq: u64) -> String {
    format!("{seq:016x}{SUFFIX}")
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(segment_file_name(seq))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SUFFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// WAL files in `dir`, sorted by seq. Other names are ignored; a missing dir is empty.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing WAL directory {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(format!("listing WAL directory {}", dir.display()), e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// Deletes the files with seq < `floor` and fsyncs the directory. Returns how many.
pub fn remove_below(dir: &Path, floor: u64) -> Result<usize> {
    let mut n = 0;
    for (_, path) in list_segments(dir)?.into_iter().filter(|(seq, _)| *seq < floor) {
        remove_file(&path)?;
        n += 1;
    }
    if n > 0 {
        sync_dir(dir)?;
    }
    Ok(n)
}

/// The seq for a new writer's file after a replay of the files with seq >= `floor`.
///
/// A file that holds only its header (an open that wrote nothing before it closed)
/// carries no records, so trailing runs of them are removed, newest first, and their
/// seqs reused: repeated opens do not pile up empty files. Only the tail is touched,
/// so no gap can appear, and a crash between two removals leaves a contiguous run.
/// The result is never below `floor`: records written below it would be skipped by
/// the next replay.
pub fn reuse_empty_tail(dir: &Path, floor: u64) -> Result<u64> {
    let segs = list_segments(dir)?;
    let mut next = segs.last().map_or(floor, |(s, _)| s + 1).max(floor).max(1);
    let mut removed = 0;
    for (seq, path) in segs.iter().rev() {
        if *seq < floor || *seq + 1 != next || !header_only(path, *seq)? {
            break;
        }
        remove_file(path)?;
        next = *seq;
        removed += 1;
    }
    if removed > 0 {
        sync_dir(dir)?;
        log::debug!("removed {removed} empty WAL file(s); the next file is {}", segment_file_name(next.max(1)));
    }
    Ok(next.max(1))
}

/// Whether the file is exactly a valid header for `seq` and nothing else.
fn header_only(path: &Path, seq: u64) -> Result<bool> {
    let data = fs::read(path).map_err(|e| Error::io(format!("reading WAL file {}", path.display()), e))?;
    Ok(data.len() == HEADER_LEN && decode_header(&data) == Ok(seq))
}

/// Replays the records of files with seq >= `floor`, in order, calling `f` for each.
/// An error from `f` aborts the replay and is returned.
pub fn replay(dir: &Path, floor: u64, repair: bool, mut f: impl FnMut(Record) -> Result<()>) -> Result<ReplayReport> {
    let segs: Vec<(u64, PathBuf)> = list_segments(dir)?.into_iter().filter(|(seq, _)| *seq >= floor).collect();
    let mut report = ReplayReport::default();

    // a gap in the numbering is a lost file: records after it would be replayed out of context
    let gap = segs.windows(2).position(|w| matches!(w, [a, b] if a.0.checked_add(1) != Some(b.0)));
    if let Some([(before, _), (after, path)]) = gap.and_then(|i| segs.get(i..i + 2)) {
        let reason = format!("WAL files {:016x} to {:016x} are missing", before + 1, after - 1);
        if !repair {
            return Err(Error::corruption(path, 0, reason));
        }
    }
    // Files from `end` on follow the gap.
    let end = gap.map_or(segs.len(), |i| i + 1);

    for (idx, (seq, path)) in segs.iter().take(end).enumerate() {
        let newest = idx + 1 == segs.len();
        if let Some(bad) = replay_file(dir, path, *seq, newest, &mut f, &mut report)? {
            if !repair {
                return Err(Error::corruption(path, bad.offset, bad.reason));
            }
            cut(dir, path, bad.offset, &bad.reason, segs.get(idx + 1..).unwrap_or_default(), &mut report)?;
            return Ok(report);
        }
    }
    let after_gap = segs.get(end..).unwrap_or_default();
    if let Some((_, first)) = after_gap.first() {
        // repair of a gap: keep everything before it, drop everything after
        let dropped = remove_all(after_gap)?;
        sync_dir(dir)?;
        log::warn!(
            "WAL repair: files before {} are missing; removed it and {} later file(s), {dropped} bytes",
            first.display(),
            after_gap.len() - 1
        );
        report.truncated_bytes += dropped;
        report.truncated_file = Some(first.clone());
    }
    Ok(report)
}

struct BadSpot {
    offset: u64,
    reason: String,
}

/// Delivers one file's records. Returns the first bad spot that is not a torn tail of the
/// newest file; a torn tail is truncated here, a torn header removed (see `scan`).
fn replay_file(
    dir: &Path,
    path: &Path,
    seq: u64,
    newest: bool,
    f: &mut impl FnMut(Record) -> Result<()>,
    report: &mut ReplayReport,
) -> Result<Option<BadSpot>> {
    let data = fs::read(path).map_err(|e| Error::io(format!("reading WAL file {}", path.display()), e))?;
    report.files += 1;
    let end = scan_file(&data, seq, newest, |_, record| {
        report.records += 1;
        f(record)
    })?;
    match end {
        FileEnd::Clean => report.bytes += data.len() as u64,
        // a crash right after creating the newest file: nothing after the header was written
        FileEnd::TornHeader { reason } => {
            remove_file(path)?;
            sync_dir(dir)?;
            log::warn!(
                "WAL file {} has a torn header ({reason}); removed it, dropping {} bytes",
                path.display(),
                data.len()
            );
            report.truncated_bytes += data.len() as u64;
            report.truncated_file = Some(path.to_path_buf());
        }
        FileEnd::TornTail { offset, reason } => {
            report.bytes += offset;
            let dropped = data.len() as u64 - offset;
            truncate(path, offset)?;
            log::warn!(
                "WAL file {}: torn tail ({reason}) at offset {offset}; truncated {dropped} bytes \
                 ({} -> {offset} bytes)",
                path.display(),
                data.len()
            );
            report.truncated_bytes += dropped;
            report.truncated_file = Some(path.to_path_buf());
        }
        FileEnd::Corrupt { offset, reason } => {
            report.bytes += offset;
            return Ok(Some(BadSpot { offset, reason }));
        }
    }
    Ok(None)
}

/// Repair: cut `path` at `offset` (remove it if the header is bad), remove `later` files.
fn cut(
    dir: &Path,
    path: &Path,
    offset: u64,
    reason: &str,
    later: &[(u64, PathBuf)],
    report: &mut ReplayReport,
) -> Result<()> {
    let len = fs::metadata(path).map_err(|e| Error::io(format!("reading size of {}", path.display()), e))?.len();
    if offset < HEADER_LEN as u64 {
        remove_file(path)?;
    } else {
        truncate(path, offset)?;
    }
    let dropped_here = len.saturating_sub(offset);
    let dropped_later = remove_all(later)?;
    sync_dir(dir)?;
    log::warn!(
        "WAL repair: {} is corrupt at offset {offset} ({reason}); dropped {dropped_here} bytes there and \
         removed {} later file(s) of {dropped_later} bytes",
        path.display(),
        later.len()
    );
    report.truncated_bytes += dropped_here + dropped_later;
    report.truncated_file = Some(path.to_path_buf());
    Ok(())
}

/// Removes the files; returns their total size.
fn remove_all(files: &[(u64, PathBuf)]) -> Result<u64> {
    let mut bytes = 0;
    for (_, p) in files {
        bytes += fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        remove_file(p)?;
    }
    Ok(bytes)
}

fn truncate(path: &Path, len: u64) -> Result<()> {
    let ctx = || format!("truncating WAL file {} to {len} bytes", path.display());
    let file = OpenOptions::new().write(true).open(path).map_err(|e| Error::io(ctx(), e))?;
    file.set_len(len).map_err(|e| Error::io(ctx(), e))?;
    file.sync_all().map_err(|e| Error::io(ctx(), e))
}

fn remove_file(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(|e| Error::io(format!("removing WAL file {}", path.display()), e))
}
