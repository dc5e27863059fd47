//! The retention plan: which segments retention drops or trims, and why. Pure helpers
//! over segment metadata, and `Inner::retention_plan`, which applies them to a Db's
//! segments; the dry run (`Db::retention_plan`) and the pass (`apply.rs`) both use it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::{human_duration, oldest_retained, TierDurations, PARTIAL_EXPIRY_PERCENT};
use crate::compact::SegmentMeta;
use crate::db::{now_ms, Inner};
use crate::text::time::format_rfc3339 as rfc3339;
use crate::tier::StoredTier;

/// Segments whose newest sample is older than the longest retention of their tier: no
/// series keeps anything in them, so they can be deleted whole. Pass
/// [`RetentionPolicy::longest_all`]. Oldest first.
pub fn expired_segments(metas: &[SegmentMeta], longest: &TierDurations, now_ms: i64) -> Vec<u64> {
    let mut out: Vec<&SegmentMeta> =
        metas.iter().filter(|s| s.max_t < oldest_retained(now_ms, longest.get(s.tier))).collect();
    out.sort_by_key(|s| (s.max_t, s.id));
    out.into_iter().map(|s| s.id).collect()
}

/// Segments that straddle the retention boundary of their tier with more than
/// [`PARTIAL_EXPIRY_PERCENT`] of their time span expired: worth rewriting at the next
/// compaction. With [`RetentionPolicy::longest_all`] the expired part is expired for every
/// series; the engine may pass shorter durations to also catch data expired by rules.
/// Ordered by `min_t`.
pub fn partially_expired(metas: &[SegmentMeta], retention: &TierDurations, now_ms: i64) -> Vec<u64> {
    let mut out: Vec<&SegmentMeta> = metas
        .iter()
        .filter(|s| {
            let cut = oldest_retained(now_ms, retention.get(s.tier));
            // Inclusive ms counts, in i128 so that extreme timestamps cannot overflow.
            let expired = cut as i128 - s.min_t as i128;
            let span = s.max_t as i128 - s.min_t as i128 + 1;
            s.min_t < cut && cut <= s.max_t && expired * 100 > i128::from(PARTIAL_EXPIRY_PERCENT) * span
        })
        .collect();
    out.sort_by_key(|s| (s.min_t, s.id));
    out.into_iter().map(|s| s.id).collect()
}

/// Segments to delete, in order, until segments plus `other_bytes` (WAL and head) fit in
/// `cap`: oldest `max_t` first, the finer tier first on ties (the coarser one summarizes
/// it). The newest segment of each tier is never returned, so every tier keeps its latest
/// data; the result may therefore leave the total above the cap. The engine should leave
/// out of `metas` any segment not yet downsampled or in use by a running compaction.
pub fn over_disk_cap(metas: &[SegmentMeta], other_bytes: u64, cap: u64) -> Vec<u64> {
    let mut total: u128 = other_bytes as u128 + metas.iter().map(|s| s.bytes as u128).sum::<u128>();
    if total <= cap as u128 {
        return Vec::new();
    }
    let mut newest: BTreeMap<StoredTier, &SegmentMeta> = BTreeMap::new();
    for s in metas {
        let n = newest.entry(s.tier).or_insert(s);
        if (s.max_t, s.rank, s.id) > (n.max_t, n.rank, n.id) {
            *n = s;
        }
    }
    let mut order: Vec<&SegmentMeta> = metas.iter().filter(|s| newest[&s.tier].id != s.id).collect();
    order.sort_by_key(|s| (s.max_t, s.tier, s.rank, s.id));
    let mut out = Vec::new();
    for s in order {
        if total <= cap as u128 {
            break;
        }
        total -= s.bytes as u128;
        out.push(s.id);
    }
    out
}

/// Why retention removes (part of) a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    /// Every series' retention of its tier has passed: the segment goes whole.
    Expired,
    /// It straddles the boundary: rewritten without the part past retention.
    Trimmed,
    /// Dropped whole, oldest first, to fit the disk cap.
    OverDiskCap,
}

impl DropKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DropKind::Expired => "expired",
            DropKind::Trimmed => "trimmed",
            DropKind::OverDiskCap => "over disk cap",
        }
    }
}

/// One segment that retention removes, whole or in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDrop {
    pub segment: u64,
    /// 0 raw, 1 five-minute, 2 hourly.
    pub tier: StoredTier,
    pub kind: DropKind,
    /// The segment's time span and size before the change.
    pub min_t: i64,
    pub max_t: i64,
    /// Samples (raw) or buckets (rollup tiers) in the segment.
    pub items: u64,
    pub bytes: u64,
    /// Items actually removed: all of them when dropped whole; for a trim, known once
    /// it has run (`None` in a plan).
    pub items_removed: Option<u64>,
    /// In words, e.g. "raw data past 7d (before 2026-11-25T00:00:00Z)".
    pub reason: String,
}

/// What a retention pass removes, computed once and then either shown (a dry run) or
/// carried out, so that the preview is exactly what happens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    pub now_ms: i64,
    /// Oldest timestamp any series keeps per tier (raw, 5m, 1h); `None` for forever.
    pub cutoffs: [Option<i64>; 3],
    /// In the order they are carried out: expired, trimmed, then over the disk cap.
    pub drops: Vec<SegmentDrop>,
    /// Bytes counted against the disk cap besides segments (WAL and heads).
    pub other_bytes: u64,
}

impl RetentionPlan {
    pub fn is_empty(&self) -> bool {
        self.drops.is_empty()
    }
}

impl Inner {
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
        for t in StoredTier::ALL {
            let keep = longest.get(t);
            plan.cutoffs[t.index()] = (keep != TierDurations::FOREVER).then(|| oldest_retained(now, keep));
        }
        let meta = |id: u64| metas.iter().find(|m| m.id == id);
        let why = |m: &SegmentMeta| {
            let cut = oldest_retained(now, longest.get(m.tier));
            format!("{} data past {} (before {})", m.tier, human_duration(longest.get(m.tier)), rfc3339(cut))
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
                left.partition(|m| m.tier == StoredTier::Hour || rolled.contains(&m.id));
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
                // Every series of a segment is in the index (see `Inner::series_labels`).
                let Some(labels) = self.index.labels(e.id) else { continue };
                let (d, rule) = policy.effective(&labels);
                let cut = oldest_retained(now, d.get(info.tier));
                let mut n = 0u64;
                for c in e.chunks.iter().filter(|c| c.min_t < cut) {
                    let m = c;
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
            let tier = info.tier;
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
}

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::retention::{TIER_1H, TIER_5M, TIER_RAW};

    const D: i64 = 86_400_000;

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * 86_400)
    }

    fn seg(id: u64, tier: StoredTier, min_t: i64, max_t: i64, bytes: u64) -> SegmentMeta {
        SegmentMeta { id, rank: id, tier, level: 0, min_t, max_t, samples: 1, bytes }
    }

    #[test]
    fn expired_and_partially_expired_segments() {
        let longest = TierDurations::new(days(7), days(30), TierDurations::FOREVER);
        let now = 100 * D;
        let metas = [
            seg(1, TIER_RAW, 80 * D, 92 * D, 1),          // max_t older than now - 7d
            seg(2, TIER_RAW, 92 * D, 93 * D, 1),          // straddles: 1 of 1 day expired
            seg(3, TIER_RAW, 92 * D + D / 20, 94 * D, 1), // straddles: 0.95 d of 1.95 d expired
            seg(4, TIER_5M, 60 * D, 69 * D, 1),           // 5m keeps 30 d: expired
            seg(5, TIER_1H, 0, D, 1),                     // 1h forever
            seg(6, TIER_RAW, 93 * D, 99 * D, 1),          // fully retained
        ];
        assert_eq!(expired_segments(&metas, &longest, now), vec![4, 1], "oldest max_t first");
        // Boundary at 93 d. Segment 2: [92 d, 93 d] has 1 d of 1 d + 1 ms expired. Segment 3:
        // 0.95 d of 1.95 d expired. Segment 6 starts exactly at the boundary: retained.
        assert_eq!(partially_expired(&metas, &longest, now), vec![2, 3]);
        let just = [seg(8, TIER_RAW, 93 * D - D / 10, 93 * D + 9 * D / 10 - 1, 1)]; // exactly 10 %
        assert!(partially_expired(&just, &longest, now).is_empty());
        let over = [seg(9, TIER_RAW, 93 * D - D / 10 - 1, 93 * D + 9 * D / 10 - 1, 1)];
        assert_eq!(partially_expired(&over, &longest, now), vec![9]);
    }

    #[test]
    fn disk_cap_drops_oldest_first_and_keeps_each_tiers_newest() {
        let metas = [
            seg(1, TIER_RAW, 10, 20, 100),
            seg(2, TIER_RAW, 20, 30, 100),
            seg(3, TIER_1H, 0, 20, 10),
            seg(4, TIER_5M, 0, 20, 50),
            seg(5, TIER_5M, 20, 25, 50),
        ];
        assert!(over_disk_cap(&metas, 0, 310).is_empty());
        // Oldest max_t first; at max_t 20 the finer tier first; 3 is the newest 1h segment.
        assert_eq!(over_disk_cap(&metas, 0, 300), vec![1]);
        assert_eq!(over_disk_cap(&metas, 0, 160), vec![1, 4]);
        // Never the newest of a tier, even when the cap cannot be met.
        assert_eq!(over_disk_cap(&metas, 1000, 0), vec![1, 4]);
        assert_eq!(over_disk_cap(&[seg(1, TIER_RAW, 0, 1, u64::MAX)], u64::MAX, 0), Vec::<u64>::new());
    }
}
