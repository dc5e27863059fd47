//! Sealing: freezing the head, writing it as a segment, publishing it in the
//! manifest and releasing its WAL files; and the background worker that decides when.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::items::write_series;
use super::{Inner, LiveSegment, State};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::head::Head;
use crate::manifest::SegmentRecord;
use crate::sample::Sample;
use crate::segment::{Segment, SegmentWriter, WriterOptions};
use crate::wal;

/// Heads waiting to be written beyond which commits wait for the sealer.
const MAX_FROZEN: usize = 2;
/// Shortest gap between seals triggered by time span (backfill can span weeks at once).
const MIN_SPAN_SEAL_GAP: Duration = Duration::from_secs(1);

impl Inner {
    /// Seals the current head (if it holds anything) and writes every frozen head.
    pub(crate) fn seal(&self) -> Result<()> {
        let _one_at_a_time = self.seal_lock.lock();
        self.freeze_head()?;
        self.persist_frozen()
    }

    /// Swaps in an empty head and a fresh WAL file, under the commit lock so that
    /// every sample of the frozen head is in earlier WAL files and none after.
    fn freeze_head(&self) -> Result<()> {
        let _order = self.commit_lock.lock();
        let st = self.snapshot();
        if st.head.is_empty() {
            return Ok(());
        }
        let seq = self.wal.rotate().inspect_err(|e| self.poison(e))?;
        let mut next = (*st).clone();
        next.frozen.push(st.head.clone());
        next.head = Arc::new(Head::new(seq));
        *self.state.write() = Arc::new(next);
        *self.last_seal.lock() = Instant::now();
        Ok(())
    }

    /// Writes frozen heads oldest first. Each is published with the WAL floor set to the
    /// first WAL file of the head after it, then its WAL files are deleted.
    fn persist_frozen(&self) -> Result<()> {
        loop {
            let st = self.snapshot();
            let Some(frozen) = st.frozen.first().cloned() else { return Ok(()) };
            let floor = st.frozen.get(1).map_or(st.head.wal_first_seq, |h| h.wal_first_seq);
            frozen.shrink();
            let (id, rank) = self.allocate_segment(true);
            let seg = self.write_head_segment(&frozen, id)?;
            let live = seg.map(|seg| Arc::new(LiveSegment::new(seg, rank, 0, false)));
            self.publish(|m| {
                m.wal_floor = floor;
                if let Some(s) = &live {
                    m.segments.push(record_of(s));
                }
            })?;
            {
                let mut w = self.state.write();
                let mut next: State = w.with_segments(&[], live.into_iter().collect());
                next.frozen.remove(0);
                *w = Arc::new(next);
            }
            // Published: leftover files below the floor are ignored by replay. A failed
            // fsync still poisons, like every other.
            if let Err(e) = wal::remove_below(&self.wal_dir(), floor) {
                log::warn!("removing WAL files below {floor}: {e}");
                self.poison_on_sync_failure(&e);
            }
        }
    }

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
        next.store(&self.dir).inspect_err(|e| self.poison_on_sync_failure(e))?;
        *m = next;
        Ok(())
    }

    /// Finishes a segment file (fsync, rename, fsync of the directory) and opens it.
    pub(crate) fn finish_segment(&self, w: SegmentWriter) -> Result<Segment> {
        let info = w.finish().inspect_err(|e| self.poison_on_sync_failure(e))?;
        Segment::open(&info.path)
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

    /// Encodes every series of a frozen head into a new raw segment; None when it holds nothing.
    fn write_head_segment(&self, head: &Head, id: u64) -> Result<Option<Segment>> {
        let mut w = SegmentWriter::create(&self.segment_dir(), id, 0, WriterOptions::default())?;
        let mut samples: Vec<Sample> = Vec::new();
        let mut bytes = Vec::new();
        let mut any = false;
        for sid in head.series_ids() {
            samples.clear();
            head.read(sid, i64::MIN, i64::MAX, &mut samples);
            if samples.is_empty() {
                continue;
            }
            let labels = self.index.labels(sid).ok_or(Error::UnknownSeries { series: sid })?;
            write_series(&mut w, sid, &labels, &samples, &mut bytes)?;
            any = true;
        }
        if !any {
            w.abort();
            return Ok(None);
        }
        self.finish_segment(w).map(Some)
    }

    /// Blocks a committer while too many frozen heads wait for the sealer, so memory stays bounded.
    pub(crate) fn wait_for_room(&self) {
        if self.snapshot().frozen.len() >= MAX_FROZEN {
            drop(self.seal_lock.lock());
        }
    }

    /// Seals inline when the head is over budget and no background worker will, or
    /// when the worker is behind (busy writing or maintaining) and the head has reached
    /// twice the budget: the committer then waits, which bounds head memory.
    pub(crate) fn after_commit(&self, head: &Head) {
        let budget = self.opts.head_memory_budget;
        let limit = if self.opts.background { budget.saturating_mul(2) } else { budget };
        if head.bytes() > limit && std::ptr::eq(&*self.snapshot().head, head) {
            if let Err(e) = self.seal() {
                log::warn!("sealing an over-budget head: {e}");
            }
        }
    }

    /// Whether the head should be sealed now, and why.
    fn seal_due(&self) -> Option<&'static str> {
        let head = self.snapshot().head.clone();
        if head.is_empty() {
            return None;
        }
        if head.bytes() > self.opts.head_memory_budget {
            return Some("memory budget");
        }
        let block = self.opts.block_duration;
        let span_ms = i64::try_from(block.as_millis() * 3 / 2).unwrap_or(i64::MAX);
        if let Some((a, b)) = head.time_range() {
            if b.saturating_sub(a) >= span_ms && self.last_seal.lock().elapsed() >= MIN_SPAN_SEAL_GAP {
                return Some("time span");
            }
        }
        (head.created.elapsed() >= block).then_some("age")
    }
}

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

/// The background sealer thread.
pub(crate) struct Worker {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl Worker {
    pub fn start(inner: Arc<Inner>) -> Worker {
        let (stop, rx) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("strata-sealer".into())
            .spawn(move || run(inner, rx))
            .expect("spawning the sealer thread");
        Worker { stop, handle }
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

fn run(inner: Arc<Inner>, stop: Receiver<()>) {
    let mut backoff = Duration::from_millis(100);
    let mut last_maintenance = Instant::now();
    let mut sealed_since = false;
    // How often maintenance (downsampling, compaction, retention) runs when idle.
    let every = inner.opts.maintenance_interval;
    loop {
        match stop.recv_timeout(Duration::from_millis(100)) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let due = last_maintenance.elapsed() >= every || (sealed_since && inner.snapshot().frozen.is_empty());
        if due && inner.check_writable().is_ok() {
            last_maintenance = Instant::now();
            sealed_since = false;
            if let Err(e) = inner.maintain() {
                log::error!("maintenance failed, retrying in {every:?}: {e}");
            }
        }
        let pending = !inner.snapshot().frozen.is_empty();
        let Some(reason) = inner.seal_due().or(pending.then_some("retry")) else { continue };
        if inner.check_writable().is_err() {
            continue;
        }
        match inner.seal() {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                sealed_since = true;
            }
            Err(e) => {
                log::error!("sealing ({reason}) failed, retrying in {backoff:?}: {e}");
                if stop.recv_timeout(backoff).is_ok() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
