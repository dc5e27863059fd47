//! Maintenance: downsampling, compaction and retention, in that order.
//!
//! Downsampling runs first so that compaction and expiry only ever touch data that
//! is already in the next tier. Retention works at two grains: whole segments past
//! every rule's retention are dropped from the manifest; segments that straddle
//! the boundary are rewritten without the expired part.

use std::sync::Arc;

use super::{now_ms, Inner, LiveSegment};
use crate::compact::{plan_compactions, SegmentMeta};
use crate::error::Result;
use crate::retention::{expired_segments, over_disk_cap, partially_expired};
use crate::rollup::Bucket;
use crate::sample::Sample;

/// What a maintenance pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Rollup segments written by the downsampler.
    pub rollups_written: usize,
    /// Merges run, and the segments they consumed.
    pub merges: usize,
    pub segments_merged: usize,
    /// Items (samples or buckets) read by merges and written back.
    pub items_in: u64,
    pub items_out: u64,
    /// Segments dropped whole because every rule's retention had passed.
    pub segments_expired: usize,
    /// Segments rewritten without their expired part.
    pub segments_trimmed: usize,
    /// Segments dropped to respect the disk cap.
    pub segments_over_cap: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Inner {
    /// Runs a full pass: downsample, merge per the planner, then apply retention.
    pub(crate) fn maintain(&self) -> Result<CompactionReport> {
        let mut r = CompactionReport { bytes_before: self.disk_bytes(), ..Default::default() };
        r.rollups_written = self.downsample()?;
        for plan in plan_compactions(&self.segment_metas(), &self.opts.compaction) {
            let keep = |id: u64| self.retained_from(id, plan.tier, now_ms());
            let out = match plan.tier {
                0 => self.merge_segments::<Sample>(plan.tier, &plan.inputs, plan.output_level, &keep)?,
                _ => self.merge_segments::<Bucket>(plan.tier, &plan.inputs, plan.output_level, &keep)?,
            };
            r.merges += 1;
            r.segments_merged += out.inputs;
            r.items_in += out.items_in;
            r.items_out += out.items_out;
        }
        self.apply_retention_into(&mut r)?;
        r.bytes_after = self.disk_bytes();
        Ok(r)
    }

    /// Drops and trims expired segments, then enforces the disk cap.
    pub(crate) fn apply_retention_into(&self, r: &mut CompactionReport) -> Result<()> {
        let now = now_ms();
        let (longest, cap) = {
            let p = self.retention.read();
            (p.longest_all(), p.max_disk_bytes())
        };
        let metas = self.segment_metas();
        let expired = expired_segments(&metas, &longest, now);
        r.segments_expired += self.drop_segments(&expired)?;
        for id in partially_expired(&self.segment_metas(), &longest, now) {
            let Some(m) = self.segment_metas().into_iter().find(|m| m.id == id) else { continue };
            let keep = |sid: u64| self.retained_from(sid, m.tier, now);
            match m.tier {
                0 => self.merge_segments::<Sample>(m.tier, &[id], m.level, &keep)?,
                _ => self.merge_segments::<Bucket>(m.tier, &[id], m.level, &keep)?,
            };
            r.segments_trimmed += 1;
        }
        if let Some(cap) = cap {
            // The WAL and the heads count against the cap too; segments not yet rolled
            // up are left out so no data leaves a tier before reaching the next.
            let snap = self.snapshot();
            let other =
                self.wal_bytes() + snap.frozen.iter().chain([&snap.head]).map(|h| h.bytes() as u64).sum::<u64>();
            let candidates: Vec<SegmentMeta> =
                self.segment_metas().into_iter().filter(|m| m.tier == 2 || self.is_rolled(m.id)).collect();
            let all_bytes: u64 = self.segment_metas().iter().map(|m| m.bytes).sum();
            let listed: u64 = candidates.iter().map(|m| m.bytes).sum();
            let drop = over_disk_cap(&candidates, other + all_bytes - listed, cap);
            r.segments_over_cap += self.drop_segments(&drop)?;
        }
        Ok(())
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

    fn is_rolled(&self, id: u64) -> bool {
        self.snapshot().segments().any(|s| s.info().id == id && s.rolled.load(std::sync::atomic::Ordering::Acquire))
    }

    pub(crate) fn segment_metas(&self) -> Vec<SegmentMeta> {
        self.snapshot()
            .segments()
            .map(|s| {
                let i = s.info();
                SegmentMeta {
                    id: i.id,
                    rank: s.rank,
                    tier: i.tier,
                    level: s.level,
                    min_t: i.min_t,
                    max_t: i.max_t,
                    samples: i.samples,
                    bytes: i.file_size,
                }
            })
            .collect()
    }

    pub(crate) fn disk_bytes(&self) -> u64 {
        self.snapshot().segments().map(|s| s.info().file_size).sum::<u64>() + self.wal_bytes()
    }

    pub(crate) fn wal_bytes(&self) -> u64 {
        crate::wal::list_segments(&self.wal_dir())
            .map(|v| v.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }
}
