//! The downsampler: turns each sealed raw segment into 5-minute buckets, and
//! each 5-minute segment into hourly buckets.
//!
//! A bucket is always recomputed whole from every sealed segment of the finer
//! tier (merged by write order), never patched, so late data that lands in a
//! new segment yields a new, complete version of the buckets it touches; the
//! newer version wins on read because it has the higher rank.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{align, rollup, rollup_buckets, Bucket};
use crate::db::items::{read_items, write_series};
use crate::db::publish::record_of;
use crate::db::{Inner, LiveSegment, State};
use crate::error::{Error, Result};
use crate::manifest::FLAG_ROLLED_UP;
use crate::merge::merge_runs;
use crate::sample::Sample;
use crate::tier::StoredTier;

impl Inner {
    /// Rolls up every segment not yet rolled into the next tier. Returns how many
    /// rollup segments were written.
    pub(crate) fn downsample(&self) -> Result<usize> {
        let _one = self.compact_lock.lock();
        let mut written = 0;
        for (src_tier, dst_tier) in [(StoredTier::Raw, StoredTier::FiveMin), (StoredTier::FiveMin, StoredTier::Hour)] {
            while let Some(src) = self.next_unrolled(src_tier) {
                written += usize::from(self.roll_up(src_tier, dst_tier, &src)?);
            }
        }
        Ok(written)
    }

    fn next_unrolled(&self, tier: StoredTier) -> Option<Arc<LiveSegment>> {
        let snap = self.snapshot();
        let m = self.manifest.lock();
        snap.tiers[tier.index()]
            .iter()
            .find(|s| m.segments.iter().any(|r| r.id == s.info().id && r.flags & FLAG_ROLLED_UP == 0))
            .cloned()
    }

    /// Writes the buckets of `dst_tier` (a rollup tier) touched by `src`, a segment of the
    /// next finer tier, then marks `src` rolled.
    fn roll_up(&self, src_tier: StoredTier, dst_tier: StoredTier, src: &LiveSegment) -> Result<bool> {
        let Some(width) = dst_tier.bucket_ms() else {
            return Err(Error::InvalidArgument(format!("cannot roll up into the {dst_tier} tier")));
        };
        let snap = self.snapshot();
        let (id, rank) = self.allocate_segment(true);
        let mut w = self.segment_writer(id, dst_tier)?;
        let mut buf = Vec::new();
        let mut any = false;
        for entry in src.series_in_page_order() {
            let (Some(first), Some(last)) = (entry.chunks.first(), entry.chunks.iter().map(|c| c.max_t).max()) else {
                continue;
            };
            let from = align(first.min_t, width).unwrap_or(i64::MIN);
            let to = last.div_euclid(width).saturating_mul(width).saturating_add(width - 1);
            let buckets = self.recompute(&snap, src_tier, entry.id, from, to, width)?;
            if buckets.is_empty() {
                continue;
            }
            write_series(&mut w, entry.id, &self.series_labels(entry.id)?, &buckets, &mut buf)?;
            any = true;
        }
        let live = if any {
            Some(Arc::new(LiveSegment::new(self.finish_segment(w)?, rank, 0, false)))
        } else {
            w.abort();
            None
        };
        let src_id = src.info().id;
        self.publish(|m| {
            if let Some(r) = m.segments.iter_mut().find(|r| r.id == src_id) {
                r.flags |= FLAG_ROLLED_UP;
            }
            if let Some(s) = &live {
                m.segments.push(record_of(s));
            }
        })?;
        src.rolled.store(true, Ordering::Release);
        let mut st = self.state.write();
        *st = Arc::new(st.with_segments(&[], live.into_iter().collect()));
        Ok(any)
    }

    /// The complete buckets of `[from, to]` for one series, from every segment of the finer tier.
    /// Items within one bucket width above `i64::MIN` have no aligned bucket: no tier can
    /// hold them, so they are left out rather than failing every pass.
    fn recompute(
        &self,
        snap: &State,
        src_tier: StoredTier,
        id: u64,
        from: i64,
        to: i64,
        width: i64,
    ) -> Result<Vec<Bucket>> {
        let sources = &snap.tiers[src_tier.index()];
        if src_tier == StoredTier::Raw {
            let mut runs: Vec<Vec<Sample>> = Vec::new();
            for s in sources.iter().filter(|s| overlaps(s, from, to)) {
                let mut v = Vec::new();
                read_items(s, id, from, to, &mut v)?;
                runs.push(v);
            }
            let mut samples = merge_runs(runs);
            samples.retain(|s| align(s.ts, width).is_some());
            return rollup(&samples, width);
        }
        let mut runs: Vec<Vec<Bucket>> = Vec::new();
        for s in sources.iter().filter(|s| overlaps(s, from, to)) {
            let mut v = Vec::new();
            read_items(s, id, from, to, &mut v)?;
            runs.push(v);
        }
        let mut buckets = merge_runs(runs);
        buckets.retain(|b| align(b.start, width).is_some());
        rollup_buckets(&buckets, width)
    }
}

fn overlaps(s: &LiveSegment, from: i64, to: i64) -> bool {
    s.info().min_t <= to && s.info().max_t >= from
}
