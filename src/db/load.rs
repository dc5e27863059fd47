//! Opening the listed segments and loading their series into the index: from the
//! index checkpoint (`INDEX`) for the segments it covers, whose labels are then
//! not read at all, and from the series tables of the others.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{repair, LiveSegment, RecoveryReport};
use crate::error::{Error, Result};
use crate::index::checkpoint::{self, Checkpoint};
use crate::index::SeriesIndex;
use crate::labels::Labels;
use crate::manifest::{Manifest, SegmentRecord, FLAG_ROLLED_UP};
use crate::options::Options;
use crate::segment;

pub(super) struct Loaded {
    /// In MANIFEST order, without the ones set aside.
    pub segments: Vec<Arc<LiveSegment>>,
    /// Damaged segments quarantined under `Options::repair`.
    pub set_aside: Vec<SegmentRecord>,
    /// The checkpoint was missing, unusable, or did not cover every segment.
    pub checkpoint_stale: bool,
}

/// Opens every segment the manifest lists and loads its series into `index`
/// (which must be empty). A damaged checkpoint is logged and ignored.
pub(super) fn load_segments(
    dir: &Path,
    manifest: &Manifest,
    opts: &Options,
    index: &SeriesIndex,
    report: &mut RecoveryReport,
) -> Result<Loaded> {
    let seg_dir = dir.join(super::SEGMENT_DIR);
    let path_of = |rec: &SegmentRecord| seg_dir.join(segment::file_name(rec.id));
    let live = |rec: &SegmentRecord, seg| {
        let rolled = rec.flags & FLAG_ROLLED_UP != 0;
        Arc::new(LiveSegment::new(seg, rec.rank, rec.level, rolled))
    };
    // Every series is in some segment: the largest holds at least a share of them.
    let most = manifest.segments.iter().map(|s| s.series).max().unwrap_or(0);
    index.reserve(manifest.next_series_id, most as usize);
    let ck = usable_checkpoint(dir, manifest, opts);
    let known: HashMap<u64, u32> = ck.as_ref().map(|c| c.segments.iter().copied().collect()).unwrap_or_default();
    let mut slots: Vec<Option<Arc<LiveSegment>>> = manifest.segments.iter().map(|_| None).collect();

    // The segments the checkpoint covers, labels not read, opened on a second
    // thread while this one loads the checkpoint: the two take about as long. A
    // table that is not the one it names (same id, another checksum) makes the
    // checkpoint unusable, and what it loaded is dropped.
    let open_covered = || -> Result<(Vec<Option<Arc<LiveSegment>>>, bool)> {
        let mut all_skipped = true;
        let mut opened = Vec::with_capacity(manifest.segments.len());
        for rec in &manifest.segments {
            let Some(&crc) = known.get(&rec.id) else {
                opened.push(None);
                continue;
            };
            let (seg, skipped) =
                repair::open_listed(dir, &path_of(rec), rec.tier, false, Some(crc), &mut |_, _| Ok(()))?;
            all_skipped &= skipped;
            opened.push(Some(live(rec, seg)));
        }
        Ok((opened, all_skipped))
    };
    let mut ck_ok = false;
    let mut load_checkpoint = || {
        if let Some(ck) = &ck {
            match ck.load_into(index) {
                Ok(()) => ck_ok = true,
                Err(e) => log::warn!("{e}; rebuilding the series index from the segments"),
            }
        }
    };
    // Older segments decompress their labels with their entries (150 MB for a
    // million series): opened beside the load, that would add to its peak memory.
    let parallel = ck.is_some()
        && manifest
            .segments
            .iter()
            .filter(|r| known.contains_key(&r.id))
            .all(|r| segment::peek_version(&path_of(r)).is_some_and(|v| v >= segment::LABELS_FRAME_VERSION));
    let (opened, all_skipped) = if parallel {
        std::thread::scope(|s| {
            let name = "strata-open".to_string();
            let h = std::thread::Builder::new().name(name).spawn_scoped(s, open_covered);
            let h = h.map_err(|e| Error::io("starting a thread to open segments", e))?;
            load_checkpoint();
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        })?
    } else {
        let opened = open_covered()?;
        load_checkpoint();
        opened
    };
    for (slot, seg) in slots.iter_mut().zip(opened) {
        *slot = seg;
    }
    ck_ok &= all_skipped;
    match &ck {
        Some(ck) if ck_ok => report.series_from_checkpoint = ck.series(),
        Some(_) => index.reset(),
        None => {}
    }
    if !ck_ok {
        // Read again, with their labels, the segments opened for a checkpoint not used.
        for s in slots.iter().flatten() {
            for (id, labels) in s.seg.series_labels()? {
                index.load(id, &labels).map_err(|r| Error::corruption(&s.seg.info().path, 0, r))?;
            }
        }
    }

    // The other segments, labels from their series tables.
    let mut set_aside = Vec::new();
    let mut uncovered = 0;
    for (slot, rec) in slots.iter_mut().zip(&manifest.segments) {
        if slot.is_some() {
            continue;
        }
        let path = path_of(rec);
        // Under repair a segment may still be set aside after its table is read,
        // so its series reach the index only once it is kept.
        let mut held: Vec<(u64, Labels)> = Vec::new();
        let mut define = |id: u64, pairs: &[(&str, &str)]| {
            if opts.repair {
                held.push((id, Labels::from_checked(pairs)));
                Ok(())
            } else {
                index.load_pairs(id, pairs)
            }
        };
        let seg = match repair::open_listed(dir, &path, rec.tier, opts.repair, None, &mut define) {
            Ok((seg, _)) => seg,
            Err(e @ Error::Corruption { .. }) if opts.repair => {
                report.quarantined.push(repair::quarantine(dir, &path, &e)?);
                set_aside.push(rec.clone());
                continue;
            }
            Err(e) => return Err(e),
        };
        for (id, labels) in held {
            index.load(id, &labels).map_err(|r| Error::corruption(&path, 0, r))?;
        }
        uncovered += 1;
        *slot = Some(live(rec, seg));
    }
    let segments: Vec<Arc<LiveSegment>> = slots.into_iter().flatten().collect();
    let checkpoint_stale = !segments.is_empty() && (!ck_ok || uncovered > 0);
    Ok(Loaded { segments, set_aside, checkpoint_stale })
}

/// The checkpoint, if there is one that can be used: readable, and naming only
/// segments the manifest lists (one naming a segment since merged or removed may
/// hold series no live segment holds). Never under repair.
fn usable_checkpoint(dir: &Path, manifest: &Manifest, opts: &Options) -> Option<Checkpoint> {
    if opts.repair || manifest.segments.is_empty() {
        return None;
    }
    let ck = match Checkpoint::read(dir) {
        Ok(ck) => ck?,
        Err(e) => {
            log::warn!("{e}; rebuilding the series index from the segments");
            return None;
        }
    };
    let listed: HashMap<u64, ()> = manifest.segments.iter().map(|s| (s.id, ())).collect();
    let mut seen = HashMap::new();
    let covered = ck.segments.iter().all(|(id, _)| listed.contains_key(id) && seen.insert(*id, ()).is_none());
    covered.then_some(ck)
}

/// Writes a checkpoint of `index`, which must hold exactly the series of
/// `segments`, after a load that found it stale. Failing only costs the next open
/// time, so it is logged and reported (`RecoveryReport::index_checkpoint_error`),
/// and open goes on.
pub(super) fn write_checkpoint(
    dir: &Path,
    index: &SeriesIndex,
    segments: &[Arc<LiveSegment>],
) -> std::result::Result<(), String> {
    index.finish_load();
    let names: Vec<(u64, u32)> = segments.iter().map(|s| (s.seg.info().id, s.seg.table_crc())).collect();
    checkpoint::write(dir, index, &names).map_err(|e| {
        let why = format!("writing the index checkpoint {}: {e}", dir.join(checkpoint::FILE_NAME).display());
        log::warn!("{why}");
        why
    })
}
