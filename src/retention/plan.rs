//! Which segments retention drops or trims: pure helpers over segment metadata, no I/O.

use std::collections::BTreeMap;

use super::{oldest_retained, TierDurations, PARTIAL_EXPIRY_PERCENT};
use crate::compact::SegmentMeta;

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
    let mut newest: BTreeMap<u8, &SegmentMeta> = BTreeMap::new();
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
    pub tier: u8,
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
