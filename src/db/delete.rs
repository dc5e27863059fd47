//! `Db::delete`: removes the samples of matching series in a time range, for good.
//!
//! The head is sealed first, so everything acknowledged before the call is in
//! segments and the WAL floor has moved past it: replay cannot bring it back. Every
//! segment holding matching data in the range is then rewritten without it, and all
//! rewrites are published in ONE manifest swap, so a crash leaves either the old
//! segments or the new ones, never a mix. The old files are unlinked afterwards, so
//! compaction cannot resurrect them either.
//!
//! Rollup buckets cannot be split: a bucket of a matching series that overlaps the
//! range is removed whole. Every finer segment near the range is marked not rolled
//! up, so the downsampler recomputes the edge buckets from the data that remains.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::items::{read_items, write_series, Item};
use super::publish::record_of;
use super::{Db, Inner, LiveSegment};
use crate::error::{Error, Result};
use crate::labels::Matcher;
use crate::manifest::FLAG_ROLLED_UP;
use crate::rollup::Bucket;
use crate::sample::Sample;
use crate::segment::Segment;
use crate::text::time::format_rfc3339 as rfc3339;
use crate::tier::StoredTier;

/// What `Db::delete` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// The range deleted (inclusive).
    pub start: i64,
    pub end: i64,
    /// Series the matchers selected, and those that lost data.
    pub series_matched: u64,
    pub series_affected: u64,
    /// Raw samples and rollup buckets removed.
    pub samples: u64,
    pub buckets: u64,
    /// Segments rewritten without the deleted data (or removed, when nothing remained).
    pub segments_rewritten: usize,
    pub segments_removed: usize,
}

impl Db {
    /// Deletes every sample in `start..=end` (inclusive, ms) of the series the matchers
    /// select; no matchers selects every series (a `prune_before` is
    /// `delete(&[], i64::MIN..=t - 1)`). Everything acknowledged before the call and in
    /// the range is gone when this returns, durably: not back after a crash, a replay or
    /// a compaction. Samples written while it runs may survive. A selector whose every
    /// matcher matches the empty value is refused, as Prometheus refuses it.
    pub fn delete(&self, matchers: &[Matcher], range: std::ops::RangeInclusive<i64>) -> Result<DeleteReport> {
        let (start, end) = (*range.start(), *range.end());
        if start > end {
            return Err(Error::InvalidTimeRange { start, end });
        }
        if !matchers.is_empty() && matchers.iter().all(|m| m.matches_empty()) {
            return Err(Error::InvalidArgument(
                "a delete selector needs at least one matcher that does not match the empty value".into(),
            ));
        }
        self.inner.check_writable()?;
        let _pass = self.inner.maintain_lock.lock();
        let mut ids = if matchers.is_empty() { self.inner.index.all_ids() } else { self.inner.index.select(matchers) };
        ids.sort_unstable();
        let mut report = DeleteReport { start, end, series_matched: ids.len() as u64, ..Default::default() };
        if ids.is_empty() {
            return Ok(report);
        }
        self.inner.seal()?;
        self.inner.guarded("deleting series", || self.inner.delete_in_segments(&ids, start, end, &mut report))?;
        let c = &self.inner.removals;
        c.deleted_samples.fetch_add(report.samples, Ordering::Relaxed);
        c.deleted_buckets.fetch_add(report.buckets, Ordering::Relaxed);
        log::info!(
            "{}: deleted {} samples and {} buckets of {} series (of {} matched) in {} .. {}; {} segments rewritten, {} removed",
            self.inner.dir.display(),
            report.samples,
            report.buckets,
            report.series_affected,
            report.series_matched,
            rfc3339(start),
            rfc3339(end),
            report.segments_rewritten,
            report.segments_removed
        );
        Ok(report)
    }
}

/// The first and last item time a deletion in `start..=end` touches in a tier: a
/// bucket starting up to one width before `start` still holds deleted samples.
fn reach(tier: StoredTier, start: i64, end: i64) -> (i64, i64) {
    (tier.bucket_ms().map_or(start, |w| start.saturating_sub(w - 1)), end)
}

impl Inner {
    fn delete_in_segments(&self, ids: &[u64], start: i64, end: i64, r: &mut DeleteReport) -> Result<()> {
        let _one = self.compact_lock.lock();
        let snap = self.snapshot();
        let mut gone: Vec<Arc<LiveSegment>> = Vec::new();
        let mut fresh: Vec<Arc<LiveSegment>> = Vec::new();
        let mut affected: Vec<u64> = Vec::new();
        for tier in StoredTier::ALL {
            let (lo, hi) = reach(tier, start, end);
            for seg in &snap.tiers[tier.index()] {
                if !holds(seg, ids, lo, hi) {
                    continue;
                }
                let out = match tier {
                    StoredTier::Raw => self.rewrite_without::<Sample>(seg, ids, lo, hi, &mut affected)?,
                    _ => self.rewrite_without::<Bucket>(seg, ids, lo, hi, &mut affected)?,
                };
                match tier {
                    StoredTier::Raw => r.samples += out.removed,
                    _ => r.buckets += out.removed,
                }
                gone.push(seg.clone());
                match out.segment {
                    Some(s) => {
                        r.segments_rewritten += 1;
                        fresh.push(s);
                    }
                    None => r.segments_removed += 1,
                }
            }
        }
        affected.sort_unstable();
        affected.dedup();
        r.series_affected = affected.len() as u64;
        if gone.is_empty() {
            return Ok(());
        }
        // Finer segments whose buckets the deletion touched are rolled up again.
        let unroll =
            |s: &LiveSegment| {
                s.info().tier.coarser().and_then(StoredTier::bucket_ms).is_some_and(|w| {
                    s.info().min_t <= end.saturating_add(w) && s.info().max_t >= start.saturating_sub(w)
                })
            };
        let gone_ids: Vec<u64> = gone.iter().map(|s| s.info().id).collect();
        let kept_unrolled: Vec<Arc<LiveSegment>> =
            snap.segments().filter(|s| !gone_ids.contains(&s.info().id) && unroll(s)).cloned().collect();
        self.publish(|m| {
            m.segments.retain(|rec| !gone_ids.contains(&rec.id));
            for rec in m.segments.iter_mut() {
                if kept_unrolled.iter().any(|s| s.info().id == rec.id) {
                    rec.flags &= !FLAG_ROLLED_UP;
                }
            }
            for s in &fresh {
                let mut rec = record_of(s);
                rec.flags = 0;
                m.segments.push(rec);
            }
        })?;
        for s in &kept_unrolled {
            s.rolled.store(false, Ordering::Release);
        }
        {
            let mut st = self.state.write();
            *st = Arc::new(st.with_segments(&gone_ids, fresh));
        }
        self.unlink_segments(&gone);
        Ok(())
    }

    /// Writes `seg` again without the items of series `ids` in `lo..=hi`. Keeps its
    /// rank and level; `None` when nothing remains.
    fn rewrite_without<T: Item>(
        &self,
        seg: &LiveSegment,
        ids: &[u64],
        lo: i64,
        hi: i64,
        affected: &mut Vec<u64>,
    ) -> Result<Rewritten> {
        let tier = seg.info().tier;
        let (id, _) = self.allocate_segment(false);
        let mut w = self.segment_writer(id, tier)?;
        let (mut buf, mut items, mut removed, mut written) = (Vec::new(), Vec::<T>::new(), 0u64, 0u64);
        for e in seg.series_in_page_order() {
            items.clear();
            read_items(seg, e.id, i64::MIN, i64::MAX, &mut items)?;
            if ids.binary_search(&e.id).is_ok() {
                let before = items.len();
                items.retain(|it| it.ts() < lo || it.ts() > hi);
                if items.len() != before {
                    removed += (before - items.len()) as u64;
                    affected.push(e.id);
                }
            }
            if !items.is_empty() {
                write_series(&mut w, e.id, &self.series_labels(e.id)?, &items, &mut buf)?;
                written += items.len() as u64;
            }
        }
        let segment = if written == 0 {
            w.abort();
            None
        } else {
            let s: Segment = self.finish_segment(w)?;
            Some(Arc::new(LiveSegment::new(s, seg.rank, seg.level, false)))
        };
        Ok(Rewritten { segment, removed })
    }
}

struct Rewritten {
    segment: Option<Arc<LiveSegment>>,
    removed: u64,
}

/// Whether `seg` has a chunk of one of `ids` (sorted) overlapping `lo..=hi`.
fn holds(seg: &LiveSegment, ids: &[u64], lo: i64, hi: i64) -> bool {
    if seg.info().min_t > hi || seg.info().max_t < lo {
        return false;
    }
    seg.series()
        .filter(|e| ids.binary_search(&e.id).is_ok())
        .any(|e| e.chunks.iter().any(|c| c.min_t <= hi && c.max_t >= lo))
}
