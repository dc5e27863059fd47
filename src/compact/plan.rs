//! The compaction planner: a pure function from segment metadata to merge plans.
//!
//! Each tier is planned on its own; segments of different tiers never merge.
//!
//! **Windowed pass.** For each level L = 1..=K (K = number of configured windows),
//! lowest first, the tier's unclaimed segments are grouped by the aligned level-L window
//! that contains their whole `[min_t, max_t]` (a segment that straddles a boundary is in
//! no level-L group). The *members* of a group are the segments below level L; at the top
//! level K every fitting segment is a member. A group yields a merge of:
//! 1. every fitting segment that overlaps another fitting segment: out-of-order data is
//!    resolved at the lowest level whose window holds both sides, open window or not;
//! 2. all members, once the window is *closed*: the tier's newest data (its largest
//!    `max_t`) lies past the window's end. Waiting for closure means each sample is
//!    rewritten about once per level instead of on every new head (merging any two
//!    segments as soon as they share a window would cascade a new head up every level);
//!    a tier whose frontier jumps far ahead (a clock error) just compacts eagerly;
//! 3. all small segments (`small_segment_bytes`) at or below level L, when there are two.
//!
//! and needs at least two inputs. A lone segment is never rewritten by itself; it joins
//! a bigger group at the next level (at the top level, closed windows converge to one
//! segment each). The output's level is L, or the highest input level if that is above.
//!
//! **LWW closure (the invariant every plan keeps).** The output carries the highest rank
//! of its inputs M. So no other segment of the tier whose rank lies in
//! `[min rank, max rank]` of M may overlap the span of M: it would be shadowed by older
//! data. Such *offenders* are added to M when they fit the group's window and are not in
//! another plan; otherwise the plan is dropped (a later round retries it). This alone keeps
//! every answer the same however many plans of a round have run. Plans of one round also
//! never interleave (two plans with overlapping spans have disjoint rank ranges), so each
//! plan still meets the invariant against the manifest left by any of the others: an
//! executor may run them in any order, or re-check each against the live manifest.
//!
//! **Segments that fit no window** (a backfilled head spanning weeks, or one straddling a
//! top-level boundary) are not forced into a window; they stay as they are unless they
//! overlap something. **Overlap pass:** when the windowed pass plans nothing for a tier,
//! each segment (by start time) that overlaps a later-starting unclaimed one is merged with
//! the first such, plus their LWW closure, without window bound. The output lands in the smallest window that holds it, else it gets the
//! top level and its own span as window. Hence, when planning yields nothing (a fixpoint),
//! no two segments of a tier overlap, at level 0 or any other.
//!
//! **Termination.** Every plan has at least two inputs and one output, so each round
//! removes segments and repeated planning reaches a fixpoint within n rounds.

use std::collections::BTreeMap;

use super::{CompactionConfig, SegmentMeta};
use crate::tier::StoredTier;

/// One merge: replace `inputs` with one segment of `output_level` and rank `output_rank`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub tier: StoredTier,
    /// Input segment ids, lowest rank (oldest write) first: on equal timestamps a later
    /// input wins.
    pub inputs: Vec<u64>,
    pub output_level: u8,
    /// Inclusive time bounds that hold every input: the aligned window the group was formed
    /// in, or for an overlap merge that fits no window, the inputs' span.
    pub window: (i64, i64),
    /// The rank the output must carry: the highest rank among the inputs. Never give the
    /// output a fresh, higher rank: it would shadow newer overlapping segments.
    pub output_rank: u64,
}

/// Plans merges for `metas` (any order; ids unique). Plans are disjoint, deterministic,
/// and ordered oldest window first. See the module docs for the rules.
pub fn plan_compactions(metas: &[SegmentMeta], cfg: &CompactionConfig) -> Vec<Plan> {
    let windows = cfg.window_sizes_ms();
    let mut by_tier: BTreeMap<StoredTier, Vec<SegmentMeta>> = BTreeMap::new();
    for m in metas {
        // Tolerate a reversed range rather than reason about it everywhere.
        let (min_t, max_t) = if m.min_t <= m.max_t { (m.min_t, m.max_t) } else { (m.max_t, m.min_t) };
        by_tier.entry(m.tier).or_default().push(SegmentMeta { min_t, max_t, ..*m });
    }
    let mut plans = Vec::new();
    for (tier, segs) in by_tier {
        let mut p = TierPlanner::new(tier, segs, &windows, cfg);
        p.windowed_pass();
        if p.plans.is_empty() {
            p.overlap_pass();
        }
        plans.append(&mut p.plans);
    }
    plans.sort_by(|a, b| (a.window, a.tier, &a.inputs).cmp(&(b.window, b.tier, &b.inputs)));
    plans
}

/// The aligned window of size `size` holding all of `[lo, hi]`, as its index.
fn window_index(size: i64, lo: i64, hi: i64) -> Option<i64> {
    if size <= 0 {
        return None;
    }
    let k = lo.div_euclid(size);
    (k == hi.div_euclid(size)).then_some(k)
}

/// Inclusive bounds of window `k` of size `size`, clamped to the i64 range.
fn window_bounds(size: i64, k: i64) -> (i64, i64) {
    let clamp = |v: i128| v.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    let start = k as i128 * size as i128;
    (clamp(start), clamp(start + size as i128 - 1))
}

struct TierPlanner<'a> {
    tier: StoredTier,
    /// Sorted by (min_t, max_t, rank, id), which the overlap sweeps rely on.
    segs: Vec<SegmentMeta>,
    claimed: Vec<bool>,
    windows: &'a [i64],
    max_inputs: usize,
    small_bytes: u64,
    /// Span and rank range of every plan accepted so far.
    accepted: Vec<((i64, i64), (u64, u64))>,
    plans: Vec<Plan>,
}

impl<'a> TierPlanner<'a> {
    fn new(tier: StoredTier, mut segs: Vec<SegmentMeta>, windows: &'a [i64], cfg: &CompactionConfig) -> Self {
        segs.sort_by_key(|s| (s.min_t, s.max_t, s.rank, s.id));
        TierPlanner {
            tier,
            claimed: vec![false; segs.len()],
            segs,
            windows,
            max_inputs: cfg.max_segments_per_merge.max(2),
            small_bytes: cfg.small_segment_bytes,
            accepted: Vec::new(),
            plans: Vec::new(),
        }
    }

    fn windowed_pass(&mut self) {
        let Some(frontier) = self.segs.iter().map(|s| s.max_t).max() else { return };
        let top = self.windows.len();
        for (li, &size) in self.windows.iter().enumerate() {
            let level = (li + 1) as u8;
            let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (i, s) in self.segs.iter().enumerate() {
                if let (false, Some(k)) = (self.claimed[i], window_index(size, s.min_t, s.max_t)) {
                    groups.entry(k).or_default().push(i);
                }
            }
            // Groups of one level are disjoint, and a plan only claims segments of its own
            // window, so building all groups before accepting any is sound.
            for (k, fitting) in groups {
                let window = window_bounds(size, k);
                let closed = frontier > window.1;
                let pick = self.select(&fitting, level, li + 1 == top, closed);
                if pick.len() < 2 {
                    continue;
                }
                if let Some(m) = self.lww_closure(pick, Some(window)) {
                    self.accept(m, level, window);
                }
            }
        }
    }

    /// The natural merge group of one window (rules 1-3 of the module docs).
    fn select(&self, fitting: &[usize], level: u8, top: bool, closed: bool) -> Vec<usize> {
        let mut pick = overlapping(&self.segs, fitting);
        let member = |i: usize| top || self.segs[i].level < level;
        let small: Vec<bool> = fitting
            .iter()
            .map(|&i| (member(i) || self.segs[i].level == level) && self.segs[i].bytes < self.small_bytes)
            .collect();
        let merge_small = small.iter().filter(|&&s| s).count() >= 2;
        for (p, &i) in fitting.iter().enumerate() {
            pick[p] |= (closed && member(i)) || (merge_small && small[p]);
        }
        fitting.iter().zip(pick).filter(|(_, p)| *p).map(|(&i, _)| i).collect()
    }

    fn overlap_pass(&mut self) {
        let n = self.segs.len();
        for i in 0..n {
            if self.claimed[i] {
                continue;
            }
            // Sorted by min_t: the segments overlapping i from the right come next.
            let hi = self.segs[i].max_t;
            let partner = (i + 1..n).take_while(|&j| self.segs[j].min_t <= hi).find(|&j| !self.claimed[j]);
            let Some(j) = partner else { continue };
            let Some(m) = self.lww_closure(vec![i, j], None) else { continue };
            let (span, _) = self.bounds(&m);
            let home = self.windows.iter().enumerate().find_map(|(li, &size)| {
                window_index(size, span.0, span.1).map(|k| ((li + 1) as u8, window_bounds(size, k)))
            });
            let (level, window) = home.unwrap_or((self.windows.len() as u8, span));
            self.accept(m, level, window);
        }
    }

    /// Extends `pick` until no segment outside it, with a rank inside its rank range,
    /// overlaps its span. `None` when that needs a claimed segment or one outside `window`,
    /// or when the result would interleave with an accepted plan.
    fn lww_closure(&self, mut m: Vec<usize>, window: Option<(i64, i64)>) -> Option<Vec<usize>> {
        // Keeping the lowest ranks means the inputs cut off all rank above the plan,
        // so they can never be offenders of it.
        m.sort_by_key(|&i| (self.segs[i].rank, self.segs[i].id));
        m.truncate(self.max_inputs);
        let mut in_m = vec![false; self.segs.len()];
        m.iter().for_each(|&i| in_m[i] = true);
        loop {
            let (span, ranks) = self.bounds(&m);
            let before = m.len();
            for (i, s) in self.segs.iter().enumerate() {
                if in_m[i] || s.rank < ranks.0 || s.rank > ranks.1 || !s.overlaps(span.0, span.1) {
                    continue;
                }
                let in_window = window.is_none_or(|w| w.0 <= s.min_t && s.max_t <= w.1);
                if self.claimed[i] || !in_window {
                    return None;
                }
                in_m[i] = true;
                m.push(i);
            }
            if m.len() == before {
                let interleaves = self
                    .accepted
                    .iter()
                    .any(|&(sp, rr)| sp.0 <= span.1 && span.0 <= sp.1 && rr.0 <= ranks.1 && ranks.0 <= rr.1);
                return (!interleaves).then_some(m);
            }
        }
    }

    /// (time span, rank range) of a non-empty set of segments.
    fn bounds(&self, m: &[usize]) -> ((i64, i64), (u64, u64)) {
        let mut span = (i64::MAX, i64::MIN);
        let mut ranks = (u64::MAX, u64::MIN);
        for s in m.iter().map(|&i| &self.segs[i]) {
            span = (span.0.min(s.min_t), span.1.max(s.max_t));
            ranks = (ranks.0.min(s.rank), ranks.1.max(s.rank));
        }
        (span, ranks)
    }

    fn accept(&mut self, mut m: Vec<usize>, level: u8, window: (i64, i64)) {
        m.sort_by_key(|&i| (self.segs[i].rank, self.segs[i].id));
        let (span, ranks) = self.bounds(&m);
        let output_level = m.iter().map(|&i| self.segs[i].level).max().unwrap_or(0).max(level);
        m.iter().for_each(|&i| self.claimed[i] = true);
        self.accepted.push((span, ranks));
        self.plans.push(Plan {
            tier: self.tier,
            inputs: m.iter().map(|&i| self.segs[i].id).collect(),
            output_level,
            window,
            output_rank: ranks.1,
        });
    }
}

/// Marks, for each position of `idx` (indices into `segs`, sorted by min_t), whether that
/// segment overlaps another one of `idx`. Linear: a segment overlaps an earlier one iff its
/// start is at most the largest earlier end, and a later one iff the next start is at most
/// its end (the next one starts first among the later ones).
fn overlapping(segs: &[SegmentMeta], idx: &[usize]) -> Vec<bool> {
    let mut out = vec![false; idx.len()];
    let mut max_end: Option<i64> = None;
    for (p, &i) in idx.iter().enumerate() {
        let s = &segs[i];
        if max_end.is_some_and(|e| s.min_t <= e) {
            out[p] = true;
        }
        if idx.get(p + 1).is_some_and(|&j| segs[j].min_t <= s.max_t) {
            out[p] = true;
        }
        max_end = Some(max_end.map_or(s.max_t, |e| e.max(s.max_t)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;

    fn seg(id: u64, level: u8, min_t: i64, max_t: i64) -> SegmentMeta {
        SegmentMeta { id, rank: id, tier: StoredTier::Raw, level, min_t, max_t, samples: 1000, bytes: 10 << 20 }
    }

    fn plan(metas: &[SegmentMeta]) -> Vec<Plan> {
        plan_compactions(metas, &CompactionConfig::default())
    }

    /// A segment far in the future of everything else, so that the windows before it are closed.
    fn frontier(id: u64) -> SegmentMeta {
        seg(id, 0, 100 * D, 100 * D + H)
    }

    #[test]
    fn default_config_is_valid_and_bad_ones_are_named() {
        CompactionConfig::default().validate().unwrap();
        let mut c = CompactionConfig::default();
        c.level_windows[1] = std::time::Duration::from_secs(7 * 3600);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("level 2") && e.contains("multiple"), "{e}");
        let c = CompactionConfig { max_segments_per_merge: 1, ..CompactionConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("max_segments_per_merge"));
        let c = CompactionConfig { level_windows: vec![std::time::Duration::ZERO], ..CompactionConfig::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn closed_window_merges_its_heads_into_the_next_level() {
        let metas = [seg(1, 0, 0, 2 * H - 1), seg(2, 0, 2 * H, 4 * H - 1), frontier(3)];
        let plans = plan(&metas);
        assert_eq!(
            plans,
            vec![Plan {
                tier: StoredTier::Raw,
                inputs: vec![1, 2],
                output_level: 1,
                window: (0, 6 * H - 1),
                output_rank: 2
            }]
        );
    }

    #[test]
    fn open_window_waits_unless_overlapping_or_small() {
        // The frontier is inside the window: it is still being written.
        let metas = [seg(1, 0, 0, 2 * H - 1), seg(2, 0, 2 * H, 4 * H - 1)];
        assert!(plan(&metas).is_empty());
        // Overlap is resolved at once.
        let metas = [seg(1, 0, 0, 2 * H), seg(2, 0, 2 * H, 4 * H - 1)];
        assert_eq!(plan(&metas)[0].inputs, vec![1, 2]);
        // So are small segments.
        let mut metas = [seg(1, 0, 0, 2 * H - 1), seg(2, 0, 2 * H, 4 * H - 1), seg(3, 0, 4 * H, 5 * H)];
        metas[0].bytes = 1000;
        metas[2].bytes = 1000;
        metas[1].rank = 10; // keep 2 out of the LWW closure of {1, 3}
        let plans = plan(&metas);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].inputs, vec![1, 3]);
        assert_eq!(plans[0].output_level, 1);
    }

    #[test]
    fn a_lone_segment_is_never_rewritten_alone() {
        assert!(plan(&[seg(1, 0, 0, H), frontier(2)]).is_empty());
        let mut tiny = seg(1, 0, 0, H);
        tiny.bytes = 1;
        assert!(plan(&[tiny, frontier(2)]).is_empty());
    }

    #[test]
    fn only_segments_of_the_same_tier_merge() {
        let mut metas = vec![seg(1, 0, 0, 2 * H), seg(2, 0, H, 3 * H), frontier(9)];
        let mut other = seg(3, 0, H, 2 * H);
        other.tier = StoredTier::FiveMin;
        metas.push(other);
        let plans = plan(&metas);
        assert_eq!(plans.len(), 1);
        assert_eq!((plans[0].tier, plans[0].inputs.clone()), (StoredTier::Raw, vec![1, 2]));
    }

    #[test]
    fn lone_leftovers_join_the_next_level_and_top_windows_converge_to_one() {
        // Level-1 output of the first 6 h plus one head of the next 6 h window: at level 1
        // each is alone, at level 2 (one day, closed) they merge.
        let metas = [seg(1, 1, 0, 5 * H), seg(2, 0, 7 * H, 9 * H), frontier(3)];
        let p = plan(&metas);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].inputs.clone(), p[0].output_level, p[0].window), (vec![1, 2], 2, (0, D - 1)));
        // Two top-level segments of one closed week merge (the top level takes everything).
        let metas = [seg(1, 3, 0, 2 * D), seg(2, 3, 3 * D, 5 * D), frontier(3)];
        let p = plan(&metas);
        assert_eq!((p[0].inputs.clone(), p[0].output_level), (vec![1, 2], 3));
        // Two level-2 segments of different days in a closed week merge at level 3.
        let metas = [seg(1, 2, 0, 20 * H), seg(2, 2, D, D + 20 * H), frontier(3)];
        assert_eq!(plan(&metas)[0].output_level, 3);
    }

    #[test]
    fn overlap_with_a_merged_segment_is_resolved_at_its_level() {
        // A late head overlapping a level-1 segment of a closed window, no other head.
        let metas = [seg(1, 1, 0, 5 * H), seg(2, 0, H, 2 * H), frontier(3)];
        let p = plan(&metas);
        assert_eq!((p[0].inputs.clone(), p[0].output_level, p[0].window), (vec![1, 2], 1, (0, 6 * H - 1)));
        // A level-3 segment that happens to fit a 6 h window keeps its level.
        let metas = [seg(1, 3, 0, 5 * H), seg(2, 0, H, 2 * H)];
        assert_eq!(plan(&metas)[0].output_level, 3);
    }

    #[test]
    fn lww_closure_extends_with_an_offender_inside_the_window() {
        // Open window; 1 and 3 are small, so they merge. 2 was written between them and lies
        // in their span: merging 1 and 3 alone (rank 3) would shadow it, so it joins.
        let mut metas = [seg(1, 0, 0, H), seg(2, 0, 2 * H, 3 * H), seg(3, 0, 4 * H, 5 * H)];
        metas[0].bytes = 1000;
        metas[2].bytes = 1000;
        let p = plan(&metas);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].inputs, vec![1, 2, 3]);
    }

    #[test]
    fn lww_violation_outside_the_window_drops_the_plan() {
        // 1 and 3 fit the first 6 h window, which is closed. 2 has a rank between them,
        // overlaps their span and fits no window. 5 and 6 are an unrelated closed pair.
        let metas = [
            seg(1, 0, 0, H),
            seg(2, 0, 2 * H, 30 * D),
            seg(3, 0, 4 * H, 5 * H),
            seg(5, 0, 50 * D, 50 * D + H),
            seg(6, 0, 50 * D + 2 * H, 50 * D + 3 * H),
            frontier(7),
        ];
        // {1, 3} would violate LWW and 2 cannot join: dropped at every level (each larger
        // window holds 1 and 3 but not 2). Only the unrelated pair merges.
        let p = plan(&metas);
        assert_eq!(p.iter().map(|p| p.inputs.clone()).collect::<Vec<_>>(), vec![vec![5, 6]]);
        // An offender outside the window always overlaps a member (it covers one end of the
        // span), so once the windowed pass is idle the overlap pass merges it with that member.
        let p = plan(&[metas[0], metas[1], metas[2], metas[5]]);
        assert_eq!(p.iter().map(|p| p.inputs.clone()).collect::<Vec<_>>(), vec![vec![2, 3]]);
        // With the offender's rank outside the range, the natural group merges.
        let mut ok = metas;
        ok[1].rank = 10;
        assert_eq!(plan(&ok)[0].inputs, vec![1, 3]);
    }

    #[test]
    fn an_offender_claimed_by_another_plan_drops_the_plan_for_this_round() {
        // Level 1: {1, 2} in [0, 6 h) and {4, 6} in [6 h, 12 h). Level 2 would take 3 and 5
        // (heads straddling 6 h and 12 h), but 4, claimed, lies between them in rank and time.
        let metas = [
            seg(1, 0, 0, H),
            seg(2, 0, 2 * H, 3 * H),
            seg(3, 0, 5 * H, 7 * H),
            seg(4, 0, 8 * H, 9 * H),
            seg(6, 0, 10 * H, 11 * H),
            seg(5, 0, 11 * H + 30 * 60_000, 13 * H),
            frontier(7),
        ];
        let p = plan(&metas);
        assert_eq!(p.iter().map(|p| p.inputs.clone()).collect::<Vec<_>>(), vec![vec![1, 2], vec![4, 6]]);
    }

    #[test]
    fn oversized_segments_stay_unless_they_overlap() {
        // A backfill head spanning three weeks, alone: nothing to do.
        let big = seg(1, 0, 0, 21 * D);
        assert!(plan(&[big, frontier(9)]).is_empty());
        // Overlapping a week segment: merged with it, the output spans the union and, fitting
        // no window, gets the top level.
        let week = seg(2, 3, 7 * D, 8 * D);
        let p = plan(&[big, week, frontier(9)]);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].inputs.clone(), p[0].output_level, p[0].window), (vec![1, 2], 3, (0, 21 * D)));
        // A head straddling a day boundary fits the week: it is merged there, not forced.
        let straddler = seg(1, 0, D - H, D + H);
        let p = plan(&[straddler, seg(2, 0, 3 * D, 3 * D + H), frontier(9)]);
        assert_eq!((p[0].output_level, p[0].window), (3, (0, 7 * D - 1)));
    }

    #[test]
    fn overlap_pass_only_runs_when_the_windowed_pass_found_nothing() {
        // Two overlapping heads across a week boundary, and a normal window merge elsewhere.
        let metas = [
            seg(1, 0, 7 * D - H, 7 * D + H),
            seg(2, 0, 7 * D - 2 * H, 7 * D),
            seg(3, 0, 0, H),
            seg(4, 0, 2 * H, 3 * H),
        ];
        let metas = [&metas[..], &[frontier(5)]].concat();
        let p = plan(&metas);
        assert_eq!(p.iter().map(|p| p.inputs.clone()).collect::<Vec<_>>(), vec![vec![3, 4]]);
        let p = plan(&metas[..2]);
        assert_eq!(p[0].inputs, vec![1, 2]);
        assert_eq!(p[0].window, (7 * D - 2 * H, 7 * D + H));
    }

    #[test]
    fn interleaving_plans_in_one_round_are_refused() {
        // Level 1 merges {1, 10} (span [0, 5 h], ranks 1..=10). The level-2 group {5, 15}
        // (heads straddling 6 h) has no offender of its own, but its span meets the first
        // plan's and its ranks 5..=15 interleave with 1..=10: refused until the next round.
        let metas = [
            seg(1, 0, 3 * H, 5 * H),
            seg(10, 0, 0, H),
            seg(5, 0, 5 * H + 30 * 60_000, 6 * H + 30 * 60_000),
            seg(15, 0, 4 * H, 7 * H),
            frontier(99),
        ];
        let p = plan(&metas);
        assert_eq!(p.iter().map(|p| p.inputs.clone()).collect::<Vec<_>>(), vec![vec![1, 10]]);
    }

    #[test]
    fn plans_are_ordered_oldest_window_first_and_deterministic() {
        let mut metas = vec![];
        for w in (0..4).rev() {
            metas.push(seg(w * 2 + 1, 0, w as i64 * 6 * H, w as i64 * 6 * H + H));
            metas.push(seg(w * 2 + 2, 0, w as i64 * 6 * H + 2 * H, w as i64 * 6 * H + 3 * H));
        }
        metas.push(frontier(99));
        let p = plan(&metas);
        let starts: Vec<_> = p.iter().map(|p| p.window.0).collect();
        assert_eq!(starts, vec![0, 6 * H, 12 * H, 18 * H]);
        metas.reverse();
        assert_eq!(plan(&metas), p);
    }

    #[test]
    fn max_segments_per_merge_keeps_the_oldest_writes() {
        let cfg = CompactionConfig { max_segments_per_merge: 3, ..CompactionConfig::default() };
        let metas: Vec<_> = (1..=6).map(|i| seg(i, 0, i as i64 * 10, i as i64 * 10 + 5)).chain([frontier(9)]).collect();
        let p = plan_compactions(&metas, &cfg);
        assert_eq!(p[0].inputs, vec![1, 2, 3]);
    }

    #[test]
    fn negative_timestamps_use_aligned_windows() {
        let metas = [seg(1, 0, -5 * H, -4 * H), seg(2, 0, -2 * H, -H), frontier(3)];
        assert_eq!(plan(&metas)[0].window, (-6 * H, -1));
        // Extreme timestamps do not overflow.
        let metas = [seg(1, 0, i64::MAX - 10, i64::MAX), seg(2, 0, i64::MAX - 5, i64::MAX - 1)];
        assert_eq!(plan(&metas).len(), 1);
        let metas = [seg(1, 0, i64::MIN, i64::MIN + 10), seg(2, 0, i64::MIN + 5, i64::MIN + 6)];
        assert_eq!(plan(&metas).len(), 1);
    }

    #[test]
    fn overlap_sweep_marks_every_segment_involved() {
        let segs = [seg(1, 0, 0, 10), seg(2, 0, 1, 2), seg(3, 0, 5, 6), seg(4, 0, 20, 30), seg(5, 0, 30, 31)];
        assert_eq!(overlapping(&segs, &[0, 1, 2, 3, 4]), vec![true, true, true, true, true]);
        assert_eq!(overlapping(&segs, &[1, 2, 3]), vec![false, false, false]);
    }
}
