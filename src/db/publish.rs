//! Publishing segments: allocating ids and ranks, finishing a segment file, swapping
//! the manifest atomically, and unlinking files that left it. Sealing, downsampling,
//! compaction, retention and deletion all change the segment set through these.

use std::sync::Arc;

use super::{Inner, LiveSegment, Storage};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::manifest::SegmentRecord;
use crate::segment::{Segment, SegmentWriter, WriterOptions};
use crate::tier::StoredTier;

impl Inner {
    /// A fresh segment id and, when `fresh_rank`, a fresh write-order rank. Ids are never
    /// reused: one burned by a failed write stays burned.
    pub(crate) fn allocate_segment(&self, fresh_rank: bool) -> (u64, u64) {
        let mut m = self.manifest.lock();
        m.next_segment_id += 1;
        let rank = m.next_rank;
        if fresh_rank {
            m.next_rank += 1;
        }
        (m.next_segment_id - 1, rank)
    }

    /// Applies `change` to a copy of the manifest and publishes it atomically; the
    /// in-memory manifest changes only if the publication succeeded.
    pub(crate) fn publish(&self, change: impl FnOnce(&mut crate::manifest::Manifest)) -> Result<()> {
        let mut m = self.manifest.lock();
        let mut next = m.clone();
        change(&mut next);
        next.next_series_id = self.index.next_id();
        if self.storage == Storage::Disk {
            next.store(&self.dir).inspect_err(|e| self.poison_on_sync_failure(e))?;
        }
        *m = next;
        Ok(())
    }

    /// A writer for a new segment: a `.tmp` file in the segments directory, or a
    /// buffer for an in-memory database.
    pub(crate) fn segment_writer(&self, id: u64, tier: StoredTier) -> Result<SegmentWriter> {
        match self.storage {
            Storage::Disk => SegmentWriter::create(&self.segment_dir(), id, tier, WriterOptions::default()),
            Storage::Memory => SegmentWriter::in_memory(&self.segment_dir(), id, tier, WriterOptions::default()),
        }
    }

    /// Finishes a segment (for a file: fsync, rename, fsync of the directory) and opens it.
    pub(crate) fn finish_segment(&self, w: SegmentWriter) -> Result<Segment> {
        w.finish_open().inspect_err(|e| self.poison_on_sync_failure(e))
    }

    /// After a failed fsync the kernel may have dropped the unwritten pages and will not
    /// say so again (fsyncgate): what is on disk is unknown, so writes stop until a
    /// reopen rebuilds the state from the files. Other failures (a failed write, ENOSPC)
    /// leave the previous files valid and the operation can be retried.
    pub(crate) fn poison_on_sync_failure(&self, e: &Error) {
        if fsutil::is_sync_failure(e) {
            self.poison(e);
        }
    }

    /// Deletes files of segments that have left the manifest. Open mappings stay
    /// valid until the last reader drops its `Arc`; a failure only leaves an
    /// unlisted file that the next open removes.
    /// In memory, dropping the last `Arc` frees a segment's buffer.
    pub(crate) fn unlink_segments(&self, gone: &[Arc<LiveSegment>]) {
        if self.storage == Storage::Memory {
            return;
        }
        for s in gone {
            if let Err(e) = std::fs::remove_file(&s.info().path) {
                log::warn!("removing {}: {e}", s.info().path.display());
            }
        }
    }
}

/// The manifest record of a live segment (flags cleared; callers set them).
pub(crate) fn record_of(seg: &LiveSegment) -> SegmentRecord {
    let i = seg.info();
    SegmentRecord {
        id: i.id,
        rank: seg.rank,
        flags: 0,
        tier: i.tier,
        level: seg.level,
        min_t: i.min_t,
        max_t: i.max_t,
        samples: i.samples,
        series: i.series,
        file_size: i.file_size,
    }
}
