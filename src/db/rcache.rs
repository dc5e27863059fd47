//! The result cache: the final part of a bucketed answer read in pieces (an
//! unaligned range answered by a tier, as dashboards send), kept whole per
//! query, so a refresh whose range slid forward evaluates only the edges around
//! it and splices (`query::Parts`).
//!
//! The part kept is the stretch `[from, to)` of whole step buckets inside the
//! range where, for every selected series, the coarsest level's whole buckets
//! answer (at or past its floor) and nothing is fresher than that level
//! (before its `fresh_from` cut). There a series' pieces are that level's stored
//! buckets and nothing else, so the groups' step buckets depend only on those
//! buckets. A refresh uses the part when:
//! - the segments of every tier overlapping `[from, to)` are the very ones it
//!   was read from (ids and ranks; a seal of late data, a merge, a delete or a
//!   retention rewrite changes them);
//! - every series it selects now still has its floor at or below the refresh's
//!   first whole step and its cut at or past `to` (retention moving up, a late
//!   write into a head, a segment marked not rolled up all move these);
//! - the tier and levels chosen are the same, and the refresh's range covers
//!   `[its first whole step, to)` (steps before it are dropped from the part).
//!
//! Otherwise the entry is replaced by a fresh evaluation (an invalidation when
//! the data changed). Entries live in the block cache's LRU and byte budget.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::qcache::{Key, RESULT_TIER};
use super::query::levels_for;
use super::{Inner, State};
use crate::error::Result;
use crate::query::{
    evaluate_pieces, finish_parts, group_parts, group_parts_keeping, interior, Parts, Query, QueryResult, Tier,
};

/// The final part of one query's answer.
pub(crate) struct Final {
    /// The query as keyed, which tells two queries whose key hashes collide apart.
    text: String,
    tier: Tier,
    levels: Vec<(usize, i64)>,
    /// The stretch held, on step bounds.
    from: i64,
    to: i64,
    /// The segments (tier, id, rank) overlapping the stretch when it was read.
    ident: Vec<(usize, u64, u64)>,
    parts: Parts,
}

impl Final {
    /// Bytes held, roughly: what the cache charges for it.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Final>()
            + self.text.len()
            + self.levels.len() * 16
            + self.ident.len() * std::mem::size_of::<(usize, u64, u64)>()
            + self.parts.bytes()
    }
}

/// The segments of every tier of `snap` whose time range meets `[from, to)`.
fn ident(snap: &State, from: i64, to: i64) -> Vec<(usize, u64, u64)> {
    let mut out = Vec::new();
    for (t, segs) in snap.tiers.iter().enumerate() {
        for s in segs.iter().filter(|s| s.info().min_t < to && s.info().max_t >= from) {
            out.push((t, s.info().id, s.rank));
        }
    }
    out
}

impl Inner {
    /// `q` over a range read in pieces from `tier`: through the result cache
    /// when it is on and the query has a step, else evaluated whole.
    pub(super) fn query_pieces(
        &self,
        q: &Query,
        snap: &State,
        now: i64,
        tier: Tier,
        avail: [Option<i64>; 3],
        cols: u16,
    ) -> Result<QueryResult> {
        let levels = levels_for(tier, avail);
        let range = q.time_range();
        let cache = &self.query_cache;
        let whole = |r: &[(i64, i64)]| self.read_pieces(q, snap, now, avail, &levels, cols, r);
        let Some(step) = q.step_ms().filter(|_| cache.enabled()) else {
            return evaluate_pieces(q, whole(&[(range.start, range.end)])?.series, tier);
        };
        // Everything but the range, the aggregation and top-k: those apply after the parts.
        let text = format!("{:?}|{:?}|{step}|{:?}|{cols}", q.matchers(), q.grouping(), q.requested_tier());
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        let key = Key { id: h.finish(), tier: RESULT_TIER, cols, start: 0 };
        // The whole steps inside the range.
        let steps = interior(&range, step);
        if let (Some(f), Some(steps)) = (cache.get_final(key), steps.as_ref()) {
            let c0 = steps.start;
            if f.text == text && f.tier == tier && f.levels == levels && f.from <= c0 && c0 < f.to && f.to <= steps.end
            {
                if f.ident == ident(snap, f.from, f.to) {
                    let read = whole(&[(range.start, c0), (f.to, range.end)])?;
                    if read.floor <= c0 && read.cut >= f.to {
                        cache.count_final(true);
                        let edges = group_parts(q, read.series)?;
                        return finish_parts(q, edges.splice(f.parts.from(c0), c0), tier);
                    }
                }
                cache.invalidate(key);
            }
        }
        cache.count_final(false);
        let read = whole(&[(range.start, range.end)])?;
        let keep = interior(&(range.start.max(read.floor)..range.end.min(read.cut)), step);
        // One fold answers the query and gives the part to keep.
        let (all, kept) = group_parts_keeping(q, read.series, keep.clone())?;
        if let (Some(k), Some(parts)) = (keep, kept) {
            let ident = ident(snap, k.start, k.end);
            cache.put_final(key, Arc::new(Final { text, tier, levels, from: k.start, to: k.end, ident, parts }));
        }
        finish_parts(q, all, tier)
    }
}
