//! Compaction: merging small and overlapping segments into larger time windows.
//!
//! The planner (`plan.rs`) only *decides*; it does no I/O. The executor (`exec.rs`)
//! turns the live segments into [`SegmentMeta`], calls [`plan_compactions`], and
//! carries out each [`Plan`]: it writes the merged segment (resolving equal
//! timestamps by rank, highest wins) and swaps the inputs for the output in one
//! manifest publication. The rules are documented in `plan.rs`.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::tier::StoredTier;

mod exec;
mod plan;

pub use exec::CompactionReport;
pub use plan::{plan_compactions, Plan};

/// What the planner needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentMeta {
    /// Unique among the segments passed to one planning call.
    pub id: u64,
    /// Write order: on equal timestamps the segment with the higher rank wins.
    /// A merged output carries the highest rank of its inputs ([`Plan::output_rank`]).
    pub rank: u64,
    /// Segments of different tiers never merge.
    pub tier: StoredTier,
    /// 0 for a sealed head (any span); L ≥ 1 for the output of a merge into a level-L window.
    pub level: u8,
    /// Oldest sample timestamp, ms since the epoch, inclusive.
    pub min_t: i64,
    /// Newest sample timestamp, ms since the epoch, inclusive.
    pub max_t: i64,
    pub samples: u64,
    /// Size on disk.
    pub bytes: u64,
}

impl SegmentMeta {
    /// Whether this segment's time range meets the inclusive range `[lo, hi]`.
    pub fn overlaps(&self, lo: i64, hi: i64) -> bool {
        self.min_t <= hi && lo <= self.max_t
    }
}

/// Most levels a configuration may have (levels are stored in a `u8`).
pub const MAX_LEVELS: usize = 255;

/// Tuning of the compaction planner. Every setting has a documented default. Build with
/// consuming setters (`CompactionConfig::default().max_segments_per_merge(8)`) and read
/// back with the `get_` accessors; the struct is `#[non_exhaustive]` like `Options`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionConfig {
    /// `level_windows[L - 1]` is the size of level L's windows; windows are aligned to
    /// multiples of their size since the Unix epoch (UTC). Level 0 is a sealed head and
    /// has no window. Each size must be a multiple of the one before, so that an output
    /// of level L always fits in exactly one window of level L + 1.
    ///
    /// Default: 6 h, 24 h, 7 d. A sealed head spans up to 1.5 × the 2 h block
    /// duration, so most heads fit a 6 h window; the ones that straddle a 6 h boundary
    /// still fit a day, and day outputs fit a week (weeks start on Thursday, as the epoch
    /// does). The top level's windows hold one segment each once closed, so a year of
    /// hourly rollups is about 52 segments.
    pub(crate) level_windows: Vec<Duration>,
    /// Most inputs one window group contributes to a plan; a bigger group is cut to the
    /// inputs with the lowest ranks and the rest wait for the next round. The LWW closure
    /// (see `plan.rs`) may add a few segments beyond this, because refusing them would stall
    /// the resolution of overlaps. Default: 32.
    pub(crate) max_segments_per_merge: usize,
    /// Segments smaller than this are merged with the other small segments of their
    /// window as soon as there are two, without waiting for the window to close. This
    /// keeps frequent `flush()` calls from piling up tiny files. Default: 1 MiB.
    pub(crate) small_segment_bytes: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        const HOUR: u64 = 3600;
        CompactionConfig {
            level_windows: vec![
                Duration::from_secs(6 * HOUR),
                Duration::from_secs(24 * HOUR),
                Duration::from_secs(7 * 24 * HOUR),
            ],
            max_segments_per_merge: 32,
            small_segment_bytes: 1 << 20,
        }
    }
}

/// Setters (each consumes and returns the config) and read accessors.
impl CompactionConfig {
    /// The window of each level, level 1 first; each a larger multiple of the one before,
    /// aligned to the epoch. Default: 6 h, 24 h, 7 d.
    pub fn level_windows(mut self, windows: Vec<Duration>) -> Self {
        self.level_windows = windows;
        self
    }
    /// Most inputs one window group contributes to a plan (at least 2). Default: 32.
    pub fn max_segments_per_merge(mut self, n: usize) -> Self {
        self.max_segments_per_merge = n;
        self
    }
    /// Segments smaller than this merge early with the other small ones of their window.
    /// Default: 1 MiB.
    pub fn small_segment_bytes(mut self, bytes: u64) -> Self {
        self.small_segment_bytes = bytes;
        self
    }
    pub fn get_level_windows(&self) -> &[Duration] {
        &self.level_windows
    }
    pub fn get_max_segments_per_merge(&self) -> usize {
        self.max_segments_per_merge
    }
    pub fn get_small_segment_bytes(&self) -> u64 {
        self.small_segment_bytes
    }

    /// Checks the documented constraints. The planner itself never fails: it stays
    /// correct (the LWW invariant holds and planning converges) on any configuration,
    /// but an invalid one compacts badly, so the engine should reject it at open.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("compaction config: {m}")));
        if self.level_windows.len() > MAX_LEVELS {
            return bad(format!("{} levels, at most {MAX_LEVELS} allowed", self.level_windows.len()));
        }
        let mut prev: Option<u128> = None;
        for (i, w) in self.level_windows.iter().enumerate() {
            let ms = w.as_millis();
            if ms == 0 || ms > i64::MAX as u128 {
                return bad(format!("level {} window {w:?} must be between 1 ms and i64::MAX ms", i + 1));
            }
            if let Some(p) = prev {
                if ms <= p || !ms.is_multiple_of(p) {
                    return bad(format!(
                        "level {} window {w:?} must be a larger multiple of level {}'s window",
                        i + 1,
                        i
                    ));
                }
            }
            prev = Some(ms);
        }
        if self.max_segments_per_merge < 2 {
            return bad(format!("max_segments_per_merge is {}, it must be at least 2", self.max_segments_per_merge));
        }
        Ok(())
    }

    /// Window sizes in ms, level 1 first; 0 marks an unusable size (nothing fits it).
    fn window_sizes_ms(&self) -> Vec<i64> {
        self.level_windows.iter().take(MAX_LEVELS).map(|w| i64::try_from(w.as_millis()).unwrap_or(0)).collect()
    }
}

#[cfg(test)]
mod proptests {
    //! Properties of the planner over random segment sets, run to a fixpoint.

    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    const QUARTER_HOUR: i64 = 900_000;

    /// One sample per point: the value is the rank of the segment that wrote it, so a wrong
    /// winner on equal timestamps shows up as a changed answer.
    type Points = BTreeMap<u64, Vec<(i64, u64)>>;

    fn arb_segments() -> impl Strategy<Value = Vec<SegmentMeta>> {
        // (tier, level, start, length, small?), in quarter hours over three weeks; a few
        // segments span weeks (backfill), many are head-sized.
        let spec = (
            prop::sample::select(vec![StoredTier::Raw, StoredTier::FiveMin]),
            0u8..5,
            0i64..2016,
            prop_oneof![4 => 0i64..12, 1 => 0i64..2016],
            any::<bool>(),
        );
        prop::collection::vec(spec, 1..28)
            .prop_flat_map(|specs| {
                let ranks: Vec<u64> = (0..specs.len() as u64).collect();
                (Just(specs), Just(ranks).prop_shuffle())
            })
            .prop_map(|(specs, ranks)| {
                specs
                    .into_iter()
                    .zip(ranks)
                    .enumerate()
                    .map(|(i, ((tier, level, start, len, small), rank))| SegmentMeta {
                        id: 1000 + i as u64,
                        rank,
                        tier,
                        level,
                        min_t: start * QUARTER_HOUR,
                        max_t: (start + len) * QUARTER_HOUR,
                        samples: 10,
                        bytes: if small { 1000 } else { 10 << 20 },
                    })
                    .collect()
            })
    }

    fn arb_config() -> impl Strategy<Value = CompactionConfig> {
        prop_oneof![
            Just(CompactionConfig::default()),
            (2usize..5).prop_map(|max| CompactionConfig {
                level_windows: [1, 4, 24].iter().map(|h| Duration::from_secs(h * 3600)).collect(),
                max_segments_per_merge: max,
                small_segment_bytes: 1 << 20,
            }),
        ]
    }

    /// Per tier and timestamp, the value a reader sees: the one from the highest rank.
    fn answers(segs: &[SegmentMeta], pts: &Points) -> BTreeMap<(StoredTier, i64), u64> {
        let mut best: BTreeMap<(StoredTier, i64), (u64, u64)> = BTreeMap::new();
        for s in segs {
            for &(t, v) in &pts[&s.id] {
                let e = best.entry((s.tier, t)).or_insert((s.rank, v));
                if s.rank >= e.0 {
                    *e = (s.rank, v);
                }
            }
        }
        best.into_iter().map(|(k, (_, v))| (k, v)).collect()
    }

    /// The metadata of a plan's output (id left to the caller).
    fn output_of(p: &Plan, segs: &[SegmentMeta]) -> SegmentMeta {
        let inputs: Vec<&SegmentMeta> = segs.iter().filter(|s| p.inputs.contains(&s.id)).collect();
        SegmentMeta {
            id: 0,
            rank: p.output_rank,
            tier: p.tier,
            level: p.output_level,
            min_t: inputs.iter().map(|s| s.min_t).min().unwrap(),
            max_t: inputs.iter().map(|s| s.max_t).max().unwrap(),
            samples: inputs.iter().map(|s| s.samples).sum(),
            bytes: inputs.iter().map(|s| s.bytes).sum(),
        }
    }

    fn check_plan(p: &Plan, segs: &[SegmentMeta]) -> std::result::Result<(), TestCaseError> {
        let by_id: BTreeMap<u64, &SegmentMeta> = segs.iter().map(|s| (s.id, s)).collect();
        prop_assert!(p.inputs.len() >= 2, "plan with fewer than two inputs: {p:?}");
        let m: Vec<&SegmentMeta> = p.inputs.iter().map(|id| by_id[id]).collect();
        prop_assert!(m.iter().all(|s| s.tier == p.tier), "mixed tiers: {p:?}");
        prop_assert!(m.windows(2).all(|w| w[0].rank < w[1].rank), "inputs not in rank order: {p:?}");
        let (lo, hi) = (m[0].rank, m[m.len() - 1].rank);
        prop_assert_eq!(p.output_rank, hi);
        let span = (m.iter().map(|s| s.min_t).min().unwrap(), m.iter().map(|s| s.max_t).max().unwrap());
        prop_assert!(p.window.0 <= span.0 && span.1 <= p.window.1, "inputs outside window: {p:?}");
        prop_assert!(m.iter().all(|s| s.level <= p.output_level), "level went down: {p:?}");
        for s in segs {
            let offender = s.tier == p.tier
                && !p.inputs.contains(&s.id)
                && (lo..=hi).contains(&s.rank)
                && s.overlaps(span.0, span.1);
            prop_assert!(!offender, "LWW violated by {s:?} for {p:?}");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn planning_is_safe_and_converges(mut segs in arb_segments(), cfg in arb_config()) {
            let mut pts: Points = segs
                .iter()
                .map(|s| (s.id, vec![(s.min_t, s.rank), ((s.min_t + s.max_t) / 2, s.rank), (s.max_t, s.rank)]))
                .collect();
            let expected = answers(&segs, &pts);
            let mut next_id = 1_000_000;
            let rounds_allowed = segs.len();
            for round in 0.. {
                let plans = plan_compactions(&segs, &cfg);
                let mut reversed = segs.clone();
                reversed.reverse();
                prop_assert_eq!(&plan_compactions(&reversed, &cfg), &plans, "not deterministic");
                if plans.is_empty() {
                    // Fixpoint: no two segments of a tier overlap.
                    for a in &segs {
                        for b in &segs {
                            prop_assert!(
                                a.id == b.id || a.tier != b.tier || !a.overlaps(b.min_t, b.max_t),
                                "overlap left at fixpoint: {a:?} {b:?}"
                            );
                        }
                    }
                    break;
                }
                prop_assert!(round < rounds_allowed, "no fixpoint after {round} rounds");
                let keys: Vec<_> = plans.iter().map(|p| (p.window, p.tier, p.inputs.clone())).collect();
                prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]), "plans out of order");
                let mut seen = BTreeSet::new();
                for p in &plans {
                    check_plan(p, &segs)?;
                    prop_assert!(p.inputs.iter().all(|id| seen.insert(*id)), "plans share a segment");
                    // The executor may run the round's plans in any order: each must still
                    // hold once all the others have run.
                    let mut after_others = segs.clone();
                    for q in plans.iter().filter(|q| *q != p) {
                        after_others.retain(|s| !q.inputs.contains(&s.id));
                        after_others.push(SegmentMeta { id: u64::MAX - q.inputs[0], ..output_of(q, &segs) });
                    }
                    check_plan(p, &after_others)?;
                }
                // Execute every plan of the round, as the executor would.
                for p in &plans {
                    let output = output_of(p, &segs);
                    let inputs: Vec<SegmentMeta> =
                        p.inputs.iter().map(|id| *segs.iter().find(|s| s.id == *id).unwrap()).collect();
                    let mut merged: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
                    for s in &inputs {
                        for &(t, v) in &pts.remove(&s.id).unwrap() {
                            let e = merged.entry(t).or_insert((s.rank, v));
                            if s.rank >= e.0 {
                                *e = (s.rank, v);
                            }
                        }
                    }
                    segs.retain(|s| !p.inputs.contains(&s.id));
                    next_id += 1;
                    segs.push(SegmentMeta { id: next_id, ..output });
                    pts.insert(next_id, merged.into_iter().map(|(t, (_, v))| (t, v)).collect());
                }
                prop_assert_eq!(&answers(&segs, &pts), &expected, "a reader would see different values");
            }
        }
    }
}
