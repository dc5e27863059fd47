//! Maintenance: downsampling, compaction and retention, in that order.
//!
//! Downsampling runs first so that compaction and expiry only ever touch data that
//! is already in the next tier. Retention works at two grains: whole segments past
//! every rule's retention are dropped from the manifest; segments that straddle
//! the boundary are rewritten without the expired part.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{now_ms, Inner, LiveSegment};
use crate::compact::{plan_compactions, SegmentMeta};
use crate::error::Result;
use crate::retention::{
    expired_segments, human_duration, oldest_retained, over_disk_cap, partially_expired, DropKind, RetentionPlan,
    SegmentDrop, TierDurations,
};
use crate::rollup::Bucket;
use crate::sample::Sample;
use crate::text::time::format_rfc3339 as rfc3339;

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
    /// Every segment retention removed or trimmed, with what it held and why.
    pub removed: Vec<SegmentDrop>,
    /// Items the merges did not write back: duplicates resolved by write order, and
    /// data past retention.
    pub merge_items_dropped: u64,
}

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

    fn count(&self, d: &SegmentDrop, bytes_freed: u64) {
        self.segments.fetch_add(1, Ordering::Relaxed);
        let n = d.items_removed.unwrap_or(0);
        match d.tier {
            0 => self.samples.fetch_add(n, Ordering::Relaxed),
            _ => self.buckets.fetch_add(n, Ordering::Relaxed),
        };
        self.bytes.fetch_add(bytes_freed, Ordering::Relaxed);
    }
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
            r.merge_items_dropped += out.items_in - out.items_out;
            r.segments_merged += out.inputs;
            r.items_in += out.items_in;
            r.items_out += out.items_out;
        }
        self.apply_retention_into(&mut r)?;
        r.bytes_after = self.disk_bytes();
        Ok(r)
    }

    /// What a retention pass would remove now: expired segments, straddling ones to trim,
    /// then the oldest to fit the disk cap. Both the dry run and the pass use this.
    pub(crate) fn retention_plan(&self) -> RetentionPlan {
        let now = now_ms();
        let (longest, cap) = {
            let p = self.retention.read();
            (p.longest_all(), p.max_disk_bytes())
        };
        let metas = self.segment_metas();
        let mut plan = RetentionPlan { now_ms: now, ..Default::default() };
        for t in 0..3u8 {
            let keep = longest.get(t);
            plan.cutoffs[usize::from(t)] = (keep != TierDurations::FOREVER).then(|| oldest_retained(now, keep));
        }
        let meta = |id: u64| metas.iter().find(|m| m.id == id);
        let why = |m: &SegmentMeta| {
            let cut = oldest_retained(now, longest.get(m.tier));
            format!(
                "{} data past {} (before {})",
                TIER_NAMES[usize::from(m.tier.min(2))],
                human_duration(longest.get(m.tier)),
                rfc3339(cut)
            )
        };
        let expired = expired_segments(&metas, &longest, now);
        for m in expired.iter().filter_map(|&id| meta(id)) {
            plan.drops.push(drop_of(m, DropKind::Expired, Some(m.samples), why(m)));
        }
        for m in partially_expired(&metas, &longest, now).into_iter().filter_map(meta) {
            plan.drops.push(drop_of(m, DropKind::Trimmed, None, format!("partly {}", why(m))));
        }
        self.plan_rule_expiry(&mut plan, &expired);
        let snap = self.snapshot();
        plan.other_bytes =
            self.wal_bytes() + snap.frozen.iter().chain([&snap.head]).map(|h| h.bytes() as u64).sum::<u64>();
        if let Some(cap) = cap {
            // Segments not yet rolled up are left out so no data leaves a tier before
            // reaching the next; what stays counts against the cap with the WAL and heads.
            let rolled: std::collections::HashSet<u64> =
                snap.segments().filter(|s| s.rolled.load(Ordering::Acquire)).map(|s| s.info().id).collect();
            let left = metas.iter().filter(|m| !expired.contains(&m.id));
            let (candidates, fixed): (Vec<SegmentMeta>, Vec<SegmentMeta>) =
                left.partition(|m| m.tier == 2 || rolled.contains(&m.id));
            let fixed: u64 = fixed.iter().map(|m| m.bytes).sum();
            for id in over_disk_cap(&candidates, plan.other_bytes + fixed, cap) {
                if let Some(m) = meta(id) {
                    plan.drops.retain(|d| d.segment != id);
                    plan.drops.push(drop_of(
                        m,
                        DropKind::OverDiskCap,
                        Some(m.samples),
                        format!("over the disk cap of {cap} bytes"),
                    ));
                }
            }
        }
        plan
    }

    /// Data past a rule shorter than the longest retention: per series, from chunk
    /// metadata. A segment whose every item has expired goes whole; one with more than
    /// `PARTIAL_EXPIRY_PERCENT` of its items expired is trimmed. Reads hide the rest.
    fn plan_rule_expiry(&self, plan: &mut RetentionPlan, expired: &[u64]) {
        let policy = self.retention.read().clone();
        if policy.rules().is_empty() {
            return;
        }
        let now = plan.now_ms;
        for seg in self.snapshot().segments() {
            let info = seg.info();
            if expired.contains(&info.id) || plan.drops.iter().any(|d| d.segment == info.id) || info.samples == 0 {
                continue;
            }
            let (mut gone, mut rules) = (0u64, Vec::<String>::new());
            for e in seg.series() {
                let (d, rule) = policy.effective(&e.labels);
                let cut = oldest_retained(now, d.get(info.tier));
                let mut n = 0u64;
                for c in e.chunks.iter().filter(|c| c.meta.min_t < cut) {
                    let m = &c.meta;
                    n += if m.max_t < cut {
                        u64::from(m.count)
                    } else {
                        // Straddling: assume evenly spaced items.
                        let span = (m.max_t as i128 - m.min_t as i128 + 1).max(1);
                        (i128::from(m.count) * (cut as i128 - m.min_t as i128) / span) as u64
                    };
                }
                if n > 0 {
                    gone += n;
                    if let Some(r) = rule.filter(|r| !rules.iter().any(|x| x == r)) {
                        rules.push(r.to_string());
                    }
                }
            }
            let names =
                if rules.is_empty() { "the defaults".to_string() } else { format!("rule {}", rules.join(", rule ")) };
            let meta = SegmentMeta {
                id: info.id,
                rank: seg.rank,
                tier: info.tier,
                level: seg.level,
                min_t: info.min_t,
                max_t: info.max_t,
                samples: info.samples,
                bytes: info.file_size,
            };
            let tier = TIER_NAMES[usize::from(info.tier.min(2))];
            if gone >= info.samples {
                plan.drops.push(drop_of(
                    &meta,
                    DropKind::Expired,
                    Some(info.samples),
                    format!("{tier} data past {names}"),
                ));
            } else if gone * 100 > u64::from(crate::retention::PARTIAL_EXPIRY_PERCENT) * info.samples {
                plan.drops.push(drop_of(&meta, DropKind::Trimmed, None, format!("partly {tier} data past {names}")));
            }
        }
    }

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
                        0 => self.merge_segments::<Sample>(d.tier, &[d.segment], self.level_of(d.segment), &keep)?,
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

const TIER_NAMES: [&str; 3] = ["raw", "5m", "1h"];

fn drop_of(m: &SegmentMeta, kind: DropKind, items_removed: Option<u64>, reason: String) -> SegmentDrop {
    SegmentDrop {
        segment: m.id,
        tier: m.tier,
        kind,
        min_t: m.min_t,
        max_t: m.max_t,
        items: m.samples,
        bytes: m.bytes,
        items_removed,
        reason,
    }
}

fn log_drop(dir: &std::path::Path, d: &SegmentDrop) {
    let what = if d.tier == 0 { "samples" } else { "buckets" };
    log::info!(
        "{}: retention {} segment {:016x} ({} tier, {} .. {}): removed {} of {} {what}, {} bytes: {}",
        dir.display(),
        d.kind.as_str(),
        d.segment,
        TIER_NAMES[usize::from(d.tier.min(2))],
        rfc3339(d.min_t),
        rfc3339(d.max_t),
        d.items_removed.unwrap_or(0),
        d.items,
        d.bytes,
        d.reason
    );
}
