//! Maintenance: downsampling, compaction and retention, in that order.
//!
//! Downsampling runs first so that compaction and expiry only ever touch data that
//! is already in the next tier. Retention works at two grains: whole segments past
//! every rule's retention are dropped from the manifest; segments that straddle
//! the boundary are rewritten without the expired part.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{DropKind, SegmentDrop};
use crate::compact::CompactionReport;
use crate::db::{Inner, LiveSegment};
use crate::error::Result;
use crate::rollup::Bucket;
use crate::sample::Sample;
use crate::text::time::format_rfc3339 as rfc3339;
use crate::tier::StoredTier;

/// What retention and deletion have removed since open, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemovalStats {
    /// Segments removed whole or trimmed by retention.
    pub segments: u64,
    /// Raw samples and rollup buckets removed by retention.
    pub samples: u64,
    pub buckets: u64,
    /// Segment bytes freed by retention.
    pub bytes: u64,
    /// Samples and buckets removed by `Db::delete`.
    pub deleted_samples: u64,
    pub deleted_buckets: u64,
}

#[derive(Default)]
pub(crate) struct RemovalCounters {
    segments: AtomicU64,
    samples: AtomicU64,
    buckets: AtomicU64,
    bytes: AtomicU64,
    pub deleted_samples: AtomicU64,
    pub deleted_buckets: AtomicU64,
}

impl RemovalCounters {
    pub fn get(&self) -> RemovalStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RemovalStats {
            segments: g(&self.segments),
            samples: g(&self.samples),
            buckets: g(&self.buckets),
            bytes: g(&self.bytes),
            deleted_samples: g(&self.deleted_samples),
            deleted_buckets: g(&self.deleted_buckets),
        }
    }

    pub(crate) fn count(&self, d: &SegmentDrop, bytes_freed: u64) {
        self.segments.fetch_add(1, Ordering::Relaxed);
        let n = d.items_removed.unwrap_or(0);
        match d.tier {
            StoredTier::Raw => self.samples.fetch_add(n, Ordering::Relaxed),
            StoredTier::FiveMin | StoredTier::Hour => self.buckets.fetch_add(n, Ordering::Relaxed),
        };
        self.bytes.fetch_add(bytes_freed, Ordering::Relaxed);
    }
}

impl Inner {
    /// Carries out a retention plan, recording and logging every removal in `r`.
    pub(crate) fn apply_retention_into(&self, r: &mut CompactionReport) -> Result<()> {
        let plan = self.retention_plan();
        for mut d in plan.drops {
            match d.kind {
                DropKind::Expired => r.segments_expired += self.drop_segments(&[d.segment])?,
                DropKind::OverDiskCap => r.segments_over_cap += self.drop_segments(&[d.segment])?,
                DropKind::Trimmed => {
                    let now = plan.now_ms;
                    let keep = |sid: u64| self.retained_from(sid, d.tier, now);
                    let out = match d.tier {
                        StoredTier::Raw => {
                            self.merge_segments::<Sample>(d.tier, &[d.segment], self.level_of(d.segment), &keep)?
                        }
                        _ => self.merge_segments::<Bucket>(d.tier, &[d.segment], self.level_of(d.segment), &keep)?,
                    };
                    d.items_removed = Some(out.items_in - out.items_out);
                    r.segments_trimmed += 1;
                    self.removals.count(&d, out.bytes_in.saturating_sub(out.bytes_out));
                    log_drop(&self.dir, &d);
                    r.removed.push(d);
                    continue;
                }
            }
            self.removals.count(&d, d.bytes);
            log_drop(&self.dir, &d);
            r.removed.push(d);
        }
        Ok(())
    }

    fn level_of(&self, id: u64) -> u8 {
        self.snapshot().segments().find(|s| s.info().id == id).map_or(0, |s| s.level)
    }

    /// Removes segments from the manifest in one publication, then unlinks them.
    fn drop_segments(&self, ids: &[u64]) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let _one = self.compact_lock.lock();
        let snap = self.snapshot();
        let gone: Vec<Arc<LiveSegment>> = snap.segments().filter(|s| ids.contains(&s.info().id)).cloned().collect();
        let gone_ids: Vec<u64> = gone.iter().map(|s| s.info().id).collect();
        self.publish(|m| m.segments.retain(|r| !gone_ids.contains(&r.id)))?;
        {
            let mut st = self.state.write();
            *st = Arc::new(st.with_segments(&gone_ids, Vec::new()));
        }
        self.unlink_segments(&gone);
        Ok(gone.len())
    }
}

pub(crate) fn log_drop(dir: &std::path::Path, d: &SegmentDrop) {
    let what = if d.tier.is_rollup() { "buckets" } else { "samples" };
    log::info!(
        "{}: retention {} segment {:016x} ({} tier, {} .. {}): removed {} of {} {what}, {} bytes: {}",
        dir.display(),
        d.kind.as_str(),
        d.segment,
        d.tier,
        rfc3339(d.min_t),
        rfc3339(d.max_t),
        d.items_removed.unwrap_or(0),
        d.items,
        d.bytes,
        d.reason
    );
}
