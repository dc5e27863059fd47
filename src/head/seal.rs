//! Sealing: freezing the head, writing it as a raw segment, publishing it in the
//! manifest and releasing its WAL files. The background worker that decides when
//! lives in `db/worker.rs`; the publication helpers in `db/publish.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use super::Head;
use crate::db::items::write_series;
use crate::db::publish::record_of;
use crate::db::{Inner, LiveSegment, State};
use crate::error::{Error, Result};
use crate::failpoint::{self, PanicSite};
use crate::sample::Sample;
use crate::segment::Segment;
use crate::tier::StoredTier;

/// How often a commit waiting for room re-checks the Db's health.
const ROOM_POLL: Duration = Duration::from_millis(50);
/// Shortest gap between seals triggered by time span (backfill can span weeks at once).
const MIN_SPAN_SEAL_GAP: Duration = Duration::from_secs(1);

impl Inner {
    /// Seals the current head (if it holds anything) and writes every frozen head.
    /// A panic on the way poisons the Db (see `guarded`), wherever the seal was called
    /// from: `Db::flush`, `Db::delete`, or an over-budget commit without a background
    /// worker (the worker calls `seal_in_background`).
    pub(crate) fn seal(&self) -> Result<()> {
        self.guarded("sealing the head", || {
            let _one_at_a_time = self.seal_lock.lock();
            self.freeze_head()?;
            self.persist_frozen().map(|_| ())
        })
    }

    /// Swaps in an empty head and a fresh WAL file, under the commit lock so that
    /// every sample of the frozen head is in earlier WAL files and none after.
    fn freeze_head(&self) -> Result<()> {
        if self.snapshot().head.is_empty() {
            return Ok(());
        }
        // The rotation fsyncs the current WAL file under the commit lock; syncing first,
        // outside it, leaves the rotation little to flush, so commits wait less.
        self.wal.sync().inspect_err(|e| self.poison(e))?;
        let _order = self.commit_lock.lock();
        let st = self.snapshot();
        if st.head.is_empty() {
            return Ok(());
        }
        let seq = self.wal.rotate().inspect_err(|e| self.poison(e))?;
        // The rotation followed every write submitted to this head, so each of its
        // turns is now acknowledged or failed: wait until they are all applied or
        // given up, so the frozen head is complete before it is written.
        st.head.wait_for_turns();
        let mut next = (*st).clone();
        next.frozen.push(st.head.clone());
        next.head = Arc::new(Head::new(seq));
        *self.state.write() = Arc::new(next);
        *self.last_seal.lock() = Instant::now();
        self.sealer.room_made();
        Ok(())
    }

    /// Writes frozen heads oldest first. Each is published with the WAL floor set to the
    /// first WAL file of the head after it, then its WAL files are deleted.
    /// Returns how many heads it wrote.
    fn persist_frozen(&self) -> Result<usize> {
        let mut written = 0;
        loop {
            let st = self.snapshot();
            let Some(frozen) = st.frozen.first().cloned() else { return Ok(written) };
            written += 1;
            let floor = st.frozen.get(1).map_or(st.head.wal_first_seq, |h| h.wal_first_seq);
            frozen.shrink();
            let (id, rank) = self.allocate_segment(true);
            let seg = self.write_head_segment(&frozen, id)?;
            failpoint::panic_point(PanicSite::Seal);
            let live = seg.map(|seg| Arc::new(LiveSegment::new(seg, rank, 0, false)));
            // The WAL files below `floor` may hold metadata changes: store them first.
            self.store_metadata().inspect_err(|e| self.poison_on_sync_failure(e))?;
            self.publish(|m| {
                m.wal_floor = floor;
                if let Some(s) = &live {
                    m.segments.push(record_of(s));
                }
            })?;
            match &live {
                Some(s) => log::info!(
                    "{}: sealed {} samples of {} series ({} .. {}) into segment {:016x}, {} bytes; WAL floor now {floor}",
                    self.dir.display(),
                    s.info().samples,
                    s.info().series,
                    crate::text::time::format_rfc3339(s.info().min_t),
                    crate::text::time::format_rfc3339(s.info().max_t),
                    s.info().id,
                    s.info().file_size
                ),
                None => log::debug!("{}: sealed an empty head; WAL floor now {floor}", self.dir.display()),
            }
            {
                let mut w = self.state.write();
                let mut next: State = w.with_segments(&[], live.into_iter().collect());
                next.frozen.remove(0);
                *w = Arc::new(next);
            }
            // Published: leftover files below the floor are ignored by replay. A failed
            // fsync still poisons, like every other.
            if self.storage == crate::db::Storage::Disk {
                if let Err(e) = self.wal_holds.remove_below(&self.wal_dir(), floor) {
                    log::warn!("removing WAL files below {floor}: {e}");
                    self.poison_on_sync_failure(&e);
                }
            }
        }
    }
    /// Encodes every series of a frozen head into a new raw segment; None when it holds nothing.
    fn write_head_segment(&self, head: &Head, id: u64) -> Result<Option<Segment>> {
        let mut w = self.segment_writer(id, StoredTier::Raw)?;
        let mut samples: Vec<Sample> = Vec::new();
        let mut bytes = Vec::new();
        let mut any = false;
        // In label order, so that a selector's series share pages (see compaction).
        let mut series = Vec::new();
        for sid in head.series_ids() {
            series.push((self.index.labels(sid).ok_or(Error::UnknownSeries { series: sid })?, sid));
        }
        series.sort_unstable();
        for (labels, sid) in series {
            samples.clear();
            head.read(sid, i64::MIN, i64::MAX, &mut samples);
            if samples.is_empty() {
                continue;
            }
            write_series(&mut w, sid, &labels, &samples, &mut bytes)?;
            any = true;
        }
        if !any {
            w.abort();
            return Ok(None);
        }
        self.finish_segment(w).map(Some)
    }

    /// Waits while the head is over twice its budget, so that memory stays bounded
    /// while the background sealer catches up: the sealer freezes the head, swapping in
    /// an empty one, as soon as it is free. Fails with `Error::WriteStalled` when no room
    /// came within `Options::write_stall_timeout`. Without a background worker the
    /// commit that passes the budget seals inline (`after_commit`), so nothing waits here.
    pub(crate) fn wait_for_room(&self) -> Result<()> {
        if !self.opts.background {
            return Ok(());
        }
        let limit = self.opts.head_memory_budget.saturating_mul(2);
        let over = || {
            let bytes = self.snapshot().head.bytes();
            (bytes > limit).then_some(bytes)
        };
        if over().is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let timeout = self.opts.write_stall_timeout;
        self.sealer.wake();
        let mut g = self.sealer.room.lock();
        loop {
            // Checked under `room`, which the sealer takes to notify after its swap: no
            // wake-up is lost between this check and the wait.
            let Some(bytes) = over() else { return Ok(()) };
            self.check_writable()?;
            let waited = started.elapsed();
            if waited >= timeout {
                log::warn!("a commit waited {waited:?} for the sealer: the head holds {bytes} bytes, limit {limit}");
                return Err(Error::WriteStalled { waited, head_bytes: bytes, limit });
            }
            // Short slices: a poisoned or closed Db, which nothing signals here, is seen soon.
            self.sealer.freed.wait_for(&mut g, (timeout - waited).min(ROOM_POLL));
        }
    }

    /// After a commit: with the background worker, wakes it once the head passes its
    /// budget (the committer never seals). Without it, seals inline at the budget, which
    /// bounds memory at the cost of that commit's latency.
    pub(crate) fn after_commit(&self, head: &Head) {
        if head.bytes() <= self.opts.head_memory_budget || !std::ptr::eq(&*self.snapshot().head, head) {
            return;
        }
        if self.opts.background {
            self.sealer.wake();
        } else if let Err(e) = self.seal() {
            log::warn!("sealing an over-budget head: {e}");
        }
    }

    /// The background sealer's seal: freezes the head unless a frozen head is still
    /// waiting (its write failed: retry that, without freezing more), then writes every
    /// frozen head. Committers only wait for the freeze, never for the write. Returns
    /// whether it wrote anything: a seal that found `Db::flush` had done the work is no
    /// reason for maintenance.
    pub(crate) fn seal_in_background(&self) -> Result<bool> {
        self.guarded("sealing the head", || {
            let _one_at_a_time = self.seal_lock.lock();
            if self.snapshot().frozen.is_empty() {
                self.freeze_head()?;
            }
            Ok(self.persist_frozen()? > 0)
        })
    }

    /// Whether the head should be sealed now, and why.
    pub(crate) fn seal_due(&self) -> Option<&'static str> {
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

/// How committers and the background sealer signal each other: a wake-up for the
/// sealer (a head past its budget, or a commit waiting for room) and a condvar for
/// commits waiting until the sealer has swapped in an empty head.
pub(crate) struct SealSignals {
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
    pub(crate) room: Mutex<()>,
    pub(crate) freed: Condvar,
}

impl SealSignals {
    pub(crate) fn new() -> SealSignals {
        // One pending wake-up is enough: the sealer re-checks everything when it runs.
        let (wake_tx, wake_rx) = bounded(1);
        SealSignals { wake_tx, wake_rx, room: Mutex::new(()), freed: Condvar::new() }
    }

    /// Asks the sealer to look now rather than at its next tick. Never blocks.
    pub(crate) fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    /// What the sealer waits on between ticks.
    pub(crate) fn wakes(&self) -> &Receiver<()> {
        &self.wake_rx
    }

    fn room_made(&self) {
        let _g = self.room.lock();
        self.freed.notify_all();
    }
}
